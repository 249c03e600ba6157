"""Reading data files (with SPSS/Stata labels) and centering predictors.

Every reader returns the same thing, so the rest of hlm never cares about the file format.
"""
import itertools
import logging
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from .errors import DataError, did_you_mean

log = logging.getLogger(__name__)

READERS = {".sav", ".zsav", ".por", ".dta", ".csv", ".tsv", ".parquet"}


@dataclass(frozen=True)
class Dataset:
    """A table plus the variable and value labels the file carried (empty for csv/parquet)."""
    frame: pd.DataFrame
    variable_labels: dict = field(default_factory=dict)
    value_labels: dict = field(default_factory=dict)


def read_data(path) -> Dataset:
    """Read .sav/.por/.dta (labels kept), .csv/.tsv or .parquet into a Dataset."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in READERS:
        raise DataError(f"data file '{path}' has an unsupported type '{suffix}'; "
                        f"use one of {', '.join(sorted(READERS))}")
    if not path.is_file():
        raise DataError(f"data file '{path}' does not exist; check the path")
    try:
        return _read(path, suffix)
    except DataError:
        raise
    except Exception as exc:  # the readers raise many unrelated types for a corrupt file
        raise DataError(f"data file '{path}' could not be read as {suffix}: {exc}") from exc


def _read(path, suffix):
    if suffix in (".sav", ".zsav", ".por", ".dta"):
        import pyreadstat
        reader = {".sav": pyreadstat.read_sav, ".zsav": pyreadstat.read_sav,
                  ".por": pyreadstat.read_por, ".dta": pyreadstat.read_dta}[suffix]
        frame, meta = reader(str(path))
        variable_labels = {k: v for k, v in meta.column_names_to_labels.items() if v}
        return Dataset(frame, variable_labels, dict(meta.variable_value_labels))
    if suffix == ".parquet":
        return Dataset(pd.read_parquet(path))
    return Dataset(pd.read_csv(path, **csv_dialect(path, suffix)))


def csv_dialect(path, suffix):
    """The separator and decimal mark of a text table: tab for .tsv; for .csv a comma unless the
    header has semicolons and no commas (the European export, which writes decimal commas)."""
    if suffix == ".tsv":
        return {"sep": "\t"}
    with open(path, encoding="utf-8", errors="replace") as handle:
        header = handle.readline()
    if ";" in header and "," not in header:
        log.info("'%s' is separated by semicolons; reading it with decimal commas", path.name)
        return {"sep": ";", "decimal": ","}
    return {"sep": ","}


def require_columns(frame, columns, what="column"):
    """Raise a DataError naming the first column that is not in the frame."""
    for column in columns:
        if column not in frame.columns:
            raise DataError(f"{what} '{column}' not in data{did_you_mean(column, frame.columns)}")


def center(frame, variable, how, levels=()):
    """Return the frame with centred copies of `variable` added.

    grand: `<v>_gmc` = v - mean(v); group: `<v>_cwc` = v - mean of v in its unit of the lowest
    grouping level, plus `<v>_mean`, that mean, as a level-2 predictor (the seed's
    contextual-effects setup); group:<level>: the same within the units of another level, the
    columns `<v>_cwc_<level>` and `<v>_mean_<level>`; {at: c}: `<v>_at<c>` = v - c (time
    centred at a chosen occasion, so the intercept is the outcome at c).
    """
    require_columns(frame, [variable], "centering variable")
    out = frame.copy()
    values = pd.to_numeric(out[variable], errors="coerce")
    kind, level = centering_kind(how)
    if kind == "grand":
        out[f"{variable}_gmc"] = values - values.mean()
    elif kind == "group":
        group = level or (levels[0] if levels else None)
        if group is None:
            raise DataError(f"group-mean centering of '{variable}' needs the group id (data.group or data.levels)")
        require_columns(frame, [group], "group id")
        mean, cwc = centered_columns(variable, how, levels)
        means = values.groupby(out[group]).transform("mean")
        out[mean] = means
        out[cwc] = values - means
    elif kind == "at":
        (column,) = centered_columns(variable, how, levels)
        out[column] = values - float(how["at"])
    elif kind != "none":
        raise DataError(f"centering '{how}' for '{variable}' is unknown; use grand, group, group:<level>, "
                        "{at: value} or none")
    return out


CENTERED_COLUMNS = {"grand": ("_gmc",), "group": ("_mean", "_cwc"), "none": ()}
CENTERING_LABELS = {"_gmc": "grand-mean centred", "_mean": "group mean", "_cwc": "group-mean centred"}


def centering_kind(how):
    """('grand'|'group'|'none'|'at', level or None): 'group:schoolid' -> ('group', 'schoolid')."""
    if isinstance(how, dict):
        return "at", None
    kind, _, level = str(how).partition(":")
    return kind, level or None


def _at_text(value):
    """The value of {at: value} as it appears in a column name: 8 -> 8, 0.5 -> 0.5, -1 -> m1."""
    text = str(int(value)) if float(value).is_integer() else str(value)
    return text.replace("-", "m")

def read_columns(path):
    """The column names of a data file, read without loading the data."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in READERS:
        raise DataError(f"data file '{path}' has an unsupported type '{suffix}'; "
                        f"use one of {', '.join(sorted(READERS))}")
    if not path.is_file():
        raise DataError(f"data file '{path}' does not exist; check the path")
    try:
        return _read_columns(path, suffix)
    except Exception as exc:
        raise DataError(f"data file '{path}' could not be read as {suffix}: {exc}") from exc


