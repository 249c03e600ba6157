"""One view of the whole analysis, built once from the results; every writer formats it.

The order is the seed's: the data, each model (equations, lme4-style tables, a paragraph), all
models side by side (sjPlot's tab_model), the likelihood-ratio tests, variance explained, the
ICC, contextual effects, diagnostics, warnings and what it takes to reproduce the run.
"""
import shlex
from importlib import metadata

import yaml

from ..data import missing_codes_line
from ..labels import labels
from ..results.records import is_glmm_record
from . import apa
from .glmm_views import glmm_model_view, icc_formula, icc_formula_text
from .inputs import software_versions
from .intervals import interval_view
from .models import model_view, summary_table
from .names import model_titles, variable_names
from .power import power_views
from .references import cited, reference_list
from .sections import comparison_views, contextual_views, data_view, figure_views, icc_views, variance_views


def build_view(results, language):
    L = labels(language)
    config = results.config
    models = results.models
    titles = model_titles(config, L, language)
    names = variable_names(results, L, language)
    views = {name: (glmm_model_view if is_glmm_record(models[name]) else model_view)(
        name, models[name], titles[name], names, results.summary, L) for name in config["models"] if name in models}
    for name, view in views.items():
        view["bootstrap"] = interval_view(results.intervals.get(name), titles[name], L)
    warnings = [{"where": titles[name], "anchor": views[name]["anchor"], "messages": views[name]["warnings"]}
                for name in views if views[name]["warnings"]]
    data_messages = missing_code_warnings(results.summary, L)
    if results.summary.get("n_dropped"):
        data_messages.insert(0, L["warnings"]["dropped_rows"].format(n=apa.integer(results.summary["n_dropped"])))
    if data_messages:
        warnings.insert(0, {"where": L["warnings"]["data"].rstrip("：: "), "anchor": "data",
                            "messages": data_messages})
    icc = icc_views(results, titles, L)
    references = cited(config, [views[name]["spec"] for name in views], bool(icc),
                       bool(config.get("centering") or config.get("contextual")), bool(results.power),
                       any(record.get("bootstrap") for record in results.comparisons.values()) or bool(results.intervals))
    try:
        version = metadata.version("hlm")
    except metadata.PackageNotFoundError:
        version = "?"
    return {
        "language": language, "L": L, "title": config.get("title", ""),
        "generated": L["report"]["generated"].format(version=version),
        "data": data_view(results, names, L),
        "models": [views[name] for name in views],
        "summary": summary_table({n: models[n] for n in views}, views, L, names, results.summary),
        "comparisons": comparison_views(results, titles, L),
        "variance_explained": variance_views(results, views, titles, names, L),
        "variance_explained_intro": L["variance_explained"]["intro_glmm" if config["variance_explained"] and all(
            is_glmm_record(models.get(m, {})) for pair in config["variance_explained"] for m in pair) else "intro"],
        "icc": icc,
        "icc_formulas": list(dict.fromkeys(icc_formula(models[i["name"]]) for i in icc)),
        "icc_formula_texts": list(dict.fromkeys(icc_formula_text(models[i["name"]], L) for i in icc)),
        "contextual": contextual_views(results, titles, names, L),
        "diagnostics": figure_views(results, titles, names, L),
        "diagnostics_glmm": any(is_glmm_record(models.get(n, {})) for n in config.get("diagnostics", [])),
        "power": power_views(results, titles, L, names),
        "warnings": warnings,
        "references": reference_list(references),
        "software": software_versions(),
        "data_file": config["data"]["path"],
        "data_sha256": results.summary.get("sha256", apa.MISSING),  # of the data the results came from
        "config_yaml": yaml.safe_dump(config_echo(config, models), allow_unicode=True, sort_keys=False,
                                      width=100).rstrip(),
        "command": reproduce_command(results.manifest),
    }


# estimation keys no GLMM reads (glmer: ML, Wald z tests, its own two optimizer stages unless a model names one)
LMM_ONLY = ("REML", "ddf", "optimizer")


def config_echo(config, models):
    """The config as the run read it, defaults filled in, without the estimation keys that apply
    to none of the fitted models: a GLMM analysis shows no REML, ddf or optimizer it never used."""
    if any(not is_glmm_record(m) for m in models.values()):
        return config
    estimation = {k: v for k, v in (config.get("estimation") or {}).items() if k not in LMM_ONLY}
    return {**config, "estimation": estimation}


def missing_code_warnings(summary, L):
    """One warning per value that looks like a forgotten missing code, with the config line."""
    suspects = summary.get("suspect_missing_codes") or []
    line = missing_codes_line(suspects) if suspects else ""
    return [L["warnings"]["missing_" + s["reason"]].format(column=s["column"], count=apa.integer(s["count"]),
                                                           value=s["value"], line=line) for s in suspects]


def reproduce_command(manifest):
    """The command that reruns the analysis on the config files the run read."""
    files = " ".join(shlex.quote(path) for path in manifest["configfiles"])
    return f"snakemake --cores 2 --configfile {files}"
