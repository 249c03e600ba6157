"""One chunk of a power analysis: the p-values of replicates [start, stop) at one size."""
from hlm.pipeline.run import job_log
from hlm.pipeline.steps import power_chunk
from hlm.results.writers import read_json, read_table


def main(name, entry, model, table, size, start, stop, output, log):
    with job_log(log):
        power_chunk(name, entry, read_json(model), read_table(table), size, start, stop, output)


main(snakemake.wildcards.power, snakemake.params.entry, snakemake.input.model, snakemake.input.table,
     int(snakemake.wildcards.size), int(snakemake.wildcards.start), snakemake.params.stop, snakemake.output[0],
     snakemake.log[0])
