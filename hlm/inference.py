"""Inference for a fitted model: lmerTest's t- and F-tests and lme4's confidence intervals.

- Denominator degrees of freedom: Satterthwaite (lmerTest: Hessian of the deviance in
  varpar = (θ, σ) and Jacobian of Cov(β̂) by numDeriv's Richardson extrapolation),
  Kenward–Roger (pbkrtest's vcovAdj / Lb_ddf, computed blockwise over the independent
  blocks of Σ so no n×n matrix is formed), or the residual df.
- `coef_table`, `contrast_test` (one contrast) and `f_test` (several, lmerTest's contestMD).
- `anova_terms`: lmerTest's type III `anova(m)` with Satterthwaite or Kenward–Roger.
- `confint`: Wald, profile (lme4's profile.merMod + confint.thpr, spline-interpolated) and a
  seeded parametric bootstrap (lme4's bootMer + percentile intervals as boot.ci).

Everything expensive is computed once per model and cached in a WeakKeyDictionary.
"""
import logging
import sys
import weakref
from dataclasses import dataclass, replace
from itertools import product

import nlopt
import numpy as np
import pandas as pd
import scipy.interpolate
import scipy.linalg
import scipy.sparse as sp
import scipy.stats
from scipy.sparse.csgraph import connected_components

from .errors import ModelError

log = logging.getLogger(__name__)

DDF_ALIASES = {"satterthwaite": "satterthwaite", "kenward-roger": "kenward-roger", "kr": "kenward-roger",
               "kenwardroger": "kenward-roger", "residual": "residual"}
COEF_COLUMNS = ["Estimate", "Std. Error", "df", "t value", "Pr(>|t|)"]
ANOVA_COLUMNS = ["Sum Sq", "Mean Sq", "NumDF", "DenDF", "F value", "Pr(>F)"]
EIGEN_TOLERANCE = 1e-8                      # lmerTest: eigenvalues of the varpar Hessian
ZERO_TOL = np.sqrt(np.finfo(float).eps / 7e-7)  # numDeriv's zero.tol
KR_MAX_BLOCK = 4000                          # largest dense block of Σ for Kenward–Roger

_CACHE = weakref.WeakKeyDictionary()


def _cached(model, key, compute):
    """compute() once per (model, key); the model is frozen, so results never go stale."""
    store = _CACHE.setdefault(model, {})
    if key not in store:
        store[key] = compute()
    return store[key]


def ml_version(model):
    """The model itself if fitted by ML, else its ML refit on the same rows (cached)."""
    return model if not model.REML else _cached(model, "ml", lambda: model.refit(REML=False))


def reml_version(model):
    """The model itself if fitted by REML, else its REML refit on the same rows (cached)."""
    return model if model.REML else _cached(model, "reml", lambda: model.refit(REML=True))


def normalize_ddf(ddf):
    key = str(ddf).lower().replace("_", "-").replace(" ", "-")
    key = DDF_ALIASES.get(key, DDF_ALIASES.get(key.replace("-", ""), None))
    if key is None:
        raise ModelError(f"ddf '{ddf}' is unknown; use 'satterthwaite', 'kenward-roger' or 'residual'")
    return key


# ---- numDeriv (Richardson extrapolation, v = 2, r = 4) -------------------------------------

def _richardson(approx):
    """numDeriv's extrapolation over the first axis of successive halvings of the step."""
    a = np.array(approx, dtype=float)
    r = a.shape[0]
    for m in range(1, r):
        a = (a[1:r + 1 - m] * 4 ** m - a[:r - m]) / (4 ** m - 1)
    return a[0]


def _steps(x, d, eps=1e-4):
    return np.abs(d * x) + eps * (np.abs(x) < ZERO_TOL)


def hessian(f, x, d=0.1, r=4):
    """numDeriv::hessian(f, x) (genD with Richardson extrapolation)."""
    x = np.asarray(x, dtype=float)
    n, f0, h0 = len(x), f(x), _steps(x, d)
    diag = np.zeros(n)
    H = np.zeros((n, n))
    for i in range(n):
        approx = []
        for k in range(r):
            e = np.zeros(n)
            e[i] = h0[i] / 2 ** k
            approx.append((f(x + e) - 2 * f0 + f(x - e)) / e[i] ** 2)
        diag[i] = H[i, i] = _richardson(approx)
    for i in range(n):
        for j in range(i):
            approx = []
            for k in range(r):
                h = h0 / 2 ** k
                e = np.zeros(n)
                e[i], e[j] = h[i], h[j]
                approx.append((f(x + e) - 2 * f0 + f(x - e) - diag[i] * h[i] ** 2 - diag[j] * h[j] ** 2)
                              / (2 * h[i] * h[j]))
            H[i, j] = H[j, i] = _richardson(approx)
    return H


