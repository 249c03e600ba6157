"""`hlm fit` end to end: lme4's numbers on stdout, and one-line errors (exit code 2) for bad input;
`hlm run` passing Snakemake's options through; `hlm --version`."""
import json
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pandas as pd
import pytest
from conftest import copy_project, load_reference, planned_jobs

from hlm.data import read_data

ROOT = Path(__file__).parent.parent
HSB = str(ROOT / "data" / "hsb.sav")


def hlm(*args):
    return subprocess.run([sys.executable, "-m", "hlm.cli", *args], capture_output=True, text=True, cwd=ROOT)


def test_fit_prints_the_summary_with_lme4s_numbers():
    # summary(lmer(mathach ~ 1 + ses + (1 + ses | id), df, REML = FALSE))
    result = hlm("fit", "mathach ~ 1 + ses + (1 + ses | id)", HSB, "--ml")
    assert result.returncode == 0, result.stderr
    assert "Linear mixed model fit by maximum likelihood" in result.stdout
    assert "46648.5" in result.stdout and "-23318.2" in result.stdout  # AIC, logLik
    assert "Number of obs: 7185, groups:  id, 160" in result.stdout


def test_fit_json_carries_the_reference_numbers():
    ref = load_reference("hsb_lme4.json")["models"]["full_reml"]
    result = hlm("fit", ref["formula"], HSB, "--reml", "--json")
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["REMLcrit"] == pytest.approx(ref["REMLcrit"], abs=1e-3)
    assert out["fixef"]["ses:disclim"] == pytest.approx(ref["fixef"]["ses:disclim"], rel=1e-5)


def test_fit_reads_csv_dta_and_parquet(tmp_path):
    frame = pd.read_csv(ROOT / "tests" / "fixtures" / "data" / "Dyestuff.csv")
    ref = load_reference("classic_lme4.json")["models"]["dyestuff_reml"]
    paths = [tmp_path / "d.csv", tmp_path / "d.parquet", tmp_path / "d.dta"]
    frame.to_csv(paths[0], index=False)
    frame.to_parquet(paths[1])
    frame.to_stata(paths[2], write_index=False)
    for path in paths:
        result = hlm("fit", ref["formula"], str(path), "--json")
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["REMLcrit"] == pytest.approx(ref["REMLcrit"], abs=1e-3)


def bad_inputs(tmp_path):
    garbage = tmp_path / "broken.sav"
    garbage.write_bytes(b"not an spss file")
    empty = tmp_path / "empty.csv"
    pd.DataFrame({"y": [1.0, 2.0], "x": [None, None], "g": ["a", "b"]}).to_csv(empty, index=False)
    one = tmp_path / "one.csv"
    pd.DataFrame({"y": [1.0, 2.0, 3.0], "g": ["a", "a", "a"]}).to_csv(one, index=False)
    hsb = read_data(HSB).frame
    first_rows, constant = tmp_path / "first.csv", tmp_path / "constant.csv"
    hsb.drop_duplicates("id").to_csv(first_rows, index=False)
    hsb.assign(mathach=1.0).to_csv(constant, index=False)
    return [
        (["mathach ~ ses + (1 | id)", str(tmp_path / "missing.sav")], "does not exist"),
        (["mathach ~ ses + (1 | id)", str(garbage)], "could not be read"),
        (["mathach ~ sess + (1 | id)", HSB], "column 'sess' not in data; did you mean 'ses'?"),
        (["mathach ~ ses", HSB], "use OLS"),
        (["mathach ~ ses + (1 | id", HSB], "position"),
        (["mathach ~ ses + (1 | id)", HSB, "--optimizer", "newton"], "optimizer 'newton' is unknown"),
        (["y ~ x + (1 | g)", str(empty)], "nothing to fit"),
        (["y ~ 1 + (1 | g)", str(one)], "grouping factors must have > 1 sampled level"),
        (["mathach ~ " + "(" * 3000 + "ses" + ")" * 3000 + " + (1 | id)", HSB], "nests parentheses"),
        (["mathach ~ " + "+".join(["ses"] * 20000) + " + (1 | id)", HSB], "operators deep"),
        (["mathach ~ ses + (1 | id + sector)", HSB], "Invalid grouping factor specification, id + sector"),
        (["mathach ~ ses + (ses | id)", str(first_rows)], "number of levels of each grouping factor must be <"),
        (["mathach ~ ses + (ses | id)", str(constant)], "the outcome 'mathach' is constant"),
    ]


def test_bad_input_gives_one_line_and_exit_code_2(tmp_path):
    for args, text in bad_inputs(tmp_path):
        result = hlm("fit", *args)
        assert result.returncode == 2, (args, result.stderr)
        assert "Traceback" not in result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and text in lines[0], (args, result.stderr)


def test_non_numeric_response_is_refused(tmp_path):
    path = tmp_path / "cat.csv"
    pd.DataFrame({"y": ["a", "b", "c", "d"], "g": ["u", "u", "v", "v"]}).to_csv(path, index=False)
    result = hlm("fit", "y ~ 1 + (1 | g)", str(path))
    assert result.returncode == 2 and "response 'y' is not numeric" in result.stderr


# ---- hlm run: Snakemake's options, passed through -------------------------------------------------

def run_in(folder, *args):
    return subprocess.run([sys.executable, "-m", "hlm.cli", "run", *args], check=False, cwd=folder, capture_output=True,
                          text=True, timeout=600)


def test_run_passes_until_and_dry_run_to_snakemake(tmp_path):
    folder = copy_project(tmp_path)
    process = run_in(folder, "--dry-run", "--until", "fit")
    assert process.returncode == 0, process.stderr[-3000:]
    assert planned_jobs(process) == {"data": 1, "fit": 5}
    assert not (folder / "results").exists()


def test_run_passes_a_profile_to_snakemake(tmp_path):
    folder = copy_project(tmp_path)
    profile = folder / "profiles" / "plan"
    profile.mkdir(parents=True)
    (profile / "config.yaml").write_text("dry-run: true\nuntil: [compare]\n", encoding="utf-8")
    process = run_in(folder, "--profile", "profiles/plan")
    assert process.returncode == 0, process.stderr[-3000:]
    assert planned_jobs(process) == {"data": 1, "fit": 3, "compare": 2}  # the comparisons' models only
    assert not (folder / "results").exists()


def test_run_refuses_a_yte_template_config(tmp_path):
    # Snakemake renders a config holding __use_yte__ as a YTE template, which runs Python from the file
    folder = copy_project(tmp_path)
    config = folder / "config" / "config.yaml"
    config.write_text("__use_yte__: true\n" + config.read_text(encoding="utf-8"), encoding="utf-8")
    process = run_in(folder, "config/config.yaml")
    assert process.returncode == 2 and process.stderr.count("\n") == 1, process.stderr
    assert process.stderr.startswith("hlm: error: unknown config key '__use_yte__'")
    assert not (folder / "results").exists() and not (folder / ".snakemake").exists()


def test_version_is_the_installed_one():
    result = hlm("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"hlm {metadata.version('hlm')}"
