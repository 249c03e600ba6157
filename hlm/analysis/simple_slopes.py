"""Simple slopes of an interaction (reghelper::simple_slopes): the slope of the predictor at
values of the moderator, each tested with the model's df method, the predicted lines with 95%
confidence bands, and for a continuous moderator the Johnson–Neyman interval.

The moderator's values: each category of a factor (by its label); both values of a two-valued
numeric column (a 0/1 dummy has no mean − 1 SD); otherwise mean − 1 SD, mean and mean + 1 SD.
"""
import numpy as np
import scipy.optimize

from ..engine.design import FACTOR_FUNCTIONS
from ..engine.formula import Call, Name, parse_formula
from ..inference.contrasts import contrast_test
from ..inference.intervals import Z95, critical_value

ALPHA = 0.05   # of the simple-slope tests and the Johnson–Neyman boundaries


def _plain(variable):
    """A column or factor(column): what simple slopes can hold at chosen values."""
    node = variable.node
    return isinstance(node, Name) or (isinstance(node, Call) and node.func in FACTOR_FUNCTIONS
                                      and len(node.args) == 1 and isinstance(node.args[0], Name))


def interaction_terms(fixed):
    """The two-way interactions of plain columns (or factor(column)) among a formula's fixed
    terms (formula.Terms) whose two main effects are terms too, as (a, b): simple slopes need
    both (`y ~ a + a:b` has none)."""
    mains = {term[0].label for term in fixed.terms if len(term) == 1}
    return [(term[0].label, term[1].label) for term in fixed.terms
            if len(term) == 2 and all(_plain(v) and v.label in mains for v in term)]


def has_simple_slopes(formula):
    """Whether the diagnostics of a model with this formula include simple slopes; the workflow
    asks before any model is fitted, so this reads the formula text."""
    return bool(interaction_terms(parse_formula(formula).fixed))


def choose_interaction(design):
    """(predictor, moderator) of the interaction to probe, or None.

    A cross-level interaction of numeric variables comes first, its lower-level variable the
    predictor and the higher-level one the moderator (the seed's ses × disclim); otherwise the
    first two-way interaction of a numeric predictor with a numeric or categorical moderator
    (a factor is always the moderator). Both main effects and the interaction must be
    coefficients of the model (not dropped as rank deficient).
    """
    candidates = []
    for a, b in interaction_terms(design.parsed_formula.fixed):
        va, vb = design.variable(a), design.variable(b)
        if va.kind == "factor" and vb.kind == "factor":
            continue
        if va.kind == "factor":
            a, b, va, vb = b, a, vb, va
        if not _coefficients_present(design, a, b, vb):
            continue
        if vb.kind == "factor":
            candidates.append((1, a, b))
        elif va.level != vb.level:
            candidates.append((0, a, b) if va.level < vb.level else (0, b, a))
        else:
            candidates.append((1, a, b))
    if not candidates:
        return None
    _, predictor, moderator = min(candidates, key=lambda c: c[0])
    return predictor, moderator


def _coefficients_present(design, predictor, moderator, info):
    names = set(design.fixed_names)
    if info.kind == "numeric":
        return {predictor, moderator} <= names and bool({f"{predictor}:{moderator}", f"{moderator}:{predictor}"} & names)
    dummies = [f"{moderator}{level}" for level in info.levels[1:]]
    return predictor in names and all(d in names and _interaction_name(names, predictor, d) for d in dummies)


def _interaction_name(names, a, b):
    return next((n for n in (f"{a}:{b}", f"{b}:{a}") if n in names), None)


def _coefficient_means(design):
    """The mean of each column of X on the rows the model used; 0 for the columns of a term
    with a factor (its levels are held at the reference level)."""
    means = design.X.mean(axis=0)
    for j, k in enumerate(design.assign):
        if k and any(design.variable(v).kind == "factor" for v in design.fixed_terms[k - 1].variables):
            means[j] = 0.0
    return means


