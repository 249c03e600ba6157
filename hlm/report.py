"""The thesis report: every result of a run, in Chinese or English, as HTML, Markdown and Word.

`render_report(manifest, outputs)` reads results/manifest.json and the files it lists, builds
one view of the analysis (`build_view`: numbers formatted APA-style, equations, sentences) and
writes it three ways:

- report.html: one self-contained file (inline CSS, figures as inline SVG, equations as MathML,
  nothing fetched from the network), from templates/report.html.j2;
- report.md: pandoc-friendly Markdown with LaTeX math, figures as PNG files beside it
  (results/report/figures/), from templates/report.md.j2;
- tables.docx: the tables as three-line (APA) tables in Word, written with python-docx.

The order is the seed's: the data, each model (equations, lme4-style tables, a paragraph), all
models side by side (sjPlot's tab_model), the likelihood-ratio tests, variance explained, the
ICC, contextual effects, diagnostics, warnings and what it takes to reproduce the run.

Sentences are kept as (template, values) pairs (`Say`) until a writer renders them, so that a
symbol becomes MathML in HTML, $LaTeX$ in Markdown and Unicode (γ₁₀) in Word. Outputs are
written atomically and are deterministic: no clock, no random ids.
"""
import hashlib
import html
import logging
import math
import platform
import re
import shlex
import shutil
import string
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import yaml
from scipy import stats

from . import apa
from .data import centered_columns
from .equations import INTERCEPT, Math, group_of, model_equations, random_terms_of
from .labels import TEMPLATES, labels
from .pipeline import formula_columns, model_specs
from .results import read_json, write_text

log = logging.getLogger(__name__)

PACKAGES = ("hlm", "numpy", "scipy", "pandas", "nlopt", "numba", "pyreadstat", "pyarrow",
            "statsmodels", "matplotlib", "jinja2", "python-docx", "latex2mathml", "snakemake")
ICC_THRESHOLD = 0.059   # the seed: "ICC不应该低于0.059" (Cohen's medium effect)


# ---- sentences that each writer renders its own way ---------------------------------------------

@dataclass(frozen=True)
class Code:
    """A name shown as code: a model, a variable, a formula."""
    text: str


@dataclass(frozen=True)
class Say:
    """A sentence: a label template (str.format) and the values to fill in. Values are plain
    text, Code, Math (a symbol), or nested Say / lists of Say (joined by `sep`)."""
    template: str
    values: tuple = ()
    sep: str = ""

    @staticmethod
    def of(template, **values):
        return Say(template, tuple(sorted(values.items())))


class Writer:
    """How one output format renders text, code, math and sentences."""

    def text(self, value):
        return str(value)

    def code(self, value):
        return str(value)

    def math(self, value):
        return value.text

    def render(self, value):
        if isinstance(value, Say):
            return self.say(value)
        if isinstance(value, (list, tuple)):
            return "".join(self.render(v) for v in value)
        if isinstance(value, Code):
            return self.code(value.text)
        if isinstance(value, Math):
            return self.math(value)
        return self.text(value)

    def say(self, sentence):
        """The template's text escaped for the format, its fields filled with rendered values."""
        values = {key: self.render(value) for key, value in sentence.values}
        out = []
        for literal, field, _, _ in string.Formatter().parse(sentence.template):
            out.append(self.text(literal))
            if field is not None:
                out.append(values[field])
        return "".join(out)


class HtmlWriter(Writer):
    def text(self, value):
        return html.escape(str(value), quote=False)

    def code(self, value):
        return f"<code>{html.escape(value, quote=False)}</code>"

    def math(self, value):
        return value.mathml()


_MD_SPECIAL = re.compile(r"([\\`*_]|<(?=[A-Za-z/!?]))")


class MarkdownWriter(Writer):
    def text(self, value):
        return _MD_SPECIAL.sub(r"\\\1", str(value))

    def code(self, value):
        ticks = "``" if "`" in value else "`"
        return f"{ticks}{value}{ticks}"

    def math(self, value):
        return f"${value.latex}$"


class PlainWriter(Writer):
    """Word: Unicode symbols, no markup."""


def _say(template, **values):
    return Say.of(template, **values)


# ---- reading the results ----------------------------------------------------------------------------

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


def load_results(manifest_path):
    """Every result a manifest lists (paths relative to the folder that holds results/)."""
    manifest_path = Path(manifest_path)
    manifest = read_json(manifest_path)
    base = manifest_path.resolve().parent.parent
    files = manifest["files"]

    def read(path):
        return read_json(base / path)

    figures, slopes = {}, {}
    for model, named in files.get("figure_files", {}).items():
        figures[model] = {name: base / path for name, path in named.items()}
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
        figures=figures, simple_slopes=slopes)


