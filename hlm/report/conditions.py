"""What a coefficient holds fixed: in a model with an interaction a main effect is the effect where
the other variables of its interactions are 0 (a factor at its reference category), and the
intercept is the prediction with every predictor at 0. The report says what that 0 is (a grand or
group mean after centring, near the mean, or outside the observed range: an extrapolation).
"""
from . import apa
from .equations import INTERCEPT

NEAR_MEAN = 0.1   # |mean| below this many SDs: 0 is "near the mean"


def model_term_of(column, model):
    """The model term (record `terms` entry) a coefficient column belongs to, or None."""
    return next((t for t in model.get("terms") or [] if column in t["columns"]), None)


def moderators_of(column, model):
    """The variables a main-effect coefficient is conditional on: those that share an interaction
    with its term's variables, in the order the formula names them; [] for no interaction."""
    term = model_term_of(column, model)
    if term is None:
        return []
    own = set(term["variables"])
    out = []
    for other in model.get("terms") or []:
        if own < set(other["variables"]):
            out += [v for v in other["variables"] if v not in own and v not in out]
    return out


def zero_of(variable, model, summary, names, C):
    """What '<variable> = 0' means, in words: its reference category for a factor; for a number,
    its grand or group mean after centring, near its mean, or outside its observed range."""
    info = (model.get("variables") or {}).get(variable, {})
    label = names.get(variable, variable)
    if info.get("kind") == "factor":
        reference = info.get("reference") or (info.get("levels") or [""])[0]
        return C["reference"].format(variable=label, reference=reference)
    described = _described(summary).get(variable, {})
    centred = _centred(variable, described)
    if centred:
        return C[f"zero_{centred}"].format(variable=label)
    if _outside(described):
        return C["zero_outside"].format(variable=label, min=apa.estimate(described["min"]),
                                        max=apa.estimate(described["max"]))
    mean, sd = described.get("mean"), described.get("sd")
    if apa.finite(mean) and apa.finite(sd) and sd > 0 and abs(mean) < NEAR_MEAN * sd:
        return C["zero_near_mean"].format(variable=label, mean=apa.estimate(mean))
    return C["zero"].format(variable=label)


def conditions_text(column, model, summary, names, C):
    """'Disciplinary climate = 0 (near its mean, -0.0151)' for a conditional main effect, else None."""
    moderators = moderators_of(column, model)
    if not moderators:
        return None
    return C["join"].join(zero_of(v, model, summary, names, C) for v in moderators)


def conditional_items(fixed, model, summary, names, C, ratio=None):
    """One clause per conditional main effect of a model's fixed-effects rows, for the table note."""
    key = "item_ratio" if ratio else "item"
    items = []
    for row in fixed:
        conditions = conditions_text(row["term"], model, summary, names, C)
        if conditions:
            items.append(C[key].format(term=row["label"], ratio=ratio, conditions=conditions))
    return items


def conditional_note(fixed, model, summary, names, C, ratio=None):
    """The table note's sentence on conditional main effects ('' without an interaction)."""
    items = conditional_items(fixed, model, summary, names, C, ratio)
    lower_order = any(":" in row["term"] and moderators_of(row["term"], model) for row in fixed)
    return C["note_lower_order" if lower_order else "note"].format(items=C["item_join"].join(items)) if items else ""


def outside_range(model, summary, names, C):
    """The numeric predictors whose 0 lies outside their observed range, as 'School size (113 to 1486)'."""
    described = _described(summary)
    out = []
    for variable, info in (model.get("variables") or {}).items():
        entry = described.get(variable, {})
        if info.get("kind") == "numeric" and variable in _predictors(model) and _outside(entry):
            out.append(C["range_item"].format(variable=names.get(variable, variable),
                                              min=apa.estimate(entry["min"]), max=apa.estimate(entry["max"])))
    return out


def intercept_note(model, summary, names, C):
    """The sentence saying the intercept extrapolates, when a predictor's 0 is outside its range ('' else,
    and '' for a model without an intercept)."""
    if INTERCEPT not in (model.get("fixef") or {}):
        return ""
    items = outside_range(model, summary, names, C)
    return C["intercept_outside"].format(variables=C["range_join"].join(items)) if items else ""


def _predictors(model):
    return {v for term in model.get("terms") or [] for v in term["variables"]}


def _described(summary):
    return {v["name"]: v for v in summary.get("variables", [])}


def _centred(column, entry):
    """'grand' for a grand-mean-centred column (<v>_gmc), 'group' for a group-mean-centred one
    (<v>_cwc, <v>_cwc_<level>), else None: a group mean (<v>_mean) or a column centred at a value
    (<v>_at8) is a number like any other, whose 0 may lie outside its range."""
    suffix = column[len(entry["derived_from"]):] if entry.get("derived_from") else ""
    return "grand" if suffix.startswith("_gmc") else "group" if suffix.startswith("_cwc") else None


def _outside(entry):
    low, high = entry.get("min"), entry.get("max")
    return (apa.finite(low) and apa.finite(high) and not low <= 0 <= high
            and not _centred(entry.get("name", ""), entry))
