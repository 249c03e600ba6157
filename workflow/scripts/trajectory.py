"""The trajectory figure of one repeated-measures model: SVG, PNG and its numbers (JSON)."""
from hlm.pipeline.run import job_log
from hlm.pipeline.steps import write_trajectory
from hlm.results.writers import read_json, read_table


def main(model, table, time, unit, outputs, language, log):
    with job_log(log):
        write_trajectory(read_json(model), read_table(table), time, unit, outputs, language)


main(snakemake.input.model, snakemake.input.table, snakemake.params.time, snakemake.params.unit,
     dict(snakemake.output.items()), snakemake.params.language, snakemake.log[0])
