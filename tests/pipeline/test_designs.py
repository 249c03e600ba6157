"""Designs beyond the seed's two levels, run end to end as a new user would: three-level growth
data (egsingle), pupils in schools from a Stata file with value labels and a missing code
(Exam), a 0/1 outcome (Contraception). The data are small whole-unit samples of mlmRev's data
sets (tests/fixtures/r/export_designs.R); every number is checked against lme4 / lmerTest /
performance (tests/fixtures/r/ref_designs.R -> designs_lme4.json), and the report's sentences
against the facts they state.
"""
import json
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import FIXTURES, copy_project, hsb_frame, ok, snakemake

from hlm import cli, lmer
from hlm.analysis.simple_slopes import choose_interaction, simple_slopes
from hlm.analysis.variance import icc_by_level
from hlm.data import Dataset, prepare, read_data
from hlm.errors import ConfigError, DataError
from hlm.labels import labels
from hlm.pipeline.config import check_config
from hlm.pipeline.steps import fit_model
from hlm.report import apa
from hlm.report.inputs import load_results
from hlm.report.models import design_warnings
from hlm.report.sections import _johnson_neyman_sentences
from hlm.report.view import build_view, missing_code_warnings
from hlm.report.writers import MarkdownWriter
from hlm.results.writers import read_json

R = json.loads((FIXTURES / "designs_lme4.json").read_text(encoding="utf-8"))


def close(actual, expected, rel=1e-3):
    return actual == pytest.approx(expected, rel=rel)


def run_design(folder, name, data):
    """The project in folder with the design's config and data file, run to the report."""
    copy_project(folder)
    shutil.copy(FIXTURES / "data" / data, folder / "data" / data)
    shutil.copy(FIXTURES / "designs" / f"{name}.yaml", folder / "config" / "config.yaml")
    ok(snakemake(folder))
    return folder


@pytest.fixture(scope="module")
def egsingle(tmp_path_factory):
    return run_design(tmp_path_factory.mktemp("egsingle"), "egsingle", "egsingle_8_schools.sav")


@pytest.fixture(scope="module")
def exam(tmp_path_factory):
    return run_design(tmp_path_factory.mktemp("exam"), "exam", "exam.dta")


def result(folder, path):
    return read_json(Path(folder) / "results" / path)


def report(folder):
    return (Path(folder) / "results" / "report" / "report.md").read_text(encoding="utf-8")


def section(text, number):
    """The text of a report's top-level section `# <number> ...`, up to the next one."""
    return re.split(r"\n# \d+ ", text.split(f"\n# {number} ", 1)[1], maxsplit=1)[0]


def table_rows(text):
    """Markdown table rows of Table 1 as {variable: cells}."""
    rows = {}
    for line in section(text, 1).splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if line.startswith("| `"):
            rows[cells[0].strip("` ")] = cells
    return rows


# ---- three levels: occasions in children in schools ---------------------------------------------

def test_egsingle_structure_per_level_is_rs(egsingle):
    summary = result(egsingle, "data/summary.json")
    children, schools = summary["levels"]
    for entry, ref in ((children, R["egsingle"]["children"]), (schools, R["egsingle"]["schools"])):
        assert (entry["units"], entry["min"], entry["median"], entry["max"]) == (
            ref["units"], ref["min"], ref["median"], ref["max"])
    below = R["egsingle"]["children_per_school"]
    assert (schools["units_below"]["min"], schools["units_below"]["median"], schools["units_below"]["max"]) == (
        below["min"], below["median"], below["max"])
    assert summary["n"] == R["egsingle"]["n"] and summary["time"] == "year"
    intro = section(report(egsingle), 1).split("**Table 1**")[0]
    assert "Level 2 is the 250 units of ` childid `, with 2 to 6 measurement occasions each" in intro
    assert "Level 3 is the 8 units of ` schoolid `, with 49 to 341 measurement occasions each" in intro
    assert "11 to 80 units of ` childid ` each (Mdn = 25.50)" in intro
    assert "repeated measures over ` year `" in intro


def test_egsingle_ids_are_structure_not_predictors(egsingle):
    rows = table_rows(report(egsingle))
    for column in ("childid", "schoolid"):
        assert rows[column][2] == "Group id" and rows[column][3:7] == ["", "", "", ""]
    # R: mean(eg$year); sd(eg$year)
    assert rows["year"][3] == apa.estimate(R["egsingle"]["year"]["mean"])


