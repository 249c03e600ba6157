"""The views of the report's other sections: the data, likelihood-ratio tests, variance
explained, the ICC, contextual effects and the figures.
"""
import re
from pathlib import Path

from ..data import centered_columns
from ..results.records import is_glmm_record
from . import apa
from .equations import INTERCEPT, Math
from .glmm_views import (
    comparison_note,
    dharma_caption,
    glmm_check_sentences,
    glmm_icc_sentences,
    variance_note,
)
from .models import _group_of, interval, worded
from .names import term_name
from .writers import Code, _say, joined

ICC_THRESHOLD = 0.059   # the seed: "ICC不应该低于0.059" (Cohen's medium effect)


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
                  "chisq": apa.signif(r.get("Chisq")) if apa.finite(r.get("Chisq")) else "",
                  "df": apa.df(r.get("Df")) if apa.finite(r.get("Df")) else "",
                  "p": apa.p_value(r.get("Pr(>Chisq)", r.get("p"))) if apa.finite(r.get("Pr(>Chisq)", r.get("p"))) else ""}
                 for r in rows]
        sentences = []
        for previous, row in zip(rows, rows[1:]):
            chisq, df, p = row.get("Chisq"), row.get("Df"), row.get("Pr(>Chisq)", row.get("p"))
            if not (apa.finite(chisq) and apa.finite(df)):
                continue
            template = C["sentence_better"] if apa.finite(p) and p < 0.05 else C["sentence_not_better"]
            sentences.append(_say(template, new=titles.get(row["model"], row["model"]),
                                  old=titles.get(previous["model"], previous["model"]),
                                  test=apa.chisq_test(chisq, df, p)))
        compared = [results.models[m] for m in models if m in results.models]
        if compared and all(is_glmm_record(m) for m in compared):
            sentences.append(comparison_note(compared[0], L))
        if record.get("bootstrap"):
            sentences.append(_bootstrap_sentence(record["bootstrap"], compared, C))
        refit = record.get("refitted_with_ML") or []
        if refit:
            sentences.append(_say(C["refit_ml"], models=L["variance_explained"]["list_sep"].join(
                titles.get(m, m) for m in refit)))
        a = titles.get(models[-1], models[-1]) if models else name
        b = titles.get(models[0], models[0]) if models else ""
        boot = record.get("bootstrap")
        for row in table:
            row["p_bootstrap"] = apa.p_value(boot["p_bootstrap"]) if boot and row["p"] else ""
        views.append({"name": name, "caption": C["caption"].format(a=a, b=b), "rows": table,
                      "sentences": sentences, "bootstrap": bool(boot)})
    return views


def _bootstrap_sentence(boot, compared, C):
    """PBmodcomp's p-value beside the χ² test, with the replicates that counted and those that
    failed; why the χ² test falls short: a tested variance on its boundary, or, when the models
    differ only in fixed effects, finite samples (nothing said without the models' records)."""
    why = ""
    if len(compared) == 2:
        a, b = (_variances(m) for m in compared)
        if {r[:2] for r in a if not r[2]} != {r[:2] for r in b if not r[2]}:
            why = C["bootstrap_boundary"]      # a variance tested: 0 is its boundary
        elif a == b:
            why = C["bootstrap_fixed"]         # the same random effects: only fixed effects tested
    values = {"nsim": apa.integer(boot["nsim"]), "p": apa.p_value(boot["p_bootstrap"], with_symbol=True),
              "used": apa.integer(boot["n_positive"]), "failed": apa.integer(boot["failed"]),
              "seed": str(boot["seed"]), "why": why}
    return _say(C["bootstrap"] + (C["bootstrap_failed"] if boot["failed"] else ""), **values)


def _variances(model):
    """The random-effect (co)variances of a model record as (grouping factor, var1, var2); lme4's
    label of a repeated factor (id.1 in (1 | id) + (0 + x | id)) read as the factor itself."""
    return {(re.sub(r"\.\d+$", "", r["grp"]), r.get("var1"), r.get("var2") or "")
            for r in model["varcorr"] if r["grp"] != "Residual"}


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


