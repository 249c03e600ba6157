"""Kenward–Roger: pbkrtest's adjusted Cov(β̂) (vcovAdj) and denominator df (Lb_ddf).

Everything is computed blockwise over the independent blocks of Σ, so no n×n matrix is formed.
"""
import logging
from dataclasses import dataclass

import numpy as np
import scipy.linalg
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from ..engine.covariance import read_only
from ..errors import ModelError
from .cache import _cached, reml_version

log = logging.getLogger(__name__)


KR_MAX_BLOCK = 4000                          # largest dense block of Σ for Kenward–Roger


@dataclass(frozen=True)
class KenwardRogerParts:
    """pbkrtest::vcovAdj of the REML fit: the adjusted Cov(β̂) and its P and W attributes."""
    vcov_adjusted: np.ndarray   # PhiA
    P: tuple                    # -X'Σ⁻¹G_rΣ⁻¹X per covariance parameter
    W: np.ndarray               # 2 (expected information)⁻¹ of the covariance parameters
    vcov: np.ndarray            # Phi: vcov() of the REML fit
    beta: np.ndarray            # fixef() of the REML fit
    sigma: float


def kenward_roger_parts(model):
    if not model.REML:
        log.info("Kenward-Roger for an ML fit: the adjustment comes from its REML refit (as pbkrtest)")
    return _cached(model, "kenward-roger", lambda: _kenward_roger(reml_version(model)))


def _kenward_roger(model):
    """vcovAdj_internal with every product of Σ⁻¹ and G_r taken block by block."""
    sigma2 = model.sigma ** 2
    Phi = model.vcov.to_numpy()
    acc = _kr_accumulate(model)
    nr = len(acc["P"])
    P = [acc["P"][r] / sigma2 ** 2 for r in range(nr)]
    Q = {key: value / sigma2 ** 3 for key, value in acc["Q"].items()}
    K = acc["K"] / sigma2 ** 2
    IE2 = np.empty((nr, nr))
    for i in range(nr):
        PhiPi = Phi @ P[i]
        for j in range(i, nr):
            IE2[i, j] = IE2[j, i] = K[i, j] - 2 * np.sum(Phi * Q[i, j]) + np.sum(PhiPi * (P[j] @ Phi))
    condition = np.min(np.abs(np.linalg.eigvalsh(IE2)))
    W = 2 * (np.linalg.inv(IE2) if condition > 1e-10 else np.linalg.pinv(IE2))
    W = (W + W.T) / 2
    UU = np.zeros_like(Phi)
    for i in range(nr - 1):
        for j in range(i + 1, nr):
            UU += W[i, j] * (Q[i, j] - P[i] @ Phi @ P[j])
    UU = UU + UU.T
    for i in range(nr):
        UU += W[i, i] * (Q[i, i] - P[i] @ Phi @ P[i])
    PhiA = Phi + 2 * Phi @ UU @ Phi
    return KenwardRogerParts(read_only(PhiA), tuple(map(read_only, P)), read_only(W), read_only(Phi),
                             model.beta, model.sigma)


def _kr_accumulate(model):
    """Σ over the independent blocks of Σ of the σ-free parts of P_r, Q_rs and tr(Σ⁻¹G_rΣ⁻¹G_s).

    With Σ_c = σ²(I + Z_cΛΛ'Z_c') and K = Λ(I + Λ'AΛ)⁻¹Λ', powers of σ²Σ_c⁻¹ are I - Z F_k Z'
    (F_1 = K, F_2 = 2K - KAK, F_3 = F_2 + K - F_2AK), so everything reduces to the block
    cross-products A = Z'Z, B = Z'X, C = X'X.
    """
    design = model.design
    factors = model.covariance_layout.factors(model.theta)
    params = model.covariance_layout.entries   # (term, a, b): VarCorr's lower triangle per term
    nr = len(params) + 1
    p = design.p
    acc = {"P": [np.zeros((p, p)) for _ in range(nr)],
           "Q": {(i, j): np.zeros((p, p)) for i in range(nr) for j in range(i, nr)},
           "K": np.zeros((nr, nr))}
    for block in _sigma_blocks(design):
        _kr_block(block, design.terms, factors, params, acc)
    return acc


