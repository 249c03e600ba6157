"""The analysis config: load it, check it, and derive what the workflow needs from it.

A config (config/README.md) names the data, the centering, the models and what to compute
from them. `check_config` validates it with snakemake.utils.validate against
workflow/schemas/config.schema.yaml, which fills in the defaults, and refuses, with one line
naming the key, anything that would fail later: a missing data file,
a column no formula can find, a comparison of an undeclared model. The Snakefile and
`hlm run` both call it, so a bad config stops before any model is fitted.
"""
import copy
import itertools
import re
from collections.abc import Hashable
from pathlib import Path

import pandas as pd
import yaml

from ..analysis.power import PowerSpec
from ..data import centered_columns, read_columns, read_data, source_variable
from ..engine.design import check_functions, used_columns
from ..engine.family import Family, glm_response, response_reader
from ..engine.formula import Call, parse_formula
from ..errors import ConfigError, DataError, FormulaError, ModelError, did_you_mean
from ..resources import SCHEMA
from ..vocabulary import link_name

DEFAULT_CONFIG = Path("config") / "config.yaml"


MODEL_KEYS = ("REML", "optimizer", "ddf", "control")
MAX_MODEL_NAME = 200     # bytes: a model names its result files (<name>_simple_slopes.json < 255)
MAX_FILE_NAME = 255      # bytes, the usual file system limit
BOOTSTRAP_NSIM = 1000    # comparisons with method: bootstrap, as pbkrtest's PBmodcomp
BOOTSTRAP_SEED = 1
BOOTSTRAP_CHUNK = 250    # replicates per job
INTERVAL_LEVEL = 0.95


def load_config(path, workdir="."):
    """Read a YAML config file and check it (see check_config)."""
    return check_config(read_yaml(path), workdir)


