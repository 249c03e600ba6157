"""Atomic, deterministic writers of result files, and readers that check them.

A temporary file in the same folder, then os.replace, so an interrupted run never leaves half a
file; no clocks and a fixed key order, so the same config and data give byte-identical files.
A file damaged afterwards (truncated by a full disk, edited) is refused in one line when read,
and made out of date (outdate_damaged) so that the next run rebuilds it.
"""
import hashlib
import json
import logging
import math
import os
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow
import pyarrow.parquet

from ..errors import ResultsError

log = logging.getLogger(__name__)

TEMPORARY_SUFFIX = ".tmp"


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
    """A JSON result file's object, or a ResultsError naming the file."""
    try:
        value = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ResultsError(f"result file '{path}' is missing; run the analysis again to write it") from exc
    except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError is a ValueError
        raise _damaged(path, f"not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise _damaged(path, "not a JSON object")
    return value


def read_table(path):
    """A parquet result file's table, or a ResultsError naming the file."""
    try:
        return pd.read_parquet(path)
    except FileNotFoundError as exc:
        raise ResultsError(f"result file '{path}' is missing; run the analysis again to write it") from exc
    except (pyarrow.ArrowException, OSError, ValueError) as exc:  # ArrowInvalid: truncated, not parquet
        raise _damaged(path, f"not a parquet table: {exc}") from exc


def _damaged(path, why):
    first_line = " ".join(str(why).split("\n")[0].split())[:200]
    return ResultsError(f"result file '{path}' is damaged ({first_line}); run the analysis again "
                        "(snakemake --cores 2, or hlm run) to rebuild it")


def is_intact(path):
    """Whether an existing JSON or parquet result file reads (parquet: its footer and schema)."""
    try:
        if str(path).endswith(".parquet"):
            pyarrow.parquet.read_metadata(path)
        elif str(path).endswith(".json"):
            read_json(path)
    except (ResultsError, pyarrow.ArrowException, OSError):
        return False
    return True


def outdate_damaged(paths):
    """Give each damaged result file among paths the oldest possible time, so that Snakemake
    (its output older than its input) reruns the job that writes it; returns those files."""
    damaged = [path for path in paths if Path(path).is_file() and not is_intact(path)]
    for path in damaged:
        os.utime(path, (0, 0))
        log.warning("result file '%s' is damaged; the job that writes it runs again", path)
    return damaged


def file_sha256(path):
    """The SHA-256 of a file's content, read in blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _atomic(path, write):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMPORARY_SUFFIX, dir=path.parent)
    os.close(fd)
    os.chmod(tmp, 0o644)  # mkstemp makes owner-only files; results are ordinary readable files
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def leftover_temporary_files(folder):
    """Temporary files of writes whose process was killed (kill -9 skips _atomic's cleanup)."""
    return sorted(Path(folder).rglob(f".*{TEMPORARY_SUFFIX}"))


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