def test_egsingle_icc_per_level_is_rs(egsingle):
    levels = result(egsingle, "derived/derived.json")["icc_levels"]["null"]
    ref = R["egsingle"]["null"]
    child, school = levels["levels"]
    assert (child["column"], child["level"], school["column"], school["level"]) == ("childid", 2, "schoolid", 3)
    assert close(child["share"], ref["share"]["child"]) and close(school["share"], ref["share"]["school"])
    assert close(levels["residual_share"], ref["share"]["residual"])
    assert close(child["correlation"], ref["same_child"]) and close(school["correlation"], ref["same_school"])
    assert close(child["design_effect"], ref["deff_child"]) and close(school["design_effect"], ref["deff_school"])
    # R: performance::icc(slope)$ICC_adjusted, a random-slope model: the adjusted ICC by its name
    adjusted = result(egsingle, "derived/derived.json")["icc_levels"]["growth_slope"]
    assert adjusted["kind"] == "adjusted" and close(adjusted["value"], R["egsingle"]["slope"]["icc_adjusted"])


def test_egsingle_icc_sentences_print_fractions_equal_to_their_values(egsingle):
    text = section(report(egsingle), 6)
    ref = R["egsingle"]["null"]
    fractions = re.findall(r"ICC = \(?([\d.]+)(?: \+ ([\d.]+)\))? / ([\d.]+) = ([\d.]+)", text)
    assert len(fractions) == 2
    for a, b, total, value in fractions:
        assert round((float(a) + float(b or 0)) / float(total), 3) == float(value)
    assert {float(v) for *_, v in fractions} == {round(ref["same_child"], 3), round(ref["same_school"], 3)}
    for share in ("school", "child", "residual"):
        assert apa.percent(ref["share"][share]) in text
    shares = re.findall(r"([\d.]+)% lies between units of ` \w+ ` at level \d \(([\d.]+) / ([\d.]+)\)", text)
    assert len(shares) == 2
    for percent, tau, total in shares:
        assert f"{100 * float(tau) / float(total):.1f}" == percent
    deffs = re.findall(r"DEFF = 1 \+ \((\d+\.\d+) − 1\) × (\d\.\d+) = (\d+\.\d+)", text)
    assert len(deffs) == 2
    for size, icc, deff in deffs:   # the printed arithmetic gives the printed value
        assert f"{1 + (float(size) - 1) * float(icc):.2f}" == deff
    assert {d for *_, d in deffs} == {apa.number(ref["deff_child"], 2), apa.number(ref["deff_school"], 2)}
    assert "0.368" not in text
    assert "Nakagawa's adjusted ICC (performance::icc) = " + apa.proportion(R["egsingle"]["slope"]["icc_adjusted"]) in text


def test_egsingle_growth_model_and_variance_explained_are_lme4s(egsingle):
    model = result(egsingle, "models/growth.json")
    ref = R["egsingle"]["growth"]
    assert abs(model["logLik"] - ref["logLik"]) < 1e-3
    for term, row in ref["fixed"].items():
        assert close(model["fixef"][term], row["Estimate"], rel=1e-5)
        assert close(model["df_satterthwaite"][term], row["df"], rel=1e-2)
    explained = result(egsingle, "derived/derived.json")["variance_explained"]["null_to_growth"]["values"]
    expected = R["egsingle"]["explained_null_to_growth"]
    assert close(explained["Residual"], expected["residual"])
    assert close(explained["childid:schoolid: (Intercept)"], expected["child"], rel=1e-2)
    assert close(explained["schoolid: (Intercept)"], expected["school"], rel=1e-2)


def test_egsingle_equations_are_raudenbush_and_bryks_three_level_form(egsingle):
    model = section(report(egsingle), 2).split("(` growth_slope `)", 1)[1].split("**Table", 1)[0]
    for line in (r"Y_{ijk}(\mathrm{math}) &= \pi_{0jk} + \pi_{1jk}a_{ijk}(\mathrm{year}) + e_{ijk}",
                 r"\pi_{1jk} &= \beta_{10k} + r_{1jk}",              # level 2: children's growth rates vary
                 r"\beta_{10k} &= \gamma_{100} + u_{10k}",            # level 3: and schools' mean rates
                 r"+ u_{10k}a_{ijk}(\mathrm{year}) + e_{ijk}"):
        assert line in model, line
    assert "only the combined model is shown" not in model


