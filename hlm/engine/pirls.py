"""Penalized iteratively reweighted least squares (lme4's pwrssUpdate) as compiled loops.

At θ (and β, in glmer's second stage) PIRLS finds the conditional modes u that minimise the
penalized deviance Σ d_i(μ_i) + |u|²: each iteration solves a weighted penalized least squares
problem with the blocked Cholesky factor of

    [Λ'Z'WZΛ + I   Λ'Z'WX   Λ'Z'Wz]
    [   X'WZΛ       X'WX     X'Wz ]  =  L L'
    [   z'WZΛ       z'WX     z'Wz ]

where W and the working response z change every iteration. The structure is fixed, so it is
worked out once (glmm.Structure): the first grouping factor's block is J small q×q blocks;
everything after it (later grouping factors, X when PIRLS solves for β, z) is a dense tail of
size m, and each level of the first factor meets only some tail columns. An iteration costs
O(n·k²) for the k tail entries of a row, plus Σ_j s_j² for the s_j tail columns level j meets
(its share of the tail's Schur complement; one matrix product when levels meet most tail
columns, as crossed factors do), plus m³.

`structure` is the tuple (codes, z1, tail_cols, tail_z, m_random, level_ptr, level_cols,
row_local) of glmm.Structure; `factors` the tuple (L1, L1_inv, C, T) the results go into.
"""
import math

import numpy as np

from . import kernels
from .family import (
    BINOMIAL,
    LOG,
    LOGIT,
    POISSON,
    deviance_residual,
    deviance_total,
    linkinv,
    linkinv_into,
    mu_eta,
    variance,
)
from .kernels import compiled

cholesky_lower = kernels.numba_compiled(kernels.cholesky_lower)
factor_from_index = kernels.numba_compiled(kernels.factor_from_index, inline="always")

MAX_ITERATIONS = 100        # lme4's maxit
MAX_HALVINGS = 20           # lme4's maxstephalfit
TOLERANCE = 1e-7            # glmerControl's tolPwrss: relative change of the penalized deviance
LAPACK_SIZE = 64            # tails larger than this are factored by LAPACK
NOT_POSITIVE_DEFINITE, NO_CONVERGENCE, HALVING_FAILED = 1, 2, 3


@compiled(inline="always")
def _mu_eta(eta, mu, link):
    """dμ/dη, from μ where the link allows (logit, log): no exponential per row."""
    if link == LOGIT:
        return max(mu * (1.0 - mu), np.finfo(np.float64).eps)
    if link == LOG:
        return mu
    return mu_eta(eta, link)


@compiled
def scaled_rows(theta, z, index, out):
    """out = ZΛ row by row, where Λ[a, b] = θ[index[a, b]] (0 where the index is -1)."""
    q = z.shape[1]
    lam = factor_from_index(theta, index)
    if q == 1:
        out[:, 0] = z[:, 0] * lam[0, 0]
        return
    for i in range(z.shape[0]):
        for b in range(q):
            total = 0.0
            for a in range(b, q):
                total += z[i, a] * lam[a, b]
            out[i, b] = total


@compiled
def factor(y, weights, offset, eta, mu, family, link, structure, zl1, zlt, X, local_ptr, dense, factors):
    """Form the weighted cross-products at η (μ = μ(η)) and factor them into `factors`:
    L1 and its inverse per level, C (each level's coupling to the tail) and T (the tail, its
    lower Cholesky factor). Returns (0 or an error code, log|L_1|)."""
    n = len(y)
    w, z = np.empty(n), np.empty(n)
    _working_response(y, weights, offset, eta, mu, family, link, w, z)
    _cross_products(w, z, structure, zl1, zlt, X, local_ptr, factors)
    L1, L1_inv, C, T = factors
    log_det = _factor_levels(L1, L1_inv)
    for a in range(structure[4]):
        T[a, a] += 1.0
    _eliminate_first_block(structure, X.shape[1], local_ptr, L1_inv, C, T, dense)
    return _cholesky_tail(T), log_det


