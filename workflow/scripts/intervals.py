"""Bootstrap percentile intervals of one model (bootMer), from its record."""
from hlm.pipeline.run import job_log
from hlm.pipeline.steps import bootstrap_intervals
from hlm.results.writers import read_json, read_table


def main(model, table, options, output, log):
    with job_log(log):
        bootstrap_intervals(read_json(model), read_table(table), options, output)


main(snakemake.input.model, snakemake.input.table, snakemake.params.options, snakemake.output[0], snakemake.log[0])
