"""Collect the derived statistics into results/derived/summary.json."""
from hlm.pipeline import job_log
from hlm.results import derived_summary, write_json


def main(icc, variance_explained, contextual, output, log):
    with job_log(log):
        write_json(output, derived_summary(icc, variance_explained, contextual))


main(list(snakemake.input.icc), list(snakemake.input.variance_explained),
     list(snakemake.input.contextual), snakemake.output[0], snakemake.log[0])
