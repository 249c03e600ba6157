"""The workflow's building blocks without Snakemake: preparing the data, writing result files."""
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import hlm
from hlm.data import Dataset, prepare, read_columns, read_data, source_variable
from hlm.errors import DataError
from hlm.results.records import ranef_frame, residuals_frame
from hlm.results.writers import jsonable, write_json, write_parquet, write_text

ROOT = Path(__file__).resolve().parent.parent


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
                                   "dtype": "float64", "n_missing": 0, "derived_from": "x",
                                   "centering": "group", "mean": pytest.approx(2.8),
                                   "sd": pytest.approx(2.4647515), "min": 1.0, "max": 5.5}
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
