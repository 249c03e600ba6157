"""Reading data files (with SPSS/Stata labels) and centering predictors.

Every reader returns the same thing, so the rest of hlm never cares about the file format.
"""
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


def center(frame, variable, how, group=None):
    """Return the frame with centred copies of `variable` added.

    grand: `<v>_gmc` = v - mean(v); group: `<v>_cwc` = v - mean of v in its group, plus
    `<v>_mean`, the group mean, as a level-2 predictor (the seed's contextual-effects setup).
    """
    require_columns(frame, [variable], "centering variable")
    out = frame.copy()
    values = pd.to_numeric(out[variable], errors="coerce")
    if how == "grand":
        out[f"{variable}_gmc"] = values - values.mean()
    elif how == "group":
        if group is None:
            raise DataError(f"group-mean centering of '{variable}' needs the group id (data.group)")
        require_columns(frame, [group], "group id")
        means = values.groupby(out[group]).transform("mean")
        out[f"{variable}_mean"] = means
        out[f"{variable}_cwc"] = values - means
    elif how != "none":
        raise DataError(f"centering '{how}' for '{variable}' is unknown; use grand, group or none")
    return out


CENTERED_COLUMNS = {"grand": ("_gmc",), "group": ("_mean", "_cwc"), "none": ()}
CENTERING_LABELS = {"_gmc": "grand-mean centred", "_mean": "group mean", "_cwc": "group-mean centred"}


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


def centered_columns(variable, how):
    """The columns `center(frame, variable, how)` adds, e.g. ses, group -> [ses_mean, ses_cwc]."""
    return [f"{variable}{suffix}" for suffix in CENTERED_COLUMNS[how]]


def source_variable(column, centering):
    """The data column a (possibly centred) column comes from: ses_cwc -> ses."""
    for variable, methods in centering.items():
        for how in methods:
            if column in centered_columns(variable, how):
                return variable
    return column


def prepare(dataset, group, centering, complete=None, missing_codes=()):
    """The analysed table and its summary.

    Values in `missing_codes` become missing (in every column but the group id, whose values
    are labels: school -99 stays school -99); rows without a group id are dropped; when
    `complete` lists variables, rows missing any of them are dropped (listwise deletion);
    then each `centering` entry (variable -> list of grand/group/none) adds its columns.
    """
    frame = dataset.frame
    require_columns(frame, [group], "group id")
    require_columns(frame, complete or [], "variable")
    frame = _as_missing(frame, missing_codes, keep=group)
    frame[group] = _tidy_ids(frame[group])
    read = len(frame)
    required = [group] + [v for v in (complete or []) if v != group]
    missing = {v: int(frame[v].isna().sum()) for v in required}
    frame = frame.loc[frame[required].notna().all(axis=1)].reset_index(drop=True)
    for variable, methods in centering.items():
        for how in methods:
            frame = center(frame, variable, how, group)
    summary = describe(frame, dataset, group, centering)
    summary.update(n_read=read, n_dropped=read - len(frame), missing_by_variable=missing,
                   complete_cases_on=sorted(complete) if complete is not None else None)
    return frame, summary


def _as_missing(frame, codes, keep):
    """Values in `codes` become missing in every column but `keep` (the group id)."""
    frame = frame.copy()
    if not codes:
        return frame
    for column in frame.columns:
        if column != keep:
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


def describe(frame, dataset, group, centering):
    """N, groups, group sizes and one entry per column (label, level, descriptives)."""
    sizes = frame.groupby(group, sort=True).size()
    derived = {c: (v, how) for v, methods in centering.items() for how in methods
               for c in centered_columns(v, how)}
    return {
        "group": group,
        "n": int(len(frame)),
        "n_groups": int(len(sizes)),
        "group_sizes": {
            "min": int(sizes.min()) if len(sizes) else 0,
            "max": int(sizes.max()) if len(sizes) else 0,
            "mean": float(sizes.mean()) if len(sizes) else 0.0,
            "median": float(sizes.median()) if len(sizes) else 0.0,
            "counts": {_key(level): int(count) for level, count in sizes.items()},
        },
        "centering": {v: list(methods) for v, methods in sorted(centering.items())},
        "variables": [_describe_column(frame, column, dataset, group, derived.get(column))
                      for column in frame.columns],
    }


def _describe_column(frame, column, dataset, group, derived):
    values = frame[column]
    entry = {"name": column,
             "label": dataset.variable_labels.get(column, ""),
             "level": "group" if column == group else level_of(frame, column, group),
             "dtype": str(values.dtype),
             "n_missing": int(values.isna().sum())}
    if derived is not None:
        variable, how = derived
        suffix = column[len(variable):]
        entry["label"] = f"{variable}, {CENTERING_LABELS[suffix]}"
        entry["derived_from"] = variable
        entry["centering"] = how
    if column in dataset.value_labels:
        entry["value_labels"] = {_key(k): v for k, v in dataset.value_labels[column].items()}
    if pd.api.types.is_numeric_dtype(values) and column != group:
        entry.update(mean=_number(values.mean()), sd=_number(values.std()),
                     min=_number(values.min()), max=_number(values.max()))
    return entry


def level_of(frame, column, group):
    """2 when the column is constant within every group (a school characteristic), else 1."""
    constant = frame.groupby(group, sort=False)[column].nunique(dropna=False).le(1).all()
    return 2 if constant else 1


def _key(value):
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def _number(value):
    return None if pd.isna(value) else float(value)
