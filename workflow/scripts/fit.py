"""Fit one model: its JSON record, residuals and random effects."""
from hlm.pipeline.run import job_log
from hlm.pipeline.steps import fit_spec
from hlm.results.records import model_record, ranef_frame, residuals_frame
from hlm.results.writers import read_table, write_json, write_parquet


def main(table, spec, model_json, residuals, ranef, log):
    with job_log(log):
        frame = read_table(table)
        model = fit_spec(spec, frame)
        write_parquet(residuals, residuals_frame(model, frame))
        write_parquet(ranef, ranef_frame(model))
        write_json(model_json, model_record(model, spec))


main(snakemake.input.table, snakemake.params.spec, snakemake.output.model,
     snakemake.output.residuals, snakemake.output.ranef, snakemake.log[0])
