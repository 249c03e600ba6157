"""Result files of the declared analysis: what each workflow step writes, and how.

Writers are atomic (a temporary file in the same folder, then os.replace), so an interrupted
run never leaves half a file, and deterministic (no clocks, fixed key order), so the same
config and data give byte-identical files. The record builders turn hlm's objects into the
plain JSON layouts that config/README.md documents and the report reads.
"""
import json
import math
import os
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd


# ---- atomic, deterministic writers --------------------------------------------------------------

def write_text(path, text):
    """Write text (UTF-8) to path atomically."""
    _atomic(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def write_json(path, obj):
    """Write obj as indented UTF-8 JSON; NaN and infinities become null."""
    text = json.dumps(jsonable(obj), indent=2, ensure_ascii=False, allow_nan=False)
    write_text(path, text + "\n")


def write_parquet(path, frame):
    """Write a DataFrame (index dropped) as parquet, atomically."""
    _atomic(path, lambda tmp: frame.to_parquet(tmp, index=False))


def read_json(path):
    return json.loads(Path(path).read_text(encoding="utf-8"))


def read_table(path):
    return pd.read_parquet(path)


def _atomic(path, write):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    os.chmod(tmp, 0o644)  # mkstemp makes owner-only files; results are ordinary readable files
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def jsonable(obj):
    """Plain JSON values for numpy/pandas objects; non-finite floats become None."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, pd.DataFrame):
        return [jsonable(row) for row in obj.to_dict(orient="records")]
    if isinstance(obj, pd.Series):
        return jsonable(obj.to_dict())
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, (np.bool_, bool)):
        return bool(obj)
    if isinstance(obj, (np.integer, int)):
        return int(obj)
    if isinstance(obj, (np.floating, float)):
        return float(obj) if math.isfinite(obj) else None
    if obj is None or isinstance(obj, str):
        return obj
    if obj is pd.NA or obj is pd.NaT:
        return None
    if hasattr(obj, "item"):
        return jsonable(obj.item())
    return str(obj)


# ---- records of one model ---------------------------------------------------------------------


# the reference's key for the df of each method
DF_KEYS = {"Satterthwaite": "df_satterthwaite", "Kenward-Roger": "df_kenward_roger",
           "residual": "df_residual"}


def model_record(model, spec):
    """model.to_dict() (the reference's key names) plus the spec, the df and p of the spec's
    ddf method, Nakagawa's R2 and the coefficient table as lmerTest prints it."""
    import hlm
    record = {"name": spec["name"], **jsonable(model.to_dict()),
              "ddf": spec["ddf"], "control": spec["control"]}
    table = model.coef_table(ddf=None if spec["ddf"] == "lme4" else spec["ddf"])  # lme4: no df, no p
    if "df" in table:
        record[DF_KEYS[spec["ddf"]]] = jsonable(table["df"])
    if "Pr(>|t|)" in table:
        record["p"] = jsonable(table["Pr(>|t|)"])
    record["r2_marginal"], record["r2_conditional"] = jsonable(hlm.r2_nakagawa(model))
    record["coefficients"] = [{"term": term, **row} for term, row in zip(table.index, jsonable(table))]
    return record


def residuals_frame(model, frame):
    """One row per observation the model used: its row in the analysed table (`frame`, the
    data the model was fitted to), the grouping columns, fitted values, residuals and
    residuals scaled by sigma (lme4's 'scaled')."""
    rows = model.design.rows
    out = pd.DataFrame({"row": rows})
    for group in model.ngroups:
        if group in frame.columns:
            out[group] = frame[group].to_numpy()[rows]
    out["fitted"] = np.asarray(model.fitted, dtype=float)
    out["residual"] = np.asarray(model.residuals(scaled=False), dtype=float)
    out["scaled_residual"] = np.asarray(model.residuals(scaled=True), dtype=float)
    return out


def ranef_frame(model):
    """Conditional modes in long form: grp, level, term, value (one row per level and term),
    and condsd, their conditional SD (lme4's as.data.frame(ranef(m, condVar = TRUE)))."""
    sds = _conditional_sds(model)
    parts = []
    for grp, modes in model.ranef.items():
        long = modes.rename_axis("level").reset_index().melt(
            id_vars="level", var_name="term", value_name="value")
        long.insert(0, "grp", grp)
        long["level"] = long["level"].astype(str)
        long["condsd"] = [sds.get((grp, term, level), np.nan)
                          for term, level in zip(long["term"], long["level"])]
        parts.append(long)
    if not parts:
        return pd.DataFrame({"grp": [], "level": [], "term": [], "value": [], "condsd": []})
    return pd.concat(parts, ignore_index=True)


def _conditional_sds(model):
    """(group, term, level) -> conditional SD of the mode, from model.ranef_condvar."""
    sds = {}
    for label, term in zip(model.group_labels, model.design.terms):
        variances = np.asarray(model.ranef_condvar[label])
        for k, column in enumerate(term.columns):
            for level, variance in zip(term.levels, variances[:, k, k]):
                sds[(term.group, column, str(level))] = float(np.sqrt(max(variance, 0.0)))
    return sds


# ---- comparisons and derived statistics ----------------------------------------------------------

def comparison_record(table, specs):
    """hlm.anova's table as JSON: each column as a list over the models (in lme4's order, by
    number of parameters), Chisq/Df/p of the last row on their own for a pair, and the rows."""
    names = [str(i) for i in table.index]
    formulas = {s["name"]: s["formula"] for s in specs}
    record = {"models": names, "formulas": [formulas[n] for n in names],
              "refitted_with_ML": [s["name"] for s in specs if s["REML"]],
              "note": table.attrs.get("note", "")}
    for column in table.columns:
        record[{"Pr(>Chisq)": "p"}.get(column, column)] = jsonable(table[column].tolist())
    if len(names) == 2:
        for key in ("Chisq", "Df", "p"):
            record[key] = record[key][-1]
    record["table"] = [{"model": n, **row} for n, row in zip(names, jsonable(table))]
    return record


def derived_record(models, icc, variance_explained, contextual):
    """ICC of each `icc` model, variance explained for each [old, new] pair and the effects of
    each `contextual` entry ({model, within, between, ddf, centering?}), keyed as
    results/derived/derived.json documents."""
    import hlm
    record = {"icc": {name: hlm.icc(models[name]) for name in icc},
              "variance_explained": {}, "contextual": {}}
    for old, new in variance_explained:
        values = hlm.variance_explained(models[old], models[new])
        record["variance_explained"][f"{old}_to_{new}"] = {"old": old, "new": new,
                                                           "values": jsonable(values)}
    for entry in contextual:
        table = hlm.contextual(models[entry["model"]], within=entry["within"], between=entry["between"],
                               centering=entry.get("centering"), ddf=entry["ddf"])
        record["contextual"][entry["model"]] = {**entry, "centering": table.attrs["centering"],
                                                "effects": jsonable(table.to_dict(orient="index"))}
    return record
