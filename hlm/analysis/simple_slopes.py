"""Simple slopes of an interaction (reghelper::simple_slopes): the slope of the predictor at the
moderator's mean − 1 SD, mean and mean + 1 SD, each tested with the model's df method, and the
predicted lines with 95% confidence bands.
"""
import numpy as np

from ..data import level_of
from ..engine.formula import Name, parse_formula
from ..inference.contrasts import contrast_test
from ..inference.intervals import Z95

INTERCEPT = "(Intercept)"


def interaction_terms(formula):
    """The two-way interactions of plain variables in a formula's fixed part whose two main
    effects are in it too, as (a, b): simple slopes need both (`y ~ a + a:b` has none)."""
    fixed = parse_formula(formula).fixed.terms
    mains = {term[0].label for term in fixed if len(term) == 1}
    return [(term[0].label, term[1].label) for term in fixed
            if len(term) == 2 and all(isinstance(v.node, Name) and v.label in mains for v in term)]


def has_simple_slopes(formula):
    """Whether the diagnostics of a model with this formula include simple slopes."""
    return bool(interaction_terms(formula))


def choose_interaction(formula, coefficients, frame, group):
    """(predictor, moderator) of the interaction to probe, or None.

    A cross-level interaction comes first, its level-1 variable the predictor and the level-2
    one the moderator (the seed's ses × disclim); otherwise the first two-way interaction of
    numeric columns, the first variable the predictor. The interaction and both main effects
    must be coefficients of the model (not dropped as rank deficient).
    """
    candidates = []
    for a, b in interaction_terms(formula):
        if not {a, b, f"{a}:{b}"} <= set(coefficients) or a not in frame or b not in frame:
            continue
        if not all(frame[c].dtype.kind in "fiu" for c in (a, b)):
            continue
        levels = (level_of(frame, a, group), level_of(frame, b, group)) if group in frame else (1, 1)
        if levels == (1, 2):
            candidates.append((0, a, b))
        elif levels == (2, 1):
            candidates.append((0, b, a))
        else:
            candidates.append((1, a, b))
    if not candidates:
        return None
    _, predictor, moderator = min(candidates, key=lambda c: c[0])
    return predictor, moderator


def _coefficient_means(coefficients, frame):
    """The mean of each coefficient's column in the analysed rows (products of plain columns);
    0 where a column cannot be formed (factor levels are held at the baseline)."""
    means = {}
    for name in coefficients:
        if name == INTERCEPT:
            means[name] = 1.0
            continue
        parts = name.split(":")
        if all(p in frame and frame[p].dtype.kind in "fiu" for p in parts):
            means[name] = float(np.prod([frame[p].to_numpy(float) for p in parts], axis=0).mean())
        else:
            means[name] = 0.0
    return means


def simple_slopes(model, predictor, moderator, frame, ddf="Satterthwaite"):
    """The slope of `predictor` at the moderator's mean − SD, mean and mean + SD, each with
    the t test of L'β (lmerTest's contest1D), and the lines' predicted values.

    `frame` is the data the model was fitted to; the moderator's mean and SD (and the
    predictor's range) are those of the rows the model used, as reghelper and ggeffects take
    them from the model frame. With ddf 'lme4' the tests are Wald z tests.
    """
    from scipy.stats import norm
    from scipy.stats import t as t_dist
    frame = frame.iloc[model.design.rows]
    names = list(model.fixef.index)
    interaction = next(n for n in (f"{predictor}:{moderator}", f"{moderator}:{predictor}") if n in names)
    values = frame[moderator].to_numpy(float)
    mean, sd = float(values.mean()), float(values.std(ddof=1))
    at = {"minus_sd": mean - sd, "mean": mean, "plus_sd": mean + sd}
    rows = []
    for key, value in at.items():
        L = np.zeros(len(names))
        L[names.index(predictor)] = 1.0
        L[names.index(interaction)] = value
        rows.append({"at": key, "moderator_value": value, **_contrast(model, L, ddf)})
    for row in rows:
        q = t_dist.ppf(0.975, row["df"]) if row["df"] is not None else norm.ppf(0.975)
        row["ci_low"] = row["Estimate"] - q * row["Std. Error"]
        row["ci_high"] = row["Estimate"] + q * row["Std. Error"]
    return {"predictor": predictor, "moderator": moderator, "interaction": interaction,
            "moderator_mean": mean, "moderator_sd": sd, "ddf": ddf, "slopes": rows,
            "lines": _lines(model, predictor, moderator, interaction, frame, at)}


def _contrast(model, L, ddf):
    """contest1D's row as plain floats; df None for a Wald z test (ddf lme4)."""
    result = {key: float(value) for key, value in contrast_test(model, L, ddf=ddf or "lme4").items()}
    return {**result, "df": result["df"] if np.isfinite(result["df"]) else None}


def _lines(model, predictor, moderator, interaction, frame, at, points=50):
    """Predicted outcome over the predictor's range (mean ± 2 SD within the observed range) at
    each moderator value; other predictors at their means; 95% confidence bands."""
    names = list(model.fixef.index)
    beta = model.fixef.to_numpy()
    vcov = model.vcov.to_numpy()
    x = frame[predictor].to_numpy(float)
    low = max(x.min(), x.mean() - 2 * x.std(ddof=1))
    high = min(x.max(), x.mean() + 2 * x.std(ddof=1))
    grid = np.linspace(low, high, points)
    means = _coefficient_means(names, frame)
    lines = {}
    for key, value in at.items():
        rows = np.tile([means[n] for n in names], (points, 1))
        rows[:, names.index(predictor)] = grid
        rows[:, names.index(moderator)] = value
        rows[:, names.index(interaction)] = grid * value
        fit = rows @ beta
        se = np.sqrt(np.einsum("ij,jk,ik->i", rows, vcov, rows))
        lines[key] = {"x": grid.tolist(), "fit": fit.tolist(),
                      "low": (fit - Z95 * se).tolist(), "high": (fit + Z95 * se).tolist()}
    return lines


def outcome_of(formula):
    return parse_formula(formula).response.label
