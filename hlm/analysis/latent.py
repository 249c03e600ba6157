"""The level-1 variance of a GLMM on the latent scale, as performance's icc() and r2_nakagawa()
take it (insight::get_variance's distribution-specific variance).

Binomial: the variance of the link's standard distribution, π²/3 (logit), 1 (probit), π²/6
(cloglog). Poisson with a log link: the lognormal approximation log(1 + 1/λ) with λ = exp(β₀)
of the null model, the same random effects and offset with the intercept only, fitted to the
same rows (performance refits it through update()).
"""
import dataclasses
import logging
import math

import numpy as np

from ..engine.glmm import fit_glmm
from ..inference.cache import _cached

log = logging.getLogger(__name__)

LINK_VARIANCES = {"logit": math.pi ** 2 / 3, "probit": 1.0, "cloglog": math.pi ** 2 / 6}
SMALL_RATE = 6   # performance warns below this λ: the lognormal approximation is poor


def distribution_variance(model):
    """The latent level-1 variance of a binomial or Poisson GLMM."""
    if model.link in LINK_VARIANCES:
        return LINK_VARIANCES[model.link]
    rate = math.exp(null_model(model).fixef.iloc[0])
    if rate < SMALL_RATE:
        log.warning("mu of %.1f is too close to zero, estimate of random effect variances may be unreliable", rate)
    return math.log1p(1 / rate)


def null_model(model):
    """The model with its random effects and offset but the intercept as the only fixed effect (cached)."""
    def fit():
        design = dataclasses.replace(model.design, X=np.ones((model.nobs, 1)), fixed_names=("(Intercept)",),
                                     dropped_columns=(), messages=(),
                                     formula=f"{model.design.response} ~ 1 (the null model of {model.formula})")
        return fit_glmm(design, model.response, model.nAGQ)
    return _cached(model, "null", fit)
