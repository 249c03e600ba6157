"""The analysis config: defaults, and one-line errors naming the key for every mistake.

Each check runs on a copy of config/config.yaml (the seed's HSB analysis) with one thing broken.
"""
import copy

import pytest
import yaml
from conftest import ROOT

from hlm import cli
from hlm.data import Dataset, read_data, suspect_missing_codes
from hlm.errors import ConfigError
from hlm.pipeline.config import (
    check_config,
    comparison_names,
    data_spec,
    derived_models,
    formula_columns,
    load_config,
    model_specs,
    variance_explained_names,
)
from hlm.pipeline.paths import config_files, result_files
from hlm.pipeline.starter import guess_group, starter_config, write_starter_config

SHIPPED = yaml.safe_load((ROOT / "config" / "config.yaml").read_text(encoding="utf-8"))


@pytest.fixture
def config():
    return copy.deepcopy(SHIPPED)


def check(config):
    return check_config(config, workdir=ROOT)


def error_of(config):
    with pytest.raises(ConfigError) as info:
        check(config)
    message = str(info.value)
    assert "\n" not in message
    return message


# ---- the shipped config ------------------------------------------------------------------------

def test_shipped_config_declares_the_seed_analysis(config):
    checked = check(config)
    specs = model_specs(checked)
    assert specs["null"] == {"name": "null", "formula": "mathach ~ 1 + (1 | id)", "REML": False,
                             "optimizer": "bobyqa", "ddf": "Satterthwaite", "control": {},
                             "standardized": "none"}
    assert specs["random_slope"]["formula"] == "mathach ~ 1 + ses + (1 + ses | id)"
    assert specs["full"]["formula"] == "mathach ~ 1 + ses + disclim + ses:disclim + (1 + ses | id)"
    assert comparison_names(checked) == ["random_slope_vs_null", "full_vs_random_slope"]
    assert variance_explained_names(checked) == ["null_to_random_slope", "random_slope_to_full"]
    assert checked["icc"] == ["null"] and checked["diagnostics"] == ["full"]
    assert derived_models(checked) == ["null", "random_slope", "full", "contextual_group",
                                       "contextual_grand"]


def test_yaml_null_is_the_model_named_null(config):
    # `null:` and `[random_slope, null]` are YAML's None; the model is called null
    assert None in SHIPPED["models"]
    assert "null" in check(config)["models"]


def test_defaults_are_filled_in():
    minimal = {"data": {"path": "data/hsb.sav", "group": "id"},
               "models": {"m0": "mathach ~ 1 + (1 | id)"}}
    checked = check(minimal)
    assert checked["title"] == "Multilevel analysis"
    assert checked["data"]["missing"] == "listwise" and checked["data"]["missing_codes"] == []
    assert checked["estimation"] == {"REML": True, "optimizer": None,      # None: the engine's choice
                                     "ddf": "Satterthwaite", "control": {}}
    assert checked["icc"] == ["m0"]
    assert checked["comparisons"] == [] and checked["diagnostics"] == []
    assert checked["report"] == {"language": "zh", "formats": ["html", "md", "docx"], "standardized": "none"}
    assert model_specs(checked)["m0"]["REML"] is True
    assert minimal["data"] == {"path": "data/hsb.sav", "group": "id"}  # the input is not changed


def test_snakemake_validate_agrees_with_the_schema(config):
    from snakemake.utils import validate
    checked = check(config)
    raw = copy.deepcopy(checked)
    for key in ("title", "estimation", "report", "comparisons", "contextual"):
        raw.pop(key)
    validate(raw, str(ROOT / "workflow" / "schemas" / "config.schema.yaml"))
    assert raw["estimation"]["ddf"] == "Satterthwaite" and raw["report"]["language"] == "zh"


def test_model_entries_override_the_estimation_defaults(config):
    config["models"]["full_reml"] = {"formula": "mathach ~ ses * disclim + (ses | id)",
                                     "REML": True, "optimizer": "nelder_mead"}
    spec = model_specs(check(config))["full_reml"]
    assert (spec["REML"], spec["optimizer"], spec["ddf"]) == (True, "nelder_mead", "Satterthwaite")


