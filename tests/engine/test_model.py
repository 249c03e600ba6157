"""The engine against lme4 1.1-31: every model in the reference files, at DESIGN.md's tolerances.

Reference values were written by tests/fixtures/r/ref_hsb.R and ref_classic.R, e.g.
    lmerTest::lmer(mathach ~ 1 + ses + (1 + ses | id), df, REML = FALSE,
                   control = lmerControl(optimizer = "bobyqa"))
"""
import json

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from conftest import FIXEF_RTOL, LL_ATOL, SE_RTOL, VARPAR_RTOL, load_reference

import hlm
from hlm.engine.model import restore_fit
from hlm.engine.optimize import OptSummary, minimize
from hlm.errors import ModelError

HSB = sorted(load_reference("hsb_lme4.json")["models"])
CLASSIC = sorted(load_reference("classic_lme4.json")["models"])
CASES = [("hsb", name) for name in HSB] + [("classic", name) for name in CLASSIC]


def values(mapping):
    return np.array(list(mapping.values()), dtype=float)


@pytest.fixture(params=CASES, ids=[f"{s}:{n}" for s, n in CASES])
def case(request, models):
    suite, name = request.param
    return models.fit(suite, name), models.references[suite][name]


def test_likelihood(case):
    # logLik(m), deviance(m) / REMLcrit(m), AIC(m), BIC(m): within 1e-3 absolute
    model, ref = case
    assert model.loglik == pytest.approx(ref["logLik"], abs=1e-3)
    assert model.aic == pytest.approx(ref["AIC"], abs=1e-3)
    assert model.bic == pytest.approx(ref["BIC"], abs=1e-3)
    if ref["REML"]:
        assert model.reml_criterion == pytest.approx(ref["REMLcrit"], abs=1e-3)
    else:
        assert model.deviance == pytest.approx(ref["deviance"], abs=1e-3)
    assert model.df_resid == ref["df_resid"]
    assert model.nobs == ref["nobs"]
    assert model.ngroups == ref["ngroups"]


def test_fixed_effects(case):
    # fixef(m) within 1e-5 relative; sqrt(diag(vcov(m))) within 1e-4 relative
    model, ref = case
    assert list(model.fixef.index) == list(ref["fixef"])
    scale = np.abs(values(ref["fixef"])).max()
    np.testing.assert_allclose(model.fixef.to_numpy(), values(ref["fixef"]), rtol=1e-5, atol=1e-7 * scale)
    np.testing.assert_allclose(np.sqrt(np.diag(model.vcov)), values(ref["se"]), rtol=1e-4)
    np.testing.assert_allclose(model.vcov.to_numpy(), np.array(ref["vcov"]), rtol=1e-3,
                               atol=1e-6 * np.abs(ref["vcov"]).max())


def test_variance_components(case):
    # as.data.frame(VarCorr(m)): names in lme4's order; vcov and sdcor within 1e-3 relative
    model, ref = case
    vc = model.varcorr
    assert list(vc.grp) == [r["grp"] for r in ref["varcorr"]]
    assert [v if isinstance(v, str) else "" for v in vc.var1] == [r["var1"] for r in ref["varcorr"]]
    assert [v if isinstance(v, str) else "" for v in vc.var2] == [r["var2"] for r in ref["varcorr"]]
    expected = np.array([r["vcov"] for r in ref["varcorr"]])
    np.testing.assert_allclose(vc.vcov.to_numpy(), expected, rtol=1e-3, atol=1e-6 * expected.max())
    expected_sd = np.array([r["sdcor"] for r in ref["varcorr"]], dtype=float)
    np.testing.assert_allclose(vc.sdcor.to_numpy(dtype=float), expected_sd, rtol=1e-3, atol=1e-4)
    assert model.sigma == pytest.approx(ref["sigma"], rel=1e-3)
    np.testing.assert_allclose(model.theta, np.atleast_1d(ref["theta"]), rtol=2e-3, atol=2e-4)


def test_singular_flag(case):
    # isSingular(m)
    model, ref = case
    assert model.is_singular == ref["singular"]
    assert ("boundary (singular) fit: see help('isSingular')" in model.messages) == ref["singular"]


