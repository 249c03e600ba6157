"""Profile likelihood intervals of a GLMM, as lme4's confint(m, method = "profile") gives them.

lme4 profiles glmer's second-stage deviance over each parameter (standard deviations and
correlations of the random effects, fixed effects), minimising over the others, and reads
the limits where the signed square root of the deviance increase, ζ, equals ±z off a spline
through the points it visited. Here each limit is the root of ζ itself (Brent's method), with
the other parameters re-optimized (BOBYQA) at every trial value: the same quantity, without
the spline's interpolation error.
"""
import numpy as np
import pandas as pd
import scipy.optimize
import scipy.special

from ..engine.covariance import CovarianceLayout
from ..engine.glmm import Stage
from ..engine.optimize import minimize
from ..errors import ModelError
from .profile import select_parameters

INNER_CONTROL = {"ftol_abs": 1e-10, "ftol_rel": 1e-15, "xtol_abs": 1e-10, "initial_step": 0.05}
MAX_STEPS = 30            # doublings of the search for a value where ζ passes ±z


def profile_confint(model, level=0.95, parm=None):
    """Lower and upper limits of the parameters `parm` (all by default), named as lme4 names them
    (oldNames = FALSE)."""
    if model.nAGQ == 0:
        raise ModelError("profile intervals need the second stage's deviance; refit with nAGQ = 1 (or more)")
    profile = _Profile(model)
    wanted = select_parameters(profile.names, parm)
    z = scipy.special.ndtri((1 + level) / 2)
    limits = [(profile.limit(k, -z), profile.limit(k, z)) for k in map(profile.names.index, wanted)]
    alpha = (1 - level) / 2
    return pd.DataFrame(limits, index=wanted, columns=[f"{100 * alpha:.3g} %", f"{100 * (1 - alpha):.3g} %"])


class _Profile:
    """The deviance of a fit as a function of (sd and cor of the random effects, β)."""

    def __init__(self, model):
        self.model = model
        self.dev = model.deviance_function
        self.objective = self.dev.objective(model.start, solve_beta=False)
        self.n_theta = self.dev.n_theta
        self.layout = CovarianceLayout.from_terms(model.design.terms)
        self.names = list(self.layout.names[:-1]) + list(model.design.fixed_names)
        self.estimate = np.concatenate([self.layout.sdcor(model.theta, 1.0)[:-1], model.fixef.to_numpy()])
        standard_deviation = np.isfinite(self.dev.lower)          # sd ≥ 0; correlations in [-1, 1]
        self.lower = np.concatenate([np.where(standard_deviation, 0.0, -1.0), np.full(model.design.p, -np.inf)])
        self.upper = np.concatenate([np.where(standard_deviation, np.inf, 1.0), np.full(model.design.p, np.inf)])
        self.base = self.deviance(self.estimate)
        se = np.sqrt(np.diag(model.vcov.to_numpy()))
        self.scale = np.concatenate([np.maximum(np.abs(self.estimate[:self.n_theta]), 0.1) / 4, se])
        self.last = {}

    def deviance(self, params):
        params = np.clip(params, self.lower, self.upper)    # the optimizer sees bounds below only
        theta = self.layout.theta_from_sdcor(np.append(params[:self.n_theta], 1.0))
        return self.objective(np.concatenate([theta, params[self.n_theta:]]))

    def zeta(self, k, value):
        """sign(value - estimate)·√(min deviance with parameter k at value - deviance at the fit)."""
        others = np.delete(np.arange(len(self.estimate)), k)
        params = self.estimate.copy()
        params[k] = value

        def restricted(x):
            params[others] = x
            return self.deviance(params)
        start = np.clip(self.last.get(k, self.estimate[others]), self.lower[others], self.upper[others])
        stage = Stage(restricted, self.lower[others])
        best, summary = minimize(stage, start, stage.lower, optimizer="bobyqa", control=INNER_CONTROL)
        self.last[k] = best                                  # the next trial value starts from here
        return np.sign(value - self.estimate[k]) * np.sqrt(max(summary.fmin - self.base, 0.0))

    def limit(self, k, target):
        """The value of parameter k where ζ = target, searched outward from the estimate; the bound
        (0 for a standard deviation, ±1 for a correlation) if ζ does not get there before it."""
        estimate, bound = self.estimate[k], self.upper[k] if target > 0 else self.lower[k]
        inside, step = estimate, self.scale[k] * np.sign(target)
        for _ in range(MAX_STEPS):
            trial = estimate + step
            if (trial - bound) * np.sign(target) >= 0:
                trial = bound
            if abs(self.zeta(k, trial)) >= abs(target):
                return scipy.optimize.brentq(lambda v: self.zeta(k, v) - target, inside, trial,
                                             xtol=1e-7 * self.scale[k])
            if trial == bound:
                return bound
            inside, step = trial, 2 * step
        raise ModelError(f"the profile of {self.names[k]} does not reach the {abs(target):.3g} limit; "
                         "use Wald intervals (confint(method='Wald'))")
