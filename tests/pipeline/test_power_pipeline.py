"""Power analyses in the workflow (config key power): checked before any job, one job per chunk of
replicates, gathered into results/power/<name>.json with the same bytes whatever the chunking and
the number of cores, and a run killed during the chunk jobs recovers with a plain `hlm run`."""
import itertools
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, copy_project, ok, planned_jobs, snakemake

from hlm.errors import ConfigError
from hlm.pipeline.config import check_config

RESULT = "results/power/interaction.json"
CHUNKS = Path("results/power/interaction")
RUN = [sys.executable, "-m", "hlm.cli", "run"]

# a small analysis: the seed's full model, power for its cross-level interaction at 10 and 20 schools
POWER_CONFIG = {
    "title": "Power of the cross-level interaction",
    "data": {"path": "data/hsb.sav", "group": "id"},
    "estimation": {"REML": False},
    "models": {"full": "mathach ~ 1 + ses + disclim + ses:disclim + (1 + ses | id)"},
    "power": {"interaction": {"model": "full", "term": "ses:disclim", "effect": 0.25, "along": "id",
                              "sizes": [10, 20], "nsim": 8, "seed": 3, "chunk": 4}},
    "report": {"formats": [], "language": "en"},
}


def with_power(**changes):
    config = json.loads(json.dumps(POWER_CONFIG))
    config["power"]["interaction"].update(changes)
    return config


def power_project(folder, **changes):
    project = copy_project(folder)
    (project / "config" / "config.yaml").write_text(yaml.safe_dump(with_power(**changes)), encoding="utf-8")
    return project


@pytest.mark.parametrize(("change", "message"), [
    ({"model": "ful"}, "config key 'power.interaction.model': model 'ful' is not declared under models; "
                       "did you mean 'full'?"),
    ({"along": "ses"}, "config key 'power.interaction.along': 'ses' is not a grouping column of model 'full'"),
    ({"term": "sex"}, "config key 'power.interaction.term': 'sex' is not a fixed-effect coefficient of model 'full'"),
    ({"term": "disclim:ses"}, "config key 'power.interaction.term': 'disclim:ses' is not a fixed-effect coefficient"),
    ({"sizes": [1, 20]}, "config key 'power.interaction.sizes'"),
    ({"nsim": 0}, "config key 'power.interaction.nsim'"),
    ({"chunk": 0}, "config key 'power.interaction.chunk'"),
    ({"alpha": 1.5}, "config key 'power.interaction.alpha'"),
    ({"nsim": "many"}, "config key 'power.interaction.nsim'"),
    ({"effcet": 0.3}, "unknown config key 'power.interaction.effcet'; did you mean 'effect'?"),
])
def test_a_bad_power_analysis_is_one_line_naming_the_key(change, message):
    with pytest.raises(ConfigError) as caught:
        check_config(with_power(**change), ROOT)
    assert str(caught.value).startswith(message) and "\n" not in str(caught.value)


def test_a_power_analysis_needs_its_keys_and_a_valid_name():
    config = with_power()
    del config["power"]["interaction"]["effect"]
    with pytest.raises(ConfigError, match=r"^config key 'power.interaction.effect' is missing"):
        check_config(config, ROOT)
    config = with_power()
    config["power"] = {"2x": config["power"]["interaction"]}
    with pytest.raises(ConfigError, match=r"^config key 'power': analysis name '2x' must start with a letter"):
        check_config(config, ROOT)


def test_hlm_run_refuses_a_bad_power_analysis_before_any_job(tmp_path):
    project = power_project(tmp_path, sizes=[1, 20])
    process = subprocess.run(RUN, cwd=project, capture_output=True, text=True, timeout=300, check=False)
    assert process.returncode == 2 and process.stderr.count("\n") == 1, process.stderr
    assert process.stderr.startswith("hlm: error: config key 'power.interaction.sizes'")
    assert not (project / "results").exists()


def test_one_job_per_chunk_and_one_gather(tmp_path):
    plan = planned_jobs(ok(snakemake(power_project(tmp_path, chunk=3), "--dry-run", RESULT)))
    assert plan["power_chunk"] == 2 * 3 and plan["power"] == 1  # replicates 0-2, 3-5, 6-7 at each size


