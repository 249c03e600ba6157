"""Model building: from a parsed formula and a DataFrame to y, X and the random-effects terms.

Columns are named and ordered as R's model.matrix names them (treatment contrasts, `sexM`,
`ses:disclim`), rows with a missing value in any used column are dropped and counted, and
the random-effects terms come in lme4's order (decreasing number of levels).

The design also keeps what R's model frame and terms know, so that no later step reads it back
from column names: the term of each column of X (R's `assign`), each fixed term's label and
variables, and each variable's kind (numeric, or a factor with its levels) and level (the
grouping factors within whose groups it is constant).
"""
import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..errors import DataError, FormulaError, ModelError, did_you_mean
from ..escape import one_line
from ..vocabulary import FAMILIES
from .covariance import read_only
from .formula import Binary, Call, Name, Number, Paren, Unary, deparse, parse_formula

log = logging.getLogger(__name__)

RANK_TOLERANCE = 1e-7  # R's qr() tolerance, as lme4 uses it to drop columns
SCALE_TOLERANCE = 1e3  # lme4's check.scaleX: predictors' standard deviations beyond 1e±3, or that far apart
SCALE_MESSAGE = "Some predictor variables are on very different scales: consider rescaling"   # lme4's words

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
    label: str = ""         # as lme4 names the term: 'Days | Subject'

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
class FixedTerm:
    """One term of the fixed part as R's terms() labels it: 'ses:disclim', variables ('ses', 'disclim')."""
    label: str
    variables: tuple        # variable labels, in the term's order


@dataclass(frozen=True)
class VariableInfo:
    """What the model frame says of one variable of the fixed or random-effects terms.

    `levels` is None for a numeric variable; for a factor, its level names in R's order, the
    first the reference level of treatment contrasts. `constant_within` names the grouping
    factors (lme4's order) within whose every group the variable takes one value. `level`
    follows from it: 1 when it varies within the groups of the innermost factor, 2 when it is
    constant within them, 3 when it is constant within the groups of the factor those are
    nested in, and so on up the nesting (a crossed factor is no level up).
    """
    label: str
    levels: tuple | None
    constant_within: tuple
    level: int

    @property
    def kind(self):
        return "numeric" if self.levels is None else "factor"

    @property
    def reference(self):
        return None if self.levels is None else self.levels[0]


@dataclass(frozen=True)
class Design:
    """y, X and the random-effects terms of a formula on its data, with the formula's structure.

    `assign` is R's: for each column of X, 0 for the intercept or k for the k-th of
    `fixed_terms` (counting from 1). `variables` describes every variable of the fixed and
    random-effects terms, in the order they first appear.
    """
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
    parsed_formula: object  # formula.Formula
    assign: tuple
    fixed_terms: tuple      # FixedTerm
    variables: tuple        # VariableInfo
    offset: np.ndarray = None   # the sum of the formula's offset() terms (GLMMs), None without any

    @property
    def n(self):
        return len(self.y)

    @property
    def p(self):
        return self.X.shape[1]

    def variable(self, label):
        """The VariableInfo of a variable of the formula's terms, by its label."""
        return {v.label: v for v in self.variables}[label]

    def term_columns(self, k):
        """The names of the columns of fixed_terms[k] (those R's assign numbers k + 1)."""
        return tuple(name for name, term in zip(self.fixed_names, self.assign) if term == k + 1)

    @property
    def data_columns(self):
        """The data columns the formula reads (R's model frame), removed terms' columns too."""
        return tuple(dict.fromkeys(used_columns(self.parsed_formula.tree)))


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
    if response is None:
        messages += _outcome_messages(formula.response.label, y)
    X, names, assign, dropped = _full_rank(*model_matrix(formula.fixed, frame))
    if dropped:
        messages.append(f"fixed-effect model matrix is rank deficient so dropping {len(dropped)} "
                        f"column{'s' if len(dropped) > 1 else ''} / coefficient{'s' if len(dropped) > 1 else ''}"
                        f" ({', '.join(map(one_line, dropped))})")
    if scale := _scale_message(X, names):
        messages.append(scale)
    terms = [_random_term(term, frame) for term in formula.random]
    terms.sort(key=lambda t: -t.nlevels)  # lme4's reorder.terms; stable for ties
    _check_random_effects(terms, len(y), glmm=response is not None)
    for message in messages:
        log.warning(message)
    offset = sum(evaluate(v.node, frame) for v in formula.offsets) if formula.offsets else None
    fixed_terms = tuple(FixedTerm(":".join(v.label for v in term), tuple(v.label for v in term))
                        for term in formula.fixed.terms)
    return Design(formula_text, formula.response.label, read_only(y), read_only(X), tuple(names), tuple(dropped),
                  tuple(terms), read_only(frame.rows), len(data) - len(frame), tuple(messages),
                  formula, tuple(assign), fixed_terms, _variables(formula, frame, terms),
                  None if offset is None else read_only(offset))


