"""Level codes against lme4 (tests/fixtures/r/ref_level_codes.R): a crossed model whose later block
is a pandas Categorical of 100 levels with a random slope (int8 codes, whose code · q + a once
overflowed in the sparse Z of the tail), its larger factor integer ids 1001..1300 (coded through a
table of their range)."""
import numpy as np
import pandas as pd
import pytest
from conftest import FIXEF_RTOL, FIXTURES, LL_ATOL, VARPAR_RTOL, load_reference

import hlm

REFERENCE = load_reference("level_codes_lme4.json")


@pytest.fixture(scope="module")
def model():
    data = pd.read_csv(FIXTURES / "data" / "level_codes.csv")
    data["b"] = data["b"].astype("category")
    return hlm.lmer(REFERENCE["formula"], data, REML=REFERENCE["REML"])


def test_fit_matches_lme4(model):
    # lmer(y ~ x + (1 | a) + (x | b), REML = TRUE, control = lmerControl(optimizer = "bobyqa"))
    assert [(b.nlevels, b.q) for b in model.deviance_function.blocks] == [(300, 1), (100, 2)]
    assert model.loglik == pytest.approx(REFERENCE["logLik"], abs=LL_ATOL)
    np.testing.assert_allclose(model.theta, REFERENCE["theta"], rtol=VARPAR_RTOL, atol=1e-4)
    assert model.sigma == pytest.approx(REFERENCE["sigma"], rel=VARPAR_RTOL)
    np.testing.assert_allclose(model.fixef.to_numpy(), list(REFERENCE["fixef"].values()), rtol=FIXEF_RTOL)


def test_levels_and_modes_are_lme4s(model):
    # rownames(ranef(m)$a), rownames(ranef(m)$b) and ranef(m)$b, level by level
    for group, levels in REFERENCE["levels"].items():
        assert list(model.ranef[group].index) == levels
    want = np.column_stack(list(REFERENCE["ranef_b"].values()))
    np.testing.assert_allclose(model.ranef["b"].to_numpy(), want, rtol=VARPAR_RTOL, atol=1e-4 * np.abs(want).max())