def file_sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def software_versions():
    """[(package, version)]: Python and the packages that computed and wrote the results."""
    rows = [("Python", platform.python_version())]
    for package in PACKAGES:
        try:
            rows.append((package, metadata.version(package)))
        except metadata.PackageNotFoundError:
            continue
    return rows


# ---- small helpers ---------------------------------------------------------------------------------

def _finite(x):
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _value(x, key="Estimate"):
    """A number from a float or from a coefficient-table row."""
    if isinstance(x, dict):
        x = x.get(key, x.get(key.lower()))
    return x if _finite(x) else None


def model_title(name, L):
    """The seed's term for a model named as the seed names it (null -> 零模型), else 'Model x'."""
    kinds = L["model_kinds"]
    return kinds[name] if name in kinds and name != "other" else kinds["other"].format(name=name)


def variable_levels(summary):
    return {v["name"]: v.get("level") for v in summary.get("variables", [])}


def _adjusted_icc(model):
    """performance::icc's adjusted ICC from Nakagawa's R²: (R²c − R²m) / (1 − R²m)."""
    marginal, conditional = model.get("r2_marginal"), model.get("r2_conditional")
    if _finite(marginal) and _finite(conditional) and marginal < 1:
        return (conditional - marginal) / (1 - marginal)
    return None


def _ci(estimate, se, df):
    if not (_finite(estimate) and _finite(se)):
        return None, None
    q = stats.t.ppf(0.975, df) if _finite(df) else stats.norm.ppf(0.975)
    return estimate - q * se, estimate + q * se


# ---- the view of one model --------------------------------------------------------------------------

def coefficient_rows(model):
    """lmerTest's coefficient table as dicts: term, estimate, se, df, t, p."""
    rows = model.get("coefficients")
    if rows:
        return [{"term": r["term"], "estimate": r.get("Estimate"), "se": r.get("Std. Error"),
                 "df": r.get("df"), "t": r.get("t value"), "p": r.get("Pr(>|t|)")} for r in rows]
    se, t = model.get("se", {}), model.get("t", {})
    return [{"term": term, "estimate": value, "se": se.get(term), "df": None, "t": t.get(term),
             "p": None} for term, value in model["fixef"].items()]


def _random_rows(model, equations, L):
    """lme4's Random effects table: one row per variance, correlations beside the later term."""
    rows = []
    varcorr = model["varcorr"]
    for row in varcorr:
        if row.get("var2"):
            continue
        grp, name = row["grp"], row.get("var1") or ""
        group = grp if grp == "Residual" else _group_of(grp, equations)
        key = ("Residual", None, None) if grp == "Residual" else (group, name, None)
        correlations = [apa.number(r["sdcor"], 2) for r in varcorr
                        if r["grp"] == grp and r.get("var2") and r["var2"] == name and _finite(r.get("sdcor"))]
        rows.append({"group": L["model"]["residual"] if grp == "Residual" else grp,
                     "name": "" if grp == "Residual" else name,
                     "symbol": equations.variance_symbols.get(key) if equations else None,
                     "variance": apa.estimate(row["vcov"], digits=4),
                     "sd": apa.estimate(row["sdcor"], digits=4),
                     "corr": " ".join(correlations)})
    return rows


def _group_of(label, equations):
    """The grouping factor of a VarCorr label ('id.1' -> 'id'), knowing the model's factors."""
    return group_of(label, {g for g, _ in equations.random_symbols} if equations else ())


def _roles(equations, coefficients):
    """term -> role (intercept, level1, level2, cross, other) from where its γ sits."""
    roles = {}
    for term in coefficients:
        symbol = equations.fixed_symbols.get(term) if equations and equations.two_level else None
        if term == INTERCEPT:
            roles[term] = "intercept"
        elif symbol is None:
            roles[term] = "other"
        else:
            p, q = _gamma_indices(symbol)
            roles[term] = "level1" if q == 0 else "level2" if p == 0 else "cross"
    return roles


def _gamma_indices(symbol):
    body = re.search(r"\\gamma_\{([^}]*)\}", symbol.template).group(1)
    if "," in body:
        p, q = body.split(",")
    else:
        p, q = body[0], body[1:]
    return int(p), int(q)