@compiled
def _working_response(y, weights, offset, eta, mu, family, link, w, z):
    """The working weights w = weight·(dμ/dη)²/V(μ) and response z = η - offset + (y - μ)/(dμ/dη).
    With a canonical link dμ/dη = V(μ) (lme4 clamps both alike), so w = weight·V(μ): loops that vectorize."""
    canonical = (family == BINOMIAL and link == LOGIT) or (family == POISSON and link == LOG)
    for i in range(len(y)):
        d = variance(mu[i], family) if canonical else _mu_eta(eta[i], mu[i], link)
        w[i] = weights[i] * d if canonical else weights[i] * d * d / variance(mu[i], family)
        z[i] = eta[i] - offset[i] + (y[i] - mu[i]) / d


@compiled
def _cross_products(w, z, structure, zl1, zlt, X, local_ptr, factors):
    """Σ_i w_i (each pair of row i's entries): the first block's per level (L1), its coupling to the
    tail entries of the row (C), and the tail's lower triangle (T): later blocks, then X, then z
    (X with X and with z by matrix products)."""
    L1, _, C, T = factors
    L1[:] = 0.0
    C[:] = 0.0
    T[:] = 0.0
    m_random, p = structure[4], X.shape[1]
    if p:                                               # X'WX and z'WX by matrix products
        weighted = X * w.reshape(-1, 1)
        T[m_random:m_random + p, m_random:m_random + p] = np.tril(weighted.T @ X)
        T[m_random + p, m_random:m_random + p] = weighted.T @ z
    if zl1.shape[1] == 1:
        _cross_products_scalar(w, z, structure, zl1, zlt, X, local_ptr, L1, C, T)
        return
    codes, _, tail_cols, _, m_random, level_ptr, _, row_local = structure
    q, r, p = zl1.shape[1], zlt.shape[1], X.shape[1]
    wz1 = np.empty(q)
    zrow = m_random + p
    for i in range(len(w)):
        j, wi, zi = codes[i], w[i], z[i]
        for a in range(q):
            wz1[a] = wi * zl1[i, a]
        for a in range(q):
            for b in range(a + 1):
                L1[j, a, b] += wz1[a] * zl1[i, b]
        base = local_ptr[j]
        random_j = level_ptr[j + 1] - level_ptr[j]
        for e in range(r):
            g, v = tail_cols[i, e], zlt[i, e]
            local = base + row_local[i, e] * q
            for b in range(q):
                C[local + b] += v * wz1[b]
            wv = wi * v
            for f in range(e + 1):
                T[g, tail_cols[i, f]] += wv * zlt[i, f]
            for k in range(p):
                T[m_random + k, g] += wv * X[i, k]
            T[zrow, g] += wv * zi
        for k in range(p):
            local = base + (random_j + k) * q
            for b in range(q):
                C[local + b] += X[i, k] * wz1[b]
        local = base + (random_j + p) * q
        for b in range(q):
            C[local + b] += zi * wz1[b]
        T[zrow, zrow] += wi * zi * zi


@compiled
def _cross_products_scalar(w, z, structure, zl1, zlt, X, local_ptr, L1, C, T):
    """_cross_products for a first block of one column (random intercepts): the same sums
    without the loops over its columns, which cost more than the sums."""
    codes, _, tail_cols, _, m_random, level_ptr, _, row_local = structure
    r, p = zlt.shape[1], X.shape[1]
    zrow = m_random + p
    for i in range(len(w)):
        j, wi, zi = codes[i], w[i], z[i]
        wa = wi * zl1[i, 0]
        L1[j, 0, 0] += wa * zl1[i, 0]
        base = local_ptr[j]
        random_j = level_ptr[j + 1] - level_ptr[j]
        for e in range(r):
            g, v = tail_cols[i, e], zlt[i, e]
            C[base + row_local[i, e]] += v * wa
            wv = wi * v
            for f in range(e + 1):
                T[g, tail_cols[i, f]] += wv * zlt[i, f]
            for k in range(p):
                T[m_random + k, g] += wv * X[i, k]
            T[zrow, g] += wv * zi
        for k in range(p):
            C[base + random_j + k] += X[i, k] * wa
        C[base + random_j + p] += zi * wa
        T[zrow, zrow] += wi * zi * zi


