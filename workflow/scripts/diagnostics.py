"""Diagnostic figures of one model: panels A-D (none for a GLMM) and the caterpillar plot, as SVG and PNG."""
from hlm.pipeline.run import job_log
from hlm.pipeline.steps import write_diagnostic_figures
from hlm.results.writers import read_json, read_table


def main(residuals, ranef, model, outputs, language, log):
    with job_log(log):
        write_diagnostic_figures(read_table(residuals), read_table(ranef), outputs, language,
                                 glmm=bool(read_json(model).get("family")))


main(snakemake.input.residuals, snakemake.input.ranef, snakemake.input.model, dict(snakemake.output.items()),
     snakemake.params.language, snakemake.log[0])