@dataclass(frozen=True)
class _Block:
    """Independent blocks of Σ that share one layout: A (J,Q,Q), B (J,Q,p), C (J,p,p)."""
    counts: tuple      # levels of each term per block
    A: np.ndarray
    B: np.ndarray
    C: np.ndarray
    n: np.ndarray      # rows per block


def _sigma_blocks(design):
    """Split the rows into the connected components of the grouping factors (Σ is block
    diagonal over them) and group components with the same layout."""
    terms = design.terms
    component = _components(terms)
    ncomp = component.max() + 1
    local, counts = [], []
    for term in terms:
        key = component.astype(np.int64) * term.nlevels + term.codes
        uniq, inverse = np.unique(key, return_inverse=True)
        comp_of = uniq // term.nlevels
        first = np.searchsorted(comp_of, np.arange(ncomp))
        local.append(inverse.ravel() - first[component])
        counts.append(np.bincount(comp_of, minlength=ncomp))
    counts = np.column_stack(counts)
    layouts, layout_of = np.unique(counts, axis=0, return_inverse=True)
    layout_of = layout_of.ravel()
    for s, layout in enumerate(layouts):
        comps = np.flatnonzero(layout_of == s)
        rows = np.flatnonzero(np.isin(component, comps))
        rows = rows[np.argsort(component[rows], kind="stable")]
        yield _layout_block(design, tuple(int(c) for c in layout), rows, component[rows],
                            [loc[rows] for loc in local])


def _components(terms):
    if len(terms) == 1:
        return terms[0].codes
    offsets = np.cumsum([0] + [t.nlevels for t in terms])
    first = terms[0].codes
    rows = np.concatenate([first for _ in terms[1:]])
    cols = np.concatenate([t.codes + offsets[k + 1] for k, t in enumerate(terms[1:])])
    graph = sp.coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(offsets[-1], offsets[-1]))
    _, labels = connected_components(graph, directed=False)
    _, component = np.unique(labels[first], return_inverse=True)
    return component.ravel()


def _layout_block(design, counts, rows, comp, local):
    terms = design.terms
    Q = sum(c * t.q for c, t in zip(counts, terms))
    if Q > KR_MAX_BLOCK:
        raise ModelError(f"Kenward-Roger needs a dense block of {Q} random effects for this model, "
                         "too many; use ddf='Satterthwaite'")
    starts = np.unique(comp, return_index=True)[1]
    X = design.X[rows]
    Z = np.zeros((len(rows), Q))
    offset = 0
    for term, count, loc in zip(terms, counts, local):
        for a in range(term.q):
            Z[np.arange(len(rows)), offset + loc * term.q + a] = term.matrix[rows, a]
        offset += count * term.q
    if len(rows) * Q * Q <= 5e7:
        A = np.add.reduceat(Z[:, :, None] * Z[:, None, :], starts, axis=0)
    else:
        A = np.stack([Z[s:e].T @ Z[s:e] for s, e in zip(starts, list(starts[1:]) + [len(rows)])])
    B = np.add.reduceat(Z[:, :, None] * X[:, None, :], starts, axis=0)
    C = np.add.reduceat(X[:, :, None] * X[:, None, :], starts, axis=0)
    n = np.diff(np.append(starts, len(rows)))
    return _Block(counts, A, B, C, n)


def _block_layout_matrices(block, terms, factors, params):
    """Λ of one block and the basis matrices E_r of its covariance parameters."""
    lams, bases = [], []
    for term, count, lam in zip(terms, block.counts, factors):
        lams.append(np.kron(np.eye(count), lam))
    Lam = scipy.linalg.block_diag(*lams)
    offsets = np.cumsum([0] + [c * t.q for c, t in zip(block.counts, terms)])
    for k, a, b in params:
        e = np.zeros((terms[k].q, terms[k].q))
        e[a, b] = e[b, a] = 1.0
        E = np.zeros_like(Lam)
        size = block.counts[k] * terms[k].q
        E[offsets[k]:offsets[k] + size, offsets[k]:offsets[k] + size] = np.kron(np.eye(block.counts[k]), e)
        bases.append(E)
    return Lam, bases