def test_listwise_deletion_uses_every_model_variable(config):
    spec = data_spec(check(config))
    # ses_cwc, ses_mean and ses_gmc come from ses
    assert spec["complete"] == ["disclim", "id", "mathach", "ses"]
    config["data"]["missing"] = "per_model"
    assert "complete" not in data_spec(check(config))


def test_each_model_table_holds_the_columns_its_formula_names(config):
    config["models"]["by_sector"] = "mathach ~ sector + (1 | minority)"   # the group id comes last
    columns = data_spec(check(config))["columns"]
    assert columns["null"] == ["mathach", "id"]
    assert columns["contextual_group"] == ["mathach", "ses_cwc", "ses_mean", "id"]
    assert columns["by_sector"] == ["mathach", "sector", "minority", "id"]


def test_result_files_name_every_output(config):
    checked = check(config)
    files = result_files(checked)
    assert files["data"]["tables"] == {m: f"results/data/{m}.parquet" for m in checked["models"]}
    assert files["data"]["summary"] == "results/data/summary.json"
    assert files["models"]["full"] == {"json": "results/models/full.json",
                                       "residuals": "results/models/full_residuals.parquet",
                                       "ranef": "results/models/full_ranef.parquet"}
    assert files["comparisons"]["random_slope_vs_null"] == "results/comparisons/random_slope_vs_null.json"
    assert files["derived"] == "results/derived/derived.json"
    assert files["figures"] == {"full": "results/figures/full_diagnostics.png"}
    assert files["report"]["docx"] == "results/report/tables.docx"


def test_config_files_are_recorded_relative_to_the_project(tmp_path):
    from hlm.report.view import reproduce_command
    project = tmp_path / "project"
    # snakemake --configfile config/config.yaml and hlm run (an absolute path) record the same
    assert config_files(["config/config.yaml", project / "config" / "config.yaml"], project) == \
        ["config/config.yaml", "config/config.yaml"]
    outside = tmp_path / "my analysis.yaml"
    assert config_files([outside], project) == [outside.resolve().as_posix()]
    assert reproduce_command({"configfiles": ["config/config.yaml", "my run.yaml"]}) == \
        "snakemake --cores 2 --configfile config/config.yaml 'my run.yaml'"


def test_formula_columns():
    assert formula_columns("mathach ~ ses * disclim + I(ses^2) + log(size) + (1 + ses | id)") == \
        ["mathach", "ses", "disclim", "size", "id"]


# ---- mistakes: one line naming the key, the problem and the fix --------------------------------------

def test_unknown_model_in_a_comparison(config):
    config["comparisons"].append(["full", "randon_slope"])
    assert error_of(config) == ("config key 'comparisons[2]': model 'randon_slope' is not declared "
                                "under models; did you mean 'random_slope'?")


def test_unknown_model_elsewhere(config):
    config["diagnostics"] = ["ful"]
    assert "config key 'diagnostics': model 'ful'" in error_of(config)
    config["diagnostics"] = ["full"]
    config["variance_explained"][0] = ["null", "slope"]
    assert "config key 'variance_explained[0]': model 'slope'" in error_of(config)


def test_formula_column_not_in_data(config):
    config["models"]["random_slope"] = "mathach ~ 1 + sess + (1 + sess | id)"
    assert error_of(config) == ("config key 'models.random_slope': column 'sess' not in data; "
                                "did you mean 'ses'?")


def test_centred_column_without_centering(config):
    config["centering"] = {}
    assert error_of(config).startswith("config key 'models.contextual_group': column 'ses_cwc' not in data")


def test_formula_that_does_not_parse(config):
    config["models"]["full"] = "mathach ~ ses + (1 + ses | id"
    assert error_of(config).startswith("config key 'models.full': ")


def test_centering_variable_not_in_data(config):
    config["centering"]["sesx"] = "grand"
    assert error_of(config) == "config key 'centering.sesx': column 'sesx' not in data; did you mean 'ses'?"


def test_centering_method_unknown(config):
    config["centering"]["ses"] = "groups"
    assert error_of(config).startswith("config key 'centering.ses': ")


