"""The declared analysis: config (load, validate, derive the model specs), paths (every file
a run writes), steps (the work of each workflow rule, on plain paths), run (Snakemake and the
jobs' logs), starter (a first config for a data file).
"""
