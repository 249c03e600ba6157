"""Within, between and contextual effects of a predictor split into group mean and deviation."""
import hlm
from hlm.pipeline import fit_spec, job_log
from hlm.results import read_table, write_json


def main(table, spec, within, between, output, log):
    with job_log(log):
        model = fit_spec(spec, read_table(table))
        effects = hlm.contextual(model, within=within, between=between)
        write_json(output, {"model": spec["name"], "within": within, "between": between,
                            "effects": effects})


main(snakemake.input.table, snakemake.params.spec, snakemake.params.within,
     snakemake.params.between, snakemake.output[0], snakemake.log[0])
