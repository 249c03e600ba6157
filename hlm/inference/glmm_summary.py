"""A fitted GLMM as glmer's summary() prints it and as a JSON-ready dict.

The layout is lme4's (summary.merMod for a glmerMod): the method, family and link, the fit
statistics, Pearson residuals as the scaled residuals, the variances (no residual row), then
Wald z tests; numbers formatted as summary.py formats lmer's.
"""
import numpy as np

from .summary import (
    coefficient_lines,
    fit_statistics_lines,
    fixed_correlation_lines,
    format_column,
    random_effects_lines,
    table_lines,
)


def method_title(model):
    """lme4's methTitle for a GLMM (which names nAGQ = 0 a quadrature too)."""
    approximation = ("Laplace Approximation" if model.nAGQ == 1
                     else f"Adaptive Gauss-Hermite Quadrature, nAGQ = {model.nAGQ}")
    return f"Generalized linear mixed model fit by maximum likelihood ({approximation})"


def format_glmm_summary(model):
    """summary(m) as lme4 prints it for a glmer fit."""
    groups = "; ".join(f"{name}, {count}" for name, count in model.ngroups.items())
    lines = [method_title(model), f" Family: {model.family}  ( {model.link} )", f"Formula: {model.formula}"]
    if model.response.weights_name:
        lines.append(f"Weights: {model.response.weights_name}")
    quantiles = np.quantile(model.residuals("pearson"), [0, 0.25, 0.5, 0.75, 1])
    lines += [""] + fit_statistics_lines(model) + ["", "Scaled residuals: "]
    lines += table_lines([["Min", "1Q", "Median", "3Q", "Max"], format_column(quantiles)], [True] * 5)
    lines += ["", "Random effects:"] + random_effects_lines(model)
    lines += [f"Number of obs: {model.nobs}, groups:  {groups}", "", "Fixed effects:"]
    lines += coefficient_lines(model.coef_table()) + fixed_correlation_lines(model)
    if model.n_dropped:
        lines += ["", f"{model.n_dropped} rows with missing values were dropped."]
    lines += [""] + list(model.messages) if model.messages else []
    return "\n".join(lines) + "\n"


def glmm_dict(model):
    """Every number of the fit, with the key names of the glmer reference JSON (glmm_lme4.json)."""
    table = model.coef_table()
    names = list(table.index)
    vcov = model.vcov.to_numpy()
    sd = np.sqrt(np.diag(vcov))
    gradient, hessian = model.derivatives if model.derivatives is not None else (None, None)
    return {
        "formula": model.formula, "family": model.family, "link": model.link, "nAGQ": model.nAGQ,
        "weights": model.response.weights_name,
        "nobs": model.nobs, "n_dropped": model.n_dropped, "ngroups": model.ngroups, "npar": model.npar,
        "df_resid": model.df_resid, "logLik": model.loglik, "AIC": model.aic, "BIC": model.bic,
        "deviance": model.deviance, "deviance_residuals_ss": model.residual_deviance,
        "theta": model.theta.tolist(),
        "fixef": dict(zip(names, table["Estimate"].tolist())),
        "se": dict(zip(names, table["Std. Error"].tolist())),
        "z": dict(zip(names, table["z value"].tolist())),
        "p": dict(zip(names, table["Pr(>|z|)"].tolist())),
        "vcov": vcov.tolist(), "cor_fixef": (vcov / np.outer(sd, sd)).tolist(),
        "gradient": None if gradient is None else gradient.tolist(),
        "hessian": None if hessian is None else hessian.tolist(),
        "varcorr": [{"grp": r.grp, "var1": r.var1 or "", "var2": r.var2 or "", "vcov": r.vcov, "sdcor": r.sdcor}
                    for r in model.varcorr.itertuples()],
        "singular": model.is_singular, "converged": model.converged, "messages": list(model.messages),
        "ranef": {group: {"levels": [str(level) for level in frame.index],
                          "values": {column: frame[column].tolist() for column in frame.columns}}
                  for group, frame in model.ranef.items()},
        "fitted_head": model.fitted[:10].tolist(),
        "pearson_quantiles": np.quantile(model.residuals("pearson"), [0, .25, .5, .75, 1]).tolist(),
        "optsummary": model.optsummary.to_dict(),
        "start_theta": list(model.start_theta),
    }