def read_yaml(path):
    """A config file's content as plain YAML: no tags, anchors or aliases, no duplicate keys,
    no template engine (Snakemake's `configfile:` would run YTE's `?python` expressions)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file '{path}' does not exist; write one with 'hlm init DATA'")
    try:
        return yaml.load(path.read_text(encoding="utf-8"), Loader=_PlainLoader)
    except _RefusedYaml as exc:
        raise ConfigError(f"config file '{path}', {exc}") from exc
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file '{path}' is not valid YAML: {_one_line(exc)}") from exc


class _RefusedYaml(Exception):
    """YAML that parses but that a config may not use."""


class _PlainLoader(yaml.SafeLoader):
    """yaml.safe_load that refuses anchors and aliases (900 bytes of nested aliases expand to
    billions of nodes) and duplicate keys (YAML would keep the last one silently)."""

    def compose_node(self, parent, index):
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
            raise _RefusedYaml(f"line {event.start_mark.line + 1}: YAML anchors and aliases (&name, "
                               "*name) are not allowed in a config; write the value out")
        return super().compose_node(parent, index)

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if not isinstance(key, Hashable):
                continue  # SafeLoader refuses it
            if key in seen:
                raise _RefusedYaml(f"line {key_node.start_mark.line + 1}: key '{key}' appears twice; "
                                   "remove or rename one")
            seen.add(key)
        return super().construct_mapping(node, deep)


def check_config(config, workdir="."):
    """The config with defaults filled in, or a ConfigError naming the first problem.

    Relative data paths are relative to `workdir` (the folder the analysis runs in).
    """
    if not isinstance(config, dict):
        raise ConfigError("the config must be a mapping of keys (title, data, models, ...); "
                          "see config/README.md")
    config = _yaml_names(copy.deepcopy(config))
    given = copy.deepcopy(config)   # before the schema fills in defaults: what the user wrote
    _validate_schema(config)
    _check_name_lengths(config)
    _check_glmm_settings(config, given)
    config.setdefault("icc", [next(iter(config["models"]))])
    config["centering"] = {v: _methods(m) for v, m in config["centering"].items()}
    config["categorical"] = {v: dict(options or {}) for v, options in config["categorical"].items()}
    _levels(config["data"])
    columns = _data_columns(config["data"]["path"], workdir)
    _check_columns(config, columns)
    _check_references(config)
    _check_random_terms(config)
    _check_linear_formulas(config)
    _check_glmm_uses(config)
    _check_contextual(config)
    _check_data(config, workdir)
    _check_glmm_outcomes(config, workdir)
    check_power(config, workdir)
    check_bootstrap_comparisons(config)
    return config


def _levels(data):
    """data.levels from data.group (the one-level shorthand), and data.group from data.levels."""
    levels = data.get("levels") or [data["group"]]
    if data.get("group", levels[0]) != levels[0]:
        raise ConfigError(f"config key 'data.group': '{data['group']}' is not the first of data.levels "
                          f"({', '.join(levels)}); give one of the two keys")
    data["levels"], data["group"] = list(levels), levels[0]


def _validate_schema(config):
    """Check the config against the schema and fill in its defaults, in place, with
    snakemake.utils.validate; a mismatch becomes one line naming the key."""
    import jsonschema
    from snakemake.exceptions import WorkflowError
    from snakemake.utils import validate
    try:
        validate(config, str(SCHEMA), set_default=True)
    except WorkflowError as exc:  # raised while handling the jsonschema ValidationError
        error = jsonschema.exceptions.best_match([exc.__context__])
        raise ConfigError(_schema_message(error)) from exc


def _schema_message(error):
    """One line naming the config key, e.g. "config key 'estimation.REML': 'yes' is not ..."."""
    where = _key_path(error.absolute_path)
    if error.validator == "additionalProperties":
        allowed = list(error.schema.get("properties", {}))
        unknown = [k for k in error.instance if k not in allowed]
        name = unknown[0] if unknown else "?"
        same = [k for k in allowed if k.lower() == str(name).lower()]
        hint = f"; did you mean '{same[0]}'?" if same else did_you_mean(name, allowed)
        return (f"unknown config key '{_key_path([*error.absolute_path, name])}'"
                f"{hint or '; allowed: ' + ', '.join(allowed)}")
    if error.validator == "required":
        name = re.findall(r"'([^']+)'", error.message)[0]
        return f"config key '{_key_path([*error.absolute_path, name])}' is missing; add it (see config/README.md)"
    if error.validator == "anyOf" and where == "data":
        return ("config key 'data.group' is missing; add it, or data.levels for more than two levels "
                "(see config/README.md)")
    if error.validator == "enum":
        allowed = [value for value in error.validator_value if value is not None]   # null: leave the key out
        return (f"config key '{where}': '{error.instance}' is not allowed; use one of "
                f"{', '.join(map(str, allowed))}{did_you_mean(error.instance, allowed)}")
    if error.validator in ("propertyNames", "pattern") and where == "power":
        return (f"config key 'power': analysis name '{error.instance}' must start with a letter and use only "
                "letters, digits and _")
    if error.validator == "pattern" and where.startswith("models") or error.validator == "propertyNames":
        return (f"config key '{where or 'models'}': model name '{error.instance}' must start with a "
                "letter and use only letters, digits and _")
    if error.validator == "pattern" and where == "data.path":
        return (f"config key 'data.path': '{error.instance}' is not a data file hlm reads; "
                "use .sav, .zsav, .por, .csv, .tsv, .dta or .parquet")
    if error.validator == "oneOf" and where.startswith("models."):
        return (f"config key '{where}': a model is a formula string or a mapping with 'formula' "
                f"and optionally {', '.join((*MODEL_KEYS, 'family', *GLMM_ONLY_KEYS))}")
    if error.validator == "oneOf" and where.startswith("comparisons["):
        return (f"config key '{where}': a comparison is a list of two or more model names, or a mapping with "
                "'models' and optionally 'method' (lrt or bootstrap), 'nsim', 'seed' and 'chunk'")
    if error.validator == "oneOf" and where.startswith("centering."):
        return f"config key '{where}': centering is grand, group or none, or a list of them"
    return f"config key '{where or '(top level)'}': {error.message}"


def _check_name_lengths(config):
    """Model and comparison names name files: refuse those the file system would."""
    for name in config["models"]:
        if len(name.encode()) > MAX_MODEL_NAME:
            raise ConfigError(f"config key 'models.{name[:20]}...': the model name is {len(name.encode())} "
                              f"characters long; use at most {MAX_MODEL_NAME} (it names result files)")
    for i, name in enumerate(comparison_names(config)):
        if len(f"{name}.json".encode()) > MAX_FILE_NAME:
            raise ConfigError(f"config key 'comparisons[{i}]': its file name '{name[:20]}....json' would "
                              f"be longer than {MAX_FILE_NAME} characters; compare fewer models or "
                              "shorten their names")


def _key_path(parts):
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _methods(value):
    return [value] if isinstance(value, str) else list(value)


def _yaml_names(config):
    """YAML reads a model named null (`null: ...`, `[random_slope, null]`) as None: name it back."""
    def name(value):
        return "null" if value is None else value

    if isinstance(config.get("models"), dict):
        config["models"] = {name(k): v for k, v in config["models"].items()}
    for key in ("comparisons", "variance_explained"):
        if isinstance(config.get(key), list):
            config[key] = [[name(n) for n in names] if isinstance(names, list) else names
                           for names in config[key]]
    for key in ("icc", "diagnostics"):
        if isinstance(config.get(key), list):
            config[key] = [name(n) for n in config[key]]
    for entry in config.get("contextual") or []:
        if isinstance(entry, dict) and "model" in entry:
            entry["model"] = name(entry["model"])
    for entry in config.get("comparisons") or []:
        if isinstance(entry, dict) and isinstance(entry.get("models"), list):
            entry["models"] = [name(n) for n in entry["models"]]
    return config


def _data_columns(path, workdir):
    full = Path(workdir) / path
    if not full.is_file():
        raise ConfigError(f"config key 'data.path': data file '{path}' does not exist in "
                          f"'{Path(workdir).resolve()}'; check the path (relative to the folder you run in)")
    try:
        return read_columns(full)
    except DataError as exc:
        raise ConfigError(f"config key 'data.path': {exc}") from exc


def _check_columns(config, columns):
    data = config["data"]
    key = "data.levels" if len(data["levels"]) > 1 else "data.group"
    for column in data["levels"] + ([data["time"]] if data.get("time") else []):
        if column not in columns:
            where = "data.time" if column == data.get("time") else key
            raise ConfigError(f"config key '{where}': column '{column}' not in data{did_you_mean(column, columns)}")
    for variable in config["categorical"]:
        if variable not in columns:
            raise ConfigError(f"config key 'categorical.{variable}': column '{variable}' not in data"
                              f"{did_you_mean(variable, columns)}")
    available = list(columns)
    for variable, methods in config["centering"].items():
        if variable not in columns:
            raise ConfigError(f"config key 'centering.{variable}': column '{variable}' not in data"
                              f"{did_you_mean(variable, columns)}")
        for how in methods:
            level = how.partition(":")[2] if isinstance(how, str) else ""
            if level and level not in data["levels"]:
                raise ConfigError(f"config key 'centering.{variable}': '{how}' names no level of data.levels "
                                  f"({', '.join(data['levels'])}){did_you_mean(level, data['levels'])}")
            for new in centered_columns(variable, how, data["levels"]):
                if new in columns:
                    raise ConfigError(f"config key 'centering.{variable}': {how} centering adds "
                                      f"'{new}', which the data already has; rename that column")
                available.append(new)
    for name, spec in model_specs(config).items():
        for column in model_columns(spec, f"models.{name}"):
            if column not in available:
                raise ConfigError(f"config key 'models.{name}': column '{column}' not in data"
                                  f"{did_you_mean(column, available)}")


def _check_references(config):
    models = list(config["models"])

    def known(name, key):
        if name not in models:
            raise ConfigError(f"config key '{key}': model '{name}' is not declared under models"
                              f"{did_you_mean(name, models)}")

    for key in ("comparisons", "variance_explained"):
        for i, names in enumerate(config[key]):
            for name in comparison_models(names):
                known(name, f"{key}[{i}]")
    _unique(comparison_names(config), "comparisons")
    _unique(variance_explained_names(config), "variance_explained")
    for key in ("icc", "diagnostics"):
        for name in config[key]:
            known(name, key)
    for i, entry in enumerate(config["contextual"]):
        known(entry["model"], f"contextual[{i}].model")
        used = formula_columns(model_specs(config)[entry["model"]]["formula"], f"models.{entry['model']}")
        for role in ("within", "between"):
            if entry[role] not in used:
                raise ConfigError(f"config key 'contextual[{i}].{role}': '{entry[role]}' is not a "
                                  f"predictor of model '{entry['model']}'{did_you_mean(entry[role], used)}")
    _unique([e["model"] for e in config["contextual"]], "contextual")


def _check_random_terms(config):
    """A model without a (terms | group) part is no multilevel model: say so before any job."""
    for name, spec in model_specs(config).items():
        if not parse_formula(spec["formula"]).random:
            raise ConfigError(f"config key 'models.{name}': '{spec['formula']}' has no random term such as "
                              f"(1 | {config['data']['group']}); a model without one is an ordinary regression "
                              "(fit it with OLS, e.g. statsmodels' ols), not a multilevel model")


def _check_contextual(config):
    """The between variable of a contextual entry must be the group mean of the within
    variable's source column (ses_cwc or ses_gmc with ses_mean), as the centering adds it."""
    levels = config["data"]["levels"]
    for i, entry in enumerate(config["contextual"]):
        source = source_variable(entry["within"], config["centering"], levels)
        means = [centered_columns(source, how, levels)[0] for how in config["centering"].get(source, [])
                 if isinstance(how, str) and how.startswith("group")]
        if entry["between"] not in means:
            hint = f"use {means[0]}" if means else f"add 'centering: {{{source}: [group]}}' and use {source}_mean"
            raise ConfigError(f"config key 'contextual[{i}].between': '{entry['between']}' is not the group mean "
                              f"of '{source}' (the source of '{entry['within']}'); {hint}")