def _check_random_effects(terms, n, glmm=False):
    """lmer's default checks, in lme4's words (checkNlevels, checkZdims in lme4's R/utilities.R);
    glmer's defaults skip the two that compare with the number of observations, which an
    observation-level random effect (overdispersion) would fail."""
    factors = {term.group: term.nlevels for term in terms}
    if any(nlevels < 2 for nlevels in factors.values()):
        few = [group for group, nlevels in factors.items() if nlevels < 2]
        raise ModelError(f"grouping factors must have > 1 sampled level (problems: {', '.join(few)}); "
                         "a random effect needs at least two groups")
    if glmm:
        return
    if too_many := [group for group, nlevels in factors.items() if nlevels >= n]:
        raise ModelError("number of levels of each grouping factor must be < number of observations "
                         f"(problems: {', '.join(too_many)})")
    for term in terms:
        if n <= term.nlevels * term.q:
            raise ModelError(f"number of observations (={n}) <= number of random effects "
                             f"(={term.nlevels * term.q}) for term ({term.label}); the random-effects "
                             "parameters and the residual variance (or scale parameter) are probably "
                             "unidentifiable")


def _scale_message(X, names):
    """lme4's checkScaleX warning, naming the columns: among the columns of X that are not only 0s
    and 1s (the intercept, indicators), one with a standard deviation beyond SCALE_TOLERANCE or below
    its inverse, or two whose standard deviations are that far apart. None if there is none."""
    if X.shape[0] < 2 or X.shape[1] == 0:
        return None
    from .kernels import column_spreads  # here: the config check imports this module, and needs no numba
    spreads, binary = column_spreads(np.ascontiguousarray(X))
    checked = [(sd, name) for sd, name, is_binary in zip(spreads, names, binary) if not is_binary]
    if not checked:
        return None
    with np.errstate(divide="ignore"):     # a constant column's sd 0: infinitely far, as in R
        logs = np.log([sd for sd, _ in checked])
    limit = np.log(SCALE_TOLERANCE)
    if not (np.abs(logs).max() > limit or logs.max() - logs.min() > limit):
        return None
    outside = [f"{one_line(name)} is {sd:.3g}" for (sd, name), log_sd in zip(checked, logs) if abs(log_sd) > limit]
    if outside:
        return f"{SCALE_MESSAGE} (the standard deviation of {', of '.join(outside)})"
    (low, low_name), (high, high_name) = min(checked), max(checked)
    return (f"{SCALE_MESSAGE} (the standard deviations of {one_line(low_name)}, {low:.3g}, and of "
            f"{one_line(high_name)}, {high:.3g}, are more than {SCALE_TOLERANCE:,.0f} times apart)")


def _full_rank(X, names, assign):
    """X, its names and assign without the columns lme4 drops as rank deficient; and their names."""
    keep = full_rank_columns(X)
    if keep.all():
        return X, names, assign, []
    dropped = [name for name, k in zip(names, keep) if not k]
    return X[:, keep], [n for n, k in zip(names, keep) if k], [a for a, k in zip(assign, keep) if k], dropped


def _variables(formula, frame, terms):
    """VariableInfo of each variable of the fixed and random-effects terms."""
    factors = list({term.group: term for term in terms}.values())  # one term per grouping factor
    nesting = _nesting(factors)
    found = {}
    for variable in _variable_nodes(formula)[1:]:
        if variable.label in found:
            continue
        value = evaluate(variable.node, frame)
        values = value.codes if isinstance(value, Factor) else np.asarray(value, dtype=float)
        constant = tuple(f.group for f in factors if _constant_within(values, f))
        level = 1 + next((i for i, f in enumerate(nesting) if f.group not in constant), len(nesting))
        found[variable.label] = VariableInfo(variable.label, value.levels if isinstance(value, Factor) else None,
                                             constant, level)
    return tuple(found.values())


