# The declared analysis: config/config.yaml -> results/ (see config/README.md).
#   snakemake --cores 2                      the shipped analysis (the seed's HSB models)
#   snakemake --cores 2 --configfile my.yaml another config (or: hlm run my.yaml)
#   snakemake --cores 2 analysis             data, models, comparisons, derived statistics only
#   snakemake --profile profiles/slurm       every job on a SLURM cluster
#   snakemake --cores 2 --config title="..."  a key of the config overridden
# The workflow is workflow/Snakefile, which an installed hlm carries inside its package (so
# `hlm run` works in any folder). Loaded as Snakemake loads a main Snakefile, so its rule `all`
# stays the default target (Snakemake ignores default_target in a file `include:` brings in).
workflow.include("workflow/Snakefile", overwrite_default_target=True)
