"""Power by simulation against an lme4 + lmerTest simulation of the same design
(tests/fixtures/r/power_hsb.R, 1000 replicates a run): the power agrees within 3 Monte Carlo
standard errors, the rejection rate at effect 0 is alpha within Monte Carlo error, results do
not depend on the chunking, and bad input gets one line."""
import json
import logging

import numpy as np
import pandas as pd
import pytest

import hlm
from hlm.analysis.power import PowerSpec, chunks, gather, power_curve, run_chunk, sized_frame
from hlm.errors import ConfigError, ModelError
from tests.conftest import FIXTURES, hsb_frame, load_reference

R = load_reference("power_lme4.json")
FORMULA = R["formula"]
Z = 3.0   # Monte Carlo standard errors allowed


@pytest.fixture(scope="module")
def hsb():
    return hsb_frame()


@pytest.fixture(scope="module")
def full(hsb):
    return hlm.lmer(FORMULA, hsb, REML=False)


def spec(**changes):
    values = {"model": "full", "term": "ses:disclim", "effect": 0.5, "along": "id", "sizes": [20, 40], "nsim": 200,
              "seed": 1, "chunk": 100, **changes}
    return PowerSpec.from_config("interaction", values)


def r_run(size, effect):
    return next(r for r in R["runs"] if r["size"] == size and r["effect"] == effect)


def within_mc_error(power, n, r):
    pooled = (power * n + r["hits"]) / (n + r["n_ok"])
    se = np.sqrt(pooled * (1 - pooled) * (1 / n + 1 / r["n_ok"]))
    return abs(power - r["power"]) <= Z * se


def test_the_fit_is_rs(full):
    # the parameters R simulated from
    assert full.fixef.to_numpy() == pytest.approx(list(R["fit"]["beta"].values()), rel=1e-5)
    assert full.theta == pytest.approx(R["fit"]["theta"], rel=1e-3)


@pytest.mark.parametrize("size", [20, 40])
def test_sizes_take_the_first_schools_in_sorted_id_order(full, hsb, size):
    frame = sized_frame(full, hsb, "id", size)
    assert sorted(frame["id"].unique()) == pytest.approx(r_run(size, 0.5)["ids"])
    assert len(frame) == r_run(size, 0.5)["nobs"]


def test_power_agrees_with_lme4_lmertest(full, hsb):
    # R: simulate(newparams) -> refit -> lmerTest's Satterthwaite t test of ses:disclim, 1000 replicates per size
    result = power_curve(full, hsb, spec())
    assert result["method"] == "Satterthwaite t" and result["model"] == "full"
    for row in result["curve"]:
        r = r_run(row["size"], 0.5)
        assert row["nsim"] == 200 and row["failed"] <= 2
        assert within_mc_error(row["power"], row["nsim"] - row["failed"], r), (row, r["power"])
        assert row["ci_low"] < row["power"] < row["ci_high"]
    assert result["curve"][0]["power"] < result["curve"][1]["power"]


def test_effect_zero_rejects_at_alpha(full, hsb):
    result = power_curve(full, hsb, spec(effect=0, sizes=[40], seed=2))
    row = result["curve"][0]
    n = row["nsim"] - row["failed"]
    assert abs(row["power"] - 0.05) <= Z * np.sqrt(0.05 * 0.95 / n)
    assert within_mc_error(row["power"], n, r_run(40, 0))
    assert abs(r_run(40, 0)["power"] - 0.05) <= Z * np.sqrt(0.05 * 0.95 / r_run(40, 0)["n_ok"])


def test_clopper_pearson_interval():
    # R: binom.test(7, 20)$conf.int -> 0.1539092 0.5921885
    from hlm.analysis.power import clopper_pearson
    assert clopper_pearson(7, 20) == pytest.approx((0.1539092, 0.5921885), abs=1e-7)
    assert clopper_pearson(0, 20)[0] == 0 and clopper_pearson(20, 20)[1] == 1


def test_results_do_not_depend_on_the_chunking(full, hsb):
    texts = set()
    for chunk in (1, 7, 12):
        s = spec(nsim=12, sizes=[20, 170], chunk=chunk)
        texts.add(json.dumps(gather(s, [run_chunk(full, hsb, s, *job) for job in chunks(s)]), sort_keys=True))
    assert len(texts) == 1
    s = spec(nsim=12, sizes=[20, 170], chunk=7)
    jobs = chunks(s)
    assert jobs == [(20, 0, 7), (20, 7, 12), (170, 0, 7), (170, 7, 12)]
    shuffled = [run_chunk(full, hsb, s, *job) for job in reversed(jobs)]
    assert json.dumps(gather(s, shuffled), sort_keys=True) in texts


def test_more_units_than_the_data_repeat_units_with_new_ids(full, hsb):
    frame = sized_frame(full, hsb, "id", 170)
    assert frame["id"].nunique() == 170 and list(frame["id"].unique()) == list(range(170))
    first = sized_frame(full, hsb, "id", 10)
    copies = frame[frame["id"] >= 160]
    assert len(frame) == full.nobs + len(first)
    pd.testing.assert_frame_equal(copies.drop(columns="id").reset_index(drop=True),
                                  first.drop(columns="id").reset_index(drop=True))


