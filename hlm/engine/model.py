"""The fitted linear mixed model: lme4's pipeline (design -> deviance -> optimize -> fit).

LinearMixedModel holds what lme4's merMod holds and computes every number from it once, on
first use; it is frozen. Tests, intervals and the printout are inference's (LmerTestModel,
as lmerTest's class extends lme4's).
"""
import logging
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd

from ..errors import ModelError
from .deviance import ProfiledDeviance
from .optimize import OptSummary, convergence_messages, is_singular, optimize

log = logging.getLogger(__name__)

SINGULAR_MESSAGE = "boundary (singular) fit: see help('isSingular')"


def fit_design(design, REML=True, optimizer="bobyqa", control=None, start=None, model_class=None):
    """Fit a built Design (as an instance of `model_class`, LinearMixedModel by default);
    `refit` and allfit reuse the design without rebuilding it."""
    deviance = ProfiledDeviance(design, reml=_reml(REML, design))
    try:
        theta, summary = optimize(deviance, optimizer, control, start)
    except ModelError:
        _refuse_exact_fit(design)
        raise
    singular = is_singular(theta, deviance.lower)
    convergence = [] if singular else convergence_messages(deviance, theta, deviance.lower)
    if summary.status == "MAXEVAL_REACHED":
        convergence.insert(0, f"failure to converge in {summary.control['maxeval']} evaluations "
                              "(raise control['maxeval'] or try another optimizer)")
    messages = list(design.messages) + ([SINGULAR_MESSAGE] if singular else []) + convergence
    for message in messages[len(design.messages):]:
        log.warning(message)
    model_class = model_class or LinearMixedModel
    return model_class(design, deviance, summary, singular, not convergence, tuple(messages))


def _reml(REML, design):
    """As lme4: without fixed effects REML is ML (and the fit says so)."""
    return bool(REML) and design.p > 0


def _refuse_exact_fit(design):
    """When the optimizer fails because the fixed effects alone reproduce y, say so."""
    if design.p >= design.n:
        rss = 0.0
    else:
        coefficients = np.linalg.lstsq(design.X, design.y, rcond=None)[0]
        rss = float(np.sum((design.y - design.X @ coefficients) ** 2))
    if rss <= 1e-10 * max(1.0, float(np.sum((design.y - design.y.mean()) ** 2))):
        raise ModelError(f"the fixed effects of '{design.formula}' fit '{design.response}' exactly ({design.p} "
                         f"coefficients, {design.n} observations), so no variance is left to estimate; "
                         "remove predictors or check that the outcome is not computed from them")


def restore_fit(design, REML, optsummary, converged, messages, model_class=None, rtol=1e-9):
    """The fit a record saved, at its θ̂, without optimizing again.

    The objective at θ̂ must be the saved one: a design built from other data gives another
    value, and then the record does not belong to this design.
    """
    deviance = ProfiledDeviance(design, reml=_reml(REML, design))
    value = deviance(np.array(optsummary.final))
    if not abs(value - optsummary.fmin) <= rtol * max(1.0, abs(optsummary.fmin)):
        raise ModelError(f"the saved fit of '{design.formula}' does not belong to this data: the objective at "
                         f"its θ is {value:.10g}, the record says {optsummary.fmin:.10g}; fit the model again")
    model_class = model_class or LinearMixedModel
    return model_class(design, deviance, optsummary, is_singular(np.array(optsummary.final), deviance.lower),
                       bool(converged), tuple(messages))