@compiled
def _factor_levels(L1, L1_inv):
    """L_j L_j' = Λ'Z_j'W Z_jΛ + I for each level, in place, and L_j⁻¹ (both lower triangular, zero
    above the diagonal); returns Σ log|L_j|."""
    J, q = L1.shape[0], L1.shape[1]
    L1_inv[:] = 0.0
    log_det = 0.0
    for j in range(J):
        for a in range(q):
            L1[j, a, a] += 1.0
        for c in range(q):
            total = L1[j, c, c]
            for k in range(c):
                total -= L1[j, c, k] ** 2
            L1[j, c, c] = math.sqrt(total)
            log_det += math.log(L1[j, c, c])
            for row in range(c + 1, q):
                total = L1[j, row, c]
                for k in range(c):
                    total -= L1[j, row, k] * L1[j, c, k]
                L1[j, row, c] = total / L1[j, c, c]
        for c in range(q):
            L1_inv[j, c, c] = 1.0 / L1[j, c, c]
            for row in range(c + 1, q):
                total = 0.0
                for k in range(c, row):
                    total -= L1[j, row, k] * L1_inv[j, k, c]
                L1_inv[j, row, c] = total / L1[j, row, row]
    return log_det


@compiled
def _eliminate_first_block(structure, p, local_ptr, L1_inv, C, T, dense):
    """C_j becomes S_j = C_j L_j^{-T} (in place: the rows of L21) and T -= Σ_j S_j S_j': level by
    level over the tail columns each level meets, or, when every level meets every later-block
    column (a complete structure: crossed factors), as one matrix product."""
    _, _, _, _, m_random, level_ptr, level_cols, _ = structure
    J, q, m = L1_inv.shape[0], L1_inv.shape[1], T.shape[0]
    size_max = np.max(np.diff(level_ptr)) + p + 1
    row = np.empty(q)
    columns = np.empty(size_max, dtype=np.int64)
    for j in range(J):
        random_j = level_ptr[j + 1] - level_ptr[j]
        size = random_j + p + 1
        base = local_ptr[j]
        if q == 1:
            for a in range(size):
                C[base + a] *= L1_inv[j, 0, 0]
        else:
            for a in range(size):
                for b in range(q):
                    row[b] = C[base + a * q + b]
                for b in range(q):
                    total = 0.0
                    for c in range(b + 1):
                        total += row[c] * L1_inv[j, b, c]
                    C[base + a * q + b] = total
        if dense:
            continue
        for a in range(size):
            columns[a] = level_cols[level_ptr[j] + a] if a < random_j else m_random + a - random_j
        for a in range(size):
            ga = columns[a]
            for b in range(a + 1):
                total = 0.0
                for c in range(q):
                    total += C[base + a * q + c] * C[base + b * q + c]
                T[ga, columns[b]] -= total
    if dense:                                           # C is (J, m, q): T -= Σ_j S_j S_j'
        S = C.reshape(J, m) if q == 1 else np.ascontiguousarray(C.reshape(J, m, q).transpose(0, 2, 1)).reshape(J * q, m)
        T -= S.T @ S


@compiled
def _cholesky_tail(T):
    """Lower Cholesky factor of T in place; the last pivot (the working response's penalized
    residual) may be 0. Returns 0 or NOT_POSITIVE_DEFINITE. The leading block by LAPACK when it is
    large (called with BLAS on one thread, see glmm.fit_glmm), else by kernels.cholesky_lower;
    then the last row by forward substitution."""
    m = T.shape[0]
    leading = T[:m - 1, :m - 1]
    if m > LAPACK_SIZE:
        try:
            leading[:, :] = np.linalg.cholesky(np.ascontiguousarray(leading))
        except Exception:  # noqa: BLE001 -- numba can catch only Exception, not LinAlgError
            return NOT_POSITIVE_DEFINITE
    elif cholesky_lower(leading):
        return NOT_POSITIVE_DEFINITE
    total = T[m - 1, m - 1]
    for c in range(m - 1):
        value = T[m - 1, c]
        for k in range(c):
            value -= T[m - 1, k] * T[c, k]
        T[m - 1, c] = value / T[c, c]
        total -= T[m - 1, c] ** 2
    T[m - 1, m - 1] = math.sqrt(max(total, 0.0))
    return 0


