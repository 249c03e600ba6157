"""The fitted linear mixed model: lme4's pipeline (design -> deviance -> optimize -> fit).

LinearMixedModel holds what lme4's merMod holds and computes every number from it once, on
first use. It is frozen all the way down: its arrays are read-only and every table it hands out
is a new object, so nothing a caller does changes a later number. with_response and refit give
new fits that reuse its cross-products. Tests, intervals and the printout are inference's
(LmerTestModel, as lmerTest's class extends lme4's).
"""
import functools
import logging
import operator
from dataclasses import dataclass, fields, replace
from functools import cached_property

import numpy as np
import pandas as pd

from ..errors import ModelError
from .covariance import read_only
from .deviance import ProfiledDeviance, read_only_evaluation
from .optimize import (
    SINGULAR_TOLERANCE,
    OptSummary,
    convergence_messages,
    default_optimizer,
    deviance_gradient,
    is_expensive,
    is_singular,
    optimize,
)

log = logging.getLogger(__name__)

INTERIOR_START = 0.05          # where a restart puts bounded θ entries that ended on or near 0
IMPROVEMENT_TOLERANCE = 1e-8   # a restart's optimum replaces the first only if this much lower
SINGULAR_MESSAGE = "boundary (singular) fit: see help('isSingular')"


def fit_design(design, REML=True, optimizer=None, control=None, start=None, model_class=None):
    """Fit a built Design (as an instance of `model_class`, LinearMixedModel by default);
    allfit reuses the design without rebuilding it. optimizer=None: the engine's choice
    (optimize.default_optimizer: BOBYQA, or L-BFGS-B with the exact gradient for large crossed models)."""
    design = _read_only_design(design)
    return _fit(design, ProfiledDeviance.from_design(design, _reml(REML, design)), optimizer, control, start,
                model_class or LinearMixedModel)


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
    design = _read_only_design(design)
    deviance = ProfiledDeviance.from_design(design, _reml(REML, design))
    theta = np.array(optsummary.final)
    value = deviance.objective(theta)
    if not abs(value - optsummary.fmin) <= rtol * max(1.0, abs(optsummary.fmin)):
        raise ModelError(f"the saved fit of '{design.formula}' does not belong to this data: the objective at "
                         f"its θ is {value:.10g}, the record says {optsummary.fmin:.10g}; fit the model again")
    model_class = model_class or LinearMixedModel
    return model_class(design, deviance, optsummary, is_singular(theta, deviance.layout.lower),
                       bool(converged), tuple(messages))


def _fit(design, deviance, optimizer, control, start, model_class, level=logging.WARNING, restart=True):
    """Optimize θ, check the optimum as lme4 does and log the fit's messages at `level`.

    An optimizer can stop on the boundary (a variance at 0) or at a point that fails lme4's
    gradient check, short of the optimum lme4 finds (random slopes have optima on several
    boundaries): then it runs again from interior points (_worth_restarting) and the best optimum
    is kept, so the fit is never worse than lme4's; a message says when that changed the answer.
    restart=False keeps the first optimum, as lme4 does.
    """
    optimizer = optimizer or default_optimizer(deviance)
    exact = deviance_gradient(deviance)   # shared: the optimizer and the checks read the same evaluations
    try:
        theta, summary = optimize(deviance, optimizer, control, start, exact)
    except ModelError:
        _refuse_exact_fit(design)
        raise
    singular, convergence = _checks(deviance, theta, exact)
    first, restarted = summary, []
    if restart and _worth_restarting(deviance, theta, summary.fmin, singular, convergence):
        for interior in _interior_starts(deviance.layout.lower, theta):
            try:
                retry, retry_summary = optimize(deviance, optimizer, control, interior, exact)
            except ModelError:        # this start failed (e.g. NLopt's roundoff limit): keep the others
                continue
            evaluations = summary.evaluations + retry_summary.evaluations
            if retry_summary.fmin < summary.fmin - IMPROVEMENT_TOLERANCE:
                theta, summary = retry, retry_summary
            summary = replace(summary, initial=first.initial, evaluations=evaluations)
        if summary.fmin < first.fmin:
            singular, convergence = _checks(deviance, theta, exact)
            restarted = [(f"the optimizer stopped short of the optimum; restarted from interior points it "
                         f"found a deviance lower by {first.fmin - summary.fmin:.4g}, which the fit uses")]
    if summary.status == "MAXEVAL_REACHED":
        convergence.insert(0, f"failure to converge in {summary.control['maxeval']} evaluations "
                              "(raise control['maxeval'] or try another optimizer)")
    messages = list(design.messages) + restarted + ([SINGULAR_MESSAGE] if singular else []) + convergence
    for message in messages[len(design.messages):]:
        log.log(level, message)
    return model_class(design, deviance, summary, singular, not convergence, tuple(messages),
                       exact.evaluation(theta) if exact else None)


