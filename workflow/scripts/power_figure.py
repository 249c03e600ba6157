"""The power-curve figure of a power analysis, as SVG and PNG."""
from hlm.pipeline.run import job_log
from hlm.pipeline.steps import write_power_figure


def main(result, outputs, language, log):
    with job_log(log):
        write_power_figure(result, outputs, language)


main(snakemake.input[0], dict(snakemake.output.items()), snakemake.params.language, snakemake.log[0])
