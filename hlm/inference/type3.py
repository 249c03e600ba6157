"""lmerTest's type III contrasts (get_contrasts_type3): for each fixed term, the rows L of the
hypothesis Lβ = 0, from the design's assign (the term of each column) and the kind of each
variable, as lmerTest takes them from the model's terms and model frame.
"""
from itertools import product

import numpy as np
import pandas as pd

from ..engine.design import model_matrix
from ..engine.formula import Name, Terms, Variable
from ..errors import ModelError


def type3_contrasts(model):
    """{term label: L} as lmerTest's get_contrasts_type3 builds them (treatment contrasts)."""
    design = model.design
    if design.dropped_columns:
        raise ModelError(f"type III tests of '{design.formula}' need a full-rank fixed-effects design; "
                         f"drop the aliased column(s) {', '.join(design.dropped_columns)} from the formula")
    if not design.fixed_terms:
        return {}
    if design.p <= 1 or len(design.fixed_terms) <= 1:
        return _type1_contrasts(design)
    return _type3_contrasts(design)


def _term_columns(design):
    """Column positions of each fixed term (lmerTest's term2colX)."""
    return [[j for j, a in enumerate(design.assign) if a == k] for k in range(1, len(design.fixed_terms) + 1)]


def _balanced_frame(variables):
    """A balanced frame with every combination of factor levels and random numeric columns:
    type III contrasts depend only on the coding, not on the data, when X has full rank."""
    factors = [v for v in variables if v.kind == "factor"]
    numerics = [v for v in variables if v.kind == "numeric"]
    cells = list(product(*(v.levels for v in factors))) or [()]
    reps = len(numerics) * 2 + 3
    rows = [cell for cell in cells for _ in range(reps)]
    rng = np.random.default_rng(20240101)
    frame = {v.label: pd.Categorical([r[i] for r in rows], categories=list(v.levels)) for i, v in enumerate(factors)}
    frame.update({v.label: rng.standard_normal(len(rows)) for v in numerics})
    return pd.DataFrame(frame) if frame else pd.DataFrame(index=range(len(rows)))


def _zapsmall(x, digits=7):
    mx = np.max(np.abs(x)) if x.size else 0.0
    return np.round(x, max(0, digits - int(np.ceil(np.log10(mx)))) if mx > 0 else digits)


def _type3_contrasts(design):
    """extract_contrasts_type3: L = ginv(X) rdX (rdX: each term coded in full, beside the
    intercept), each term's columns orthogonalized against those of the terms containing it,
    higher-order terms first."""
    labels = dict.fromkeys(label for term in design.fixed_terms for label in term.variables)
    frame = _balanced_frame([design.variable(label) for label in labels])
    terms = [tuple(Variable(label, Name(label)) for label in term.variables) for term in design.fixed_terms]
    intercept = design.parsed_formula.fixed.intercept
    X, _, _ = model_matrix(Terms(intercept, tuple(terms)), frame)
    rd_cols, rd_names = ([np.ones(len(frame))], ["(Intercept)"]) if intercept else ([], [])
    for term in terms:
        block, block_names, _ = model_matrix(Terms(False, (term,)), frame)
        rd_cols.append(block)
        rd_names += block_names
    L = _zapsmall((np.linalg.pinv(X) @ np.column_stack(rd_cols)).T)   # rows: rdX columns, cols: X columns
    columns = _term_columns(design)
    contains = _containment(design)
    for k in sorted(range(len(terms)), key=lambda k: -len(terms[k])):
        if contains[k]:
            x = L[:, [j for c in contains[k] for j in columns[c]]]
            y = L[:, columns[k]]
            coef = np.linalg.lstsq(x, y, rcond=None)[0]
            L[:, columns[k]] = _zapsmall(y - x @ coef)
    index = {name: i for i, name in enumerate(rd_names)}
    L = L[[index[name] for name in design.fixed_names]]
    out = {}
    for term, cols in zip(design.fixed_terms, columns):
        Lk = L[:, cols].T
        out[term.label] = Lk[np.abs(Lk).sum(axis=1) > 1e-8]
    return out


def _containment(design):
    """lmerTest's containment: term j contains term k if its variables are a strict superset
    and both have the same numeric variables. A term's variables are those R's terms() marks 1
    in its factors attribute: all of a one-variable term; in a longer one, those whose term
    without them is in the model too (the others are coded in full, not by contrasts)."""
    present = {frozenset(term.variables) for term in design.fixed_terms}
    coded = [frozenset(v for v in term.variables
                       if len(term.variables) == 1 or frozenset(term.variables) - {v} in present)
             for term in design.fixed_terms]
    numerics = [frozenset(v for v in c if design.variable(v).kind == "numeric") for c in coded]
    return [[j for j in range(len(coded)) if coded[k] < coded[j] and numerics[k] == numerics[j]]
            for k in range(len(coded))]


def _type1_contrasts(design):
    """lmerTest's get_contrasts_type1 (used when the model has a single term or column)."""
    p = design.p
    L = np.eye(1) if p == 1 else _doolittle(design.X.T @ design.X).T
    return {term.label: L[cols] for term, cols in zip(design.fixed_terms, _term_columns(design))}


def _doolittle(x, eps=1e-6):
    n = x.shape[0]
    L, U = np.eye(n), np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            U[i, j] = x[i, j] - L[i, :i] @ U[:i, j]
        for j in range(i + 1, n):
            L[j, i] = x[j, i] - L[j, :i] @ U[:i, i]
            L[j, i] = 0.0 if abs(U[i, i]) < eps else L[j, i] / U[i, i]
    L[np.abs(L) < eps] = 0.0
    return L
