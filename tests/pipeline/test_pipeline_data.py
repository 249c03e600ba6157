"""The workflow's building blocks without Snakemake: preparing the data, the steps, writing
result files."""
import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import DF_RTOL, FIXEF_RTOL, HSB, LL_ATOL, ROOT, SE_RTOL

import hlm
from hlm.data import Dataset, prepare, read_columns, read_data, source_variable
from hlm.errors import DataError, ModelError
from hlm.pipeline.steps import compare_models, write_tables
from hlm.results.records import model_record, ranef_frame, residuals_frame, restore_model
from hlm.results.writers import jsonable, read_json, read_table, write_json, write_parquet, write_text


def small():
    frame = pd.DataFrame({
        "school": [1.0, 1.0, 1.0, 2.0, 2.0, 3.0, 3.0],
        "y": [1.0, 2.0, 3.0, -99.0, 5.0, 6.0, 7.0],
        "x": [0.0, 1.0, 2.0, 3.0, np.nan, 5.0, 6.0],
        "w": [0.5, 0.5, 0.5, 1.5, 1.5, 2.5, 2.5],
        "z": [1.0, 1.0, 1.0, 1.0, 1.0, np.nan, 1.0],
    })
    return Dataset(frame, {"y": "Outcome (结果)"}, {"w": {0.5: "low"}})


def test_listwise_deletion_then_centering_on_the_analysed_rows():
    frame, summary = prepare(small(), "school", {"x": ["group", "grand"]}, complete=["y", "x"],
                             missing_codes=[-99])
    assert frame["school"].tolist() == [1, 1, 1, 3, 3] and frame["school"].dtype == np.int64
    assert frame["x_mean"].tolist() == [1.0, 1.0, 1.0, 5.5, 5.5]
    assert frame["x_cwc"].tolist() == [-1.0, 0.0, 1.0, -0.5, 0.5]
    assert frame["x_gmc"].tolist() == pytest.approx([-2.8, -1.8, -0.8, 2.2, 3.2])
    assert (summary["n_read"], summary["n_dropped"], summary["n"], summary["n_groups"]) == (7, 2, 5, 2)
    assert summary["missing_by_variable"] == {"school": 0, "y": 1, "x": 1}
    assert summary["complete_cases_on"] == ["x", "y"]
    assert summary["group_sizes"]["counts"] == {"1": 3, "3": 2}
    variables = {v["name"]: v for v in summary["variables"]}
    assert variables["y"]["label"] == "Outcome (结果)" and variables["y"]["level"] == 1
    assert variables["w"]["level"] == 2 and variables["w"]["value_labels"] == {"0.5": "low"}
    assert variables["x_mean"] == {"name": "x_mean", "label": "x, group mean", "level": 2,
                                   "dtype": "float64", "n_missing": 0, "n_values": 2, "derived_from": "x",
                                   "centering": "group", "units": 2, "unit": "school",
                                   "mean": pytest.approx(3.25),  # over the 2 schools, not the 5 rows
                                   "sd": pytest.approx(4.5 / np.sqrt(2)), "min": 1.0, "max": 5.5}
    assert variables["school"]["level"] == "group" and "mean" not in variables["school"]


def test_per_model_keeps_incomplete_rows():
    frame, summary = prepare(small(), "school", {}, complete=None)
    assert len(frame) == 7 and summary["n_dropped"] == 0 and summary["complete_cases_on"] is None
    assert frame["y"].tolist()[3] == -99.0  # not a missing code here


def test_missing_codes_leave_the_group_id_alone():
    dataset = small()
    frame = dataset.frame.assign(school=[-99.0, -99.0, -99.0, 2.0, 2.0, 3.0, 3.0])
    out, summary = prepare(Dataset(frame), "school", {}, complete=["y"], missing_codes=[-99])
    assert out["school"].tolist() == [-99, -99, -99, 2, 3, 3]  # the id -99 is a school, y -99 is missing
    assert summary["missing_by_variable"] == {"school": 0, "y": 1}