@dataclass(frozen=True, eq=False)
class LinearMixedModel:
    design: object
    deviance_function: ProfiledDeviance
    optsummary: OptSummary
    is_singular: bool
    converged: bool
    messages: tuple

    # ---- the fit ------------------------------------------------------------------------
    @cached_property
    def _evaluation(self):
        return self.deviance_function.evaluate(np.array(self.optsummary.final))

    @property
    def REML(self):
        return self.deviance_function.reml

    @property
    def formula(self):
        return self.design.formula

    @property
    def theta(self):
        return np.array(self.optsummary.final)

    @cached_property
    def sigma(self):
        return float(self.deviance_function.sigma(self._evaluation))

    @cached_property
    def objective(self):
        return float(self.deviance_function.objective(self._evaluation))

    @cached_property
    def fixef(self):
        beta = self.deviance_function.fixed_effects(self._evaluation)
        return pd.Series(beta, index=list(self.design.fixed_names), name="Estimate")

    @cached_property
    def vcov(self):
        names = list(self.design.fixed_names)
        if not names:  # y ~ 0 + (1 | g): no fixed effects, R_X is 0 x 0
            return pd.DataFrame(np.zeros((0, 0)))
        unscaled = self.deviance_function.unscaled_vcov(self._evaluation)
        return pd.DataFrame(self.sigma ** 2 * unscaled, index=names, columns=names)

    @property
    def nobs(self):
        return self.design.n

    @property
    def n_dropped(self):
        return self.design.n_dropped_rows

    @property
    def npar(self):
        return self.design.p + len(self.theta) + 1

    @property
    def loglik(self):
        return -self.objective / 2

    @property
    def aic(self):
        return -2 * self.loglik + 2 * self.npar

    @property
    def bic(self):
        return -2 * self.loglik + np.log(self.nobs) * self.npar

    @property
    def df_resid(self):
        return self.nobs - self.npar

    @property
    def deviance(self):
        """-2 logLik of an ML fit (None for REML fits, whose criterion is reml_criterion)."""
        return None if self.REML else self.objective

    @property
    def reml_criterion(self):
        return self.objective if self.REML else None

    @property
    def ngroups(self):
        return {t.group: t.nlevels for t in self.design.terms}

    # ---- variance components -------------------------------------------------------------
    @cached_property
    def group_labels(self):
        """Term names as as.data.frame(VarCorr()) prints them: repeats become id.1, id.2."""
        seen, labels = {}, []
        for term in self.design.terms:
            count = seen.get(term.group, 0)
            labels.append(term.group if count == 0 else f"{term.group}.{count}")
            seen[term.group] = count + 1
        return labels

    @cached_property
    def covariances(self):
        """σ² Λ_k Λ_k' for each random-effects term."""
        s2 = self.sigma ** 2
        return [s2 * lam @ lam.T for lam in self._evaluation.factors]

    @cached_property
    def varcorr(self):
        rows = []
        for label, term, cov in zip(self.group_labels, self.design.terms, self.covariances):
            sd = np.sqrt(np.diag(cov))
            rows += [(label, name, None, cov[i, i], sd[i]) for i, name in enumerate(term.columns)]
            for j in range(term.q):
                for i in range(j + 1, term.q):
                    corr = cov[i, j] / (sd[i] * sd[j]) if sd[i] > 0 and sd[j] > 0 else np.nan
                    rows.append((label, term.columns[j], term.columns[i], cov[i, j], corr))
        rows.append(("Residual", None, None, self.sigma ** 2, self.sigma))
        return pd.DataFrame(rows, columns=["grp", "var1", "var2", "vcov", "sdcor"])

    # ---- effects and predictions ---------------------------------------------------------
    def coef_table(self):
        """Estimate, Std. Error, t value, as lme4's summary prints them."""
        se = np.sqrt(np.diag(self.vcov.to_numpy()))
        return pd.DataFrame({"Estimate": self.fixef, "Std. Error": se, "t value": self.fixef / se})

    @cached_property
    def _modes(self):
        return self.deviance_function.conditional_modes(self._evaluation)

    @cached_property
    def ranef(self):
        """Conditional modes per grouping factor (terms on one factor side by side, as lme4)."""
        out = {}
        for term, modes in zip(self.design.terms, self._modes):
            frame = pd.DataFrame(modes, index=pd.Index(term.levels, name=term.group), columns=list(term.columns))
            out[term.group] = pd.concat([out[term.group], frame], axis=1) if term.group in out else frame
        return out

    @cached_property
    def ranef_condvar(self):
        """Conditional covariance of each term's modes per level: {label: (J, q, q) array}."""
        variances = self.deviance_function.conditional_variances(self._evaluation)
        return {label: self.sigma ** 2 * v for label, v in zip(self.group_labels, variances)}

    @cached_property
    def fitted(self):
        value = self.design.X @ self.fixef.to_numpy()
        for term, modes in zip(self.design.terms, self._modes):
            value = value + np.einsum("nq,nq->n", term.matrix, modes[term.codes])
        return value

    def residuals(self, scaled=False):
        resid = self.design.y - self.fitted
        return resid / self.sigma if scaled else resid

    # ---- refits and output ---------------------------------------------------------------
    def refit(self, REML=None, optimizer=None, control=None):
        """The same model on the same rows, fitted again (e.g. by ML for a likelihood-ratio test)."""
        return fit_design(self.design, REML=self.REML if REML is None else REML,
                          optimizer=optimizer or self.optsummary.optimizer,
                          control=self.optsummary.control if control is None else control,
                          model_class=type(self))
