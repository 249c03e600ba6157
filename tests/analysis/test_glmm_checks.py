"""GLMM checks against R (tests/fixtures/r/glmm_checks.R -> glmm_checks.json): performance's
binned residuals and zero-inflation check, DHARMa's scaled residuals and tests on lme4's
simulations; and the scaled residuals' behaviour on hlm's own simulations."""
import dataclasses
import json

import numpy as np
import pandas as pd
import pytest
from conftest import FIXTURES, load_reference
from glmm_reference import fit, frame

import hlm
from hlm.analysis.glmm_checks import (BINNED_COLUMNS, binned_residuals, binned_table, check_zeroinflation,
                                      dispersion_test, scaled_residuals, simulate_residuals, uniformity_test)
from hlm.engine.simulate import simulate
from hlm.errors import ModelError

R = load_reference("glmm_checks.json")
# hlm's and lme4's fitted values agree within the GLMM tolerances (fixed effects 1e-4 relative), so
# the bins' means agree to about this
FITTED_ATOL = 1e-4
VERDICTS = {"Ok:": "ok", "Warning: About": "warning", "Warning: Probably bad": "poor",
            "underfitting": "underfitting", "overfitting": "overfitting", "seems ok": "ok"}


def r_verdict(printed):
    """performance's printed verdict as hlm names it."""
    text = printed if isinstance(printed, str) else " ".join(printed)
    return next(verdict for phrase, verdict in VERDICTS.items() if phrase in text)


def assert_table(table, reference, atol, rtol=0.0):
    assert list(table.columns) == BINNED_COLUMNS
    assert table["n"].tolist() == reference["n"]
    assert table["group"].tolist() == reference["group"]
    for column in BINNED_COLUMNS[:-1]:
        assert np.allclose(table[column], reference[column], atol=atol, rtol=rtol), column


@pytest.mark.parametrize("name, model, options", [
    # R: binned_residuals(glmer(prop ~ period + (1 | herd), cbpp, binomial, weights = size)), the fit of
    # cbind(incidence, size - incidence) ~ period + (1 | herd)
    ("cbpp", "cbpp_laplace", {}),
    # R: binned_residuals(glmer(use ~ age + I(age^2) + urban + livch + (1 | district), Contraception, binomial))
    ("contraception", "contraception", {}),
    # R: binned_residuals(<the same>, term = "age", n_bins = 12)
    ("contraception_age", "contraception", {"term": "age", "n_bins": 12}),
])
def test_binned_residuals_are_performances(name, model, options):
    reference = R["binned_residuals"][name]
    result = binned_residuals(fit(model), **options)
    assert_table(result.table, reference["table"], FITTED_ATOL)
    assert result.share_inside == pytest.approx(reference["resid_ok"], abs=1e-12)
    assert result.verdict == r_verdict(reference["printed"])
    assert result.term == options.get("term")


def test_binned_table_on_lme4s_fitted_values_of_verbagg():
    # R: binned_residuals(glmer(r2 ~ Anger + Gender + btype + situ + (1 | id) + (1 | item), VerbAgg, binomial)),
    # with ties among the 7,584 fitted values; the bins are cut at lme4's own fitted values
    reference = R["binned_residuals"]["verbagg"]
    fitted = np.array(reference["fitted"], dtype=float)
    table = binned_table(fitted, np.array(reference["y"]) - fitted)
    assert len(table) == round(np.sqrt(len(fitted))) == 87
    assert_table(table, reference["table"], atol=1e-14, rtol=1e-12)
    assert r_verdict(reference["printed"]) == "warning"
    assert binned_residuals(fit("verbagg")).verdict == "warning"


def test_bins_with_fewer_than_two_rows_are_left_out_as_rs_complete_cases():
    # R: d <- performance:::binned_residuals on x = 1:5 with 5 bins gives no rows (every bin holds one value)
    assert binned_table(np.arange(1.0, 6.0), np.zeros(5), n_bins=5).empty
    table = binned_table(np.arange(1.0, 7.0), np.array([1, -1, 2, -2, 3, -3.0]), n_bins=3)
    assert table["n"].tolist() == [2, 2, 2]
    assert np.allclose(table["ybar"], 0.0) and table["group"].tolist() == ["yes"] * 3