def test_prepare_names_a_missing_column():
    with pytest.raises(DataError, match="variable 'v' not in data"):
        prepare(small(), "school", {}, complete=["v"])
    with pytest.raises(DataError, match="group id 'class' not in data"):
        prepare(small(), "class", {})


def test_read_columns_without_loading(tmp_path):
    assert read_columns(ROOT / "data" / "hsb.sav")[:4] == ["id", "minority", "female", "ses"]
    small().frame.to_csv(tmp_path / "d.csv", index=False)
    small().frame.to_parquet(tmp_path / "d.parquet")
    assert read_columns(tmp_path / "d.csv") == ["school", "y", "x", "w", "z"]
    assert read_columns(tmp_path / "d.parquet") == ["school", "y", "x", "w", "z"]
    with pytest.raises(DataError, match="does not exist"):
        read_columns(tmp_path / "nothere.sav")


def test_source_variable():
    centering = {"ses": ["group", "grand"]}
    assert [source_variable(c, centering) for c in ("ses_cwc", "ses_mean", "ses_gmc", "mathach")] == \
        ["ses", "ses", "ses", "mathach"]


def test_json_is_plain_deterministic_and_atomic(tmp_path):
    obj = {"b": np.float64(1.5), "a": [np.int64(2), np.nan, np.inf], "s": pd.Series({"x": 1.0}),
           "t": pd.DataFrame({"u": [1, 2]}), "flag": np.bool_(True), "zh": "学校"}
    path = tmp_path / "sub" / "out.json"
    write_json(path, obj)
    text = path.read_text(encoding="utf-8")
    assert json.loads(text) == {"b": 1.5, "a": [2, None, None], "s": {"x": 1.0},
                                "t": [{"u": 1}, {"u": 2}], "flag": True, "zh": "学校"}
    assert list(json.loads(text)) == ["b", "a", "s", "t", "flag", "zh"]  # order kept, not sorted
    write_json(path, obj)
    assert path.read_text(encoding="utf-8") == text
    assert [p.name for p in path.parent.iterdir()] == ["out.json"]  # no temporary file left
    assert jsonable(pd.NA) is None


def test_a_failed_write_keeps_the_old_file(tmp_path):
    path = tmp_path / "out.txt"
    write_text(path, "old")

    class Broken:
        def to_parquet(self, tmp, index):
            Path(tmp).write_text("half")
            raise OSError("disk full")

    with pytest.raises(OSError):
        write_parquet(path, Broken())
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_parquet_is_byte_identical(tmp_path):
    frame = pd.DataFrame({"a": [1.0, 2.0], "b": ["x", "y"]})
    write_parquet(tmp_path / "one.parquet", frame)
    write_parquet(tmp_path / "two.parquet", frame)
    assert (tmp_path / "one.parquet").read_bytes() == (tmp_path / "two.parquet").read_bytes()


def test_residuals_are_on_the_rows_the_model_used(models):
    # lmer(mathach ~ log(ses + 2) + (1 | id), REML = FALSE) drops the 41 rows where ses + 2 < 0
    # (R's na.omit; nobs 7144, tests/fixtures/r/nan_rows.R)
    frame = models.frame("hsb", "null")
    model = hlm.lmer("mathach ~ log(ses + 2) + (1 | id)", frame, REML=False)
    residuals = residuals_frame(model, frame)
    assert len(residuals) == 7144
    assert residuals["row"].tolist() == np.flatnonzero(frame["ses"] + 2 > 0).tolist()
    assert residuals["id"].tolist() == frame["id"].iloc[residuals["row"]].tolist()
    observed = frame["mathach"].to_numpy()[residuals["row"]]
    assert np.allclose(residuals["fitted"] + residuals["residual"], observed)


