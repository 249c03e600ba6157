"""Likelihood-ratio test of two or more models (lme4's anova layout)."""
import hlm
from hlm.pipeline.run import job_log
from hlm.pipeline.steps import fit_spec
from hlm.results.records import comparison_record
from hlm.results.writers import read_table, write_json


def main(table, specs, output, log):
    with job_log(log):
        frame = read_table(table)
        models = [fit_spec(spec, frame) for spec in specs]
        table = hlm.anova(*models, names=[spec["name"] for spec in specs])
        write_json(output, comparison_record(table, specs))


main(snakemake.input.table, snakemake.params.specs, snakemake.output[0], snakemake.log[0])