@pytest.mark.parametrize("name", ["grouseticks", "epil_offset"])
def test_zero_inflation_is_performances(name):
    # R: check_zeroinflation(glmer(TICKS ~ YEAR + cHEIGHT + (1 | BROOD) + (1 | INDEX) + (1 | LOCATION), grouseticks, poisson))
    # R: check_zeroinflation(glmer(y ~ trt + lage + V4 + offset(log(base)) + (1 | subject), epil, poisson))
    reference = R["zeroinflation"][name]
    result = check_zeroinflation(fit(name))
    assert (result.observed_zeros, result.predicted_zeros) == (reference["observed_zeros"], reference["predicted_zeros"])
    assert result.ratio == pytest.approx(reference["ratio"], rel=1e-12)
    assert result.verdict == r_verdict(reference["printed"]) == "underfitting"


def test_zero_inflation_verdicts_at_the_tolerance():
    model = fit("grouseticks")          # ratio 114 / 126 = 0.905
    assert check_zeroinflation(model, tolerance=0.1).verdict == "ok"
    assert check_zeroinflation(model, tolerance=0.09).verdict == "underfitting"


@pytest.mark.parametrize("name, model", [("cbpp", "cbpp_laplace"), ("grouseticks", "grouseticks"),
                                         ("contraception", "contraception")])
def test_scaled_residuals_and_tests_on_lme4s_simulations_are_dharmas(name, model):
    # R: DHARMa 0.5.1's getQuantile (PIT), testDispersion (type = "DHARMa") and testUniformity, written out
    # in glmm_checks.R, on lme4's simulate(m, nsim = 100, seed = ...) of the same fit
    reference = R["dharma"][name]
    scaled = scaled_residuals(fit(model), np.array(reference["simulated"]), rng=1)
    assert np.array_equal(scaled.lower, reference["lower"]) and np.array_equal(scaled.upper, reference["upper"])
    assert np.all((scaled.lower <= scaled.residuals) & (scaled.residuals <= scaled.upper))
    assert np.allclose(scaled.fitted, reference["fitted"], rtol=1e-3)        # predict(m, re.form = ~0)
    dispersion = dispersion_test(scaled)
    assert dispersion.statistic == pytest.approx(reference["dispersion"], rel=1e-3)
    assert dispersion.p_value == pytest.approx(reference["dispersion_p"], abs=1e-12)
    # ks.test(residuals, "punif") on R's randomized residuals: exact p for cbpp's 56, asymptotic for more
    uniformity = uniformity_test(dataclasses.replace(scaled, residuals=np.array(reference["randomized"])))
    assert uniformity.statistic == pytest.approx(reference["ks_statistic"], rel=1e-9)
    assert uniformity.p_value == pytest.approx(reference["ks_p"], abs=1e-5)   # R sums the asymptotic series to 1e-6
    assert ("Exact" in uniformity.method) == (len(scaled.residuals) < 100)


def test_simulated_residuals_are_seeded():
    model = fit("cbpp_laplace")
    first, again = simulate_residuals(model, nsim=50, seed=7), simulate_residuals(model, nsim=50, seed=7)
    assert np.array_equal(first.residuals, again.residuals) and np.array_equal(first.simulated, again.simulated)
    assert not np.array_equal(first.residuals, simulate_residuals(model, nsim=50, seed=8).residuals)
    assert first.simulated.shape == (56, 50) and first.conditional and first.seed == 7
    unconditional = simulate_residuals(model, nsim=50, seed=7, conditional=False)
    assert np.array_equal(unconditional.simulated, simulate(model, 50, rng=np.random.default_rng(7)))