def test_residuals_of_a_model_with_a_removed_term():
    # z is named in the formula but its term is removed; the rows are those the model used
    data = small().frame.assign(x=[0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0], y=[1.0, 2.5, 3.0, 3.5, 5.0, 6.5, 7.0])
    model = hlm.lmer("y ~ x + z - z + (1 | school)", data, REML=False)
    residuals = residuals_frame(model, data)
    assert residuals["row"].tolist() == model.design.rows.tolist()
    assert len(residuals) == model.nobs


def test_ranef_long_form():
    data = pd.DataFrame({"y": [1.0, 2.0, 4.0, 3.0, 5.0, 4.5, 6.0, 7.0],
                         "x": [0.0, 1.0, 2.0, 0.5, 1.5, 0.0, 1.0, 2.0],
                         "g": [1224, 1224, 1224, 1288, 1288, 1296, 1296, 1296]})
    model = hlm.lmer("y ~ x + (1 | g)", data, REML=False)
    long = ranef_frame(model)
    assert list(long.columns) == ["grp", "level", "term", "value", "condsd"]
    assert long["level"].tolist() == ["1224", "1288", "1296"] and set(long["term"]) == {"(Intercept)"}
    assert np.allclose(long["value"], model.ranef["g"]["(Intercept)"])


def test_hsb_reads_with_labels():
    dataset = read_data(ROOT / "data" / "hsb.sav")
    frame, summary = prepare(dataset, "id", {"ses": ["group"]}, complete=["mathach", "ses"])
    assert (summary["n"], summary["n_groups"]) == (7185, 160)
    assert frame["id"].iloc[0] == 1224


# ---- the steps: one table per model, fits restored from their records ---------------------------

def small_spec(tmp_path, missing, columns):
    """A data step's spec (data_spec) for small(): missing code -99, x group-centred."""
    small().frame.to_csv(tmp_path / "small.csv", index=False)
    centering = {"x": ["group"]}
    spec = {"path": str(tmp_path / "small.csv"), "group": "school", "missing": missing, "missing_codes": [-99],
            "centering": centering, "columns": columns}
    if missing == "listwise":
        spec["complete"] = sorted({source_variable(c, centering) for names in columns.values() for c in names})
    return spec


@pytest.mark.parametrize("missing", ["listwise", "per_model"])
def test_each_model_gets_its_columns_on_the_analysed_rows(tmp_path, missing):
    columns = {"a": ["y", "school"], "b": ["y", "x_cwc", "x_mean", "school"]}
    tables = [tmp_path / "a.parquet", tmp_path / "b.parquet"]
    write_tables(small_spec(tmp_path, missing, columns), tables, tmp_path / "summary.json")
    a, b = read_table(tables[0]), read_table(tables[1])
    assert list(a.columns) == ["y", "school"] and list(b.columns) == ["y", "x_cwc", "x_mean", "school"]
    # listwise: the rows complete on y and x (rows 3 and 4 have y -99 and x missing), for every model;
    # per_model: every row, and each model drops those it cannot use
    assert a["school"].tolist() == ([1, 1, 1, 3, 3] if missing == "listwise" else [1, 1, 1, 2, 2, 3, 3])
    assert len(b) == len(a) and read_json(tmp_path / "summary.json")["missing"] == missing


def test_a_models_table_does_not_change_with_another_model(tmp_path):
    # w has no missing value on the analysed rows: adding it to b leaves a's rows, and a's table, alone
    before, after = tmp_path / "before.parquet", tmp_path / "after.parquet"
    write_tables(small_spec(tmp_path, "listwise", {"a": ["y", "school"], "b": ["y", "x", "school"]}),
                 [before, tmp_path / "b.parquet"], tmp_path / "summary.json")
    write_tables(small_spec(tmp_path, "listwise", {"a": ["y", "school"], "b": ["y", "x", "w", "school"]}),
                 [after, tmp_path / "b.parquet"], tmp_path / "summary.json")
    assert before.read_bytes() == after.read_bytes()