def model_view(name, model, results, L):
    """Everything the report shows of one model."""
    spec = model_specs(results.config)[name]
    formula = model["formula"]
    coefficients = coefficient_rows(model)
    terms = [r["term"] for r in coefficients]
    try:
        equations = model_equations(formula, terms, random_terms_of(model["varcorr"], formula),
                                    variable_levels(results.summary))
    except Exception as exc:  # an equation is a courtesy: never lose the report over it
        log.warning("equations of model '%s' not written: %s", name, exc)
        equations = None
    title = model_title(name, L)
    ddf = model.get("ddf") or spec.get("ddf")
    fixed = []
    for row in coefficients:
        low, high = _ci(row["estimate"], row["se"], row["df"])
        fixed.append({"term": row["term"],
                      "symbol": equations.fixed_symbols.get(row["term"]) if equations else None,
                      "estimate": apa.estimate(row["estimate"]), "se": apa.estimate(row["se"]),
                      "df": apa.df(row["df"]), "t": apa.stat(row["t"]), "p": apa.p_value(row["p"]),
                      "ci": apa.ci(low, high) if low is not None else apa.MISSING,
                      "raw": row})
    groups = model.get("ngroups", {})
    view = {
        "name": name, "title": title, "anchor": f"model-{name}", "formula": formula,
        "reml": bool(model.get("REML")),
        "method": L["model"]["REML" if model.get("REML") else "ML"],
        "optimizer": model.get("optimizer", spec.get("optimizer", "")),
        "ddf": L["model"]["ddf_names"].get(ddf, ddf or ""),
        "n": apa.integer(model.get("nobs")),
        "groups": ", ".join(f"{apa.integer(k)} ({g})" for g, k in groups.items()),
        "equations": equations,
        "fixed": fixed,
        "has_df": any(r["df"] is not None for r in coefficients),
        "random": _random_rows(model, equations, L),
        "fit": {"aic": apa.number(model.get("AIC"), 1), "bic": apa.number(model.get("BIC"), 1),
                "loglik": apa.number(model.get("logLik"), 1),
                "deviance": apa.number(model.get("deviance"), 1),
                "reml": apa.number(model.get("REMLcrit"), 1),
                "df_resid": apa.df(model.get("df_resid"))},
        "warnings": model_warnings(model, L),
        "caption_fixed": L["model"]["table_fixed"].format(model=title),
        "caption_random": L["model"]["table_random"].format(model=title),
    }
    view["narrative"] = _narrative(view, model, equations, L)
    return view


def model_warnings(model, L):
    W = L["warnings"]
    out = []
    if model.get("singular"):
        out.append(W["singular"])
    if model.get("converged") is False:
        out.append(W["not_converged"])
    for message in model.get("messages") or []:
        if "singular" in message and model.get("singular"):
            continue
        out.append(W["message"].format(message=message))
    if model.get("n_dropped"):
        out.append(W["dropped_rows"].format(n=apa.integer(model["n_dropped"])))
    return out


def _narrative(view, model, equations, L):
    N = L["narrative"]
    sentences = [_say(N["opening"], model=view["title"], name=Code(view["name"]),
                      method=view["method"], n=view["n"],
                      groups=", ".join(apa.integer(k) for k in model.get("ngroups", {}).values()))]
    fixed = view["fixed"]
    random_rows = [r for r in model["varcorr"] if not r.get("var2") and r["grp"] != "Residual"]
    residual = next((r for r in model["varcorr"] if r["grp"] == "Residual"), None)
    sym = (lambda key: equations.variance_symbols.get(key) if equations else None)
    if [r["term"] for r in fixed] == [INTERCEPT] and len(random_rows) == 1 and residual:
        row = fixed[0]
        sentences.append(_say(
            N["null_model"], g00=row["symbol"] or "γ00", estimate=row["estimate"], se=row["se"],
            tau=sym((_group_of(random_rows[0]["grp"], equations), INTERCEPT, None)) or "τ00",
            tau_value=apa.estimate(random_rows[0]["vcov"], digits=4),
            sigma=Math(r"\sigma^2"), sigma_value=apa.estimate(residual["vcov"], digits=4)))
    else:
        roles = _roles(equations, [r["term"] for r in fixed])
        effects = []
        for row in fixed:
            raw = row["raw"]
            role = N["role_" + roles[row["term"]]].format(term=row["term"])
            test = (apa.t_test(raw["t"], raw["df"], raw["p"]) if _finite(raw.get("df"))
                    else f"t = {apa.stat(raw['t'])}")
            if _finite(raw.get("p")):
                test += f" ({N['significant'] if raw['p'] < 0.05 else N['not_significant']})"
            effects.append(_say(N["effect"], role=role, symbol=row["symbol"] or row["term"],
                                estimate=row["estimate"], se=row["se"], test=test))
        sentences.append(Say(N["fixed_intro"] + "{effects}" + N["end"],
                             (("effects", _joined(effects, N["join"])),)))
        parts = []
        for r in random_rows:
            group = _group_of(r["grp"], equations)
            name = N["intercept"] if r["var1"] == INTERCEPT else r["var1"]
            parts.append(_say(N["random_variance"], name=name,
                              symbol=sym((group, r["var1"], None)) or f"{r['grp']} {r['var1']}",
                              value=apa.estimate(r["vcov"], digits=4)))
        for r in model["varcorr"]:
            if r.get("var2") and _finite(r.get("sdcor")):
                group = _group_of(r["grp"], equations)
                a = N["intercept"] if r["var1"] == INTERCEPT else r["var1"]
                parts.append(_say(N["random_corr"], a=a, b=r["var2"],
                                  symbol=sym((group, r["var1"], r["var2"])) or "ρ",
                                  value=apa.number(r["sdcor"], 2)))
        if residual:
            parts.append(_say(N["residual_variance"], symbol=Math(r"\sigma^2"),
                              value=apa.estimate(residual["vcov"], digits=4)))
        if parts:
            sentences.append(Say(N["random_intro"] + "{parts}" + N["end"],
                                 (("parts", _joined(parts, N["join"])),)))
    fit = view["fit"]
    if view["reml"]:
        sentences.append(_say(N["fit_reml"], reml=fit["reml"], aic=fit["aic"], bic=fit["bic"]))
    else:
        sentences.append(_say(N["fit"], deviance=fit["deviance"], aic=fit["aic"], bic=fit["bic"]))
    if _finite(model.get("r2_marginal")) and _finite(model.get("r2_conditional")):
        sentences.append(_say(N["r2"], marginal=apa.proportion(model["r2_marginal"]),
                              conditional=apa.proportion(model["r2_conditional"])))
    return sentences


