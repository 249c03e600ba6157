"""The blocked Cholesky factor on crossed and nested models against lme4 (tests/fixtures/r/ref_blocked.R):
blocks reordered (the largest first), a later block with a random slope, three factors, and the
first block's nonzero rows that its elimination touches."""
import json

import numpy as np
import pandas as pd
import pytest
from conftest import FIXEF_RTOL, FIXTURES, LL_ATOL, SE_RTOL, VARPAR_RTOL

import hlm
from hlm.engine.deviance import ProfiledDeviance

REFERENCE = json.loads((FIXTURES / "blocked_lme4.json").read_text())
DATA = {"penicillin_reversed": "Penicillin.csv"}


def frame(name):
    data = pd.read_csv(FIXTURES / "data" / DATA.get(name, "blocked.csv"))
    for column in ("plate", "sample", "g", "h", "k"):
        if column in data:
            data[column] = data[column].astype(str)
    return data


@pytest.fixture(scope="module")
def fits():
    return {name: hlm.lmer(ref["formula"], frame(name), REML=ref["REML"]) for name, ref in REFERENCE.items()}


@pytest.mark.parametrize("name", list(REFERENCE))
def test_fit_matches_lme4(fits, name):
    # lmer(formula, data, REML, control = lmerControl(optimizer = "bobyqa")): logLik, θ, σ, β, SE
    model, ref = fits[name], REFERENCE[name]
    assert model.loglik == pytest.approx(ref["logLik"], abs=LL_ATOL)
    np.testing.assert_allclose(model.theta, ref["theta"], rtol=VARPAR_RTOL, atol=1e-4)
    assert model.sigma == pytest.approx(ref["sigma"], rel=VARPAR_RTOL)
    np.testing.assert_allclose(model.fixef.to_numpy(), list(ref["fixef"].values()), rtol=FIXEF_RTOL)
    np.testing.assert_allclose(np.sqrt(np.diag(model.vcov)), list(ref["se"].values()), rtol=SE_RTOL)


@pytest.mark.parametrize("name", list(REFERENCE))
def test_objective_at_lme4s_theta(fits, name):
    # REMLcrit(m) or deviance(m) of lme4, at lme4's θ: the criterion itself, whatever the optimizer did
    model, ref = fits[name], REFERENCE[name]
    assert model.objective(np.array(ref["theta"])) == pytest.approx(ref["objective"], abs=1e-6)


@pytest.mark.parametrize("name", list(REFERENCE))
def test_conditional_modes_and_variances(fits, name):
    # ranef(m, condVar = TRUE): the modes and attr(, "postVar") of every factor, level by level
    assert_modes_and_variances(fits[name], REFERENCE[name])


def test_a_gradient_fit_keeps_the_optimizers_evaluation():
    # L-BFGS-B with the exact gradient keeps its evaluation at θ̂ instead of factoring again (not at
    # a singular optimum, which the boundary check moves); the optimizer's tail has uninitialised
    # memory above its diagonal, which the kept one must not
    ref = REFERENCE["penicillin_reversed"]
    model = hlm.lmer(ref["formula"], frame("penicillin_reversed"), REML=ref["REML"], optimizer="lbfgsb")
    assert model.optimum_evaluation is not None
    assert not np.triu(model.optimum_evaluation.tail, 1).any()
    assert model.loglik == pytest.approx(ref["logLik"], abs=LL_ATOL)
    assert_modes_and_variances(model, ref)


def assert_modes_and_variances(model, ref):
    for group, columns in ref["ranef"].items():
        modes = model.ranef[group]
        assert list(modes.index) == ref["level_names"][group]
        want = np.column_stack(list(columns.values()))
        np.testing.assert_allclose(modes.to_numpy(), want, rtol=VARPAR_RTOL, atol=1e-4 * np.abs(want).max() + 1e-10)
        want_var = np.array(ref["condvar"][group], dtype=float).reshape(len(want), want.shape[1], want.shape[1])
        got_var = np.concatenate([model.ranef_condvar[label] for label, term in
                                  zip(model.group_labels, model.design.terms) if term.group == group], axis=1)
        np.testing.assert_allclose(got_var, want_var, rtol=VARPAR_RTOL, atol=1e-4 * np.abs(want_var).max() + 1e-10)


