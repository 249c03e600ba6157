"""glmer's model class: a generalized linear mixed model with Wald z tests, intervals, ratios
of exp(β) and glmer's printout; `glmer()` returns one.
"""
import dataclasses

import numpy as np
import pandas as pd

from ..engine.design import build_design
from ..engine.family import Family, glm_response, response_reader
from ..engine.glmm import OPTIMIZERS, GeneralizedLinearMixedModel, fit_glmm
from ..errors import DataError


def glmer(formula, data, family="binomial", link=None, nAGQ=1, weights=None, control=None):
    """Fit a generalized linear mixed model as lme4::glmer does (Laplace by default).

    family: "binomial" (a 0/1, logical or two-category outcome, cbind(successes, failures), or
    proportions with `weights` = trials) or "poisson" (counts); link: logit, probit or cloglog
    (binomial), log (Poisson). weights: a column of `data` or one number per row. control:
    {"optimizer": one name or one per stage (default bobyqa, then nelder_mead), and the
    optimizer settings hlm.lmer takes (maxeval, ...)}.
    """
    family = Family.named(family, link)
    control = dict(control or {})
    optimizers = control.pop("optimizer", OPTIMIZERS)
    prior = _weights(weights, data)
    keep = None if prior is None else np.isfinite(prior)
    design = build_design(formula, data if keep is None or keep.all() else data[keep], response=response_reader(family))
    if keep is not None and not keep.all():      # rows with a missing weight are left out, as R's model frame does
        kept = np.flatnonzero(keep)
        design = dataclasses.replace(design, rows=kept[design.rows],
                                     n_dropped_rows=design.n_dropped_rows + int((~keep).sum()))
    response = glm_response(design.y, design.response, family, None if prior is None else prior[design.rows],
                            design.offset)
    return fit_glmm(design, response, nAGQ, optimizers, control or None, model_class=GlmerModel)


def _weights(weights, data):
    """The prior weight of every row of data (NaN where missing), None without weights."""
    if weights is None:
        return None
    if isinstance(weights, str):
        if weights not in data.columns:
            raise DataError(f"weights column '{weights}' not in data")
        values = pd.to_numeric(data[weights], errors="coerce").to_numpy(dtype=float)
    else:
        values = np.asarray(weights, dtype=float)
        if values.shape != (len(data),):
            raise DataError(f"weights has {values.size} values for {len(data)} rows; give one weight per row")
    if (values[np.isfinite(values)] < 0).any():
        raise DataError("weights must not be negative")
    return values


class GlmerModel(GeneralizedLinearMixedModel):
    """A fitted GLMM with glmer's printout, Wald intervals and exp(β) ratios."""