def jacobian(f, x, d=1e-4, r=4):
    """numDeriv::jacobian(f, x) for an array-valued f: (n, *shape of f)."""
    x = np.asarray(x, dtype=float)
    h0 = _steps(x, d)
    out = []
    for i in range(len(x)):
        approx = []
        for k in range(r):
            e = np.zeros(len(x))
            e[i] = h0[i] / 2 ** k
            approx.append((f(x + e) - f(x - e)) / (2 * e[i]))
        out.append(_richardson(approx))
    return np.array(out)


# ---- Satterthwaite ---------------------------------------------------------------------------

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


# ---- Kenward–Roger (pbkrtest) -------------------------------------------------------------

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
    return KenwardRogerParts(PhiA, tuple(P), W, Phi, model.fixef.to_numpy(), model.sigma)


def _kr_accumulate(model):
    """Σ over the independent blocks of Σ of the σ-free parts of P_r, Q_rs and tr(Σ⁻¹G_rΣ⁻¹G_s).

    With Σ_c = σ²(I + Z_cΛΛ'Z_c') and K = Λ(I + Λ'AΛ)⁻¹Λ', powers of σ²Σ_c⁻¹ are I - Z F_k Z'
    (F_1 = K, F_2 = 2K - KAK, F_3 = F_2 + K - F_2AK), so everything reduces to the block
    cross-products A = Z'Z, B = Z'X, C = X'X.
    """
    design = model.design
    ev_factors = model.deviance_function.evaluate(model.theta).factors
    params = _covariance_parameters(design.terms)
    nr = len(params) + 1
    p = design.p
    acc = {"P": [np.zeros((p, p)) for _ in range(nr)],
           "Q": {(i, j): np.zeros((p, p)) for i in range(nr) for j in range(i, nr)},
           "K": np.zeros((nr, nr))}
    for block in _sigma_blocks(design):
        _kr_block(block, design.terms, ev_factors, params, acc)
    return acc


def _covariance_parameters(terms):
    """(term index, a, b) of each covariance parameter: VarCorr's lower triangle per term."""
    out = []
    for k, term in enumerate(terms):
        cols, rows = np.triu_indices(term.q)
        out += [(k, int(a), int(b)) for a, b in zip(rows, cols)]
    return out


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
                         "too many; use ddf='satterthwaite'")
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


# ---- t- and F-tests --------------------------------------------------------------------------

def contrast_test(model, L, ddf="satterthwaite"):
    """lmerTest's contest1D: the t-test of L'β = 0 -> dict with the coef-table columns."""
    method = normalize_ddf(ddf)
    L = np.asarray(L, dtype=float)
    estimate = float(L @ model.fixef.to_numpy())
    if method == "kenward-roger":
        parts = kenward_roger_parts(model)
        variance = float(L @ parts.vcov_adjusted @ L)
        df = lb_ddf(L, model.vcov.to_numpy(), parts)
    else:
        variance = float(L @ model.vcov.to_numpy() @ L)
        df = satterthwaite_df(model, L) if method == "satterthwaite" else float(model.df_resid)
    se = np.sqrt(variance)
    t = estimate / se
    p = 2 * scipy.stats.t.sf(abs(t), df)
    return dict(zip(COEF_COLUMNS, (estimate, se, df, t, p)))


def coef_table(model, ddf="satterthwaite"):
    """Estimate, Std. Error, df, t value, Pr(>|t|) of every fixed effect (lmerTest's summary)."""
    p = model.design.p
    rows = [contrast_test(model, np.eye(p)[j], ddf) for j in range(p)]
    return pd.DataFrame(rows, index=list(model.design.fixed_names), columns=COEF_COLUMNS)


def f_test(model, L, ddf="satterthwaite"):
    """lmerTest's contestMD: the F-test of Lβ = 0 -> dict with the anova-table columns."""
    method = normalize_ddf(ddf)
    L = np.atleast_2d(np.asarray(L, dtype=float))
    if L.shape[0] == 0:
        return dict(zip(ANOVA_COLUMNS, [np.nan] * 6))
    if method == "kenward-roger":
        return _f_kenward_roger(model, L)
    if L.shape[0] == 1:
        res = contrast_test(model, L[0], method)
        return _f_row(res["t value"] ** 2, 1, res["df"], model.sigma)
    d, P = np.linalg.eigh(L @ model.vcov.to_numpy() @ L.T)
    d, P = d[::-1], P[:, ::-1]
    pos = d > max(np.sqrt(np.finfo(float).eps) * d[0], 0)
    q = int(pos.sum())
    PtL = (P.T @ L)[:q]
    if q == 1:
        res = contrast_test(model, PtL[0], method)
        return _f_row(res["t value"] ** 2, 1, res["df"], model.sigma)
    F = float(np.sum((PtL @ model.fixef.to_numpy()) ** 2 / d[:q]) / q)
    if method == "residual":
        return _f_row(F, q, float(model.df_resid), model.sigma)
    nu = np.array([satterthwaite_df(model, row) for row in PtL])
    return _f_row(F, q, _fstat_ddf(nu), model.sigma)


