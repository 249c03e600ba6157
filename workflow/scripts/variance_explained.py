"""Variance explained from an old model to a new one, per variance component."""
import hlm
from hlm.pipeline import fit_spec, job_log
from hlm.results import read_table, variance_explained_record, write_json


def main(table, specs, output, log):
    with job_log(log):
        frame = read_table(table)
        old, new = (fit_spec(spec, frame) for spec in specs)
        values = hlm.variance_explained(old, new)
        write_json(output, variance_explained_record(values, specs[0]["name"], specs[1]["name"]))


main(snakemake.input.table, snakemake.params.specs, snakemake.output[0], snakemake.log[0])