def test_egsingle_level_1_is_an_occasion_within_persons_in_both_languages(egsingle):
    # data.time: level 1 is a measurement occasion, never a student or an observation
    text = report(egsingle)
    data, models, icc = section(text, 1), section(text, 2), section(text, 6)
    assert ("The analysis uses N = 1,062 measurement occasions (level 1: repeated measures over ` year `, "
            "occasions within the persons of ` childid `). Level 2 is the 250 units of ` childid `, with 2 to 6 "
            "measurement occasions each") in data
    assert "with 49 to 341 measurement occasions each" in data and "level-1 units" not in data
    assert models.count("to N = 1,062 measurement occasions in J = 250") == 3 and " observations in" not in models
    assert "68.6% lies between the occasions within persons, at level 1 (1.600 / 2.334)" in icc
    assert "Two measurement occasions in the same unit of ` childid ` correlate" in icc
    zh = build_view(load_results(Path(egsingle) / "results" / "manifest.json"), "zh")
    writer = MarkdownWriter()
    intro = writer.render(zh["data"]["intro"])
    assert "分析样本为 N = 1,062 个测量时点（层1：重复测量，时间变量 ` year `；测量时点嵌套于 ` childid ` 的个体之内）" in intro
    assert "每个单元含 2 至 6 个测量时点" in intro and "层1单元" not in intro
    assert writer.render(zh["models"][0]["narrative"][0]).startswith("零模型以")
    assert "N = 1,062（测量时点），J = 250" in writer.render(zh["models"][0]["narrative"][0])
    icc_zh = "".join(writer.render(s) for entry in zh["icc"] for s in entry["sentences"])
    assert "层1（个体内、测量时点之间）占 68.6%" in icc_zh and "两个测量时点的相关" in icc_zh


def test_egsingle_trajectory_figure_shows_rs_means(egsingle):
    trajectory = result(egsingle, "figures/growth_trajectory.json")
    ref = R["egsingle"]
    assert [f"{t:g}" for t in trajectory["occasions"]] == list(ref["mean_by_year"])
    # R: tapply(eg$math, eg$year, mean); tapply(predict(growth, re.form = NA), eg$year, mean)
    assert close(trajectory["observed_mean"], list(ref["mean_by_year"].values()), rel=1e-9)
    assert close(trajectory["fitted_mean"], list(ref["fitted_mean_by_year"].values()), rel=1e-5)
    assert (trajectory["unit"], trajectory["n_units"], len(trajectory["lines"])) == ("childid", 250, 20)
    assert "observed trajectories of 20 of the 250 units of childid" in report(egsingle)
    assert (Path(egsingle) / "results" / "figures" / "growth_trajectory.png").stat().st_size > 5000


# ---- pupils in schools: labels, reference categories, omnibus tests, simple slopes -----------------

def test_exam_missing_code_and_rows_are_rs(exam):
    summary = result(exam, "data/summary.json")
    assert (summary["n"], summary["n_read"]) == (R["exam"]["n"], R["exam"]["n_read"])
    assert summary["suspect_missing_codes"] == []   # -99 is declared


def test_exam_coefficients_are_named_by_labels_with_the_configs_reference(exam):
    model = result(exam, "models/main.json")
    ref = R["exam"]["main"]
    assert list(model["fixef"]) == list(ref["fixed"])   # sex女, vrmid 50%, factor(intake)mid 50%, ...
    for term, row in ref["fixed"].items():
        assert close(model["fixef"][term], row["Estimate"], rel=1e-5), term
        assert close(model["se"][term], row["Std. Error"], rel=1e-4), term
    text = report(exam)
    assert "sex 为“女”与参照类别“男”之差" in text and "factor(intake) 为“mid 50%”与参照类别“bottom 25%”之差" in text
    assert "sex2" not in text and "factor(sex)" not in text and "vr2" not in text


def test_exam_type3_tests_are_lmertests(exam):
    model = result(exam, "models/main.json")
    tests = {row["term"]: row for row in model["anova"]}
    text = report(exam)
    for term, ref in R["exam"]["main"]["anova"].items():
        assert close(tests[term]["F"], ref["F"]) and tests[term]["NumDF"] == ref["NumDF"]
        assert close(tests[term]["DenDF"], ref["DenDF"], rel=1e-2) and close(tests[term]["p"], ref["p"], rel=1e-2)
        sentence = f"` {term} ` 的总体检验（lmerTest 的 III 型 F 检验）：{apa.f_test(ref['F'], ref['NumDF'], ref['DenDF'], ref['p'])}"
        assert (sentence in text) == (ref["NumDF"] > 1), term


