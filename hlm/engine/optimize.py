"""Minimising the profiled deviance over θ, with a swappable optimizer backend, and lme4's
checks of the result (singular fit, scaled gradient).

The optimizer's state lives in its own small record (OptSummary), as in MixedModels.jl.
"""
import logging
from dataclasses import dataclass

import nlopt
import numpy as np
import scipy.linalg
import scipy.optimize

from ..errors import ModelError
from ..vocabulary import optimizer_name
from .derivatives import derivatives

log = logging.getLogger(__name__)


# Tighter than MixedModels.jl's LN_BOBYQA defaults: lme4's bobyqa converges to ~1e-7 in θ, and
# fixed effects must agree to 1e-5 relative. Max evaluations as lme4's bobyqa (maxfun).
DEFAULT_CONTROL = {"maxeval": 10000, "ftol_rel": 1e-14, "ftol_abs": 1e-12, "xtol_abs": 1e-12,
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
                "control": self.control}

    @classmethod
    def from_dict(cls, record):
        return cls(record["optimizer"], tuple(record["initial"]), tuple(record["final"]), record["fmin"],
                   record["evaluations"], record["status"], tuple(sorted(record["control"].items())))


def _nlopt(algorithm):
    def run(objective, x0, lower, control):
        opt = nlopt.opt(algorithm, len(x0))
        opt.set_lower_bounds(lower)
        opt.set_min_objective(lambda x, grad: objective(x))
        opt.set_maxeval(int(control["maxeval"]))
        opt.set_ftol_rel(control["ftol_rel"])
        opt.set_ftol_abs(control["ftol_abs"])
        opt.set_xtol_abs(control["xtol_abs"])
        opt.set_initial_step(control["initial_step"])
        x = opt.optimize(np.asarray(x0, dtype=float))
        return x, opt.last_optimum_value(), nlopt_status(opt.last_optimize_result())
    return run


def nlopt_status(code):
    names = {1: "SUCCESS", 2: "STOPVAL_REACHED", 3: "FTOL_REACHED", 4: "XTOL_REACHED",
             5: "MAXEVAL_REACHED", 6: "MAXTIME_REACHED"}
    return names.get(code, f"NLOPT_CODE_{code}")


def _lbfgsb(objective, x0, lower, control):
    bounds = [(lo if np.isfinite(lo) else None, None) for lo in lower]
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
    """Minimise deviance(θ) from lme4's start (or `start`) and return (θ̂, OptSummary)."""
    optimizer = optimizer_name(optimizer)
    unknown = set(control or {}) - set(DEFAULT_CONTROL)
    if unknown:
        raise ModelError(f"control key '{sorted(unknown)[0]}' is unknown; use {', '.join(DEFAULT_CONTROL)}")
    settings = {**DEFAULT_CONTROL, **(control or {})}
    x0 = deviance.initial_theta() if start is None else np.asarray(start, dtype=float)
    objective = _Objective(deviance)
    try:
        theta, fmin, status = BACKENDS[optimizer](objective, x0, deviance.lower, settings)
    except (nlopt.RoundoffLimited, RuntimeError, ValueError, np.linalg.LinAlgError) as exc:
        raise ModelError(f"optimizer '{optimizer}' failed ({exc}); try another optimizer, e.g. "
                         f"optimizer='nelder_mead', or rescale the predictors") from exc
    theta = np.maximum(theta, deviance.lower)
    fmin = objective(theta)
    log.info("%s: deviance %.6f after %d evaluations (%s)", optimizer, fmin, objective.evaluations, status)
    return theta, OptSummary(optimizer, tuple(map(float, x0)), tuple(map(float, theta)), fmin, objective.evaluations,
                              status, tuple(sorted(settings.items())))


class _Objective:
    """The deviance as the optimizer sees it, counting evaluations."""

    def __init__(self, deviance):
        self.deviance = deviance
        self.evaluations = 0

    def __call__(self, theta):
        self.evaluations += 1
        return float(self.deviance(theta))


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
    messages = []
    try:
        scaled = scipy.linalg.solve_triangular(np.linalg.cholesky(hess), grad, lower=True, trans="T")
        worst = np.minimum(np.abs(scaled), np.abs(grad))
        if worst.max() > GRADIENT_TOLERANCE:
            messages.append(f"Model failed to converge with max|grad| = {worst.max():.6g} "
                            f"(tol = {GRADIENT_TOLERANCE}, component {int(worst.argmax()) + 1})")
    except np.linalg.LinAlgError:
        negative = int((np.linalg.eigvalsh(hess) < 0).sum())
        messages.append("unable to evaluate scaled gradient" if not negative else
                        f"Model failed to converge: degenerate  Hessian with {negative} negative eigenvalues")
    return messages
