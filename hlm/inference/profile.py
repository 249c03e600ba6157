"""Likelihood profiles as lme4's profile.merMod: ζ(x) = sign(x − x̂)·sqrt(deviance(x) − deviance(x̂))
for each variance parameter (on the sd/cor scale) and each fixed effect, on the ML deviance.
"""
import logging
from dataclasses import dataclass

import numpy as np
import scipy.special

from ..engine.optimize import minimize, optimize
from ..errors import ModelError
from .cache import ml_version

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ParameterProfile:
    """ζ = sign(x - x̂)·sqrt(deviance(x) - deviance(x̂)) at points x of one parameter."""
    name: str
    values: np.ndarray
    zeta: np.ndarray
    lower_bound: float
    upper_bound: float


def profile(model, which=None, alphamax=0.01, maxpts=100, delta_cutoff=1 / 8, maxmult=10):
    """lme4's profile(m): {parameter name: ParameterProfile} on the ML deviance."""
    ml = ml_version(model)
    names = _names(ml)
    wanted = select_parameters(names, which)
    profiler = _Profiler(ml, alphamax, maxpts, delta_cutoff, maxmult)
    out = {}
    for name in wanted:
        index = names.index(name)
        out[name] = profiler.varpar(index) if index < profiler.nvp else profiler.fixed(index - profiler.nvp)
    return out


class _Profiler:
    """The state lme4's profile.merMod keeps while it walks each parameter."""

    def __init__(self, ml, alphamax, maxpts, delta_cutoff, maxmult):
        self.ml, self.layout = ml, ml.covariance_layout
        self.nvp = len(ml.theta) + 1
        self.opt = np.nan_to_num(self.layout.sdcor(ml.theta, ml.sigma))
        self.base = ml.objective()
        self.se = np.sqrt(np.diag(ml.vcov.to_numpy()))
        nptot = self.nvp + ml.design.p
        self.cutoff = np.sqrt(scipy.special.chdtri(nptot, alphamax))   # qchisq(1 - alphamax, nptot)
        self.delta = self.cutoff * delta_cutoff
        self.maxpts, self.maxmult = maxpts, maxmult
        self.lower, self.upper = self.layout.sdcor_bounds()
        self.messages = []

    def deviance(self, vp):
        """The deviance in (sd, cor, σ), β profiled out (lme4's devfun2)."""
        return self.ml.objective_given_sigma(self.layout.theta_from_sdcor(vp), vp[-1])

    def varpar(self, w):
        pw = self.opt[w]
        others = np.arange(self.nvp) != w

        def zeta(x, start):
            def f(sub):
                vp = np.empty(self.nvp)
                vp[w], vp[others] = x, sub
                return self.deviance(vp)
            value, sub = _minimize_bounded(f, start, self.lower[others], self.upper[others])
            devdiff = value - self.base
            if devdiff < -1e-6:
                self._note(f"profiling {self._name(w)} found a lower deviance (by {-devdiff:.3g}); "
                           "the fit may not have converged")
            params = np.empty(self.nvp)
            params[w], params[others] = x, sub
            return np.sign(x - pw) * np.sqrt(max(0.0, devdiff)), params

        start_row = (0.0, self.opt.copy())
        shift = 0.001 if pw == 0 else pw * 1.01
        first = zeta(shift, self.opt[others])
        lowcut, upcut = self.lower[w], self.upper[w]
        next_start = lambda row: row[1][others]
        upper = self._fill([start_row, first], w, lowcut, upcut, zeta, next_start)
        lower = self._fill([first, start_row], w, lowcut, upcut, zeta, next_start) if pw > lowcut else []
        return self._assemble(w, upper, lower, lowcut, upcut)

    def fixed(self, j):
        design, est = self.ml.design, self.ml.fixef.iloc[j]
        summary = self.ml.optsummary

        def zeta(fw, start=None):
            dev = self.ml.deviance_function.with_coefficient_fixed(j, fw)
            devdiff = _minimize_theta(dev, summary, self.ml.theta) - self.base
            if devdiff < -1e-6:
                self._note(f"profiling {design.fixed_names[j]} found a lower deviance (by {-devdiff:.3g})")
            params = np.zeros(self.nvp + design.p)
            params[self.nvp + j] = fw
            return np.sign(fw - est) * np.sqrt(max(0.0, devdiff)), params

        index = self.nvp + j
        start_row = (0.0, np.append(self.opt, self.ml.fixef.to_numpy()))
        first = zeta(est + self.delta * self.se[j])
        upper = self._fill([start_row, first], index, -np.inf, np.inf, zeta, lambda row: None)
        lower = self._fill([first, start_row], index, -np.inf, np.inf, zeta, lambda row: None)
        return self._assemble(index, upper, lower, np.nan, np.nan)

    def _fill(self, rows, index, lowcut, upcut, zeta, next_start):
        """lme4's fillmat: step until |ζ| passes the cutoff or the parameter hits a bound."""
        rows = list(rows)
        while (len(rows) < self.maxpts and lowcut < rows[-1][1][index] < upcut
               and (np.isnan(rows[-1][0]) or abs(rows[-1][0]) <= self.cutoff)):
            x = self._next_par(rows[-2], rows[-1], index, lowcut, upcut)
            rows.append(zeta(x, next_start(rows[-1])))
        return rows

    def _next_par(self, prev, cur, index, lowcut, upcut, minstep=1e-6):
        num = cur[1][index] - prev[1][index]
        denom = cur[0] - prev[0]
        if np.isnan(denom) or denom == 0:
            self._note("Last two rows have identical or NA .zeta values: using minstep")
            step = minstep
        else:
            step = self.delta * num / denom
            if step < 0:
                self._note("unexpected decrease in profile: using minstep")
                step = minstep
            elif abs(step) > abs(self.maxmult * num):
                step = np.sign(step) * abs(self.maxmult * num)
        return min(upcut, max(lowcut, cur[1][index] + np.sign(num) * step))

    def _assemble(self, index, upper, lower, lowcut, upcut):
        points = {(float(r[1][index]), float(r[0])) for r in upper + lower}
        values, zetas = (np.array(v) for v in zip(*sorted(points)))
        return ParameterProfile(self._name(index), values, zetas, lowcut, upcut)

    def _name(self, index):
        return _names(self.ml)[index]

    def _note(self, message):
        if message not in self.messages:
            self.messages.append(message)
            log.warning(message)