def _joined(sentences, sep):
    out = []
    for i, sentence in enumerate(sentences):
        if i:
            out.append(sep)
        out.append(sentence)
    return out


# ---- all models side by side (sjPlot's tab_model) ---------------------------------------------

def summary_table(models, views, L):
    """Rows of the side-by-side table: fixed effects, then the random part and fit statistics."""
    S = L["summary"]
    names = list(models)
    terms = list(dict.fromkeys(r["term"] for v in views.values() for r in v["fixed"]))
    fixed = []
    for term in terms:
        cells = []
        for name in names:
            row = next((r for r in views[name]["fixed"] if r["term"] == term), None)
            cells.append({"est": f"{row['estimate']} ({row['se']})", "df": row["df"], "p": row["p"]}
                         if row else {"est": "", "df": "", "p": ""})
        fixed.append({"label": term, "cells": cells})

    random_keys, random_labels = [], {}
    for name in names:
        equations = views[name]["equations"]
        for row in models[name]["varcorr"]:
            if row["grp"] == "Residual":
                continue
            group = _group_of(row["grp"], equations)
            key = (row["grp"], row.get("var1"), row.get("var2") or None)
            if key in random_labels:
                continue
            symbol = equations.variance_symbols.get((group, row["var1"], row.get("var2") or None)) \
                if equations else None
            text = symbol.text if symbol else ("ρ" if row.get("var2") else "τ")
            suffix = row["grp"] if row["var1"] == INTERCEPT or row.get("var2") else f"{row['grp']}.{row['var1']}"
            random_keys.append(key)
            random_labels[key] = f"{text} {suffix}"
    random_keys = [k for k in random_keys if k[2] is None] + [k for k in random_keys if k[2] is not None]

    def random_value(name, key):
        row = next((r for r in models[name]["varcorr"]
                    if (r["grp"], r.get("var1"), r.get("var2") or None) == key), None)
        if row is None:
            return ""
        return apa.number(row["sdcor"], 2) if key[2] else apa.estimate(row["vcov"], digits=4)

    def each(fn):
        return [fn(models[name]) for name in names]

    group_names = list(dict.fromkeys(g for m in models.values() for g in m.get("ngroups", {})))
    other = [{"label": S["sigma2"], "values": each(
        lambda m: apa.estimate(next(r["vcov"] for r in m["varcorr"] if r["grp"] == "Residual"), digits=4))}]
    other += [{"label": random_labels[k], "values": [random_value(n, k) for n in names]} for k in random_keys]
    other.append({"label": S["icc"], "values": each(lambda m: apa.proportion(_adjusted_icc(m))
                                                      if _adjusted_icc(m) is not None else apa.MISSING)})
    for group in group_names:
        other.append({"label": S["n_groups"].format(group=group),
                      "values": each(lambda m: apa.integer(m.get("ngroups", {}).get(group))
                                     if group in m.get("ngroups", {}) else "")})
    other.append({"label": S["observations"], "values": each(lambda m: apa.integer(m.get("nobs")))})
    fit_rows = [("deviance", "deviance"), ("aic", "AIC"), ("bic", "BIC"), ("loglik", "logLik")]
    stats_rows = [{"label": S[label], "values": each(lambda m, key=key: apa.number(m.get(key), 1))}
                  for label, key in fit_rows]
    r2 = {"label": S["r2"], "values": each(
        lambda m: f"{apa.proportion(m.get('r2_marginal'))} / {apa.proportion(m.get('r2_conditional'))}")}
    return {"models": [{"name": n, "title": views[n]["title"]} for n in names], "fixed": fixed,
            "random": other, "fit": stats_rows + [r2],
            "any_reml": any(m.get("REML") for m in models.values())}


