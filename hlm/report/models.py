"""The view of each model: its title, equations, tables of fixed and random effects, warnings and
the paragraph that describes it; and all models side by side (sjPlot's tab_model).
"""
import logging

from ..results.records import is_glmm_record
from . import apa
from .conditions import conditional_note, conditions_text, intercept_note
from .equations import INTERCEPT, Math, group_of, model_equations, random_terms_of
from .names import term_name, with_dummies
from .writers import Code, Say, _say, joined

log = logging.getLogger(__name__)

PRINT_BLOCK = 4   # models per block of the side-by-side table on a printed (landscape) page


def worded(section, key, summary):
    """A label in the wording of the design: with data.time level 1 is a measurement occasion
    within a person, so the label's `<key>_time` variant."""
    return section[f"{key}_time"] if summary.get("time") else section[key]


def interval(row):
    """A record row's 95% interval (ci_low, ci_high), formatted; — when it has none."""
    low, high = row.get("ci_low"), row.get("ci_high")
    return apa.ci(low, high) if apa.finite(low) and apa.finite(high) else apa.MISSING


def coefficient_rows(model):
    """lmerTest's coefficient table as dicts: term, estimate, se, df, t, p, ci_low, ci_high
    (a GLMM's z and its p under t and p)."""
    return [{"term": r["term"], "estimate": r.get("Estimate"), "se": r.get("Std. Error"),
             "df": r.get("df"), "t": r.get("t value", r.get("z value")), "p": r.get("Pr(>|t|)", r.get("Pr(>|z|)")),
             "ci_low": r.get("ci_low"), "ci_high": r.get("ci_high")} for r in model["coefficients"]]