def variance_views(results, views, titles, names, L):
    V = L["variance_explained"]
    levels = [entry["column"] for entry in results.summary.get("levels") or []]
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
            label = _component_label(kind, before, after, new_model, levels, names, V)
            rows.append({"component": label, "symbol": symbol,
                         "before": apa.estimate(before["vcov"], digits=4),
                         "after": apa.estimate(after["vcov"], digits=4),
                         "explained": apa.percent(value) if apa.finite(value) else apa.MISSING,
                         "proportion": apa.proportion(value) if apa.finite(value) else apa.MISSING})
            if apa.finite(value):
                shown_negative = round(100 * value, 1) < 0     # "0.0%" needs no note on negative values
                sentence = V["sentence"] + (V["negative"] if shown_negative else "")
                sentences.append(_say(sentence, old=titles.get(old, old), new=titles.get(new, new),
                                      component=label, before=apa.estimate(before["vcov"], digits=4),
                                      after=apa.estimate(after["vcov"], digits=4),
                                      value=apa.percent(value)))
        if is_glmm_record(new_model):
            sentences.append(variance_note(titles.get(old, old), titles.get(new, new), new_model, L))
        added = [t for t in new_model["fixef"] if t not in old_model["fixef"]]
        out.append({"name": name, "old": titles.get(old, old), "new": titles.get(new, new),
                    "old_name": old, "new_name": new, "rows": rows, "sentences": sentences,
                    "added": V["added"].format(terms=V["list_sep"].join(
                        term_name(t, names, new_model["variables"]) for t in added)) if added else ""})
    return out


def _component_label(kind, before, after, new_model, levels, names, V):
    """'Level-1 residual variance σ²', 'Level-2 intercept variance τ00', and with several
    grouping factors the factor named; with data.levels, each factor's own level number; a
    slope's variable by its label."""
    if kind == "sigma2":
        return V["components"]["sigma2"]
    variable = term_name(after["var1"], names, new_model["variables"])
    level = _factor_level(after["grp"], levels) if len(levels) > 1 else None
    if level is not None:
        key = "intercept_at_level" if after["var1"] == INTERCEPT else "slope_at_level"
        return V["components"][key].format(level=level, group=after["grp"], variable=variable)
    label = V["components"][kind]
    if kind == "tau11" or before["var1"] != INTERCEPT:
        return f"{label} ({after['grp']}: {variable})"
    if len({r['grp'] for r in new_model['varcorr']}) > 2:
        return f"{label} ({after['grp']})"
    return label


def _factor_level(group, levels):
    """The level of a grouping factor: 'childid:schoolid' (schoolid/childid) -> childid's."""
    column = group if group in levels else group.split(":")[0]
    return levels.index(column) + 2 if column in levels else None


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
    """One view per icc model: the seed's two-level sentences, each level's share and
    correlation for three levels, the adjusted ICC for random slopes, or 'undefined'."""
    I = L["icc"]
    out = []
    by_level = results.derived.get("icc_levels") or {}
    for name, value in (results.derived.get("icc") or {}).items():
        model, levels = results.models.get(name), by_level.get(name, {})
        title = titles.get(name, name)
        if model is None:
            continue
        if is_glmm_record(model) and apa.finite(value):
            deff = _design_effect_sentences(name, value, results, I)
            sentences = [*glmm_icc_sentences(value, model, title, L), _threshold_sentence(value, deff, I, "below"), *deff]
        elif levels.get("kind") == "undefined":
            sentences = [_say(I["undefined"], model=title, groups=", ".join(levels["zero"]))]
        elif levels.get("kind") == "adjusted" and apa.finite(value):
            sentences = [_say(I["adjusted"], model=title, icc=apa.proportion(value))]
        elif len(levels.get("levels", [])) > 1:
            sentences = _icc_levels_sentences(levels, title, results.summary, L)
        elif apa.finite(value):
            sentences = _icc_two_level_sentences(name, value, model, results, title, I)
        else:
            continue
        out.append({"name": name, "title": title, "icc": apa.proportion(value) if apa.finite(value) else "",
                    "sentences": sentences})
    return out


