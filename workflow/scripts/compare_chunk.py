"""One chunk of a parametric bootstrap comparison: the LRT* of replicates [start, stop)."""
from hlm.pipeline.run import job_log
from hlm.pipeline.steps import bootstrap_chunk
from hlm.results.writers import read_json, read_table


def main(name, models, tables, bootstrap, start, stop, output, log):
    with job_log(log):
        bootstrap_chunk(name, [read_json(m) for m in models], [read_table(t) for t in tables], bootstrap, start,
                        stop, output)


main(snakemake.wildcards.comparison, list(snakemake.input.models), list(snakemake.input.tables),
     snakemake.params.bootstrap, int(snakemake.wildcards.start), snakemake.params.stop, snakemake.output[0],
     snakemake.log[0])
