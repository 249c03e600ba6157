"""results/manifest.json: the config files read, the checked config and the path of every result file."""
from hlm.pipeline.run import job_log
from hlm.results.writers import write_json


def main(configfiles, config, files, output, log):
    with job_log(log):
        write_json(output, {"title": config["title"], "configfiles": configfiles, "config": config,
                            "files": files})


main(snakemake.params.configfiles, snakemake.params.config, snakemake.params.files,
     snakemake.output[0], snakemake.log[0])
