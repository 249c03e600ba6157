"""The views of the report's other sections: the data, likelihood-ratio tests, variance
explained, the ICC, contextual effects and the figures.
"""
from pathlib import Path

from ..data import centered_columns
from . import apa
from .equations import INTERCEPT, Math
from .models import _group_of, interval
from .names import term_name
from .writers import Code, _say

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


def variance_views(results, views, titles, names, L):
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
                         "explained": apa.percent(value) if apa.finite(value) else apa.MISSING,
                         "proportion": apa.proportion(value) if apa.finite(value) else apa.MISSING})
            if apa.finite(value):
                shown_negative = round(100 * value, 1) < 0     # "0.0%" needs no note on negative values
                sentence = V["sentence"] + (V["negative"] if shown_negative else "")
                sentences.append(_say(sentence, old=titles.get(old, old), new=titles.get(new, new),
                                      component=label, before=apa.estimate(before["vcov"], digits=4),
                                      after=apa.estimate(after["vcov"], digits=4),
                                      value=apa.percent(value)))
        added = [t for t in new_model["fixef"] if t not in old_model["fixef"]]
        out.append({"name": name, "old": titles.get(old, old), "new": titles.get(new, new),
                    "old_name": old, "new_name": new, "rows": rows, "sentences": sentences,
                    "added": V["added"].format(terms=V["list_sep"].join(
                        term_name(t, names, new_model["variables"]) for t in added)) if added else ""})
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
    design_effects = results.derived.get("design_effect") or {}
    for name, value in (results.derived.get("icc") or {}).items():
        model = results.models.get(name)
        if model is None or not apa.finite(value):
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
        deff = design_effects.get(name, {})
        if apa.finite(deff.get("value")):
            sentences.append(_say(I["deff"], size=apa.number(deff["mean_group_size"], 2), icc=apa.proportion(value),
                                  deff=apa.number(deff["value"], 2),
                                  deff_note=I["deff_large"] if deff["value"] > 2 else I["deff_small"]))
        out.append({"name": name, "title": titles.get(name, name), "icc": apa.proportion(value),
                    "sentences": sentences})
    return out


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
                         "label": term_name(effect["term"], names, variables) if effect["term"] else "",
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


def data_view(results, names, L):
    D = L["data"]
    summary, config = results.summary, results.config
    used = _used_columns(results)
    variables = []
    for v in summary.get("variables", []):
        if v["name"] not in used:
            continue
        level = {1: D["level_1"], 2: D["level_2"], "group": D["level_group"]}.get(v.get("level"), "")
        numeric = v.get("level") != "group" and apa.finite(v.get("mean"))
        variables.append({"name": v["name"], "label": names.get(v["name"], ""), "level": level,
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
    """The data columns the models read (their records' data_columns), and the group."""
    used = list(dict.fromkeys(c for model in results.models.values() for c in model["data_columns"]))
    group = results.config["data"]["group"]
    return used + ([group] if group not in used else [])


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