def _fstat_ddf(nu, tol=1e-8):
    if len(nu) == 1:
        return float(nu[0])
    if np.all(np.abs(np.diff(nu)) < tol):
        return float(np.mean(nu))
    if np.any(nu <= 2):
        return 2.0
    E = np.sum(nu / (nu - 2))
    return float(2 * E / (E - len(nu)))


def _f_row(F, ndf, ddf, sigma, scale=1.0):
    mean_sq = F * sigma ** 2
    F = F * scale
    return dict(zip(ANOVA_COLUMNS, (mean_sq * ndf, mean_sq, ndf, ddf, F,
                                    scipy.stats.f.sf(F, ndf, ddf))))


def _f_kenward_roger(model, L):
    """pbkrtest::KRmodcomp(model, L) as lmerTest's anova shows it (all from the REML fit)."""
    reml = reml_version(model)
    parts = kenward_roger_parts(reml)
    q = int(np.linalg.matrix_rank(L))
    A1, A2 = _kr_a1_a2(L, parts.vcov, parts)
    df2, scaling = _kr_df(q, A1, A2)
    Lb = L @ parts.beta
    wald = float(Lb @ np.linalg.solve(L @ parts.vcov_adjusted @ L.T, Lb))
    return _f_row(wald / q, q, df2, model.sigma, scaling)


# ---- type III contrasts and anova_terms -------------------------------------------------------

def anova_terms(model, ddf="satterthwaite"):
    """lmerTest's anova(m): type III F-tests of each fixed term (Satterthwaite, Kenward–Roger or
    residual denominator df). Rows are the terms, columns Sum Sq, Mean Sq, NumDF, DenDF, F value,
    Pr(>F)."""
    method = normalize_ddf(ddf)
    contrasts = type3_contrasts(model)
    rows = {term: f_test(model, L, method) for term, L in contrasts.items()}
    table = pd.DataFrame.from_dict(rows, orient="index", columns=ANOVA_COLUMNS)
    title = {"satterthwaite": "Satterthwaite's", "kenward-roger": "Kenward-Roger's",
             "residual": "residual df"}[method]
    table.attrs["heading"] = f"Type III Analysis of Variance Table with {title} method"
    return table


def type3_contrasts(model):
    """{term label: L} as lmerTest's get_contrasts_type3 builds them (treatment contrasts)."""
    from .formula import parse_formula
    design = model.design
    if design.dropped_columns:
        raise ModelError(f"type III tests of '{design.formula}' need a full-rank fixed-effects design; "
                         f"drop the aliased column(s) {', '.join(design.dropped_columns)} from the formula")
    fixed = parse_formula(design.formula).fixed
    names = list(design.fixed_names)
    if not fixed.terms:
        return {}
    structure = _term_structure(fixed, names)
    labels = [_label(term) for term in fixed.terms]
    if len(names) <= 1 or len(fixed.terms) <= 1:
        return _type1_contrasts(design.X, structure, labels)
    return _type3_from_structure(fixed, names, structure, labels)


def _label(term):
    return ":".join(v.label for v in term)


@dataclass(frozen=True)
class _TermStructure:
    assign: list          # term index of each column (-1 for the intercept)
    kinds: dict           # variable label -> None (numeric) or tuple of levels (baseline first)
    terms: tuple          # the fixed terms with plain-name variables


def _term_structure(fixed, names):
    """Which columns belong to which term, and each variable's kind and levels, read back from
    the column names (R's naming: variable + level, ':' between the variables of a term)."""
    from .design import model_matrix
    from .formula import Name, Terms, Variable
    cols = names[1:] if fixed.intercept else names
    if fixed.intercept and names[:1] != ["(Intercept)"]:
        raise ModelError("the fixed-effects design has no '(Intercept)' column first; cannot map terms")
    parts = [c.split(":") for c in cols]
    blocks = _segment(fixed.terms, parts, 0, {})
    if blocks is None:
        raise ModelError(f"cannot map the columns {', '.join(names)} back to the terms of the formula; "
                         "type III tests are unavailable for this model")
    spans, info = blocks
    assign = ([-1] if fixed.intercept else []) + [k for k, (a, b) in enumerate(spans) for _ in range(a, b)]
    kinds = {}
    for label, levels in info.items():
        kinds[label] = None if levels is None else _levels_with_baseline(label, levels, fixed)
    plain = tuple(tuple(Variable(v.label, Name(v.label)) for v in term) for term in fixed.terms)
    structure = _TermStructure(assign, kinds, plain)
    frame = _synthetic_frame(structure)
    _, regenerated = model_matrix(Terms(fixed.intercept, plain), frame)
    if list(regenerated) != list(names):
        raise ModelError(f"cannot map the columns {', '.join(names)} back to the terms of the formula; "
                         "type III tests are unavailable for this model")
    return structure