EDGE_STEP = 1e-5   # lme4's restart_edge: the step into the interior from a θ on its bound


def _worth_restarting(deviance, theta, fmin, singular, convergence):
    """Whether to search from interior starts: at a point that fails lme4's gradient check, or on
    the boundary; there, for models of scalar terms, only where lme4's restart_edge would restart
    (the objective falls a step EDGE_STEP into the interior from some θ_k near its bound 0): on
    the 168 random designs of tests/engine/test_random_designs.py, interior starts found a better
    optimum for 10 of 65 singular fits with correlated terms, and for none of the scalar ones."""
    if convergence or not singular:
        return bool(convergence)
    if not deviance.scalar_terms:
        return True
    for k in np.flatnonzero(np.isfinite(deviance.layout.lower) & (theta < SINGULAR_TOLERANCE)):
        trial = theta.copy()
        trial[k] += EDGE_STEP
        if deviance.objective(trial) < fmin:
            return True
    return False


def _interior_starts(lower, theta):
    """Where to restart after an optimum on the boundary: θ̂ moved off it, 0.5·I, and all
    entries 0.5 (correlated effects), so that optima on other boundaries are reached too.
    Each start once: without correlations the last two are the same point, and the optimizer
    would only repeat itself."""
    bounded = np.isfinite(lower)
    starts = [np.where(bounded, np.maximum(theta, INTERIOR_START), theta),
              np.where(bounded, 0.5, 0.0), np.full(len(theta), 0.5)]
    return list({tuple(start): start for start in starts}.values())


def _checks(deviance, theta, exact):
    """(singular, convergence messages) of an optimum, as lme4 checks them; from the exact
    derivatives (or None) where an evaluation is expensive."""
    lower = deviance.layout.lower
    singular = is_singular(theta, lower)
    gradient = exact if is_expensive(deviance) else None
    return singular, [] if singular else convergence_messages(deviance.objective, theta, lower, gradient,
                                                              deviance.central_derivatives)


def _read_only_design(design):
    """The design (and its terms) with read-only views of its arrays, which the fit reads again
    (build_design's are read-only already, and then it is the design itself)."""
    terms = tuple(map(_read_only_arrays, design.terms))
    design = _read_only_arrays(design)
    return design if all(map(operator.is_, terms, design.terms)) else replace(design, terms=terms)


def _read_only_arrays(record):
    """A frozen dataclass whose array fields are read-only: itself, or a copy with read-only views."""
    arrays = {f.name: read_only(getattr(record, f.name)) for f in fields(record)
              if isinstance(getattr(record, f.name), np.ndarray) and getattr(record, f.name).flags.writeable}
    return replace(record, **arrays) if arrays else record


