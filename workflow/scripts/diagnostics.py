"""Diagnostic figures of one model: panels A-D and the caterpillar plot, as SVG and PNG."""
from hlm.pipeline.run import job_log
from hlm.pipeline.steps import write_diagnostic_figures
from hlm.results.writers import read_table


def main(residuals, ranef, outputs, language, log):
    with job_log(log):
        write_diagnostic_figures(read_table(residuals), read_table(ranef), outputs, language)


main(snakemake.input.residuals, snakemake.input.ranef, dict(snakemake.output.items()),
     snakemake.params.language, snakemake.log[0])
