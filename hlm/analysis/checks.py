"""Checks shared by the analyses that take several models.
"""
import numpy as np

from ..engine.glmm import GeneralizedLinearMixedModel
from ..engine.model import LinearMixedModel
from ..errors import ModelError


def _check_model(model, what="model"):
    if not isinstance(model, (LinearMixedModel, GeneralizedLinearMixedModel)):
        raise ModelError(f"{what} is a {type(model).__name__}, not a fitted model; pass hlm.lmer(...) or "
                         "hlm.glmer(...) results")


def _likelihood(model):
    """What a model's log-likelihood is: linear, or a family and link with Laplace or AGQ (whose
    lme4 log-likelihood leaves out constants, so it compares only with other AGQ fits)."""
    if isinstance(model, LinearMixedModel):
        return "a linear mixed model"
    return f"family {model.family} ({model.link}) by {'Laplace' if model.nAGQ <= 1 else 'adaptive quadrature'}"


def _check_same_likelihood(named):
    """Refuse to compare likelihoods of different kinds (an LMM with a GLMM, binomial with Poisson)."""
    (first, a), rest = named[0], named[1:]
    for name, b in rest:
        if _likelihood(a) != _likelihood(b):
            raise ModelError(f"models '{first}' and '{name}' have likelihoods of different kinds ({_likelihood(a)}, "
                             f"{_likelihood(b)}); compare models of one family, link and approximation")


def _check_same_rows(named):
    """Refuse models fitted to different rows or responses (their likelihoods do not compare)."""
    (first, a), rest = named[0], named[1:]
    for name, b in rest:
        if a.nobs != b.nobs:
            raise ModelError(f"models were fitted to different rows: '{first}' has {a.nobs} observations, "
                             f"'{name}' {b.nobs}; fit every model to the same complete rows (drop rows with "
                             "a missing value in any model's variables first)")
        if a.design.response != b.design.response or not np.array_equal(a.design.y, b.design.y):
            raise ModelError(f"models were fitted to different responses: '{first}' to "
                             f"'{a.design.response}', '{name}' to '{b.design.response}' (or to other rows); "
                             "compare models of the same response on the same rows")
