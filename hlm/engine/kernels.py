"""Compiled (numba) loops: the blocked Cholesky factor, which runs at every evaluation of the
deviance for every level of the first grouping factor, where numpy's per-call cost dominates;
and the per-level sums of the cross-products, which np.bincount would make with an n-row
temporary (and a copy of read-only codes) per column pair.
"""
import numba
import numpy as np


@numba.njit(cache=True)
def level_sums(codes, a, b, nlevels):
    """Σ a_i·b_i over the rows i of each level (codes[i] is row i's level)."""
    out = np.zeros(nlevels)
    for i in range(len(codes)):
        out[codes[i]] += a[i] * b[i]
    return out


@numba.njit(cache=True, error_model="numpy")
def small_cholesky(A):
    """(lower Cholesky factor of A, 0), or (partial factor, k) if the k-th pivot is not positive."""
    m = A.shape[0]
    L = np.zeros((m, m))
    for c in range(m):
        total = A[c, c]
        for k in range(c):
            total -= L[c, k] ** 2
        if not total > 0.0:  # also catches NaN, as LAPACK's dpotrf does
            return L, c + 1
        L[c, c] = np.sqrt(total)
        for r in range(c + 1, m):
            total = A[r, c]
            for k in range(c):
                total -= L[r, k] * L[c, k]
            L[r, c] = total / L[c, c]
    return L, 0


@numba.njit(cache=True, error_model="numpy")
def factor_first_block(A11, A21, lam):
    """Factor Λ'A_jΛ + I = L_j L_j' for every level j of the first block.

    Returns (L, L⁻¹, Σ_j log|L_j|, W) where W = Σ_j Ã_j Ã_j' with Ã_j = A21_j Λ L_j^{-T}: the first block's
    share of the tail's Schur complement (zero-size when A21 is not given per level).
    Compiled, because it runs for every level at every evaluation of the deviance.
    """
    J, q = A11.shape[0], A11.shape[1]
    m = A21.shape[1]
    L = np.zeros((J, q, q))
    inv = np.zeros((J, q, q))
    W = np.zeros((m, m))
    log_det = 0.0
    M = np.empty((q, q))
    R = np.empty((q, q))
    S = np.empty((m, q))
    for j in range(J):
        for a in range(q):                       # M = Λ'A_jΛ + I (explicit loops: q is tiny)
            for b in range(q):
                total = 1.0 if a == b else 0.0
                for c in range(a, q):
                    for d in range(b, q):
                        total += lam[c, a] * A11[j, c, d] * lam[d, b]
                M[a, b] = total
        for c in range(q):                       # Cholesky, column by column
            total = M[c, c]
            for k in range(c):
                total -= L[j, c, k] ** 2
            L[j, c, c] = np.sqrt(total)
            log_det += np.log(L[j, c, c])
            for r in range(c + 1, q):
                total = M[r, c]
                for k in range(c):
                    total -= L[j, r, k] * L[j, c, k]
                L[j, r, c] = total / L[j, c, c]
        for c in range(q):                       # forward substitution for L^{-1}
            inv[j, c, c] = 1.0 / L[j, c, c]
            for r in range(c + 1, q):
                total = 0.0
                for k in range(c, r):
                    total -= L[j, r, k] * inv[j, k, c]
                inv[j, r, c] = total / L[j, r, r]
        if m:
            for a in range(q):                   # R = Λ L_j^{-T}
                for b in range(q):
                    total = 0.0
                    for c in range(b + 1):
                        total += lam[a, c] * inv[j, b, c]
                    R[a, b] = total
            for r in range(m):                   # S = A21_j R; W += S S'
                for b in range(q):
                    total = 0.0
                    for a in range(q):
                        total += A21[j, r, a] * R[a, b]
                    S[r, b] = total
            for r in range(m):
                for c in range(r + 1):
                    total = 0.0
                    for b in range(q):
                        total += S[r, b] * S[c, b]
                    W[r, c] += total
    for r in range(m):
        for c in range(r):
            W[c, r] = W[r, c]
    return L, inv, log_det, W