# ---- comparisons, variance explained, ICC, contextual effects --------------------------------------

def comparison_views(results, titles, L):
    C = L["comparisons"]
    views = []
    for name, record in results.comparisons.items():
        rows = record.get("table") or []
        models = record.get("models", [r.get("model") for r in rows])
        table = [{"model": r["model"], "title": titles.get(r["model"], r["model"]),
                  "npar": apa.df(r.get("npar")), "aic": apa.number(r.get("AIC"), 1),
                  "bic": apa.number(r.get("BIC"), 1), "loglik": apa.number(r.get("logLik"), 1),
                  "deviance": apa.number(r.get("deviance"), 1),
                  "chisq": apa.signif(r.get("Chisq")) if _finite(r.get("Chisq")) else "",
                  "df": apa.df(r.get("Df")) if _finite(r.get("Df")) else "",
                  "p": apa.p_value(r.get("Pr(>Chisq)", r.get("p"))) if _finite(r.get("Pr(>Chisq)", r.get("p"))) else ""}
                 for r in rows]
        sentences = []
        for previous, row in zip(rows, rows[1:]):
            chisq, df, p = row.get("Chisq"), row.get("Df"), row.get("Pr(>Chisq)", row.get("p"))
            if not (_finite(chisq) and _finite(df)):
                continue
            template = C["sentence_better"] if _finite(p) and p < 0.05 else C["sentence_not_better"]
            sentences.append(_say(template, new=titles.get(row["model"], row["model"]),
                                  old=titles.get(previous["model"], previous["model"]),
                                  test=apa.chisq_test(chisq, df, p)))
        refit = record.get("refitted_with_ML") or []
        if refit:
            sentences.append(_say(C["refit_ml"], models=", ".join(refit)))
        a = titles.get(models[-1], models[-1]) if models else name
        b = titles.get(models[0], models[0]) if models else ""
        views.append({"name": name, "caption": C["caption"].format(a=a, b=b), "rows": table,
                      "sentences": sentences})
    return views


def _component(key, model):
    """A variance-explained key -> (kind, varcorr row) in a model: 'Residual'/'sigma2' -> σ²,
    'tau00' -> the first intercept variance, 'tau11' -> the first slope variance, 'id: ses'."""
    rows = [r for r in model["varcorr"] if not r.get("var2")]
    if key in ("Residual", "sigma2"):
        return "sigma2", next((r for r in rows if r["grp"] == "Residual"), None)
    level2 = [r for r in rows if r["grp"] != "Residual"]
    if key == "tau00":
        return "tau00", next((r for r in level2 if r["var1"] == INTERCEPT), None)
    if key == "tau11":
        return "tau11", next((r for r in level2 if r["var1"] != INTERCEPT), None)
    grp, _, var = key.partition(": ")
    row = next((r for r in level2 if r["grp"] == grp and r["var1"] == var), None)
    return ("tau00" if var == INTERCEPT else "tau11"), row


def variance_views(results, views, titles, L):
    V = L["variance_explained"]
    out = []
    for name, entry in (results.derived.get("variance_explained") or {}).items():
        old, new = entry.get("old"), entry.get("new")
        if old not in results.models or new not in results.models:
            continue
        old_model, new_model = results.models[old], results.models[new]
        rows, sentences = [], []
        for key, value in (entry.get("values") or {}).items():
            kind, before = _component(key, old_model)
            _, after = _component(key, new_model)
            if before is None or after is None:
                continue
            symbol = _component_symbol(kind, after, views[new]["equations"])
            label = V["components"][kind]
            if kind == "tau11" or (before["grp"] != "Residual" and before["var1"] != INTERCEPT):
                label = f"{label} ({after['grp']}: {after['var1']})"
            elif before["grp"] != "Residual" and len({r['grp'] for r in new_model['varcorr']}) > 2:
                label = f"{label} ({after['grp']})"
            rows.append({"component": label, "symbol": symbol,
                         "before": apa.estimate(before["vcov"], digits=4),
                         "after": apa.estimate(after["vcov"], digits=4),
                         "explained": apa.percent(value) if _finite(value) else apa.MISSING,
                         "proportion": apa.proportion(value) if _finite(value) else apa.MISSING})
            if _finite(value):
                sentence = V["sentence"] + (V["negative"] if value < 0 else "")
                sentences.append(_say(sentence, old=titles.get(old, old), new=titles.get(new, new),
                                      component=label, before=apa.estimate(before["vcov"], digits=4),
                                      after=apa.estimate(after["vcov"], digits=4),
                                      value=apa.percent(value)))
        added = [t for t in new_model["fixef"] if t not in old_model["fixef"]]
        out.append({"name": name, "old": titles.get(old, old), "new": titles.get(new, new),
                    "old_name": old, "new_name": new, "rows": rows, "sentences": sentences,
                    "added": V["added"].format(terms=", ".join(added)) if added else ""})
    return out


