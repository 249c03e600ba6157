"""What the report reads: the manifest of a run and every result file it lists, the data file's
SHA-256 and the versions of the software.
"""
import platform
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from ..results.writers import read_json

PACKAGES = ("hlm", "numpy", "scipy", "pandas", "nlopt", "numba", "pyreadstat", "pyarrow",
            "statsmodels", "matplotlib", "jinja2", "python-docx", "latex2mathml", "snakemake")


@dataclass
class Results:
    base: Path
    manifest: dict
    config: dict
    summary: dict
    models: dict
    comparisons: dict
    derived: dict
    figures: dict       # model -> name -> Path
    simple_slopes: dict  # model -> JSON
    trajectories: dict = field(default_factory=dict)  # model -> JSON (data.time)
    intervals: dict = field(default_factory=dict)  # model -> results/intervals/<model>.json (bootstrap)
    power: dict = field(default_factory=dict)  # power analysis -> its results/power/<name>.json
    power_figures: dict = field(default_factory=dict)  # power analysis -> svg/png -> Path


def load_results(manifest_path):
    """Every result a manifest lists (paths relative to the folder that holds results/)."""
    manifest_path = Path(manifest_path)
    manifest = read_json(manifest_path)
    base = manifest_path.resolve().parent.parent
    files = manifest["files"]

    def read(path):
        return read_json(base / path)

    figures, slopes, trajectories = {}, {}, {}
    for model, named in files.get("figure_files", {}).items():
        figures[model] = {name: base / path for name, path in named.items()}
        if "trajectory_json" in named and (base / named["trajectory_json"]).is_file():
            trajectories[model] = read(named["trajectory_json"])
        if "simple_slopes_json" in named and (base / named["simple_slopes_json"]).is_file():
            record = read(named["simple_slopes_json"])
            if record.get("available"):
                slopes[model] = record
    return Results(
        base=base, manifest=manifest, config=manifest["config"],
        summary=read(files["data"]["summary"]),
        models={name: read(paths["json"]) for name, paths in files["models"].items()},
        comparisons={name: read(path) for name, path in files["comparisons"].items()},
        derived=read(files["derived"]) if (base / files["derived"]).is_file() else {},
        figures=figures, simple_slopes=slopes, trajectories=trajectories,
        intervals={name: read(path) for name, path in files.get("intervals", {}).items()},
        power={name: read(path) for name, path in files.get("power", {}).items()},
        power_figures={name: {kind: base / path for kind, path in named.items()}
                       for name, named in files.get("power_figures", {}).items()})


def software_versions():
    """[(package, version)]: Python and the packages that computed and wrote the results."""
    rows = [("Python", platform.python_version())]
    for package in PACKAGES:
        try:
            rows.append((package, metadata.version(package)))
        except metadata.PackageNotFoundError:
            continue
    return rows
