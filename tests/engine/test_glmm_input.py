"""A GLMM's response, weights, offset and nAGQ as the user gives them: the forms glmer accepts give
its fit, bad input one clear line (hlm.errors, exit code 2 from `hlm fit`), and a binary outcome
fitted by lmer a warning that names family: binomial.
"""
import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from conftest import FIXTURES, ROOT
from glmm_reference import LL_ATOL, MODELS, fit, frame, values

import hlm
from hlm.engine.design import build_design
from hlm.errors import DataError, FormulaError, ModelError

CBPP = "cbind(incidence, size - incidence) ~ period + (1 | herd)"
CONTRACEPTION = MODELS["contraception_probit"]["formula"]


def cli(*args):
    return subprocess.run([sys.executable, "-m", "hlm.cli", *args], capture_output=True, text=True, cwd=ROOT,
                          check=False)


def same_fit(model, name):
    ref = MODELS[name]
    assert model.loglik == pytest.approx(ref["logLik"], abs=LL_ATOL)
    np.testing.assert_allclose(model.fixef, values(ref["fixef"]), rtol=1e-4)


# ---- the forms of a binomial response -----------------------------------------------------------

def test_proportions_with_weights_fit_as_counts():
    # glmer(prop ~ period + (1 | herd), weights = size): the same fit as cbind(incidence, size - incidence)
    df = frame("cbpp_proportion")
    same_fit(hlm.glmer("prop ~ period + (1 | herd)", df, weights="size"), "cbpp_laplace")
    same_fit(hlm.glmer("prop ~ period + (1 | herd)", df, weights=df["size"].to_numpy()), "cbpp_laplace")


def test_two_category_logical_and_01_outcomes_fit_alike():
    # use is "N"/"Y": the second category, as R orders them, is the success
    df = frame("contraception_probit")
    same_fit(hlm.glmer(CONTRACEPTION, df, link="probit"), "contraception_probit")
    df["used"] = df["use"] == "Y"
    same_fit(hlm.glmer(CONTRACEPTION.replace("use ~", "used ~"), df, link="probit"), "contraception_probit")
    df["used01"] = df["used"].astype(int)
    same_fit(hlm.glmer(CONTRACEPTION.replace("use ~", "used01 ~"), df, link="probit"), "contraception_probit")


def test_rows_with_a_missing_weight_are_left_out():
    df = frame("cbpp_proportion")
    df.loc[3, "size"] = np.nan
    model = hlm.glmer("prop ~ period + (1 | herd)", df, weights="size")
    complete = hlm.glmer("prop ~ period + (1 | herd)", df.drop(index=3), weights="size")
    assert (model.nobs, model.n_dropped) == (55, 1)
    assert 3 not in model.design.rows
    assert model.loglik == pytest.approx(complete.loglik, abs=1e-9)


def test_offset_enters_the_linear_predictor_not_the_columns():
    df = frame("epil_offset")
    design = build_design("y ~ trt + offset(log(base)) + (1 | subject)", df, response=lambda v, f: df.y.to_numpy())
    assert design.fixed_names == ("(Intercept)", "trtprogabide")
    np.testing.assert_allclose(design.offset, np.log(df.base))
    # population predictions on the link scale: offset + Xβ
    model = fit("epil_offset")
    assert model.predict(type="link", random=False)[:3] == pytest.approx(
        np.log(df.base[:3]) + model.design.X[:3] @ model.fixef.to_numpy())


# ---- bad input: one line naming the column, term or value and the fix ------------------------------

