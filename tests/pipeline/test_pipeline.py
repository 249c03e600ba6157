"""The declared analysis end to end: Snakemake runs config/config.yaml on data/hsb.sav.

Every run happens in a copy of the project under pytest's tmp folder, never in the repo's
results/. Numbers are checked against lme4/lmerTest (tests/fixtures/hsb_lme4.json) at the
tolerances of DESIGN.md.
"""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import ROOT, copy_project, hsb_frame, ok, planned_jobs, snakemake

from hlm import cli
from hlm.pipeline.config import check_config, comparison_names, model_specs

REFERENCE = json.loads((ROOT / "tests" / "fixtures" / "hsb_lme4.json").read_text())
RECORDS = json.loads((ROOT / "tests" / "fixtures" / "records_lme4.json").read_text())  # r/ref_records.R
SEED_MODELS = ["null", "random_slope", "full", "contextual_group", "contextual_grand"]


def files_state(folder):
    """path -> (mtime, bytes) of every result file."""
    return {p.relative_to(folder).as_posix(): (p.stat().st_mtime_ns, p.read_bytes())
            for p in sorted(Path(folder, "results").rglob("*")) if p.is_file() and "logs" not in p.parts}


def log_times(folder):
    """step/name.log -> mtime of every job log."""
    logs = Path(folder, "results", "logs")
    return {p.relative_to(logs).as_posix(): p.stat().st_mtime_ns for p in sorted(logs.rglob("*.log"))}


def edit_config(folder, change):
    path = Path(folder) / "config" / "config.yaml"
    config = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(config)
    path.write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False), encoding="utf-8")


@pytest.fixture(scope="module")
def hsb_run(tmp_path_factory):
    """The shipped analysis, every target (figures and report too), run once."""
    folder = copy_project(tmp_path_factory.mktemp("hsb"))
    ok(snakemake(folder))
    return folder


def read(folder, path):
    return json.loads((Path(folder) / path).read_text(encoding="utf-8"))


def close(actual, expected, rel=None, abs=None):
    return actual == pytest.approx(expected, rel=rel, abs=abs)


# ---- the DAG ---------------------------------------------------------------------------------------

def test_dry_run_plans_one_job_per_model_and_comparison(tmp_path):
    folder = copy_project(tmp_path)
    plan = planned_jobs(ok(snakemake(folder, "-n")))
    core = {"all": 1, "data": 1, "fit": 5, "compare": 2, "derive": 1, "diagnostics": 1,
            "manifest": 1, "report": 1}
    assert {rule: plan.get(rule) for rule in core} == core
    assert not (folder / "results").exists()


def test_every_rule_declares_threads_memory_and_a_log():
    rules = set()
    for path in sorted((ROOT / "workflow" / "rules").glob("*.smk")):
        text = path.read_text()
        starts = [m.start() for m in re.finditer(r"^\s*(rule|checkpoint) \w+:", text, re.MULTILINE)] + [len(text)]
        for start, end in zip(starts, starts[1:]):
            rule = text[start:end]
            name = re.search(r"(?:rule|checkpoint) (\w+):", rule).group(1)
            rules.add(name)
            for directive in ("log:", "threads:", "mem_mb=", "runtime="):
                assert directive in rule, f"rule {name} in {path.name} lacks {directive}"
    assert {"data", "fit", "compare", "derive", "diagnostics", "manifest", "report"} <= rules


# ---- a real run on HSB: lme4's numbers ---------------------------------------------------------------

