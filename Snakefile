# The declared analysis: config/config.yaml -> results/ (see config/README.md).
#   snakemake --cores 2                      the shipped analysis (the seed's HSB models)
#   snakemake --cores 2 --configfile my.yaml another config (or: hlm run my.yaml)
#   snakemake --cores 2 analysis             data, models, comparisons, derived statistics only
#   snakemake --profile profiles/slurm       every job on a SLURM cluster
#   snakemake --cores 2 --config title="..."  a key of the config overridden
from snakemake.utils import min_version, update_config

from hlm.pipeline.config import read_yaml

min_version("8.0")

CONFIG_PATHS = list(workflow.configfiles)
if "data" not in config and "models" not in config:  # no --configfile: the shipped analysis, read as
    CONFIG_PATHS = ["config/config.yaml"]              # plain YAML (`configfile:` runs YTE templates)
    overrides = dict(config)                           # --config key=value
    config.clear()
    config.update(read_yaml(CONFIG_PATHS[0]))
    update_config(config, overrides)

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