def _read_columns(path, suffix):
    if suffix in (".sav", ".zsav", ".por", ".dta"):
        import pyreadstat
        reader = {".sav": pyreadstat.read_sav, ".zsav": pyreadstat.read_sav,
                  ".por": pyreadstat.read_por, ".dta": pyreadstat.read_dta}[suffix]
        return list(reader(str(path), metadataonly=True)[1].column_names)
    if suffix == ".parquet":
        import pyarrow.parquet
        return [name for name in pyarrow.parquet.read_schema(path).names
                if not name.startswith("__index_level_")]
    return list(pd.read_csv(path, nrows=0, **csv_dialect(path, suffix)).columns)


def centered_columns(variable, how, levels=()):
    """The columns `center(frame, variable, how)` adds, e.g. ses, group -> [ses_mean, ses_cwc];
    group at a level other than the lowest -> [ses_mean_schoolid, ses_cwc_schoolid];
    {at: 8} -> [age_at8]."""
    kind, level = centering_kind(how)
    if kind == "at":
        return [f"{variable}_at{_at_text(how['at'])}"]
    suffix = f"_{level}" if level and (not levels or level != levels[0]) else ""
    return [f"{variable}{ending}{suffix}" for ending in CENTERED_COLUMNS.get(kind, ())]


def source_variable(column, centering, levels=()):
    """The data column a (possibly centred) column comes from: ses_cwc -> ses."""
    for variable, methods in centering.items():
        for how in methods:
            if column in centered_columns(variable, how, levels):
                return variable
    return column

def prepare(dataset, levels, centering, complete=None, missing_codes=(), categorical=None,
            factor_columns=(), time=None):
    """The analysed table and its summary.

    `levels`: the grouping columns from level 2 upwards (a single name for two levels). Values
    in `missing_codes` become missing (in every column but the ids, whose values are labels:
    school -99 stays school -99); rows without an id are dropped; when `complete` lists
    variables, rows missing any of them are dropped (listwise deletion); the `categorical`
    columns (name -> {reference}) and the labelled `factor_columns` become factors named by
    their value labels; then each `centering` entry (variable -> list of methods) adds its columns.
    """
    levels = [levels] if isinstance(levels, str) else list(levels)
    frame = dataset.frame
    require_columns(frame, levels, "group id")
    require_columns(frame, complete or [], "variable")
    suspects = suspect_missing_codes(dataset, missing_codes, skip=levels)
    frame = _as_missing(frame, missing_codes, keep=levels)
    for level in levels:
        frame[level] = _tidy_ids(frame[level])
    read = len(frame)
    required = levels + [v for v in (complete or []) if v not in levels]
    missing = {v: int(frame[v].isna().sum()) for v in required}
    frame = frame.loc[frame[required].notna().all(axis=1)].reset_index(drop=True)
    frame = as_factors(frame, dataset, categorical or {}, factor_columns)
    for variable, methods in centering.items():
        for how in methods:
            frame = center(frame, variable, how, levels)
    summary = describe(frame, dataset, levels, centering, time)
    summary.update(n_read=read, n_dropped=read - len(frame), missing_by_variable=missing,
                   complete_cases_on=sorted(complete) if complete is not None else None,
                   suspect_missing_codes=suspects)
    return frame, summary


def _as_missing(frame, codes, keep):
    """Values in `codes` become missing in every column but those in `keep` (the ids)."""
    frame = frame.copy()
    if not codes:
        return frame
    for column in frame.columns:
        if column not in keep:
            coded = frame[column].isin(codes)
            frame[column] = frame[column].mask(coded)
            if coded.any():
                frame[column] = _numbers_if_all_are(frame[column])
    return frame