def _component_symbol(kind, row, equations):
    if kind == "sigma2":
        return Math(r"\sigma^2")
    if equations:
        group = _group_of(row["grp"], equations)
        symbol = equations.variance_symbols.get((group, row["var1"], None))
        if symbol:
            return symbol
    return Math(r"\tau_{00}" if kind == "tau00" else r"\tau_{11}")


def icc_views(results, titles, L):
    I = L["icc"]
    out = []
    group_sizes = results.summary.get("group_sizes", {})
    for name, value in (results.derived.get("icc") or {}).items():
        model = results.models.get(name)
        value = _value(value, "icc")
        if model is None or value is None:
            continue
        level2 = [r for r in model["varcorr"] if r["grp"] != "Residual" and not r.get("var2")]
        residual = next(r for r in model["varcorr"] if r["grp"] == "Residual")
        tau = next((r for r in level2 if r["var1"] == INTERCEPT), level2[0] if level2 else None)
        group = results.summary.get("group") or (tau["grp"] if tau else "")
        sentences = [_say(I["sentence"], model=titles.get(name, name),
                          tau=apa.estimate(tau["vcov"], digits=4) if tau else "τ",
                          sigma=apa.estimate(residual["vcov"], digits=4), icc=apa.proportion(value),
                          percent=apa.percent(value), group=Code(group))]
        sentences.append(_say(I["large"] if value >= ICC_THRESHOLD else I["small"]))
        size = group_sizes.get("mean")
        if _finite(size):
            deff = 1 + (size - 1) * value
            sentences.append(_say(I["deff"], size=apa.number(size, 2), icc=apa.proportion(value),
                                  deff=apa.number(deff, 2),
                                  deff_note=I["deff_large"] if deff > 2 else I["deff_small"]))
        out.append({"name": name, "title": titles.get(name, name), "icc": apa.proportion(value),
                    "sentences": sentences})
    return out


CONTEXTUAL_EFFECTS = ("within", "between", "contextual")


def contextual_views(results, titles, L):
    K = L["contextual"]
    out = []
    for name, entry in (results.derived.get("contextual") or {}).items():
        effects = entry.get("effects") or {}
        if isinstance(effects, list):  # a table as records, in the order within/between/contextual
            effects = {row.get("effect", key): row for key, row in zip(CONTEXTUAL_EFFECTS, effects)}
        rows = []
        for key in CONTEXTUAL_EFFECTS:
            effect = effects.get(key)
            estimate = _value(effect)
            se = _value(effect, "Std. Error") if isinstance(effect, dict) else None
            df = _value(effect, "df") if isinstance(effect, dict) else None
            p = _value(effect, "Pr(>|t|)") if isinstance(effect, dict) else None
            low, high = _ci(estimate, se, df) if se is not None else (None, None)
            rows.append({"effect": K[key], "key": key,
                         "term": effect.get("term", "") if isinstance(effect, dict) else "",
                         "estimate": apa.estimate(estimate), "se": apa.estimate(se),
                         "df": apa.df(df), "p": apa.p_value(p),
                         "ci": apa.ci(low, high) if low is not None else apa.MISSING})
        model = entry.get("model", name)
        values = {r["key"]: r["estimate"] for r in rows}
        out.append({"name": name, "title": titles.get(model, model), "within": entry.get("within", ""),
                    "between": entry.get("between", ""), "centering": entry.get("centering", ""),
                    "rows": rows,
                    "sentence": _say(K["sentence"], model=titles.get(model, model), **values)})
    return out


# ---- data ----------------------------------------------------------------------------------------

