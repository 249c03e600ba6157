"""Model building: from a parsed formula and a DataFrame to y, X and the random-effects terms.

Columns are named and ordered as R's model.matrix names them (treatment contrasts, `sexM`,
`ses:disclim`), rows with a missing value in any used column are dropped and counted, and
the random-effects terms come in lme4's order (decreasing number of levels).
"""
import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import DataError, FormulaError, ModelError, did_you_mean
from ..vocabulary import FAMILIES
from .formula import Binary, Call, Name, Number, Paren, Unary, deparse, parse_expression, parse_formula

log = logging.getLogger(__name__)

RANK_TOLERANCE = 1e-7  # R's qr() tolerance, as lme4 uses it to drop columns

NUMERIC_FUNCTIONS = {
    "log": np.log, "log10": np.log10, "log2": np.log2, "exp": np.exp, "sqrt": np.sqrt,
    "abs": np.abs, "I": lambda x: x, "as.numeric": lambda x: x,
    "scale": lambda x: (x - x.mean()) / x.std(ddof=1), "offset": lambda x: x,
}
FACTOR_FUNCTIONS = {"factor", "as.factor"}
ARITHMETIC = {"+": np.add, "-": np.subtract, "*": np.multiply, "/": np.divide, "^": np.power}


@dataclass(frozen=True)
class Factor:
    """A categorical variable: integer codes into `levels` (level names as R prints them)."""
    codes: np.ndarray
    levels: tuple


@dataclass(frozen=True)
class RandomEffectsTerm:
    """One `(columns | group)` term: Z_k is `matrix` spread over the levels of `group`."""
    group: str
    columns: tuple
    matrix: np.ndarray      # (n, q) model matrix of the term's left-hand side
    codes: np.ndarray       # (n,) level index of each row
    levels: tuple

    @property
    def q(self):
        return len(self.columns)

    @property
    def nlevels(self):
        return len(self.levels)

    @property
    def theta_size(self):
        return self.q * (self.q + 1) // 2


@dataclass(frozen=True)
class Design:
    formula: str
    response: str
    y: np.ndarray
    X: np.ndarray
    fixed_names: tuple
    dropped_columns: tuple
    terms: tuple            # RandomEffectsTerm, in lme4's order
    rows: np.ndarray        # positions of the rows used, in the data passed in
    n_dropped_rows: int
    messages: tuple
    offset: np.ndarray = None   # the sum of the formula's offset() terms (GLMMs), None without any

    @property
    def n(self):
        return len(self.y)

    @property
    def p(self):
        return self.X.shape[1]


def build_design(formula_text, data, response=None):
    """Parse the formula and build y, X and the random-effects terms from the data.

    `response(variable, frame)` turns the response into y; by default the numeric outcome of a
    linear mixed model. A GLMM passes its family's reader, and may then have offset() terms and
    an observation-level random effect (as many levels as rows), as glmer allows.
    """
    if not isinstance(data, pd.DataFrame):
        raise DataError("data must be a pandas DataFrame")
    formula = parse_formula(formula_text)
    if not formula.random:
        raise FormulaError(f"formula '{formula_text}' has no random term such as (1 | group); "
                           "a model without random effects is an ordinary regression: use OLS "
                           "(statsmodels.formula.api.ols)")
    frame, messages = _defined_rows(formula, _complete_rows(formula, data))
    if response is None and formula.offsets:
        raise FormulaError(f"'{formula.offsets[0].label}' in formula '{formula_text}': offsets are for "
                           "generalized linear mixed models (hlm.glmer); subtract it from the response instead")
    y = (response or _response)(formula.response, frame)
    if response is None and len(np.unique(y)) == 2:
        messages.append(two_valued_message(formula.response.label, y))
    X, names = model_matrix(formula.fixed, frame)
    X, names, dropped = drop_rank_deficient(X, names)
    if dropped:
        messages.append(f"fixed-effect model matrix is rank deficient so dropping {len(dropped)} "
                        f"column{'s' if len(dropped) > 1 else ''} / coefficient{'s' if len(dropped) > 1 else ''}"
                        f" ({', '.join(dropped)})")
    terms = [_random_term(term, frame) for term in formula.random]
    terms.sort(key=lambda t: -t.nlevels)  # lme4's reorder.terms; stable for ties
    for term in terms:
        if term.nlevels < 2:
            raise ModelError(f"grouping factor '{term.group}' has only {term.nlevels} level; "
                             "a random effect needs at least two groups")
        if term.nlevels >= len(y) and term.q == 1 and response is None:
            raise ModelError(f"grouping factor '{term.group}' has as many levels ({term.nlevels}) as "
                             f"there are observations ({len(y)}); its variance is not identifiable")
    for message in messages:
        log.warning(message)
    offset = sum(evaluate(v.node, frame) for v in formula.offsets) if formula.offsets else None
    return Design(formula_text, formula.response.label, y, X, tuple(names), tuple(dropped),
                  tuple(terms), frame.rows, len(data) - len(frame), tuple(messages), offset)


