"""lme4's convergence check (checkConv: deriv12's central differences of the deviance, then the
scaled gradient) against what lme4 computed (tests/fixtures/r/ref_convergence.R): at lme4's optimum
and at a point moved off it, where lme4 warns. An LMM whose tail the compiled loops factor takes
deriv12's 1 + 2k² evaluations in one compiled call; it gives the bits of the evaluations one by one."""
import numpy as np
import pandas as pd
import pytest
from conftest import FIXTURES, load_reference

import hlm
from hlm.engine.derivatives import derivatives
from hlm.engine.optimize import convergence_messages, scaled_gradient_messages

REFERENCE = load_reference("convergence_lme4.json")
MODELS = [name for name in REFERENCE if name != "versions"]


def deviance_function(name):
    ref = REFERENCE[name]
    return hlm.lmer(ref["formula"], pd.read_csv(FIXTURES / ref["data"]), REML=ref["REML"]).deviance_function


def vector(value):
    return np.atleast_1d(np.array(value, dtype=float))   # jsonlite writes one θ as a number


def matrix(value):
    k = round(np.size(value) ** 0.5)     # a 1 × 1 Hessian is written as a number too
    return np.array(value, dtype=float).reshape(k, k)


def max_grad(message):
    return float(message.split("max|grad| = ")[1].split(" ")[0])


@pytest.mark.parametrize("name", MODELS)
def test_central_derivatives_are_lme4s(name):
    # deriv12 divides by step² = 1e-8: its Hessian carries the evaluations' rounding 4e8 times, its
    # gradient 5e3 times; hlm's deviance and lme4's (CHOLMOD's factor) differ by up to 7e-13 of it on the
    # crossed models (Pastes), so the Hessians by up to 2e-4 of the deviance (measured: 1.8e-4, Pastes)
    ref, dev = REFERENCE[name], deviance_function(name)
    assert dev._compiled_tail
    for point in (ref, ref["moved"]):
        theta = vector(point["theta"])
        scale = abs(dev.objective(theta))
        gradient, hessian = dev.central_derivatives(theta)
        assert gradient == pytest.approx(vector(point["gradient"]), abs=1e-8 * scale)
        assert hessian == pytest.approx(matrix(point["hessian"]), abs=5e-4 * scale)
    assert dev.objective(vector(ref["moved"]["theta"])) == pytest.approx(ref["moved"]["objective"], rel=2e-12)


@pytest.mark.parametrize("name", MODELS)
def test_the_scaled_gradient_of_lme4s_derivatives_gives_lme4s_message(name):
    moved = REFERENCE[name]["moved"]
    assert scaled_gradient_messages(vector(moved["gradient"]), matrix(moved["hessian"])) == moved["messages"]


@pytest.mark.parametrize("name", MODELS)
def test_the_check_off_the_optimum_gives_lme4s_message(name):
    ref, dev = REFERENCE[name], deviance_function(name)
    moved = vector(ref["moved"]["theta"])
    ours = convergence_messages(dev.objective, moved, dev.layout.lower, central=dev.central_derivatives)
    (theirs,) = ref["moved"]["messages"]
    assert len(ours) == 1
    assert ours[0].replace(str(max_grad(ours[0])), "") == theirs.replace(str(max_grad(theirs)), "")
    assert max_grad(ours[0]) == pytest.approx(max_grad(theirs), rel=1e-2)   # R⁻¹g: the Hessians' 2e-4 (7e-3, Pastes)
    assert convergence_messages(dev.objective, vector(ref["theta"]), dev.layout.lower,
                                central=dev.central_derivatives) == []


@pytest.mark.parametrize("name", MODELS)
def test_one_compiled_call_gives_the_bits_of_the_evaluations_one_by_one(name):
    ref, dev = REFERENCE[name], deviance_function(name)
    for theta in (vector(ref["theta"]), vector(ref["moved"]["theta"])):
        compiled, one_by_one = dev.central_derivatives(theta), derivatives(dev.objective, theta)
        assert np.array_equal(compiled[0], one_by_one[0]) and np.array_equal(compiled[1], one_by_one[1])
