"""The exact gradient of the profiled deviance and REML criterion (hlm/engine/gradient.py), and
L-BFGS-B with it: against finite differences of the objective, and its fits against lme4.

Reference fits: tests/fixtures/classic_lme4.json (ref_classic.R) and gradient_lme4.json
(ref_gradient.R: a crossed design with a dense tail of 255 columns), e.g.
    lmer(y ~ 1 + x + (1 | s) + (1 | d) + (1 | dept), data, control = lmerControl(optimizer = "bobyqa"))
"""
import numpy as np
import pandas as pd
import pytest
from conftest import FIXEF_RTOL, FIXTURES, LL_ATOL, SE_RTOL, VARPAR_RTOL, load_reference

import hlm
from hlm.engine import optimize
from hlm.engine.design import build_design
from hlm.engine.deviance import ProfiledDeviance
from hlm.engine.gradient import evaluate_with_gradient, has_gradient
from hlm.engine.optimize import convergence_messages, default_optimizer, deviance_gradient

GRADIENT = load_reference("gradient_lme4.json")["models"]
CROSSED = pd.read_csv(FIXTURES / "data" / "crossed_gradient.csv")

DEVIANCE_CASES = {
    "penicillin": ("Penicillin.csv", "diameter ~ 1 + (1 | plate) + (1 | sample)"),
    "pastes_nested": ("Pastes.csv", "strength ~ 1 + (1 | batch/cask)"),
    "dyestuff": ("Dyestuff.csv", "Yield ~ 1 + (1 | Batch)"),
    "crossed_large_tail": ("crossed_gradient.csv", GRADIENT["crossed_reml"]["formula"]),
    "crossed_slope": ("crossed_gradient.csv", GRADIENT["crossed_slope"]["formula"]),
}


def deviance(case, reml):
    data, formula = DEVIANCE_CASES[case]
    return ProfiledDeviance.from_design(build_design(formula, pd.read_csv(FIXTURES / "data" / data)), reml)


def finite_difference(f, theta, step=1e-4):
    """Central 4-point differences; one-sided 3-point ones at an entry on its bound 0."""
    out = []
    for k in range(len(theta)):
        e = np.zeros(len(theta))
        e[k] = step
        if theta[k] == 0:
            out.append((-3 * f(theta) + 4 * f(theta + e) - f(theta + 2 * e)) / (2 * step))
        else:
            out.append((8 * (f(theta + e) - f(theta - e)) - f(theta + 2 * e) + f(theta - 2 * e)) / (12 * step))
    return np.array(out)


def thetas(size):
    """Several θ: lme4's start, spread values, each entry at the bound 0 in turn."""
    spread = np.linspace(0.3, 1.7, size)
    at_zero = [np.where(np.arange(size) == k, 0.0, spread) for k in range(size)]
    return [np.ones(size), spread, *at_zero]


@pytest.mark.parametrize("reml", [False, True], ids=["ML", "REML"])
@pytest.mark.parametrize("case", list(DEVIANCE_CASES))
def test_gradient_matches_finite_differences_of_the_objective(case, reml):
    dev = deviance(case, reml)
    assert has_gradient(dev)
    for theta in thetas(dev.layout.size):
        value, gradient, _ = evaluate_with_gradient(dev, theta)
        assert value == dev.objective(theta)
        expected = finite_difference(dev.objective, theta)
        np.testing.assert_allclose(gradient, expected, rtol=1e-6, atol=1e-6 * max(1.0, np.abs(expected).max()))
        assert np.all(gradient[theta == 0] == 0)           # even in θ_k: no division by θ_k = 0


def test_models_with_vector_terms_have_no_gradient(models, monkeypatch):
    design = build_design("Reaction ~ Days + (Days | Subject)", models.frame("classic", "sleepstudy_slope"))
    dev = ProfiledDeviance.from_design(design, True)
    assert not has_gradient(dev) and deviance_gradient(dev) is None
    monkeypatch.setattr(optimize, "GRADIENT_TAIL_SIZE", 1)
    assert default_optimizer(dev) == "bobyqa"