def test_exam_level_2_variables_are_described_over_schools(exam):
    rows = table_rows(report(exam))
    ref = R["exam"]
    assert rows["schavg"][2] == "层2（按 school 的 8 个单元描述）"
    assert rows["schavg"][3] == apa.estimate(ref["schavg_schools"]["mean"])
    assert rows["schavg"][4] == apa.estimate(ref["schavg_schools"]["sd"])
    for label, count in ref["vr_schools"].items():   # vr is a school characteristic: counted over schools
        assert f"{label}：{count}（{apa.percent(count / 8)}）" in rows["vr"][1]
    for label, count in ref["sex_counts"].items():
        assert f"{label}：{count}（{apa.percent(count / ref['n'])}）" in rows["sex"][1]
    assert rows["sex"][2] == "层1" and rows["sex"][3] == ""


def test_exam_icc_is_rs(exam):
    derived = result(exam, "derived/derived.json")
    assert close(derived["icc"]["null"], R["exam"]["null"]["icc"])
    assert close(derived["design_effect"]["null"]["value"], R["exam"]["null"]["deff"])
    (a, b, c, value), = re.findall(r"ICC = ([\d.]+) / \(([\d.]+) \+ ([\d.]+)\) = ([\d.]+)", section(report(exam), 6))
    assert a == b and round(float(a) / (float(b) + float(c)), 3) == float(value)


def test_exam_simple_slopes_at_each_category(exam):
    record = result(exam, "figures/moderated_simple_slopes.json")
    assert record["moderator_kind"] == "categorical"
    rows = {row["at"]: row for row in record["slopes"]}
    assert list(rows) == list(R["exam"]["moderated"]["slopes_by_sex"])   # 男, 女: labels
    for level, ref in R["exam"]["moderated"]["slopes_by_sex"].items():
        assert close(rows[level]["Estimate"], ref["Estimate"], rel=1e-5)
        assert close(rows[level]["Std. Error"], ref["SE"], rel=1e-4)
        assert close(rows[level]["df"], ref["df"], rel=1e-2)
    assert "| 男 |" in section(report(exam), 7) and "| 女 |" in section(report(exam), 7)


def test_exam_johnson_neyman_interval_is_rs(exam):
    record = result(exam, "figures/jn_simple_slopes.json")
    ref = R["exam"]["jn"]
    jn = record["johnson_neyman"]
    assert len(jn["bounds"]) == len(ref["bounds"]) == 2
    for bound, expected in zip(jn["bounds"], ref["bounds"]):
        assert close(bound, expected, rel=1e-4)
    assert jn["significant_inside"] and close(jn["observed"], ref["schavg_range"], rel=1e-9)
    mean = next(r for r in record["slopes"] if r["at"] == "mean")
    assert close(mean["Estimate"], ref["at_mean"]["Estimate"], rel=1e-5)
    assert close(mean["df"], ref["at_mean"]["df"], rel=1e-2)
    text = section(report(exam), 7)
    low, high = (apa.estimate(b) for b in ref["bounds"])
    assert f"当 schavg 介于 {low} 与 {high} 之间时，standLRT 的简单斜率显著" in text   # by their labels (none here)
    assert (Path(exam) / "results" / "figures" / "jn_johnson_neyman.png").stat().st_size > 5000


# ---- mistakes a new user makes ----------------------------------------------------------------------

def test_a_forgotten_missing_code_is_flagged_with_the_line_to_add():
    dataset = read_data(FIXTURES / "data" / "exam.dta")
    _, summary = prepare(dataset, "school", {})
    assert summary["suspect_missing_codes"] == [{"column": "intake", "value": -99, "count": 24,
                                                 "reason": "unlabelled"}]
    (message,) = missing_code_warnings(summary, labels("en"))
    assert message.endswith("add to the config's data: missing_codes: [-99]")
    frame = pd.DataFrame({"g": [1, 1, 2, 2, 3, 3], "age": [31.0, 44, 999, 52, 38, 27]})
    _, summary = prepare(Dataset(frame), "g", {})
    assert summary["suspect_missing_codes"] == [{"column": "age", "value": 999, "count": 1, "reason": "usual"}]