def _check_data(config, workdir):
    """What needs the data's values: levels nested, and per_model comparisons on the same rows."""
    data = config["data"]
    needed = set(data["levels"])
    per_model = data["missing"] == "per_model" and config["comparisons"]
    if per_model:
        needed |= {source_variable(c, config["centering"], data["levels"])
                   for names in config["comparisons"] for n in comparison_models(names)
                   for c in formula_columns(model_specs(config)[n]["formula"])}
    if len(data["levels"]) < 2 and not per_model:
        return
    frame = read_data(Path(workdir) / data["path"]).frame[sorted(needed)]
    frame = frame.mask(frame.isin(list(data["missing_codes"])))
    _check_nesting(frame, data["levels"])
    if per_model:
        _check_same_rows(config, frame)


def _check_nesting(frame, levels):
    for lower, upper in itertools.pairwise(levels):
        spread = frame.dropna(subset=[lower, upper]).groupby(lower)[upper].nunique()
        if (spread > 1).any():
            unit = spread.index[spread > 1][0]
            raise ConfigError(f"config key 'data.levels': '{lower}' is not nested in '{upper}' ({lower} {unit} "
                              f"is in {int(spread.max())} units of {upper}); give each {lower} unit its own id, "
                              "or list only nested levels")


def _check_same_rows(config, frame):
    levels = config["data"]["levels"]
    for i, names in enumerate(map(comparison_models, config["comparisons"])):
        rows = []
        for name in names:
            used = {source_variable(c, config["centering"], levels)
                    for c in formula_columns(model_specs(config)[name]["formula"])}
            rows.append(frame[sorted(used)].notna().all(axis=1))
        for name, kept in zip(names[1:], rows[1:]):
            if not kept.equals(rows[0]):
                raise ConfigError(f"config key 'comparisons[{i}]': models '{names[0]}' and '{name}' are fitted to "
                                  "different rows (data.missing: per_model); a likelihood-ratio test needs the same "
                                  "rows: use data.missing: listwise")


