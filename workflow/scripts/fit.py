"""Fit one model: its JSON record, residuals and random effects."""
from hlm.pipeline import fit_spec, job_log
from hlm.results import (model_record, ranef_frame, read_table, residuals_frame, write_json,
                         write_parquet)


def main(table, spec, model_json, residuals, ranef, log):
    with job_log(log):
        frame = read_table(table)
        model = fit_spec(spec, frame)
        write_parquet(residuals, residuals_frame(model, frame))
        write_parquet(ranef, ranef_frame(model))
        write_json(model_json, model_record(model, spec))


main(snakemake.input.table, snakemake.params.spec, snakemake.output.model,
     snakemake.output.residuals, snakemake.output.ranef, snakemake.log[0])