def test_a_binary_outcome_fitted_as_linear_is_warned(tmp_path):
    frame, _ = prepare(read_data(FIXTURES / "data" / "contraception_10_districts.sav"), "district", {})
    spec = {"name": "m", "formula": "use ~ age + (1 | district)", "REML": True, "optimizer": "bobyqa",
            "ddf": "Satterthwaite", "control": {}}
    outputs = {k: tmp_path / f"{k}.{e}" for k, e in (("model", "json"), ("residuals", "parquet"), ("ranef", "parquet"))}
    fit_model(spec, frame, outputs)
    record = read_json(outputs["model"])
    assert record["outcome_values"] == R["contraception"]["values"] == [0, 1]
    assert design_warnings(record, {"variables": []}, labels("en")) == []   # the model says it, once
    (warning,) = [m for m in record["messages"] if "takes only two values" in m]
    assert "(0, 1)" in warning and "family: binomial" in warning and "glmer" in warning


def test_a_labelled_code_entered_as_a_number_is_warned():
    record = {"variables": {"vr": {"kind": "numeric"}}, "response": "y"}
    summary = {"variables": [{"name": "vr", "value_labels": {"1": "bottom 25%"}, "n_values": 3}]}
    (warning,) = design_warnings(record, summary, labels("en"))
    assert warning.startswith("vr has value labels") and "factor(vr)" in warning


def test_categorical_reference_by_label_or_code_and_unknown_reference():
    dataset = read_data(FIXTURES / "data" / "exam.dta")
    frame, _ = prepare(dataset, "school", {}, missing_codes=[-99], categorical={"sex": {"reference": "女"}})
    assert list(frame["sex"].cat.categories) == ["女", "男"]
    frame, _ = prepare(dataset, "school", {}, missing_codes=[-99], categorical={"vr": {"reference": 3}})
    assert list(frame["vr"].cat.categories) == ["top 25%", "bottom 25%", "mid 50%"]
    with pytest.raises(DataError, match="categorical 'sex': reference 'girl'"):
        prepare(dataset, "school", {}, categorical={"sex": {"reference": "girl"}})


def test_centering_at_a_value_and_within_a_higher_level():
    frame = pd.DataFrame({"c": [1, 1, 2, 2, 3, 3], "s": [1, 1, 1, 1, 2, 2], "age": [7.0, 9, 8, 10, 8, 8]})
    out, summary = prepare(Dataset(frame), ["c", "s"], {"age": [{"at": 8}, "group:s", "group"]})
    assert out["age_at8"].tolist() == [-1, 1, 0, 2, 0, 0]
    assert out["age_mean_s"].tolist() == [8.5] * 4 + [8.0] * 2
    assert out["age_mean"].tolist() == [8, 8, 9, 9, 8, 8]
    levels = {v["name"]: v["level"] for v in summary["variables"]}
    assert (levels["age_mean"], levels["age_mean_s"], levels["age_at8"]) == (2, 3, 1)


def config_for(tmp_path, data, **changes):
    shutil.copy(FIXTURES / "data" / data, tmp_path / data)
    config = {"data": {"path": data, "group": "school"}, "models": {"m": "normexam ~ standLRT + (1 | school)"}}
    for key, value in changes.items():
        config[key] = value
    return config


def test_config_refuses_a_model_without_a_random_term(tmp_path):
    config = config_for(tmp_path, "exam.dta", models={"ols": "normexam ~ standLRT"})
    with pytest.raises(ConfigError, match=r"^config key 'models.ols': .* has no random term .*OLS"):
        check_config(config, tmp_path)


def test_config_refuses_levels_that_are_not_nested(tmp_path):
    # Exam's student ids restart in every school: student 1 is in every school
    config = config_for(tmp_path, "exam.dta")
    config["data"] = {"path": "exam.dta", "levels": ["student", "school"]}
    with pytest.raises(ConfigError, match=r"^config key 'data.levels': 'student' is not nested in 'school'"):
        check_config(config, tmp_path)
    assert check_config({**config, "data": {"path": "exam.dta", "levels": ["school"]}}, tmp_path)["data"]["group"] \
        == "school"


def test_config_refuses_a_per_model_comparison_on_different_rows(tmp_path):
    config = config_for(tmp_path, "exam.dta", models={"a": "normexam ~ standLRT + (1 | school)",
                                                     "b": "normexam ~ standLRT + intake + (1 | school)"},
                        comparisons=[["b", "a"]])
    config["data"].update(missing="per_model", missing_codes=[-99])
    with pytest.raises(ConfigError, match=r"^config key 'comparisons\[0\]': models 'b' and 'a' are fitted to different"):
        check_config(config, tmp_path)