def test_blocks_are_ordered_by_size(fits):
    # the factor with most random effects is eliminated level by level, whatever the formula's order
    blocks = fits["slope_on_smaller_first"].deviance_function.blocks
    assert [(b.nlevels, b.q) for b in blocks] == [(60, 1), (8, 2)]
    assert [(b.nlevels, b.q) for b in fits["penicillin_reversed"].deviance_function.blocks] == [(24, 1), (6, 1)]


def test_elimination_touches_only_the_tail_rows_a_level_shares():
    # each plate of Penicillin meets all 6 samples: its rows are the 6 samples, the intercept and y
    data = frame("penicillin_reversed")
    model = hlm.lmer(REFERENCE["penicillin_reversed"]["formula"], data)
    level_ptr, rows, _ = model.deviance_function._first_block_rows
    assert np.all(np.diff(level_ptr) == 8)
    # g of the blocked data: the h levels each g level met, then x's intercept, x and y
    deviance = ProfiledDeviance.from_design(fits_design("three_factors"), reml=False)
    level_ptr, rows, values = deviance._first_block_rows
    data = frame("three_factors")
    g_levels = sorted(data.g.unique())
    for j in (0, 7, 59):
        met = data[data.g == g_levels[j]]
        expected = len(met.h.unique()) + len((met.h + ":" + met.k).unique()) + 3
        assert level_ptr[j + 1] - level_ptr[j] == expected
        level = slice(level_ptr[j], level_ptr[j + 1])
        assert np.all(np.diff(rows[level]) > 0)
        # Z_later'Z_g counts the level's rows once per later factor; X's intercept row counts them once
        random = rows[level] < deviance.n_random_tail
        assert values[level][random].sum() == 2 * len(met)
        assert values[level][rows[level] == deviance.n_random_tail].item() == len(met)


def fits_design(name):
    return hlm.lmer(REFERENCE[name]["formula"], frame(name), REML=REFERENCE[name]["REML"]).design


def test_kept_evaluations_are_not_overwritten_by_the_optimizer(fits):
    # the objective factors in scratch memory; a kept evaluation has its own, zero above the diagonal
    deviance = fits["three_factors"].deviance_function
    theta = np.array(REFERENCE["three_factors"]["theta"])
    kept = deviance.evaluate(theta)
    tail = kept.tail.copy()
    deviance.objective(theta * 1.5)
    np.testing.assert_array_equal(kept.tail, tail)
    assert np.all(np.triu(kept.tail, 1) == 0)


@pytest.mark.parametrize("q", [1, 2])
def test_the_loops_written_out_for_small_blocks_give_the_general_loops_bits(q):
    # random levels (crossed-like: a few tail rows each, ascending) eliminated by the loops for any q and
    # by those written out for q = 1 and 2, as numba compiles them (the native module compiles them into
    # their callers)
    from hlm.engine.kernels import jitted
    kernels, rng = jitted(), np.random.default_rng(q)
    J, m = 40, 9
    root = rng.normal(size=(J, q, q))
    A11 = np.ascontiguousarray(root @ root.transpose(0, 2, 1) + np.eye(q))
    lam = np.tril(rng.uniform(0.2, 2.0, size=(q, q)))
    counts = rng.integers(1, m, size=J)
    level_ptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    level_rows = np.concatenate([np.sort(rng.choice(m, size=c, replace=False)) for c in counts]).astype(np.int64)
    level_values = rng.normal(size=(len(level_rows), q))
    general, written = rng.normal(size=(m, m)), np.zeros((m, m))
    expected = kernels._eliminate_block(A11, lam, level_ptr, level_rows, level_values, general)
    if q == 1:
        found = kernels._eliminate_scalar_block(A11, lam[0, 0], level_ptr, level_rows, level_values, written)
    else:
        found = kernels._eliminate_pair_block(A11, lam, level_ptr, level_rows, level_values, written)
    assert np.array_equal(found[0], expected[0]) and np.array_equal(found[1], expected[1])
    assert found[2] == expected[2]
    assert np.array_equal(np.tril(written), np.tril(general)) and np.tril(general).any()