def _icc_two_level_sentences(name, value, model, results, title, I):
    level2 = [r for r in model["varcorr"] if r["grp"] != "Residual" and not r.get("var2")]
    residual = next(r for r in model["varcorr"] if r["grp"] == "Residual")
    tau = next((r for r in level2 if r["var1"] == INTERCEPT), level2[0] if level2 else None)
    group = results.summary.get("group") or (tau["grp"] if tau else "")
    sentences = [_say(I["sentence"], model=title,
                      tau=apa.estimate(tau["vcov"], digits=4) if tau else "τ",
                      sigma=apa.estimate(residual["vcov"], digits=4), icc=apa.proportion(value),
                      percent=apa.percent(value), group=Code(group), rest=worded(I, "rest", results.summary))]
    deff = _design_effect_sentences(name, value, results, I)
    return [*sentences, _threshold_sentence(value, deff, I, "below"), *deff]


def _threshold_sentence(value, design_effects, I, where):
    """The ICC against the 0.059 rule of thumb, pointing to the design effect (said `where`: below or
    above) when the report gives one."""
    kind = "large" if value >= ICC_THRESHOLD else "small"
    return _say(I[kind], where=I[where]) if design_effects else _say(I[f"{kind}_plain"])


def _design_effect_sentences(name, value, results, I):
    deff = (results.derived.get("design_effect") or {}).get(name, {})
    if not apa.finite(deff.get("value")):
        return []
    return [_say(I["deff"], size=apa.number(deff["mean_group_size"], 2), icc=apa.proportion(value),
                 deff=apa.number(deff["value"], 2), deff_note=I["deff_large"] if deff["value"] > 2 else I["deff_small"])]


def _icc_levels_sentences(record, title, summary, L):
    """Each level's share of the total variance and the correlation within its units, every
    fraction printed with the numbers it is computed from."""
    I = L["icc"]
    levels = sorted(record["levels"], key=lambda e: -(e["level"] or 0))
    variances = [apa.estimate(e["variance"], digits=4) for e in levels]
    sigma = apa.estimate(record["residual"], digits=4)
    total = apa.estimate(record["total"], digits=4)
    shares = [_say(I["share"], level=e["level"] or "?", group=Code(e["column"]), percent=apa.percent(e["share"]),
                   tau=tau, total=total) for e, tau in zip(levels, variances)]
    sentences = [_say(I["three_level"], model=title, sum=" + ".join([*variances, sigma]), total=total,
                      shares=joined(shares, I["share_join"]),
                      residual=apa.percent(record["residual_share"]), sigma=sigma,
                      within=worded(I, "within", summary))]
    for k, entry in enumerate(levels):
        above = [tau for e, tau in zip(levels[:k + 1], variances[:k + 1])
                 if e["level"] is not None and entry["level"] is not None]
        numerator = f"({' + '.join(above)})" if len(above) > 1 else variances[k]
        sentences.append(_say(I["correlation"], group=Code(entry["column"]), numerator=numerator, total=total,
                              units1=worded(L["data"], "units1", summary),
                              icc=apa.proportion(entry["correlation"]), icc_exact=apa.number(entry["correlation"], 4),
                              size=apa.number(entry["mean_size"], 2),
                              deff=apa.number(entry["design_effect"], 2)))
    first = levels[-1]["correlation"]
    sentences.append(_say(I["large"] if first >= ICC_THRESHOLD else I["small"], where=I["above"]))
    return sentences


CONTEXTUAL_EFFECTS = ("within", "between", "contextual")


def contextual_views(results, titles, names, L):
    K = L["contextual"]
    out = []
    for name, entry in (results.derived.get("contextual") or {}).items():
        variables = results.models.get(entry.get("model", name), {}).get("variables", {})
        rows = []
        for key in CONTEXTUAL_EFFECTS:
            effect = entry["effects"][key]
            rows.append({"effect": K[key], "key": key, "term": effect["term"],
                         "label": _contrast_name(effect["term"], names, variables) if effect["term"] else "",
                         "estimate": apa.estimate(effect["Estimate"]), "se": apa.estimate(effect["Std. Error"]),
                         "df": apa.df(effect["df"]), "p": apa.p_value(effect["Pr(>|t|)"]),
                         "ci": interval(effect)})
        model = entry.get("model", name)
        values = {r["key"]: r["estimate"] for r in rows}
        out.append({"name": name, "title": titles.get(model, model), "within": entry.get("within", ""),
                    "between": entry.get("between", ""), "centering": entry.get("centering", ""),
                    "rows": rows,
                    "sentence": _say(K["sentence"], model=titles.get(model, model), **values)})
    return out