def check_power(config, workdir="."):
    """Each power analysis names a declared model, a grouping column of it (along) and one of
    its fixed effects (term), and has values hlm.analysis.power accepts; one line otherwise."""
    specs = model_specs(config)
    for name, entry in config.get("power", {}).items():
        key = f"power.{name}"
        if entry["model"] not in specs:
            raise ConfigError(f"config key '{key}.model': model '{entry['model']}' is not declared under models"
                              f"{did_you_mean(entry['model'], list(specs))}")
        formula = parse_formula(specs[entry["model"]]["formula"])
        groups = list(dict.fromkeys(term.group[0] for term in formula.random if len(term.group) == 1))
        if entry["along"] not in groups:
            raise ConfigError(f"config key '{key}.along': '{entry['along']}' is not a grouping column of model "
                              f"'{entry['model']}' (its groups: {', '.join(groups) or 'none'})"
                              f"{did_you_mean(entry['along'], groups)}")
        _check_power_term(entry["term"], formula, entry["model"], lambda: _factor_levels(config, workdir),
                          f"{key}.term")
    for name, entry in power_entries(config).items():
        power_spec(name, entry)


def power_entries(config):
    """power.<name> -> its config entry with the ddf of its model (the test the model reports)."""
    specs = model_specs(config)
    return {name: {**entry, "ddf": specs[entry["model"]]["ddf"] or "lme4"}   # a GLMM's null: Wald z
            for name, entry in config.get("power", {}).items()}


