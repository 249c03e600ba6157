"""The report: HTML, Markdown and Word tables from results/manifest.json."""
from hlm.pipeline.run import job_log
from hlm.report.render import render_report


def main(manifest, outputs, log):
    with job_log(log):
        render_report(manifest, outputs)


main(snakemake.input.manifest, dict(snakemake.output.items()), snakemake.log[0])