@pytest.mark.parametrize("name", SEED_MODELS)
def test_model_json_carries_lme4_numbers(hsb_run, name):
    model, ref = read(hsb_run, f"results/models/{name}.json"), REFERENCE["models"][name]
    assert model["name"] == name and model["formula"] == ref["formula"]
    assert model["spec"] == {"name": name, "formula": ref["formula"], "REML": False, "optimizer": "bobyqa",
                             "ddf": "Satterthwaite", "control": {}, "standardized": "none"}
    assert model["optsummary"]["final"] == model["theta"] and model["optsummary"]["optimizer"] == "bobyqa"
    assert (model["nobs"], model["ngroups"], model["REML"]) == (ref["nobs"], ref["ngroups"], False)
    for key in ("logLik", "deviance", "AIC", "BIC"):
        assert close(model[key], ref[key], abs=1e-3), key
    assert list(model["fixef"]) == list(ref["fixef"])
    for term, value in ref["fixef"].items():
        assert close(model["fixef"][term], value, rel=1e-5), term
        assert close(model["se"][term], ref["se"][term], rel=1e-4), term
        assert close(model["df_satterthwaite"][term], ref["df_satterthwaite"][term], rel=1e-2), term
        p, p_ref = model["p"][term], ref["p"][term]
        assert (p < 1e-15 and p_ref < 1e-15) or close(p, p_ref, rel=1e-3), term
    for row, row_ref in zip(model["varcorr"], ref["varcorr"]):
        assert (row["grp"], row["var1"], row["var2"]) == (row_ref["grp"], row_ref["var1"], row_ref["var2"])
        assert close(row["vcov"], row_ref["vcov"], rel=1e-3)
    table = {row["term"]: row for row in model["coefficients"]}
    assert list(table) == list(ref["fixef"])
    assert set(table["(Intercept)"]) == {"term", "Estimate", "Std. Error", "df", "t value", "Pr(>|t|)",
                                         "ci_low", "ci_high"}
    assert close(table["(Intercept)"]["df"], ref["df_satterthwaite"]["(Intercept)"], rel=1e-2)
    # R: contest1D(m, L, ddf = "Satterthwaite", confint = TRUE)$lower, $upper  (r/ref_records.R)
    for term, row in RECORDS["coefficients"][name].items():
        width = row["ci_high"] - row["ci_low"]
        for end in ("ci_low", "ci_high"):
            assert close(table[term][end], row[end], abs=1e-4 * width), (term, end)
    assert close(model["r2_marginal"], ref["r2_marginal"], rel=1e-3, abs=1e-6)
    assert close(model["r2_conditional"], ref["r2_conditional"], rel=1e-3)
    # R: performance::icc(m)$ICC_adjusted
    assert close(model["icc_adjusted"], ref["icc_adjusted"], rel=1e-3)


def test_random_slope_intercept_df_is_lmertests(hsb_run):
    model = read(hsb_run, "results/models/random_slope.json")
    assert round(model["df_satterthwaite"]["(Intercept)"], 2) == 146.41


def test_residuals_and_random_effects_tables(hsb_run):
    ref = REFERENCE["models"]["full"]
    residuals = pd.read_parquet(hsb_run / "results/models/full_residuals.parquet")
    assert list(residuals.columns) == ["row", "id", "fitted", "residual", "scaled_residual"]
    assert len(residuals) == 7185 and residuals["row"].tolist() == list(range(7185))
    assert np.allclose(residuals["fitted"][:10], ref["fitted_head"], rtol=1e-4)
    assert np.allclose(residuals["residual"][:10], ref["resid_head"], rtol=1e-3, atol=1e-4)
    ranef = pd.read_parquet(hsb_run / "results/models/full_ranef.parquet")
    assert list(ranef.columns) == ["grp", "level", "term", "value", "condsd"]
    wide = ranef.pivot(index="level", columns="term", values="value")
    levels = ref["ranef"]["id"]["levels"]
    assert sorted(wide.index) == sorted(levels) and len(wide) == 160
    for term, values in ref["ranef"]["id"]["values"].items():
        assert np.allclose(wide.loc[levels, term], values, rtol=1e-3, atol=1e-4), term


def test_comparisons_are_lme4s_likelihood_ratio_tests(hsb_run):
    for name, (chisq, df) in {"random_slope_vs_null": (479.34, 3),
                              "full_vs_random_slope": (62.17, 2)}.items():
        result, ref = read(hsb_run, f"results/comparisons/{name}.json"), REFERENCE["comparisons"][name]
        assert abs(result["Chisq"] - chisq) < 0.01 and result["Df"] == df  # the seed's figures
        assert close(result["Chisq"], ref["Chisq"], abs=1e-3)
        assert result["p"] < 1e-15 if ref["p"] < 1e-15 else close(result["p"], ref["p"], rel=1e-3)
        assert result["npar"] == ref["npar"]
        for key in ("AIC", "BIC", "logLik", "deviance"):
            assert close(result[key], ref[key], abs=1e-3), key
    assert read(hsb_run, "results/comparisons/random_slope_vs_null.json")["models"] == ["null", "random_slope"]


