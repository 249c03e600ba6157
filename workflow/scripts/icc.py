"""Intraclass correlation of one model."""
import hlm
from hlm.pipeline import fit_spec, job_log
from hlm.results import read_table, write_json


def main(table, spec, output, log):
    with job_log(log):
        model = fit_spec(spec, read_table(table))
        write_json(output, {"model": spec["name"], "icc": hlm.icc(model)})


main(snakemake.input.table, snakemake.params.spec, snakemake.output[0], snakemake.log[0])