@compiled
def _solve(offset, structure, zl1, zlt, X, local_ptr, factors, u1, x, eta):
    """The penalized least squares solution from the factors: x = [u of later blocks; β] from the
    tail, u1 from each level's block; then η = offset + ZΛu + Xβ."""
    codes, _, tail_cols, _, m_random, level_ptr, level_cols, _ = structure
    _, L1_inv, C, T = factors
    J, q = L1_inv.shape[0], L1_inv.shape[1]
    m, p, r = T.shape[0], X.shape[1], zlt.shape[1]
    for a in range(m - 2, -1, -1):
        total = T[m - 1, a]
        for b in range(a + 1, m - 1):
            total -= T[b, a] * x[b]
        x[a] = total / T[a, a]
    rhs = np.empty(q)
    for j in range(J):
        start, random_j = level_ptr[j], level_ptr[j + 1] - level_ptr[j]
        base = local_ptr[j]
        if q == 1:                                      # the same without the loops over columns
            total = C[base + random_j + p]
            for a in range(random_j):
                total -= C[base + a] * x[level_cols[start + a]]
            for k in range(p):
                total -= C[base + random_j + k] * x[m_random + k]
            u1[j, 0] = L1_inv[j, 0, 0] * total
            continue
        for b in range(q):
            rhs[b] = C[base + (random_j + p) * q + b]   # the working response's row
        for a in range(random_j):                       # minus the later blocks' and X's rows times x
            for b in range(q):
                rhs[b] -= C[base + a * q + b] * x[level_cols[start + a]]
        for k in range(p):
            for b in range(q):
                rhs[b] -= C[base + (random_j + k) * q + b] * x[m_random + k]
        for b in range(q):                              # u_j = L_j^{-T} rhs (C holds S_j = C_j L_j^{-T})
            total = 0.0
            for c in range(b, q):
                total += L1_inv[j, c, b] * rhs[c]
            u1[j, b] = total
    for i in range(len(eta)):
        total = offset[i] + zl1[i, 0] * u1[codes[i], 0]
        for b in range(1, q):
            total += zl1[i, b] * u1[codes[i], b]
        for e in range(r):
            total += zlt[i, e] * x[tail_cols[i, e]]
        for k in range(p):
            total += X[i, k] * x[m_random + k]
        eta[i] = total


@compiled
def _penalized_deviance(y, weights, eta, mu, family, link, u1, x, m_random):
    """Σ d_i(μ_i) + |u|², updating μ = μ(η)."""
    linkinv_into(eta, mu, link)
    total = deviance_total(y, mu, weights, family)
    for j in range(u1.shape[0]):
        for b in range(u1.shape[1]):
            total += u1[j, b] ** 2
    for a in range(m_random):
        total += x[a] ** 2
    return total