def _nesting(factors):
    """The grouping factors from the innermost up: the first (most levels), then each later
    factor that the previous one is nested in (classes in schools in districts)."""
    chain = factors[:1]
    for factor in factors[1:]:
        if _constant_within(factor.codes, chain[-1]):
            chain.append(factor)
    return chain


def nested_in(terms):
    """Grouping factor -> the model's other factors it is nested in (each of its groups lies in
    one of theirs); two factors neither of which is nested in the other are crossed."""
    factors = {term.group: term for term in terms}
    return {group: [other for other, outer in factors.items() if other != group and _constant_within(outer.codes, inner)]
            for group, inner in factors.items()}


def _constant_within(values, factor):
    """Whether values take one value within each group of a grouping factor (its codes)."""
    one_each = np.empty(factor.nlevels, dtype=values.dtype)
    one_each[factor.codes] = values  # any value of each group: all equal it when the group is constant
    return bool(np.array_equal(one_each[factor.codes], values))


def _outcome_messages(label, y):
    """A linear mixed model's outcome: refused if constant; a warning if it takes two values only,
    fitted as continuous, where a GLMM suits it (found from its extremes: np.unique would sort a copy)."""
    low, high = y.min(), y.max()
    if low == high:
        raise ModelError(f"the outcome '{label}' is constant (every value is {low:g}); "
                         "a mixed model needs an outcome that varies: check the column or the missing codes")
    if not np.all((y == low) | (y == high)):
        return []
    return [(f"the outcome '{label}' takes only two values ({level_name(low)}, {level_name(high)}): a linear mixed "
             f"model treats it as continuous; for a binary outcome fit a GLMM with family: {FAMILIES[0]} (hlm.glmer)")]


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
    small model. `rows` are the kept rows' positions in the user's data. Each column is
    coded once (numbers, or a factor's codes and levels) and then read from `coded`: the
    formula names a column several times (response, terms, grouping, checks), and coding a
    text column costs more than the rest of a small design.
    """
    series: dict
    rows: np.ndarray
    coded: dict = field(default_factory=dict, repr=False, compare=False)

    def __getitem__(self, name):
        return self.series[name]

    def __len__(self):
        return len(self.rows)

    def subset(self, keep):
        return Columns({c: v[keep].reset_index(drop=True) for c, v in self.series.items()}, self.rows[keep])

    def value(self, name):
        """The column as evaluate() reads it: a float array, or a Factor if it is categorical."""
        return self._once(("value", name), lambda: _column(self.series[name]))

    def factor(self, name):
        """The column as a grouping factor (numbers too are levels); a text or categorical column
        that value() coded already is that Factor (the same codes and levels, coded once)."""
        coded = self.coded.get(("value", name))
        if isinstance(coded, Factor):
            return coded
        return self._once(("factor", name), lambda: _factor(self.series[name]))

    def _once(self, key, code):
        if key not in self.coded:
            value = code()
            if isinstance(value, np.ndarray):   # shared by every reader: none may write to it
                value = value.view()
                value.flags.writeable = False
            self.coded[key] = value
        return self.coded[key]


def _variable_nodes(formula):
    nodes = [formula.response, *formula.offsets] + [v for t in formula.fixed.terms for v in t]
    return nodes + [v for term in formula.random for t in term.lhs.terms for v in t]


def _complete_rows(formula, data):
    """The formula's columns on rows with every one present (lme4's na.omit). As in R's model
    frame, a column counts even where its term is removed again (`y ~ x + z - z`)."""
    columns = list(dict.fromkeys(used_columns(formula.tree)))
    for column in columns:
        if column not in data.columns:
            raise FormulaError(f"column '{column}' not in data{did_you_mean(column, data.columns)}")
    series = {c: data[c] for c in columns}
    missing = np.zeros(len(data), dtype=bool)
    for values in series.values():
        missing |= _missing(values)
    if missing.all():
        raise DataError(f"every row has a missing value in one of {', '.join(columns)}; nothing to fit")
    frame = Columns(series, np.arange(len(data)))
    return frame.subset(~missing) if missing.any() else frame


def _missing(series):
    """Which values are missing; numpy columns, and pandas' extension arrays (text, nullable
    integers) through their own isna, without pandas' general one (its cost is a small fit's)."""
    if not isinstance(series.dtype, np.dtype):
        return np.asarray(series.array.isna(), dtype=bool)
    if series.dtype.kind in "iub":
        return np.zeros(len(series), dtype=bool)   # numpy integers and booleans have no missing value
    if series.dtype.kind == "f":
        return np.isnan(series.to_numpy())
    return series.isna().to_numpy()


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
        return frame.value(node.name) if isinstance(frame, Columns) else _column(frame[node.name])
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
    raise FormulaError(_unsupported(node))


def check_functions(node):
    """Refuse, as evaluate() would, a call the formula evaluator cannot compute (poly(x, 2),
    offset(z)): the config check then stops before any job."""
    if isinstance(node, Call):
        if len(node.args) != 1 or node.func not in NUMERIC_FUNCTIONS | dict.fromkeys(FACTOR_FUNCTIONS):
            raise FormulaError(_unsupported(node))
        check_functions(node.args[0])
    for child in _children(node):
        check_functions(child)


def _children(node):
    if isinstance(node, Binary):
        return (node.left, node.right)
    return (node.operand,) if isinstance(node, Unary) else (node.inner,) if isinstance(node, Paren) else ()


def _unsupported(node):
    return (f"'{deparse(node)}' is not supported in a formula; use a column, I(...), "
            f"factor(), or one of {', '.join(sorted(NUMERIC_FUNCTIONS))}")


def _numeric(value, node):
    if isinstance(value, Factor):
        raise FormulaError(f"'{deparse(node)}' does arithmetic on a categorical variable")
    return value


def _column(series):
    if isinstance(series.dtype, np.dtype) and series.dtype.kind in "iuf":   # numbers: none of pandas' dtype tests
        return series.to_numpy(dtype=float)
    if isinstance(series.dtype, pd.CategoricalDtype) or pd.api.types.is_bool_dtype(series):
        return _factor(series)
    if series.dtype == object or pd.api.types.is_string_dtype(series):
        codes, distinct = _sorted_factorize(series)
        _refuse_numbers_with_text(series.name, codes, distinct)
        return Factor(_code_array(codes), tuple(level_name(u) for u in distinct))
    return series.to_numpy(dtype=float)


def _refuse_numbers_with_text(name, codes, distinct, share=0.05):
    """A column of numbers with a few text cells ('n/a', '9,5') is a typo, not a factor with
    a level per number: name the cells and the fix. `codes` and `distinct` are the column's
    factorization (missing -> -1)."""
    if len(distinct) < 4:    # the rule needs a text value and three distinct numbers
        return
    counts = np.bincount(codes[codes >= 0], minlength=len(distinct))
    distinct = np.asarray(distinct, dtype=object)
    numbers = pd.to_numeric(distinct, errors="coerce")   # once per distinct value, not per cell
    is_text = pd.isna(numbers)
    n_text = int(counts[is_text].sum())
    if n_text and len(np.unique(numbers[~is_text])) > 2 and n_text <= max(3, share * counts.sum()):
        cells = ", ".join(repr(str(v)) for v in distinct[is_text])
        raise DataError(f"column '{name}' holds numbers but {n_text} text cell"
                        f"{'s' if n_text > 1 else ''} ({cells[:200]}); list such values under "
                        "data.missing_codes (or fix the cells) so that it is read as numbers")


def _factor(series):
    """A Factor with R's level order: a Categorical's own, FALSE/TRUE, else sorted; unused dropped."""
    if isinstance(series.dtype, pd.CategoricalDtype):
        series = series.cat.remove_unused_categories()
        return Factor(_code_array(series.cat.codes.to_numpy()), tuple(level_name(c) for c in series.cat.categories))
    if isinstance(series.dtype, np.dtype) and series.dtype.kind == "i":
        return _integer_factor(series.to_numpy())
    return _hashed_factor(series)


def _hashed_factor(series):
    codes, uniques = _sorted_factorize(series)
    return Factor(_code_array(codes), tuple(level_name(u) for u in uniques))


def _integer_factor(values):
    """An integer column's Factor by a table over its range (ids 1..J), its levels sorted as
    factorize() sorts them: pandas' hash table takes 40 bytes a row (40 MB for a million rows),
    the table 5 bytes an entry, so it is used for a range of up to 4 entries a row."""
    low, high = values.min(), values.max()
    if int(high) - int(low) > 4 * len(values):
        return _hashed_factor(pd.Series(values))
    offsets = np.subtract(values, low, dtype=np.int64)
    present = np.zeros(int(high) - int(low) + 1, dtype=bool)
    present[offsets] = True
    rank = np.cumsum(present, dtype=np.int32) - 1
    return Factor(rank[offsets], tuple(level_name(low + u) for u in np.flatnonzero(present)))


def _code_array(codes):
    """Level codes as int32: half of pandas' int64 on long data, and wide enough that code·q + a
    (the random-effects column of a row) cannot overflow as a Categorical's int8 or int16 codes do."""
    return codes.astype(np.int32, copy=False)


