"""simulate() against lme4's simulate.merMod: the same distribution (means, variances, the
covariance within a group) as R's draws for the same fits, within Monte Carlo error
(tests/fixtures/r/simulate_moments.R), and the GLMM's with_response against glmer."""
import numpy as np
import pandas as pd
import pytest

import hlm
from hlm.engine.simulate import simulate
from hlm.errors import ModelError
from tests.conftest import FIXEF_RTOL, FIXTURES, LL_ATOL, load_reference

R = load_reference("simulate_lme4.json")
Z_LIMIT = 4.5     # largest |z| allowed among a few hundred moment comparisons of independent samples


def frame(name):
    data = pd.read_csv(FIXTURES / "data" / f"{name}.csv")
    if name == "cbpp":
        data["period"] = data["period"].astype(str)
    if name == "grouseticks":
        data[["INDEX", "BROOD", "YEAR", "LOCATION"]] = data[["INDEX", "BROOD", "YEAR", "LOCATION"]].astype(str)
    return data


@pytest.fixture(scope="module")
def sleep():
    return hlm.lmer(R["sleepstudy"]["formula"], frame("sleepstudy"))


@pytest.fixture(scope="module")
def cbpp():
    return hlm.glmer(R["cbpp"]["formula"], frame("cbpp"))


def check_fit(model, case):
    """The fit R simulated from is hlm's fit (else the comparison says nothing)."""
    np.testing.assert_allclose(model.fixef.to_numpy(), case["fit"]["beta"], rtol=1e-4)
    np.testing.assert_allclose(model.theta, np.atleast_1d(case["fit"]["theta"]), rtol=1e-3)


def mean_z(sims, case):
    """z of the difference between hlm's and R's mean per row."""
    n_h, n_r = sims.shape[1], case["nsim"]
    return (sims.mean(axis=1) - case["mean"]) / np.sqrt(sims.var(axis=1, ddof=1) / n_h + np.array(case["var"]) / n_r)


def var_z(sims, case):
    """z of the difference between hlm's and R's variance per row (SE from hlm's fourth moment)."""
    n_h, n_r = sims.shape[1], case["nsim"]
    centred = sims - sims.mean(axis=1, keepdims=True)
    var, m4 = (centred ** 2).mean(axis=1), (centred ** 4).mean(axis=1)
    spread = np.maximum(m4 - var ** 2, 1e-12)
    return (sims.var(axis=1, ddof=1) - case["var"]) / np.sqrt(spread / n_h + spread / n_r)


@pytest.mark.parametrize("case_name, newparams", [
    ("sleepstudy", None),
    ("sleepstudy_newparams", {"beta": [250, 5], "theta": [1, 0.1, 0.3], "sigma": 20}),
])
def test_lmm_moments_match_lme4(sleep, case_name, newparams):
    # simulate(m, 20000, newparams = ...) in R; hlm's 20000 draws have the same means, variances
    # and within-subject covariances
    case = R[case_name]
    if newparams is None:
        check_fit(sleep, case)
    sims = simulate(sleep, 20000, seed=3, newparams=newparams)
    assert sims.shape == (sleep.nobs, 20000)
    assert np.abs(mean_z(sims, case)).max() < Z_LIMIT
    assert np.abs(var_z(sims, case)).max() < Z_LIMIT
    first = np.flatnonzero(frame("sleepstudy")["Subject"] == min(frame("sleepstudy")["Subject"].unique()))
    ours, theirs = np.cov(sims[first]), np.array(case["first_group_cov"])
    se = np.sqrt((np.outer(np.diag(theirs), np.diag(theirs)) + theirs ** 2) * (1 / 20000 + 1 / case["nsim"]))
    assert np.abs((ours - theirs) / se).max() < Z_LIMIT


def test_lmm_covariance_is_the_models(sleep):
    # the marginal covariance of one subject's rows is σ²(Z_i Λ Λ' Z_i' + I)
    sims = simulate(sleep, 20000, seed=5)
    rows = np.flatnonzero(sleep.design.terms[0].codes == 0)
    z = sleep.design.terms[0].matrix[rows]
    expected = z @ sleep.covariances[0] @ z.T + sleep.sigma ** 2 * np.eye(len(rows))
    se = np.sqrt((np.outer(np.diag(expected), np.diag(expected)) + expected ** 2) / 20000)
    assert np.abs((np.cov(sims[rows]) - expected) / se).max() < Z_LIMIT
    np.testing.assert_allclose(sims.mean(axis=1), sleep.design.X @ sleep.beta,
                               atol=Z_LIMIT * np.sqrt(expected[0, 0] * 2 / 20000))


def test_binomial_moments_match_lme4(cbpp):
    # simulate() of cbind(incidence, size - incidence) ~ period + (1 | herd): successes out of size
    case = R["cbpp"]
    check_fit(cbpp, case)
    sims = simulate(cbpp, 10000, seed=11)
    size = frame("cbpp")["size"].to_numpy()
    assert (sims >= 0).all() and (sims <= size[:, None]).all() and (sims == np.round(sims)).all()
    assert np.abs(mean_z(sims, case)).max() < Z_LIMIT
    assert np.abs(var_z(sims, case)).max() < Z_LIMIT
    assert np.abs(zero_z(sims, case)).max() < Z_LIMIT