def _random_rows(model, equations, names, L):
    """lme4's Random effects table: one row per variance, correlations beside the later term;
    a factor's several terms (lme4's id, id.1 of `(x || id)`) shown as the one factor."""
    rows = []
    varcorr = model["varcorr"]
    for row in varcorr:
        if row.get("var2"):
            continue
        grp, name = row["grp"], row.get("var1") or ""
        group = grp if grp == "Residual" else _group_of(grp, equations)
        key = ("Residual", None, None) if grp == "Residual" else (group, name, None)
        correlations = [apa.number(r["sdcor"], 2) for r in varcorr
                        if r["grp"] == grp and r.get("var2") and r["var2"] == name and apa.finite(r.get("sdcor"))]
        rows.append({"group": L["model"]["residual"] if grp == "Residual" else names.get(group, group),
                     "name": "" if grp == "Residual" else term_name(name, names, model["variables"]),
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
    if equations is not None:
        return equations.roles
    return {term: "intercept" if term == INTERCEPT else "other" for term in coefficients}


def model_view(name, model, title, names, summary, L):
    """Everything the report shows of one model; `title` its heading, `names` the variables'."""
    formula = model["formula"]
    coefficients = coefficient_rows(model)
    terms = [r["term"] for r in coefficients]
    try:
        equations = model_equations(model["response"], terms, model["terms"], model["variables"],
                                    random_terms_of(model["varcorr"], model["ngroups"]),
                                    [entry["column"] for entry in summary.get("levels") or []],
                                    with_dummies(names, model["variables"]),
                                    model.get("nested_in"))
    except Exception as exc:  # an equation is a courtesy: never lose the report over it
        log.warning("equations of model '%s' not written: %s", name, exc)
        equations = None
    ddf = model["spec"]["ddf"]
    standardized = {r["term"]: r for r in (model.get("standardized") or {}).get("coefficients", [])}
    fixed = []
    for row in coefficients:
        std = standardized.get(row["term"])
        fixed.append({"term": row["term"], "label": term_name(row["term"], names, model["variables"]),
                      "std": apa.estimate(std["Std_Coefficient"]) if std else "",
                      "std_ci": apa.ci(std["CI_low"], std["CI_high"]) if std else "",
                      "symbol": equations.fixed_symbols.get(row["term"]) if equations else None,
                      "estimate": apa.estimate(row["estimate"]), "se": apa.estimate(row["se"]),
                      "df": apa.df(row["df"]), "t": apa.stat(row["t"]), "p": apa.p_value(row["p"]),
                      "ci": interval(row), "ratio": "", "ratio_ci": "",
                      "raw": row})
    groups = model.get("ngroups", {})
    view = {
        "name": name, "title": title, "anchor": f"model-{name}", "formula": formula, "spec": model["spec"],
        "reml": bool(model.get("REML")),
        "method": L["model"]["REML" if model.get("REML") else "ML"],
        "optimizer": model["optimizer"],
        "ddf": L["model"]["ddf_names"].get(ddf, ddf),
        "n": apa.integer(model.get("nobs")),
        "groups": _groups_text(groups, names, L, always_named=True),
        "equations": equations,
        "equation_note": _equation_note(equations, names, L),
        "notation": L["model"]["notation" if equations is None or equations.two_level else "notation_combined"],
        "fixed": fixed,
        "has_df": any(r["df"] is not None for r in coefficients),
        "has_p": any(apa.finite(r["p"]) for r in coefficients),
        # what a GLMM's view (glmm_views) sets: z, its estimates' scale, exp(β) ratios, notes
        "glmm": False, "statistic": None, "estimate_header": None, "ratio": None, "ratio_ci_header": "",
        "equation_notes": [],
        "random": _random_rows(model, equations, names, L),
        "standardized": (model.get("standardized") or {}).get("method") if standardized else None,
        "fit": {"aic": apa.number(model.get("AIC"), 1), "bic": apa.number(model.get("BIC"), 1),
                "loglik": apa.number(model.get("logLik"), 1),
                "deviance": apa.number(model.get("deviance"), 1),
                "reml": apa.number(model.get("REMLcrit"), 1),
                "df_resid": apa.df(model.get("df_resid"))},
        "warnings": model_warnings(model, L) + design_warnings(model, summary, L),
        "caption_fixed": L["model"]["table_fixed"].format(model=title),
        "caption_random": L["model"]["table_random"].format(model=title),
    }
    view.update(_notes(view, L))
    view["fixed_note"] = with_sentences(view["fixed_note"], held_fixed_notes(view["fixed"], model, summary, names, L),
                                        L)
    view["narrative"] = _narrative(view, model, equations, names, summary, L)
    return view


def _equation_note(equations, names, L):
    """Why only the combined model is shown: a crossed design (naming its factors), or several
    nested factors not declared as data.levels; None when the levels are shown."""
    if equations is None or equations.two_level:
        return None
    M = L["model"]
    if not equations.crossed:
        return Say(M["generic_equation"])
    fields = [f"factor{k}" for k in range(len(equations.crossed))]
    factors = Say(L["variance_explained"]["list_sep"].join("{" + f + "}" for f in fields),
                  tuple((f, Code(names.get(g, g))) for f, g in zip(fields, equations.crossed)))
    first = equations.crossed[0]
    example = next(symbol for (group, _), symbol in equations.random_symbols.items() if group == first)
    return _say(M["crossed_equation"], factors=factors, example=example)


def _notes(view, L):
    """The model's heading line and its tables' notes, in the report's language and punctuation."""
    M, fit = L["model"], view["fit"]
    sample = M["sample"].format(n=view["n"], groups=view["groups"])
    ci = M["ci_note"] if view["has_df"] else M["ci_note_wald"]
    if view["standardized"]:
        ci += " " + M["std_notes"][view["standardized"]]
    criterion = f"REML = {fit['reml']}" if view["reml"] else f"deviance = {fit['deviance']}"
    return {"meta": M["meta"].format(method=view["method"], optimizer=view["optimizer"], ddf=view["ddf"], sample=sample),
            "fixed_note": M["fixed_note"].format(ddf=view["ddf"], ci=ci),
            "random_note": M["random_note"].format(sample=sample, aic=fit["aic"], bic=fit["bic"], loglik=fit["loglik"],
                                                   criterion=criterion, df_resid=fit["df_resid"])}


def held_fixed_notes(fixed, model, summary, names, L, ratio=None):
    """The table note's sentences on what the coefficients hold fixed: conditional main effects,
    and an intercept that extrapolates."""
    C = L["conditions"]
    return [text for text in (conditional_note(fixed, model, summary, names, C, ratio),
                              intercept_note(model, summary, names, C)) if text]


def with_sentences(note, sentences, L):
    """A note with more sentences after it, spaced as the report's language spaces sentences."""
    return L["narrative"]["sep"].join([note, *sentences])


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


FEW_VALUES = 5   # a numeric predictor with this many values or fewer may be a code


def design_warnings(model, summary, L):
    """A labelled or few-valued code entered as a number. (A two-valued outcome fitted as linear
    is one of the model's own messages, which the report lists with the others.)"""
    W = L["warnings"]
    out = []
    described = {v["name"]: v for v in summary.get("variables", [])}
    for name, variable in (model.get("variables") or {}).items():
        column = described.get(name)
        if variable["kind"] != "numeric" or column is None or column.get("derived_from"):
            continue
        few = column.get("n_values", FEW_VALUES + 1) <= FEW_VALUES and column.get("n_values", 0) > 2
        if column.get("value_labels") or few:
            out.append(W["code_as_number"].format(variable=name, n=column.get("n_values", "")))
    return out


def omnibus_sentences(model, L):
    """The type III F test of each term with several columns (a multi-level factor), APA style."""
    N = L["narrative"]
    out = []
    for row in model.get("anova") or []:
        term = next((t for t in model["terms"] if t["label"] == row["term"]), None)
        if term is None or len(term["columns"]) < 2:
            continue
        out.append(_say(N["omnibus"], term=Code(row["term"]),
                        test=apa.f_test(row["F"], row["NumDF"], row["DenDF"], row["p"])))
    return out


def effect_role(row, model, roles, names, summary, L):
    """What a coefficient is, as the paragraph says it: a dummy as a difference from the reference
    category (of a slope, for a predictor times a dummy), anything else by its role; a main effect
    of an interaction with what it is conditional on."""
    N, C = L["narrative"], L["conditions"]
    dummy = _factor_of(row["term"], model)
    if dummy and dummy[3]:
        role = N["role_dummy_slope"].format(variable=names.get(dummy[0], dummy[0]), level=dummy[1],
                                            reference=dummy[2], predictor=names.get(dummy[3], dummy[3]))
    elif dummy:
        role = N["role_dummy"].format(variable=names.get(dummy[0], dummy[0]), level=dummy[1], reference=dummy[2])
    else:
        role = N["role_" + roles[row["term"]]].format(term=row["label"])
    conditions = conditions_text(row["term"], model, summary, names, C)
    return C["role"].format(role=role, conditions=conditions) if conditions else role


def _factor_of(term, model):
    """(variable, level, reference, slope_of) when a coefficient is one dummy of a factor
    (slope_of None) or a numeric variable times one dummy (slope_of: that variable), else None."""
    variables = model.get("variables") or {}
    for entry in model.get("terms") or []:
        if term not in entry["columns"] or len(entry["variables"]) > 2:
            continue
        factors = [v for v in entry["variables"] if variables.get(v, {}).get("kind") == "factor"]
        numeric = [v for v in entry["variables"] if v not in factors]
        if len(factors) != 1 or len(numeric) > 1:
            continue
        name, info = factors[0], variables[factors[0]]
        for level in info["levels"]:
            if f"{name}{level}" in term.split(":"):
                return name, level, info["reference"], (numeric[0] if numeric else None)
    return None


def _narrative(view, model, equations, names, summary, L):
    N = L["narrative"]
    sentences = [_say(N["opening"], model=view["title"], method=view["method"], n=view["n"],
                      units=worded(N, "units", summary), groups=_groups_text(model.get("ngroups", {}), names, L))]
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
            sigma=Math(r"\sigma^2"), sigma_value=apa.estimate(residual["vcov"], digits=4),
            within=worded(N, "within", summary)))
    else:
        roles = _roles(equations, [r["term"] for r in fixed])
        effects = []
        for row in fixed:
            raw = row["raw"]
            role = effect_role(row, model, roles, names, summary, L)
            test = (apa.t_test(raw["t"], raw["df"], raw["p"]) if apa.finite(raw.get("df"))
                    else f"t = {apa.stat(raw['t'])}")
            if apa.finite(raw.get("p")):
                test += N["verdict"].format(verdict=N["significant"] if raw["p"] < 0.05 else N["not_significant"])
            effects.append(_say(N["effect"], role=role, symbol=row["symbol"] or row["term"],
                                estimate=row["estimate"], se=row["se"], test=test))
        sentences.append(Say(N["fixed_intro"] + "{effects}" + N["end"],
                             (("effects", joined(effects, N["join"])),)))
        extrapolation = intercept_note(model, summary, names, L["conditions"])
        if extrapolation:
            sentences.append(_say("{text}", text=extrapolation))
        sentences.extend(omnibus_sentences(model, L))
        parts = []
        for r in random_rows:
            group = _group_of(r["grp"], equations)
            name = N["intercept"] if r["var1"] == INTERCEPT else term_name(r["var1"], names, model["variables"])
            if len(model.get("ngroups", {})) > 1:
                name = f"{name} ({r['grp']})"
            parts.append(_say(N["random_variance"], name=name,
                              symbol=sym((group, r["var1"], None)) or f"{r['grp']} {r['var1']}",
                              value=apa.estimate(r["vcov"], digits=4)))
        for r in model["varcorr"]:
            if r.get("var2") and apa.finite(r.get("sdcor")):
                group = _group_of(r["grp"], equations)
                a = N["intercept"] if r["var1"] == INTERCEPT else term_name(r["var1"], names, model["variables"])
                parts.append(_say(N["random_corr"], a=a, b=term_name(r["var2"], names, model["variables"]),
                                  symbol=sym((group, r["var1"], r["var2"])) or "ρ",
                                  value=apa.number(r["sdcor"], 2)))
        if residual:
            parts.append(_say(N["residual_variance"], symbol=Math(r"\sigma^2"),
                              value=apa.estimate(residual["vcov"], digits=4)))
        if parts:
            sentences.append(Say(N["random_intro"] + "{parts}" + N["end"],
                                 (("parts", joined(parts, N["join"])),)))
    fit = view["fit"]
    if view["reml"]:
        sentences.append(_say(N["fit_reml"], reml=fit["reml"], aic=fit["aic"], bic=fit["bic"]))
    else:
        sentences.append(_say(N["fit"], deviance=fit["deviance"], aic=fit["aic"], bic=fit["bic"]))
    if apa.finite(model.get("r2_marginal")) and apa.finite(model.get("r2_conditional")):
        sentences.append(_say(N["r2"], marginal=apa.proportion(model["r2_marginal"]),
                              conditional=apa.proportion(model["r2_conditional"])))
    return sentences


