"""Simple slopes of one model's interaction: a figure (SVG, PNG) and the tests (JSON)."""
from hlm.pipeline.run import job_log
from hlm.pipeline.steps import write_simple_slopes
from hlm.results.writers import read_json, read_table


def main(model, table, outputs, language, log):
    with job_log(log):
        write_simple_slopes(read_json(model), read_table(table), outputs, language)


main(snakemake.input.model, snakemake.input.table, dict(snakemake.output.items()),
     snakemake.params.language, snakemake.log[0])