def moderator_points(model, moderator, frame):
    """[(key, label, {column: value})]: where the slope is probed, as values of X's columns."""
    info = model.design.variable(moderator)
    if info.kind == "factor":
        dummies = [f"{moderator}{level}" for level in info.levels]
        return [(level, level, {d: float(d == dummy) for d in dummies[1:]})
                for level, dummy in zip(info.levels, dummies)]
    values = frame[moderator].to_numpy(float)
    distinct = np.unique(values)
    if len(distinct) == 2:
        return [(f"value_{i}", f"{v:g}", {moderator: float(v)}) for i, v in enumerate(distinct)]
    mean, sd = float(values.mean()), float(values.std(ddof=1))
    return [(key, key, {moderator: value}) for key, value in
            (("minus_sd", mean - sd), ("mean", mean), ("plus_sd", mean + sd))]


def simple_slopes(model, predictor, moderator, frame, ddf="Satterthwaite"):
    """The slope of `predictor` at each moderator point, each with the t test of L'β
    (lmerTest's contest1D), the lines' predicted values and, for a continuous moderator, the
    Johnson–Neyman interval.

    `frame` is the data the model was fitted to; the moderator's mean and SD (and the
    predictor's range) are those of the rows the model used, as reghelper and ggeffects take
    them from the model frame. With ddf 'lme4' the tests are Wald z tests.
    """
    frame = frame.iloc[model.design.rows]
    names = list(model.fixef.index)
    info = model.design.variable(moderator)
    points = moderator_points(model, moderator, frame)
    rows = []
    for key, label, values in points:
        L = slope_vector(names, predictor, values)
        value = values.get(moderator, label)
        rows.append({"at": key, "label": label, "moderator_value": value, **_contrast(model, L, ddf)})
    for row in rows:
        q = critical_value(row["df"], 1 - ALPHA)
        row["ci_low"] = row["Estimate"] - q * row["Std. Error"]
        row["ci_high"] = row["Estimate"] + q * row["Std. Error"]
    moderator_values = frame[moderator].to_numpy(float) if info.kind == "numeric" else None
    result = {"predictor": predictor, "moderator": moderator, "moderator_kind": _kind(info, points),
              "interaction": [_interaction_name(names, predictor, c) for c in points[-1][2]],
              "moderator_mean": float(moderator_values.mean()) if moderator_values is not None else None,
              "moderator_sd": float(moderator_values.std(ddof=1)) if moderator_values is not None else None,
              "ddf": ddf, "slopes": rows, "lines": _lines(model, predictor, frame, points)}
    if result["moderator_kind"] == "continuous":
        result["johnson_neyman"] = johnson_neyman(model, predictor, moderator, moderator_values, ddf)
    return result


def _kind(info, points):
    if info.kind == "factor":
        return "categorical"
    return "two_valued" if points[0][0] == "value_0" else "continuous"


def slope_vector(names, predictor, values):
    """L with 1 at the predictor and each moderator column's value at its interaction with it."""
    L = np.zeros(len(names))
    L[names.index(predictor)] = 1.0
    for column, value in values.items():
        L[names.index(_interaction_name(names, predictor, column))] = value
    return L


def _contrast(model, L, ddf):
    """contest1D's row as plain floats; df None for a Wald z test (ddf lme4)."""
    result = {key: float(value) for key, value in contrast_test(model, L, ddf=ddf or "lme4").items()}
    return {**result, "df": result["df"] if np.isfinite(result["df"]) else None}


