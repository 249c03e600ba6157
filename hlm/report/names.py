"""What the report calls each model and variable: the config's `label:`s, the data file's variable
labels, derived (centred) variables named in the report's language; the column names otherwise.
"""
from ..data import CENTERING_LABELS
from .equations import INTERCEPT

DERIVED_KINDS = {suffix: suffix.lstrip("_") for suffix in CENTERING_LABELS}   # _cwc -> cwc


def text_in(value, language):
    """A config text (a string, or {zh: ..., en: ...}) in the report's language, else the other."""
    if isinstance(value, dict):
        return value.get(language) or next(iter(value.values()))
    return value


def model_titles(config, L, language):
    """name -> the model's heading: its `label:`, the seed's term for a seed name (null -> 零模型),
    else 'Model k' by its place in the config."""
    kinds = L["model_kinds"]
    titles = {}
    for index, (name, model) in enumerate(config["models"].items(), start=1):
        label = model.get("label") if isinstance(model, dict) else None
        if label:
            titles[name] = text_in(label, language)
        elif name in kinds and name != "other":
            titles[name] = kinds[name]
        else:
            titles[name] = kinds["other"].format(number=index)
    return titles


def variable_names(results, L, language):
    """column -> the name the report shows: the config's `labels:`, the data file's label, a
    centred variable's base name and how it was centred (in the report's language)."""
    configured = {k: text_in(v, language) for k, v in (results.config.get("labels") or {}).items()}
    variables = results.summary.get("variables", [])
    plain = {v["name"]: configured.get(v["name"]) or (v.get("label") if not v.get("derived_from") else "")
             for v in variables}
    names = {}
    for v in variables:
        base = v.get("derived_from")
        if v["name"] in configured:
            names[v["name"]] = configured[v["name"]]
        elif base:
            kind = DERIVED_KINDS[v["name"][len(base):]]
            names[v["name"]] = L["data"]["derived"][kind].format(variable=plain.get(base) or base)
        elif plain.get(v["name"]):
            names[v["name"]] = plain[v["name"]]
    names.update({k: v for k, v in configured.items() if k not in names})
    names[INTERCEPT] = L["model"]["intercept"]
    return names


def with_dummies(names, variables):
    """names plus each factor dummy's ('urbanY' -> 'Urban residence: Y'), for the equations."""
    dummies = {variable + level: f"{names.get(variable, variable)}: {level}"
               for variable, info in variables.items() if info.get("kind") == "factor"
               for level in info.get("levels", ())}
    return {**dummies, **names}


def term_name(term, names, variables):
    """A coefficient as the report names it: the names of its parts joined by ' × ', a factor's
    dummy as 'name: level' (sexM -> 性别: M); `variables` is the model record's."""
    return " × ".join(_part_name(part, names, variables) for part in term.split(":"))


def _part_name(part, names, variables):
    if part in variables or part == INTERCEPT:
        return names.get(part, part)
    for variable, info in variables.items():
        level = part[len(variable):]
        if info.get("kind") == "factor" and part.startswith(variable) and level in info.get("levels", ()):
            return f"{names.get(variable, variable)}: {level}"
    return names.get(part, part)
