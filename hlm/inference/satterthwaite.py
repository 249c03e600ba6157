"""Satterthwaite's denominator degrees of freedom as lmerTest computes them.

The Hessian of the deviance in varpar = (θ, σ) gives A = Cov(varpar) = 2H⁺; the Jacobian of
Cov(β̂) in varpar (numDeriv's Richardson extrapolation) gives the gradient g of L'Cov(β̂)L;
df = 2(L'CL)² / g'Ag.
"""
import logging
from dataclasses import dataclass

import numpy as np

from ..engine.derivatives import hessian, jacobian
from .cache import _cached

log = logging.getLogger(__name__)


EIGEN_TOLERANCE = 1e-8                      # lmerTest: eigenvalues of the varpar Hessian


@dataclass(frozen=True)
class SatterthwaiteParts:
    """lmerTest's pieces: A = Cov(varpar) = 2 H⁺ and J_k = ∂Cov(β̂)/∂varpar_k."""
    varpar: np.ndarray        # (θ, σ) at the optimum
    hessian: np.ndarray       # of the deviance in varpar
    vcov_varpar: np.ndarray   # A
    jacobian: np.ndarray      # (k, p, p)
    vcov_beta: np.ndarray     # Cov(β̂) as vcov() reports it
    evaluations: int          # deviance evaluations spent (distinct θ)
    messages: tuple


def varpar_deviance(deviance_function, ev, sigma):
    """-2 log-likelihood (or the REML criterion) at θ and σ, not profiled over σ."""
    dev, s2 = deviance_function, sigma ** 2
    dof = dev.n - dev.p if dev.reml else dev.n
    value = ev.logdet_L + ev.r2 / s2 + dof * np.log(2 * np.pi * s2)
    return value + ev.logdet_RX if dev.reml else value


def satterthwaite_parts(model):
    return _cached(model, "satterthwaite", lambda: _satterthwaite(model))


def _satterthwaite(model):
    dev = model.deviance_function
    nth = len(model.theta)
    evaluations, unscaled = {}, {}

    def evaluate(theta):
        key = theta.tobytes()
        if key not in evaluations:
            evaluations[key] = dev.evaluate(theta)
        return evaluations[key]

    def deviance(varpar):
        return varpar_deviance(dev, evaluate(varpar[:nth]), varpar[nth])

    def covbeta(varpar):
        key = varpar[:nth].tobytes()
        if key not in unscaled:
            unscaled[key] = dev.unscaled_vcov(evaluate(varpar[:nth]))
        return varpar[nth] ** 2 * unscaled[key]

    varpar = np.append(model.theta, model.sigma)
    H = hessian(deviance, varpar)
    values, vectors = np.linalg.eigh(H)
    messages = _hessian_messages(values)
    for message in messages:
        log.warning(message)
    pos = values > EIGEN_TOLERANCE
    A = 2 * (vectors[:, pos] / values[pos]) @ vectors[:, pos].T
    J = jacobian(covbeta, varpar)
    return SatterthwaiteParts(varpar, H, A, J, model.vcov.to_numpy(), len(evaluations), tuple(messages))


def _hessian_messages(values):
    values = values[::-1]
    neg = values[values < -EIGEN_TOLERANCE]
    zero = values[np.abs(values) < EIGEN_TOLERANCE]
    out = []
    if len(neg):
        out.append(f"Model failed to converge with {len(neg)} negative eigenvalue"
                   f"{'s' if len(neg) > 1 else ''}: {' '.join(f'{v:.1e}' for v in neg)}")
    if len(zero):
        out.append(f"Model may not have converged with {len(zero)} eigenvalue"
                   f"{'s' if len(zero) > 1 else ''} close to zero: {' '.join(f'{v:.1e}' for v in zero)}")
    return out


def satterthwaite_df(model, L):
    """lmerTest's Satterthwaite df of the contrast L'β."""
    parts = satterthwaite_parts(model)
    L = np.asarray(L, dtype=float)
    var_con = L @ parts.vcov_beta @ L
    grad = np.einsum("i,kij,j->k", L, parts.jacobian, L)
    with np.errstate(divide="ignore"):
        return float(2 * var_con ** 2 / (grad @ parts.vcov_varpar @ grad))
