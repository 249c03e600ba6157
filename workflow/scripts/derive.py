"""ICC, variance explained and contextual effects of the declared models, from their records."""
from hlm.pipeline.run import job_log
from hlm.pipeline.steps import derive_statistics
from hlm.results.writers import read_json, read_table


def main(models, tables, icc, variance_explained, contextual, levels, output, log):
    with job_log(log):
        derive_statistics([read_json(m) for m in models], [read_table(t) for t in tables], icc,
                          variance_explained, contextual, levels, output)


main(list(snakemake.input.models), list(snakemake.input.tables), snakemake.params.icc,
     snakemake.params.variance_explained, snakemake.params.contextual, snakemake.params.levels,
     snakemake.output[0], snakemake.log[0])