@compiled
def pirls(y, weights, offset, eta, mu, family, link, structure, zl1, zlt, X, local_ptr, dense, factors, u1, x,
          tolerance, first):
    """lme4's pwrssUpdate from the linear predictor `eta` and `mu` = μ(eta) (both overwritten by those at
    the modes): Newton steps, halved while the penalized deviance rises, until it changes by less than
    `tolerance` (relative). As in lme4 the factors are those of the last step, formed at the
    linear predictor before it. `first` = (done, status, log|L_1|) says whether the first step's
    factor is in `factors` already (from first_step's products). Returns (status, iterations,
    log|L_1|, penalized deviance)."""
    n = len(y)
    previous = np.empty(n)
    u1_previous, x_previous = np.empty_like(u1), np.empty_like(x)
    old = np.inf
    for iteration in range(1, MAX_ITERATIONS + 1):
        if iteration == 1 and first[0]:
            status, log_det = first[1], first[2]
        else:
            status, log_det = factor(y, weights, offset, eta, mu, family, link, structure, zl1, zlt, X, local_ptr,
                                     dense, factors)
        if status:
            return status, iteration, log_det, old
        previous[:] = eta
        u1_previous[:] = u1
        x_previous[:] = x
        _solve(offset, structure, zl1, zlt, X, local_ptr, factors, u1, x, eta)
        value = _penalized_deviance(y, weights, eta, mu, family, link, u1, x, structure[4])
        if abs((old - value) / value) < tolerance:
            return 0, iteration, log_det, value
        halvings = 0
        while not value <= old and halvings < MAX_HALVINGS:     # NaN too
            eta[:] = 0.5 * (eta + previous)
            u1[:] = 0.5 * (u1 + u1_previous)
            x[:] = 0.5 * (x + x_previous)
            value = _penalized_deviance(y, weights, eta, mu, family, link, u1, x, structure[4])
            halvings += 1
        if not value - old <= tolerance:
            return HALVING_FAILED, iteration, log_det, value
        old = value
    return NO_CONVERGENCE, MAX_ITERATIONS, log_det, old


@compiled
def run_pirls(theta, beta, start_eta, start_mu, response, structure, lambda_index, X, work, local_ptr, dense,
              tolerance, first_products):
    """PIRLS at θ from the linear predictor start_eta (μ start_mu), all in `work` (zl1, zlt, offset,
    eta, mu, u1, x and the factors L1, L1_inv, C, T): with beta of length 0 it solves for β too,
    else β is part of the offset, and `first_products` (first_step), unless empty, gives the first
    step's factor. One call per evaluation of the deviance."""
    y, weights, base_offset, family, link = response
    zl1, zlt, offset, eta, mu, u1, x, L1, L1_inv, C, T = work
    scaled_rows(theta, structure[1], lambda_index[0], zl1)
    scaled_rows(theta, structure[3], lambda_index[1], zlt)
    solve_beta = len(beta) == 0
    offset[:] = base_offset
    if not solve_beta:
        offset += X @ beta
    eta[:] = start_eta
    mu[:] = start_mu
    u1[:] = 0.0
    x[:] = 0.0
    first = (False, 0, 0.0)
    if len(first_products[0]):
        status, log_det = _first_step_factor(first_products, theta, beta, structure, local_ptr, dense,
                                             (L1, L1_inv, C, T))
        first = (True, status, log_det)
    return pirls(y, weights, offset, eta, mu, family, link, structure, zl1, zlt,
                 X if solve_beta else np.empty((len(y), 0)), local_ptr, dense, (L1, L1_inv, C, T), u1, x, tolerance,
                 first)


@compiled
def first_step(y, weights, base_offset, start_eta, start_mu, family, link, structure, X, local_ptr, column_theta):
    """The cross-products of PIRLS's first step in glmer's second stage, computed once for all its
    evaluations: every evaluation starts from the same linear predictor, so the first step has the
    same weights, and its working response is z0 - Xβ. For one-column random effects Λ only
    scales them, so they are formed without Λ, with X's columns (for the terms in β), in the
    layout with p columns of X; _first_step_factor scales and combines them at each (θ, β).
    column_theta: the position in θ of each column's λ, first block first."""
    n = len(y)
    m = structure[4] + X.shape[1] + 1
    J = len(structure[5]) - 1
    factors = (np.empty((J, 1, 1)), np.empty((J, 1, 1)), np.empty(local_ptr[-1]), np.empty((m, m)))
    w, z = np.empty(n), np.empty(n)
    _working_response(y, weights, base_offset, start_eta, start_mu, family, link, w, z)
    _cross_products(w, z, structure, structure[1], structure[3], X, local_ptr, factors)
    return factors[0], factors[2], factors[3], X.shape[1], local_ptr, column_theta