def two_valued_message(label, y):
    """The warning for an outcome with two values fitted as continuous: a GLMM suits it."""
    low, high = (level_name(v) for v in np.unique(y))
    return (f"the outcome '{label}' takes only two values ({low}, {high}): a linear mixed model treats it as "
            f"continuous; for a binary outcome fit a GLMM with family: {FAMILIES[0]} (hlm.glmer)")


def used_columns(node, found=None):
    """Names of the data columns an expression (or a parsed formula's node) refers to."""
    found = [] if found is None else found
    if isinstance(node, Name):
        found.append(node.name)
    elif isinstance(node, Call):
        for arg in node.args:
            used_columns(arg, found)
    elif isinstance(node, Binary):
        used_columns(node.left, found)
        used_columns(node.right, found)
    elif isinstance(node, (Unary, Paren)):
        used_columns(node.operand if isinstance(node, Unary) else node.inner, found)
    return found


@dataclass(frozen=True)
class Columns:
    """The used columns on the rows a model keeps: what evaluate() and model_matrix() read.

    A plain mapping of Series, because subsetting a DataFrame costs more than fitting a
    small model. `rows` are the kept rows' positions in the user's data.
    """
    series: dict
    rows: np.ndarray

    def __getitem__(self, name):
        return self.series[name]

    def __len__(self):
        return len(self.rows)

    def subset(self, keep):
        return Columns({c: v[keep].reset_index(drop=True) for c, v in self.series.items()}, self.rows[keep])


def _variable_nodes(formula):
    nodes = [formula.response, *formula.offsets] + [v for t in formula.fixed.terms for v in t]
    return nodes + [v for term in formula.random for t in term.lhs.terms for v in t]


def _complete_rows(formula, data):
    """The formula's columns on rows with every one present (lme4's na.omit). As in R's model
    frame, a column counts even where its term is removed again (`y ~ x + z - z`)."""
    columns = list(dict.fromkeys(used_columns(parse_expression(formula.text))))
    for column in columns:
        if column not in data.columns:
            raise FormulaError(f"column '{column}' not in data{did_you_mean(column, data.columns)}")
    series = {c: data[c] for c in columns}
    missing = np.zeros(len(data), dtype=bool)
    for values in series.values():
        missing |= values.isna().to_numpy()
    if missing.all():
        raise DataError(f"every row has a missing value in one of {', '.join(columns)}; nothing to fit")
    frame = Columns(series, np.arange(len(data)))
    return frame.subset(~missing) if missing.any() else frame


def _defined_rows(formula, frame):
    """Drop rows where a computed variable such as log(x) is undefined (NaN), as R's na.omit
    does after evaluating the formula; an infinite value is an error, as in R."""
    undefined, labels = np.zeros(len(frame), dtype=bool), []
    for variable in _variable_nodes(formula):
        value = evaluate(variable.node, frame)
        if isinstance(value, Factor):
            continue
        value = np.asarray(value, dtype=float).reshape(len(frame), -1)   # cbind() has two columns
        if np.isinf(value).any():
            raise DataError(f"'{variable.label}' is infinite in {int(np.isinf(value).any(axis=1).sum())} rows; "
                            "transform or recode the variable")
        if np.isnan(value).any():
            undefined |= np.isnan(value).any(axis=1)
            labels.append(variable.label)
    if undefined.all():
        raise DataError(f"{', '.join(labels)} is undefined (NaN) on every row; nothing to fit")
    if not undefined.any():
        return frame, []
    message = f"{int(undefined.sum())} rows dropped where {', '.join(labels)} is undefined (NaN)"
    return frame.subset(~undefined), [message]


def _response(variable, frame):
    value = evaluate(variable.node, frame)
    if isinstance(value, Factor) or not np.issubdtype(np.asarray(value).dtype, np.number):
        raise DataError(f"response '{variable.label}' is not numeric; a linear mixed model needs a "
                        "numeric outcome (recode it or choose another column)")
    if np.ndim(value) != 1:
        raise DataError(f"response '{variable.label}' has {np.shape(value)[1]} columns; counts of successes and "
                        f"failures need a GLMM with family: {FAMILIES[0]} (hlm.glmer)")
    return np.asarray(value, dtype=float)


def evaluate(node, frame):
    """Value of an expression on the frame: a float array or a Factor."""
    if isinstance(node, Name):
        return _column(frame[node.name])
    if isinstance(node, Number):
        return np.full(len(frame), float(node.text))
    if isinstance(node, Paren):
        return evaluate(node.inner, frame)
    if isinstance(node, Unary):
        return -_numeric(evaluate(node.operand, frame), node) if node.op == "-" else evaluate(node.operand, frame)
    if isinstance(node, Binary) and node.op in ARITHMETIC:
        left, right = _numeric(evaluate(node.left, frame), node), _numeric(evaluate(node.right, frame), node)
        return ARITHMETIC[node.op](left, right)
    if isinstance(node, Call) and node.func == "cbind" and len(node.args) >= 2:   # a binomial response
        return np.column_stack([_numeric(evaluate(arg, frame), node) for arg in node.args])
    if isinstance(node, Call) and len(node.args) == 1:
        value = evaluate(node.args[0], frame)
        if node.func in FACTOR_FUNCTIONS:
            return value if isinstance(value, Factor) else _factor(pd.Series(value))
        if node.func in NUMERIC_FUNCTIONS:
            with np.errstate(invalid="ignore", divide="ignore"):  # NaN rows are dropped, -inf refused
                return NUMERIC_FUNCTIONS[node.func](_numeric(value, node))
    raise FormulaError(f"'{deparse(node)}' is not supported in a formula; use a column, I(...), "
                       f"factor(), or one of {', '.join(sorted(NUMERIC_FUNCTIONS))}")


