"""lmerTest's type III contrasts (get_contrasts_type3): for each fixed term, the rows L of the
hypothesis Lβ = 0, from the term structure of the design.
"""
from dataclasses import dataclass
from itertools import product

import numpy as np
import pandas as pd

from ..engine.design import model_matrix
from ..engine.formula import Name, Terms, Variable, parse_formula
from ..errors import ModelError


def type3_contrasts(model):
    """{term label: L} as lmerTest's get_contrasts_type3 builds them (treatment contrasts)."""
    design = model.design
    if design.dropped_columns:
        raise ModelError(f"type III tests of '{design.formula}' need a full-rank fixed-effects design; "
                         f"drop the aliased column(s) {', '.join(design.dropped_columns)} from the formula")
    fixed = parse_formula(design.formula).fixed
    names = list(design.fixed_names)
    if not fixed.terms:
        return {}
    structure = _term_structure(fixed, names)
    labels = [_label(term) for term in fixed.terms]
    if len(names) <= 1 or len(fixed.terms) <= 1:
        return _type1_contrasts(design.X, structure, labels)
    return _type3_from_structure(fixed, names, structure, labels)


def _label(term):
    return ":".join(v.label for v in term)


@dataclass(frozen=True)
class _TermStructure:
    assign: list          # term index of each column (-1 for the intercept)
    kinds: dict           # variable label -> None (numeric) or tuple of levels (baseline first)
    terms: tuple          # the fixed terms with plain-name variables


def _term_structure(fixed, names):
    """Which columns belong to which term, and each variable's kind and levels, read back from
    the column names (R's naming: variable + level, ':' between the variables of a term)."""
    cols = names[1:] if fixed.intercept else names
    if fixed.intercept and names[:1] != ["(Intercept)"]:
        raise ModelError("the fixed-effects design has no '(Intercept)' column first; cannot map terms")
    parts = [c.split(":") for c in cols]
    blocks = _segment(fixed.terms, parts, 0, {})
    if blocks is None:
        raise ModelError(f"cannot map the columns {', '.join(names)} back to the terms of the formula; "
                         "type III tests are unavailable for this model")
    spans, info = blocks
    assign = ([-1] if fixed.intercept else []) + [k for k, (a, b) in enumerate(spans) for _ in range(a, b)]
    kinds = {}
    for label, levels in info.items():
        kinds[label] = None if levels is None else _levels_with_baseline(label, levels, fixed)
    plain = tuple(tuple(Variable(v.label, Name(v.label)) for v in term) for term in fixed.terms)
    structure = _TermStructure(assign, kinds, plain)
    frame = _synthetic_frame(structure)
    _, regenerated = model_matrix(Terms(fixed.intercept, plain), frame)
    if list(regenerated) != list(names):
        raise ModelError(f"cannot map the columns {', '.join(names)} back to the terms of the formula; "
                         "type III tests are unavailable for this model")
    return structure


def _segment(terms, parts, start, info):
    """Backtracking split of the column-name parts into one block per term."""
    if not terms:
        return ([], info) if start == len(parts) else None
    term = terms[0]
    end = start
    while end < len(parts) and len(parts[end]) == len(term) and all(
            p.startswith(v.label) for p, v in zip(parts[end], term)):
        end += 1
    for stop in range(end, start, -1):
        merged = _block_info(term, parts[start:stop], info)
        if merged is None:
            continue
        rest = _segment(terms[1:], parts, stop, merged)
        if rest is not None:
            return [(start, stop)] + rest[0], rest[1]
    return None


def _block_info(term, block, info):
    """Merge what one block says about its variables into info, or None if inconsistent."""
    merged = dict(info)
    sizes = []
    for i, variable in enumerate(term):
        comps = [part[i] for part in block]
        numeric = [c == variable.label for c in comps]
        if all(numeric):
            if merged.get(variable.label, None) is not None:
                return None
            merged[variable.label] = None
            sizes.append(1)
        elif not any(numeric):
            if variable.label in merged and merged[variable.label] is None:
                return None
            levels = list(dict.fromkeys(c[len(variable.label):] for c in comps))
            known = list(merged.get(variable.label) or [])
            merged[variable.label] = tuple(known + [lv for lv in levels if lv not in known])
            sizes.append(len(levels))
        else:
            return None
    return merged if int(np.prod(sizes)) == len(block) else None