def test_config_refuses_contextual_between_that_is_not_the_group_mean(tmp_path):
    config = config_for(tmp_path, "exam.dta", centering={"standLRT": ["group"]},
                        models={"c": "normexam ~ standLRT_cwc + schavg + (1 | school)"},
                        contextual=[{"model": "c", "within": "standLRT_cwc", "between": "schavg"}])
    with pytest.raises(ConfigError, match=r"'contextual\[0\].between': 'schavg' is not the group mean of 'standLRT'.*"
                                          r"use standLRT_mean"):
        check_config(config, tmp_path)


def test_hlm_run_exits_2_with_one_line_before_any_job(tmp_path, capsys, monkeypatch):
    config = config_for(tmp_path, "exam.dta", models={"ols": "normexam ~ standLRT"})
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    assert cli.main(["run", "config.yaml"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "has no random term" in err
    assert not (tmp_path / "results").exists()


# ---- the seed's data: a dummy moderator and the Johnson–Neyman interval ------------------------------

@pytest.fixture(scope="module")
def hsb():
    return hsb_frame()


def test_the_seeds_johnson_neyman_interval_is_rs(hsb):
    model = lmer("mathach ~ 1 + ses + disclim + ses:disclim + (1 + ses | id)", hsb, REML=False)
    result = simple_slopes(model, *choose_interaction(model.design), hsb)
    jn, ref = result["johnson_neyman"], R["hsb"]
    for bound, expected in zip(jn["bounds"], ref["full_jn_bounds"], strict=True):
        assert close(bound, expected, rel=1e-4)
    # between the boundaries (both below the observed disclim) the slope is not significant
    assert not jn["significant_inside"] and close(jn["observed"], ref["disclim_range"], rel=1e-9)
    interval, everywhere = (MarkdownWriter().render(s) for s in
                            _johnson_neyman_sentences(result, labels("en")["diagnostics"]))
    assert "is below -7.11 or above -2.98" in interval
    assert everywhere == "So the slope of ses is significant over the whole observed range of disclim."


def test_a_dummy_moderator_is_probed_at_its_two_values(hsb):
    model = lmer("mathach ~ ses * sector + (ses | id)", hsb, REML=False)
    result = simple_slopes(model, *choose_interaction(model.design), hsb)
    assert result["moderator_kind"] == "two_valued" and "johnson_neyman" not in result
    assert [row["moderator_value"] for row in result["slopes"]] == [0.0, 1.0]   # no school at mean ± 1 SD
    for row, ref in zip(result["slopes"], R["hsb"]["sector_slopes"].values(), strict=True):
        assert close(row["Estimate"], ref["Estimate"], rel=1e-5) and close(row["Std. Error"], ref["SE"], rel=1e-4)
        assert close(row["df"], ref["df"], rel=1e-2)


def test_a_singular_null_model_has_an_undefined_icc():
    frame = pd.read_csv(FIXTURES / "data" / "Dyestuff2.csv")
    model = lmer("Yield ~ 1 + (1 | Batch)", frame)   # lme4: the Batch variance is 0 (singular)
    record = icc_by_level(model, ["Batch"])
    assert record["kind"] == "undefined" and record["zero"] == ["Batch"]
    assert labels("en")["icc"]["undefined"].startswith("The ICC of {model} is undefined: τ00 = 0")


def test_hlm_init_proposes_the_suspected_missing_codes(tmp_path):
    output = tmp_path / "config.yaml"
    assert cli.main(["init", str(FIXTURES / "data" / "exam.dta"), "-o", str(output)]) == 0
    text = output.read_text(encoding="utf-8")
    assert "missing_codes: [-99]     # proposed, check them: intake -99 (24 rows)" in text
    assert yaml.safe_load(text)["data"]["missing_codes"] == [-99]


def test_hlm_fit_warns_of_a_binary_outcome(capsys):
    assert cli.main(["fit", "use ~ age + (1 | district)", str(FIXTURES / "data" / "contraception_10_districts.sav")]) == 0
    out = capsys.readouterr().out    # among the summary's messages, as lme4 prints its warnings
    assert "the outcome 'use' takes only two values (0, 1)" in out and "family: binomial (hlm.glmer)" in out