def _response(y, n):
    """A new response as a read-only float copy, refused unless it has n finite values."""
    try:
        y = np.array(y, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ModelError(f"the new response is not numeric ({exc}); pass an array of {n} numbers") from None
    if y.shape != (n,):
        raise ModelError(f"the new response has shape {y.shape}; the model has {n} rows: pass {n} numbers")
    if not np.isfinite(y).all():
        raise ModelError(f"the new response has {int((~np.isfinite(y)).sum())} missing or infinite values; "
                         "pass finite numbers for every row of the model")
    return read_only(y)


@functools.lru_cache(maxsize=256)
def _names_index(names):
    """The fixed effects' names as a pandas Index, made once per set of names (9 µs of a small fit;
    an object Index: pandas' inferred string one costs more), over a read-only array; each Series
    gets a view of it, whose name a caller may set without touching the next Series'."""
    values = np.array(names, dtype=object)
    values.flags.writeable = False
    return pd.Index(values, dtype=object, copy=False)


@dataclass(frozen=True, eq=False)
class LinearMixedModel:
    """A fit: the design, its deviance function, the optimizer's record and lme4's checks of it."""
    design: object
    deviance_function: ProfiledDeviance
    optsummary: OptSummary
    is_singular: bool
    converged: bool
    messages: tuple
    optimum_evaluation: object = None   # the optimizer's Evaluation at θ̂ where it kept one (gradient fits)

    # ---- the objective and related fits ---------------------------------------------------
    @cached_property
    def _evaluation(self):
        ev = self.optimum_evaluation
        return read_only_evaluation(self.deviance_function.evaluate(self.theta) if ev is None else ev)

    def objective(self, theta=None):
        """The profiled deviance (ML) or REML criterion at θ, by default at θ̂."""
        ev = self._evaluation if theta is None else self.deviance_function.evaluate(theta)
        return self.deviance_function.criterion(ev)

    def objective_given_sigma(self, theta, sigma):
        """The deviance (or REML criterion) at θ and σ, not profiled over σ; at σ = σ̂(θ) it
        equals objective(θ)."""
        return self.deviance_function.objective_given_sigma(theta, sigma)

    def with_response(self, y, restart=True):
        """This model fitted to response y on the same rows (lme4's refit(m, y), MixedModels.jl's
        refit!): X, Z and every cross-product without y are reused; only Z'y, X'y and y'y are formed.
        Same optimizer, settings and start as a fresh fit (lme4's start, as MixedModels.jl's refit!),
        so the result is the fit lmer gives on that response. lme4's refit starts at θ̂ instead; with
        BOBYQA's first step of 0.75 that takes more evaluations, not fewer (benchmarks/README.md).
        restart=False: one optimization, as lme4's refit (see _fit), for simulations that refit
        thousands of times. Messages are logged at debug level: a bootstrap refits hundreds of times."""
        y = _response(y, self.nobs)
        return _fit(replace(self.design, y=y), self.deviance_function.with_response(y), self.optsummary.optimizer,
                    self.optsummary.control, None, type(self), level=logging.DEBUG, restart=restart)

    def refit(self, REML=None, optimizer=None, control=None):
        """The same model on the same rows, fitted again from lme4's start (e.g. by ML for a
        likelihood-ratio test); the cross-products are reused."""
        REML = _reml(self.REML if REML is None else REML, self.design)
        return _fit(self.design, self.deviance_function.with_reml(REML),
                    optimizer or self.optsummary.optimizer, self.optsummary.control if control is None else control,
                    None, type(self))

    # ---- the fit ------------------------------------------------------------------------
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
    def beta(self):
        """The fixed effects as an array, in the order of design.fixed_names (lme4's getME(m, "beta"))."""
        return read_only(self.deviance_function.fixed_effects(self._evaluation))

    @property
    def fixef(self):
        """The fixed effects by name."""
        return pd.Series(self.beta, index=_names_index(self.design.fixed_names).view(), name="Estimate")

    @cached_property
    def _vcov(self):
        if not self.design.p:  # y ~ 0 + (1 | g): no fixed effects, R_X is 0 x 0
            return read_only(np.zeros((0, 0)))
        return read_only(self.sigma ** 2 * self.deviance_function.unscaled_vcov(self._evaluation))

    @property
    def vcov(self):
        names = list(self.design.fixed_names)
        return pd.DataFrame(self._vcov, index=names, columns=names)

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
        return -self.objective() / 2

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
        return None if self.REML else self.objective()

    @property
    def reml_criterion(self):
        return self.objective() if self.REML else None

    @property
    def ngroups(self):
        return {t.group: t.nlevels for t in self.design.terms}

    # ---- variance components -------------------------------------------------------------
    @property
    def covariance_layout(self):
        """Where each term's Λ_k sits in θ, and lme4's names of the variance parameters."""
        return self.deviance_function.layout

    @property
    def group_labels(self):
        """Term names as as.data.frame(VarCorr()) prints them: repeats become id.1, id.2."""
        return self.covariance_layout.labels

    @cached_property
    def covariances(self):
        """σ² Λ_k Λ_k' for each random-effects term."""
        return tuple(read_only(c) for c in self.covariance_layout.covariances(self.theta, self.sigma))

    @property
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
        se = np.sqrt(np.diag(self._vcov))
        return pd.DataFrame({"Estimate": self.fixef, "Std. Error": se, "t value": self.fixef / se})

    @cached_property
    def _modes(self):
        return tuple(read_only(m) for m in self.deviance_function.conditional_modes(self._evaluation))

    @property
    def ranef(self):
        """Conditional modes per grouping factor (terms on one factor side by side, as lme4)."""
        out = {}
        for term, modes in zip(self.design.terms, self._modes):
            frame = pd.DataFrame(modes, index=pd.Index(term.levels, name=term.group), columns=list(term.columns))
            out[term.group] = pd.concat([out[term.group], frame], axis=1) if term.group in out else frame
        return out

    @cached_property
    def _condvar(self):
        variances = self.deviance_function.conditional_variances(self._evaluation)
        return tuple(read_only(self.sigma ** 2 * v) for v in variances)

    @property
    def ranef_condvar(self):
        """Conditional covariance of each term's modes per level: {label: (J, q, q) array}."""
        return dict(zip(self.group_labels, self._condvar))

    @cached_property
    def fitted(self):
        value = self.design.X @ self.beta
        for term, modes in zip(self.design.terms, self._modes):
            value = value + np.einsum("nq,nq->n", term.matrix, modes[term.codes])
        return read_only(value)

    def residuals(self, scaled=False):
        resid = self.design.y - self.fitted
        return resid / self.sigma if scaled else resid