def test_data_file_does_not_exist(config):
    config["data"]["path"] = "data/hsb2.sav"
    message = error_of(config)
    assert message.startswith("config key 'data.path': data file 'data/hsb2.sav' does not exist")


def test_data_file_of_unknown_type(config):
    config["data"]["path"] = "data/hsb.xlsx"
    assert error_of(config).startswith("config key 'data.path': 'data/hsb.xlsx' is not a data file")


def test_group_not_in_data(config):
    config["data"]["group"] = "school"
    assert error_of(config) == "config key 'data.group': column 'school' not in data"


def test_unknown_key(config):
    config["estimation"]["reml"] = False
    assert error_of(config) == "unknown config key 'estimation.reml'; did you mean 'REML'?"


def test_missing_key(config):
    del config["data"]["group"]
    assert error_of(config) == ("config key 'data.group' is missing; add it, or data.levels for more than two "
                                "levels (see config/README.md)")


def test_wrong_type_and_value(config):
    config["estimation"]["REML"] = "no"
    assert error_of(config) == "config key 'estimation.REML': 'no' is not of type 'boolean'"
    config["estimation"]["REML"] = False
    config["report"]["language"] = "de"
    assert error_of(config).startswith("config key 'report.language': 'de' is not allowed; use one of zh, en")


def test_control_has_the_optimizers_keys(config):
    # the keys of hlm.engine.optimize.DEFAULT_CONTROL, typed; lme4's maxfun is not one of them
    from hlm.engine.optimize import DEFAULT_CONTROL
    schema = yaml.safe_load((ROOT / "workflow" / "schemas" / "config.schema.yaml").read_text())
    assert list(schema["$defs"]["control"]["properties"]) == list(DEFAULT_CONTROL)
    config["estimation"]["control"] = dict(DEFAULT_CONTROL)
    config["models"]["full"] = {"formula": config["models"]["full"], "control": {"maxeval": 20000}}
    assert model_specs(check(config))["full"]["control"] == {"maxeval": 20000}
    config["estimation"]["control"] = {"maxfun": 100000}
    assert error_of(config) == ("unknown config key 'estimation.control.maxfun'; allowed: maxeval, "
                                "ftol_rel, ftol_abs, xtol_abs, initial_step")
    config["estimation"]["control"] = {}
    config["models"]["full"]["control"] = {"maxEval": 100}
    assert error_of(config) == "unknown config key 'models.full.control.maxEval'; did you mean 'maxeval'?"
    config["models"]["full"]["control"] = {"maxeval": 0}
    assert error_of(config) == "config key 'models.full.control.maxeval': 0 is less than the minimum of 1"
    config["models"]["full"]["control"] = {"maxeval": 1.5}
    assert error_of(config) == "config key 'models.full.control.maxeval': 1.5 is not of type 'integer'"
    config["models"]["full"]["control"] = {"ftol_rel": 0}
    assert error_of(config).startswith("config key 'models.full.control.ftol_rel': 0 is less than or equal")


def test_bad_model_name(config):
    config["models"]["full model"] = "mathach ~ 1 + (1 | id)"
    assert "model name 'full model' must start with a letter" in error_of(config)


def test_contextual_needs_predictors_of_its_model(config):
    config["contextual"][0]["between"] = "meanses"
    assert error_of(config).startswith("config key 'contextual[0].between': 'meanses' is not a "
                                       "predictor of model 'contextual_group'")


def test_duplicate_comparison(config):
    config["comparisons"].append(["random_slope", "null"])
    assert error_of(config) == "config key 'comparisons': 'random_slope_vs_null' is declared twice; remove one"