# How text columns are factorized (each the fastest here, pandas 3): up to PYTHON_FACTORIZE_ROWS rows
# by a set and a dict in Python (30 rows: 4-11 µs against pandas' factorize's 14-28; 144 rows: 16
# against 21); text backed by Arrow (pandas' default string) by Arrow's dictionary encoding (Exam's
# 583 rows: 18 µs against 42; 7,185 rows: about 100 against 294); other extension arrays longer than
# OBJECT_FACTORIZE_ROWS through their own factorize, which makes no Python object per row (a
# million-row column would take 60 MB of them); the rest as numpy arrays by pandas' factorize.
PYTHON_FACTORIZE_ROWS = 200
OBJECT_FACTORIZE_ROWS = 65_536


def _sorted_factorize(series):
    """pd.factorize(series, sort=True) (hashing: no sorted copy of a long column) without the
    Series and Index it wraps around its result, most of its cost on a small column: (codes,
    missing -1; the distinct values, sorted)."""
    numpy_dtype = isinstance(series.dtype, np.dtype)
    text = series.dtype == object or isinstance(series.dtype, pd.StringDtype)
    if len(series) <= PYTHON_FACTORIZE_ROWS and text:
        values = series.tolist()
        distinct = set(values)
        if all(value.__class__ is str for value in distinct):   # else missing values or mixed types: pandas'
            levels = sorted(distinct)
            code = {level: k for k, level in enumerate(levels)}.__getitem__
            return np.fromiter(map(code, values), dtype=np.intp, count=len(values)), levels
    if isinstance(series.dtype, pd.StringDtype) and series.dtype.storage == "pyarrow":
        return _arrow_factorize(series.array.__arrow_array__())
    if numpy_dtype or len(series) <= OBJECT_FACTORIZE_ROWS:
        return pd.factorize(series.to_numpy(dtype=None if numpy_dtype else object), sort=True)
    codes, uniques = series.array.factorize()
    order = np.asarray(uniques.argsort())
    return _renumbered(codes, order), np.asarray(uniques, dtype=object)[order]