HSB_SPECS = {name: {"name": name, "formula": HSB[name]["formula"], "REML": HSB[name]["REML"], "optimizer": "bobyqa",
                    "ddf": "Satterthwaite", "control": {}} for name in ("null", "full", "full_reml")}


def saved_record(models, name, tmp_path):
    """The record the fit step writes for a reference model, read back from its JSON file."""
    write_json(tmp_path / f"{name}.json", model_record(models.fit("hsb", name), HSB_SPECS[name]))
    return read_json(tmp_path / f"{name}.json")


def test_a_restored_fit_has_lme4s_numbers_without_optimizing(models, tmp_path, caplog):
    record, frame = saved_record(models, "full", tmp_path), models.frame("hsb", "full")
    ref = HSB["full"]
    with caplog.at_level(logging.INFO, logger="hlm.engine.optimize"):
        restored = restore_model(record, frame)
        table = restored.coef_table(ddf="Satterthwaite")
    assert [r for r in caplog.records if r.name == "hlm.engine.optimize"] == []
    assert restored.loglik == pytest.approx(ref["logLik"], abs=LL_ATOL)
    for term, value in ref["fixef"].items():
        assert table.loc[term, "Estimate"] == pytest.approx(value, rel=FIXEF_RTOL), term
        assert table.loc[term, "Std. Error"] == pytest.approx(ref["se"][term], rel=SE_RTOL), term
        assert table.loc[term, "df"] == pytest.approx(ref["df_satterthwaite"][term], rel=DF_RTOL), term


def test_a_record_restored_on_other_data_is_refused(models, tmp_path):
    record, frame = saved_record(models, "null", tmp_path), models.frame("hsb", "null")
    other = frame.assign(mathach=frame["mathach"] + np.where(frame.index == 0, 1.0, 0.0))
    with pytest.raises(ModelError, match="does not belong to this data"):
        restore_model(record, other)


def test_a_comparison_optimizes_only_the_ml_refits(models, tmp_path, caplog):
    # R: anova(null, full_reml) refits full_reml by ML: its logLik is the ML full model's
    records = [saved_record(models, name, tmp_path) for name in ("null", "full_reml")]
    frame = models.frame("hsb", "null")
    with caplog.at_level(logging.INFO, logger="hlm.engine.optimize"):
        compare_models(records, [frame, frame], tmp_path / "comparison.json")
    assert len([r for r in caplog.records if r.name == "hlm.engine.optimize"]) == 1
    result = read_json(tmp_path / "comparison.json")
    assert result["models"] == ["null", "full_reml"] and result["refitted_with_ML"] == ["full_reml"]
    assert result["logLik"] == pytest.approx([HSB["null"]["logLik"], HSB["full"]["logLik"]], abs=LL_ATOL)
    assert result["Chisq"] == pytest.approx(2 * (HSB["full"]["logLik"] - HSB["null"]["logLik"]), abs=2 * LL_ATOL)


def test_a_model_without_fixed_effects_is_recorded_and_restored(tmp_path):
    # R (tests/fixtures/r/ref_hardening.R): lmer(Reaction ~ 0 + (1 | Subject), sleepstudy) is an ML fit
    from conftest import FIXTURES, load_reference

    from hlm.pipeline.steps import fit_model
    r = load_reference("hardening_lme4.json")["no_fixed_effects"]
    table = pd.read_csv(FIXTURES / "data" / "sleepstudy.csv")
    spec = {"name": "m", "formula": r["formula"], "REML": True, "optimizer": "bobyqa", "ddf": "Satterthwaite",
            "control": None}
    outputs = {name: tmp_path / f"m_{name}.{'json' if name == 'model' else 'parquet'}"
               for name in ("model", "residuals", "ranef")}
    fit_model(spec, table, outputs)
    model = restore_model(read_json(outputs["model"]), table)
    assert model.REML is False and model.loglik == pytest.approx(r["logLik"], abs=LL_ATOL)
