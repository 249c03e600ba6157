"""Atomic, deterministic writers of result files.

A temporary file in the same folder, then os.replace, so an interrupted run never leaves half a
file; no clocks and a fixed key order, so the same config and data give byte-identical files.
"""
import json
import math
import os
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

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
    return json.loads(Path(path).read_text(encoding="utf-8"))


def read_table(path):
    return pd.read_parquet(path)


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