def _arrow_factorize(chunked):
    """_sorted_factorize of Arrow text (a ChunkedArray): Arrow's dictionary encoding, then its few
    distinct values sorted in Python (by code point, which is the order of Arrow's UTF-8 bytes)."""
    import pyarrow.compute  # here: only text that pandas keeps in Arrow comes here, and pyarrow is loaded then
    encoded = chunked.dictionary_encode().combine_chunks()
    distinct = encoded.dictionary.to_pylist()
    order = sorted(range(len(distinct)), key=distinct.__getitem__)
    indices = pyarrow.compute.fill_null(encoded.indices, -1) if encoded.indices.null_count else encoded.indices
    return _renumbered(indices.to_numpy(zero_copy_only=False), order), [distinct[k] for k in order]


def _renumbered(codes, order):
    """Codes into unsorted distinct values as codes into them sorted (`order`: their argsort); a
    missing value's -1 stays -1."""
    ranks = np.empty(len(order) + 1, dtype=np.intp)
    ranks[order], ranks[-1] = np.arange(len(order)), -1
    return ranks[codes]


def level_name(value):
    """A level as R prints it: 1224 not 1224.0, TRUE/FALSE for booleans."""
    if value.__class__ is str:     # most levels: no isinstance checks
        return value
    if isinstance(value, (bool, np.bool_)):
        return "TRUE" if value else "FALSE"
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value)


