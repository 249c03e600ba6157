"""Checks shared by the analyses that take several models.
"""
import numpy as np

from ..engine.model import LinearMixedModel
from ..errors import ModelError


def _check_model(model, what="model"):
    if not isinstance(model, LinearMixedModel):
        raise ModelError(f"{what} is a {type(model).__name__}, not a fitted model; pass hlm.lmer(...) results")


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