def _numbers_if_all_are(column):
    """A text column whose every value is a number once its missing codes are gone ('n/a' in a
    column of scores), as numbers."""
    if column.dtype != object:
        return column
    numbers = pd.to_numeric(column, errors="coerce")
    return numbers if numbers.notna().sum() == column.notna().sum() else column


USUAL_MISSING_CODES = (-9, -99, -999, 99, 999, 9999)


def suspect_missing_codes(dataset, declared, skip=()):
    """[{column, value, count, reason}]: values that look like forgotten missing codes, not in
    `declared`: a value outside a labelled column's value labels (reason 'unlabelled'), or one
    of USUAL_MISSING_CODES in a column whose other values never come near it ('usual')."""
    found = []
    for column in dataset.frame.columns:
        values = pd.to_numeric(dataset.frame[column], errors="coerce") if column not in skip else None
        if values is None or values.notna().sum() == 0 or dataset.frame[column].dtype == object:
            continue
        values = values[~values.isin(declared)].dropna()
        labels = dataset.value_labels.get(column)
        for value, reason in _suspects(values, labels):
            found.append({"column": column, "value": _plain(value), "count": int((values == value).sum()),
                          "reason": reason})
    return found


def _suspects(values, labels):
    if labels:
        labelled = {float(k) for k in labels if isinstance(k, (int, float))}
        if labelled:
            return [(v, "unlabelled") for v in sorted(set(values.unique()) - labelled)]
    out = []
    for code in USUAL_MISSING_CODES:
        others = values[values != code]
        if (values == code).any() and len(others) and (
                others.max() < code / 9 if code > 0 else others.min() > code / 9):
            out.append((float(code), "usual"))
    return out


def _plain(value):
    return int(value) if float(value).is_integer() else float(value)


def missing_codes_line(suspects):
    """The config line that declares the suspected codes, e.g. 'missing_codes: [-99]'."""
    codes = sorted({s["value"] for s in suspects})
    return f"missing_codes: [{', '.join(map(str, codes))}]"


def as_factors(frame, dataset, categorical, factor_columns=()):
    """Declared categorical columns, and labelled columns the formulas wrap in factor(), as
    pandas Categoricals whose categories are the value labels (the code where a value has
    none), in code order with the reference category first: R's factor levels and treatment
    contrasts, so every table names the levels by their labels."""
    frame = frame.copy()
    wanted = dict(categorical)
    wanted.update({c: {} for c in factor_columns if c in dataset.value_labels and c not in wanted})
    for column, options in wanted.items():
        require_columns(frame, [column], "categorical variable")
        frame[column] = _labelled_factor(frame[column], dataset.value_labels.get(column, {}),
                                         (options or {}).get("reference"), column)
    return frame


def _labelled_factor(values, labels, reference, column):
    present = sorted(values.dropna().unique(), key=_sort_key)
    names = {value: str(labels.get(value, _key(value))) for value in present}
    order = list(dict.fromkeys(names[v] for v in present))
    if reference is not None:
        ref = str(reference)
        match = ref if ref in order else next((names[v] for v in present if _key(v) == ref), None)
        if match is None:
            raise DataError(f"categorical '{column}': reference '{reference}' is neither a value label nor a code "
                            f"of the column; use one of {', '.join(order)}")
        order = [match] + [name for name in order if name != match]
    return pd.Categorical(values.map(names), categories=order)


def _sort_key(value):
    return (0, float(value), "") if isinstance(value, (int, float)) else (1, 0.0, str(value))


EXACT_INTEGERS = 2 ** 53   # doubles hold every whole number below this exactly


def _tidy_ids(ids):
    """Whole-number float ids (as SPSS stores them) become integers, so levels print as 1224.

    Only where every id is below 2^53 in magnitude: larger doubles are not all whole numbers an
    int64 can hold (2^63 and up overflow to one value), so they stay doubles, each id its own.
    """
    values = ids.dropna()
    if (pd.api.types.is_float_dtype(ids) and values.mod(1).eq(0).all()
            and values.abs().lt(EXACT_INTEGERS).all()):
        return ids.astype("Int64") if ids.isna().any() else ids.astype("int64")
    return ids