def test_random_effects_and_predictions(case):
    # ranef(m), head(fitted(m)), head(residuals(m)), quantile(residuals(m, scaled = TRUE))
    model, ref = case
    assert list(model.ranef) == list(ref["ranef"])
    for group, expected in ref["ranef"].items():
        frame = model.ranef[group]
        assert [str(level) for level in frame.index] == expected["levels"]
        for column, numbers in expected["values"].items():
            numbers = np.atleast_1d(numbers)
            np.testing.assert_allclose(frame[column].to_numpy(), numbers, rtol=1e-3,
                                       atol=1e-3 * max(np.abs(numbers).max(), 1e-8))
    np.testing.assert_allclose(model.fitted[:10], ref["fitted_head"], rtol=1e-4)
    np.testing.assert_allclose(model.residuals()[:10], ref["resid_head"], rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(np.quantile(model.residuals(scaled=True), [0, .25, .5, .75, 1]),
                               ref["scaled_resid_quantiles"], rtol=1e-3, atol=1e-4)


def test_to_dict_carries_the_reference_keys(models):
    model = models.fit("hsb", "full")
    ref = models.references["hsb"]["full"]
    out = model.to_dict()
    for key in ("logLik", "AIC", "BIC", "deviance", "df_resid", "theta", "sigma", "fixef", "se", "vcov",
                "varcorr", "scaled_resid_quantiles", "singular", "ranef", "fitted_head", "resid_head"):
        assert key in out
    assert out["logLik"] == pytest.approx(ref["logLik"], abs=1e-3)
    assert out["varcorr"][2]["sdcor"] == pytest.approx(ref["varcorr"][2]["sdcor"], rel=1e-3)


def test_evaluation_limit_is_reported_as_non_convergence(models):
    # lmer(Reaction ~ Days + (Days | Subject), sleepstudy, control = lmerControl(optCtrl = list(maxfun = 10)))
    # warns that the optimizer stopped early; hlm says so and flags the fit
    import hlm
    model = hlm.lmer("Reaction ~ Days + (Days | Subject)", models.frame("classic", "sleepstudy_slope"),
                     control={"maxeval": 10})
    assert not model.converged
    assert model.messages[0].startswith("failure to converge in 10 evaluations")


CONDVAR_CASES = [("hsb", "full", "hsb_full"), ("classic", "penicillin_crossed", "penicillin_crossed"),
                 ("classic", "sleepstudy_uncorr", "sleepstudy_uncorr")]


@pytest.mark.parametrize("suite,name,key", CONDVAR_CASES, ids=[k for _, _, k in CONDVAR_CASES])
def test_conditional_variances_of_random_effects(models, suite, name, key):
    # attr(ranef(m, condVar = TRUE)[[g]], "postVar"), tests/fixtures/r/ref_condvar.R
    model = models.fit(suite, name)
    expected = []
    for entry in load_reference("condvar_lme4.json")[key]:
        terms = entry["terms"]
        if isinstance(terms, dict):  # several terms on one factor: one q=1 array per column
            expected += [np.array(v, dtype=float).reshape(-1, 1, 1) for v in terms.values()]
        else:
            block = np.array(terms[0], dtype=float)
            expected.append(block.reshape(len(block), *([1, 1] if block.ndim == 1 else block.shape[1:])))
    ours = [model.ranef_condvar[label] for label in model.group_labels]
    assert len(ours) == len(expected)
    for got, want in zip(ours, expected):
        np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-4 * np.abs(want).max())


def test_rows_where_a_computed_variable_is_undefined_are_dropped(models):
    # lmer(mathach ~ log(ses + 2) + (1 | id), df, REML = FALSE): R's na.omit drops the 41 rows
    # where ses + 2 < 0; nobs 7144, logLik -23253.86, fixef 11.02078 2.814 (tests/fixtures/r/nan_rows.R)
    import hlm
    model = hlm.lmer("mathach ~ log(ses + 2) + (1 | id)", models.frame("hsb", "null"), REML=False)
    assert model.nobs == 7144 and model.n_dropped == 41
    assert model.loglik == pytest.approx(-23253.86, abs=1e-2)
    np.testing.assert_allclose(model.fixef, [11.02078, 2.814], rtol=1e-4)
    assert "41 rows dropped where log(ses + 2) is undefined (NaN)" in model.messages
    assert len(model.design.rows) == 7144 and model.design.rows[-1] == 7184


def test_infinite_values_are_refused(models):
    import hlm
    from hlm.errors import DataError
    frame = models.frame("hsb", "null").assign(zero=0.0)
    with pytest.raises(DataError, match=r"'log\(zero\)' is infinite in 7185 rows"):
        hlm.lmer("mathach ~ log(zero) + (1 | id)", frame)


