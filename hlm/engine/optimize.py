"""Minimising an objective within bounds with a swappable optimizer backend (the profiled
deviance over θ; a profile's deviance over the other parameters), and lme4's checks of the
result (singular fit, scaled gradient).

The optimizer's state lives in its own small record (OptSummary), as in MixedModels.jl.
Where the exact gradient of the deviance exists (gradient.py) L-BFGS-B uses it, and it is the
engine's choice (default_optimizer) when an evaluation is expensive (measured in benchmarks/README.md).
"""
import logging
from dataclasses import dataclass, replace

import nlopt
import numpy as np
import scipy.linalg.lapack

from ..errors import ModelError
from ..vocabulary import optimizer_name
from .covariance import read_only
from .derivatives import DERIVATIVE_STEP, derivatives
from .deviance import _blas_controller, read_only_evaluation
from .gradient import evaluate_with_gradient, has_gradient, moment_start

log = logging.getLogger(__name__)


# ftol_rel 1e-14 (lme4's bobyqa converges to ~1e-7 in θ, and fixed effects must agree to 1e-5
# relative even on flat likelihoods); xtol_abs and ftol_abs 1e-10, as MixedModels.jl's xtol_abs
# (a step of θ below 1e-10 changes the objective by less than its rounding noise, so smaller
# ones only spend evaluations on the noise). Max evaluations as lme4's bobyqa (maxfun).
DEFAULT_CONTROL = {"maxeval": 10000, "ftol_rel": 1e-14, "ftol_abs": 1e-10, "xtol_abs": 1e-10,
                   "initial_step": 0.75}


GRADIENT_TOLERANCE = 0.002   # lme4's check.conv.grad


SINGULAR_TOLERANCE = 1e-4    # lme4's isSingular


# L-BFGS-B with the exact gradient: f's relative decrease at 1e-13 stops it near the rounding
# noise of large objectives (InstEval's is 1e-14 relative); θ within 1e-6 of BOBYQA's optimum on
# InstEval, synthetic crossed cases, Penicillin, Pastes and Dyestuff (benchmarks/README.md).
GRADIENT_SETTINGS = {"ftol": 1e-13, "gtol": 1e-5}


# L-BFGS-B's first step has length 1 along the gradient, too long for θ, whose entries are relative
# standard deviations (mostly below 1): over 10·θ it is 0.1 in θ, and InstEval's fit takes 12
# evaluations instead of 18, the synthetic crossed one 12 instead of 13 (benchmarks/README.md).
GRADIENT_SCALE = 10.0


# The engine picks the gradient method for tails of at least this many columns (the later
# grouping factors' levels, X and y): an evaluation with its gradient costs several without (the
# tail's inverse), so it pays only where BOBYQA's many more evaluations cost more than the rest of
# the fit (benchmarks/README.md, "Crossed models and 1M rows").
GRADIENT_TAIL_SIZE = 800


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
    """scipy's L-BFGS-B: with the exact gradient when the objective has one, else with its own
    finite differences. Stopping at maxeval is reported as nlopt's MAXEVAL_REACHED."""
    import scipy.optimize  # lazy: a heavy import that only this backend needs

    bounds = [(lo if np.isfinite(lo) else None, hi if np.isfinite(hi) else None) for lo, hi in zip(lower, upper)]
    options = {"maxfun": int(control["maxeval"])}
    # on one BLAS thread: L-BFGS-B's own algebra is on θ-sized vectors, and the OpenBLAS thread it
    # woke otherwise spun on the second core through the fit (InstEval: CPU time 1.15 s, wall 0.65)
    with _blas_controller().limit(limits=1, user_api="blas"):
        if objective.value_and_gradient is None:
            result = scipy.optimize.minimize(objective, x0, method="L-BFGS-B", bounds=bounds,
                                             options={**options, "ftol": 1e-15, "gtol": 1e-8})
        else:
            def scaled(z):                  # the objective over z = GRADIENT_SCALE·x
                value, gradient = objective.with_gradient(z / GRADIENT_SCALE)
                return value, gradient / GRADIENT_SCALE
            scaled_bounds = [(None if lo is None else lo * GRADIENT_SCALE,
                              None if hi is None else hi * GRADIENT_SCALE) for lo, hi in bounds]
            settings = {**GRADIENT_SETTINGS, "gtol": GRADIENT_SETTINGS["gtol"] / GRADIENT_SCALE}   # on ∂f/∂θ
            result = scipy.optimize.minimize(scaled, x0 * GRADIENT_SCALE, jac=True, method="L-BFGS-B",
                                             bounds=scaled_bounds, options={**options, **settings})
            result.x = result.x / GRADIENT_SCALE    # the x the objective was evaluated at, to the bit
    return result.x, result.fun, "MAXEVAL_REACHED" if result.status == 1 else str(result.message)


BACKENDS = {
    "bobyqa": _nlopt(nlopt.LN_BOBYQA),
    "nelder_mead": _nlopt(nlopt.LN_NELDERMEAD),
    "lbfgsb": _lbfgsb,
}
GRADIENT_BACKENDS = ("lbfgsb",)    # the backends that use value_and_gradient


