"""Model comparison and derived statistics against lme4 / performance / the seed (tests/fixtures).

Tolerances are DESIGN.md's: logLik, deviance, AIC, BIC within 1e-3 absolute; p, ICC and R²
within 1e-3 relative; fixed effects 1e-5 and standard errors 1e-4 relative; variances 1e-3.
"""

import numpy as np
import pytest
from conftest import (
    ALL_MODELS,
    CLASSIC,
    CLASSIC_REF,
    DF_RTOL,
    EXTRA,
    FIXEF_RTOL,
    HSB,
    HSB_REF,
    LL_ATOL,
    P_RTOL,
    SE_RTOL,
    reference,
)

import hlm
from hlm.errors import ModelError

STAT_RTOL = P_RTOL  # ICC and R² as p-values


# ---- likelihood-ratio tests (lme4's anova) ---------------------------------------------------------

LRT_CASES = [
    # R: anova(lmm_random_coef, lmm_null)  (the seed)
    ("hsb", ["random_slope", "null"], HSB_REF["comparisons"]["random_slope_vs_null"]),
    # R: anova(lmm_full, lmm_random_coef)  (the seed)
    ("hsb", ["full", "random_slope"], HSB_REF["comparisons"]["full_vs_random_slope"]),
    # R: anova(sleepstudy_ml, sleepstudy_uncorr)
    ("classic", ["sleepstudy_ml", "sleepstudy_uncorr"], CLASSIC_REF["comparisons"]["sleepstudy_ml_vs_uncorr"]),
]


@pytest.mark.parametrize("suite,names,ref", LRT_CASES)
def test_anova_lrt(models, suite, names, ref):
    table = hlm.anova(*[models.fit(suite, n) for n in names], names=names)
    assert list(table.columns) == ["npar", "AIC", "BIC", "logLik", "deviance", "Chisq", "Df", "Pr(>Chisq)"]
    assert list(table["npar"]) == ref["npar"]              # rows ordered by npar, as lme4
    for column in ("AIC", "BIC", "logLik", "deviance"):
        assert table[column].to_numpy() == pytest.approx(ref[column], abs=LL_ATOL), column
    last = table.iloc[-1]
    assert last["Chisq"] == pytest.approx(ref["Chisq"], abs=2 * LL_ATOL)
    assert last["Df"] == ref["Df"]
    assert last["Pr(>Chisq)"] == pytest.approx(ref["p"], rel=P_RTOL)
    assert np.isnan(table.iloc[0]["Chisq"]) and table.attrs["refitted"] is False


def test_anova_refits_reml_by_ml(models):
    # R: anova(full_reml, null) says "refitting model(s) with ML (instead of REML)"; the REML
    # fit of mathach ~ ses * disclim + (ses | id) refitted by ML is the seed's full model
    table = hlm.anova(null=models.fit("hsb", "null"), full=models.fit("hsb", "full_reml"))
    assert table.attrs["refitted"] and table.attrs["note"] == "refitting model(s) with ML (instead of REML)"
    assert table.loc["full", "logLik"] == pytest.approx(HSB["full"]["logLik"], abs=LL_ATOL)
    assert table.loc["null", "logLik"] == pytest.approx(HSB["null"]["logLik"], abs=LL_ATOL)
    assert list(table.index) == ["null", "full"]


def test_anova_refuses_different_rows(models):
    data = models.frame("hsb", "null")
    subset = hlm.lmer(HSB["null"]["formula"], data.iloc[:5000], REML=False)
    with pytest.raises(ModelError, match="different rows: 'MODEL1' has 7185 observations, 'MODEL2' 5000"):
        hlm.anova(models.fit("hsb", "null"), subset)


def test_anova_refuses_different_responses(models):
    other = hlm.lmer("ses ~ 1 + (1 | id)", models.frame("hsb", "null"), REML=False)
    with pytest.raises(ModelError, match="different responses: 'MODEL1' to 'mathach', 'MODEL2' to 'ses'"):
        hlm.anova(models.fit("hsb", "null"), other)


def test_anova_needs_two_models(models):
    with pytest.raises(ModelError, match="two or more models"):
        hlm.anova(models.fit("hsb", "null"))


# ---- ICC and R² (performance) ------------------------------------------------------------------

def test_icc_of_the_null_model_is_the_seeds(models):
    # R: reghelper::ICC(lmm_null) -> 0.1793109 (= tau00 / (tau00 + sigma^2))
    assert hlm.icc(models.fit("hsb", "null")) == pytest.approx(HSB_REF["derived"]["icc_null"], rel=STAT_RTOL)


@pytest.mark.parametrize("suite,name", ALL_MODELS)
def test_icc_and_r2_nakagawa(models, suite, name):
    # R: performance::icc(m)$ICC_adjusted; performance::r2_nakagawa(m) (NA for a singular fit)
    ref = reference(suite, name)
    model = models.fit(suite, name)
    icc = hlm.icc(model)
    marginal, conditional = hlm.r2_nakagawa(model)
    if ref["icc_adjusted"] is None:
        assert np.isnan(icc) and np.isnan(conditional)
        return
    assert icc == pytest.approx(ref["icc_adjusted"], rel=STAT_RTOL)
    assert marginal == pytest.approx(ref["r2_marginal"], rel=STAT_RTOL, abs=1e-12)
    assert conditional == pytest.approx(ref["r2_conditional"], rel=STAT_RTOL)


# ---- variance explained (the seed's level-1 and level-2 formulas) ---------------------------------

