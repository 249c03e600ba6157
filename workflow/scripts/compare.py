"""Likelihood-ratio test of two or more models (lme4's anova layout), from their records; with
method: bootstrap, PBmodcomp's p-value gathered from the bootstrap chunks."""
from hlm.pipeline.run import job_log
from hlm.pipeline.steps import compare_models
from hlm.results.writers import read_json, read_table


def main(models, tables, bootstrap, chunks, output, log):
    with job_log(log):
        compare_models([read_json(m) for m in models], [read_table(t) for t in tables], output, bootstrap, chunks)


main(list(snakemake.input.models), list(snakemake.input.tables), snakemake.params.bootstrap,
     list(snakemake.input.chunks), snakemake.output[0], snakemake.log[0])