def default_optimizer(deviance):
    """The engine's choice: L-BFGS-B with the exact gradient where it exists and an evaluation is
    expensive (a dense tail of at least GRADIENT_TAIL_SIZE columns), BOBYQA (lme4's) elsewhere."""
    return "lbfgsb" if is_expensive(deviance) and has_gradient(deviance) else "bobyqa"


def is_expensive(deviance):
    """Whether an evaluation costs enough that the exact gradient pays (for the optimizer and
    lme4's convergence check): below, its Python and LAPACK overhead costs more than the
    evaluations it saves."""
    return len(deviance.A22) >= GRADIENT_TAIL_SIZE


def deviance_gradient(deviance):
    """The ExactDerivatives of a ProfiledDeviance, or None where the gradient does not exist."""
    return ExactDerivatives(deviance) if has_gradient(deviance) else None


class ExactDerivatives:
    """θ -> (objective, exact gradient) of a ProfiledDeviance, remembering every θ it was evaluated at:
    the optimum's value and gradient, which the optimizer, the boundary check and lme4's convergence
    check all read, are computed once (on InstEval each costs a fifteenth of the fit), and
    the evaluation at the lowest θ, which the fit keeps instead of factoring again."""

    def __init__(self, deviance):
        self.deviance = deviance
        self._seen = {}
        self._lowest = None   # (key, value, evaluation)

    def __call__(self, theta):
        theta = np.asarray(theta, dtype=float)
        key = theta.tobytes()
        if key not in self._seen:
            value, gradient, evaluation = evaluate_with_gradient(self.deviance, theta)
            self._seen[key] = value, read_only(gradient)
            if self._lowest is None or value < self._lowest[1]:
                self._lowest = key, value, evaluation
        return self._seen[key]

    def evaluation(self, theta):
        """The evaluation at θ if θ is the lowest point seen (read-only, its tail's upper triangle
        zeroed as evaluate() gives a kept one), else None."""
        if self._lowest is None or self._lowest[0] != np.asarray(theta, dtype=float).tobytes():
            return None
        evaluation = self._lowest[2]
        return read_only_evaluation(replace(evaluation, tail=np.tril(evaluation.tail)))

    def objective(self, theta):
        """The objective alone: remembered, or evaluated without the gradient."""
        seen = self._seen.get(np.asarray(theta, dtype=float).tobytes())
        return self.deviance.objective(theta) if seen is None else seen[0]


def optimize(deviance, optimizer=None, control=None, start=None, exact=None):
    """Minimise a ProfiledDeviance over θ from lme4's start (or `start`; the gradient method's own
    start is gradient.moment_start): (θ̂, OptSummary). optimizer=None: the engine's choice
    (default_optimizer). `exact`: the deviance's ExactDerivatives, to share what it remembers
    with the convergence check (made here if not given).

    With the exact gradient the bounds are dropped: the criterion is even in each θ_k of a scalar
    term, so its minimum over all θ at |θ| is the bounded one, and 0 is no trap. Within the bound
    0, the gradient there (0, by that symmetry) would stop L-BFGS-B at a false boundary optimum
    (a synthetic crossed case's θ_dept), which only a restart leaves."""
    layout = deviance.layout
    optimizer = optimizer_name(optimizer or default_optimizer(deviance))
    exact = exact or deviance_gradient(deviance)
    if optimizer not in GRADIENT_BACKENDS or exact is None:
        start = layout.initial_theta() if start is None else start
        return minimize(deviance.objective, start, layout.lower, optimizer=optimizer, control=control)
    start = moment_start(deviance) if start is None else start
    x, summary = minimize(exact.objective, start, np.full(layout.size, -np.inf), optimizer=optimizer,
                          control=control, value_and_gradient=exact)
    # At a boundary optimum L-BFGS-B stops where the gradient is small, θ_k near 0 but not at it
    # (about 1e-5 / the curvature there): put it on 0, where lme4 reports it, if that is not higher.
    x, fmin = at_boundary(exact.objective, np.abs(x), layout.lower, SINGULAR_TOLERANCE)
    return x, replace(summary, final=tuple(map(float, x)), fmin=float(fmin))


def at_boundary(objective, params, lower, tolerance):
    """lme4's check.boundary: each parameter within `tolerance` of its bound goes to the bound if the
    objective does not rise. (params, the objective there)."""
    params = np.array(params, dtype=float)
    value = objective(params)
    for i in np.flatnonzero((params - lower > 0) & (params - lower < tolerance)):
        trial = params.copy()
        trial[i] = lower[i]
        if (trial_value := objective(trial)) < value:
            params, value = trial, trial_value
    return params, value