@pytest.fixture(scope="module")
def four_per_job(tmp_path_factory):
    project = power_project(tmp_path_factory.mktemp("chunk4"))
    ok(snakemake(project, "--cores", "2", RESULT))
    return project


def test_the_gathered_result_is_byte_identical_whatever_the_chunks_and_cores(four_per_job, tmp_path):
    other = power_project(tmp_path, chunk=3)
    ok(subprocess.run([sys.executable, "-m", "snakemake", "--cores", "1", RESULT], cwd=other,
                      capture_output=True, text=True, timeout=900, check=False))
    assert sorted(p.name for p in (four_per_job / CHUNKS).iterdir()) == ["10_0.json", "10_4.json", "20_0.json",
                                                                         "20_4.json"]
    assert sorted(p.name for p in (other / CHUNKS).iterdir()) == ["10_0.json", "10_3.json", "10_6.json",
                                                                  "20_0.json", "20_3.json", "20_6.json"]
    assert (other / RESULT).read_bytes() == (four_per_job / RESULT).read_bytes()
    result = json.loads((four_per_job / RESULT).read_text())
    assert [row["size"] for row in result["curve"]] == [10, 20]
    assert all(row["nsim"] == 8 and row["failed"] <= 1 for row in result["curve"])
    assert (result["model"], result["term"], result["method"]) == ("full", "ses:disclim", "Satterthwaite t")


