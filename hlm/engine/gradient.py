"""The exact gradient of the profiled deviance (ML) and of the REML criterion with respect to θ,
for models whose random-effects terms are all scalar (every block has q = 1: crossed and nested
intercepts), read from the blocked Cholesky factor of one evaluation (deviance.py).

Derivation. Let D = diag(θ_k on block k's levels, 1 on X) and Ã = [Z X]'[Z X]. The matrix the
blocked factor holds (without y) is Ω = D Ã D + diag(I, 0) = L L', and M = Λ'Z'ZΛ + I is its Z block.

* log-determinant. dΩ/dθ_k = P_k Ã D + D Ã P_k (P_k: the identity on block k's levels), so
  d log|Ω|/dθ_k = 2 tr(Ω⁻¹ D Ã P_k). For θ_k > 0, D Ã P_k = (Ω − diag(I, 0)) P_k / θ_k, hence
  d log|Ω|/dθ_k = (2/θ_k)(q_k − tr((Ω⁻¹)_kk)), q_k the number of levels. REML uses Ω, ML the
  same with M in its place. At θ_k = 0 block k decouples (Ω_kk = I, no coupling), so
  tr(Ω⁻¹ D Ã P_k) = θ_k tr(Ã_kk) = 0: the criterion is even in θ_k and its derivative is 0.
* penalized residual sum of squares. r²(θ) = min over u, β of ‖y − ZΛu − Xβ‖² + ‖u‖²; by the
  envelope theorem dr²/dθ_k = −2 (y − ZΛu − Xβ)'Z_k u_k, and the normal equations in u_k give
  θ_k Z_k'(y − ZΛu − Xβ) = u_k, so dr²/dθ_k = −2‖u_k‖²/θ_k (0 at θ_k = 0, where u_k = 0).
* The criterion is log|·| + ν(1 + log(2π r²/ν)) with ν = n (ML) or n − p (REML), so its
  derivative is d log|·|/dθ_k + ν (dr²/dθ_k) / r².

Traces of Ω⁻¹'s diagonal blocks. With L = [L1 0; L21 L22] (L1 diagonal: the first block's levels,
L22 the dense tail's factor) and S⁻¹ = (L22 L22')⁻¹:
(Ω⁻¹)_tail = S⁻¹, whose diagonal gives each later block's trace, and
(Ω⁻¹)_11 = L1⁻² + L1⁻¹ L21' S⁻¹ L21 L1⁻¹, whose trace is Σ_j 1/L_j² + Σ_j w_j' S⁻¹ w_j with
w_j = L21 e_j / L_j = Λ_T A21_j θ_1 / L_j² (A21_j: level j's column of the cross-products, sparse).
So a gradient costs one inverse of the tail from its factor (LAPACK's potri, about twice the
factorization) and one pass over the first block's sparse columns like the one an evaluation makes.
"""
import numpy as np
import scipy.linalg
import scipy.linalg.lapack

from .deviance import _blas_controller
from .kernels import quadratic_forms


def has_gradient(deviance):
    """Whether the exact gradient exists here: every block holds one scalar term (q = 1)."""
    return deviance.scalar_terms


START_FLOOR = 0.1   # the smallest θ_k a start gets: never 0, where the gradient vanishes by symmetry


def moment_start(deviance):
    """A start for the gradient method near the optimum, from the cross-products alone: per term,
    the spread of its levels' mean OLS residuals beyond what σ² alone gives (the method of moments,
    each factor on its own), relative to σ. From lme4's θ = 1 L-BFGS-B needs about twice as many
    evaluations on InstEval (benchmarks/README.md)."""
    mR, p = deviance.n_random_tail, deviance.p
    A22 = deviance.A22
    beta = np.linalg.solve(A22[mR:mR + p, mR:mR + p], A22[mR:mR + p, -1]) if p else np.zeros(0)
    sigma2 = (A22[-1, -1] - A22[mR:mR + p, -1] @ beta) / deviance.n
    if not sigma2 > 0:           # X fits y exactly: lme4's start, and the fit says why it fails
        return deviance.layout.initial_theta()
    if len(deviance.blocks) > 1:
        first = deviance.A21[mR:].toarray().T                         # (J, p + 1): Z1'X, Z1'y per level
    else:
        first = deviance.A21[:, :, 0]
    sums = [(first, deviance.A11[:, 0, 0])]
    later = A22[:mR, mR:]
    start = 0
    for block in deviance.blocks[1:]:
        rows = slice(start, start + block.nlevels)
        sums.append((later[rows], np.diagonal(A22)[rows]))
        start += block.nlevels
    theta = np.zeros(deviance.layout.size)
    for block, (cross, weights) in zip(deviance.blocks, sums):
        seen = weights > 0
        means = (cross[seen, -1] - cross[seen, :p] @ beta) / weights[seen]
        between = np.mean(means ** 2 - sigma2 / weights[seen])
        theta[deviance.layout.terms[block.members[0]].start] = np.sqrt(max(between / sigma2, START_FLOOR ** 2))
    return theta