def _levels_with_baseline(label, levels, fixed):
    """Levels in R's order; the baseline, never named when the variable is always coded by
    contrasts, gets a placeholder name."""
    present = {frozenset()} if fixed.intercept else set()
    present |= {frozenset(v.label for v in term) for term in fixed.terms}
    uncoded = any(label in {v.label for v in term} and
                  (frozenset(v.label for v in term) - {label}) not in present for term in fixed.terms)
    return tuple(levels) if uncoded else ("(baseline)",) + tuple(levels)


def _synthetic_frame(structure):
    """A balanced frame with every combination of factor levels and random numeric columns:
    type III contrasts depend only on the coding, not on the data, when X has full rank."""
    factors = {k: v for k, v in structure.kinds.items() if v is not None}
    numerics = [k for k, v in structure.kinds.items() if v is None]
    cells = list(product(*factors.values())) or [()]
    reps = len(numerics) * 2 + 3
    rows = [cell for cell in cells for _ in range(reps)]
    rng = np.random.default_rng(20240101)
    frame = {}
    for i, (label, levels) in enumerate(factors.items()):
        frame[label] = pd.Categorical([r[i] for r in rows], categories=list(levels))
    for label in numerics:
        frame[label] = rng.standard_normal(len(rows))
    return pd.DataFrame(frame) if frame else pd.DataFrame(index=range(len(rows)))


def _zapsmall(x, digits=7):
    mx = np.max(np.abs(x)) if x.size else 0.0
    return np.round(x, max(0, digits - int(np.ceil(np.log10(mx)))) if mx > 0 else digits)


def _type3_from_structure(fixed, names, structure, labels):
    frame = _synthetic_frame(structure)
    X, _ = model_matrix(Terms(fixed.intercept, structure.terms), frame)
    rd_cols, rd_names = ([np.ones(len(frame))], ["(Intercept)"]) if fixed.intercept else ([], [])
    for term in structure.terms:
        block, block_names = model_matrix(Terms(False, (term,)), frame)
        rd_cols.append(block)
        rd_names += block_names
    rdX = np.column_stack(rd_cols)
    L = _zapsmall((np.linalg.pinv(X) @ rdX).T)           # rows: rdX columns, cols: X columns
    colmap = {k: [j for j, a in enumerate(structure.assign) if a == k] for k in range(len(labels))}
    contains = _containment(structure)
    order = sorted(range(len(labels)), key=lambda k: -len(structure.terms[k]))
    for k in order:
        if contains[k]:
            x = L[:, [j for c in contains[k] for j in colmap[c]]]
            y = L[:, colmap[k]]
            coef = np.linalg.lstsq(x, y, rcond=None)[0]
            L[:, colmap[k]] = _zapsmall(y - x @ coef)
    index = {name: i for i, name in enumerate(rd_names)}
    L = L[[index[name] for name in names]]
    out = {}
    for k, label in enumerate(labels):
        Lk = L[:, colmap[k]].T
        out[label] = Lk[np.abs(Lk).sum(axis=1) > 1e-8]
    return out


def _containment(structure):
    """lmerTest's containment: term j contains term k if its variables are a strict superset
    and both have the same numeric variables."""
    kinds = structure.kinds
    sets = [frozenset(v.label for v in term) for term in structure.terms]
    numerics = [frozenset(x for x in s if kinds[x] is None) for s in sets]
    return [[j for j in range(len(sets)) if sets[k] < sets[j] and numerics[k] == numerics[j]]
            for k in range(len(sets))]


def _type1_contrasts(X, structure, labels):
    """lmerTest's get_contrasts_type1 (used when the model has a single term)."""
    p = X.shape[1]
    if p == 1 and structure.assign == [-1]:
        return {}
    L = np.eye(1) if p == 1 else _doolittle(X.T @ X).T
    return {label: L[[j for j, a in enumerate(structure.assign) if a == k]]
            for k, label in enumerate(labels)}


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