def test_a_run_killed_during_the_chunk_jobs_recovers(four_per_job, tmp_path):
    project = power_project(tmp_path)
    process = subprocess.Popen(RUN, cwd=project, start_new_session=True, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    logs, deadline = project / "results" / "logs" / "power_chunk", time.monotonic() + 600
    while not list(logs.rglob("*.log")):
        assert process.poll() is None and time.monotonic() < deadline, "the run ended before any chunk started"
        time.sleep(0.02)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert not (project / RESULT).exists()
    for chunk in (project / CHUNKS).glob("*.json") if (project / CHUNKS).is_dir() else []:
        json.loads(chunk.read_text())  # only whole chunks: each is written to a temporary file, then renamed

    ok(subprocess.run(RUN, cwd=project, capture_output=True, text=True, timeout=900, check=False))
    assert (project / RESULT).read_bytes() == (four_per_job / RESULT).read_bytes()


# ---- comparisons with method: bootstrap (pbkrtest's PBmodcomp) ---------------------------------

BOOTSTRAP = "results/comparisons/random_slope_vs_random_intercept.json"


def bootstrap_project(folder, **changes):
    config = json.loads(json.dumps(POWER_CONFIG))
    del config["power"]
    config["models"] = {"random_slope": "mathach ~ 1 + ses + (1 + ses | id)",
                        "random_intercept": "mathach ~ 1 + ses + (1 | id)"}
    config["comparisons"] = [{"models": ["random_slope", "random_intercept"], "method": "bootstrap", "nsim": 12,
                              "seed": 2, **changes}]
    project = copy_project(folder)
    (project / "config" / "config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    return project, config


@pytest.mark.parametrize(("change", "message"), [
    ({"models": ["random_slope", "random_intercept", "random_slope"]},
     "config key 'comparisons[0].models': ['random_slope', 'random_intercept', 'random_slope'] has non-unique"),
    ({"method": "parametric"}, "config key 'comparisons[0].method': 'parametric' is not allowed; use one of lrt, "
                               "bootstrap"),
    ({"nsim": 0}, "config key 'comparisons[0].nsim': 0 is less than the minimum of 1"),
    ({"nsmi": 10}, "unknown config key 'comparisons[0].nsmi'; did you mean 'nsim'?"),
])
def test_a_bad_bootstrap_comparison_is_one_line(tmp_path, change, message):
    _, config = bootstrap_project(tmp_path, **change)
    with pytest.raises(ConfigError) as caught:
        check_config(config, ROOT)
    assert str(caught.value).startswith(message) and "\n" not in str(caught.value)


def test_a_comparison_is_a_list_or_a_mapping(tmp_path):
    _, config = bootstrap_project(tmp_path)
    config["comparisons"] = ["random_slope"]
    with pytest.raises(ConfigError, match=r"^config key 'comparisons\[0\]': a comparison is a list of two or more "
                                          r"model names, or a mapping with 'models' and optionally 'method'"):
        check_config(config, ROOT)


def test_a_bootstrap_of_three_models_is_refused(tmp_path):
    _, config = bootstrap_project(tmp_path)
    config["models"]["null"] = "mathach ~ 1 + (1 | id)"
    config["comparisons"][0]["models"].append("null")
    with pytest.raises(ConfigError, match=r"^config key 'comparisons\[0\].models': method bootstrap compares two"):
        check_config(config, ROOT)


def test_the_bootstrap_comparison_is_the_same_whatever_its_chunks(tmp_path):
    five, _ = bootstrap_project(tmp_path / "five", chunk=5)
    whole, _ = bootstrap_project(tmp_path / "whole")
    assert planned_jobs(ok(snakemake(five, "--dry-run", BOOTSTRAP)))["compare_chunk"] == 3  # 0-4, 5-9, 10-11
    ok(snakemake(five, BOOTSTRAP))
    ok(snakemake(whole, BOOTSTRAP))
    assert (five / BOOTSTRAP).read_bytes() == (whole / BOOTSTRAP).read_bytes()
    record = json.loads((five / BOOTSTRAP).read_text())
    boot = record["bootstrap"]
    assert (boot["method"], boot["nsim"], boot["seed"], boot["df"]) == ("PBmodcomp", 12, 2, record["Df"])
    assert boot["lrt"] == pytest.approx(record["Chisq"], rel=1e-9)  # the same LRT as the chi-square test
    assert boot["p_bootstrap"] == (1 + boot["n_extreme"]) / (1 + boot["n_positive"])
    assert boot["n_positive"] + boot["failed"] <= 12


# ---- models with intervals: bootstrap (lme4's bootMer percentile intervals) -----------------------

INTERVALS = "results/intervals/random_slope.json"


def test_bad_interval_options_are_one_line(tmp_path):
    _, config = bootstrap_project(tmp_path)
    for option, message in [("profile", "config key 'models.random_slope.intervals': 'profile' is not allowed; "
                                        "use one of bootstrap"),
                            ({"method": "bootstrap", "nsim": 1}, "config key 'models.random_slope.intervals.nsim'")]:
        config["models"]["random_slope"] = {"formula": "mathach ~ 1 + ses + (1 + ses | id)", "intervals": option}
        with pytest.raises(ConfigError) as caught:
            check_config(config, ROOT)
        assert str(caught.value).startswith(message) and "\n" not in str(caught.value), caught.value


def test_bootstrap_intervals_come_from_the_fit_and_adding_them_refits_nothing(tmp_path):
    project, config = bootstrap_project(tmp_path)
    config["comparisons"] = []
    (project / "config" / "config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    ok(snakemake(project, "results/models/random_slope.json"))
    config["models"]["random_slope"] = {"formula": config["models"]["random_slope"],
                                        "intervals": {"method": "bootstrap", "nsim": 20, "seed": 4}}
    (project / "config" / "config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    plan = planned_jobs(ok(snakemake(project, "--dry-run", INTERVALS)))
    assert plan == {"intervals": 1}  # the fit's spec leaves the intervals out
    ok(snakemake(project, INTERVALS))
    record = json.loads((project / INTERVALS).read_text())
    model = json.loads((project / "results/models/random_slope.json").read_text())
    assert (record["nsim"], record["seed"], record["level"], record["failed"]) == (20, 4, 0.95, 0)
    rows = {row["parameter"]: row for row in record["rows"]}
    assert list(rows) == ["sd_(Intercept)|id", "cor_ses.(Intercept)|id", "sd_ses|id", "sigma", "(Intercept)", "ses"]
    for term, value in model["fixef"].items():
        assert rows[term]["estimate"] == value and rows[term]["ci_low"] < value < rows[term]["ci_high"]
    assert rows["sigma"]["estimate"] == model["sigma"]


def test_the_power_analysis_the_shipped_config_offers_is_valid_when_uncommented():
    text = (ROOT / "config" / "config.yaml").read_text(encoding="utf-8")
    lines = text.splitlines()
    block = list(itertools.takewhile(lambda line: line.startswith("# "), lines[lines.index("# power:"):]))
    config = yaml.safe_load(text + "\n" + "\n".join(line[2:] for line in block) + "\n")
    checked = check_config(config, ROOT)
    assert checked["power"]["interaction"]["sizes"] == [40, 80, 160, 320]