def assert_matches_lme4(model, ref):
    # logLik 1e-3 absolute; fixef 1e-5, SE 1e-4, variances 1e-3 relative (DESIGN.md)
    assert model.loglik == pytest.approx(ref["logLik"], abs=LL_ATOL)
    fixef = np.array(list(ref["fixef"].values()))
    np.testing.assert_allclose(model.fixef.to_numpy(), fixef, rtol=FIXEF_RTOL, atol=1e-7 * np.abs(fixef).max())
    np.testing.assert_allclose(np.sqrt(np.diag(model.vcov)), list(ref["se"].values()), rtol=SE_RTOL)
    expected = np.array([row["vcov"] for row in ref["varcorr"]])
    np.testing.assert_allclose(model.varcorr.vcov.to_numpy(), expected, rtol=VARPAR_RTOL, atol=1e-6 * expected.max())
    np.testing.assert_allclose(model.theta, np.atleast_1d(ref["theta"]), rtol=2e-3, atol=2e-4)
    assert model.is_singular == ref["singular"]


@pytest.mark.parametrize("name", ["penicillin_crossed", "pastes_nested", "dyestuff_reml", "dyestuff_ml",
                                  "dyestuff2_singular"])
def test_gradient_optimizer_fits_the_classic_models_as_lme4(models, name):
    ref = models.references["classic"][name]
    model = hlm.lmer(ref["formula"], models.frame("classic", name), REML=ref["REML"], optimizer="lbfgsb")
    assert model.optsummary.optimizer == "lbfgsb"
    assert_matches_lme4(model, ref)


@pytest.mark.parametrize("name", list(GRADIENT))
def test_large_crossed_models_get_the_gradient_method_by_default(name, monkeypatch):
    # the fixture's tail has 255 columns: the threshold lowered to it (InstEval's has 1144)
    monkeypatch.setattr(optimize, "GRADIENT_TAIL_SIZE", 255)
    ref = GRADIENT[name]
    model = hlm.lmer(ref["formula"], CROSSED, REML=ref["REML"])
    assert model.optsummary.optimizer == "lbfgsb"
    assert model.to_dict()["optimizer"] == "lbfgsb"         # what the record and the report say ran
    assert model.converged and list(model.messages) == ref["messages"]
    assert_matches_lme4(model, ref)
    monkeypatch.setattr(optimize, "GRADIENT_TAIL_SIZE", 256)
    assert hlm.lmer(ref["formula"], CROSSED, REML=ref["REML"]).optsummary.optimizer == "bobyqa"


def test_an_explicit_optimizer_wins_over_the_engines_choice(monkeypatch):
    monkeypatch.setattr(optimize, "GRADIENT_TAIL_SIZE", 1)
    ref = GRADIENT["crossed_ml"]
    model = hlm.lmer(ref["formula"], CROSSED, REML=False, optimizer="bobyqa")
    assert model.optsummary.optimizer == "bobyqa" and model.optsummary.initial == (1.0, 1.0, 1.0)
    assert_matches_lme4(model, ref)


def test_small_models_keep_bobyqa(models):
    name = "penicillin_crossed"
    ref = models.references["classic"][name]
    assert hlm.lmer(ref["formula"], models.frame("classic", name)).optsummary.optimizer == "bobyqa"


def test_convergence_check_from_the_gradient_gives_lme4s_message():
    # away from the optimum lme4's checkConv (central differences of the deviance) warns; the check
    # from the exact gradient finds the same scaled gradient and the same message
    dev = deviance("crossed_large_tail", True)
    theta = np.array(GRADIENT["crossed_reml"]["theta"]) * np.array([1.02, 1.0, 1.0])
    lower = dev.layout.lower
    from_gradient = convergence_messages(dev.objective, theta, lower, deviance_gradient(dev))
    from_differences = convergence_messages(dev.objective, theta, lower)
    assert len(from_gradient) == 1 and from_gradient[0].startswith("Model failed to converge with max|grad| = ")
    worst = [float(m.split("= ")[1].split(" ")[0]) for m in (from_gradient[0], from_differences[0])]
    assert worst[0] == pytest.approx(worst[1], rel=1e-4)
    at_optimum = np.array(GRADIENT["crossed_reml"]["theta"])
    assert convergence_messages(dev.objective, at_optimum, lower, deviance_gradient(dev)) == []
