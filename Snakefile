# The declared analysis: config/config.yaml -> results/ (see config/README.md).
#   snakemake --cores 2                      the shipped analysis (the seed's HSB models)
#   snakemake --cores 2 --configfile my.yaml another config (or: hlm run my.yaml)
#   snakemake --cores 2 analysis             data, models, comparisons, derived statistics only
#   snakemake --profile profiles/slurm       every job on a SLURM cluster
from snakemake.utils import min_version

min_version("8.0")

if "data" not in config and "models" not in config:  # no --configfile: the shipped analysis
    configfile: "config/config.yaml"                     # (--config key=value still overrides)

include: "workflow/rules/common.smk"   # CONFIG: config validated against the schema, defaults filled in

report: "workflow/report/workflow.rst"

include: "workflow/rules/data.smk"
include: "workflow/rules/fit.smk"
include: "workflow/rules/compare.smk"
include: "workflow/rules/derive.smk"
include: "workflow/rules/diagnostics.smk"
include: "workflow/rules/report.smk"

localrules: all, analysis, manifest


rule all:
    input:
        analysis_targets(),
        list(FILES["figures"].values()),
        [path for files in FILES["figure_files"].values() for path in files.values()],
        list(FILES["report"].values()),
    default_target: True


rule analysis:
    input:
        analysis_targets(),
