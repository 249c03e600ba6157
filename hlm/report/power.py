"""The power section: for each power analysis (config key power), what was simulated, the
power at each size with its Clopper–Pearson interval, the smallest size that reaches 0.80 and
the number of failed refits, beside the power-curve figure.
"""
from ..analysis.power import TARGET_POWER
from . import apa
from .names import term_name
from .writers import Code, _say, joined


def power_views(results, titles, L, names=None):
    """One view per power result: sentences, a table of the curve and the figure. The tested term
    is named by its label (`names`, the variables'), as in the model's tables."""
    P = L["power"]
    views = []
    for name, record in results.power.items():
        curve = record["curve"]
        figure = results.power_figures.get(name, {})
        term = _term(record, results.models.get(record.get("model")), names or {})
        views.append({"name": name, "anchor": f"power-{name}",
                      "intro": _say(P["intro"], along=Code(record["along"])),
                      "sentences": _sentences(name, record, term, titles, P),
                      "table_caption": _say(P["table_caption"], name=Code(name), term=term),
                      "rows": [_row(r) for r in curve],
                      "figure": {"svg": figure.get("svg"), "png": figure.get("png"), "anchor": f"figure-{name}-power",
                                 "caption": _say(P["caption"], name=Code(name), term=term,
                                                 along=Code(record["along"]))}})
    return views


def _term(record, model, names):
    """The tested coefficient by its label ('Urban residence: Y' for urbanY), or as code without one."""
    label = term_name(record["term"], names, model["variables"]) if model else record["term"]
    return label if label != record["term"] else Code(record["term"])


def _row(r):
    estimated = r["power"] is not None
    return {"size": apa.integer(r["size"]), "nsim": apa.integer(r["nsim"]), "failed": apa.integer(r["failed"]),
            "power": apa.proportion(r["power"]) if estimated else apa.MISSING,
            "ci": f"[{apa.proportion(r['ci_low'])}, {apa.proportion(r['ci_high'])}]" if estimated else apa.MISSING}


def _sentences(name, record, term, titles, P):
    curve = record["curve"]
    model = record.get("model", "")
    sizes = P["sizes_sep"].join(apa.integer(r["size"]) for r in curve)
    out = [_say(P["sentence"], name=Code(name), model=titles.get(model, Code(model)), term=term,
                test=P["tests"].get(record["method"], record["method"]), alpha=f"{record['alpha']:g}",
                effect=apa.estimate(record["effect"]), along=Code(record["along"]), sizes=sizes,
                nsim=apa.integer(record["nsim"]), seed=str(record["seed"]))]
    items = [_say(P["at_size"], size=apa.integer(r["size"]), power=apa.proportion(r["power"]),
                  low=apa.proportion(r["ci_low"]), high=apa.proportion(r["ci_high"]))
             for r in curve if r["power"] is not None]
    if items:
        out.append(_say(P["results"], items=joined(items, P["sizes_sep"])))
    reached = next((r["size"] for r in curve if r["power"] is not None and r["power"] >= TARGET_POWER), None)
    out.append(_say(P["reaches"], size=apa.integer(reached)) if reached is not None else _say(P["never"]))
    failed = [r for r in curve if r["failed"]]
    if failed:
        by_size = joined([_say(P["failed_at"], size=apa.integer(r["size"]), count=apa.integer(r["failed"]))
                            for r in failed], P["sizes_sep"])
        out.append(_say(P["failed"], failed=apa.integer(sum(r["failed"] for r in failed)), by_size=by_size))
    else:
        out.append(_say(P["no_failures"]))
    singular = sum(m["count"] for r in curve for m in r.get("messages", []) if m["message"].startswith("singular"))
    if singular:
        out.append(_say(P["singular"], count=apa.integer(singular), total=apa.integer(sum(r["nsim"] for r in curve))))
    return out