def minimize(objective, start, lower, upper=None, optimizer="bobyqa", control=None, restarts=0,
             value_and_gradient=None):
    """Minimise objective(x) within [lower, upper] from `start` (moved into the bounds) with a
    backend of BACKENDS: (x, OptSummary). `control` overrides DEFAULT_CONTROL (initial_step may give one step per
    parameter); `restarts` runs the optimizer again from its optimum, for flat objectives
    where BOBYQA can stall (lme4's profiles). `value_and_gradient`: x -> (objective, gradient),
    for the backends that use a gradient (lbfgsb)."""
    optimizer = optimizer_name(optimizer)
    unknown = set(control or {}) - set(DEFAULT_CONTROL)
    if unknown:
        raise ModelError(f"control key '{min(unknown)}' is unknown; use {', '.join(DEFAULT_CONTROL)}")
    settings = {**DEFAULT_CONTROL, **(control or {})}
    lower = np.asarray(lower, dtype=float)
    upper = np.full(len(lower), np.inf) if upper is None else np.asarray(upper, dtype=float)
    x0 = np.clip(np.array(start, dtype=float), lower, upper)
    counted = _Counted(objective, value_and_gradient)
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
    """The objective (and its gradient, if given) as the optimizer sees it, counting evaluations."""

    def __init__(self, objective, value_and_gradient=None):
        self.objective = objective
        self.value_and_gradient = value_and_gradient
        self.evaluations = 0

    def __call__(self, x):
        self.evaluations += 1
        return float(self.objective(x))

    def with_gradient(self, x):
        self.evaluations += 1
        value, gradient = self.value_and_gradient(x)
        return float(value), gradient


def is_singular(theta, lower):
    """lme4's isSingular: a bounded θ (a diagonal of Λ) within 1e-4 of its bound 0."""
    bounded = np.isfinite(lower)
    return bool(np.any(theta[bounded] < SINGULAR_TOLERANCE))


def convergence_messages(f, theta, lower, value_and_gradient=None, central=None):
    """lme4's checkConv on the interior parameters: the scaled gradient and the Hessian; from the
    exact gradient and differences of it when `value_and_gradient` is given (_gradient_derivatives:
    k gradients and one value instead of lme4's 2k² + 1 values), else by lme4's central differences of f:
    `central(θ)` where every θ is interior (ProfiledDeviance.central_derivatives, in one compiled call)."""
    interior = ~(np.isfinite(lower) & (theta <= lower))
    if not interior.any():
        return []
    if value_and_gradient is not None:
        grad, hess = _gradient_derivatives(f, value_and_gradient, theta, interior)
    elif central is not None and interior.all():
        grad, hess = central(theta)
    else:
        grad, hess = derivatives(_restricted(f, theta, interior), theta[interior])
    try:
        return scaled_gradient_messages(grad, hess)
    except np.linalg.LinAlgError:
        negative = int((np.linalg.eigvalsh(hess) < 0).sum())
        return ["unable to evaluate scaled gradient" if not negative else
                f"Model failed to converge: degenerate  Hessian with {negative} negative eigenvalues"]


def _restricted(f, theta, interior):
    """f as a function of the interior entries of θ, the others held."""
    x = theta.copy()

    def restricted(sub):
        x[interior] = sub
        value = f(x)
        x[interior] = theta[interior]
        return value
    return restricted


def _gradient_derivatives(f, value_and_gradient, theta, interior, step=DERIVATIVE_STEP):
    """The interior entries' gradient, and their Hessian by forward differences of it: k − 1 more
    gradients give every column but the last, whose other entries are the last row's by symmetry;
    its diagonal entry comes from one value of f (on a large model a gradient costs three values).
    Errors O(step) relative (lme4's central differences: O(step²)), far below what the check resolves."""
    index = np.flatnonzero(interior)
    value, at_theta = value_and_gradient(theta)
    hess = np.empty((len(index), len(index)))
    for a, i in enumerate(index[:-1]):
        shifted = theta.copy()
        shifted[i] += step
        hess[a] = (value_and_gradient(shifted)[1] - at_theta)[index] / step   # ∂g/∂θ_i: row (= column) a
    last = theta.copy()
    last[index[-1]] += step
    hess[-1, :-1] = hess[:-1, -1]
    hess[-1, -1] = 2 * (f(last) - value - at_theta[index[-1]] * step) / step ** 2
    hess[:-1, :-1] = (hess[:-1, :-1] + hess[:-1, :-1].T) / 2
    return at_theta[index], hess


def scaled_gradient_messages(grad, hess):
    """lme4's scaled-gradient check (checkConv): [] or its one message; LinAlgError when the
    Hessian has no Cholesky factor."""
    # R⁻¹g, R = chol(H) upper as R's chol gives it, by LAPACK itself (numpy's wrappers cost a small fit 6 µs)
    lower, info = scipy.linalg.lapack.dpotrf(hess, lower=1)
    if info:
        raise np.linalg.LinAlgError("the Hessian is not positive definite")
    scaled = scipy.linalg.lapack.dtrtrs(lower, grad, lower=1, trans=1)[0]   # R's diagonal is positive: no info
    worst = np.minimum(np.abs(scaled), np.abs(grad))
    if worst.max() > GRADIENT_TOLERANCE:
        return [(f"Model failed to converge with max|grad| = {worst.max():.6g} "
                f"(tol = {GRADIENT_TOLERANCE}, component {int(worst.argmax()) + 1})")]
    return []