def _kr_block(block, terms, factors, params, acc):
    Lam, bases = _block_layout_matrices(block, terms, factors, params)
    A, B, C = block.A, block.B, block.C
    Qn = A.shape[1]
    M = np.linalg.inv(np.eye(Qn) + Lam.T @ A @ Lam)
    K = Lam @ M @ Lam.T
    AK = A @ K
    F2 = 2 * K - K @ AK
    F3 = F2 + K - F2 @ AK
    S1zz = A - AK @ A
    S1zx = B - AK @ B
    S2zz = A - A @ F2 @ A
    S2zx = B - A @ F2 @ B
    Bt = B.transpose(0, 2, 1)
    S2xx = C - Bt @ F2 @ B
    S3xx = C - Bt @ F3 @ B
    ES = [E @ S1zx for E in bases]            # E_r Z'Σ⁻¹X (σ-free)
    EZ = [E @ S1zz for E in bases]
    R = len(bases)
    for r in range(R):
        acc["P"][r] -= np.einsum("jqa,jqb->ab", S1zx, ES[r])
        for s in range(r, R):
            acc["Q"][r, s] += np.einsum("jqa,jqt,jtb->ab", ES[r], S1zz, ES[s])
            acc["K"][r, s] += np.einsum("jab,jba->", EZ[r], EZ[s])
            acc["K"][s, r] = acc["K"][r, s]
        acc["Q"][r, R] += np.einsum("jqa,jqb->ab", ES[r], S2zx)
        acc["K"][r, R] += np.einsum("ab,jba->", bases[r], S2zz)
        acc["K"][R, r] = acc["K"][r, R]
    acc["P"][R] -= S2xx.sum(axis=0)
    acc["Q"][R, R] += S3xx.sum(axis=0)
    acc["K"][R, R] += np.sum(block.n) - np.einsum("jab,jba->", F2, A)


def lb_ddf(L, V0, parts):
    """pbkrtest's Lb_ddf: Kenward–Roger df of the contrasts L (rows) given vcov V0."""
    L = np.atleast_2d(np.asarray(L, dtype=float))
    A1, A2 = _kr_a1_a2(L, V0, parts)
    return _kr_df(L.shape[0], A1, A2)[0]


def _kr_a1_a2(L, V0, parts):
    Theta = L.T @ np.linalg.solve(L @ V0 @ L.T, L)
    U = [Theta @ V0 @ P @ V0 for P in parts.P]
    W = parts.W
    A1 = A2 = 0.0
    for i in range(len(U)):
        for j in range(i, len(U)):
            e = 1 if i == j else 2
            A1 += e * W[i, j] * np.trace(U[i]) * np.trace(U[j])
            A2 += e * W[i, j] * np.sum(U[i] * U[j].T)
    return A1, A2


def _kr_df(q, A1, A2):
    """(df2, F.scaling) of .KR_adjust / Lb_ddf."""
    B = (A1 + 6 * A2) / (2 * q)
    g = ((q + 1) * A1 - (q + 4) * A2) / ((q + 2) * A2)
    denom = 3 * q + 2 * (1 - g)
    c1, c2, c3 = g / denom, (q - g) / denom, (q + 2 - g) / denom
    V0 = 1 + c1 * B
    V1, V2 = 1 - c2 * B, 1 - c3 * B
    V0 = 0.0 if abs(V0) < 1e-10 else V0
    x, y = 1 - A2 / q, V1
    ratio = 1.0 if abs(x) < 1e-14 and abs(y) < 1e-14 else x / y
    rho = ratio ** 2 * V0 / V2 / q
    df2 = 4 + (q + 2) / (q * rho - 1)
    scaling = 1.0 if abs(df2 - 2) < 0.01 else df2 * (1 - A2 / q) / (df2 - 2)
    return float(df2), float(scaling)


def kenward_roger_df(model, L):
    """pbkrtest::get_Lb_ddf(model, L): with vcov() of the model itself as V0, and P, W from
    its REML fit (pbkrtest refits an ML model by REML for the adjustment)."""
    return lb_ddf(L, model.vcov.to_numpy(), kenward_roger_parts(model))