def _check_power_term(term, formula, model, factor_levels, key):
    """The term is one fixed-effect coefficient of the model: a numeric term's label, or the
    column of a factor as lme4 names it ('urbanY': the factor's name and a level). factor_levels()
    gives the levels of the text columns, read from the data only when needed; a declared
    categorical column, a factor() call or a factor in an interaction is checked by its term's
    label as a prefix."""
    labels = ["(Intercept)"] * formula.fixed.intercept + [":".join(v.label for v in t) for t in formula.fixed.terms]
    if term == "(Intercept)" and formula.fixed.intercept:
        return
    levels = factor_levels()
    coefficients, prefixes = ["(Intercept)"] * formula.fixed.intercept, []
    for t, label in zip(formula.fixed.terms, labels[formula.fixed.intercept:]):
        if not any(_is_factor(v, levels) for v in t):
            coefficients.append(label)
        elif len(t) == 1 and levels.get(t[0].label):
            coefficients += [label + level for level in levels[t[0].label][1:]]   # the first is the reference
        else:
            prefixes.append(label)
    if term in coefficients or any(term.startswith(label) and term != label for label in prefixes):
        return
    raise ConfigError(f"config key '{key}': '{term}' is not a fixed-effect coefficient of model '{model}' (its "
                      f"coefficients: {', '.join(coefficients + [p + '…' for p in prefixes])})"
                      f"{did_you_mean(term, coefficients)}")


def _factor_levels(config, workdir):
    """column -> its levels in R's order (sorted; the first is the reference), for the text columns
    a formula reads as factors; declared categorical columns (whose levels the value labels and the
    configured reference name) -> None."""
    frame = read_data(Path(workdir) / config["data"]["path"]).frame
    text = frame.select_dtypes(exclude="number")
    out = {column: [str(v) for v in sorted(text[column].dropna().unique())] for column in text.columns}
    return {**out, **dict.fromkeys(config["categorical"])}


def _is_factor(variable, categorical):
    node = variable.node
    return variable.label in categorical or isinstance(node, Call) and node.func in ("factor", "as.factor")


def power_spec(name, entry):
    """The PowerSpec of a config entry (hlm.analysis.power), its errors as config errors."""
    try:
        return PowerSpec.from_config(name, entry)
    except ConfigError as exc:
        message = str(exc)
        raise ConfigError(message if message.startswith("config key") else f"config key 'power.{name}': {message}") \
            from exc


def _unique(names, key):
    seen = set()
    for name in names:
        if name in seen:
            raise ConfigError(f"config key '{key}': '{name}' is declared twice; remove one")
        seen.add(name)


def formula_columns(formula, key="formula"):
    """The data columns a formula uses, in order of appearance: 'y ~ log(x) + (1 | g)' -> y, x, g
    (offset() and a cbind(successes, failures) response included: _check_linear_formulas refuses
    them for linear models)."""
    try:
        tree = parse_formula(formula).tree
        response = tree.left
        for part in response.args if isinstance(response, Call) and response.func == "cbind" else (response,):
            check_functions(part)
        check_functions(tree.right)
        names = used_columns(tree)
    except FormulaError as exc:
        raise ConfigError(f"config key '{key}': {_one_line(exc)}") from exc
    return list(dict.fromkeys(name.strip("`") for name in names))


def _one_line(exc):
    return " ".join(str(exc).split("\n")[0].split())


def model_specs(config):
    """name -> {name, formula, REML, optimizer, ddf, control, standardized}: each model with the
    defaults applied (standardized: report.standardized, the fit step computes them); a GLMM
    (family binomial or poisson) gets glmm_spec's keys instead."""
    specs = {}
    for name, model in config["models"].items():
        model = {"formula": model} if isinstance(model, str) else model
        if model_family(model, config) != LINEAR_FAMILY:
            specs[name] = glmm_spec(name, model, config)
            continue
        spec = {"name": name, "formula": model["formula"]}
        spec.update({key: model.get(key, config["estimation"][key]) for key in MODEL_KEYS})
        spec["standardized"] = config.get("report", {}).get("standardized", "none")
        specs[name] = spec
    return specs


def comparison_names(config):
    """['random_slope_vs_null', ...]: one name per declared comparison."""
    return ["_vs_".join(comparison_models(entry)) for entry in config["comparisons"]]