def _contrast_name(term, names, variables):
    """A contextual effect's term by its labels: 'ses_mean - ses_cwc' -> 'SES (group mean) − SES
    (group-mean centred)'; a single coefficient as term_name names it."""
    parts = re.split(r" ([-+]) ", term)
    signs = {"-": " − ", "+": " + "}
    return "".join(signs[p] if p in signs else term_name(p, names, variables) for p in parts)


def data_view(results, names, L):
    D = L["data"]
    summary, config = results.summary, results.config
    used = _used_columns(results)
    variables = [_variable_row(v, D, names) for v in summary.get("variables", []) if v["name"] in used]
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
    return {"intro": _data_intro(summary, config, dropped_text, L), "variables": variables,
            "centering": centering}


def _data_intro(summary, config, dropped_text, L):
    """The seed's sentence for two levels; for more, N and then one clause per level."""
    D = L["data"]
    levels = summary.get("levels") or []
    if len(levels) <= 1 and not summary.get("time"):
        return _say(D["intro"], path=Code(config["data"]["path"]),
                    n_read=apa.integer(summary.get("n_read", summary.get("n"))), dropped=dropped_text,
                    n=apa.integer(summary.get("n")), groups=apa.integer(summary.get("n_groups")),
                    group=Code(summary.get("group", config["data"]["group"])),
                    sizes=_sizes(summary.get("group_sizes", {}), D["sizes_range"], D["sizes_equal"]))
    time = _say(D["time"], time=Code(summary["time"]), person=Code(levels[0]["column"])) if summary.get("time") else ""
    units1 = worded(D, "units1", summary)
    parts = [_say(D["intro_levels"], path=Code(config["data"]["path"]),
                  n_read=apa.integer(summary.get("n_read", summary.get("n"))), dropped=dropped_text,
                  n=apa.integer(summary.get("n")), units1=units1, time=time)]
    for entry in levels:
        sizes = _sizes(entry, D["level_sizes_range"], D["level_sizes_equal"], units1=units1)
        clause = [_say(D["level_sentence"], level=entry["level"], units=apa.integer(entry["units"]),
                       group=Code(entry["column"]), sizes=sizes)]
        below = entry.get("units_below")
        if below and below["min"] == below["max"]:
            clause.append(_say(D["level_below_equal"], below=Code(below["column"]), below_n=apa.integer(below["min"])))
        elif below:
            clause.append(_say(D["level_below"], below=Code(below["column"]), below_min=apa.integer(below["min"]),
                               below_max=apa.integer(below["max"]), below_median=apa.df(below["median"])))
        parts.append(L["narrative"]["sep"])
        parts.extend([*clause, D["level_end"]])
    return parts


def _sizes(sizes, range_template, equal_template, **values):
    """How many units each group holds: '14 to 67 per group (M = 44.91, Mdn = 47)', or '10 per
    group' when every group has the same size (then M and Mdn say nothing more)."""
    if sizes.get("min") is not None and sizes.get("min") == sizes.get("max"):
        return _say(equal_template, n=apa.integer(sizes["min"]), **values)
    return _say(range_template, min=apa.integer(sizes.get("min")), max=apa.integer(sizes.get("max")),
                mean=apa.number(sizes.get("mean"), 2), median=apa.df(sizes.get("median")), **values)