def _segment(terms, parts, start, info):
    """Backtracking split of the column-name parts into one block per term."""
    if not terms:
        return ([], info) if start == len(parts) else None
    term = terms[0]
    end = start
    while end < len(parts) and len(parts[end]) == len(term) and all(
            p.startswith(v.label) for p, v in zip(parts[end], term)):
        end += 1
    for stop in range(end, start, -1):
        merged = _block_info(term, parts[start:stop], info)
        if merged is None:
            continue
        rest = _segment(terms[1:], parts, stop, merged)
        if rest is not None:
            return [(start, stop)] + rest[0], rest[1]
    return None


def _block_info(term, block, info):
    """Merge what one block says about its variables into info, or None if inconsistent."""
    merged = dict(info)
    sizes = []
    for i, variable in enumerate(term):
        comps = [part[i] for part in block]
        numeric = [c == variable.label for c in comps]
        if all(numeric):
            if merged.get(variable.label, None) is not None:
                return None
            merged[variable.label] = None
            sizes.append(1)
        elif not any(numeric):
            if variable.label in merged and merged[variable.label] is None:
                return None
            levels = list(dict.fromkeys(c[len(variable.label):] for c in comps))
            known = list(merged.get(variable.label) or [])
            merged[variable.label] = tuple(known + [lv for lv in levels if lv not in known])
            sizes.append(len(levels))
        else:
            return None
    return merged if int(np.prod(sizes)) == len(block) else None


def _levels_with_baseline(label, levels, fixed):
    """Levels in R's order; the baseline, never named when the variable is always coded by
    contrasts, gets a placeholder name."""
    present = {frozenset()} if fixed.intercept else set()
    present |= {frozenset(v.label for v in term) for term in fixed.terms}
    uncoded = any(label in {v.label for v in term} and
                  (frozenset(v.label for v in term) - {label}) not in present for term in fixed.terms)
    return tuple(levels) if uncoded else ("(baseline)",) + tuple(levels)


def _synthetic_frame(structure):
    """A balanced frame with every combination of factor levels and random numeric columns:
    type III contrasts depend only on the coding, not on the data, when X has full rank."""
    factors = {k: v for k, v in structure.kinds.items() if v is not None}
    numerics = [k for k, v in structure.kinds.items() if v is None]
    cells = list(product(*factors.values())) or [()]
    reps = len(numerics) * 2 + 3
    rows = [cell for cell in cells for _ in range(reps)]
    rng = np.random.default_rng(20240101)
    frame = {}
    for i, (label, levels) in enumerate(factors.items()):
        frame[label] = pd.Categorical([r[i] for r in rows], categories=list(levels))
    for label in numerics:
        frame[label] = rng.standard_normal(len(rows))
    return pd.DataFrame(frame) if frame else pd.DataFrame(index=range(len(rows)))


def _zapsmall(x, digits=7):
    mx = np.max(np.abs(x)) if x.size else 0.0
    return np.round(x, max(0, digits - int(np.ceil(np.log10(mx)))) if mx > 0 else digits)


def _type3_from_structure(fixed, names, structure, labels):
    from .design import model_matrix
    from .formula import Terms
    frame = _synthetic_frame(structure)
    X, _ = model_matrix(Terms(fixed.intercept, structure.terms), frame)
    rd_cols, rd_names = ([np.ones(len(frame))], ["(Intercept)"]) if fixed.intercept else ([], [])
    for term in structure.terms:
        block, block_names = model_matrix(Terms(False, (term,)), frame)
        rd_cols.append(block)
        rd_names += block_names
    rdX = np.column_stack(rd_cols)
    L = _zapsmall((np.linalg.pinv(X) @ rdX).T)           # rows: rdX columns, cols: X columns
    colmap = {k: [j for j, a in enumerate(structure.assign) if a == k] for k in range(len(labels))}
    contains = _containment(structure)
    order = sorted(range(len(labels)), key=lambda k: -len(structure.terms[k]))
    for k in order:
        if contains[k]:
            x = L[:, [j for c in contains[k] for j in colmap[c]]]
            y = L[:, colmap[k]]
            coef = np.linalg.lstsq(x, y, rcond=None)[0]
            L[:, colmap[k]] = _zapsmall(y - x @ coef)
    index = {name: i for i, name in enumerate(rd_names)}
    L = L[[index[name] for name in names]]
    out = {}
    for k, label in enumerate(labels):
        Lk = L[:, colmap[k]].T
        out[label] = Lk[np.abs(Lk).sum(axis=1) > 1e-8]
    return out


