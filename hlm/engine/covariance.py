"""The covariance layout of the random effects: θ <-> Λ <-> standard deviations and correlations.

One place for lme4's conventions: θ holds each term's lower-triangular relative factor Λ_k column
by column, diagonal entries bounded below by 0; VarCorr = σ²Λ_kΛ_k'; parameter names as lme4's
(oldNames = FALSE).
"""


import numpy as np


def lower_triangle_indices(q):
    """(rows, cols) of a q×q lower triangle in lme4's θ order: column by column."""
    cols, rows = np.triu_indices(q)
    return rows, cols


def theta_lower_bounds(terms):
    """0 for the diagonal of each relative covariance factor, -inf off the diagonal."""
    bounds = []
    for term in terms:
        rows, cols = lower_triangle_indices(term.q)
        bounds += [0.0 if r == c else -np.inf for r, c in zip(rows, cols)]
    return np.array(bounds)


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
