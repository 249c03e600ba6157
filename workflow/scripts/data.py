"""Read the data, treat missing values, centre: each model's table and the data's summary."""
from hlm.pipeline.run import job_log
from hlm.pipeline.steps import write_tables


def main(spec, tables, summary, log):
    with job_log(log):
        write_tables(spec, tables, summary)


main(snakemake.params.spec, list(snakemake.output.tables), snakemake.output.summary, snakemake.log[0])