def test_variance_explained_level_1(models):
    # R: (sigma2_null - sigma2_ses) / sigma2_null -> 0.05918107  (the seed)
    values = hlm.variance_explained(models.fit("hsb", "null"), models.fit("hsb", "random_slope"))
    assert list(values.index) == ["Residual", "id: (Intercept)"]
    assert values["Residual"] == pytest.approx(HSB_REF["derived"]["r2_level1_ses"], rel=STAT_RTOL)


def test_variance_explained_level_2(models):
    # R: (tau00_ses - tau00_full) / tau00_ses -> 0.2331468; (tau11_ses - tau11_full) / tau11_ses -> 0.6068091
    values = hlm.variance_explained(models.fit("hsb", "random_slope"), models.fit("hsb", "full"))
    assert list(values.index) == ["Residual", "id: (Intercept)", "id: ses"]
    assert values["id: (Intercept)"] == pytest.approx(HSB_REF["derived"]["r2_level2_intercept"], rel=STAT_RTOL)
    assert values["id: ses"] == pytest.approx(HSB_REF["derived"]["r2_level2_slope"], rel=STAT_RTOL)


# ---- contextual effects (the seed's centering section) ---------------------------------------------

def test_contextual_group_mean_centering(models):
    # R: lmer(mathach ~ ses_cwc + ses_mean + (1 | id)): beta_w = gamma_10, beta_b = gamma_01;
    # beta_c = beta_b - beta_w is the grand-mean model's ses_mean coefficient (same model)
    group, grand = HSB["contextual_group"], HSB["contextual_grand"]
    table = hlm.contextual(models.fit("hsb", "contextual_group"), within="ses_cwc", between="ses_mean")
    assert table.attrs["centering"] == "group"
    expected = {"within": (group, "ses_cwc"), "between": (group, "ses_mean"), "contextual": (grand, "ses_mean")}
    check_effects(table, expected)


def test_contextual_grand_mean_centering(models):
    # R: lmer(mathach ~ ses_gmc + ses_mean + (1 | id)): beta_w = gamma_10, beta_c = gamma_01;
    # beta_b = beta_w + beta_c is the group-mean model's ses_mean coefficient (same model)
    group, grand = HSB["contextual_group"], HSB["contextual_grand"]
    table = hlm.contextual(models.fit("hsb", "contextual_grand"), within="ses_gmc", between="ses_mean")
    assert table.attrs["centering"] == "grand"
    expected = {"within": (grand, "ses_gmc"), "between": (group, "ses_mean"), "contextual": (grand, "ses_mean")}
    check_effects(table, expected)


def check_effects(table, expected):
    assert list(table.index) == ["within", "between", "contextual"]
    for effect, (ref, term) in expected.items():
        row = table.loc[effect]
        assert row["Estimate"] == pytest.approx(ref["fixef"][term], rel=FIXEF_RTOL), effect
        assert row["Std. Error"] == pytest.approx(ref["se"][term], rel=SE_RTOL), effect
        assert row["df"] == pytest.approx(ref["df_satterthwaite"][term], rel=DF_RTOL), effect
        assert row["Pr(>|t|)"] == pytest.approx(ref["p"][term], rel=P_RTOL), effect


def test_contextual_unknown_coefficient(models):
    with pytest.raises(ModelError, match="fixed effect 'ses_men' is not in the model; did you mean 'ses_mean'"):
        hlm.contextual(models.fit("hsb", "contextual_group"), within="ses_cwc", between="ses_men")


# ---- allFit -------------------------------------------------------------------------------------

def test_allfit(models):
    # R: allFit(lmm_full) (hsb_extra.json): bobyqa and Nelder_Mead reach the same optimum;
    # L-BFGS-B stops short (R: logLik -23287.276, "Model failed to converge")
    ref = {o["optimizer"]: o for o in EXTRA["allfit"]["optimizers"]}
    result = hlm.allfit(HSB["full"]["formula"], models.frame("hsb", "full"), REML=False)
    assert list(result.table.index) == ["bobyqa", "nelder_mead", "lbfgsb"]
    for ours, theirs in [("bobyqa", "bobyqa"), ("nelder_mead", "Nelder_Mead")]:
        row = result.table.loc[ours]
        assert row["ok"] and not row["warning"]
        assert row["logLik"] == pytest.approx(ref[theirs]["logLik"], abs=LL_ATOL)
        for term, value in ref[theirs]["fixef"].items():
            assert result.fixef.loc[ours, term] == pytest.approx(value, rel=FIXEF_RTOL), (ours, term)
        assert result.sdcor.loc[ours, "sigma"] == pytest.approx(ref[theirs]["sdcor"]["sigma"], rel=STAT_RTOL)
    # every fit more than 1e-3 below the best log-likelihood is flagged
    worse = result.table["nll_diff"] > LL_ATOL
    assert result.table.loc[worse, "warning"].all()
    assert result.max_nll_diff == pytest.approx(result.table["nll_diff"].max())


def test_allfit_of_a_fitted_model_and_unknown_optimizer(models):
    model = models.fit("classic", "dyestuff_ml")
    result = hlm.allfit(model, optimizers=["bobyqa", "nelder_mead"])
    assert result.table["logLik"].to_numpy() == pytest.approx([CLASSIC["dyestuff_ml"]["logLik"]] * 2, abs=LL_ATOL)
    with pytest.raises(ModelError, match="optimizer 'nlminb' is unknown"):
        hlm.allfit(model, optimizers=["nlminb"])