def _variable_row(v, D, names):
    """A row of Table 1: a level-k variable described over the units of level k; a factor as
    the count and percentage of each category, by its label; an id as structure only."""
    level = v.get("level")
    if level == "group":
        level_text = D["level_group"]
    elif level in (None, 1):
        level_text = D["level_1"] if level == 1 else ""
    else:
        level_text = D["level_units"].format(level=level, units=apa.integer(v.get("units")), unit=v.get("unit"))
    numeric = level != "group" and apa.finite(v.get("mean"))
    counts = v.get("counts")
    if counts:
        total = sum(counts.values()) or 1
        values = D["list_separator"].join(D["counts"].format(label=k, n=apa.integer(n), percent=apa.percent(n / total))
                           for k, n in counts.items())
    else:
        values = D["list_separator"].join(f"{k} = {t}" for k, t in (v.get("value_labels") or {}).items())
    return {"name": v["name"], "label": names.get(v["name"], ""), "level": level_text,
            "mean": apa.estimate(v.get("mean")) if numeric else "",
            "sd": apa.estimate(v.get("sd")) if numeric else "",
            "min": apa.estimate(v.get("min")) if numeric else "",
            "max": apa.estimate(v.get("max")) if numeric else "",
            "missing": apa.integer(v.get("n_missing", 0)), "value_labels": values,
            "values_after_label": D["value_list"].format(values=values) if values else ""}


def _used_columns(results):
    """The data columns the models read (their records' data_columns), and the group."""
    used = list(dict.fromkeys(c for model in results.models.values() for c in model["data_columns"]))
    levels = results.config["data"].get("levels") or [results.config["data"]["group"]]
    return used + [level for level in levels if level not in used]


def figure_views(results, titles, names, L):
    G = L["diagnostics"]
    out = []
    for name in results.config.get("diagnostics", []):
        files = results.figures.get(name, {})
        title = titles.get(name, name)
        glmm = is_glmm_record(results.models.get(name, {}))
        figures = []
        residual_caption = dharma_caption(results.models[name], title, L) if glmm else G["caption"].format(model=title)
        for kind, caption in (("diagnostics", residual_caption),
                              ("caterpillar", G["caterpillar_caption"].format(model=title))):
            if f"{kind}_png" in files:
                figures.append(_figure(files, kind, caption, name))
        trajectory = results.trajectories.get(name)
        if trajectory and "trajectory_png" in files:
            figures.append(_figure(files, "trajectory", G["trajectory_caption"].format(
                model=title, unit=trajectory["unit"], units=apa.integer(trajectory["n_units"]),
                shown=len(trajectory["lines"]), time=trajectory["time"]), name))
        slopes, sentences = None, (glmm_check_sentences(results.models[name], title, L) if glmm else [])
        record = results.simple_slopes.get(name)
        if record:
            shown = {**record, "predictor": names.get(record["predictor"], record["predictor"]),
                     "moderator": names.get(record["moderator"], record["moderator"])}  # by their labels
            caption_key = "simple_slopes_caption" if record.get("moderator_kind", "continuous") == "continuous" \
                else "simple_slopes_caption_values"
            figures.append(_figure(files, "simple_slopes", G[caption_key].format(
                model=title, predictor=shown["predictor"], moderator=shown["moderator"]), name))
            slopes = _slopes_table(shown, G, L)
            if record.get("johnson_neyman"):
                sentences.extend(_johnson_neyman_sentences(shown, G))
                if "johnson_neyman_png" in files:
                    figures.append(_figure(files, "johnson_neyman", G["jn_caption"].format(
                        model=title, predictor=shown["predictor"], moderator=shown["moderator"]), name))
        if name in results.models:
            sentences.extend(_not_probed(results.models[name], G, record))
        out.append({"name": name, "title": title, "figures": figures, "slopes": slopes, "sentences": sentences})
    return out


def _figure(files, kind, caption, name):
    return {"kind": kind, "svg": files.get(f"{kind}_svg"), "png": files.get(f"{kind}_png"), "caption": caption,
            "anchor": f"figure-{name}-{kind}"}


