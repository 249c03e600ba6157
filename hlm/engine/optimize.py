"""Minimising an objective within bounds with a swappable optimizer backend (the profiled
deviance over θ; a profile's deviance over the other parameters), and lme4's checks of the
result (singular fit, scaled gradient).

The optimizer's state lives in its own small record (OptSummary), as in MixedModels.jl.
"""
import logging
from dataclasses import dataclass

import nlopt
import numpy as np
import scipy.linalg

from ..errors import ModelError
from ..vocabulary import optimizer_name
from .derivatives import derivatives

log = logging.getLogger(__name__)


# ftol_rel 1e-14 (lme4's bobyqa converges to ~1e-7 in θ, and fixed effects must agree to 1e-5
# relative even on flat likelihoods); xtol_abs and ftol_abs 1e-10, as MixedModels.jl's xtol_abs
# (a step of θ below 1e-10 changes the objective by less than its rounding noise, so smaller
# ones only spend evaluations on the noise). Max evaluations as lme4's bobyqa (maxfun).
DEFAULT_CONTROL = {"maxeval": 10000, "ftol_rel": 1e-14, "ftol_abs": 1e-10, "xtol_abs": 1e-10,
                   "initial_step": 0.75}


GRADIENT_TOLERANCE = 0.002   # lme4's check.conv.grad


SINGULAR_TOLERANCE = 1e-4    # lme4's isSingular


@dataclass(frozen=True)
class OptSummary:
    """What the optimizer was asked and what it found: enough to restore the fit from θ̂."""
    optimizer: str
    initial: tuple
    final: tuple          # θ̂
    fmin: float           # the objective at θ̂
    evaluations: int
    status: str
    settings: tuple = ()  # the control as sorted (key, value) pairs, so the record stays frozen

    @property
    def control(self):
        return dict(self.settings)

    def to_dict(self):
        return {"optimizer": self.optimizer, "initial": list(self.initial), "final": list(self.final),
                "fmin": self.fmin, "evaluations": self.evaluations, "status": self.status,
                "control": {k: list(v) if isinstance(v, tuple) else v for k, v in self.settings}}

    @classmethod
    def from_dict(cls, record):
        return cls(record["optimizer"], tuple(record["initial"]), tuple(record["final"]), record["fmin"],
                   record["evaluations"], record["status"], _frozen_settings(record["control"]))


def _frozen_settings(control):
    """The control as sorted (key, value) pairs, a per-parameter step as a tuple."""
    return tuple(sorted((k, tuple(v) if isinstance(v, (list, tuple, np.ndarray)) else v)
                        for k, v in control.items()))


def _nlopt(algorithm):
    def run(objective, x0, lower, upper, control):
        opt = nlopt.opt(algorithm, len(x0))
        opt.set_lower_bounds(lower)
        opt.set_upper_bounds(upper)
        opt.set_min_objective(lambda x, grad: objective(x))
        opt.set_maxeval(int(control["maxeval"]))
        opt.set_ftol_rel(control["ftol_rel"])
        opt.set_ftol_abs(control["ftol_abs"])
        opt.set_xtol_abs(control["xtol_abs"])
        opt.set_initial_step(np.broadcast_to(np.asarray(control["initial_step"], dtype=float), len(x0)))
        x = opt.optimize(np.asarray(x0, dtype=float))
        return x, opt.last_optimum_value(), nlopt_status(opt.last_optimize_result())
    return run


def nlopt_status(code):
    names = {1: "SUCCESS", 2: "STOPVAL_REACHED", 3: "FTOL_REACHED", 4: "XTOL_REACHED",
             5: "MAXEVAL_REACHED", 6: "MAXTIME_REACHED"}
    return names.get(code, f"NLOPT_CODE_{code}")


def _lbfgsb(objective, x0, lower, upper, control):
    import scipy.optimize  # lazy: a heavy import that only this backend needs

    bounds = [(lo if np.isfinite(lo) else None, hi if np.isfinite(hi) else None) for lo, hi in zip(lower, upper)]
    result = scipy.optimize.minimize(objective, x0, method="L-BFGS-B", bounds=bounds,
                                     options={"maxfun": int(control["maxeval"]), "ftol": 1e-15,
                                              "gtol": 1e-8})
    return result.x, result.fun, str(result.message)


