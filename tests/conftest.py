"""Shared fixtures: the reference JSON from lme4 and the data sets it was computed on.

Models are fitted once per session and cached by name, as MixedModels.jl's tests do.
"""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import hlm
from hlm.data import read_data

FIXTURES = Path(__file__).parent / "fixtures"
ROOT = Path(__file__).parent.parent

# which CSV each classic reference model was fitted to (tests/fixtures/r/ref_classic.R)
CLASSIC_DATA = {"penicillin": "Penicillin", "pastes": "Pastes", "dyestuff2": "Dyestuff2",
                "dyestuff": "Dyestuff", "sleepstudy": "sleepstudy", "cake": "cake", "hsb": "hsb_cat"}


def load_reference(name):
    return json.loads((FIXTURES / name).read_text())


# DESIGN.md's tolerances for "equal to lme4"
LL_ATOL = 1e-3      # logLik, deviance, AIC, BIC (absolute)
FIXEF_RTOL = 1e-5   # fixed effects
SE_RTOL = 1e-4      # standard errors
VARPAR_RTOL = 1e-3  # variances, correlations
DF_RTOL = 1e-2      # Satterthwaite and Kenward-Roger df
P_RTOL = 1e-3       # p-values, ICC, R²

HSB_REF = load_reference("hsb_lme4.json")
CLASSIC_REF = load_reference("classic_lme4.json")
EXTRA = load_reference("hsb_extra.json")
HSB, CLASSIC = HSB_REF["models"], CLASSIC_REF["models"]
ALL_MODELS = [("hsb", n) for n in HSB] + [("classic", n) for n in CLASSIC]


def reference(suite, name):
    return (HSB if suite == "hsb" else CLASSIC)[name]


def hsb_frame():
    """hsb.sav with the centred columns ref_hsb.R adds (ses_gmc, ses_mean, ses_cwc)."""
    df = read_data(ROOT / "data" / "hsb.sav").frame
    df["ses_gmc"] = df.ses - df.ses.mean()
    df["ses_mean"] = df.groupby("id").ses.transform("mean")
    df["ses_cwc"] = df.ses - df.ses_mean
    return df


def classic_frame(model_name):
    for prefix in sorted(CLASSIC_DATA, key=len, reverse=True):
        if model_name.startswith(prefix):
            return pd.read_csv(FIXTURES / "data" / f"{CLASSIC_DATA[prefix]}.csv")
    raise KeyError(model_name)


class ModelCache:
    """Fit each reference model once per test session."""

    def __init__(self):
        self.references = {"hsb": load_reference("hsb_lme4.json")["models"],
                           "classic": load_reference("classic_lme4.json")["models"]}
        self.frames = {}
        self.models = {}

    def frame(self, suite, name):
        key = "hsb" if suite == "hsb" else CLASSIC_DATA.get(name.split("_")[0], name)
        if key not in self.frames:
            self.frames[key] = hsb_frame() if suite == "hsb" else classic_frame(name)
        return self.frames[key]

    def fit(self, suite, name):
        if (suite, name) not in self.models:
            ref = self.references[suite][name]
            self.models[suite, name] = hlm.lmer(ref["formula"], self.frame(suite, name), REML=ref["REML"],
                                                optimizer=ref.get("optimizer", "bobyqa"))
        return self.models[suite, name]


@pytest.fixture(scope="session")
def models():
    return ModelCache()


@pytest.fixture(scope="session", autouse=True)
def native_kernels_take_every_array():
    """After the session: every array the engine passed a native kernel was one its compiled code
    takes (else numba's kernel stood in: see hlm.engine.kernels._checked)."""
    yield
    from hlm.engine import kernels
    assert not kernels.fallbacks, f"(kernel, argument) the native kernels did not take: {sorted(kernels.fallbacks)}"


# ---- the workflow, run in a copy of the project ----------------------------------------------------

PROJECT_FILES = ["Snakefile", "workflow", "config", "data/hsb.sav"]


def copy_project(dest, results_from=None):
    """The project files a run needs, copied to dest; with results_from, its results too."""
    dest = Path(dest)
    for name in PROJECT_FILES:
        source, target = ROOT / name, dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, target)
    if results_from is not None:
        for name in ("results", ".snakemake"):
            shutil.copytree(Path(results_from) / name, dest / name,
                            ignore=shutil.ignore_patterns("log", "locks", "incomplete"))
    return dest


def snakemake(workdir, *args):
    """Snakemake on 2 cores in workdir; the finished process (check it with ok())."""
    return subprocess.run([sys.executable, "-m", "snakemake", "--cores", "2", *args], cwd=workdir,
                          capture_output=True, text=True, timeout=900)


def ok(process):
    assert process.returncode == 0, process.stdout[-3000:] + process.stderr[-5000:]
    return process


def planned_jobs(process):
    """rule -> number of jobs, from the 'Job stats' table of a dry run."""
    text = process.stdout + process.stderr
    if "Nothing to be done" in text:
        return {}
    table = text.split("Job stats:", 1)[1].split("\n\n", 1)[0]
    rows = (line.split() for line in table.splitlines()[3:])
    return {row[0]: int(row[1]) for row in rows if len(row) == 2 and row[0] != "total"}