def evaluate_with_gradient(deviance, theta):
    """(criterion, gradient, the evaluation) at θ from one evaluation of the blocked factor (its
    tail's upper triangle left as np.empty gave it: the gradient reads the lower one)."""
    ev = deviance.evaluate(theta, np.empty(deviance.A22.shape))
    return deviance.criterion(ev), gradient(deviance, ev), ev


def gradient(deviance, ev):
    """d criterion / dθ at the evaluation's θ (has_gradient models only); reads only the lower
    triangle of the tail's factor."""
    dof = deviance.degrees_of_freedom
    scale = _tail_scale(deviance, ev)
    out = np.zeros(deviance.layout.size)
    for block, u2, trace in zip(deviance.blocks, _effect_norms(deviance, ev, scale),
                                _inverse_block_traces(deviance, ev, scale)):
        index = deviance.layout.terms[block.members[0]].start
        theta = ev.theta[index]
        if theta != 0:       # at 0 both derivatives are 0 (the criterion is even in θ_k)
            out[index] = 2 * (block.nlevels - trace) / theta - dof * 2 * u2 / (theta * ev.r2)
    return out


def _tail_scale(deviance, ev):
    """Λ_T's diagonal: θ_k on each later block's levels, 1 on X and y."""
    return np.concatenate([np.full(b.nlevels, lam[0, 0]) for b, lam in zip(deviance.blocks[1:], ev.block_factors[1:])]
                          + [np.ones(deviance.p + 1)])


def _effect_norms(deviance, ev, scale):
    """‖u_k‖² per block: the later blocks' u from the tail's last row (deviance.tail_solution), the
    first block's u_j = θ_1 A21_j'Λ_T w / L_j² with w = [−u_tail; −β; 1]."""
    z = deviance.tail_solution(ev)
    w = np.append(-z, 1.0) * scale
    cross = deviance.A21.T @ w if len(deviance.blocks) > 1 else deviance.A21[:, :, 0] @ w
    first = ev.block_factors[0][0, 0] * cross / ev.L1[:, 0, 0] ** 2
    norms, start = [float(first @ first)], 0
    for block in deviance.blocks[1:]:
        norms.append(float(z[start:start + block.nlevels] @ z[start:start + block.nlevels]))
        start += block.nlevels
    return norms


def _inverse_block_traces(deviance, ev, scale):
    """tr((Ω⁻¹)_kk) per block (REML; ML: of M⁻¹), the first block's by its levels' sparse columns."""
    mR = deviance.n_random_tail
    size = mR + deviance.p if deviance.reml else mR
    tail_inverse = _tail_inverse(ev.tail, size)
    level_ptr, rows, values = deviance._first_block_rows
    pivots = ev.L1[:, 0, 0]
    weights = (ev.block_factors[0][0, 0] / pivots ** 2) ** 2
    scaled = values[:, 0] * scale[rows]                                  # Λ_T a_j
    first = float(np.sum(1.0 / pivots ** 2)) + quadratic_forms(tail_inverse, level_ptr, rows, scaled, weights)
    diagonal, traces, start = np.diagonal(tail_inverse), [first], 0
    for block in deviance.blocks[1:]:
        traces.append(float(diagonal[start:start + block.nlevels].sum()))
        start += block.nlevels
    return traces


def _tail_inverse(tail, size):
    """S⁻¹ in the lower triangle, for the leading `size` rows of the tail's factor (potri, one thread)."""
    if not size:
        return np.zeros((0, 0))
    with _blas_controller().limit(limits=1, user_api="blas"):
        upper_inverse, info = scipy.linalg.lapack.dpotri(tail[:size, :size].T, lower=0)
    if info:
        raise np.linalg.LinAlgError("the tail's factor is singular")
    return upper_inverse.T
