"""`hlm verify`: every number of the result records against a saved run, at the design's tolerances."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import DF_RTOL, FIXEF_RTOL, LL_ATOL, P_RTOL, SE_RTOL, VARPAR_RTOL, copy_project

from hlm.errors import UsageError
from hlm.results.verify import TOLERANCES, Tolerance, tolerance_for, tolerances, verify


def hlm(folder, *args):
    return subprocess.run([sys.executable, "-m", "hlm.cli", *args], check=False, cwd=folder,
                          capture_output=True, text=True, timeout=900)


def write(folder, name, record):
    path = Path(folder) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record), encoding="utf-8")


# ---- which tolerance a number gets ---------------------------------------------------------------

@pytest.mark.parametrize("path,expected", [
    (("logLik",), Tolerance(atol=LL_ATOL)),
    (("AIC", 1), Tolerance(atol=LL_ATOL)),
    (("fixef", "ses:disclim"), Tolerance(rtol=FIXEF_RTOL)),
    (("fixef", "p"), Tolerance(rtol=FIXEF_RTOL)),          # a predictor named p is still a fixed effect
    (("coefficients", 2, "Estimate"), Tolerance(rtol=FIXEF_RTOL)),
    (("se", "ses"), Tolerance(rtol=SE_RTOL)),
    (("coefficients", 0, "Std. Error"), Tolerance(rtol=SE_RTOL)),
    (("varcorr", 1, "vcov"), Tolerance(rtol=VARPAR_RTOL)),
    (("icc", "null"), Tolerance(rtol=VARPAR_RTOL)),
    (("variance_explained", "null_to_random_slope", "values", "Residual"), Tolerance(rtol=VARPAR_RTOL)),
    (("contextual", "m", "effects", "within", "df"), Tolerance(rtol=DF_RTOL)),
    (("df_kenward_roger", "ses"), Tolerance(rtol=DF_RTOL)),
    (("table", 1, "Pr(>Chisq)"), Tolerance(rtol=P_RTOL)),
    (("power", "estimates", 3, "ci_low"), TOLERANCES["*"]),  # a record kind verify has never seen
])
def test_each_number_gets_the_tolerance_of_its_key(path, expected):
    assert tolerance_for(path) == expected


def test_tolerances_from_the_command_line_replace_a_key():
    table = tolerances(rtol=["fixef=1e-8", "*=0"], atol=["logLik=0.5", "evaluations=inf"])
    assert tolerance_for(("fixef", "ses"), table) == Tolerance(rtol=1e-8)
    assert tolerance_for(("logLik",), table) == Tolerance(atol=0.5)
    assert tolerance_for(("t", "ses"), table) == Tolerance()
    assert tolerance_for(("se", "ses"), table) == Tolerance(rtol=SE_RTOL)
    for bad in (["fixef"], ["fixef=abc"], ["fixef=-1"], ["=1e-6"]):
        with pytest.raises(UsageError, match="KEY=VALUE"):
            tolerances(rtol=bad)


def test_what_counts_as_different(tmp_path):
    expected = {"logLik": -23287.152, "npar": 8, "singular": False, "REMLcrit": None, "label": "full",
                "p": {"ses": 1e-49, "x": 0.0312}, "fixef": {"ses": 2.411166}, "theta": [0.31, 0.05],
                "optsummary": {"evaluations": 88}}
    got = {"logLik": -23287.152 + 0.9 * LL_ATOL, "npar": 8, "singular": False, "REMLcrit": None,
           "label": "another text", "p": {"ses": 3e-50, "x": 0.0312 * (1 + 0.9 * P_RTOL)},
           "fixef": {"ses": 2.411166 * (1 + 0.9 * FIXEF_RTOL)}, "theta": [0.31, 0.05, 0.7],
           "optsummary": {"evaluations": 91}, "new_key": 1}
    write(tmp_path / "expected", "models/full.json", expected)
    write(tmp_path / "results", "models/full.json", got)
    outcome = verify(tmp_path / "expected", tmp_path / "results")
    assert outcome.ok and outcome.files == 1 and outcome.numbers == 8

    changes = {"logLik": -23287.152 + 1.1 * LL_ATOL, "npar": 9, "singular": True, "REMLcrit": 46574.3,
               "fixef": {"ses": 2.411166 * (1 + 1.1 * FIXEF_RTOL)}, "theta": [0.31]}
    write(tmp_path / "results", "models/full.json", {**got, **changes})
    outcome = verify(tmp_path / "expected", tmp_path / "results")
    assert {(d.key, d.allowed) for d in outcome.differences} == {
        ("logLik", "abs 0.001"), ("npar", "exact"), ("singular", "exact"), ("REMLcrit", "exact"),
        ("fixef.ses", "rel 1e-05"), ("theta[1]", "")}
    assert next(d for d in outcome.differences if d.key == "theta[1]").got == "missing"


def test_a_missing_record_is_a_difference_and_a_bad_folder_a_usage_error(tmp_path):
    write(tmp_path / "expected", "derived/derived.json", {"icc": {"null": 0.1793}})
    write(tmp_path / "expected", "models/null.json", {"logLik": -23557.9})
    (tmp_path / "results" / "models").mkdir(parents=True)
    (tmp_path / "results" / "models" / "null.json").write_text('{"logLik": -2355', encoding="utf-8")
    outcome = verify(tmp_path / "expected", tmp_path / "results")
    assert [(d.file, d.got) for d in outcome.differences] == [("derived/derived.json", "missing"),
                                                              ("models/null.json", "not valid JSON")]
    with pytest.raises(UsageError, match="'nowhere' does not exist"):
        verify("nowhere", tmp_path / "results")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError, match="holds no JSON result records"):
        verify(tmp_path / "empty", tmp_path / "results")


# ---- the shipped analysis, rerun -----------------------------------------------------------------

@pytest.fixture(scope="module")
def saved_and_rerun(tmp_path_factory):
    """The shipped analysis run with `hlm run`, its results saved, then rerun with --forceall."""
    folder = copy_project(tmp_path_factory.mktemp("verify"))
    first = hlm(folder, "run")
    assert first.returncode == 0, first.stderr[-3000:]
    saved = shutil.copytree(folder / "results", folder.parent / "saved", ignore=shutil.ignore_patterns("logs"))
    before = os.stat(folder / "results/models/full.json").st_mtime_ns
    rerun = hlm(folder, "run", "--forceall")
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert os.stat(folder / "results/models/full.json").st_mtime_ns != before  # really refitted
    return folder, saved


def test_verify_passes_on_an_unchanged_rerun(saved_and_rerun):
    folder, saved = saved_and_rerun
    process = hlm(folder, "verify", str(saved))
    assert process.returncode == 0, process.stdout + process.stderr
    assert "agree" in process.stdout
    records = {p.relative_to(saved).as_posix() for p in saved.rglob("*.json")}
    assert {"models/full.json", "comparisons/full_vs_random_slope.json", "derived/derived.json"} <= records


def test_verify_names_a_number_moved_beyond_its_tolerance(saved_and_rerun, tmp_path):
    folder, saved = saved_and_rerun
    moved = shutil.copytree(saved, tmp_path / "moved")
    record = json.loads((moved / "models/full.json").read_text(encoding="utf-8"))
    record["fixef"]["ses:disclim"] *= 1 + 3 * FIXEF_RTOL
    record["logLik"] += LL_ATOL / 2  # within its tolerance
    (moved / "models/full.json").write_text(json.dumps(record), encoding="utf-8")
    process = hlm(folder, "verify", str(moved), "--results", "results")
    assert process.returncode == 1, process.stdout + process.stderr
    lines = [line for line in process.stdout.splitlines() if line.startswith("models/")]
    assert len(lines) == 1 and lines[0].split()[:2] == ["models/full.json", "fixef.ses:disclim"], process.stdout
    assert hlm(folder, "verify", str(moved), "--rtol", "fixef=1e-4").returncode == 0


def test_verify_usage_errors_exit_2(saved_and_rerun):
    folder, saved = saved_and_rerun
    for args in (["verify", "no/such/folder"], ["verify", str(saved), "--rtol", "fixef"],
                 ["verify", str(saved), "--results", "no/such/results"]):
        process = hlm(folder, *args)
        assert process.returncode == 2 and process.stderr.startswith("hlm: error:"), (args, process.stderr)
        assert process.stderr.count("\n") == 1, process.stderr
