"""Files hlm ships beside its code: the Snakemake workflow, the config schema, the report's
templates and labels. One place names them, so every module finds them the same way.

An installed wheel carries them as package data (hlm/workflow, hlm/templates: pyproject.toml
maps the repository's workflow/ and templates/ there); in a clone or an editable install they
are the repository's own folders beside the package. Either way they belong to the copy of hlm
that was imported.
"""
from importlib.resources import files
from pathlib import Path


def _shipped(name):
    packaged = files(__package__) / name
    return Path(packaged) if packaged.is_dir() else Path(__file__).resolve().parent.parent / name


WORKFLOW = _shipped("workflow")
SNAKEFILE = WORKFLOW / "Snakefile"
SCHEMA = WORKFLOW / "schemas" / "config.schema.yaml"
TEMPLATES = _shipped("templates")
LABELS = TEMPLATES / "labels.yaml"
