"""How variance divides between the levels: performance's adjusted ICC and Nakagawa R² (random
slopes too), and the seed's proportional reduction of each variance component.
"""
import logging
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pandas as pd

from ..engine.glmm import GeneralizedLinearMixedModel
from .checks import _check_model, _check_same_rows
from .latent import distribution_variance

log = logging.getLogger(__name__)


SINGULAR_TOLERANCE = 1e-5   # insight's .is_singular, which performance's icc and r2 use


class R2(NamedTuple):
    marginal: float
    conditional: float


@dataclass(frozen=True)
class VarianceComponents:
    """insight::get_variance's pieces for a linear or generalized linear mixed model."""
    fixed: float      # var(Xβ̂)
    random: float     # mean of z'Σz over the rows, per grouping factor; NaN if singular
    residual: float   # σ²; for a GLMM the latent level-1 variance plus observation-level random effects


def variance_components(model):
    """As insight::get_variance: the random part counts the first term of each grouping factor
    (VarCorr entries named like a ranef() factor) with its columns taken from the fixed design."""
    _check_model(model)
    X = model.design.X
    fixed = float(np.var(X @ model.fixef.to_numpy(), ddof=1))
    singular = np.any(np.abs(model.theta[model.covariance_layout.bounded]) < SINGULAR_TOLERANCE)
    random = np.nan if singular else _random_variance(model)
    if isinstance(model, GeneralizedLinearMixedModel):
        residual = distribution_variance(model) + _random_variance(model, observation_level=True)
    else:
        residual = model.sigma ** 2
    return VarianceComponents(fixed, random, residual)


def _random_variance(model, observation_level=False):
    """Σ over the grouping factors' first terms of mean(z'Σz); observation_level: only the terms
    with one level per row (a GLMM's overdispersion, which insight counts as residual variance)."""
    design = model.design
    names = list(design.fixed_names)
    X = design.X
    if "(Intercept)" not in names:
        X, names = np.column_stack([np.ones(design.n), X]), ["(Intercept)"] + names
    factors = set(model.ranef)
    total = 0.0
    for label, term, cov in zip(model.group_labels, design.terms, model.covariances):
        if label not in factors or (term.nlevels == design.n) != observation_level:
            continue
        keep = [i for i, c in enumerate(term.columns) if c in names]
        Z = X[:, [names.index(term.columns[i]) for i in keep]]
        total += np.einsum("ni,ij,nj->", Z, cov[np.ix_(keep, keep)], Z) / design.n
    return float(total)


def icc(model):
    """performance::icc's adjusted ICC: σ²_random / (σ²_random + σ²); for the null model the
    seed's τ00 / (τ00 + σ²). NaN (with a warning) for a singular fit, as performance."""
    v = variance_components(model)
    if np.isnan(v.random):
        log.warning("ICC not computed: a variance component is (nearly) zero, the fit is singular")
        return float("nan")
    return float(v.random / (v.random + v.residual))


def r2_nakagawa(model):
    """performance::r2_nakagawa: (marginal, conditional) R² of Nakagawa, Johnson & Schielzeth
    (2017), random slopes included. For a singular fit the conditional R² is NaN and the
    marginal one leaves out the random part, as performance does."""
    v = variance_components(model)
    if np.isnan(v.random):
        log.warning("random-effect variances not available (singular fit); R2 ignores them")
        return R2(v.fixed / (v.fixed + v.residual), float("nan"))
    total = v.fixed + v.random + v.residual
    return R2(v.fixed / total, (v.fixed + v.random) / total)


def variance_explained(old, new):
    """(old - new) / old for each variance component the two models share: "Residual" (level 1,
    σ²) and "<group>: <column>" (level 2, τ00, τ11, ...), as the seed computes them."""
    _check_model(old, "old")
    _check_model(new, "new")
    _check_same_rows([("old", old), ("new", new)])
    before, after = _variances(old), _variances(new)
    shared = [k for k in after if k in before]
    if len(shared) <= 1 and len(after) > 1:
        log.warning("the models share only the residual variance; level-2 reductions need the same "
                    "random terms in both models")
    values = [(before[k] - after[k]) / before[k] if before[k] != 0 else np.nan for k in shared]
    return pd.Series(values, index=pd.Index(shared, name="component"), name="variance explained")


def _variances(model):
    vc = model.varcorr
    residual = vc.loc[vc.grp == "Residual", "vcov"]   # none for a GLMM: only its τ's compare
    out = {"Residual": float(residual.iloc[0])} if len(residual) else {}
    for row in vc[(vc.grp != "Residual") & vc.var2.isna()].itertuples():
        out[f"{row.grp}: {row.var1}"] = float(row.vcov)
    return out


INTERCEPT = "(Intercept)"


def icc_by_level(model, levels):
    """The ICC of each grouping level, from a model's variance components.

    `levels`: the grouping columns from level 2 upwards (data.levels). With random intercepts
    only, each level's entry has its variance τ, its share τ / total (total: every τ plus σ²),
    the correlation of two observations in the same unit of the level (its τ and those of the
    levels above over the total: the same class means the same school) and Kish's design effect
    1 + (m − 1) × correlation, m the mean number of observations per unit. A crossed factor
    (no level) has its share as its correlation. With random slopes the ICC depends on the
    predictor's value: kind 'adjusted', Nakagawa's adjusted ICC (performance::icc). A zero
    intercept variance: kind 'undefined'.
    """
    _check_model(model)
    vc = model.varcorr
    parts = vc[(vc.grp != "Residual") & vc.var2.isna()]
    if (parts.var1 != INTERCEPT).any():
        return {"kind": "adjusted", "value": icc(model)}
    sigma2 = float(vc.loc[vc.grp == "Residual", "vcov"].iloc[0])
    entries = [{"group": row.grp, "column": _level_column(row.grp, levels), "variance": float(row.vcov)}
               for row in parts.itertuples()]
    for entry in entries:
        entry["level"] = levels.index(entry["column"]) + 2 if entry["column"] in levels else None
    entries.sort(key=lambda e: (e["level"] is None, e["level"] or 0))
    total = sigma2 + sum(e["variance"] for e in entries)
    if model.is_singular or any(e["variance"] <= 0 for e in entries):
        zero = [e["group"] for e in entries if e["variance"] < SINGULAR_TOLERANCE * total] or [e["group"] for e in entries]
        return {"kind": "undefined", "zero": zero, "residual": sigma2, "levels": entries}
    for entry in entries:
        above = [e["variance"] for e in entries if e["level"] is not None and entry["level"] is not None
                 and e["level"] >= entry["level"]]
        entry["share"] = entry["variance"] / total
        entry["correlation"] = (sum(above) if above else entry["variance"]) / total
        entry["mean_size"] = model.nobs / model.ngroups[entry["group"]]
        entry["design_effect"] = 1 + (entry["mean_size"] - 1) * entry["correlation"]
    return {"kind": "intercepts", "residual": sigma2, "total": total, "residual_share": sigma2 / total,
            "levels": entries}


def _level_column(group, levels):
    """The data column a grouping factor stands for: 'childid:schoolid' (lme4's name for
    schoolid/childid) -> childid, the innermost; a factor named like a level -> that level."""
    if group in levels:
        return group
    first = group.split(":")[0]
    return first if first in levels else group
