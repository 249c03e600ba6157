"""ICC, variance explained and contextual effects of the declared models."""
from hlm.pipeline.run import job_log
from hlm.pipeline.steps import fit_spec
from hlm.results.records import derived_record
from hlm.results.writers import read_table, write_json


def main(table, specs, icc, variance_explained, contextual, output, log):
    with job_log(log):
        frame = read_table(table)
        models = {name: fit_spec(spec, frame) for name, spec in specs.items()}
        write_json(output, derived_record(models, icc, variance_explained, contextual))


main(snakemake.input.table, snakemake.params.specs, snakemake.params.icc,
     snakemake.params.variance_explained, snakemake.params.contextual, snakemake.output[0],
     snakemake.log[0])