BACKENDS = {
    "bobyqa": _nlopt(nlopt.LN_BOBYQA),
    "nelder_mead": _nlopt(nlopt.LN_NELDERMEAD),
    "lbfgsb": _lbfgsb,
}


def optimize(deviance, optimizer="bobyqa", control=None, start=None):
    """Minimise a ProfiledDeviance over θ from lme4's start (or `start`): (θ̂, OptSummary)."""
    layout = deviance.layout
    start = layout.initial_theta() if start is None else start
    return minimize(deviance.objective, start, layout.lower, optimizer=optimizer, control=control)


def minimize(objective, start, lower, upper=None, optimizer="bobyqa", control=None, restarts=0):
    """Minimise objective(x) within [lower, upper] from `start` (moved into the bounds) with a
    backend of BACKENDS: (x, OptSummary). `control` overrides DEFAULT_CONTROL (initial_step may give one step per
    parameter); `restarts` runs the optimizer again from its optimum, for flat objectives
    where BOBYQA can stall (lme4's profiles)."""
    optimizer = optimizer_name(optimizer)
    unknown = set(control or {}) - set(DEFAULT_CONTROL)
    if unknown:
        raise ModelError(f"control key '{min(unknown)}' is unknown; use {', '.join(DEFAULT_CONTROL)}")
    settings = {**DEFAULT_CONTROL, **(control or {})}
    lower = np.asarray(lower, dtype=float)
    upper = np.full(len(lower), np.inf) if upper is None else np.asarray(upper, dtype=float)
    x0 = np.clip(np.array(start, dtype=float), lower, upper)
    counted = _Counted(objective)
    x = x0
    try:
        for _ in range(1 + restarts):
            x, fmin, status = BACKENDS[optimizer](counted, x, lower, upper, settings)
    except (nlopt.RoundoffLimited, RuntimeError, ValueError, np.linalg.LinAlgError) as exc:
        raise ModelError(f"optimizer '{optimizer}' failed ({exc}); try another optimizer, e.g. "
                         f"optimizer='nelder_mead', or rescale the predictors") from exc
    x = np.clip(x, lower, upper)
    fmin = counted(x)
    log.info("%s: objective %.6f after %d evaluations (%s)", optimizer, fmin, counted.evaluations, status)
    return x, OptSummary(optimizer, tuple(map(float, x0)), tuple(map(float, x)), fmin, counted.evaluations,
                         status, _frozen_settings(settings))


class _Counted:
    """The objective as the optimizer sees it, counting evaluations."""

    def __init__(self, objective):
        self.objective = objective
        self.evaluations = 0

    def __call__(self, x):
        self.evaluations += 1
        return float(self.objective(x))


def is_singular(theta, lower):
    """lme4's isSingular: a bounded θ (a diagonal of Λ) within 1e-4 of its bound 0."""
    bounded = np.isfinite(lower)
    return bool(np.any(theta[bounded] < SINGULAR_TOLERANCE))


def convergence_messages(f, theta, lower):
    """lme4's checkConv on the interior parameters: the scaled gradient and the Hessian."""
    interior = ~(np.isfinite(lower) & (theta <= lower))
    if not interior.any():
        return []
    x = theta.copy()

    def restricted(sub):
        x[interior] = sub
        value = f(x)
        x[interior] = theta[interior]
        return value

    grad, hess = derivatives(restricted, theta[interior])
    try:
        return scaled_gradient_messages(grad, hess)
    except np.linalg.LinAlgError:
        negative = int((np.linalg.eigvalsh(hess) < 0).sum())
        return ["unable to evaluate scaled gradient" if not negative else
                f"Model failed to converge: degenerate  Hessian with {negative} negative eigenvalues"]


def scaled_gradient_messages(grad, hess):
    """lme4's scaled-gradient check (checkConv): [] or its one message; LinAlgError when the
    Hessian has no Cholesky factor."""
    scaled = scipy.linalg.solve_triangular(np.linalg.cholesky(hess), grad, lower=True, trans="T", check_finite=False)
    worst = np.minimum(np.abs(scaled), np.abs(grad))
    if worst.max() > GRADIENT_TOLERANCE:
        return [(f"Model failed to converge with max|grad| = {worst.max():.6g} "
                f"(tol = {GRADIENT_TOLERANCE}, component {int(worst.argmax()) + 1})")]
    return []