@compiled
def _first_step_factor(first_products, theta, beta, structure, local_ptr, dense, factors):
    """The first step's factor at (θ, β) from first_step's products: scaled by the λ of each block,
    the working response's row combined as z0 - Xβ; then factored as `factor` does. Returns
    (0 or an error code, log|L_1|)."""
    raw_L1, raw_C, raw_T, p, raw_ptr, column_theta = first_products
    _, _, _, _, m_random, level_ptr, level_cols, _ = structure
    L1, L1_inv, C, T = factors
    first = theta[column_theta[0]]
    lam = np.empty(m_random)                            # λ of each later-block column
    for g in range(m_random):
        lam[g] = theta[column_theta[g + 1]]
    zp = m_random + p
    for j in range(L1.shape[0]):
        L1[j, 0, 0] = first * first * raw_L1[j, 0, 0]
        base, raw = local_ptr[j], raw_ptr[j]
        random_j = level_ptr[j + 1] - level_ptr[j]
        for a in range(random_j):
            C[base + a] = first * lam[level_cols[level_ptr[j] + a]] * raw_C[raw + a]
        total = raw_C[raw + random_j + p]
        for k in range(p):
            total -= raw_C[raw + random_j + k] * beta[k]
        C[base + random_j] = first * total
    T[:] = 0.0
    for g in range(m_random):
        for h in range(g + 1):
            T[g, h] = lam[g] * lam[h] * raw_T[g, h]
        total = raw_T[zp, g]
        for k in range(p):
            total -= beta[k] * raw_T[m_random + k, g]
        T[m_random, g] = lam[g] * total
    total = raw_T[zp, zp]
    for k in range(p):
        total -= 2.0 * beta[k] * raw_T[zp, m_random + k]
        for k2 in range(p):
            total += beta[k] * beta[k2] * raw_T[m_random + max(k, k2), m_random + min(k, k2)]
    T[m_random, m_random] = total
    log_det = _factor_levels(L1, L1_inv)
    for a in range(m_random):
        T[a, a] += 1.0
    _eliminate_first_block(structure, 0, local_ptr, L1_inv, C, T, dense)
    return _cholesky_tail(T), log_det


@compiled
def log_likelihood(mu, family, scale, constant, successes, trials):
    """Σ scale·log p(y | μ): -2 times it is lme4's aic()."""
    total = 0.0
    for i in range(len(mu)):
        if scale[i] == 0.0:
            continue
        value = constant[i]
        if successes[i] > 0:
            value += successes[i] * math.log(mu[i])
        if family == BINOMIAL:
            if trials[i] - successes[i] > 0:
                value += (trials[i] - successes[i]) * math.log1p(-mu[i])
        else:
            value -= mu[i]
        total += scale[i] * value
    return total


@compiled
def agq_deviance(y, weights, eta, family, link, codes, zl1, u1, L1, knots, knot_weights):
    """lme4's glmerAGQ for one scalar random-effect term: each group's integral by adaptive
    Gauss-Hermite quadrature around its mode u_j with scale 1/L_j. Like lme4 it adds up deviance
    residuals (not -2 log p), so its log-likelihood lacks the binomial and Poisson constants."""
    J = len(u1)
    devc0 = np.empty(J)
    for j in range(J):
        devc0[j] = u1[j, 0] ** 2
    for i in range(len(y)):
        devc0[codes[i]] += deviance_residual(y[i], linkinv(eta[i], link), weights[i], family)
    mult = np.zeros(J)
    devc = np.empty(J)
    log_det = 0.0
    for j in range(J):
        log_det += 2.0 * math.log(L1[j, 0, 0])
    for k in range(len(knots)):
        if knots[k] == 0.0:
            mult += knot_weights[k]
            continue
        for j in range(J):
            devc[j] = (u1[j, 0] + knots[k] / L1[j, 0, 0]) ** 2
        for i in range(len(y)):
            shifted = eta[i] + zl1[i, 0] * knots[k] / L1[codes[i], 0, 0]
            devc[codes[i]] += deviance_residual(y[i], linkinv(shifted, link), weights[i], family)
        for j in range(J):
            mult[j] += knot_weights[k] * math.exp(-0.5 * (devc[j] - devc0[j]) + 0.5 * knots[k] ** 2)
    total = log_det
    for j in range(J):
        total += devc0[j] - 2.0 * math.log(mult[j])
    return total