def test_a_model_without_fixed_effects_is_lme4s():
    # R (tests/fixtures/r/ref_hardening.R): m <- lmer(Reaction ~ 0 + (1 | Subject), sleepstudy);
    # lme4 fits it by ML (REML needs fixed effects) and prints no fixed-effects table
    import json

    import pandas as pd
    from conftest import FIXTURES, LL_ATOL, VARPAR_RTOL

    import hlm
    from hlm.results.writers import jsonable
    r = load_reference("hardening_lme4.json")["no_fixed_effects"]
    model = hlm.lmer(r["formula"], pd.read_csv(FIXTURES / "data" / "sleepstudy.csv"))
    assert model.REML is r["REML"] is False
    assert model.loglik == pytest.approx(r["logLik"], abs=LL_ATOL)
    assert model.theta == pytest.approx([r["theta"]], rel=VARPAR_RTOL)
    assert model.sigma == pytest.approx(r["sigma"], rel=VARPAR_RTOL)
    printed = model.summary()
    assert "Number of obs: 180, groups:  Subject, 18" in printed and "Fixed effects" not in printed
    record = json.loads(json.dumps(jsonable(model.to_dict()), allow_nan=False))
    assert record["fixef"] == {} and record["deviance"] == pytest.approx(r["objective"], abs=LL_ATOL)


@pytest.mark.parametrize("lmm_kernels", ["installed", "jit"])
def test_a_read_only_install_imports_and_fits_lmms_and_glmms(tmp_path, lmm_kernels):
    # no writable cache folder anywhere numba looks: the package's __pycache__ is a file, and
    # NUMBA_CACHE_DIR and the user's cache lie below a file (root ignores read-only modes); the LMM's
    # kernels as installed (native where built) or numba's, as where none are built
    import os
    import shutil
    import stat
    import subprocess
    import sys
    from pathlib import Path

    import hlm
    from hlm.engine import kernels
    if lmm_kernels == "installed" and kernels.NATIVE is None:
        pytest.skip("the native kernels are not built here")
    package = tmp_path / "install" / "hlm"
    shutil.copytree(Path(hlm.__file__).parent, package, ignore=shutil.ignore_patterns("__pycache__"))
    for folder in [package, *(p for p in package.rglob("*") if p.is_dir())]:
        (folder / "__pycache__").write_text("")
    blocked = tmp_path / "blocked"
    blocked.write_text("")
    for path in sorted(package.rglob("*"), reverse=True):
        path.chmod(stat.S_IREAD | (stat.S_IEXEC if path.is_dir() else 0))
    env = {**os.environ, "PYTHONPATH": str(package.parent), "NUMBA_CACHE_DIR": str(blocked / "numba"),
           "XDG_CACHE_HOME": str(blocked / "cache"), "HOME": str(blocked), "PYTHONDONTWRITEBYTECODE": "1",
           **({"HLM_KERNELS": "jit"} if lmm_kernels == "jit" else {})}
    code = ("import numpy as np, pandas as pd, hlm; rng = np.random.default_rng(0); "
            "d = pd.DataFrame({'y': rng.normal(size=40), 'g': np.repeat(np.arange(8), 5)}); "
            "d['b'] = (d.y > 0).astype(int); "
            "print(hlm.__file__, hlm.lmer('y ~ 1 + (1 | g)', d).nobs, hlm.glmer('b ~ 1 + (1 | g)', d).nobs); "
            "from hlm.engine import kernels; print(kernels.NATIVE is not None)")
    try:
        process = subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp_path, capture_output=True, text=True,
                                 timeout=300)
    finally:
        for path in package.rglob("*"):
            path.chmod(stat.S_IRWXU)
    assert process.returncode == 0, process.stderr[-3000:]
    native = lmm_kernels == "installed"
    assert process.stdout.split() == [str(package / "__init__.py"), "40", "40", str(native)]


# ---- the parameter API: objective, with_response, the optimizer record ----------------------------

def criterion(ref):
    return ref["REMLcrit"] if ref["REML"] else ref["deviance"]


