"""Files hlm ships beside its code: the Snakemake workflow, the config schema, the report's
templates and labels. One place names them, so every module finds them the same way."""
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
SNAKEFILE = PROJECT / "Snakefile"
SCHEMA = PROJECT / "workflow" / "schemas" / "config.schema.yaml"
TEMPLATES = PROJECT / "templates"
