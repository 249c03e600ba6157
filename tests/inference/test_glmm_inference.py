"""What a glmer fit reports, against lme4, performance and R: summary(m) as printed, Wald intervals,
exp(β) ratios, anova(m0, m1), performance::icc and r2_nakagawa, and the record.

References: tests/fixtures/glmm_lme4.json (fixtures/r/ref_glmm.R), e.g.
    confint(m, method = "Wald", parm = "beta_"); anova(m1, m0); performance::icc(m)
"""
import json
import re

import numpy as np
import pytest
from glmm_reference import ICC_RTOL, LL_ATOL, MODELS, NAMES, REFERENCE, SE_RTOL, STOPPED_SHORT_RTOL, fit, frame, values

import hlm
from hlm.analysis.latent import null_model
from hlm.inference.glmm import restore_glmer
from hlm.results.writers import jsonable

NUMBER = re.compile(r"^-?\d+(\.\d+)?(e-?\d+)?$")


def numbers(line):
    return [float(t) for t in line.split() if NUMBER.match(t)]


def block(text, heading, stop):
    """The lines after `heading` up to a blank line or one starting with `stop`."""
    out = []
    for line in text.split(heading, 1)[1].splitlines()[1:]:
        if not line.strip() or line.startswith(stop):
            break
        out.append(line)
    return out


def assert_same_digits(ours, theirs, rel=0.0):
    """Each number equal to R's within one unit of R's last printed digit (or `rel`, relative)."""
    assert len(ours) == len(theirs), (ours, theirs)
    for a, b in zip(ours, theirs):
        decimals = len(repr(b).split(".")[1]) if "." in repr(b) and "e" not in repr(b) else 0
        assert a == pytest.approx(b, abs=max(1.01 * 10 ** -decimals, rel * abs(b))), (ours, theirs)


@pytest.mark.parametrize("name", NAMES)
def test_summary_matches_glmer_printout(name):
    ours, theirs = fit(name).summary(), MODELS[name]["printout"]
    title = theirs.split(" [glmerMod]")[0].replace("\n ", "").replace("  ", " ")
    assert ours.splitlines()[0] == title
    assert ours.splitlines()[1] == theirs.splitlines()[2]                    # Family: binomial  ( logit )
    assert re.search(r"Number of obs: .*", ours)[0] == re.search(r"Number of obs: .*", theirs)[0]
    # AIC BIC logLik deviance df.resid
    assert_same_digits(numbers(block(ours, "df.resid", "x")[0]), numbers(block(theirs, "df.resid", "x")[0]))
    # Estimate, Std. Error, z value (Nelder-Mead's stopping point moves the last digits by up to 1e-3)
    r_rows, our_rows = block(theirs, "Fixed effects:", "---")[1:], block(ours, "Fixed effects:", "---")[1:]
    assert [line.split()[0] for line in our_rows] == [line.split()[0] for line in r_rows]
    for r_line, our_line in zip(r_rows, our_rows):
        assert_same_digits(numbers(our_line)[:3], numbers(r_line)[:3], rel=STOPPED_SHORT_RTOL)
    # Variance, Std.Dev., Corr of each random-effect term; no Residual row
    r_rows, our_rows = block(theirs, "Random effects:", "Number")[1:], block(ours, "Random effects:", "Number")[1:]
    assert len(our_rows) == len(r_rows)
    for r_line, our_line in zip(r_rows, our_rows):
        assert_same_digits(numbers(our_line), numbers(r_line), rel=2e-4)
    assert "Residual" not in ours


@pytest.mark.parametrize("name", NAMES)
def test_wald_intervals_and_ratios(name):
    # confint(m, method = "Wald", parm = "beta_"); exp(fixef(m)) and exp() of those limits
    model, ref = fit(name), MODELS[name]
    limits = model.confint("Wald")
    expected = np.array([[row["lower"], row["upper"]] for row in ref["confint_wald"]])
    fixed = limits.loc[[row["name"] for row in ref["confint_wald"]]].to_numpy()
    # the centre is the estimate, the half-width 1.96 standard errors: each at its tolerance
    np.testing.assert_allclose(fixed.mean(axis=1), expected.mean(axis=1), rtol=STOPPED_SHORT_RTOL)
    np.testing.assert_allclose(np.diff(fixed, axis=1), np.diff(expected, axis=1), rtol=SE_RTOL)
    assert list(limits.columns) == ["2.5 %", "97.5 %"]
    assert limits.iloc[:len(model.theta)].isna().all().all()       # lme4 gives no Wald limits for sd parameters
    if model.link == "probit":
        with pytest.raises(hlm.HlmError, match="no ratio"):
            model.ratios()
        return
    ratios = model.ratios()
    np.testing.assert_allclose(ratios.iloc[:, 0], values(ref["exp_fixef"]), rtol=STOPPED_SHORT_RTOL)
    np.testing.assert_allclose(ratios.iloc[:, 1:], np.exp(expected), rtol=STOPPED_SHORT_RTOL)
    assert ratios.columns[0] == {"logit": "odds ratio", "cloglog": "hazard ratio", "log": "rate ratio"}[model.link]