def test_derived_statistics(hsb_run):
    derived, ref = read(hsb_run, "results/derived/derived.json"), REFERENCE["derived"]
    assert round(derived["icc"]["null"], 4) == 0.1793
    assert close(derived["icc"]["null"], ref["icc_null"], rel=1e-3)
    level1 = derived["variance_explained"]["null_to_random_slope"]
    level2 = derived["variance_explained"]["random_slope_to_full"]
    assert (level1["old"], level1["new"]) == ("null", "random_slope")
    assert close(level1["values"]["Residual"], ref["r2_level1_ses"], rel=1e-3)
    assert close(level2["values"]["id: (Intercept)"], ref["r2_level2_intercept"], rel=1e-3)
    assert close(level2["values"]["id: ses"], ref["r2_level2_slope"], rel=1e-3)
    # R: 1 + (mean(table(model.frame(m)$id)) - 1) * performance::icc(m)$ICC_adjusted
    effect, effect_ref = derived["design_effect"]["null"], RECORDS["design_effect"]["null"]
    assert (effect["group"], effect["mean_group_size"]) == ("id", effect_ref["mean_group_size"])
    assert close(effect["value"], effect_ref["value"], rel=1e-3)


def test_contextual_effects_in_both_parameterisations(hsb_run):
    derived = read(hsb_run, "results/derived/derived.json")["contextual"]
    group = REFERENCE["models"]["contextual_group"]["fixef"]   # ses_cwc: beta_w, ses_mean: beta_b
    grand = REFERENCE["models"]["contextual_grand"]["fixef"]   # ses_gmc: beta_w, ses_mean: beta_c
    beta_w, beta_b = group["ses_cwc"], group["ses_mean"]
    assert close(grand["ses_mean"], beta_b - beta_w, rel=1e-4)  # the seed's identity, in lme4's numbers
    for name, centering in (("contextual_group", "group"), ("contextual_grand", "grand")):
        entry = derived[name]
        assert (entry["within"], entry["between"], entry["centering"]) == (
            "ses_cwc" if centering == "group" else "ses_gmc", "ses_mean", centering)
        effects = {effect: row["Estimate"] for effect, row in entry["effects"].items()}
        assert close(effects["within"], beta_w, rel=1e-4), name
        assert close(effects["between"], beta_b, rel=1e-4), name
        assert close(effects["contextual"], beta_b - beta_w, rel=1e-4), name
        assert set(entry["effects"]["contextual"]) == {"term", "Estimate", "Std. Error", "df",
                                                       "t value", "Pr(>|t|)", "ci_low", "ci_high"}
        # R: contest1D(m, L, ddf = "Satterthwaite", confint = TRUE)  (r/ref_records.R)
        for effect, row in RECORDS["contextual"][name].items():
            width = row["ci_high"] - row["ci_low"]
            for end in ("ci_low", "ci_high"):
                assert close(entry["effects"][effect][end], row[end], abs=1e-4 * width), (name, effect, end)


def test_data_outputs(hsb_run):
    # each model's table: its columns on the analysed rows, the centred ones as ref_hsb.R makes them
    expected = hsb_frame()
    columns = {"null": ["mathach", "id"], "random_slope": ["mathach", "ses", "id"],
               "full": ["mathach", "ses", "disclim", "id"], "contextual_group": ["mathach", "ses_cwc", "ses_mean", "id"],
               "contextual_grand": ["mathach", "ses_gmc", "ses_mean", "id"]}
    for name, names in columns.items():
        table = pd.read_parquet(hsb_run / f"results/data/{name}.parquet")
        assert list(table.columns) == names and len(table) == 7185 and table["id"].dtype == np.int64
        assert np.allclose(table.drop(columns="id"), expected[names[:-1]], rtol=1e-12, atol=1e-12), name
    summary = read(hsb_run, "results/data/summary.json")
    assert (summary["n"], summary["n_groups"], summary["n_read"], summary["n_dropped"]) == (7185, 160, 7185, 0)
    assert summary["group_sizes"]["min"] == 14 and summary["group_sizes"]["max"] == 67
    variables = {v["name"]: v for v in summary["variables"]}
    assert variables["disclim"]["label"] == "Disciplinary climate (学校纪律环境)"
    assert variables["disclim"]["level"] == 2 and variables["ses"]["level"] == 1
    assert variables["sector"]["value_labels"] == {"0": "Public (公立)", "1": "Catholic (天主教)"}
    assert variables["ses_cwc"]["derived_from"] == "ses" and variables["ses_mean"]["level"] == 2


# ---- Snakemake's behaviour ------------------------------------------------------------------------

def test_second_run_does_nothing(hsb_run):
    assert planned_jobs(ok(snakemake(hsb_run, "analysis", "-n"))) == {}