def comparison_models(entry):
    """The models of a comparisons entry: a list of names, or {models: [...], method, nsim, seed}."""
    return entry["models"] if isinstance(entry, dict) else entry


def comparison_bootstrap(entry):
    """{nsim, seed, chunk} of a comparison with method: bootstrap (pbkrtest's PBmodcomp), else None."""
    if not isinstance(entry, dict) or entry.get("method", "lrt") != "bootstrap":
        return None
    return {"nsim": entry.get("nsim", BOOTSTRAP_NSIM), "seed": entry.get("seed", BOOTSTRAP_SEED),
            "chunk": entry.get("chunk", BOOTSTRAP_CHUNK)}


def bootstrap_chunks(bootstrap):
    """The jobs (start, stop) of a bootstrap comparison: replicates [start, stop)."""
    return [(start, min(start + bootstrap["chunk"], bootstrap["nsim"]))
            for start in range(0, bootstrap["nsim"], bootstrap["chunk"])]


def interval_options(config):
    """model -> {method, nsim, seed, level} for the models with `intervals: bootstrap` (bootMer
    percentile intervals); the fit's spec leaves them out, so adding them refits nothing."""
    out = {}
    for name, model in config["models"].items():
        option = model.get("intervals") if isinstance(model, dict) else None
        if option:
            option = {"method": option} if isinstance(option, str) else option
            out[name] = {"method": "bootstrap", "nsim": option.get("nsim", BOOTSTRAP_NSIM),
                         "seed": option.get("seed", BOOTSTRAP_SEED), "level": INTERVAL_LEVEL}
    return out


def check_bootstrap_comparisons(config):
    """PBmodcomp compares two nested models: a bootstrap comparison names exactly two; its settings
    mean nothing to a χ² test; bootstrap intervals are bootMer's for linear mixed models."""
    for i, entry in enumerate(config["comparisons"]):
        if comparison_bootstrap(entry) and len(comparison_models(entry)) != 2:
            raise ConfigError(f"config key 'comparisons[{i}].models': method bootstrap compares two models "
                              f"(pbkrtest's PBmodcomp), not {len(comparison_models(entry))}; "
                              "split it into pairs")
        unused = sorted(set(entry) & {"nsim", "seed", "chunk"}) if isinstance(entry, dict) else []
        if unused and not comparison_bootstrap(entry):
            raise ConfigError(f"config key 'comparisons[{i}].{unused[0]}': only a comparison with "
                              "method: bootstrap simulates; add it, or remove the key")
    specs = model_specs(config)
    for name in interval_options(config):
        if is_glmm(specs[name]):
            raise ConfigError(f"config key 'models.{name}.intervals': bootstrap intervals are computed for "
                              "linear mixed models only; remove the key (the record has Wald intervals)")


def derived_models(config):
    """The models the derived statistics (icc, variance_explained, contextual) use, in config order."""
    used = set(config["icc"]) | {m for pair in config["variance_explained"] for m in pair}
    used |= {entry["model"] for entry in config["contextual"]}
    return [m for m in config["models"] if m in used]


def contextual_specs(config):
    """The contextual entries with the ddf of their model (Satterthwaite where that is lme4)."""
    specs = model_specs(config)
    return [{**entry, "ddf": "Satterthwaite" if specs[entry["model"]]["ddf"] == "lme4"
             else specs[entry["model"]]["ddf"]} for entry in config["contextual"]]


def variance_explained_names(config):
    """['null_to_random_slope', ...]: one name per declared (old, new) pair."""
    return ["_to_".join(pair) for pair in config["variance_explained"]]


def data_spec(config):
    """What the data step's tables depend on: the data file and its treatment, and the columns
    of each model's table (table_columns). With listwise deletion the rows are those complete
    on the variables of every model."""
    data = config["data"]
    spec = {"path": data["path"], "group": data["group"], "levels": data["levels"], "time": data.get("time"),
            "missing": data["missing"], "missing_codes": list(data["missing_codes"]),
            "centering": {v: m for v, m in sorted(config["centering"].items())},
            "categorical": {v: o for v, o in sorted(config["categorical"].items())},
            "factor_columns": factor_columns(config),
            "columns": table_columns(config)}
    if data["missing"] == "listwise":
        used = {source_variable(c, config["centering"], data["levels"])
                for s in model_specs(config).values() for c in model_columns(s)}
        spec["complete"] = sorted(used)
    return spec