def bad_fits():
    cbpp, ticks = frame("cbpp_laplace"), frame("grouseticks")
    contraception = frame("contraception_probit")
    three = contraception.assign(livch3=contraception.livch.astype(str))
    return [
        (lambda: hlm.glmer("incidence ~ period + (1 | herd)", cbpp), DataError, "incidence.*0 and 1"),
        (lambda: hlm.glmer("livch3 ~ age + (1 | district)", three), DataError, "livch3.*4 categories"),
        (lambda: hlm.glmer("cHEIGHT ~ 1 + (1 | BROOD)", ticks, family="poisson"), DataError, "cHEIGHT.*negative"),
        (lambda: hlm.glmer("I(TICKS / 2) ~ 1 + (1 | BROOD)", ticks, family="poisson"), DataError, "non-integer"),
        (lambda: hlm.glmer(CBPP, cbpp, family="poisson"), DataError, "2 columns"),
        (lambda: hlm.glmer("TICKS ~ 1 + (1 | BROOD) + (1 | LOCATION)", ticks, family="poisson", nAGQ=5),
         ModelError, "single scalar random-effect term.*2 random-effect terms"),
        (lambda: hlm.glmer("use ~ age + (urban | district)", contraception, nAGQ=9), ModelError,
         r"vector-valued term \(\(Intercept\) \+ urbanY \| district\)"),
        (lambda: hlm.glmer(CBPP, cbpp, nAGQ=26), ModelError, "from 0 to 25"),
        (lambda: hlm.glmer(CBPP, cbpp, nAGQ=2.5), ModelError, "whole number"),
        (lambda: hlm.glmer(CBPP, cbpp, family="gamma"), ModelError, "family 'gamma' is unknown"),
        (lambda: hlm.glmer(CBPP, cbpp, link="log"), ModelError, "link 'log' does not go with family binomial"),
        (lambda: hlm.glmer("prop ~ period + (1 | herd)", cbpp, weights="trials"), DataError, "'trials' not in data"),
        (lambda: hlm.glmer("prop ~ period + (1 | herd)", cbpp, weights=-cbpp["size"]), DataError, "negative"),
        (lambda: hlm.glmer(CBPP, cbpp, control={"optimizer": ("bobyqa",) * 3}), ModelError, "one per stage"),
        (lambda: hlm.lmer("y ~ trt + offset(log(base)) + (1 | subject)", frame("epil_offset")), FormulaError,
         "offset.*hlm.glmer"),
        (lambda: hlm.lmer(CBPP, cbpp), DataError, "2 columns.*family: binomial"),
    ]


@pytest.mark.parametrize("case", range(len(bad_fits())))
def test_bad_input_is_one_clear_line(case):
    call, error, message = bad_fits()[case]
    with pytest.raises(error, match=message) as raised:
        call()
    assert "\n" not in str(raised.value)


def test_cli_bad_input_exits_2_with_one_line():
    result = cli("fit", "TICKS ~ 1 + (1 | BROOD) + (1 | LOCATION)", str(FIXTURES / "data" / "grouseticks.csv"),
                 "--family", "poisson", "--nagq", "5")
    assert result.returncode == 2
    assert result.stderr.startswith("hlm: error: nAGQ = 5 needs a single scalar random-effect term")
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


# ---- the guard: a binary outcome fitted as continuous ---------------------------------------------

def test_lmer_on_a_binary_outcome_warns_naming_family_binomial(caplog):
    df = frame("contraception_probit")
    df["used"] = (df["use"] == "Y").astype(int)
    model = hlm.lmer("used ~ age + (1 | district)", df)
    warning = [m for m in model.messages if "family: binomial" in m]
    assert warning == [("the outcome 'used' takes only two values (0, 1): a linear mixed model treats it as "
                        "continuous; for a binary outcome fit a GLMM with family: binomial (hlm.glmer)")]
    assert warning[0] in model.summary() and warning[0] in caplog.text
    assert not any("family" in m for m in hlm.lmer("age ~ 1 + (1 | district)", df).messages)


# ---- hlm fit --family ---------------------------------------------------------------------------

def test_cli_fits_a_glmm_and_prints_glmers_layout(tmp_path):
    # summary(glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), cbpp, binomial))
    ref = MODELS["cbpp_laplace"]
    data = tmp_path / "cbpp.csv"
    pd.read_csv(FIXTURES / ref["data"]).assign(period=lambda d: "p" + d.period.astype(str)).to_csv(data, index=False)
    result = cli("fit", CBPP, str(data), "--family", "binomial")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Generalized linear mixed model fit by maximum likelihood (Laplace Approximation)")
    assert " Family: binomial  ( logit )" in result.stdout
    assert ["194.1", "204.2", "-92.0", "184.1", "51"] == result.stdout.splitlines()[5].split()
    assert "Estimate Std. Error z value Pr(>|z|)" in result.stdout
    record = json.loads(cli("fit", CBPP, str(data), "--family", "binomial", "--nagq", "9", "--json").stdout)
    agq = MODELS["cbpp_agq9"]
    assert record["logLik"] == pytest.approx(agq["logLik"], abs=LL_ATOL)
    assert record["se"]["periodp2"] == pytest.approx(agq["se"]["period2"], rel=1e-3)
