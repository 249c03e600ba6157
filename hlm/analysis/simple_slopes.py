"""Simple slopes of an interaction (reghelper::simple_slopes): the slope of the predictor at the
moderator's mean − 1 SD, mean and mean + 1 SD, each tested with the model's df method, and the
predicted lines with 95% confidence bands.
"""
import numpy as np

from ..engine.formula import Name, parse_formula
from ..inference.contrasts import contrast_test
from ..inference.intervals import Z95


def interaction_terms(fixed):
    """The two-way interactions of plain columns among a formula's fixed terms (formula.Terms)
    whose two main effects are terms too, as (a, b): simple slopes need both (`y ~ a + a:b`
    has none)."""
    mains = {term[0].label for term in fixed.terms if len(term) == 1}
    return [(term[0].label, term[1].label) for term in fixed.terms
            if len(term) == 2 and all(isinstance(v.node, Name) and v.label in mains for v in term)]


def has_simple_slopes(formula):
    """Whether the diagnostics of a model with this formula include simple slopes; the workflow
    asks before any model is fitted, so this reads the formula text."""
    return bool(interaction_terms(parse_formula(formula).fixed))


def choose_interaction(design):
    """(predictor, moderator) of the interaction to probe, or None.

    A cross-level interaction comes first, its lower-level variable the predictor and the
    higher-level one the moderator (the seed's ses × disclim); otherwise the first two-way
    interaction of numeric variables, the first variable the predictor. The interaction and
    both main effects must be coefficients of the model (not dropped as rank deficient).
    """
    candidates = []
    for a, b in interaction_terms(design.parsed_formula.fixed):
        if not {a, b, f"{a}:{b}"} <= set(design.fixed_names):
            continue
        va, vb = design.variable(a), design.variable(b)
        if va.kind != "numeric" or vb.kind != "numeric":
            continue
        if va.level != vb.level:
            candidates.append((0, a, b) if va.level < vb.level else (0, b, a))
        else:
            candidates.append((1, a, b))
    if not candidates:
        return None
    _, predictor, moderator = min(candidates, key=lambda c: c[0])
    return predictor, moderator


def _coefficient_means(design):
    """The mean of each column of X on the rows the model used; 0 for the columns of a term
    with a factor (its levels are held at the reference level)."""
    means = design.X.mean(axis=0)
    for j, k in enumerate(design.assign):
        if k and any(design.variable(v).kind == "factor" for v in design.fixed_terms[k - 1].variables):
            means[j] = 0.0
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
    means = _coefficient_means(model.design)
    lines = {}
    for key, value in at.items():
        rows = np.tile(means, (points, 1))
        rows[:, names.index(predictor)] = grid
        rows[:, names.index(moderator)] = value
        rows[:, names.index(interaction)] = grid * value
        fit = rows @ beta
        se = np.sqrt(np.einsum("ij,jk,ik->i", rows, vcov, rows))
        lines[key] = {"x": grid.tolist(), "fit": fit.tolist(),
                      "low": (fit - Z95 * se).tolist(), "high": (fit + Z95 * se).tolist()}
    return lines

