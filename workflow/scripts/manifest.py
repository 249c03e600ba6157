"""results/manifest.json: the checked config and the path of every result file."""
from hlm.pipeline import job_log
from hlm.results import write_json


def main(config, files, output, log):
    with job_log(log):
        write_json(output, {"title": config["title"], "config": config, "files": files})


main(snakemake.params.config, snakemake.params.files, snakemake.output[0], snakemake.log[0])