@pytest.mark.parametrize("comparison", sorted(REFERENCE["comparisons"]))
def test_likelihood_ratio_tests(comparison):
    # anova(m1, m0) of nested glmer fits (the same rows): npar, AIC, BIC, logLik, Chisq, Df, Pr(>Chisq)
    ref = REFERENCE["comparisons"][comparison]
    table = hlm.anova(*(fit(name) for name in ref["models"]))
    assert list(table.npar) == ref["npar"]
    np.testing.assert_allclose(table.logLik, ref["logLik"], atol=LL_ATOL)
    np.testing.assert_allclose(table.AIC, ref["AIC"], atol=LL_ATOL)
    assert table.Chisq.iloc[1] == pytest.approx(ref["Chisq"], abs=2 * LL_ATOL)
    assert table.Df.iloc[1] == ref["Df"]
    assert table["Pr(>Chisq)"].iloc[1] == pytest.approx(ref["p"], rel=1e-3)


def test_anova_refuses_likelihoods_of_different_kinds():
    with pytest.raises(hlm.HlmError, match="different kinds"):
        hlm.anova(fit("cbpp_laplace"), fit("cbpp_probit"))
    with pytest.raises(hlm.HlmError, match="different kinds"):
        hlm.anova(fit("cbpp_laplace"), fit("cbpp_agq9"))


@pytest.mark.parametrize("name", NAMES)
def test_icc_and_r2_on_the_latent_scale(name):
    # performance::icc(m)$ICC_adjusted, performance::r2_nakagawa(m): level-1 variance π²/3 (logit),
    # 1 (probit), π²/6 (cloglog), log(1 + 1/exp(β0 of the null model)) (Poisson); observation-level
    # random effects count as residual variance
    model, ref = fit(name), MODELS[name]
    assert hlm.icc(model) == pytest.approx(ref["icc_adjusted"], rel=ICC_RTOL)
    r2 = hlm.r2_nakagawa(model)
    assert r2.conditional == pytest.approx(ref["r2_conditional"], rel=ICC_RTOL)
    assert r2.marginal == pytest.approx(ref["r2_marginal"], rel=ICC_RTOL, abs=1e-12)


def test_poisson_null_model_is_performances():
    # insight::null_model(m): the random effects and the offset, intercept only
    for name in ("grouseticks", "epil_offset"):
        ref = MODELS[name]["null_model"]
        null = null_model(fit(name))
        assert null.fixef.iloc[0] == pytest.approx(ref["fixef"]["(Intercept)"], rel=1e-3)
        assert null.loglik == pytest.approx(ref["logLik"], abs=LL_ATOL)


@pytest.mark.parametrize("name", ["cbpp_laplace", "verbagg", "contraception_slope", "epil_offset_agq7"])
def test_record_has_the_reference_numbers(name):
    model, ref = fit(name), MODELS[name]
    record = json.loads(json.dumps(jsonable(model.to_dict()), allow_nan=False))
    for key in ("formula", "family", "link", "nAGQ", "nobs", "npar", "df_resid", "weights"):
        assert record[key] == ref[key]
    assert list(record["fixef"]) == list(ref["fixef"])
    assert record["logLik"] == pytest.approx(ref["logLik"], abs=LL_ATOL)
    assert record["deviance_residuals_ss"] == pytest.approx(ref["deviance_residuals_ss"], rel=1e-4)
    assert record["optsummary"]["final"] == list(model.theta) + list(model.fixef)


@pytest.mark.parametrize("name", ["cbpp_nagq0", "cbpp_agq9", "verbagg", "contraception_slope", "epil_offset"])
def test_restored_fit_is_the_fit(name):
    # a record (through JSON) and the data give the same model without optimizing again
    model = fit(name)
    record = json.loads(json.dumps(jsonable(model.to_dict()), allow_nan=False))
    restored = restore_glmer(record, frame(name))
    assert restored.loglik == pytest.approx(model.loglik, abs=1e-9)
    np.testing.assert_allclose(restored.fixef, model.fixef, rtol=1e-12)
    np.testing.assert_allclose(restored.vcov, model.vcov, rtol=1e-12)
    np.testing.assert_allclose(restored.ranef_condvar[model.group_labels[0]], model.ranef_condvar[model.group_labels[0]],
                               rtol=1e-9)
    assert restored.messages == model.messages
    with pytest.raises(hlm.HlmError, match="does not belong to this data"):
        restore_glmer(record, frame(name).iloc[1:])


@pytest.mark.parametrize("name", [n for n in NAMES if MODELS[n]["confint_profile"]])
def test_profile_intervals(name):
    # confint(m, method = "profile", oldNames = FALSE): lme4 interpolates its profile by a spline,
    # hlm finds where ζ = ±1.96
    model, ref = fit(name), MODELS[name]
    limits = model.confint("profile")
    expected = np.array([[row["lower"], row["upper"]] for row in ref["confint_profile"]])
    np.testing.assert_allclose(limits.loc[[row["name"] for row in ref["confint_profile"]]], expected,
                               rtol=1e-3, atol=1e-4)


def test_profile_limit_of_a_fixed_effect_is_where_the_refit_deviance_rises_by_z_squared():
    # with a vector-valued random term (lme4's own profile fails on this fit): refit with urbanY at
    # its profile limit, as an offset, and the deviance is the fit's plus 1.96²
    model = fit("contraception_slope")
    upper = float(model.confint("profile", parm=["urbanY"]).loc["urbanY", "97.5 %"])
    df = frame("contraception_slope").assign(urban01=lambda d: (d.urban == "Y").astype(float))
    refit = hlm.glmer(f"use ~ age + I(age^2) + livch + offset({upper!r} * urban01) + (urban | district)", df)
    assert refit.deviance - model.deviance == pytest.approx(1.959963984540054 ** 2, abs=1e-3)