def _numeric(value, node):
    if isinstance(value, Factor):
        raise FormulaError(f"'{deparse(node)}' does arithmetic on a categorical variable")
    return value


def _column(series):
    if isinstance(series.dtype, pd.CategoricalDtype) or series.dtype == object \
            or pd.api.types.is_string_dtype(series) or pd.api.types.is_bool_dtype(series):
        return _factor(series)
    return series.to_numpy(dtype=float)


def _factor(series):
    """A Factor with R's level order: a Categorical's own, FALSE/TRUE, else sorted; unused dropped."""
    if isinstance(series.dtype, pd.CategoricalDtype):
        series = series.cat.remove_unused_categories()
        return Factor(series.cat.codes.to_numpy(), tuple(level_name(c) for c in series.cat.categories))
    codes, uniques = pd.factorize(series, sort=True)  # hashing: no sorted copy of a long column
    return Factor(codes, tuple(level_name(u) for u in uniques))


def level_name(value):
    """A level as R prints it: 1224 not 1224.0, TRUE/FALSE for booleans."""
    if isinstance(value, (bool, np.bool_)):
        return "TRUE" if value else "FALSE"
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value)


def model_matrix(terms, frame):
    """R's model.matrix with treatment contrasts: (matrix, column names)."""
    n = len(frame)
    columns, names = [], []
    if terms.intercept:
        columns.append(np.ones(n))
        names.append("(Intercept)")
    present = {frozenset()} if terms.intercept else set()
    present |= {frozenset(v.label for v in term) for term in terms.terms}
    for term in terms.terms:
        labels = frozenset(v.label for v in term)
        parts = [_coded(variable, frame, contrast=(labels - {variable.label}) in present)
                 for variable in term]
        block_names, block = [""], [None]  # None: the empty product, so no column is copied
        for part_names, part in parts:  # the first variable varies fastest, as in R
            block_names = [f"{a}:{b}" if a else b for b in part_names for a in block_names]
            block = [b if a is None else a * b for b in part for a in block]
        names += block_names
        columns += block
    X = np.column_stack(columns) if columns else np.empty((n, 0))
    return X, names


def _coded(variable, frame, contrast):
    """The columns of one variable: itself if numeric, else one indicator per (non-baseline) level."""
    value = evaluate(variable.node, frame)
    if not isinstance(value, Factor):
        return [variable.label], [np.asarray(value, dtype=float)]
    levels = value.levels[1:] if contrast else value.levels
    start = 1 if contrast else 0
    return ([f"{variable.label}{level}" for level in levels],
            [(value.codes == k).astype(float) for k in range(start, len(value.levels))])


def drop_rank_deficient(X, names):
    """Drop columns that are linear combinations of earlier ones, as R's qr(tol = 1e-7) does."""
    if X.shape[1] == 0:
        return X, list(names), []
    r = _r_factor(X)
    norms = np.sqrt(np.einsum("ij,ij->j", X, X))  # no n×p temporary, unlike np.linalg.norm
    keep = np.abs(np.diag(r)) > RANK_TOLERANCE * np.where(norms > 0, norms, 1.0)
    if keep.all():
        return X, list(names), []
    dropped = [name for name, k in zip(names, keep) if not k]
    return X[:, keep], [name for name, k in zip(names, keep) if k], dropped


def _r_factor(X, rows=65536):
    """R of X = QR, chunk by chunk (a QR of the stacked R's is the QR of X): the same R as
    one Householder QR, without copying a million-row X."""
    r = np.zeros((0, X.shape[1]))
    for start in range(0, len(X), rows):
        r = np.linalg.qr(np.vstack([r, X[start:start + rows]]), mode="r")
    return r


def _random_term(term, frame):
    matrix, columns = model_matrix(term.lhs, frame)
    if not columns:
        raise FormulaError(f"random term '(0 | {':'.join(term.group)})' has no columns")
    factor = _grouping_factor(term.group, frame)
    return RandomEffectsTerm(":".join(term.group), tuple(columns), matrix, factor.codes, factor.levels)


def _grouping_factor(names, frame):
    """The grouping factor; `a:b` is the factor of observed combinations, levels `a:b`."""
    factors = [_factor(frame[name]) for name in names]
    if len(factors) == 1:
        return factors[0]
    codes = np.column_stack([f.codes for f in factors])
    combos, inverse = np.unique(codes, axis=0, return_inverse=True)
    levels = tuple(":".join(f.levels[c] for f, c in zip(factors, combo)) for combo in combos)
    return Factor(inverse.ravel(), levels)