def _containment(structure):
    """lmerTest's containment: term j contains term k if its variables are a strict superset
    and both have the same numeric variables."""
    kinds = structure.kinds
    sets = [frozenset(v.label for v in term) for term in structure.terms]
    numerics = [frozenset(x for x in s if kinds[x] is None) for s in sets]
    return [[j for j in range(len(sets)) if sets[k] < sets[j] and numerics[k] == numerics[j]]
            for k in range(len(sets))]


def _type1_contrasts(X, structure, labels):
    """lmerTest's get_contrasts_type1 (used when the model has a single term)."""
    p = X.shape[1]
    if p == 1 and structure.assign == [-1]:
        return {}
    L = np.eye(1) if p == 1 else _doolittle(X.T @ X).T
    return {label: L[[j for j, a in enumerate(structure.assign) if a == k]]
            for k, label in enumerate(labels)}


def _doolittle(x, eps=1e-6):
    n = x.shape[0]
    L, U = np.eye(n), np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            U[i, j] = x[i, j] - L[i, :i] @ U[:i, j]
        for j in range(i + 1, n):
            L[j, i] = x[j, i] - L[j, :i] @ U[:i, i]
            L[j, i] = 0.0 if abs(U[i, i]) < eps else L[j, i] / U[i, i]
    L[np.abs(L) < eps] = 0.0
    return L


# ---- variance parameters on lme4's sd/cor scale ------------------------------------------------

def varpar_names(model):
    """lme4's names for the variance parameters (oldNames = FALSE): sd_x|g, cor_x.y|g, sigma."""
    names = []
    for term in model.design.terms:
        cols, rows = np.triu_indices(term.q)
        for r, c in zip(rows, cols):
            names.append(f"sd_{term.columns[r]}|{term.group}" if r == c else
                         f"cor_{term.columns[r]}.{term.columns[c]}|{term.group}")
    return names + ["sigma"]


def sdcor_from_theta(deviance_function, theta, sigma):
    """lme4's Cv_to_Sv: θ -> standard deviations and correlations, in θ's order (a
    correlation with a zero standard deviation is NaN, as in lme4)."""
    out = []
    for (rows, cols, _), lam in zip(deviance_function.theta_indices, deviance_function.factors(theta)):
        cov = sigma ** 2 * lam @ lam.T
        sd = np.sqrt(np.diag(cov))
        for r, c in zip(rows, cols):
            if r == c:
                out.append(sd[r])
            else:
                out.append(cov[r, c] / (sd[r] * sd[c]) if sd[r] > 0 and sd[c] > 0 else np.nan)
    return np.array(out)


def theta_from_sdcor(deviance_function, sdcor, sigma):
    """lme4's Sv_to_Cv: standard deviations and correlations -> θ (relative to σ)."""
    theta = np.zeros(len(sdcor))
    for (rows, cols, positions), term in zip(deviance_function.theta_indices, deviance_function.terms):
        values = np.asarray(sdcor)[positions]
        sd = np.zeros(term.q)
        corr = np.eye(term.q)
        for (r, c), v in zip(zip(rows, cols), values):
            if r == c:
                sd[r] = v
            else:
                corr[r, c] = corr[c, r] = v
        chol = _semidefinite_cholesky(np.outer(sd, sd) * corr / sigma ** 2)
        theta[positions] = chol[rows, cols]
    return theta


def _semidefinite_cholesky(m):
    """Lower Cholesky factor that leaves zero columns where m is only semidefinite."""
    q = m.shape[0]
    L = np.zeros_like(m)
    for j in range(q):
        d = m[j, j] - L[j, :j] @ L[j, :j]
        if d <= 1e-14 * max(m[j, j], 1e-300):
            continue
        L[j, j] = np.sqrt(d)
        for i in range(j + 1, q):
            L[i, j] = (m[i, j] - L[i, :j] @ L[j, :j]) / L[j, j]
    return L


# ---- confidence intervals -------------------------------------------------------------------