def table_columns(config):
    """model -> the columns of its table (results/data/<model>.parquet): those its formula
    names, in order, then the ids of the levels (and the time column) the formula does not name."""
    structure = [*config["data"]["levels"], *([config["data"]["time"]] if config["data"].get("time") else [])]
    return {name: list(dict.fromkeys([*model_columns(spec), *structure]))
            for name, spec in model_specs(config).items()}


def factor_columns(config):
    """The data columns some formula wraps in factor() (or as.factor()): with value labels,
    the data step names their levels by the labels."""
    found = set()
    for spec in model_specs(config).values():
        found |= set(re.findall(r"(?:as\.)?factor\(\s*`?([A-Za-z_.][A-Za-z0-9_.]*)`?\s*\)", spec["formula"]))
    return sorted(found)


# ---- generalized linear mixed models (family binomial or poisson: hlm.glmer) ----------------

LINEAR_FAMILY = "gaussian"        # hlm.lmer: what a model without family fits
GLMM_ONLY_KEYS = ("link", "nAGQ", "weights")


def model_family(model, config):
    """The family a model entry fits: its own, estimation's, or gaussian (a linear mixed model)."""
    return model.get("family", config["estimation"].get("family", LINEAR_FAMILY))


def is_glmm(spec):
    return spec.get("family", LINEAR_FAMILY) != LINEAR_FAMILY


def glmm_spec(name, model, config):
    """{name, formula, family, link, nAGQ, weights, optimizer, control, REML, ddf, standardized} of a
    GLMM: glmer's link (the family's default when not given), nAGQ 1 (Laplace) unless given, the
    model entry's optimizer for both stages or none (glmer's bobyqa, then Nelder–Mead); REML is
    false (glmer maximises the likelihood), ddf and standardized do not apply (Wald z tests)."""
    estimation = config["estimation"]
    family = model_family(model, config)
    return {"name": name, "formula": model["formula"], "family": family,
            "link": link_name(family, model.get("link", estimation.get("link"))),
            "nAGQ": model.get("nAGQ", estimation.get("nAGQ", 1)), "weights": model.get("weights"),
            "optimizer": model.get("optimizer"), "control": model.get("control", estimation["control"]),
            "REML": False, "ddf": None, "standardized": "none"}


def model_columns(spec, key="formula"):
    """The data columns a model reads: its formula's and its weights column."""
    return list(dict.fromkeys([*formula_columns(spec["formula"], key), *([spec["weights"]] if spec.get("weights")
                                                                         else [])]))


def _check_linear_formulas(config):
    """offset() and cbind() are glmer's: a linear model's formula takes neither."""
    for name, spec in model_specs(config).items():
        if is_glmm(spec):
            continue
        parsed = parse_formula(spec["formula"])
        if parsed.offsets:
            raise ConfigError(f"config key 'models.{name}': '{parsed.offsets[0].label}' is an offset, which only a "
                              "generalized linear mixed model takes; add 'family: poisson' (or binomial) to the "
                              "model, or subtract it from the response")
        if isinstance(parsed.tree.left, Call) and parsed.tree.left.func == "cbind":
            raise ConfigError(f"config key 'models.{name}': the response '{parsed.response.label}' counts successes "
                              "and failures; add 'family: binomial' to the model")


def _check_glmm_settings(config, given):
    """Keys that make no sense for the family the model fits, said once, before any job: link,
    nAGQ and weights for a linear model; REML: true and ddf for a GLMM (glmer maximises the
    likelihood and tests with Wald z); a link of another family; nAGQ > 1 beyond one scalar term."""
    estimation = given.get("estimation") or {}
    for name, model in given["models"].items():
        model = {"formula": model} if isinstance(model, str) else model
        key = f"models.{name}"
        family = model_family(model, config)
        owner = {k: (f"{key}.{k}" if k in model else f"estimation.{k}") for k in (*GLMM_ONLY_KEYS, "REML", "ddf")}
        if family == LINEAR_FAMILY:
            linear_default = estimation.get("family", LINEAR_FAMILY) == LINEAR_FAMILY   # else estimation's are the GLMMs'
            extra = next((k for k in GLMM_ONLY_KEYS if k in model or (linear_default and k in estimation)), None)
            if extra:
                raise ConfigError(f"config key '{owner[extra]}': {extra} is for a generalized linear mixed model; "
                                  "add 'family: binomial' (or poisson), or remove it")
            continue
        level = model if "family" in model else estimation   # the entry that made it a GLMM
        for setting in ("REML", "ddf"):
            value = model.get(setting, level.get(setting))
            if (setting in model or setting in level) and (setting == "ddf" or value is True):
                where = f"{key}.{setting}" if setting in model else owner[setting]
                raise ConfigError(f"config key '{where}': {setting}{': true' if setting == 'REML' else ''} does not "
                                  f"apply to family {family}: glmer fits by maximum likelihood and tests fixed "
                                  "effects with Wald z; remove it")
        try:
            link_name(family, model.get("link", estimation.get("link")))
        except ModelError as exc:
            raise ConfigError(f"config key '{owner['link']}': {exc}") from exc
        _check_nagq(model.get("nAGQ", estimation.get("nAGQ", 1)), model["formula"], owner["nAGQ"])