def data_view(results, L):
    D = L["data"]
    summary, config = results.summary, results.config
    used = _used_columns(results)
    variables = []
    for v in summary.get("variables", []):
        if v["name"] not in used:
            continue
        level = {1: D["level_1"], 2: D["level_2"], "group": D["level_group"]}.get(v.get("level"), "")
        numeric = v.get("level") != "group" and _finite(v.get("mean"))
        variables.append({"name": v["name"], "label": v.get("label", ""), "level": level,
                          "mean": apa.estimate(v.get("mean")) if numeric else "",
                          "sd": apa.estimate(v.get("sd")) if numeric else "",
                          "min": apa.estimate(v.get("min")) if numeric else "",
                          "max": apa.estimate(v.get("max")) if numeric else "",
                          "missing": apa.integer(v.get("n_missing", 0)),
                          "value_labels": "; ".join(f"{k} = {t}" for k, t in
                                                     (v.get("value_labels") or {}).items())})
    dropped = summary.get("n_dropped", 0) or 0
    missing = config["data"].get("missing", "listwise")
    if missing == "per_model":
        dropped_text = D["dropped_per_model"]
    elif dropped:
        which = ", ".join(f"{k}: {apa.integer(n)}" for k, n in
                          (summary.get("missing_by_variable") or {}).items() if n)
        dropped_text = D["dropped_listwise"].format(n=apa.integer(dropped), which=which)
    else:
        dropped_text = D["dropped_none"]
    sizes = summary.get("group_sizes", {})
    intro = _say(D["intro"], path=Code(config["data"]["path"]),
                 n_read=apa.integer(summary.get("n_read", summary.get("n"))), dropped=dropped_text,
                 n=apa.integer(summary.get("n")), groups=apa.integer(summary.get("n_groups")),
                 group=Code(summary.get("group", config["data"]["group"])),
                 min=apa.integer(sizes.get("min")), max=apa.integer(sizes.get("max")),
                 mean=apa.number(sizes.get("mean"), 2), median=apa.df(sizes.get("median")))
    centering = []
    for variable, methods in (config.get("centering") or {}).items():
        methods = [methods] if isinstance(methods, str) else methods
        for how in methods:
            if how == "grand":
                (gmc,) = centered_columns(variable, how)
                centering.append(_say(D["centering_grand"], variable=Code(variable), new=Code(gmc)))
            elif how == "group":
                mean, cwc = centered_columns(variable, how)
                centering.append(_say(D["centering_group"], variable=Code(variable),
                                      cwc=Code(cwc), mean=Code(mean)))
    return {"intro": intro, "variables": variables, "centering": centering}


def _used_columns(results):
    used = []
    for model in results.models.values():
        for column in formula_columns(model["formula"]):
            if column not in used:
                used.append(column)
    group = results.config["data"]["group"]
    return used + ([group] if group not in used else [])


# ---- figures ----------------------------------------------------------------------------------------

def figure_views(results, titles, L):
    G = L["diagnostics"]
    out = []
    for name in results.config.get("diagnostics", []):
        files = results.figures.get(name, {})
        title = titles.get(name, name)
        figures = []
        for kind, caption in (("diagnostics", G["caption"].format(model=title)),
                              ("caterpillar", G["caterpillar_caption"].format(model=title))):
            if f"{kind}_png" in files:
                figures.append({"kind": kind, "svg": files.get(f"{kind}_svg"),
                                "png": files.get(f"{kind}_png"), "caption": caption,
                                "anchor": f"figure-{name}-{kind}"})
        slopes = None
        record = results.simple_slopes.get(name)
        if record:
            figures.append({"kind": "simple_slopes", "svg": files.get("simple_slopes_svg"),
                            "png": files.get("simple_slopes_png"), "anchor": f"figure-{name}-simple_slopes",
                            "caption": G["simple_slopes_caption"].format(
                                model=title, predictor=record["predictor"], moderator=record["moderator"])})
            slopes = {"caption": G["simple_slopes_table"].format(predictor=record["predictor"],
                                                                 moderator=record["moderator"]),
                      "moderator_header": G["moderator_value"].format(moderator=record["moderator"]),
                      "rows": [{"at": G[{"mean": "at_mean"}.get(r["at"], r["at"])],
                                "value": apa.estimate(r["moderator_value"]),
                                "estimate": apa.estimate(r["Estimate"]), "se": apa.estimate(r["Std. Error"]),
                                "df": apa.df(r.get("df")), "t": apa.stat(r["t value"]),
                                "p": apa.p_value(r["Pr(>|t|)"]),
                                "ci": apa.ci(r.get("ci_low"), r.get("ci_high"))}
                               for r in record["slopes"]]}
        out.append({"name": name, "title": title, "figures": figures, "slopes": slopes})
    return out


def inline_svg(path):
    """An SVG file's <svg> element, ready to sit inside HTML (no XML prolog or doctype); it keeps
    its natural size, and the style sheet shrinks it to the page's width when wider."""
    text = Path(path).read_text(encoding="utf-8")
    return text[text.index("<svg"):]


# ---- the whole view --------------------------------------------------------------------------------

