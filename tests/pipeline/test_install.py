"""The product as a user installs it: a wheel built from the project, installed (not editable)
into a fresh virtual environment, runs `hlm init` and `hlm run` in a folder holding only a data
file, through to a report with lme4's numbers."""
import json
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
from conftest import HSB, LL_ATOL, ROOT

TOP_LEVEL_NOT_BUILT = {".git", "results", ".snakemake", "build", ".pytest_cache", "tests", "benchmarks"}


def not_built(folder, names):
    """What shutil.copytree leaves out of the copy a wheel is built from."""
    top = TOP_LEVEL_NOT_BUILT if Path(folder) == ROOT else set()
    return {n for n in names if n in top or n == "__pycache__" or n.endswith(".egg-info")}


def run(command, cwd, env=None):
    process = subprocess.run(command, check=False, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    assert process.returncode == 0, process.stdout[-3000:] + process.stderr[-5000:]
    return process


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    """The wheel pip builds from a copy of the project (so the build leaves the repository alone)."""
    base = tmp_path_factory.mktemp("wheel")
    source = shutil.copytree(ROOT, base / "source", ignore=not_built)
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--wheel-dir", str(base / "dist"), str(source)], base)
    return next((base / "dist").glob("hlm-*.whl"))


@pytest.fixture(scope="module")
def venv(wheel, tmp_path_factory):
    """A fresh venv with hlm from the wheel; the dependencies come from the system's site-packages."""
    folder = tmp_path_factory.mktemp("venv")
    run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(folder)], folder)
    python = folder / "bin" / "python"
    run([str(python), "-m", "pip", "install", "--no-deps", "--force-reinstall", str(wheel)], folder)
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    env["PATH"] = f"{folder / 'bin'}{os.pathsep}{env['PATH']}"
    return folder, env


def test_the_wheel_carries_every_module_and_workflow_file(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    modules = {p.relative_to(ROOT).as_posix() for p in (ROOT / "hlm").rglob("*.py")}
    shipped = {f"hlm/{p.relative_to(ROOT).as_posix()}" for folder in ("workflow", "templates")
               for p in (ROOT / folder).rglob("*") if p.is_file() and "__pycache__" not in p.parts}
    assert modules | shipped <= names, sorted((modules | shipped) - names)


def test_installed_hlm_runs_an_analysis_in_an_empty_folder(venv, tmp_path):
    folder, env = venv
    site = folder / "lib"
    code = ("import hlm, hlm.resources as r; from hlm.engine import kernels; "
            "print(hlm.__file__); print(r.SNAKEFILE); print(kernels.NATIVE.__file__)")
    where = run(["python", "-c", code], tmp_path, env).stdout.split()
    assert all(Path(path).is_relative_to(site) for path in where), where  # the wheel's hlm, not the source tree
    assert Path(where[2]).name.startswith("_native_"), where     # the kernels the wheel's build compiled
    version = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]
    assert run(["hlm", "--version"], tmp_path, env).stdout.strip() == f"hlm {version}"

    shutil.copy2(ROOT / "data" / "hsb.sav", tmp_path / "data.sav")
    run(["hlm", "init", "data.sav"], tmp_path, env)
    config = tmp_path / "config" / "config.yaml"
    text = config.read_text(encoding="utf-8")  # the seed's null model, by ML as the reference has it
    text = text.replace('null: "ses ~ 1 + (1 | id)"', 'null: "mathach ~ 1 + (1 | id)"').replace("REML: true", "REML: false")
    config.write_text(text, encoding="utf-8")
    process = run(["hlm", "run"], tmp_path, env)
    assert f"Snakefile: {where[1]}" in process.stdout + process.stderr

    for name in ("report.html", "report.md", "tables.docx"):
        assert (tmp_path / "results" / "report" / name).stat().st_size > 0, name
    # logLik(lmer(mathach ~ 1 + (1 | id), hsb, REML = FALSE)), fixef(...)
    record = json.loads((tmp_path / "results" / "models" / "null.json").read_text(encoding="utf-8"))
    assert record["logLik"] == pytest.approx(HSB["null"]["logLik"], abs=LL_ATOL)
    assert record["fixef"]["(Intercept)"] == pytest.approx(HSB["null"]["fixef"]["(Intercept)"], rel=1e-5)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".snakemake", "config", "data.sav", "results"]
