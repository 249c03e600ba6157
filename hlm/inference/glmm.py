"""glmer's model class: a generalized linear mixed model with Wald z tests, intervals, ratios
of exp(β) and glmer's printout; `glmer()` returns one.
"""
import dataclasses

import numpy as np
import pandas as pd
import scipy.special

from ..engine.covariance import CovarianceLayout
from ..engine.design import build_design
from ..engine.family import Family, glm_response, response_reader
from ..engine.glmm import OPTIMIZERS, GeneralizedLinearMixedModel, fit_glmm, restore_glmm
from ..engine.optimize import OptSummary
from ..errors import DataError, ModelError, did_you_mean
from .glmm_profile import profile_confint
from .glmm_summary import format_glmm_summary, glmm_dict
from .profile import select_parameters

RATIO_NAMES = {"logit": "odds ratio", "cloglog": "hazard ratio", "log": "rate ratio"}


def glmer(formula, data, family="binomial", link=None, nAGQ=1, weights=None, control=None):
    """Fit a generalized linear mixed model as lme4::glmer does (Laplace by default).

    family: "binomial" (a 0/1, logical or two-category outcome, cbind(successes, failures), or
    proportions with `weights` = trials) or "poisson" (counts); link: logit, probit or cloglog
    (binomial), log (Poisson). weights: a column of `data` or one number per row. control:
    {"optimizer": one name or one per stage (default bobyqa, then nelder_mead), and the
    optimizer settings hlm.lmer takes (maxeval, ...)}.
    """
    control = dict(control or {})
    optimizers = control.pop("optimizer", OPTIMIZERS)
    design, response = glmer_design(formula, data, family, link, weights)
    return fit_glmm(design, response, nAGQ, optimizers, control or None, model_class=GlmerModel)


def glmer_design(formula, data, family="binomial", link=None, weights=None):
    """The design and the response (as the family reads it) that glmer fits."""
    family = Family.named(family, link)
    prior = _weights(weights, data)
    keep = None if prior is None else np.isfinite(prior)
    design = build_design(formula, data if keep is None or keep.all() else data[keep], response=response_reader(family))
    if keep is not None and not keep.all():      # rows with a missing weight are left out, as R's model frame does
        kept = np.flatnonzero(keep)
        design = dataclasses.replace(design, rows=kept[design.rows],
                                     n_dropped_rows=design.n_dropped_rows + int((~keep).sum()))
    response = glm_response(design.y, design.response, family, None if prior is None else prior[design.rows],
                            design.offset)
    if isinstance(weights, str):
        response = dataclasses.replace(response, weights_name=weights)
    return design, response


def restore_glmer(record, data):
    """The fit a record (GlmerModel.to_dict()) saved, on the data it was fitted to, without optimizing
    again; ModelError if the record does not belong to this data."""
    design, response = glmer_design(record["formula"], data, record["family"], record["link"], record["weights"])
    derivs = None if record["hessian"] is None else (np.array(record["gradient"]), np.array(record["hessian"]))
    return restore_glmm(design, response, record["nAGQ"], OptSummary.from_dict(record["optsummary"]),
                        record["start_theta"], derivs, record["converged"], record["messages"], model_class=GlmerModel)


def _weights(weights, data):
    """The prior weight of every row of data (NaN where missing), None without weights."""
    if weights is None:
        return None
    if isinstance(weights, str):
        if weights not in data.columns:
            raise DataError(f"weights column '{weights}' not in data{did_you_mean(weights, data.columns)}")
        values = pd.to_numeric(data[weights], errors="coerce").to_numpy(dtype=float)
    else:
        values = np.asarray(weights, dtype=float)
        if values.shape != (len(data),):
            raise DataError(f"weights has {values.size} values for {len(data)} rows; give one weight per row")
    if (values[np.isfinite(values)] < 0).any():
        raise DataError(f"weights{f' column {weights!r}' if isinstance(weights, str) else ''} has negative values; "
                        "weights count trials or observations and must be 0 or more")
    return values


class GlmerModel(GeneralizedLinearMixedModel):
    """A fitted GLMM with glmer's printout, Wald intervals and exp(β) ratios."""

    def summary(self):
        """summary(m) as lme4 prints it for a glmer fit."""
        return format_glmm_summary(self)

    def confint(self, method="Wald", level=0.95, parm=None):
        """lme4's confint(m, method = ..., parm = ...): "Wald", the fixed effects' Estimate ± z·SE (the
        variance parameters' rows NaN, as in lme4), or "profile", likelihood profile limits. parm:
        the parameters (names as the rows are named), all by default. Columns named as R names
        them ("2.5 %", "97.5 %")."""
        if str(method).lower() not in ("wald", "profile"):
            raise ModelError(f"confint method '{method}' is not available for a GLMM; use 'Wald' or 'profile'")
        if not 0 < level < 1:
            raise ModelError(f"level {level} must be between 0 and 1, e.g. 0.95")
        if str(method).lower() == "profile":
            return profile_confint(self, level, parm)
        alpha = (1 - level) / 2
        names = list(CovarianceLayout.from_terms(self.design.terms).names[:-1]) + list(self.design.fixed_names)   # no sigma: no scale parameter
        limits = np.full((len(names), 2), np.nan)
        se = np.sqrt(np.diag(self.vcov.to_numpy()))
        limits[-len(se):] = self.fixef.to_numpy()[:, None] + se[:, None] * scipy.special.ndtri([alpha, 1 - alpha])
        table = pd.DataFrame(limits, index=names, columns=[f"{100 * alpha:.3g} %", f"{100 * (1 - alpha):.3g} %"])
        return table.loc[select_parameters(names, parm)]

    def ratios(self, level=0.95):
        """exp(β) with Wald limits: odds ratios (logit), hazard ratios (cloglog), incidence-rate
        ratios (log); the intercept's row is the odds or rate at all predictors 0."""
        if self.link not in RATIO_NAMES:
            raise ModelError(f"exp() of {self.link} coefficients is no ratio; use the {self.link} estimates "
                             "(coef_table) or predicted probabilities (predict)")
        limits = self.confint("Wald", level).loc[list(self.design.fixed_names)]
        out = np.exp(pd.concat([self.fixef.rename(RATIO_NAMES[self.link]), limits], axis=1))
        return out

    def to_dict(self):
        """Every number of the fit, with the key names of the glmer reference JSON."""
        return glmm_dict(self)