def confint(model, method="profile", level=0.95, parm=None, nsim=500, seed=1, progress=None):
    """lme4's confint(m, method=, oldNames = FALSE): a DataFrame indexed by parameter name
    ("sd_(Intercept)|id", "cor_ses.(Intercept)|id", "sigma", then the fixed effects) with the
    lower and upper limits as columns named as R names them ("2.5 %", "97.5 %").

    profile: lme4's likelihood profile of the ML deviance (a REML fit is refitted by ML, as
    lme4 does); Wald: fixed effects only (variance parameters NaN); boot: seeded parametric
    bootstrap with `nsim` refits and percentile limits (progress bar on a terminal).
    """
    if not 0 < level < 1:
        raise ModelError(f"level {level} must be between 0 and 1, e.g. 0.95")
    key = str(method).lower()
    if key not in ("profile", "wald", "boot"):
        raise ModelError(f"confint method '{method}' is unknown; use 'profile', 'wald' or 'boot'")
    names = varpar_names(model) + list(model.design.fixed_names)
    wanted = _which(names, parm)
    alpha = (1 - level) / 2
    columns = [_percent(alpha), _percent(1 - alpha)]
    if key == "wald":
        z = scipy.stats.norm.ppf([alpha, 1 - alpha])
        se = np.sqrt(np.diag(model.vcov.to_numpy()))
        limits = np.full((len(names), 2), np.nan)
        limits[-len(se):] = model.fixef.to_numpy()[:, None] + se[:, None] * z
    elif key == "profile":
        return pd.DataFrame(_profile_confint(model, level, wanted), index=wanted, columns=columns)
    else:
        limits = _boot_confint(model, level, nsim, seed, progress)
    return pd.DataFrame(limits, index=names, columns=columns).loc[wanted]


def _percent(p):
    return f"{100 * p:.3g} %"


def _which(names, parm):
    if parm is None:
        return list(names)
    parm = [parm] if isinstance(parm, str) else list(parm)
    for name in parm:
        if name not in names:
            raise ModelError(f"parameter '{name}' is not in the model; use one of {', '.join(names)}")
    return parm


# ---- profile (lme4's profile.merMod and confint.thpr) -----------------------------------------

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
    names = varpar_names(ml) + list(ml.design.fixed_names)
    wanted = _which(names, which)
    profiler = _Profiler(ml, alphamax, maxpts, delta_cutoff, maxmult)
    out = {}
    for name in wanted:
        index = names.index(name)
        out[name] = profiler.varpar(index) if index < profiler.nvp else profiler.fixed(index - profiler.nvp)
    return out


class _Profiler:
    """The state lme4's profile.merMod keeps while it walks each parameter."""

    def __init__(self, ml, alphamax, maxpts, delta_cutoff, maxmult):
        self.ml, self.dev = ml, ml.deviance_function
        self.nth = len(ml.theta)
        self.nvp = self.nth + 1
        self.opt = np.nan_to_num(np.append(sdcor_from_theta(self.dev, ml.theta, ml.sigma), ml.sigma))
        self.base = ml.objective
        self.se = np.sqrt(np.diag(ml.vcov.to_numpy()))
        nptot = self.nvp + ml.design.p
        self.cutoff = np.sqrt(scipy.stats.chi2.ppf(1 - alphamax, nptot))
        self.delta = self.cutoff * delta_cutoff
        self.maxpts, self.maxmult = maxpts, maxmult
        bounded = np.isfinite(self.dev.lower)
        self.lower = np.append(np.where(bounded, 0.0, -1.0), 0.0)
        self.upper = np.append(np.where(bounded, np.inf, 1.0), np.inf)
        self.messages = []

    # -- the deviance in (sd, cor, σ), β profiled out (lme4's devfun2) --
    def deviance(self, vp):
        sigma = vp[-1]
        theta = theta_from_sdcor(self.dev, vp[:-1], sigma)
        return varpar_deviance(self.dev, self.dev.evaluate(theta), sigma)

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
        from .deviance import ProfiledDeviance
        design = self.ml.design
        keep = np.arange(design.p) != j
        reduced = replace(design, X=design.X[:, keep],
                          fixed_names=tuple(n for n, k in zip(design.fixed_names, keep) if k))
        xj, est = design.X[:, j], self.ml.fixef.to_numpy()[j]
        summary = self.ml.optsummary

        def zeta(fw, start=None):
            dev = ProfiledDeviance(replace(reduced, y=design.y - xj * fw), reml=False)
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
        names = varpar_names(self.ml) + list(self.ml.design.fixed_names)
        return names[index]

    def _note(self, message):
        if message not in self.messages:
            self.messages.append(message)
            log.warning(message)


def _minimize_theta(dev, summary, start):
    """The minimum of a profiled deviance over θ with the fit's optimizer, from `start`
    (lme4's kludge: 0.001 instead of an all-zero start)."""
    from .optimize import optimize
    start = np.where(np.all(start == 0), 0.001, start)
    try:
        return optimize(dev, summary.optimizer, summary.control, start=start)[1].fmin
    except ModelError:  # the optimizer gave up from this start (e.g. NLopt's roundoff limit)
        return optimize(dev, summary.optimizer, summary.control, start=dev.initial_theta())[1].fmin