def test_objective_at_lme4s_theta_is_lme4s_criterion(case):
    # deviance(m) (ML) or REMLcrit(m) (REML) at getME(m, "theta"); not profiled over σ, at sigma(m)
    # it is the same number. The same function at the same θ: far inside DESIGN.md's 1e-3.
    model, ref = case
    theta = np.atleast_1d(np.array(ref["theta"], dtype=float))
    assert model.objective(theta) == pytest.approx(criterion(ref), abs=1e-6)
    assert model.objective_given_sigma(theta, ref["sigma"]) == pytest.approx(criterion(ref), abs=1e-6)
    assert model.objective_given_sigma(theta, 1.1 * ref["sigma"]) > criterion(ref) + 0.1   # σ̂ minimises it
    assert model.objective() == pytest.approx(criterion(ref), abs=LL_ATOL)


ML_CASES = [(suite, name) for suite, name in CASES if not load_reference(f"{suite}_lme4.json")["models"][name]["REML"]]


@pytest.mark.parametrize("suite,name", ML_CASES, ids=[n for _, n in ML_CASES])
def test_a_fixed_coefficient_at_lme4s_estimate_keeps_lme4s_deviance(models, suite, name):
    # lme4's profile of β_j fits the model without column j and with offset x_j·β_j: at lme4's β̂_j
    # and θ̂ its deviance is deviance(m) (ML fits: the REML criterion changes with X)
    model, ref = models.fit(suite, name), models.references[suite][name]
    theta = np.atleast_1d(np.array(ref["theta"], dtype=float))
    dev = model.deviance_function
    for j, estimate in enumerate(ref["fixef"].values()):
        fixed = dev.with_coefficient_fixed(j, estimate)
        assert fixed.p == model.design.p - 1
        assert fixed.objective(theta) == pytest.approx(ref["deviance"], abs=1e-6)
        assert fixed.objective(theta) < dev.with_coefficient_fixed(j, estimate + 0.1).objective(theta)


SAME_RESPONSE = [("hsb", "random_slope"), ("classic", "penicillin_crossed"), ("classic", "sleepstudy_uncorr")]


@pytest.mark.parametrize("suite,name", SAME_RESPONSE, ids=[n for _, n in SAME_RESPONSE])
def test_with_the_same_response_is_the_same_fit(models, suite, name):
    # refit(m, getME(m, "y")) is m: lme4's θ̂, criterion and fixef (ref_hsb.R, ref_classic.R)
    model, ref = models.fit(suite, name), models.references[suite][name]
    again = model.with_response(model.design.y)
    assert type(again) is type(model) and again.design.X is model.design.X
    assert again.objective() == pytest.approx(criterion(ref), abs=LL_ATOL)
    np.testing.assert_allclose(again.theta, np.atleast_1d(ref["theta"]), rtol=2e-3, atol=2e-4)
    np.testing.assert_allclose(again.fixef, values(ref["fixef"]), rtol=FIXEF_RTOL)
    np.testing.assert_allclose(again.theta, model.theta, rtol=1e-9)   # same start, optimizer and products


WITH_RESPONSE = load_reference("with_response_lme4.json")
# the new response of each case, computed as tests/fixtures/r/ref_with_response.R computes it
RESPONSES = {"hsb_random_slope_reml": ("hsb", "null", lambda d: d.mathach - 3 * d.female),
             "penicillin_crossed_log": ("classic", "penicillin_crossed", lambda d: np.log(d.diameter)),
             "sleepstudy_uncorr_log": ("classic", "sleepstudy_uncorr", lambda d: np.log(d.Reaction))}


@pytest.mark.parametrize("name", sorted(WITH_RESPONSE))
def test_with_another_response_is_lmer_on_that_response(models, name):
    # refit(lmer(base), response) (tests/fixtures/r/ref_with_response.R)
    ref, (suite, frame_of, response) = WITH_RESPONSE[name], RESPONSES[name]
    frame = models.frame(suite, frame_of)
    base = hlm.lmer(ref["base"], frame, REML=ref["REML"])
    y = response(frame).to_numpy()[base.design.rows]
    refit = base.with_response(y)
    assert refit.objective() == pytest.approx(ref["objective"], abs=LL_ATOL)
    assert refit.loglik == pytest.approx(ref["logLik"], abs=LL_ATOL)
    np.testing.assert_allclose(refit.theta, ref["theta"], rtol=2e-3, atol=2e-4)
    assert refit.sigma == pytest.approx(ref["sigma"], rel=VARPAR_RTOL)
    np.testing.assert_allclose(refit.fixef, values(ref["fixef"]), rtol=FIXEF_RTOL)
    np.testing.assert_allclose(np.sqrt(np.diag(refit.vcov)), values(ref["se"]), rtol=SE_RTOL)
    np.testing.assert_allclose(refit.residuals(), y - refit.fitted)
    fresh = hlm.lmer(ref["base"], frame.assign(**{base.design.response: response(frame)}), REML=ref["REML"])
    np.testing.assert_allclose(refit.theta, fresh.theta, rtol=1e-9)   # the fit lmer gives on that response
    assert refit.objective() == pytest.approx(fresh.objective(), abs=1e-9)