def johnson_neyman(model, predictor, moderator, values, ddf="Satterthwaite"):
    """The moderator values where the simple slope's test has p = ALPHA exactly (its df at that
    value), and the observed range: the slope is significant where p < ALPHA. The boundaries
    are the roots of (b1 + b3 m)² = q² Var(b1 + b3 m) with the df at the moderator's mean,
    refined with each value's own df (Satterthwaite's df change with m)."""
    names = list(model.fixef.index)
    b, V = model.fixef.to_numpy(), model.vcov.to_numpy()
    i, j = names.index(predictor), names.index(_interaction_name(names, predictor, moderator))

    def p_minus_alpha(m):
        return _contrast(model, slope_vector(names, predictor, {moderator: m}), ddf)["Pr(>|t|)"] - ALPHA

    df = _contrast(model, slope_vector(names, predictor, {moderator: float(values.mean())}), ddf)["df"]
    q2 = critical_value(df, 1 - ALPHA) ** 2
    a = b[j] ** 2 - q2 * V[j, j]
    bb = 2 * (b[i] * b[j] - q2 * V[i, j])
    c = b[i] ** 2 - q2 * V[i, i]
    roots = np.roots([a, bb, c]) if abs(a) > 0 else np.array([-c / bb])
    bounds = sorted(_refine(p_minus_alpha, float(r.real), float(values.std(ddof=1)))
                    for r in roots if abs(r.imag) < 1e-12)
    low, high = float(values.min()), float(values.max())
    return {"bounds": bounds, "alpha": ALPHA, "observed": [low, high],
            "significant_inside": bool(len(bounds) == 2 and p_minus_alpha(sum(bounds) / 2) < 0),
            "curve": _jn_curve(model, names, predictor, moderator, bounds, low, high, ddf)}


def _refine(f, guess, scale):
    """The root of f near guess: bracket it by widening steps, then Brent's method."""
    step = 0.05 * scale
    for _ in range(40):
        lo, hi = guess - step, guess + step
        if np.sign(f(lo)) != np.sign(f(hi)):
            return float(scipy.optimize.brentq(f, lo, hi, xtol=1e-10))
        step *= 2
    return guess


def _jn_curve(model, names, predictor, moderator, bounds, low, high, ddf, points=60):
    """The slope and its 95% interval over the observed range (and the boundaries in reach)."""
    span = high - low
    near = [x for x in bounds if low - span <= x <= high + span]
    grid = np.linspace(min([low, *near]), max([high, *near]), points)
    rows = [_contrast(model, slope_vector(names, predictor, {moderator: m}), ddf) for m in grid]
    q = [critical_value(r["df"], 1 - ALPHA) for r in rows]
    return {"x": grid.tolist(), "slope": [r["Estimate"] for r in rows],
            "low": [r["Estimate"] - k * r["Std. Error"] for r, k in zip(rows, q)],
            "high": [r["Estimate"] + k * r["Std. Error"] for r, k in zip(rows, q)],
            "p": [r["Pr(>|t|)"] for r in rows]}


def _lines(model, predictor, frame, points, count=50):
    """Predicted outcome over the predictor's range (mean ± 2 SD within the observed range) at
    each moderator point; other predictors at their means; 95% confidence bands."""
    names = list(model.fixef.index)
    beta = model.fixef.to_numpy()
    vcov = model.vcov.to_numpy()
    x = frame[predictor].to_numpy(float)
    low = max(x.min(), x.mean() - 2 * x.std(ddof=1))
    high = min(x.max(), x.mean() + 2 * x.std(ddof=1))
    grid = np.linspace(low, high, count)
    means = _coefficient_means(model.design)
    lines = {}
    for key, _, values in points:
        rows = np.tile(means, (count, 1))
        rows[:, names.index(predictor)] = grid
        for column, value in values.items():
            rows[:, names.index(column)] = value
            rows[:, names.index(_interaction_name(names, predictor, column))] = grid * value
        fit = rows @ beta
        se = np.sqrt(np.einsum("ij,jk,ik->i", rows, vcov, rows))
        lines[key] = {"x": grid.tolist(), "fit": fit.tolist(),
                      "low": (fit - Z95 * se).tolist(), "high": (fit + Z95 * se).tolist()}
    return lines
