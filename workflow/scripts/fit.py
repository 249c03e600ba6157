"""Fit one model: its JSON record, residuals and random effects."""
from hlm.pipeline.run import job_log
from hlm.pipeline.steps import fit_model
from hlm.results.writers import read_table


def main(table, spec, outputs, log):
    with job_log(log):
        fit_model(spec, read_table(table), outputs)


main(snakemake.input.table, snakemake.params.spec, dict(snakemake.output.items()), snakemake.log[0])