def _check_nagq(nagq, formula, key):
    """nAGQ > 1 (adaptive quadrature) needs one scalar random term, as lme4 allows."""
    if nagq <= 1:
        return
    try:
        random = parse_formula(formula).random
    except FormulaError as exc:
        raise ConfigError(f"config key '{key.rsplit('.', 1)[0]}': {_one_line(exc)}") from exc
    if len(random) != 1:
        raise ConfigError(f"config key '{key}': nAGQ = {nagq} needs a single scalar random term such as (1 | group); "
                          f"'{formula}' has {len(random)} random terms: use nAGQ: 1 (Laplace)")
    size = int(random[0].lhs.intercept) + len(random[0].lhs.terms)
    if size != 1:
        raise ConfigError(f"config key '{key}': nAGQ = {nagq} needs a scalar random term such as (1 | group); "
                          f"'{random[0].label}' is vector-valued: use nAGQ: 1 (Laplace)")


def _likelihood_kind(spec):
    """What a model's likelihood is, for the comparisons that need one kind."""
    if not is_glmm(spec):
        return "a linear mixed model"
    return f"family {spec['family']} ({spec['link']}, {'Laplace' if spec['nAGQ'] <= 1 else 'adaptive quadrature'})"


def _check_glmm_uses(config):
    """Comparisons and variance explained need models of one kind; contextual effects are lmer's."""
    specs = model_specs(config)
    for key in ("comparisons", "variance_explained"):
        for i, names in enumerate(map(comparison_models, config[key])):
            kinds = [_likelihood_kind(specs[n]) for n in names]
            different = next((n for n, k in zip(names, kinds) if k != kinds[0]), None)
            if different:
                what = ("likelihoods of different kinds" if key == "comparisons"
                        else "variance components on different scales")
                raise ConfigError(f"config key '{key}[{i}]': models '{names[0]}' ({kinds[0]}) and '{different}' "
                                  f"({_likelihood_kind(specs[different])}) have {what}; compare models of one "
                                  "family, link and approximation")
    for i, entry in enumerate(config["contextual"]):
        if is_glmm(specs[entry["model"]]):
            raise ConfigError(f"config key 'contextual[{i}].model': '{entry['model']}' is a generalized linear "
                              "mixed model; contextual effects are computed for linear mixed models only")


def _check_glmm_outcomes(config, workdir):
    """Each GLMM's response takes values its family can: 0/1, two categories or cbind() counts
    (binomial, proportions with weights), counts 0, 1, 2, ... (poisson); checked on the data as
    read, missing codes removed."""
    specs = {name: spec for name, spec in model_specs(config).items() if is_glmm(spec)}
    if not specs:
        return
    data = config["data"]
    frame = read_data(Path(workdir) / data["path"]).frame
    frame = frame.mask(frame.isin(list(data["missing_codes"])))
    for name, spec in specs.items():
        response = parse_formula(spec["formula"]).response
        columns = [c for c in model_columns(spec) if c in frame.columns]
        used = frame[columns].dropna()
        if not set(formula_columns(f"{response.label} ~ 1")) <= set(used.columns):
            continue   # a response made by centering: the fit step checks it
        try:
            values = response_reader(Family.named(spec["family"], spec["link"]))(response, used)
            weights = pd.to_numeric(used[spec["weights"]], errors="coerce") if spec["weights"] else None
            glm_response(values, response.label, Family.named(spec["family"], spec["link"]), weights, None)
        except (DataError, FormulaError) as exc:
            raise ConfigError(f"config key 'models.{name}': {_one_line(exc)}") from exc
