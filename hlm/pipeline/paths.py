"""Every file a run writes, by stage: the one place that names them (the rules, the manifest and
the report all read them from here).
"""

from pathlib import Path

from ..analysis.simple_slopes import has_simple_slopes
from .config import comparison_names, formula_columns, interval_options, model_specs

PATHS = {
    "table": "results/data/{model}.parquet",
    "data_summary": "results/data/summary.json",
    "model": "results/models/{model}.json",
    "residuals": "results/models/{model}_residuals.parquet",
    "ranef": "results/models/{model}_ranef.parquet",
    "comparison": "results/comparisons/{comparison}.json",
    "comparison_chunk": "results/comparisons/{comparison}/{start}.json",  # a bootstrap's replicates
    "intervals": "results/intervals/{model}.json",  # models with intervals: bootstrap
    "derived": "results/derived/derived.json",
    "power": "results/power/{power}.json",
    "power_chunk": "results/power/{power}/{size}_{start}.json",
    "power_figure": "results/figures/{power}_power.{ext}",  # no model figure ends in _power
    "figure": "results/figures/{model}_diagnostics.png",
    "report_figures": "results/report/figures",
    "manifest": "results/manifest.json",
    "log": "results/logs/{step}/{name}.log",
}


REPORT_FILES = {"html": "results/report/report.html", "md": "results/report/report.md",
                "docx": "results/report/tables.docx", "pdf": "results/report/report.pdf"}


# what the diagnostics rule writes per model (figure_names below picks the names)
FIGURE_FILES = {"diagnostics_svg": "results/figures/{model}_diagnostics.svg",
                "diagnostics_png": PATHS["figure"],
                "caterpillar_svg": "results/figures/{model}_caterpillar.svg",
                "caterpillar_png": "results/figures/{model}_caterpillar.png",
                "simple_slopes_svg": "results/figures/{model}_simple_slopes.svg",
                "simple_slopes_png": "results/figures/{model}_simple_slopes.png",
                "simple_slopes_json": "results/figures/{model}_simple_slopes.json",
                "johnson_neyman_svg": "results/figures/{model}_johnson_neyman.svg",
                "johnson_neyman_png": "results/figures/{model}_johnson_neyman.png",
                "trajectory_svg": "results/figures/{model}_trajectory.svg",
                "trajectory_png": "results/figures/{model}_trajectory.png",
                "trajectory_json": "results/figures/{model}_trajectory.json"}


def result_files(config):
    """Every file the analysis writes, by stage and name (the targets, and results/manifest.json)."""
    models = list(config["models"])
    return {
        "data": {"tables": {m: PATHS["table"].format(model=m) for m in models},
                 "summary": PATHS["data_summary"]},
        "models": {m: {"json": PATHS["model"].format(model=m),
                       "residuals": PATHS["residuals"].format(model=m),
                       "ranef": PATHS["ranef"].format(model=m)} for m in models},
        "comparisons": {c: PATHS["comparison"].format(comparison=c) for c in comparison_names(config)},
        "derived": PATHS["derived"],
        "intervals": {m: PATHS["intervals"].format(model=m) for m in interval_options(config)},
        "power": {p: PATHS["power"].format(power=p) for p in config.get("power", {})},
        "power_figures": {p: {ext: PATHS["power_figure"].format(power=p, ext=ext) for ext in ("svg", "png")}
                          for p in config.get("power", {})},
        "figures": {m: PATHS["figure"].format(model=m) for m in config["diagnostics"]},
        "figure_files": {m: figure_files(m, model_specs(config)[m]["formula"], config["data"].get("time"))
                         for m in config["diagnostics"]},
        "report": {f: REPORT_FILES[f] for f in config["report"]["formats"]},
    }


def all_paths(files):
    """Every path of result_files(config), flattened."""
    if isinstance(files, dict):
        return [path for value in files.values() for path in all_paths(value)]
    return [files]


def figure_files(model, formula, time=None):
    """name -> path of every figure file the diagnostics rules write for one model."""
    return {name: FIGURE_FILES[name].format(model=model) for name in figure_names(formula, time)}


def config_files(paths, workdir="."):
    """The config files a run read, as results/manifest.json records them: relative to the
    folder the analysis runs in when they are inside it (config/config.yaml, whether Snakemake
    or `hlm run` named it), with / as separator; so the same run gives the same manifest."""
    base = Path(workdir).resolve()
    out = []
    for path in paths:
        full = (base / path).resolve()
        out.append((full.relative_to(base) if full.is_relative_to(base) else full).as_posix())
    return out


DIAGNOSTIC_FIGURES = ("diagnostics_svg", "diagnostics_png", "caterpillar_svg", "caterpillar_png")


SIMPLE_SLOPES_FILES = ("simple_slopes_svg", "simple_slopes_png", "simple_slopes_json", "johnson_neyman_svg",
                       "johnson_neyman_png")


TRAJECTORY_FILES = ("trajectory_svg", "trajectory_png", "trajectory_json")


def figure_names(formula, time=None):
    """The names of the files the workflow writes for a diagnostics model with this formula: a
    trajectory figure too when the model has the time column (data.time) among its predictors."""
    names = list(DIAGNOSTIC_FIGURES) + (list(SIMPLE_SLOPES_FILES) if has_simple_slopes(formula) else [])
    return names + (list(TRAJECTORY_FILES) if time and time in formula_columns(formula)[1:] else [])