def test_nested_ids_are_renamed_in_copies_crossed_kept():
    data = pd.read_csv(FIXTURES / "data" / "design.csv")
    model = hlm.lmer("y ~ x + (1 | school) + (1 | class) + (1 | rater)", data)
    frame = sized_frame(model, data, "school", 5)
    assert frame["school"].nunique() == 5
    assert frame["class"].nunique() == 10                      # 2 classes a school, nested: new ids
    assert frame.groupby("class")["school"].nunique().max() == 1
    assert set(frame["rater"]) == set(data["rater"])           # raters are crossed: the same four


def test_glmm_power_uses_wald_z():
    data = pd.read_csv(FIXTURES / "data" / "cbpp.csv")
    data["period"] = data["period"].astype(str)
    model = hlm.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", data)
    s = PowerSpec.from_config("cbpp", {"term": "period2", "effect": -1.5, "along": "herd", "sizes": [10, 20],
                                       "nsim": 6, "chunk": 4})
    result = power_curve(model, data, s)
    assert result["method"] == "z" and "model" not in result
    assert [row["size"] for row in result["curve"]] == [10, 20]
    assert all(row["nsim"] == 6 and row["power"] is not None for row in result["curve"])


def test_refits_that_do_not_converge_are_counted(hsb, caplog):
    data = hsb[hsb["id"].isin(sorted(hsb["id"].unique())[:30])]
    model = hlm.lmer(FORMULA, data, REML=False, control={"maxeval": 8})
    s = spec(sizes=[20], nsim=5)
    with caplog.at_level(logging.WARNING, logger="hlm.analysis.power"):
        row = power_curve(model, data, s)["curve"][0]
    assert row["failed"] == 5 and row["power"] is None and row["ci_low"] is None
    assert row["messages"] == [{"message": "failure to converge in # evaluations (raise control['maxeval'] or try "
                                           "another optimizer)", "count": 5}]
    assert "5 of 5 refits failed or did not converge" in caplog.text


def test_progress_bar(full, hsb, capsys):
    power_curve(full, hsb, spec(nsim=3, sizes=[20]), progress=True)
    assert "power interaction" in capsys.readouterr().err
    power_curve(full, hsb, spec(nsim=3, sizes=[20]))
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("changes, words", [
    ({"sizes": [1, 20]}, "'power.interaction.sizes': 1 units is too few"),
    ({"sizes": []}, "'power.interaction.sizes'"),
    ({"sizes": [20, 20]}, "lists a size twice"),
    ({"sizes": "20"}, "must be a list of whole numbers"),
    ({"nsim": 0}, "'power.interaction.nsim': 0 must be a whole number of 1 or more"),
    ({"chunk": 0}, "'power.interaction.chunk'"),
    ({"alpha": 1.5}, "'power.interaction.alpha': 1.5 must be a number between 0 and 1"),
    ({"alpha": 0}, "'power.interaction.alpha'"),
    ({"effect": "big"}, "'power.interaction.effect'"),
    ({"ddf": "Satterwaite"}, "'power.interaction.ddf'"),
    ({"sizez": [20]}, "'power.interaction.sizez' is unknown; did you mean 'sizes'?"),
])
def test_bad_config_gets_one_line_naming_the_key(changes, words):
    with pytest.raises(ConfigError) as error:
        spec(**changes)
    assert words in str(error.value) and "\n" not in str(error.value)


def test_missing_key():
    with pytest.raises(ConfigError, match="'power.p.nsim' is missing"):
        PowerSpec.from_config("p", {"term": "ses", "effect": 1, "along": "id", "sizes": [5]})


def test_unknown_term_and_along_name_the_models(full, hsb):
    with pytest.raises(ModelError) as error:
        run_chunk(full, hsb, spec(term="ses:disclimate"), 20, 0, 1)
    assert "did you mean 'ses:disclim'" in str(error.value)
    assert "its terms are (Intercept), ses, disclim, ses:disclim" in str(error.value)
    with pytest.raises(ModelError, match="'school' is not a grouping factor .* its grouping factors are id"):
        run_chunk(full, hsb, spec(along="school"), 20, 0, 1)


def test_gather_refuses_gaps_and_overlaps(full, hsb):
    s = spec(nsim=4, sizes=[20], chunk=2)
    first, second = (run_chunk(full, hsb, s, *job) for job in chunks(s))
    with pytest.raises(ModelError, match="cover 2 of 4 replicates"):
        gather(s, [first])
    with pytest.raises(ModelError, match="overlap"):
        gather(s, [first, first, second])
    with pytest.raises(ModelError, match="size 40, which is not among its sizes"):
        gather(s, [first, second, {**second, "size": 40}])


def test_kenward_roger_is_the_models_ddf_when_asked(full, hsb):
    result = hlm.power_curve(full, hsb, spec(nsim=2, sizes=[20], ddf="KR"))
    assert result["method"] == "Kenward-Roger"
    assert all(p is not None for p in run_chunk(full, hsb, spec(nsim=2, sizes=[20], ddf="KR"), 20, 0, 2)["p"])