def model_matrix(terms, frame):
    """R's model.matrix with treatment contrasts: (matrix, column names, R's assign).

    Each column is written straight into the matrix, a product of its variables' columns
    (a numeric column, or a level's indicator), so that no column exists twice: at a million
    rows a column is 8 MB."""
    names, assign, products = [], [], []
    if terms.intercept:
        names.append("(Intercept)")
        assign.append(0)
        products.append(())
    present = {frozenset()} if terms.intercept else set()
    present |= {frozenset(v.label for v in term) for term in terms.terms}
    for k, term in enumerate(terms.terms, start=1):
        labels = frozenset(v.label for v in term)
        parts = [_coded(variable, frame, contrast=(labels - {variable.label}) in present)
                 for variable in term]
        block_names, block = [""], [()]
        for part_names, part in parts:  # the first variable varies fastest, as in R
            block_names = [f"{a}:{b}" if a else b for b in part_names for a in block_names]
            block = [a + (b,) for b in part for a in block]
        names += block_names
        products += block
        assign += [k] * len(block)
    X = np.empty((len(frame), len(products)))
    for column, product in zip(X.T, products):
        _fill_product(column, product)
    return X, names, assign


def _fill_product(column, factors):
    """column := the product of factors, left to right (1 for none); a factor is a numeric
    column or (codes, k), the indicator of level k."""
    if not factors:
        column[:] = 1.0
        return
    for i, factor in enumerate(factors):
        value = factor[0] == factor[1] if isinstance(factor, tuple) else factor
        if i == 0:
            column[:] = value
        else:
            np.multiply(column, value, out=column)


def _coded(variable, frame, contrast):
    """The columns of one variable: itself if numeric, else one indicator (codes, k) per
    (non-baseline) level k."""
    value = evaluate(variable.node, frame)
    if not isinstance(value, Factor):
        return [variable.label], [np.asarray(value, dtype=float)]
    levels = value.levels[1:] if contrast else value.levels
    start = 1 if contrast else 0
    return ([f"{variable.label}{level}" for level in levels],
            [(value.codes, k) for k in range(start, len(value.levels))])


def full_rank_columns(X):
    """Which columns to keep: not those that are linear combinations of earlier ones, as R's
    qr(tol = 1e-7) finds them."""
    if X.shape[1] == 0:
        return np.ones(0, dtype=bool)
    norms = np.sqrt(np.einsum("ij,ij->j", X, X))  # no n×p temporary, unlike np.linalg.norm
    if X.shape[1] == 1:       # one column (the intercept): R is its norm, so no QR is needed
        return norms > 0
    r = _r_factor(X)
    diagonal = np.zeros(X.shape[1])  # more columns than rows: those past the n-th are dependent
    diagonal[:min(X.shape)] = np.diag(r)
    return np.abs(diagonal) > RANK_TOLERANCE * np.where(norms > 0, norms, 1.0)


def _r_factor(X, rows=65536):
    """R of X = QR, chunk by chunk (a QR of the stacked R's is the QR of X): the same R as
    one Householder QR, without copying a million-row X."""
    r = np.zeros((0, X.shape[1]))
    for start in range(0, len(X), rows):
        r = np.linalg.qr(np.vstack([r, X[start:start + rows]]), mode="r")
    return r


def _random_term(term, frame):
    matrix, columns, _ = model_matrix(term.lhs, frame)
    if not columns:
        raise FormulaError(f"random term '(0 | {':'.join(term.group)})' has no columns")
    factor = _grouping_factor(term.group, frame)
    return RandomEffectsTerm(":".join(term.group), tuple(columns), read_only(matrix), read_only(factor.codes),
                             factor.levels, term.label)


def _grouping_factor(names, frame):
    """The grouping factor; `a:b` is the factor of observed combinations, levels `a:b`."""
    factors = [frame.factor(name) for name in names]
    if len(factors) == 1:
        return factors[0]
    codes, digits = factors[0].codes, [np.arange(len(factors[0].levels))]
    for factor in factors[1:]:   # one factor at a time, so that a key never exceeds rows × levels
        combos, codes = np.unique(codes.astype(np.int64) * len(factor.levels) + factor.codes, return_inverse=True)
        previous, digit = np.divmod(combos, len(factor.levels))
        digits = [d[previous] for d in digits] + [digit]   # each combination's code of every factor
    level_names = [[f.levels[c] for c in digit.tolist()] for f, digit in zip(factors, digits)]
    levels = tuple(map(":".join, zip(*level_names)))
    return Factor(_code_array(codes.ravel()), levels)
