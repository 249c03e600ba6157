"""pbmodcomp against pbkrtest's PBmodcomp for a random-slope test (tests/fixtures/r/pbmodcomp_hsb.R,
1000 replicates): the same LRT and χ² p-value, and a bootstrap p-value within Monte Carlo error;
chunks gather to the same result whatever the chunking."""
import numpy as np
import pytest

import hlm
from hlm.analysis.pbmodcomp import pb_chunk, pb_gather, pbmodcomp
from hlm.errors import ModelError
from tests.conftest import LL_ATOL, P_RTOL, hsb_frame, load_reference

R = load_reference("pbmodcomp_lme4.json")
NSIM = 200
Z = 3.0


@pytest.fixture(scope="module")
def hsb():
    return hsb_frame()


def pair(hsb, size, REML=False):
    data = hsb[hsb["id"].isin(sorted(hsb["id"].unique())[:size])]
    return (hlm.lmer("mathach ~ ses + (ses | id)", data, REML=REML),
            hlm.lmer("mathach ~ ses + (1 | id)", data, REML=REML))


@pytest.mark.parametrize("case", R, ids=lambda case: f"{case['size']}_schools")
def test_pbmodcomp_agrees_with_pbkrtest(hsb, case):
    # R: PBmodcomp(large, small, nsim = 1000) by ML on the first `size` schools
    large, small = pair(hsb, case["size"])
    result = pbmodcomp(large, small, nsim=NSIM, seed=case["size"])
    assert result.lrt == pytest.approx(case["LRT"], abs=2 * LL_ATOL)
    assert result.df == case["df"]
    assert result.p_chisq == pytest.approx(case["p_chisq"], rel=P_RTOL, abs=1e-6)
    assert result.nsim == NSIM and result.failed <= NSIM // 100   # NLopt's roundoff limit, now and then
    # both p-values estimate P(LRT* > LRT); their Monte Carlo errors add
    p, q = result.p_bootstrap, case["p_PB"]
    pooled = (p * result.n_positive + q * case["npos"]) / (result.n_positive + case["npos"])
    se = np.sqrt(max(pooled * (1 - pooled), 1 / NSIM) * (1 / result.n_positive + 1 / case["npos"]))
    assert abs(p - q) <= Z * se, (p, q, se)
    assert result.p_bootstrap == (1 + result.n_extreme) / (1 + result.n_positive)


def test_reference_distribution_is_pbkrtests(hsb):
    # the share of hlm's LRT* below each of R's quantiles is that quantile's level, within the
    # Monte Carlo error of both samples
    case = R[0]
    large, small = pair(hsb, case["size"])
    ref = np.array([v for v in pb_chunk(large, small, 7, 0, NSIM)["lrt"] if v is not None])
    assert len(ref) >= NSIM - NSIM // 100
    for level, quantile in zip([0.25, 0.5, 0.75, 0.9, 0.95], case["ref_quantiles"]):
        se = np.sqrt(level * (1 - level) * (1 / len(ref) + 1 / case["nsim"]))
        assert abs((ref < quantile).mean() - level) <= Z * se, level


def test_chunks_gather_to_the_same_result(hsb):
    large, small = pair(hsb, 20)
    whole = pbmodcomp(large, small, nsim=9, seed=3)
    parts = [pb_chunk(large, small, 3, start, stop) for start, stop in ((4, 9), (0, 4))]
    assert pb_gather(parts, large, small, 9) == whole
    with pytest.raises(ModelError, match=r"\[0, 4\) do not cover replicates 0..8"):
        pb_gather(parts[1:], large, small, 9)


def test_reml_fits_are_refitted_by_ml(hsb):
    ml = pbmodcomp(*pair(hsb, 20), nsim=5, seed=4)
    reml = pbmodcomp(*pair(hsb, 20, REML=True), nsim=5, seed=4)
    assert reml.lrt == pytest.approx(ml.lrt, abs=1e-6)
    assert reml.to_dict()["p_bootstrap"] == pytest.approx(ml.p_bootstrap)


def test_refuses_models_it_cannot_compare(hsb):
    large, small = pair(hsb, 20)
    with pytest.raises(ModelError, match="pass the model with more parameters first"):
        pbmodcomp(small, large, nsim=5)
    other = pair(hsb, 30)[1]
    with pytest.raises(ModelError, match="different rows"):
        pbmodcomp(large, other, nsim=5)