def zero_z(sims, case):
    """z of the difference between hlm's and R's share of zeros per row."""
    ours, theirs = (sims == 0).mean(axis=1), np.array(case["zero"])
    pooled = (ours + theirs) / 2
    return (ours - theirs) / np.sqrt(np.maximum(pooled * (1 - pooled), 1e-12) * (1 / sims.shape[1] + 1 / case["nsim"]))


def test_poisson_moments_match_lme4():
    # grouseticks' three random intercepts, Poisson counts; the variances of these heavy-tailed
    # counts are too noisy for a per-row test, the share of zeros is not
    case = R["grouseticks"]
    model = hlm.glmer(case["formula"], frame("grouseticks"), family="poisson")
    check_fit(model, case)
    sims = simulate(model, 10000, seed=13)
    assert (sims >= 0).all() and (sims == np.round(sims)).all()
    assert np.abs(mean_z(sims, case)).max() < Z_LIMIT
    assert np.abs(zero_z(sims, case)).max() < Z_LIMIT


def test_binary_outcome_gives_zeros_and_ones():
    data = frame("cbpp")
    data = data.loc[data.index.repeat(data["size"])].reset_index(drop=True)
    data["sick"] = (data.groupby(["herd", "period"]).cumcount() < data["incidence"]).astype(int)
    model = hlm.glmer("sick ~ period + (1 | herd)", data)
    sims = simulate(model, 50, seed=1)
    assert set(np.unique(sims)) == {0.0, 1.0}


def test_glmm_with_response_is_glmer_on_those_counts(cbpp):
    # glmer(cbind(other, size - other) ~ period + (1 | herd)) in R
    case = R["cbpp_with_response"]
    refit = cbpp.with_response(case["successes"])
    np.testing.assert_allclose(refit.fixef.to_numpy(), case["beta"], rtol=1e-4)
    np.testing.assert_allclose(refit.theta, [case["theta"]], rtol=1e-3)
    assert refit.loglik == pytest.approx(case["logLik"], abs=LL_ATOL)
    assert cbpp.fixef.to_numpy() == pytest.approx(R["cbpp"]["fit"]["beta"], rel=1e-4)   # the original is unchanged


def test_lmm_with_response_of_a_simulation_recovers_newparams(sleep):
    # a large effect set through newparams is what the refit estimates, up to its standard error
    y = simulate(sleep, 1, seed=2, newparams={"beta": {"Days": 30.0}})[:, 0]
    refit = sleep.with_response(y)
    se = refit.coef_table()["Std. Error"]["Days"]
    assert abs(refit.fixef["Days"] - 30.0) < 4 * se
    assert refit.fixef["Days"] != pytest.approx(sleep.fixef["Days"], rel=FIXEF_RTOL)


def test_same_seed_same_draws_and_rng_is_used(sleep):
    a, b = simulate(sleep, 3, seed=9), simulate(sleep, 3, seed=9)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, simulate(sleep, 3, seed=10))
    rng = np.random.default_rng(9)
    assert np.array_equal(simulate(sleep, 3, rng=rng), a)


@pytest.mark.parametrize("kwargs, words", [
    ({"nsim": 0}, "nsim = 0"),
    ({"newparams": {"beta": {"Dayz": 1.0}}}, "'Dayz', not a fixed effect"),
    ({"newparams": {"beta": [1.0, 2.0, 3.0]}}, "3 values; the model has 2 fixed effects"),
    ({"newparams": {"theta": [1.0]}}, "theta has shape (1,)"),
    ({"newparams": {"theta": [-1.0, 0, 1]}}, "negative diagonal"),
    ({"newparams": {"sigma": 0}}, "sigma = 0.0"),
    ({"newparams": {"tau": 1}}, "unknown key 'tau'"),
])
def test_bad_arguments_get_one_line(sleep, kwargs, words):
    with pytest.raises(ModelError, match=None) as error:
        simulate(sleep, **{"nsim": 1, **kwargs})
    assert words in str(error.value) and "\n" not in str(error.value)


def test_glmm_refuses_sigma_and_bad_counts(cbpp):
    with pytest.raises(ModelError, match="no residual standard deviation"):
        simulate(cbpp, 1, newparams={"sigma": 2})
    counts = np.array(R["cbpp_with_response"]["successes"], dtype=float)
    counts[0] = 99
    with pytest.raises(ModelError, match="successes from 0 to each row's trials"):
        cbpp.with_response(counts)


def test_proportions_with_weights_simulate_and_refit_successes():
    # prop ~ period + (1 | herd), weights = size: simulate() gives successes out of size, and
    # with_response(successes) is glmer's fit of those successes (R: the cbind fit of the same counts)
    data = frame("cbpp")
    model = hlm.glmer("prop ~ period + (1 | herd)", data, weights="size")
    sims = simulate(model, 200, seed=4)
    assert (sims <= data["size"].to_numpy()[:, None]).all() and (sims == np.round(sims)).all()
    case = R["cbpp_with_response"]
    refit = model.with_response(case["successes"])
    np.testing.assert_allclose(refit.fixef.to_numpy(), case["beta"], rtol=1e-4)
    assert refit.loglik == pytest.approx(case["logLik"], abs=LL_ATOL)
