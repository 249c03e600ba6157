"""Did any number drift? The result records of a run compared with a results folder saved earlier.

Every JSON record under the saved folder (models, comparisons, derived statistics, and any
record kind added later) is walked the same way: each number is compared with the number at the
same key of the same file in the new results, at the tolerance of its key (the design's, listed
in README.md; a GLMM's record at the GLMM ones). True/false and null must be equal; text (labels, formulas, versions) is not
compared. A file, key or list item the new run lacks counts as a difference; one it adds does not.
"""
import fnmatch
import json
import math
from dataclasses import dataclass
from pathlib import Path

from ..errors import UsageError
from ..vocabulary import FAMILIES

TINY = 1e-15  # two numbers both smaller than this are equal (the design: p-values both < 1e-15)
UNREADABLE = object()


@dataclass(frozen=True)
class Tolerance:
    """Equal when |got - expected| <= atol + rtol * |expected|; integers (counts) ignore rtol."""
    rtol: float = 0.0
    atol: float = 0.0

    def allows(self, expected, got):
        if math.isinf(self.atol):
            return True
        if isinstance(expected, int) and isinstance(got, int):
            return abs(got - expected) <= self.atol
        if abs(expected) < TINY and abs(got) < TINY:
            return True
        return abs(got - expected) <= self.atol + self.rtol * abs(expected)

    def describe(self, counts=False):
        """'rel 1e-05', 'abs 0.001', 'exact' or 'not compared'; for counts, rtol does not apply."""
        if math.isinf(self.atol):
            return "not compared"
        parts = []
        if self.rtol and not counts:
            parts.append(f"rel {self.rtol:g}")
        if self.atol:
            parts.append(f"abs {self.atol:g}")
        return " + ".join(parts) or "exact"


# The design's tolerances by the key that holds a number: a mapping of names ("fixef" in
# {"fixef": {"ses": ...}}) or a row's column ("Estimate"). Keys are fnmatch patterns; "*" is
# every number no other key names.
TOLERANCES = {
    **dict.fromkeys(["logLik", "deviance", "REMLcrit", "AIC", "BIC", "fmin", "Chisq"], Tolerance(atol=1e-3)),
    **dict.fromkeys(["fixef", "Estimate"], Tolerance(rtol=1e-5)),
    **dict.fromkeys(["se", "Std. Error"], Tolerance(rtol=1e-4)),
    **dict.fromkeys(["vcov", "varcorr", "sdcor", "theta", "sigma", "icc", "r2_*", "variance_explained"],
                    Tolerance(rtol=1e-3)),
    **dict.fromkeys(["df", "Df", "df_*", "DenDF", "NumDF"], Tolerance(rtol=1e-2)),
    **dict.fromkeys(["p", "Pr(*"], Tolerance(rtol=1e-3)),
    "evaluations": Tolerance(atol=math.inf),  # the optimizer's path, not a result: machines may differ
    "*": Tolerance(rtol=1e-4),
}


# A GLMM's record (one with a family: glmer's) at the design's GLMM tolerances: fixed effects 1e-4
# and standard errors 1e-3 relative (z and the exp(β) ratios with them), the gradient of the deviance
# at the optimum (near 0) 1e-3 absolute; wherever the table still has its default for the key.
GLMM_TOLERANCES = {
    **dict.fromkeys(["fixef", "Estimate"], Tolerance(rtol=1e-4)),
    **dict.fromkeys(["se", "Std. Error", "z", "z value", "ratio*", "hessian"], Tolerance(rtol=1e-3)),
    "gradient": Tolerance(atol=1e-3),
}


def glmm_tolerances(table):
    """table with GLMM_TOLERANCES for the keys it holds at their defaults (a --rtol/--atol key stays)."""
    glmm = {key: value for key, value in GLMM_TOLERANCES.items() if table.get(key) == TOLERANCES.get(key)}
    return {**glmm, **{key: value for key, value in table.items() if key not in glmm}}


@dataclass(frozen=True)
class Difference:
    file: str
    key: str
    expected: str
    got: str
    allowed: str


@dataclass(frozen=True)
class Verification:
    """The outcome: how many records and numbers were compared, and what differs."""
    files: int
    numbers: int
    differences: tuple

    @property
    def ok(self):
        return not self.differences


def tolerances(rtol=(), atol=()):
    """TOLERANCES with the keys named in rtol / atol ("KEY=VALUE" each, as --rtol and --atol give
    them) replaced: a key given only an rtol is compared relatively, only an atol absolutely
    (atol inf: not compared). "*" is every number no other key names."""
    rtol, atol = _assignments("--rtol", rtol), _assignments("--atol", atol)
    named = {key: Tolerance(rtol.get(key, 0.0), atol.get(key, 0.0)) for key in [*rtol, *atol]}
    return {**named, **{key: value for key, value in TOLERANCES.items() if key not in named}}