@pytest.mark.parametrize("name", ["cbpp_laplace", "contraception", "grouseticks"])
@pytest.mark.parametrize("conditional", [None, False])
def test_scaled_residuals_are_uniform_when_the_model_is_right(name, conditional):
    # responses simulated from the fit and refitted: the model is then the true one
    model = fit(name)
    refit = model.with_response(simulate(model, 1, seed=2026)[:, 0])
    scaled = simulate_residuals(refit, nsim=250, seed=1, conditional=conditional)
    assert uniformity_test(scaled).verdict == "ok"
    assert dispersion_test(scaled).verdict == "ok"
    assert 0.45 < scaled.residuals.mean() < 0.55


def test_models_with_an_observation_level_term_are_simulated_unconditionally():
    # grouseticks' INDEX has one level per row: conditional on its modes the simulations reproduce
    # the data, and the residuals of a right model bunch at 0.5
    model = fit("grouseticks")
    refit = model.with_response(simulate(model, 1, seed=2026)[:, 0])
    assert not simulate_residuals(refit, nsim=50, seed=1).conditional
    assert simulate_residuals(fit("cbpp_laplace"), nsim=50, seed=1).conditional
    bunched = simulate_residuals(refit, nsim=250, seed=1, conditional=True)
    assert uniformity_test(bunched).verdict == "not uniform"


def test_dispersion_test_flags_an_overdispersed_poisson_model():
    # grouseticks with only the LOCATION term: the extra-Poisson variation of broods and birds is left over
    model = hlm.glmer("TICKS ~ YEAR + cHEIGHT + (1 | LOCATION)", frame("grouseticks"), family="poisson")
    scaled = simulate_residuals(model, seed=1)
    result = dispersion_test(scaled)
    assert scaled.conditional
    assert result.verdict == "overdispersed" and result.statistic > 1.2 and result.p_value < 0.01


@pytest.mark.parametrize("conditional", [None, False, True])
def test_dispersion_test_passes_cbpp_with_an_observation_level_random_effect(conditional):
    assert dispersion_test(simulate_residuals(fit("cbpp_obs"), seed=1, conditional=conditional)).verdict == "ok"


def test_bad_requests_get_one_line():
    poisson, binomial = fit("grouseticks"), fit("cbpp_laplace")
    with pytest.raises(ModelError, match="family is poisson; this check is for binomial"):
        binned_residuals(poisson)
    with pytest.raises(ModelError, match="family is binomial; this check is for poisson"):
        check_zeroinflation(binomial)
    with pytest.raises(ModelError, match="'size' is not a numeric fixed effect"):
        binned_residuals(binomial, term="size")
    with pytest.raises(ModelError, match="n_bins"):
        binned_residuals(binomial, n_bins=1)
    with pytest.raises(ModelError, match="nsim"):
        simulate_residuals(binomial, nsim=1)
    with pytest.raises(ModelError, match=r"shape \(3, 2\)"):
        scaled_residuals(binomial, np.zeros((3, 2)))
    sleep = hlm.lmer("Reaction ~ Days + (1 | Subject)", pd.read_csv(FIXTURES / "data" / "sleepstudy.csv"))
    with pytest.raises(ModelError, match="not a GLMM; fit it with hlm.glmer"):
        simulate_residuals(sleep)


def test_results_give_plain_numbers_for_records():
    model = fit("grouseticks")
    scaled = simulate_residuals(model, nsim=20, seed=1)
    records = {"zeros": check_zeroinflation(model).to_dict(), "uniformity": uniformity_test(scaled).to_dict(),
               "dispersion": dispersion_test(scaled).to_dict(), "binned": binned_residuals(fit("cbpp_laplace")).to_dict()}
    assert json.loads(json.dumps(records)) == records
    assert records["zeros"] == {"observed_zeros": 126, "predicted_zeros": 114, "ratio": 114 / 126, "tolerance": 0.05,
                                "verdict": "underfitting"}
    assert set(records["dispersion"]) == {"test", "statistic", "p_value", "method", "significant", "verdict"}
    assert records["binned"]["table"]["n"] == R["binned_residuals"]["cbpp"]["table"]["n"]