def test_rerun_gives_byte_identical_files(hsb_run, tmp_path):
    folder = copy_project(tmp_path, results_from=hsb_run)
    before = files_state(folder)
    ok(snakemake(folder, "results/models/null.json", "--forcerun", "fit"))
    after = files_state(folder)
    for path in ("results/models/null.json", "results/models/null_residuals.parquet",
                 "results/models/null_ranef.parquet"):
        assert after[path][0] != before[path][0] and after[path][1] == before[path][1], path


def test_editing_one_model_refits_only_it_and_its_dependants(hsb_run, tmp_path):
    folder = copy_project(tmp_path, results_from=hsb_run)
    before = files_state(folder)
    edit_config(folder, lambda c: c["models"].update(full="mathach ~ 1 + ses + disclim + (1 + ses | id)"))
    ran = planned_jobs(ok(snakemake(folder, "analysis")))
    assert ran == {"analysis": 1, "fit": 1, "compare": 1, "derive": 1}
    after = files_state(folder)
    changed = {path for path in before if after[path][0] != before[path][0]}
    assert changed == {"results/models/full.json", "results/models/full_residuals.parquet",
                       "results/models/full_ranef.parquet",
                       "results/comparisons/full_vs_random_slope.json",
                       "results/derived/derived.json"}
    assert "ses:disclim" not in read(folder, "results/models/full.json")["fixef"]


FULL_WITH_SECTOR = "mathach ~ 1 + ses + disclim + ses:disclim + sector + (1 + ses | id)"


@pytest.mark.parametrize("missing", ["listwise", "per_model"])
def test_adding_a_column_to_one_model_refits_only_it(hsb_run, tmp_path, missing):
    # the data step rewrites every model's table, the other models' with the same bytes; a fit
    # job whose table has the checksum its metadata recorded is skipped
    if missing == "listwise":
        folder = copy_project(tmp_path, results_from=hsb_run)
    else:
        folder = copy_project(tmp_path)
        edit_config(folder, lambda c: c["data"].update(missing="per_model"))
        ok(snakemake(folder, "analysis"))
    before, logs = files_state(folder), log_times(folder)
    edit_config(folder, lambda c: c["models"].update(full=FULL_WITH_SECTOR))
    ok(snakemake(folder, "analysis"))
    after = files_state(folder)
    changed = {path for path in before if after[path] != before[path]}
    tables = {f"results/data/{m}.parquet" for m in SEED_MODELS}
    assert changed == tables | {"results/data/summary.json", "results/models/full.json",
                                "results/models/full_residuals.parquet", "results/models/full_ranef.parquet",
                                "results/comparisons/full_vs_random_slope.json", "results/derived/derived.json"}
    for path in tables - {"results/data/full.parquet"}:
        assert after[path][1] == before[path][1], path
    ran = {path for path, mtime in log_times(folder).items() if logs.get(path) != mtime}
    assert ran == {"data/data.log", "fit/full.log", "compare/full_vs_random_slope.log", "derive/derived.log"}
    assert "sector" in read(folder, "results/models/full.json")["fixef"]
    assert planned_jobs(ok(snakemake(folder, "analysis", "-n"))) == {}


OPTIMIZER_RUN = re.compile(r"^INFO hlm\.engine\.optimize: \w+: objective \S+ after \d+ evaluations", re.MULTILINE)


def test_each_model_is_optimized_once(hsb_run):
    # every optimizer run logs one line into its job's log; fits are the only ones, but for the
    # ML refits of REML models that a likelihood-ratio test needs (lme4's anova refits them)
    config = check_config(yaml.safe_load((hsb_run / "config/config.yaml").read_text(encoding="utf-8")), hsb_run)
    specs = model_specs(config)
    expected = {f"fit/{name}.log": 1 for name in specs}
    for name, models in zip(comparison_names(config), config["comparisons"]):
        if refits := sum(specs[m]["REML"] for m in models):
            expected[f"compare/{name}.log"] = refits
    runs = {path: len(OPTIMIZER_RUN.findall((hsb_run / "results/logs" / path).read_text(encoding="utf-8")))
            for path in log_times(hsb_run)}
    assert {"data/data.log", "derive/derived.log", "simple_slopes/full.log", "diagnostics/full.log",
            *(f"compare/{name}.log" for name in comparison_names(config))} <= set(runs)
    assert {path: n for path, n in runs.items() if n} == expected
    assert sum(runs.values()) == len(specs) + sum(specs[m]["REML"] for c in config["comparisons"] for m in c)


# ---- bad configs fail before any fit, and leave the results alone ----------------------------------------