@pytest.mark.parametrize("y,message", [
    (np.ones(3), r"the new response has shape \(3,\); the model has 180 rows"),
    (np.full(180, np.nan), "the new response has 180 missing or infinite values"),
    (["a"] * 180, "the new response is not numeric"),
])
def test_a_bad_new_response_is_refused(models, y, message):
    with pytest.raises(ModelError, match=message):
        models.fit("classic", "sleepstudy_slope").with_response(y)


def test_optimizer_record_round_trips_and_counts_evaluations(models):
    # REMLcrit and theta of lmer(Reaction ~ Days + (Days | Subject), sleepstudy) (ref_classic.R)
    model, ref = models.fit("classic", "sleepstudy_slope"), models.references["classic"]["sleepstudy_slope"]
    record = json.loads(json.dumps(model.optsummary.to_dict()))
    assert OptSummary.from_dict(record) == model.optsummary
    restored = restore_fit(model.design, model.REML, OptSummary.from_dict(record), model.converged, model.messages)
    assert restored.objective() == pytest.approx(criterion(ref), abs=LL_ATOL)
    calls = []

    def counted(theta):
        calls.append(theta)
        return model.objective(theta)

    layout = model.covariance_layout
    theta, summary = minimize(counted, layout.initial_theta(), layout.lower)
    assert summary.evaluations == len(calls) and summary.initial == (1.0, 0.0, 1.0)
    assert summary.fmin == pytest.approx(criterion(ref), abs=LL_ATOL)
    np.testing.assert_allclose(theta, ref["theta"], rtol=2e-3, atol=2e-4)
    upper = np.array([0.8, np.inf, np.inf])       # an upper bound below lme4's θ̂_1 = 0.967 holds
    bounded, summary = minimize(model.objective, layout.initial_theta(), layout.lower, upper,
                                control={"initial_step": 0.25}, restarts=1)
    assert bounded[0] == 0.8 and summary.fmin > criterion(ref) and summary.initial == (0.8, 0.0, 1.0)


def mutable_parts(obj, path, seen):
    """Paths of the writable arrays and mutable containers reachable from obj."""
    if id(obj) in seen:
        return
    seen.add(id(obj))
    if isinstance(obj, np.ndarray):
        if obj.flags.writeable:
            yield path
    elif sp.issparse(obj):
        for name in ("data", "indices", "indptr"):
            yield from mutable_parts(getattr(obj, name), f"{path}.{name}", seen)
    elif isinstance(obj, (list, dict, set, pd.Series, pd.DataFrame)):
        yield path
    elif isinstance(obj, tuple):
        for i, item in enumerate(obj):
            yield from mutable_parts(item, f"{path}[{i}]", seen)
    elif hasattr(obj, "__dict__"):
        for name, value in vars(obj).items():
            yield from mutable_parts(value, f"{path}.{name}", seen)


@pytest.mark.parametrize("suite,name", SAME_RESPONSE, ids=[n for _, n in SAME_RESPONSE])
def test_a_fit_is_frozen_all_the_way_down(models, suite, name):
    model, ref = models.fit(suite, name), models.references[suite][name]
    model.varcorr, model.ranef, model.ranef_condvar, model.residuals(), model.coef_table()
    assert list(mutable_parts(model, "model", set())) == []
    fixef, vcov = model.fixef, model.vcov                     # tables handed out are the caller's copies
    fixef.iloc[0], vcov.iloc[0, 0] = 0.0, 0.0
    np.testing.assert_allclose(model.fixef, values(ref["fixef"]), rtol=FIXEF_RTOL)
    np.testing.assert_allclose(np.sqrt(np.diag(model.vcov)), values(ref["se"]), rtol=SE_RTOL)
    with pytest.raises(ValueError, match="read-only"):
        model.fitted[0] = 0.0
