"""Read the data, treat missing values, centre: the analysed table and its summary."""
from hlm.data import prepare, read_data
from hlm.pipeline.run import job_log
from hlm.results.writers import write_json, write_parquet


def main(spec, table, summary, log):
    with job_log(log):
        frame, info = prepare(read_data(spec["path"]), spec["group"], spec["centering"],
                              spec.get("complete"), spec["missing_codes"])
        write_parquet(table, frame)
        write_json(summary, {"path": spec["path"], "missing": spec["missing"], **info})


main(snakemake.params.spec, snakemake.output.table, snakemake.output.summary, snakemake.log[0])
