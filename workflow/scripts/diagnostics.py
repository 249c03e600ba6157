"""Diagnostic figure of one model (panels A-D of sjPlot's plot_model(type = "diag"))."""
from hlm.diagnostics import plot_diagnostics
from hlm.pipeline import job_log
from hlm.results import read_json, read_table


def main(model, residuals, ranef, output, log):
    with job_log(log):
        plot_diagnostics(read_json(model), read_table(residuals), read_table(ranef), output)


main(snakemake.input.model, snakemake.input.residuals, snakemake.input.ranef,
     snakemake.output[0], snakemake.log[0])
