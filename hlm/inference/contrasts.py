"""t- and F-tests of fixed effects as lmerTest computes them: one contrast (contest1D), several
(contestMD), the coefficient table and the type III anova table of a model.
"""
import numpy as np
import pandas as pd
import scipy.linalg
import scipy.special

from ..vocabulary import DDF_TITLES, ddf_method
from .cache import reml_version
from .kenward_roger import _kr_a1_a2, _kr_df, kenward_roger_parts, lb_ddf
from .satterthwaite import satterthwaite_df
from .type3 import type3_contrasts

COEF_COLUMNS = ["Estimate", "Std. Error", "df", "t value", "Pr(>|t|)"]


ANOVA_COLUMNS = ["Sum Sq", "Mean Sq", "NumDF", "DenDF", "F value", "Pr(>F)"]


def contrast_test(model, L, ddf="Satterthwaite"):
    """lmerTest's contest1D: the t-test of L'β = 0 -> dict with the coef-table columns."""
    method = ddf_method(ddf)
    L = np.asarray(L, dtype=float)
    estimate = float(L @ model.fixef.to_numpy())
    if method == "Kenward-Roger":
        parts = kenward_roger_parts(model)
        variance = float(L @ parts.vcov_adjusted @ L)
        df = lb_ddf(L, model.vcov.to_numpy(), parts)
    else:
        variance = float(L @ model.vcov.to_numpy() @ L)
        df = {"Satterthwaite": lambda: satterthwaite_df(model, L), "residual": lambda: float(model.df_resid),
              "lme4": lambda: np.inf}[method]()   # lme4: a Wald z test
    se = np.sqrt(variance)
    t = estimate / se
    p = 2 * scipy.special.stdtr(df, -abs(t))   # t's upper tail
    return dict(zip(COEF_COLUMNS, (estimate, se, df, t, p)))


def coef_table(model, ddf="Satterthwaite"):
    """Estimate, Std. Error, df, t value, Pr(>|t|) of every fixed effect (lmerTest's summary)."""
    p = model.design.p
    rows = [contrast_test(model, np.eye(p)[j], ddf) for j in range(p)]
    return pd.DataFrame(rows, index=list(model.design.fixed_names), columns=COEF_COLUMNS)


def f_test(model, L, ddf="Satterthwaite"):
    """lmerTest's contestMD: the F-test of Lβ = 0 -> dict with the anova-table columns."""
    method = ddf_method(ddf)
    L = np.atleast_2d(np.asarray(L, dtype=float))
    if L.shape[0] == 0:
        return dict(zip(ANOVA_COLUMNS, [np.nan] * 6))
    if method == "Kenward-Roger":
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
                                    scipy.special.fdtrc(ndf, ddf, F))))


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


def anova_terms(model, ddf="Satterthwaite"):
    """lmerTest's anova(m): type III F-tests of each fixed term (Satterthwaite, Kenward–Roger or
    residual denominator df). Rows are the terms, columns Sum Sq, Mean Sq, NumDF, DenDF, F value,
    Pr(>F)."""
    method = ddf_method(ddf)
    contrasts = type3_contrasts(model)
    rows = {term: f_test(model, L, method) for term, L in contrasts.items()}
    table = pd.DataFrame.from_dict(rows, orient="index", columns=ANOVA_COLUMNS)
    title = DDF_TITLES[method]
    table.attrs["heading"] = f"Type III Analysis of Variance Table with {title} method"
    return table