def _assignments(option, items):
    out = {}
    for item in items:
        key, _, value = item.rpartition("=")
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        if not key or not number >= 0:
            raise UsageError(f"{option} '{item}': give KEY=VALUE with a number >= 0, e.g. {option} fixef=1e-6")
        out[key] = number
    return out


def tolerance_for(path, table=TOLERANCES):
    """The tolerance of the number at path (keys and list indices): the key of the mapping that
    holds it when it is one name among others (fixef.ses), else its own key (a row's Estimate),
    else the nearest key above it that the table names."""
    named = [key for key in path if isinstance(key, str)]
    order = named[::-1]
    if len(path) >= 2 and isinstance(path[-1], str) and isinstance(path[-2], str):
        order = [path[-2], path[-1], *named[-3::-1]]
    for key in order:
        for pattern, tolerance in table.items():
            if pattern != "*" and fnmatch.fnmatchcase(key, pattern):
                return tolerance
    return table["*"]


def verify(expected_dir, results_dir="results", table=TOLERANCES):
    """Compare every JSON record under expected_dir with the same file under results_dir."""
    expected_dir, results_dir = Path(expected_dir), Path(results_dir)
    for name, folder in (("expected results", expected_dir), ("results", results_dir)):
        if not folder.is_dir():
            raise UsageError(f"{name} folder '{folder}' does not exist")
    records = sorted(path.relative_to(expected_dir) for path in expected_dir.rglob("*.json"))
    if not records:
        raise UsageError(f"'{expected_dir}' holds no JSON result records; give the results folder of a saved run")
    differences, numbers = [], 0
    for record in records:
        file = record.as_posix()
        expected = _read(expected_dir / record)
        if expected is UNREADABLE:
            raise UsageError(f"'{expected_dir / record}' is not valid JSON; save the results folder again")
        if not (results_dir / record).is_file():
            differences.append(Difference(file, "", "a file", "missing", ""))
            continue
        got = _read(results_dir / record)
        if got is UNREADABLE:
            differences.append(Difference(file, "", "JSON", "not valid JSON", ""))
            continue
        glmm = isinstance(expected, dict) and expected.get("family") in FAMILIES
        check = _RecordCheck(file, glmm_tolerances(table) if glmm else table)
        check.walk(expected, got, ())
        differences += check.differences
        numbers += check.numbers
    return Verification(len(records), numbers, tuple(differences))


def _read(path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError):
        return UNREADABLE


class _RecordCheck:
    """The walk of one record: every number, true/false and null of the expected tree, checked."""

    def __init__(self, file, table):
        self.file, self.table = file, table
        self.differences, self.numbers = [], 0

    def walk(self, expected, got, path):
        if isinstance(expected, (dict, list)):
            self._children(expected, got, path)
        elif isinstance(expected, bool) or expected is None:
            if not (got is expected or (isinstance(got, bool) and got == expected)):
                self._differ(path, expected, got, "exact")
        elif isinstance(expected, (int, float)):
            self._number(expected, got, path)

    def _children(self, expected, got, path):
        if type(got) is not type(expected):
            self._differ(path, expected, got, "")
            return
        items = expected.items() if isinstance(expected, dict) else enumerate(expected)
        for key, value in items:
            if (key in got) if isinstance(got, dict) else (key < len(got)):
                self.walk(value, got[key], (*path, key))
            else:
                self._differ((*path, key), value, "missing", "")

    def _number(self, expected, got, path):
        self.numbers += 1
        tolerance = tolerance_for(path, self.table)
        if isinstance(got, bool) or not isinstance(got, (int, float)) or not tolerance.allows(expected, got):
            counts = isinstance(expected, int) and isinstance(got, int)
            self._differ(path, expected, got, tolerance.describe(counts))

    def _differ(self, path, expected, got, allowed):
        self.differences.append(Difference(self.file, key_text(path), _text(expected), _text(got), allowed))


def key_text(path):
    """fixef.ses:disclim, coefficients[2].Estimate: the path of a number as a reader writes it."""
    text = ""
    for key in path:
        text += f"[{key}]" if isinstance(key, int) else (f".{key}" if text else key)
    return text


def _text(value):
    if isinstance(value, (dict, list)):
        return "a mapping" if isinstance(value, dict) else "a list"
    return json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else value


def format_differences(differences):
    """The differences as an aligned text table (file, key, expected, got, allowed)."""
    rows = [("file", "key", "expected", "got", "allowed")]
    rows += [(d.file, d.key, d.expected, d.got, d.allowed) for d in differences]
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip()
                     for row in rows)
