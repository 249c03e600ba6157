"""A run killed with kill -9 while fits are running: a plain `hlm run` clears what it left and
finishes with results byte-identical to a clean run."""
import fcntl
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import copy_project, ok

RUN = [sys.executable, "-m", "hlm.cli", "run"]


def hlm_run(folder):
    return subprocess.run(RUN, check=False, cwd=folder, capture_output=True, text=True, timeout=900)


def result_files(folder):
    """relative path -> bytes of every file under results/ but the logs."""
    results = Path(folder) / "results"
    return {p.relative_to(results).as_posix(): p.read_bytes()
            for p in sorted(results.rglob("*")) if p.is_file() and "logs" not in p.parts}


def kill_while_fitting(folder):
    """Start `hlm run`, and kill -9 its whole process group once a fit job has started."""
    process = subprocess.Popen(RUN, cwd=folder, start_new_session=True, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 600
    while not list((folder / "results" / "logs" / "fit").glob("*.log")):
        assert process.poll() is None and time.monotonic() < deadline, "the run ended before any fit started"
        time.sleep(0.02)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()


@pytest.fixture(scope="module")
def clean_run(tmp_path_factory):
    folder = copy_project(tmp_path_factory.mktemp("clean"))
    ok(hlm_run(folder))
    return folder


def test_a_plain_hlm_run_finishes_a_killed_run(clean_run, tmp_path):
    folder = copy_project(tmp_path)
    kill_while_fitting(folder)
    # what kill -9 left: Snakemake's lock, outputs marked incomplete, models not yet written
    assert list((folder / ".snakemake" / "locks").glob("*.lock"))
    assert any(files for _, _, files in os.walk(folder / ".snakemake" / "incomplete"))
    assert set(result_files(folder)) < set(result_files(clean_run))
    cut = folder / "results" / "models" / ".full.json.x1y2z3.tmp"  # a write kill -9 cut short
    cut.parent.mkdir(parents=True, exist_ok=True)
    cut.write_text('{"logLik": -232', encoding="utf-8")

    process = ok(hlm_run(folder))
    said = [line for line in process.stderr.splitlines() if line.startswith("hlm run:")]
    assert len(said) == 1, process.stderr[-3000:]
    assert "was interrupted" in said[0] and "removed its Snakemake lock" in said[0]
    assert "1 half-written temporary file" in said[0] and "incomplete" in said[0]
    assert result_files(folder) == result_files(clean_run)
    assert "hlm run:" not in ok(hlm_run(folder)).stderr  # the next run has nothing to clear


def test_a_second_run_in_the_same_folder_is_refused(tmp_path):
    folder = copy_project(tmp_path)
    claim = folder / ".snakemake" / "hlm-run.lock"
    claim.parent.mkdir()
    with open(claim, "w", encoding="utf-8") as held:  # as a live hlm run holds it
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        held.write("4242")
        held.flush()
        process = hlm_run(folder)
    assert process.returncode == 2 and process.stderr.count("\n") == 1, process.stderr
    assert process.stderr.startswith("hlm: error: another hlm run (pid 4242) is working in")
    assert not (folder / "results").exists()
