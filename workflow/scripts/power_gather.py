"""The power curve of a power analysis, gathered from its chunks."""
from hlm.pipeline.run import job_log
from hlm.pipeline.steps import gather_power


def main(name, entry, chunks, output, log):
    with job_log(log):
        gather_power(name, entry, chunks, output)


main(snakemake.wildcards.power, snakemake.params.entry, list(snakemake.input), snakemake.output[0], snakemake.log[0])
