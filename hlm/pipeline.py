"""The declared analysis: load and check a config, run it through Snakemake, write a starter config.

A config (config/README.md) names the data, the centering, the models and what to compute
from them. `check_config` validates it with snakemake.utils.validate against
workflow/schemas/config.schema.yaml, which fills in the defaults, and refuses, with one line naming the key, anything that would fail later: a missing data file,
a column no formula can find, a comparison of an undeclared model. The Snakefile and
`hlm run` both call it, so a bad config stops before any model is fitted.
"""
import copy
import logging
import re
import sys
from contextlib import contextmanager
from pathlib import Path

import yaml

from .data import centered_columns, level_of, read_columns, source_variable
from .errors import ConfigError, DataError, FormulaError, HlmError, did_you_mean

PROJECT = Path(__file__).resolve().parent.parent
SCHEMA = PROJECT / "workflow" / "schemas" / "config.schema.yaml"
DEFAULT_CONFIG = Path("config") / "config.yaml"
MODEL_KEYS = ("REML", "optimizer", "ddf", "control")


# ---- loading and checking --------------------------------------------------------------

def load_config(path, workdir="."):
    """Read a YAML config file and check it (see check_config)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file '{path}' does not exist; write one with 'hlm init DATA'")
    try:
        config = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file '{path}' is not valid YAML: {_one_line(exc)}") from exc
    return check_config(config, workdir)


def check_config(config, workdir="."):
    """The config with defaults filled in, or a ConfigError naming the first problem.

    Relative data paths are relative to `workdir` (the folder the analysis runs in).
    """
    if not isinstance(config, dict):
        raise ConfigError("the config must be a mapping of keys (title, data, models, ...); "
                          "see config/README.md")
    config = _yaml_names(copy.deepcopy(config))
    _validate_schema(config)
    config.setdefault("icc", [next(iter(config["models"]))])
    config["centering"] = {v: _methods(m) for v, m in config["centering"].items()}
    columns = _data_columns(config["data"]["path"], workdir)
    _check_columns(config, columns)
    _check_references(config)
    return config


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
    if error.validator == "enum":
        return (f"config key '{where}': '{error.instance}' is not allowed; use one of "
                f"{', '.join(map(str, error.validator_value))}{did_you_mean(error.instance, error.validator_value)}")
    if error.validator == "pattern" and where.startswith("models") or error.validator == "propertyNames":
        return (f"config key '{where or 'models'}': model name '{error.instance}' must start with a "
                "letter and use only letters, digits and _")
    if error.validator == "pattern" and where == "data.path":
        return (f"config key 'data.path': '{error.instance}' is not a data file hlm reads; "
                "use .sav, .zsav, .por, .csv, .tsv, .dta or .parquet")
    if error.validator == "oneOf" and where.startswith("models."):
        return (f"config key '{where}': a model is a formula string or a mapping with 'formula' "
                f"and optionally {', '.join(MODEL_KEYS)}")
    if error.validator == "oneOf" and where.startswith("centering."):
        return f"config key '{where}': centering is grand, group or none, or a list of them"
    return f"config key '{where or '(top level)'}': {error.message}"


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
    if data["group"] not in columns:
        raise ConfigError(f"config key 'data.group': column '{data['group']}' not in data"
                          f"{did_you_mean(data['group'], columns)}")
    available = list(columns)
    for variable, methods in config["centering"].items():
        if variable not in columns:
            raise ConfigError(f"config key 'centering.{variable}': column '{variable}' not in data"
                              f"{did_you_mean(variable, columns)}")
        for how in methods:
            for new in centered_columns(variable, how):
                if new in columns:
                    raise ConfigError(f"config key 'centering.{variable}': {how} centering adds "
                                      f"'{new}', which the data already has; rename that column")
                available.append(new)
    for name, spec in model_specs(config).items():
        for column in formula_columns(spec["formula"], f"models.{name}"):
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
            for name in names:
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


def _unique(names, key):
    seen = set()
    for name in names:
        if name in seen:
            raise ConfigError(f"config key '{key}': '{name}' is declared twice; remove one")
        seen.add(name)


def formula_columns(formula, key="formula"):
    """The data columns a formula uses, in order of appearance: 'y ~ log(x) + (1 | g)' -> y, x, g."""
    from .design import used_columns
    from .formula import parse_expression, parse_formula
    try:
        parse_formula(formula)
        names = used_columns(parse_expression(formula))
    except FormulaError as exc:
        raise ConfigError(f"config key '{key}': {_one_line(exc)}") from exc
    return list(dict.fromkeys(name.strip("`") for name in names))


def _one_line(exc):
    return " ".join(str(exc).split("\n")[0].split())


# ---- what the workflow derives from a checked config ---------------------------------------

def model_specs(config):
    """name -> {name, formula, REML, optimizer, ddf, control}: each model with the defaults applied."""
    specs = {}
    for name, model in config["models"].items():
        model = {"formula": model} if isinstance(model, str) else model
        spec = {"name": name, "formula": model["formula"]}
        spec.update({key: model.get(key, config["estimation"][key]) for key in MODEL_KEYS})
        specs[name] = spec
    return specs


def comparison_names(config):
    """['random_slope_vs_null', ...]: one name per declared comparison."""
    return ["_vs_".join(names) for names in config["comparisons"]]


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
    """What the analysed table depends on; with listwise deletion, the variables of every model."""
    data = config["data"]
    spec = {"path": data["path"], "group": data["group"], "missing": data["missing"],
            "missing_codes": list(data["missing_codes"]),
            "centering": {v: m for v, m in sorted(config["centering"].items())}}
    if data["missing"] == "listwise":
        used = {source_variable(c, config["centering"])
                for s in model_specs(config).values() for c in formula_columns(s["formula"])}
        spec["complete"] = sorted(used)
    return spec


PATHS = {
    "table": "results/data/analysed.parquet",
    "data_summary": "results/data/summary.json",
    "model": "results/models/{model}.json",
    "residuals": "results/models/{model}_residuals.parquet",
    "ranef": "results/models/{model}_ranef.parquet",
    "comparison": "results/comparisons/{comparison}.json",
    "derived": "results/derived/derived.json",
    "figure": "results/figures/{model}_diagnostics.png",
    "report_figures": "results/report/figures",
    "manifest": "results/manifest.json",
    "log": "results/logs/{step}/{name}.log",
}
REPORT_FILES = {"html": "results/report/report.html", "md": "results/report/report.md",
                "docx": "results/report/tables.docx"}
# what the diagnostics rule writes per model (hlm.diagnostics.figure_names picks the names)
FIGURE_FILES = {"diagnostics_svg": "results/figures/{model}_diagnostics.svg",
                "diagnostics_png": PATHS["figure"],
                "caterpillar_svg": "results/figures/{model}_caterpillar.svg",
                "caterpillar_png": "results/figures/{model}_caterpillar.png",
                "simple_slopes_svg": "results/figures/{model}_simple_slopes.svg",
                "simple_slopes_png": "results/figures/{model}_simple_slopes.png",
                "simple_slopes_json": "results/figures/{model}_simple_slopes.json"}


def result_files(config):
    """Every file the analysis writes, by stage and name (the targets, and results/manifest.json)."""
    models = list(config["models"])
    return {
        "data": {"table": PATHS["table"], "summary": PATHS["data_summary"]},
        "models": {m: {"json": PATHS["model"].format(model=m),
                       "residuals": PATHS["residuals"].format(model=m),
                       "ranef": PATHS["ranef"].format(model=m)} for m in models},
        "comparisons": {c: PATHS["comparison"].format(comparison=c) for c in comparison_names(config)},
        "derived": PATHS["derived"],
        "figures": {m: PATHS["figure"].format(model=m) for m in config["diagnostics"]},
        "figure_files": {m: figure_files(m, model_specs(config)[m]["formula"])
                         for m in config["diagnostics"]},
        "report": {f: REPORT_FILES[f] for f in config["report"]["formats"]},
    }


def figure_files(model, formula):
    """name -> path of every figure file the diagnostics rule writes for one model."""
    from .diagnostics import figure_names
    return {name: FIGURE_FILES[name].format(model=model) for name in figure_names(formula)}


def config_files(paths, workdir="."):
    """The config files a run read, as results/manifest.json records them: relative to the
    folder the analysis runs in when they are inside it (config/config.yaml, whether Snakemake
    or `hlm run` named it), with / as separator; so the same run gives the same manifest."""
    base = Path(workdir).resolve()
    out = []
    for path in paths:
        full = (base / path).resolve()
        out.append((full.relative_to(base) if full.is_relative_to(base) else full).as_posix())
    return out


def fit_spec(spec, frame):
    """Fit one model spec (model_specs) to the analysed table."""
    from .model import lmer
    return lmer(spec["formula"], frame, REML=spec["REML"], optimizer=spec["optimizer"],
                control=spec["control"] or None)


# ---- running the workflow --------------------------------------------------------------------

def snakefile(workdir="."):
    """The Snakefile of the folder the analysis runs in, else the one shipped with hlm."""
    local = Path(workdir) / "Snakefile"
    return local.resolve() if local.is_file() else PROJECT / "Snakefile"


def run_workflow(config_path=DEFAULT_CONFIG, cores=2, dry_run=False, targets=(), workdir="."):
    """Run the analysis a config declares, through Snakemake's API, in `workdir`.

    Checks the config first (a ConfigError stops everything before any fit); returns 0 when
    the workflow succeeded (or has nothing to do), 1 when a job failed.
    """
    workdir = Path(workdir).resolve()
    config_path = Path(config_path)
    load_config(config_path, workdir)
    from snakemake.api import SnakemakeApi
    from snakemake.settings.types import (ConfigSettings, DAGSettings, OutputSettings,
                                          ResourceSettings)
    settings = OutputSettings(dryrun=dry_run, show_failed_logs=True)
    logging.getLogger("snakemake").propagate = False  # Snakemake prints its own log, once
    with SnakemakeApi(settings) as api:
        try:
            workflow = api.workflow(
                resource_settings=ResourceSettings(cores=cores),
                config_settings=ConfigSettings(configfiles=[config_path.resolve()]),
                snakefile=snakefile(workdir),
                workdir=workdir)
            dag = workflow.dag(DAGSettings(targets=frozenset(targets)))
            dag.execute_workflow(executor="dryrun" if dry_run else "local")
        except Exception as exc:  # Snakemake reports its own errors; we only set the exit code
            api.print_exception(exc)
            return 1
    return 0


# ---- logging inside a workflow job -------------------------------------------------------------

@contextmanager
def job_log(path):
    """Send logging, warnings and any error of a workflow job to its log file.

    A user mistake (HlmError) also prints one line to stderr and exits with code 2; anything
    else is logged with its traceback and re-raised.
    """
    handler = logging.FileHandler(path, mode="w", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    logging.captureWarnings(True)
    try:
        yield
    except HlmError as exc:
        root.error("%s", exc)
        print(f"hlm: error: {exc}", file=sys.stderr)
        raise SystemExit(2) from exc
    except Exception:
        root.exception("the job failed")
        raise
    finally:
        logging.captureWarnings(False)
        root.removeHandler(handler)
        handler.close()


# ---- a starter config ------------------------------------------------------------------------

ID_HINTS = re.compile(r"(^|_)(id|ids|school|schid|sch|class|classid|cluster|group|grp|"
                      r"subject|subj|participant|pid|sid|team|unit|site|country|clinic)($|_|id)",
                      re.IGNORECASE)


def write_starter_config(data_path, output_path=DEFAULT_CONFIG, force=False):
    """Write a config for a data file: its variables (with labels) and a guessed group id."""
    from .data import read_data
    output = Path(output_path)
    if output.exists() and not force:
        raise ConfigError(f"'{output}' already exists; choose another file with -o, or --force to replace it")
    dataset = read_data(data_path)
    text = starter_config(dataset, str(data_path))
    output.parent.mkdir(parents=True, exist_ok=True)
    from .results import write_text
    write_text(output, text)
    return output


def starter_config(dataset, data_path):
    """The text of a starter config (YAML with comments) for a Dataset."""
    frame = dataset.frame
    group = guess_group(frame)
    if group is None:
        raise DataError(f"no column of '{data_path}' looks like a group id (a column whose values "
                        "repeat); add one, or write the config by hand (see config/README.md)")
    levels = {c: level_of(frame, c, group) for c in frame.columns if c != group}
    numeric = [c for c in frame.columns if c != group and frame[c].dtype.kind in "fiu"]
    outcome = next((c for c in numeric if levels[c] == 1 and frame[c].nunique() > 2),
                   numeric[0] if numeric else next(c for c in frame.columns if c != group))
    q = _quote
    def commented(line, comment):
        return f"{line:<25}# {comment}"

    lines = [
        "# hlm analysis config (every key: config/README.md). Run it with: hlm run <this file>",
        f"title: {q('Multilevel analysis of ' + Path(data_path).name)}",
        "",
        "data:",
        f"  path: {q(data_path)}",
        commented(f"  group: {q(group)}", "the level-2 id (guessed: check it)"),
        commented("  missing: listwise", "listwise: every model uses the same rows; per_model: as lme4"),
        commented("  missing_codes: []", "values that mean 'missing', e.g. [-99, 999]"),
        "",
        f"# Variables of {Path(data_path).name} ({len(frame)} rows, {frame[group].nunique()} groups of '{group}'):",
    ]
    width = max(len(str(c)) for c in frame.columns)
    for column in frame.columns:
        level = "group id" if column == group else f"level {levels[column]}"
        label = dataset.variable_labels.get(column, "")
        lines.append(f"#   {str(column):<{width}}  {level:<8}  {label}".rstrip())
    lines += [
        "",
        "centering: {}            # e.g. {ses: group} adds ses_cwc and ses_mean; grand adds ses_gmc",
        "",
        "estimation:",
        "  REML: true",
        "  optimizer: bobyqa",
        "  ddf: Satterthwaite",
        "",
        "models:                  # name: formula (lme4 syntax); replace the outcome with yours",
        f"  null: {q(f'{outcome} ~ 1 + (1 | {group})')}",
        "",
        "comparisons: []          # e.g. [[random_slope, null]]",
        "icc: [null]",
        "variance_explained: []   # e.g. [[null, random_slope]]",
        "diagnostics: [null]",
        "",
        "report:",
        "  language: zh           # zh (Chinese) or en",
        "  formats: [html, md, docx]",
        "",
    ]
    return "\n".join(lines)


def _quote(text):
    import json
    return json.dumps(str(text), ensure_ascii=False)


def guess_group(frame):
    """The column most likely to be the level-2 id, or None.

    Candidates repeat (2 to n/2 distinct values, not floats with fractions); a name like id,
    school or subject wins, then the column within whose groups most other columns are constant.
    """
    n = len(frame)
    best, best_score = None, None
    for column in frame.columns:
        values = frame[column].dropna()
        k = values.nunique()
        if not 2 <= k <= n / 2 or (values.dtype.kind == "f" and not values.mod(1).eq(0).all()):
            continue
        constant = sum(level_of(frame, other, column) == 2 for other in frame.columns if other != column)
        score = (bool(ID_HINTS.search(str(column))), constant, k)
        if best_score is None or score > best_score:
            best, best_score = column, score
    return best