def test_load_config_reports_a_missing_or_broken_file(tmp_path):
    with pytest.raises(ConfigError, match="config file '.*nothere.yaml' does not exist"):
        load_config(tmp_path / "nothere.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("models: [unclosed\n")
    with pytest.raises(ConfigError, match="is not valid YAML"):
        load_config(broken)


def test_cli_prints_one_line_and_exits_2(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["run", "nothere.yaml"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("hlm: error: config file 'nothere.yaml' does not exist")
    assert err.count("\n") == 1


# ---- hlm init --------------------------------------------------------------------------------------

def test_guess_group_finds_the_school_id():
    frame = read_data(ROOT / "data" / "hsb.sav").frame
    assert guess_group(frame) == "id"
    # without a telling name, the column within whose groups the school variables are constant
    assert guess_group(frame.rename(columns={"id": "unit_code"}).rename(columns={"unit_code": "k"})) == "k"


def test_starter_config_lists_variables_and_runs_the_checks(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    text = starter_config(read_data("data/hsb.sav"), "data/hsb.sav")
    assert "#   disclim   level 2   Disciplinary climate (学校纪律环境)" in text
    assert "#   ses       level 1" in text
    config = yaml.safe_load(text)
    assert config["data"] == {"path": "data/hsb.sav", "group": "id", "missing": "listwise",
                              "missing_codes": []}
    checked = check_config(config)
    assert list(checked["models"]) == ["null"]


def test_init_writes_and_refuses_to_overwrite(tmp_path, capsys):
    out = tmp_path / "config" / "config.yaml"
    data = str(ROOT / "data" / "hsb.sav")
    assert cli.main(["init", data, "-o", str(out)]) == 0
    assert capsys.readouterr().out == f"wrote {out}\n"
    assert load_config(out)["data"]["group"] == "id"
    assert cli.main(["init", data, "-o", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert cli.main(["init", data, "-o", str(out), "--force"]) == 0
    assert write_starter_config(data, tmp_path / "other.yaml").is_file()


@pytest.mark.parametrize("path, group, outcome, levels", [
    ("data/hsb.sav", "id", "mathach", None),
    ("tests/fixtures/data/contraception.sav", "district", "age", None),   # r/export_starter_data.R
    ("tests/fixtures/data/egsingle.sav", "childid", "math", ["childid", "schoolid"]),
])
def test_init_guesses_group_outcome_and_levels(path, group, outcome, levels):
    text = starter_config(read_data(ROOT / path), path)
    config = yaml.safe_load(text)
    assert config["data"]["group"] == group and config["data"].get("levels") == levels
    assert config["models"][None]["formula"] == f"{outcome} ~ 1 + (1 | {group})"  # YAML reads null: as None
    assert f"# outcome guessed: {outcome}, continuous" in text


def test_init_never_takes_a_two_valued_column_as_group_and_proposes_missing_codes():
    frame = read_data(ROOT / "tests/fixtures/data/contraception.sav").frame
    assert guess_group(frame[["use", "urban", "age"]]) is None
    frame["score"] = 3.0
    frame.loc[:4, "score"] = 99
    suspects = suspect_missing_codes(Dataset(frame), ())
    assert [(s["column"], s["value"]) for s in suspects] == [("score", 99)]


# ---- untrusted names and labels: inert YAML ----------------------------------------------------

HOSTILE = ["school\n__use_yte__: true", "a: b", "x # y", "'q\"", "{k: v}", "&anchor", "*alias",
           "!!python/object:os.system", "line\u2028sep", "next\x85line", "para\u2029graph", "tab\tcr\r"]


def hostile_dataset():
    import numpy as np
    import pandas as pd

    from hlm.data import Dataset
    rng = np.random.default_rng(1)
    columns = {"school id\n__use_yte__: true": np.repeat(np.arange(10), 5)}
    columns |= {name: rng.normal(size=50) for name in HOSTILE[1:]}
    labels = {name: f"label of {name}\n__use_yte__: true\nt: ?open('pwned', 'w')" for name in columns}
    return Dataset(pd.DataFrame(columns), variable_labels=labels)


def test_starter_config_parses_back_to_exactly_its_keys():
    dataset = hostile_dataset()
    path = "data/evil\n__use_yte__: true\u2028#.csv"
    text = starter_config(dataset, path)
    parsed = yaml.safe_load(text)
    assert list(parsed) == ["title", "data", "centering", "estimation", "models", "comparisons", "icc",
                            "variance_explained", "diagnostics", "report"]
    assert list(parsed["data"]) == ["path", "group", "missing", "missing_codes"]
    assert parsed["data"] == {"path": path, "group": "school id\n__use_yte__: true", "missing": "listwise",
                              "missing_codes": []}
    assert parsed["title"] == "Multilevel analysis of evil\n__use_yte__: true\u2028#.csv"
    assert list(parsed["models"]) == [None]  # the model named null, as check_config names it back
    outcome, *_, group = formula_columns(parsed["models"][None]["formula"])
    assert outcome in dataset.frame.columns and group == parsed["data"]["group"]
    # every comment line stays one line: PyYAML ends lines at \r \n \x85 \u2028 \u2029
    for line in text.split("\n"):
        assert not set(line) & set("\r\x85\u2028\u2029")


def test_config_yaml_refuses_aliases_and_duplicate_keys(tmp_path):
    laughs = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 9)}]\n" for i in range(8))
    (tmp_path / "laughs.yaml").write_text(laughs)
    (tmp_path / "twice.yaml").write_text("title: t\nmodels:\n  m: y ~ 1 + (1 | g)\n  m: y ~ x + (1 | g)\n")
    (tmp_path / "tagged.yaml").write_text("title: !!python/object/apply:os.system [echo hi]\n")
    with pytest.raises(ConfigError, match=r"laughs.yaml', line 1: YAML anchors and aliases"):
        load_config(tmp_path / "laughs.yaml")
    with pytest.raises(ConfigError, match=r"twice.yaml', line 4: key 'm' appears twice"):
        load_config(tmp_path / "twice.yaml")
    with pytest.raises(ConfigError, match=r"tagged.yaml' is not valid YAML"):
        load_config(tmp_path / "tagged.yaml")


def test_long_model_names_are_refused(config):
    config["models"]["m" * 300] = "mathach ~ 1 + (1 | id)"
    assert "the model name is 300 characters long; use at most 200" in error_of(config)
    config["models"].pop("m" * 300)
    config["models"]["m" * 150] = config["models"]["k" * 150] = "mathach ~ 1 + (1 | id)"
    config["comparisons"] = [["m" * 150, "k" * 150]]
    assert "config key 'comparisons[0]': its file name" in error_of(config)


def test_yte_in_a_config_is_refused_and_never_run(tmp_path, monkeypatch, capsys):
    from conftest import copy_project, snakemake
    folder = copy_project(tmp_path / "project")
    config = (folder / "config" / "config.yaml").read_text(encoding="utf-8")
    (folder / "config" / "config.yaml").write_text(
        "__use_yte__: true\n" + config.replace("title:", "title: ?open('pwned', 'w').write('x')\nold_title:", 1),
        encoding="utf-8")
    process = snakemake(folder, "-n")
    assert process.returncode != 0 and "unknown config key '__use_yte__'" in process.stderr
    monkeypatch.chdir(folder)
    assert cli.main(["run", "config/config.yaml", "-n"]) == 2
    assert "unknown config key '__use_yte__'" in capsys.readouterr().err
    assert not (folder / "pwned").exists()


@pytest.mark.parametrize("formula", ["mathach ~ poly(ses, 2) + (1 | id)", "mathach ~ log(ses, 2) + (1 | id)"])
def test_functions_the_evaluator_lacks_are_refused(config, formula):
    config["models"]["full"] = formula
    message = error_of(config)
    assert message.startswith("config key 'models.full': '") and "is not supported in a formula" in message


def test_init_on_a_csv_with_hostile_headers_writes_a_config_that_checks(tmp_path, monkeypatch):
    import numpy as np
    import pandas as pd
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(2)
    outcome, group = "score\n__use_yte__: true\nx: ?open('pwned', 'w')", "class: \"a\" # {b} &c"
    pd.DataFrame({group: np.repeat(np.arange(10), 6), outcome: rng.normal(size=60)}).to_csv("d.csv", index=False)
    assert cli.main(["init", "d.csv", "-o", "c.yaml"]) == 0
    checked = load_config("c.yaml", tmp_path)
    assert checked["data"]["group"] == group and formula_columns(checked["models"]["null"]["formula"]) == [outcome, group]
    assert not (tmp_path / "pwned").exists()