def _groups_text(ngroups, names, L, always_named=False):
    """'160' for one grouping factor (named too with always_named: '160 (School ID)'); '1,721
    (childid), 60 (schoolid)' for several, in the report's language's punctuation."""
    if len(ngroups) == 1 and not always_named:
        return apa.integer(next(iter(ngroups.values())))
    return L["variance_explained"]["list_sep"].join(
        L["model"]["group_count"].format(n=apa.integer(k), group=names.get(g, g)) for g, k in ngroups.items())


def summary_table(models, views, L, names=None, summary=None):
    """Rows of the side-by-side table: fixed effects, then the random part and fit statistics.
    A GLMM's column shows z instead of df and its odds or rate ratios; a table of GLMMs only has
    the latent level-1 variance where σ² would be. Groups are counted as J (as everywhere in
    the report), by their names; `summary` (the data's) words the observations of repeated measures."""
    S, labels_of = L["summary"], names or {}
    names = list(models)

    def _is_glmm(name):
        return is_glmm_record(models[name])
    rows_of = {r["term"]: r for v in views.values() for r in v["fixed"]}
    fixed = []
    for term in rows_of:
        cells = []
        for name in names:
            row = next((r for r in views[name]["fixed"] if r["term"] == term), None)
            cells.append({"est": f"{row['estimate']} ({row['se']})", "df": row["t"] if _is_glmm(name) else row["df"],
                          "p": row["p"], "std": f"{row['std']} {row['std_ci']}" if row["std"] else "",
                          "ratio": f"{row['ratio']} {row['ratio_ci']}" if row.get("ratio") else ""}
                         if row else {"est": "", "df": "", "p": "", "std": "", "ratio": ""})
        fixed.append({"label": rows_of[term]["label"], "cells": cells})

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
            suffix = group if row["var1"] == INTERCEPT or row.get("var2") else f"{group}.{row['var1']}"
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
    other = [{"label": S["sigma2"], "values": each(lambda m: apa.estimate(next(
        (r["vcov"] for r in m["varcorr"] if r["grp"] == "Residual"), None), digits=4) if not is_glmm_record(m) else "")}]
    if all(is_glmm_record(m) for m in models.values()):   # no residual variance: the latent level-1 variance
        other = [glmm_level1_row(models, L)]
    other += [{"label": random_labels[k], "values": [random_value(n, k) for n in names]} for k in random_keys]
    adjusted = any(_several_variances(m) for m in models.values())
    other.append({"label": S["icc_adjusted" if adjusted else "icc"],
                  "values": each(lambda m: apa.proportion(m.get("icc_adjusted")))})
    for group in group_names:
        other.append({"label": S["n_groups"].format(group=labels_of.get(group, group)),
                      "values": each(lambda m: apa.integer(m.get("ngroups", {}).get(group))
                                     if group in m.get("ngroups", {}) else "")})
    other.append({"label": worded(S, "observations", summary or {}),
                  "values": each(lambda m: apa.integer(m.get("nobs")))})
    fit_rows = [("deviance", "deviance"), ("aic", "AIC"), ("bic", "BIC"), ("loglik", "logLik")]
    stats_rows = [{"label": S[label], "values": each(lambda m, key=key: apa.number(m.get(key), 1))}
                  for label, key in fit_rows]
    r2 = {"label": S["r2"], "values": each(
        lambda m: f"{apa.proportion(m.get('r2_marginal'))} / {apa.proportion(m.get('r2_conditional'))}")}
    standardized = next((views[n]["standardized"] for n in names if views[n]["standardized"]), None)
    return {"models": [{"name": n, "title": views[n]["title"],
                        "estimate_header": views[n].get("summary_estimate_header", S["estimate_se"]),
                        "stat_header": views[n]["statistic"] if views[n].get("glmm") else L["model"]["df"],
                        "ratio_header": views[n].get("ratio_ci_header", "")}
                       for n in names], "fixed": fixed,
            "ratio": any(views[n].get("ratio") for n in names),
            "glmm": any(views[n].get("glmm") for n in names),
            "all_glmm": all(views[n].get("glmm") for n in names),
            "standardized": standardized, "print_block": PRINT_BLOCK,
            "random": other, "fit": stats_rows + [r2],
            "any_reml": any(m.get("REML") for m in models.values())}


def _several_variances(model):
    """More than one random-effect variance (random slopes, several factors): performance's adjusted
    ICC is then not the τ00 / (τ00 + σ²) of a random-intercept model."""
    return sum(1 for r in model["varcorr"] if r["grp"] != "Residual" and not r.get("var2")) > 1


def glmm_level1_row(models, L):
    """The side-by-side row of the latent level-1 variance (π²/3 for logit), which GLMMs fix."""
    G = L["glmm"]
    kinds = {m["level1_variance"]["kind"] for m in models.values()}
    label = G["level1_row"].format(kind=", ".join(G["level1_short"][k] for k in sorted(kinds)))
    return {"label": label, "values": [apa.estimate(m["level1_variance"]["value"], digits=4) for m in models.values()]}
