"""Standardized coefficients against R's effectsize::standardize_parameters (r/ref_standardized.R)."""
import json

import pandas as pd
import pytest
from conftest import FIXTURES, ROOT

import hlm
from hlm.analysis.standardized import standardized
from hlm.data import read_data
from hlm.errors import ModelError
from hlm.results.records import model_record

REFERENCE = json.loads((FIXTURES / "standardized_effectsize.json").read_text())
MODELS = [name for name in REFERENCE if name != "versions"]


@pytest.fixture(scope="module")
def tables():
    hsb = read_data(ROOT / "data" / "hsb.sav").frame
    hsb["ses_mean"] = hsb.groupby("id")["ses"].transform("mean")
    hsb["ses_cwc"] = hsb["ses"] - hsb["ses_mean"]
    exam = pd.read_csv(FIXTURES / "data" / "exam.csv")
    exam["school"] = exam["school"].astype(str)
    return {"hsb": hsb, "exam": exam}


@pytest.fixture(scope="module")
def fits(tables):
    return {name: hlm.lmer(REFERENCE[name]["formula"], tables[name.split("_")[0]], REML=REFERENCE[name]["REML"])
            for name in MODELS}


@pytest.mark.parametrize("method", ["refit", "pseudo"])
@pytest.mark.parametrize("name", MODELS)
def test_standardized_matches_effectsize(fits, tables, name, method):
    # standardize_parameters(m, method = method): Std_Coefficient, CI_low, CI_high
    table = standardized(fits[name], tables[name.split("_")[0]], method)
    for term, row in REFERENCE[name][method].items():
        for key, value in row.items():
            assert table.loc[term, key] == pytest.approx(value, rel=1e-5, abs=1e-8), (term, key)


def test_seed_full_model_as_the_issue_quotes(fits, tables):
    refit = standardized(fits["hsb_full"], tables["hsb"], "refit")["Std_Coefficient"].round(4)
    pseudo = standardized(fits["hsb_full"], tables["hsb"], "pseudo")["Std_Coefficient"].round(4)
    assert refit[["ses", "disclim", "ses:disclim"]].tolist() == [0.2647, -0.1547, 0.0611]
    assert pseudo[["ses", "disclim", "ses:disclim"]].tolist() == [0.3003, -0.3753, 0.0661]


def test_record_carries_the_standardized_coefficients(fits, tables):
    spec = {"name": "full", "formula": REFERENCE["hsb_full"]["formula"], "REML": False, "optimizer": "bobyqa",
            "ddf": "Satterthwaite", "control": {}, "standardized": "pseudo"}
    record = model_record(fits["hsb_full"], spec, tables["hsb"])
    rows = {row["term"]: row for row in record["standardized"]["coefficients"]}
    assert record["standardized"]["method"] == "pseudo"
    assert rows["disclim"]["CI_low"] == pytest.approx(REFERENCE["hsb_full"]["pseudo"]["disclim"]["CI_low"], rel=1e-5)


def test_pseudo_needs_one_grouping_factor():
    frame = pd.read_csv(FIXTURES / "data" / "Penicillin.csv")
    model = hlm.lmer("diameter ~ 1 + (1 | plate) + (1 | sample)", frame)
    with pytest.raises(ModelError, match="one grouping factor.*refit"):
        standardized(model, frame, "pseudo")
    spec = {"name": "m", "formula": model.formula, "REML": True, "optimizer": "bobyqa", "ddf": "Satterthwaite",
            "control": {}, "standardized": "pseudo"}
    assert "one grouping factor" in model_record(model, spec, frame)["standardized"]["message"]