def _slopes_table(record, G, L):
    """The simple slopes' table: t tests with the model's df, or a GLMM's Wald z tests on the link
    scale with exp(slope) as odds or rate ratios."""
    def at(row):
        key = row["at"]
        return G[{"mean": "at_mean"}.get(key, key)] if key in ("minus_sd", "mean", "plus_sd") else row.get("label", key)

    glmm = bool(record.get("family"))
    ratio = L["glmm"]["ratio"].get(record["link"]) if glmm and record.get("ratio_name") else None
    return {"caption": G["simple_slopes_table"].format(predictor=record["predictor"], moderator=record["moderator"]),
            "moderator_header": record["moderator"],
            # a number beside "Mean − 1 SD"; a category is its own value
            "has_value": any(apa.finite(r["moderator_value"]) for r in record["slopes"]),
            "has_df": not glmm,   # a z test has no df
            "statistic": "z" if glmm else "t", "ratio": ratio,
            "ratio_ci_header": L["glmm"]["ratio_ci"].format(ratio=ratio) if ratio else "",
            "note": _slopes_note(record, G, L),
            "rows": [{"at": at(r),
                      "value": apa.estimate(r["moderator_value"]) if apa.finite(r["moderator_value"]) else "",
                      "estimate": apa.estimate(r["Estimate"]), "se": apa.estimate(r["Std. Error"]),
                      "df": apa.df(r.get("df")), "t": apa.stat(r["t value"]), "p": apa.p_value(r["Pr(>|t|)"]),
                      "ci": apa.ci(r.get("ci_low"), r.get("ci_high")),
                      "ratio": apa.estimate(r["ratio"]) if ratio else "",
                      "ratio_ci": apa.ci(r["ratio_low"], r["ratio_high"]) if ratio else ""}
                     for r in record["slopes"]]}


def _slopes_note(record, G, L):
    """What the simple slopes test, and for a numeric moderator over which rows its mean and SD go."""
    note = L["glmm"]["simple_slopes_note"][record["family"]] if record.get("family") else G["simple_slopes_note"]
    if record.get("moderator_kind", "continuous") != "continuous":
        return note
    return L["narrative"]["sep"].join([note, G["moderator_points"].format(moderator=record["moderator"])])


def _johnson_neyman_sentences(record, G):
    """Where the simple slope is significant, in the moderator's values, against its observed range;
    `record` names the predictor and moderator as the report does (by their labels)."""
    jn = record["johnson_neyman"]
    low, high = jn["observed"]
    bounds = [apa.estimate(b) for b in jn["bounds"]]
    values = {"predictor": record["predictor"], "moderator": record["moderator"],
              "low": apa.estimate(low), "high": apa.estimate(high)}
    if len(bounds) == 2:
        key = "jn_inside" if jn["significant_inside"] else "jn_outside"
        sentences = [_say(G[key], a=bounds[0], b=bounds[1], **values)]
    elif len(bounds) == 1:
        sentences = [_say(G["jn_one"], a=bounds[0], **values)]
    else:
        return [_say(G["jn_none"], **values)]
    observed = [p for x, p in zip(jn["curve"]["x"], jn["curve"]["p"]) if low <= x <= high]
    if observed and all(p < jn["alpha"] for p in observed):
        sentences.append(_say(G["jn_everywhere"], **values))
    elif observed and all(p >= jn["alpha"] for p in observed):
        sentences.append(_say(G["jn_nowhere"], **values))
    return sentences


def _not_probed(model, G, probed=None):
    """One sentence per interaction term the simple slopes did not probe, saying why; `probed`
    is the simple-slopes record of the one they did (None when none)."""
    variables = model.get("variables") or {}
    probed_pair = {probed["predictor"], probed["moderator"]} if probed else None
    mains = {term["label"] for term in model.get("terms") or [] if len(term["variables"]) == 1}
    out = []
    for term in model.get("terms") or []:
        names = term["variables"]
        if len(names) < 2 or set(names) == probed_pair:
            continue
        if len(names) > 2:
            reason = G["not_probed_three_way"]
        elif any("(" in v and not v.startswith(("factor(", "as.factor(")) for v in names):
            reason = G["not_probed_transformed"]
        elif all(variables.get(v, {}).get("kind") == "factor" for v in names):
            reason = G["not_probed_factors"]
        elif probed_pair and set(names) <= mains:
            reason = _say(G["not_probed_one_per_model"], predictor=Code(probed["predictor"]),
                          moderator=Code(probed["moderator"]))
        else:
            reason = G["not_probed_main_effects"]
        out.append(_say(G["not_probed"], term=Code(term["label"]), reason=reason))
    return out


def inline_svg(path):
    """An SVG file's <svg> element, ready to sit inside HTML (no XML prolog or doctype); it keeps
    its natural size, and the style sheet shrinks it to the page's width when wider."""
    text = Path(path).read_text(encoding="utf-8")
    return text[text.index("<svg"):]