def _minimize_bounded(f, start, lower, upper):
    """BOBYQA (as lme4 profiles with the fit's optimizer) within [lower, upper]."""
    x0 = np.clip(np.asarray(start, dtype=float), lower, upper)
    if np.all(x0 == 0):
        x0[:] = 0.001
    opt = nlopt.opt(nlopt.LN_BOBYQA, len(x0))
    opt.set_lower_bounds(lower)
    opt.set_upper_bounds(upper)
    opt.set_min_objective(lambda x, grad: float(f(x)))
    opt.set_ftol_rel(1e-12)
    opt.set_ftol_abs(1e-10)
    opt.set_xtol_abs(1e-10)
    opt.set_maxeval(10000)
    opt.set_initial_step(np.maximum(0.1 * np.abs(x0), 1e-3))
    try:
        x = opt.optimize(x0)
        opt.set_initial_step(np.maximum(0.1 * np.abs(x), 1e-3))
        x = opt.optimize(x)  # a restart from the optimum: BOBYQA can stall on these flat profiles
        return opt.last_optimum_value(), x
    except (nlopt.RoundoffLimited, ValueError):
        return float(f(x0)), x0


def _profile_confint(model, level, wanted):
    profiles = profile(model, which=wanted)
    z = scipy.stats.norm.ppf([(1 - level) / 2, (1 + level) / 2])
    limits = []
    for name in wanted:
        prof = profiles[name]
        limit = _interpolate_profile(prof, z)
        for k, bound in enumerate((prof.lower_bound, prof.upper_bound)):
            if np.isnan(limit[k]) and not np.isnan(bound):
                limit[k] = bound
        limits.append(limit)
    return np.array(limits)


def _interpolate_profile(prof, z):
    """confint.thpr: invert the interpolating spline of ζ(x) (splines::backSpline); when the
    profile is not monotone, fall back to linear interpolation of x(ζ) as lme4 does."""
    ok = ~np.isnan(prof.zeta)
    x, zeta = prof.values[ok], prof.zeta[ok]
    try:
        return _back_spline_predict(x, zeta, z)
    except ValueError:
        if ok.sum() == 0 or np.all(np.diff(prof.zeta) < -0.01):
            log.warning("bad profile for %s", prof.name)
            return np.array([np.nan, np.nan])
        log.warning("bad spline fit for %s: falling back to linear interpolation", prof.name)
        return _approx(zeta, x, z)


def _approx(x, y, at):
    """R's approxfun(x, y)(at): ties in x averaged, NaN outside the range."""
    frame = pd.DataFrame({"x": x, "y": y}).groupby("x", sort=True)["y"].mean()
    xs, ys = frame.index.to_numpy(), frame.to_numpy()
    out = np.interp(at, xs, ys)
    return np.where((at < xs[0]) | (at > xs[-1]), np.nan, out)


def _back_spline_predict(x, zeta, at):
    """predict(backSpline(interpSpline(zeta ~ x)), at) for increasing ζ."""
    if len(x) < 4 or np.any(np.diff(x) <= 0):
        raise ValueError("too few or repeated points for a spline")
    adiff = np.diff(zeta)
    if not np.all(adiff > 0):
        raise ValueError("spline must be monotone")
    slope = scipy.interpolate.CubicSpline(x, zeta, bc_type="natural")(x, 1)
    kdiff = np.diff(x)
    nk = len(x)
    b = np.full((nk, 4), np.nan)
    b[:, 0] = x
    b[:, 1] = 1 / slope
    for i in range(nk - 1):
        a = np.array([[adiff[i] ** 2, adiff[i] ** 3], [2 * adiff[i], 3 * adiff[i] ** 2]])
        b[i, 2:4] = np.linalg.solve(a, [kdiff[i] - adiff[i] * b[i, 1], b[i + 1, 1] - b[i, 1]])
    b[nk - 1, 1:] = np.nan
    if nk > 2:
        b[0, 3] = b[nk - 2, 3] = 0.0
        b[0, 1:3] = np.linalg.solve(np.array([[adiff[0], adiff[0] ** 2], [1, 2 * adiff[0]]]),
                                    [kdiff[0], 1 / slope[1]])
        b[nk - 2, 2] = (kdiff[-1] - adiff[-1] * b[nk - 2, 1]) / adiff[-1] ** 2
    if b[0, 2] > 0:
        b[0, 2], b[0, 1] = 0.0, kdiff[0] / adiff[0]
    if b[nk - 2, 2] < 0:
        b[nk - 2, 2], b[nk - 2, 1] = 0.0, kdiff[-1] / adiff[-1]
    out = np.full(len(at), np.nan)
    for k, value in enumerate(at):
        if value < zeta[0] or value > zeta[-1]:
            continue
        i = max(0, int(np.searchsorted(zeta, value, side="left")) - 1)
        d = value - zeta[i]
        out[k] = b[i, 0] + d * (b[i, 1] + d * (b[i, 2] + d * b[i, 3]))
    return out


# ---- parametric bootstrap (lme4's bootMer and confint(method = "boot")) ----------------------