def _names(model):
    """lme4's names of the profiled parameters: sd/cor, sigma, then the fixed effects."""
    return list(model.covariance_layout.names) + list(model.design.fixed_names)


def _minimize_theta(dev, summary, start):
    """The minimum of a profiled deviance over θ with the fit's optimizer, from `start`
    (lme4's kludge: 0.001 instead of an all-zero start)."""
    start = np.where(np.all(start == 0), 0.001, start)
    try:
        return optimize(dev, summary.optimizer, summary.control, start=start)[1].fmin
    except ModelError:  # the optimizer gave up from this start (e.g. NLopt's roundoff limit)
        return optimize(dev, summary.optimizer, summary.control)[1].fmin


# BOBYQA's settings for the variance profiles: a step of a tenth of each parameter (at least
# 1e-3) and a restart from the optimum, because BOBYQA can stall on these flat profiles.
PROFILE_CONTROL = {"ftol_rel": 1e-12, "ftol_abs": 1e-10, "xtol_abs": 1e-10, "maxeval": 10000}


def _minimize_bounded(f, start, lower, upper):
    """(minimum, argmin) of f within [lower, upper] by BOBYQA, as lme4 profiles; the start
    itself when BOBYQA gives up there."""
    x0 = np.clip(np.asarray(start, dtype=float), lower, upper)   # the step is set from the start
    if np.all(x0 == 0):
        x0[:] = 0.001
    control = {**PROFILE_CONTROL, "initial_step": tuple(np.maximum(0.1 * np.abs(x0), 1e-3))}
    try:
        x, summary = minimize(f, x0, lower, upper, "bobyqa", control, restarts=1)
        return summary.fmin, x
    except ModelError:
        return float(f(x0)), x0


def select_parameters(names, parm):
    if parm is None:
        return list(names)
    parm = [parm] if isinstance(parm, str) else list(parm)
    for name in parm:
        if name not in names:
            raise ModelError(f"parameter '{name}' is not in the model; use one of {', '.join(names)}")
    return parm