def build_view(results, language):
    L = labels(language)
    config = results.config
    models = results.models
    titles = {name: model_title(name, L) for name in config["models"]}
    views = {name: model_view(name, models[name], results, L) for name in config["models"] if name in models}
    data_path = results.base / config["data"]["path"]
    warnings = [{"where": titles[name], "anchor": views[name]["anchor"], "messages": views[name]["warnings"]}
                for name in views if views[name]["warnings"]]
    if results.summary.get("n_dropped"):
        warnings.insert(0, {"where": L["warnings"]["data"].rstrip("：: "), "anchor": "data",
                            "messages": [L["warnings"]["dropped_rows"].format(
                                n=apa.integer(results.summary["n_dropped"]))]})
    try:
        version = metadata.version("hlm")
    except metadata.PackageNotFoundError:
        version = "?"
    return {
        "language": language, "L": L, "title": config.get("title", ""),
        "generated": L["report"]["generated"].format(version=version),
        "data": data_view(results, L),
        "models": [views[name] for name in views],
        "summary": summary_table({n: models[n] for n in views}, views, L),
        "comparisons": comparison_views(results, titles, L),
        "variance_explained": variance_views(results, views, titles, L),
        "icc": icc_views(results, titles, L),
        "contextual": contextual_views(results, titles, L),
        "diagnostics": figure_views(results, titles, L),
        "warnings": warnings,
        "software": software_versions(),
        "data_file": config["data"]["path"],
        "data_sha256": file_sha256(data_path) if data_path.is_file() else apa.MISSING,
        "config_yaml": yaml.safe_dump(config, allow_unicode=True, sort_keys=False, width=100).rstrip(),
        "command": reproduce_command(results.manifest),
    }


def reproduce_command(manifest):
    """The command that reruns the analysis on the config files the run read."""
    files = " ".join(shlex.quote(path) for path in manifest["configfiles"])
    return f"snakemake --cores 2 --configfile {files}"


# ---- writers -----------------------------------------------------------------------------------------

def _environment(writer, autoescape):
    import jinja2
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=autoescape,
                             trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
                             undefined=jinja2.StrictUndefined)
    wrap = jinja2.utils.markupsafe.Markup if autoescape else str
    env.filters["say"] = lambda value: wrap(writer.render(value))
    env.filters["sym"] = lambda value: wrap(writer.math(value)) if isinstance(value, Math) else (
        wrap(writer.text(value)) if value else "")
    env.filters["code"] = lambda value: wrap(writer.code(str(value)))
    env.filters["text"] = lambda value: wrap(writer.text(value))
    return env


def render_html(view):
    env = _environment(HtmlWriter(), autoescape=True)
    import jinja2
    env.filters["svg"] = lambda path: jinja2.utils.markupsafe.Markup(inline_svg(path)) if path else ""
    env.filters["display_math"] = lambda eqs_which: jinja2.utils.markupsafe.Markup(
        eqs_which[0].mathml_block(eqs_which[1]))
    return env.get_template("report.html.j2").render(**view)


def render_markdown(view, figure_dir=None, md_path=None):
    env = _environment(MarkdownWriter(), autoescape=False)

    def figure_link(path):
        if not path:
            return ""
        if figure_dir is None or md_path is None:
            return Path(path).name
        target = Path(figure_dir) / Path(path).name
        return Path(_relative(target, Path(md_path).parent)).as_posix()

    env.filters["figure_link"] = figure_link
    env.filters["latex_block"] = lambda eqs_which: eqs_which[0].latex_block(eqs_which[1])
    env.filters["cell"] = lambda value: str(value).replace("|", "\\|").replace("\n", " ")
    env.globals["id"] = lambda name: "{#" + name + "}"   # pandoc's {#id}, which Jinja reads as a comment
    return env.get_template("report.md.j2").render(**view)


def _relative(target, start):
    import os
    return os.path.relpath(Path(target).resolve(), Path(start).resolve())


def copy_figures(view, directory):
    """The PNG figures next to report.md (results/report/figures/)."""
    from .results import _atomic
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for block in view["diagnostics"]:
        for figure in block["figures"]:
            if figure["png"]:
                source = Path(figure["png"])
                _atomic(directory / source.name, lambda tmp, s=source: shutil.copyfile(s, tmp))


def render_report(manifest_path, outputs):
    """Write the report formats named in `outputs` (html, md, docx -> path; figures -> the
    folder for the Markdown's PNGs) from a run's results/manifest.json."""
    results = load_results(manifest_path)
    language = results.config.get("report", {}).get("language", "en")
    view = build_view(results, language)
    if "html" in outputs:
        write_text(outputs["html"], render_html(view))
    if "md" in outputs:
        figure_dir = outputs.get("figures") or Path(outputs["md"]).parent / "figures"
        if any(f["png"] for block in view["diagnostics"] for f in block["figures"]):
            copy_figures(view, figure_dir)
        write_text(outputs["md"], render_markdown(view, figure_dir, outputs["md"]))
    if "docx" in outputs:
        from .report_docx import write_docx
        write_docx(view, outputs["docx"])
    return view