BAD_CONFIGS = {
    "unknown model in a comparison": (
        lambda c: c["comparisons"].append(["full", "nul"]),
        "config key 'comparisons[2]': model 'nul' is not declared under models; did you mean 'null'?"),
    "formula column not in data": (
        lambda c: c["models"].update(full="mathach ~ ses * disclimate + (ses | id)"),
        "config key 'models.full': column 'disclimate' not in data; did you mean 'disclim'?"),
    "centering variable not in data": (
        lambda c: c["centering"].update(SES="group"),
        "config key 'centering.SES': column 'SES' not in data"),
    "data file does not exist": (
        lambda c: c["data"].update(path="data/hsb_2024.sav"),
        "config key 'data.path': data file 'data/hsb_2024.sav' does not exist"),
    "control key as lme4 spells it": (
        lambda c: c["estimation"].update(control={"maxfun": 100000}),
        "unknown config key 'estimation.control.maxfun'; allowed: maxeval, ftol_rel, ftol_abs, "
        "xtol_abs, initial_step"),
}


@pytest.mark.parametrize("case", BAD_CONFIGS)
def test_bad_config_fails_before_fitting(hsb_run, tmp_path, case, monkeypatch, capsys):
    change, message = BAD_CONFIGS[case]
    folder = copy_project(tmp_path, results_from=hsb_run)
    before = files_state(folder)
    edit_config(folder, change)
    process = snakemake(folder, "analysis")
    assert process.returncode != 0
    lines = [line for line in process.stderr.splitlines() if line.startswith("hlm: error:")]
    assert len(lines) == 1 and lines[0].startswith(f"hlm: error: {message}"), process.stderr[-2000:]
    monkeypatch.chdir(folder)
    assert cli.main(["run", "config/config.yaml"]) == 2  # hlm run checks before Snakemake starts
    err = capsys.readouterr().err
    assert err.startswith(f"hlm: error: {message}") and err.count("\n") == 1
    assert files_state(folder) == before


# ---- hlm run: the same workflow through Snakemake's API ---------------------------------------------------

def test_hlm_run_dry_run_through_the_api(tmp_path):
    folder = copy_project(tmp_path)
    process = subprocess.run([sys.executable, "-m", "hlm.cli", "run", "config/config.yaml", "-n"],
                             cwd=folder, capture_output=True, text=True, timeout=300)
    assert process.returncode == 0, process.stderr[-3000:]
    assert planned_jobs(process)["fit"] == 5
    assert not (folder / "results").exists()


def test_hlm_run_reruns_what_is_missing(hsb_run, tmp_path):
    folder = copy_project(tmp_path, results_from=hsb_run)
    (folder / "results/derived/derived.json").unlink()
    code = ("import sys; from hlm.pipeline.run import run_workflow; "
            "sys.exit(run_workflow('config/config.yaml', cores=2, targets=['analysis']))")
    process = subprocess.run([sys.executable, "-c", code], cwd=folder, capture_output=True,
                             text=True, timeout=600)
    assert process.returncode == 0, process.stderr[-3000:]
    assert read(folder, "results/derived/derived.json") == read(hsb_run, "results/derived/derived.json")
    assert "fit" not in planned_jobs(process)


def test_snakemake_report(hsb_run, tmp_path):
    folder = copy_project(tmp_path, results_from=hsb_run)
    ok(snakemake(folder, "analysis", "--report", "workflow-report.html"))
    html = (folder / "workflow-report.html").read_text(encoding="utf-8")
    assert "random_slope_vs_null.json" in html


def test_data_edited_with_its_old_mtime_reruns(hsb_run, tmp_path):
    # cp -p, rsync -t, an archive restore: new content, old modification time
    folder = copy_project(tmp_path, results_from=hsb_run)
    data = folder / "data" / "hsb.sav"
    stat = data.stat()
    content = bytearray(data.read_bytes())
    content[-1] ^= 1
    data.write_bytes(bytes(content))
    os.utime(data, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert planned_jobs(ok(snakemake(folder, "analysis", "-n"))).get("data") == 1


@pytest.mark.parametrize("damaged", ["results/models/null.json", "results/data/null.parquet"])
def test_a_damaged_result_file_is_rebuilt(hsb_run, tmp_path, damaged):
    folder = copy_project(tmp_path, results_from=hsb_run)
    path = folder / damaged
    intact = path.read_bytes()
    path.write_bytes(intact[:len(intact) // 2])  # truncated
    ok(snakemake(folder, "analysis"))
    assert path.read_bytes() == intact
    assert planned_jobs(ok(snakemake(folder, "analysis", "-n"))) == {}
