"""Satterthwaite's denominator degrees of freedom as lmerTest computes them.

The Hessian of the deviance in varpar = (θ, σ) gives A = Cov(varpar) = 2H⁺; the Jacobian of
Cov(β̂) in varpar (numDeriv's Richardson extrapolation) gives the gradient g of L'Cov(β̂)L;
df = 2(L'CL)² / g'Ag.
"""
import logging
from dataclasses import dataclass

import numpy as np

from ..engine.covariance import read_only
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


def satterthwaite_parts(model):
    return _cached(model, "satterthwaite", lambda: _satterthwaite(model))


def _satterthwaite(model):
    dev = model.deviance_function
    nth = len(model.theta)
    evaluations, unscaled = {}, {}   # one factorisation per distinct θ: the σ steps reuse them

    def evaluate(theta):
        key = theta.tobytes()
        if key not in evaluations:
            evaluations[key] = dev.evaluate(theta)
        return evaluations[key]

    def deviance(varpar):
        return dev.criterion(evaluate(varpar[:nth]), sigma=varpar[nth])

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
    return SatterthwaiteParts(*map(read_only, (varpar, H, A, J, model.vcov.to_numpy())), len(evaluations),
                              tuple(messages))


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
