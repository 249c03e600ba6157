"""Bootstrap percentile intervals of a model (models.<name>.intervals: bootstrap): a table of
its fixed effects and variance components with lme4's confint(bootMer(...), type = "perc")
limits, and a note saying how many refits there were and how many failed."""
from . import apa
from .writers import Code, _say


def interval_view(record, title, L):
    """The table of one model's bootstrap intervals, or None when it has none."""
    if not record:
        return None
    B = L["bootstrap_intervals"]
    rows = [{"parameter": row["parameter"], "estimate": apa.estimate(row["estimate"]),
             "ci": apa.ci(row["ci_low"], row["ci_high"])} for row in record["rows"]]
    note = _say(B["note"] + (B["failed"] if record["failed"] else ""), nsim=apa.integer(record["nsim"]),
                seed=str(record["seed"]), failed=apa.integer(record["failed"]),
                singular=apa.integer(record["singular"]), level=f"{100 * record['level']:g}%")
    return {"caption": _say(B["caption"], model=title or Code(record["model"])), "rows": rows, "note": note}
