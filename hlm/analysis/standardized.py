"""Standardized fixed effects as R's effectsize::standardize_parameters gives them for lmer models.

- refit: every numeric column of the model's rows except the grouping factors z-scored
  (the response too), the model fitted again on them (datawizard's standardize(model)).
- pseudo (Hoffman 2015, p. 342): each coefficient times SD(x) / SD(y) at the predictor's level.
  A term is within-group when one of its variables varies within the groups: SD(x) of its column
  over all rows, SD(y) = σ of the random-intercept model; otherwise SD(x) of the column's group
  means and SD(y) = √τ00 of that model (fitted by REML on the same rows).

Both give 95% intervals as parameters::model_parameters does for lmer models:
estimate ± t(.975, df.residual) × SE, with lme4's df.residual (N − all parameters).
"""
import numpy as np
import pandas as pd
import scipy.stats

from ..engine.design import build_design
from ..engine.model import fit_design
from ..errors import ModelError
from ..vocabulary import STANDARDIZED_METHODS

LEVEL = 0.95
WITHIN_TOLERANCE = 1e-5   # performance::check_heterogeneity_bias: a within part above this varies


def standardized(model, data, method):
    """A table (index: coefficient names) of Std_Coefficient, CI_low and CI_high by `method`
    (refit or pseudo); `data` is the table the model was fitted to."""
    if method not in STANDARDIZED_METHODS:
        raise ModelError(f"standardized method '{method}' is not known; use {' or '.join(STANDARDIZED_METHODS)}")
    return refit_standardized(model, data) if method == "refit" else pseudo_standardized(model, data)


def wald_table(model):
    """Estimate and the 95% interval with lme4's df.residual, as parameters::model_parameters."""
    se = np.sqrt(np.diag(model.vcov.to_numpy()))
    q = scipy.stats.t.ppf((1 + LEVEL) / 2, model.df_resid)
    estimate = model.fixef.to_numpy()
    return pd.DataFrame({"Std_Coefficient": estimate, "CI_low": estimate - q * se, "CI_high": estimate + q * se},
                        index=model.fixef.index)


def refit_standardized(model, data):
    """The model fitted again on its rows with every numeric non-grouping column z-scored."""
    rows = data.iloc[model.design.rows].reset_index(drop=True)
    groups = grouping_columns(model)
    for column in model.design.data_columns:
        if column not in groups and rows[column].dtype.kind in "fiu":
            values = rows[column].astype(float)
            rows[column] = (values - values.mean()) / values.std(ddof=1)
    refitted = fit_design(build_design(model.formula, rows), REML=model.REML,
                          optimizer=model.optsummary.optimizer, control=model.optsummary.control,
                          model_class=type(model))
    return wald_table(refitted)


def pseudo_standardized(model, data):
    """Each coefficient and its interval scaled by SD(x) / SD(y) at the predictor's level."""
    design = model.design
    groups = {term.group for term in design.terms}
    if len(groups) != 1:
        raise ModelError(f"pseudo standardization needs one grouping factor, and the model "
                         f"'{model.formula}' has {len(groups)}; use report.standardized: refit")
    (group,) = groups
    codes = design.terms[0].codes
    sd_within, sd_between = _response_sds(model, data, group)
    scale = []
    for j, term_index in enumerate(design.assign):
        column = design.X[:, j]
        if term_index == 0:
            scale.append(0.0)
        elif _is_within(design, design.fixed_terms[term_index - 1], group):
            scale.append(np.std(column, ddof=1) / sd_within)
        else:
            means = pd.Series(column).groupby(codes).mean().to_numpy()
            scale.append(np.std(means, ddof=1) / sd_between)
    return wald_table(model).mul(np.array(scale), axis=0)


def _is_within(design, term, group):
    """A term is within-group when one of its variables is not constant within the groups."""
    return any(group not in design.variable(name).constant_within for name in term.variables)


def _response_sds(model, data, group):
    """σ and √τ00 of the REML random-intercept model of the response on the model's rows."""
    rows = data.iloc[model.design.rows].reset_index(drop=True)
    null = fit_design(build_design(f"{model.design.response} ~ 1 + (1 | {group})", rows), REML=True)
    tau00 = null.varcorr.loc[null.varcorr["grp"] != "Residual", "vcov"].iloc[0]
    return null.sigma, float(np.sqrt(tau00))


def grouping_columns(model):
    """The data columns that name the model's grouping factors ('school:class' -> both)."""
    return {part for term in model.design.terms for part in term.group.split(":")}