def describe(frame, dataset, levels, centering, time=None):
    """N, the units of each level with their sizes, and one entry per column (label, level,
    descriptives over the units of its level). `group`, `n_groups` and `group_sizes` are those
    of level 2, as the one-level layout has them."""
    levels = [levels] if isinstance(levels, str) else list(levels)
    structure = _add_units_below([_level_entry(frame, column, k + 2, levels[k + 1:])
                                  for k, column in enumerate(levels)], frame)
    derived = {c: (v, how) for v, methods in centering.items() for how in methods
               for c in centered_columns(v, how, levels)}
    level2 = structure[0]
    return {
        "group": levels[0],
        "levels": structure,
        "time": time,
        "n": int(len(frame)),
        "n_groups": level2["units"],
        "group_sizes": {key: level2[key] for key in ("min", "max", "mean", "median", "counts")},
        "centering": {v: list(methods) for v, methods in sorted(centering.items())},
        "variables": [_describe_column(frame, column, dataset, levels, derived.get(column))
                      for column in frame.columns],
    }


def _level_entry(frame, column, level, higher):
    """A level's units: how many, and how many rows (and units of the level below) each holds."""
    sizes = frame.groupby(column, sort=True).size()
    entry = {"column": column, "level": level, "units": len(sizes),
             "min": int(sizes.min()) if len(sizes) else 0, "max": int(sizes.max()) if len(sizes) else 0,
             "mean": float(sizes.mean()) if len(sizes) else 0.0,
             "median": float(sizes.median()) if len(sizes) else 0.0,
             "counts": {_key(unit): int(count) for unit, count in sizes.items()}}
    if higher:
        entry["nested_in"] = higher[0]
    return entry


def _add_units_below(structure, frame):
    """Each level above 2 also counts the units of the level below in each of its units."""
    for below, entry in itertools.pairwise(structure):
        per_unit = frame.groupby(entry["column"], sort=True)[below["column"]].nunique()
        entry["units_below"] = {"column": below["column"], "min": int(per_unit.min()),
                                "max": int(per_unit.max()), "median": float(per_unit.median())}
    return structure


def _describe_column(frame, column, dataset, levels, derived):
    values = frame[column]
    level = "group" if column in levels else level_of(frame, column, levels)
    entry = {"name": column,
             "label": dataset.variable_labels.get(column, ""),
             "level": level,
             "dtype": str(values.dtype),
             "n_missing": int(values.isna().sum()),
             "n_values": int(values.nunique())}
    if derived is not None:
        variable, how = derived
        entry["label"] = f"{variable}, {_centering_label(column, variable, how)}"
        entry["derived_from"] = variable
        entry["centering"] = how if isinstance(how, str) else dict(how)
    if column in dataset.value_labels:
        entry["value_labels"] = {_key(k): v for k, v in dataset.value_labels[column].items()}
    if level == "group":
        return entry
    units = _one_row_per_unit(frame, column, levels, level)
    if level != 1:
        entry["units"] = len(units)
        entry["unit"] = levels[level - 2]
    if isinstance(values.dtype, pd.CategoricalDtype):
        counts = units.value_counts(sort=False)
        entry["counts"] = {str(k): int(counts.get(k, 0)) for k in values.cat.categories}
    elif not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        counts = units.value_counts(sort=False)   # text and logical columns: R's factor levels, sorted
        entry["counts"] = {_key(k): int(counts[k]) for k in sorted(counts.index)}
    elif pd.api.types.is_numeric_dtype(values):
        entry.update(mean=_number(units.mean()), sd=_number(units.std()),
                     min=_number(units.min()), max=_number(units.max()))
    return entry


def _centering_label(column, variable, how):
    kind, _ = centering_kind(how)
    if kind == "at":
        return f"centred at {how['at']}"
    ending = next(e for e in ("_gmc", "_mean", "_cwc") if column[len(variable):].startswith(e))
    return CENTERING_LABELS[ending]


def _one_row_per_unit(frame, column, levels, level):
    """The column's values, one per unit of its level (all rows for a level-1 variable)."""
    if level == 1:
        return frame[column]
    return frame.groupby(levels[level - 2], sort=True)[column].first()


def level_of(frame, column, levels):
    """The level at which a column varies: 1 when it varies within the units of the lowest
    grouping level, 2 when it is constant within them but not within those of the next, ..."""
    levels = [levels] if isinstance(levels, str) else list(levels)
    level = 1
    for group in levels:
        constant = frame.groupby(group, sort=False, observed=True)[column].nunique(dropna=False).le(1).all()
        if not constant:
            break
        level += 1
    return level


def _key(value):
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def _number(value):
    return None if pd.isna(value) else float(value)