@dataclass(frozen=True)
class Bootstrap:
    """Parameter estimates of `nsim` refits to responses simulated from the fitted model."""
    replicates: pd.DataFrame   # nsim × (sd/cor..., sigma, fixed effects)
    estimate: pd.Series        # the same parameters of the original fit
    n_failed: int
    n_singular: int
    seed: object


def bootstrap(model, nsim=500, seed=1, progress=None):
    """Seeded parametric bootstrap: simulate y* = Xβ̂ + Zb* + ε* (b* ~ N(0, σ̂²ΛΛ'),
    ε* ~ N(0, σ̂²)) with numpy's default_rng(seed), refit each (same REML setting, optimizer and
    start θ̂) and collect the sd/cor, σ and fixed-effect estimates."""
    from .deviance import ProfiledDeviance
    from .optimize import is_singular, optimize
    if int(nsim) < 2:
        raise ModelError(f"nsim = {nsim} is too small for a bootstrap; use e.g. nsim=500")
    rng = np.random.default_rng(seed)
    design, dev = model.design, model.deviance_function
    names = varpar_names(model) + list(design.fixed_names)
    mean = design.X @ model.fixef.to_numpy()
    summary = model.optsummary
    rows, failed, singular = [], 0, 0
    for _ in _progress(range(int(nsim)), int(nsim), "bootstrap", progress):
        y = mean + _simulate_random(model, rng) + model.sigma * rng.standard_normal(design.n)
        try:
            dev_star = ProfiledDeviance(replace(design, y=y), reml=model.REML)
            theta = optimize(dev_star, summary.optimizer, summary.control, start=model.theta)[0]
            ev = dev_star.evaluate(theta)
            sigma = dev_star.sigma(ev)
            rows.append(np.concatenate([sdcor_from_theta(dev, theta, sigma), [sigma],
                                        dev_star.fixed_effects(ev)]))
            singular += is_singular(theta, dev.lower)
        except (ArithmeticError, ValueError, RuntimeError, np.linalg.LinAlgError, ModelError):
            failed += 1
            rows.append(np.full(len(names), np.nan))
    if singular:
        log.info("%d of %d bootstrap refits were singular", singular, nsim)
    if failed:
        log.warning("%d of %d bootstrap refits failed", failed, nsim)
    estimate = np.concatenate([sdcor_from_theta(dev, model.theta, model.sigma), [model.sigma],
                               model.fixef.to_numpy()])
    return Bootstrap(pd.DataFrame(rows, columns=names), pd.Series(estimate, index=names),
                     failed, singular, seed)


def _simulate_random(model, rng):
    """Zb* for b* = σ̂ Λ u, u ~ N(0, I), term by term."""
    out = np.zeros(model.design.n)
    for term, lam in zip(model.design.terms, model.deviance_function.evaluate(model.theta).factors):
        b = model.sigma * rng.standard_normal((term.nlevels, term.q)) @ lam.T
        out += np.einsum("nq,nq->n", term.matrix, b[term.codes])
    return out


def _progress(iterable, total, label, enabled):
    """Yield from iterable, drawing a one-line progress bar on stderr when it is a terminal."""
    show = sys.stderr.isatty() if enabled is None else bool(enabled)
    for i, item in enumerate(iterable, start=1):
        yield item
        if show:
            filled = int(30 * i / total)
            sys.stderr.write(f"\r{label} [{'#' * filled}{'.' * (30 - filled)}] {i}/{total}")
            if i == total:
                sys.stderr.write("\n")
            sys.stderr.flush()


def _boot_confint(model, level, nsim, seed, progress):
    run = lambda: bootstrap(model, nsim, seed, progress)
    boot = run() if seed is None else _cached(model, ("bootstrap", int(nsim), seed), run)
    alpha = np.array([(1 - level) / 2, (1 + level) / 2])
    return np.array([percentile_interval(boot.replicates[c].to_numpy(), alpha)
                     for c in boot.replicates.columns])


def percentile_interval(t, alpha):
    """boot.ci(type = "perc"): the (R+1)α-th order statistics, interpolated on the normal
    quantile scale between neighbours (boot's norm.inter)."""
    t = np.sort(t[np.isfinite(t)])
    R = len(t)
    if R == 0:
        return np.full(len(alpha), np.nan)
    rk = (R + 1) * alpha
    k = np.trunc(rk).astype(int)
    out = np.empty(len(alpha))
    for i, (ki, rki, a) in enumerate(zip(k, rk, alpha)):
        if ki == rki and 0 < ki <= R:
            out[i] = t[ki - 1]
        elif ki <= 0:
            out[i] = t[0]
        elif ki >= R:
            out[i] = t[-1]
        else:
            z, z1, z2 = scipy.stats.norm.ppf([a, ki / (R + 1), (ki + 1) / (R + 1)])
            out[i] = t[ki - 1] + (z - z1) / (z2 - z1) * (t[ki] - t[ki - 1])
    return out
