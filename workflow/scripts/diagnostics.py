"""Diagnostic figures of one model: panels A-D (a GLMM: DHARMa's scaled residuals) and the caterpillar plot."""
from hlm.pipeline.run import job_log
from hlm.pipeline.steps import write_diagnostic_figures
from hlm.results.writers import read_json, read_table


def main(residuals, ranef, model, table, outputs, language, log):
    with job_log(log):
        write_diagnostic_figures(read_table(residuals), read_table(ranef), outputs, language, read_json(model),
                                 read_table(table))


main(snakemake.input.residuals, snakemake.input.ranef, snakemake.input.model, snakemake.input.table,
     dict(snakemake.output.items()), snakemake.params.language, snakemake.log[0])
