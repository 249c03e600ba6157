"""Fit times and memory of hlm, with lme4 side by side when Rscript and lme4 are present.

    python benchmarks/run.py                   # every case (the 1M-row lme4 fits take minutes)
    python benchmarks/run.py --quick           # skip synthetic_1m, crossed and insteval
    python benchmarks/run.py --no-r --cases hsb_full,synthetic_100k
    python benchmarks/run.py --output benchmarks/RESULTS.md --json benchmarks/results/last.json

Data: data/hsb.sav, and synthetic sets from benchmarks/generate.py cached in benchmarks/data/;
the `insteval` case uses lme4's own InstEval (exported through Rscript; skipped without R).

Each case runs in fresh subprocesses (python for hlm, Rscript for lme4) that import, load
the data into a DataFrame / data.frame and only then starts the clock, so the times are of the
fit from data in memory, not of reading files. Per case and per side:

- first call: the first fit in the timing process. With the native kernels (hlm.engine._native_<stamp>,
  built at install) nothing is compiled; with numba's (not built, or HLM_KERNELS=jit) hlm compiles
  them on first use and caches them on disk (hlm/__pycache__), and once cached the first call only
  loads them: then the time of a first call with an empty cache (NUMBA_CACHE_DIR pointed at a new
  directory) is printed once.
- seconds: best of N further fits; fits repeat until they have taken `--budget` seconds
  (at least --min-repeats, at most --max-repeats), so small cases get more repeats.
  hlm's timed region is lmer() plus reading logLik and fixef (lme4 computes both inside lmer()).
- memory, measured in a second fresh process per case and side: imports, a tiny warm-up fit
  (so lazily loaded libraries and hlm's kernels count as imports), the data loaded, then
  one fit. ΔMB = peak RSS during that fit (high-water mark reset just before it through
  /proc/self/clear_refs) minus the RSS before it; total MB = the process's peak RSS over its
  whole life (interpreter, libraries, data and the fit).
"""
import argparse
import gc
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
import generate  # benchmarks/ is not a package

HSB_SAV = ROOT / "data" / "hsb.sav"
SYNTHETIC_FORMULA = "y ~ x * w + (x | g)"
CROSSED_FORMULA = "y ~ 1 + (1 | s) + (1 | d) + (1 | dept)"


@dataclass(frozen=True)
class Case:
    name: str
    label: str
    formula: str
    reml: bool
    r_optimizer: str          # lmerControl(optimizer = ...) or "default" (nloptwrap in lme4 1.1-31)
    data: str                 # key for load_frame / data_paths
    big: bool = False         # skipped by --quick


CASES = {c.name: c for c in [
    Case("hsb_null", "HSB null", "mathach ~ 1 + (1 | id)", False, "bobyqa", "hsb"),
    Case("hsb_random_slope", "HSB random slope", "mathach ~ 1 + ses + (1 + ses | id)", False, "bobyqa", "hsb"),
    Case("hsb_full", "HSB full", "mathach ~ 1 + ses + disclim + ses:disclim + (1 + ses | id)",
         False, "bobyqa", "hsb"),
    Case("synthetic_100k", "synthetic 100k", SYNTHETIC_FORMULA, False, "default", "two_level_100000"),
    Case("synthetic_1m", "synthetic 1M", SYNTHETIC_FORMULA, False, "default", "two_level_1000000", big=True),
    Case("crossed", "InstEval-sized crossed", CROSSED_FORMULA, True, "default", "crossed", big=True),
    Case("insteval", "lme4's InstEval", CROSSED_FORMULA, True, "default", "insteval", big=True),
]}
NEEDS_R = {"insteval"}        # the data set ships with lme4; exported to csv through Rscript

# The engine issue's targets, with lme4's figures as measured when the issue was written.
NOMINAL_LME4 = {"hsb_full": {"seconds": 0.080}, "synthetic_1m": {"seconds": 40.0, "total_peak_mb": 790.0},
                "crossed": {"seconds": 23.0}, "insteval": {"seconds": 23.0}}


# ---- data -------------------------------------------------------------------------------

def data_paths(key):
    """(file hlm reads, csv R reads) of a data set, generating synthetic ones on first use."""
    if key == "hsb":
        csv = generate.DATA_DIR / "hsb.csv"
        if not csv.exists():
            generate.DATA_DIR.mkdir(parents=True, exist_ok=True)
            frame = load_frame("hsb")
            generate._atomic(csv, lambda tmp: frame.to_csv(tmp, index=False))
        return HSB_SAV, csv
    if key.startswith("two_level_"):
        return generate.two_level_paths(int(key.rsplit("_", 1)[1]))
    if key == "crossed":
        return generate.crossed_paths()
    if key == "insteval":
        csv = generate.DATA_DIR / "insteval.csv"
        if not csv.exists():
            generate.DATA_DIR.mkdir(parents=True, exist_ok=True)
            tmp = csv.with_suffix(".csv.tmp")
            script = f"d <- lme4::InstEval; write.csv(d[c('s', 'd', 'dept', 'y')], '{tmp}', row.names = FALSE)"
            subprocess.run(["Rscript", "-e", script], check=True, capture_output=True)
            tmp.replace(csv)
        return csv, csv
    raise KeyError(key)


def load_frame(key):
    import pandas as pd
    if key == "hsb":
        from hlm.data import read_data
        return read_data(HSB_SAV).frame[["id", "mathach", "ses", "disclim"]]
    if key == "insteval":    # level labels as strings, as R's factors have them
        return pd.read_csv(data_paths(key)[0], dtype={"s": str, "d": str, "dept": str})
    frame = pd.read_parquet(data_paths(key)[0])
    try:                     # hand arrow's freed read buffers back, as R's side runs gc() after loading
        import pyarrow
        pyarrow.default_memory_pool().release_unused()
    except (ImportError, AttributeError):
        pass
    return frame


# ---- memory (Linux /proc) -----------------------------------------------------------------

def status_mb(field):
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def reset_peak():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


# ---- the hlm side (runs in a fresh subprocess) --------------------------------------------

def _fitter(case, frame):
    import hlm

    def fit():
        start = time.perf_counter()
        model = hlm.lmer(case.formula, frame, REML=case.reml)
        model.loglik, model.fixef        # noqa: B018  (lme4's lmer() returns these computed)
        return model, time.perf_counter() - start
    return fit


def time_worker(name, budget, min_n, max_n):
    """Time one case in this process (first call, then repeats) and print one JSON line."""
    t_import = time.perf_counter()
    import numpy as np

    import hlm  # noqa: F401
    from hlm.engine import kernels
    import_seconds = time.perf_counter() - t_import
    case = CASES[name]
    fit = _fitter(case, load_frame(case.data))
    model, first = fit()
    seconds = []
    while len(seconds) < max_n and (len(seconds) < min_n or sum(seconds) < budget):
        del model
        gc.collect()
        model, s = fit()
        seconds.append(s)
    print(json.dumps({
        "case": name, "nobs": int(model.nobs), "first": first, "seconds": min(seconds), "repeats": len(seconds),
        "median": float(np.median(seconds)), "loglik": float(model.loglik),
        "evaluations": int(model.optsummary.evaluations), "optimizer": model.optsummary.optimizer,
        "import_seconds": import_seconds, "kernels": "native" if kernels.NATIVE else kernels_numba(),
        "numpy": np.__version__,
        "numba_cache_dir": os.environ.get("NUMBA_CACHE_DIR", "hlm/__pycache__")}))


def kernels_numba():
    import numba
    return f"numba {numba.__version__}"


def memory_worker(name):
    """Peak RSS of one fit of a case, over the RSS after imports, a tiny warm-up fit and data load."""
    import hlm
    warm_up = hlm.lmer("y ~ x * w + (x | g)", generate.two_level(2000, 100, 0), REML=False)  # loads lazy parts
    del warm_up
    case = CASES[name]
    fit = _fitter(case, load_frame(case.data))
    gc.collect()
    rss_loaded = status_mb("VmRSS")
    peak_before = status_mb("VmHWM")
    reset = reset_peak()
    model, _ = fit()
    fit_peak = status_mb("VmHWM")
    print(json.dumps({"case": name, "rss_loaded_mb": rss_loaded, "fit_peak_mb": fit_peak if reset else float("nan"),
                      "total_peak_mb": max(peak_before, fit_peak), "loglik": float(model.loglik)}))


def _run_worker(args, env=None):
    cmd = [sys.executable, str(Path(__file__).resolve()), *args]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env, check=False)
    if out.returncode:
        raise RuntimeError(f"hlm worker {' '.join(args)} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_hlm(name, budget, min_n, max_n, env=None, memory=True):
    result = _run_worker(["--worker", name, "--budget", str(budget), "--min-repeats", str(min_n),
                          "--max-repeats", str(max_n)], env)
    if memory:
        result.update({k: v for k, v in _run_worker(["--memory-worker", name], env).items() if k.endswith("_mb")})
    return result


def cold_first_call(name):
    """The first call of a case with an empty numba cache: compile time included."""
    with tempfile.TemporaryDirectory(prefix="hlm-numba-") as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        return run_hlm(name, 0, 1, 1, env=env, memory=False)["first"]


# ---- the lme4 side ------------------------------------------------------------------------

def r_available():
    """(True, '') when Rscript runs and lme4 and jsonlite load; else (False, reason)."""
    if shutil.which("Rscript") is None:
        return False, "Rscript not on PATH"
    out = subprocess.run(["Rscript", "-e", "suppressMessages({library(lme4); library(jsonlite)})"],
                         capture_output=True, text=True, check=False)
    if out.returncode:
        return False, "lme4 or jsonlite not installed in R"
    return True, ""


def run_lme4(case, budget, min_n, max_n, memory=True):
    csv = data_paths(case.data)[1]
    base = ["Rscript", str(HERE / "lme4_time.R"), str(csv), case.formula, "TRUE" if case.reml else "FALSE",
            case.r_optimizer]
    result = _run_r(base + ["time", str(budget), str(min_n), str(max_n)], case)
    if memory:
        result.update({k: v for k, v in _run_r(base + ["memory"], case).items() if k.endswith("_mb")})
    return result


def _run_r(cmd, case):
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, check=False)
    if out.returncode:
        raise RuntimeError(f"lme4 for {case.name} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


# ---- report -------------------------------------------------------------------------------

def fmt_seconds(s):
    if s is None:
        return "n/a"
    return f"{s * 1000:.1f} ms" if s < 1 else f"{s:.2f} s"


def fmt(x, spec=".0f"):
    return "n/a" if not isinstance(x, (int, float)) or math.isnan(x) else format(x, spec)


def delta_mb(result):
    """Peak RSS of the fit over the RSS before it (None where /proc gave no figure)."""
    try:
        return float(result["fit_peak_mb"]) - float(result["rss_loaded_mb"])
    except (KeyError, TypeError, ValueError):
        return None


def r_optimizer_label(case, r):
    if not r:
        return "n/a"
    return f"{r['optimizer']} (default)" if case.r_optimizer == "default" else r["optimizer"]


def table(rows):
    head = ["case", "rows", "hlm", "hlm 1st call", "hlm evals", "hlm ΔMB", "hlm total MB",
            "lme4 optimizer", "lme4", "lme4 evals", "lme4 ΔMB", "lme4 total MB", "speed-up", "|ΔlogLik|"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] + ["--:"] * (len(head) - 1)) + "|"]
    for case, h, r in rows:
        r = r or {}
        get = r.get
        ratio = f"{r['seconds'] / h['seconds']:.1f}×" if r else "n/a"
        dll = f"{abs(h['loglik'] - r['logLik']):.1e}" if r else "n/a"
        lines.append("| " + " | ".join([
            case.label, f"{h['nobs']:,}", f"{fmt_seconds(h['seconds'])} (n={h['repeats']})",
            fmt_seconds(h["first"]), str(h["evaluations"]), fmt(delta_mb(h)),
            fmt(h["total_peak_mb"]), r_optimizer_label(case, r),
            f"{fmt_seconds(r['seconds'])} (n={r['repeats']})" if r else "n/a", fmt(get("evaluations"), "d"),
            fmt(delta_mb(r)), fmt(get("total_peak_mb")),
            ratio, dll]) + " |")
    return "\n".join(lines)


def disagreements(rows, tolerance=1e-3):
    """A note for every case where hlm and lme4 end at different optima (logLik beyond 1e-3)."""
    out = []
    for case, h, r in rows:
        if r and abs(h["loglik"] - r["logLik"]) > tolerance:
            better = "hlm" if h["loglik"] > r["logLik"] else "lme4"
            out.append(f"- {case.label}: logLik hlm {h['loglik']:.3f}, lme4 ({r['optimizer']}) {r['logLik']:.3f}; "
                       f"{better}'s optimum is higher: the other optimizer stopped early "
                       f"({h['evaluations']} vs {r['evaluations']} evaluations).")
    return ["Optima that differ:", *out, ""] if out else []


def targets(results):
    """The engine issue's targets, against this run's lme4 figures (or the issue's when R is absent)."""
    out = []

    def lme4(name, key):
        r = results.get(name, (None, None, None))[2]
        if r is not None and r.get(key) is not None:
            return r[key], "measured"
        return NOMINAL_LME4[name][key], "issue's figure"

    def check(ok):
        return "**met**" if ok else "**missed**"

    if "hsb_full" in results:
        h = results["hsb_full"][1]
        r, src = lme4("hsb_full", "seconds")
        out.append(f"- HSB full ≥ 10× faster than lme4: {r / h['seconds']:.1f}× "
                   f"({fmt_seconds(h['seconds'])} vs {fmt_seconds(r)}, lme4 {src}) {check(r / h['seconds'] >= 10)}")
    if "synthetic_1m" in results:
        h = results["synthetic_1m"][1]
        r, src = lme4("synthetic_1m", "seconds")
        out.append(f"- 1M rows ≥ 20× faster than lme4: {r / h['seconds']:.1f}× "
                   f"({fmt_seconds(h['seconds'])} vs {fmt_seconds(r)}, lme4 {src}) {check(r / h['seconds'] >= 20)}")
        m, src = lme4("synthetic_1m", "total_peak_mb")
        out.append(f"- 1M rows in ≤ half lme4's peak memory: hlm total {h['total_peak_mb']:.0f} MB vs lme4 "
                   f"{m:.0f} MB ({h['total_peak_mb'] / m:.0%}, lme4 {src}) {check(h['total_peak_mb'] <= m / 2)}")
    for name in ("crossed", "insteval"):
        if name in results:
            h = results[name][1]
            r, src = lme4(name, "seconds")
            out.append(f"- {results[name][0].label}, no slower than lme4: {r / h['seconds']:.1f}× "
                       f"({fmt_seconds(h['seconds'])} vs {fmt_seconds(r)}, lme4 {src}) {check(h['seconds'] <= r)}")
    return "\n".join(out)


def machine():
    cpuinfo = Path("/proc/cpuinfo")
    lines = cpuinfo.read_text().splitlines() if cpuinfo.exists() else []
    cpu = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")),
               platform.processor())
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT,
                            check=False)
    dirty = subprocess.run(["git", "status", "--porcelain", "--", "hlm"], capture_output=True, text=True, cwd=ROOT,
                           check=False)
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
            "commit": commit.stdout.strip() + (" (hlm/ modified)" if dirty.stdout.strip() else "")}


def load():
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def write_outputs(report, args, data):
    """Print the table; write it to --output and the measurements to --json when asked."""
    print(report)
    if args.output:
        Path(args.output).write_text(report + "\n")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(data, indent=1) + "\n")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="skip synthetic_1m, crossed and insteval")
    p.add_argument("--no-r", action="store_true", help="do not run lme4")
    p.add_argument("--cases", help="comma-separated: " + ",".join(CASES))
    p.add_argument("--budget", type=float, default=3.0, help="seconds of repeats per case and side (default 3)")
    p.add_argument("--min-repeats", type=int, default=3)
    p.add_argument("--max-repeats", type=int, default=50)
    p.add_argument("--output", help="also write the Markdown report to this file")
    p.add_argument("--json", help="also write the raw measurements to this file")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--memory-worker", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        return time_worker(args.worker, args.budget, args.min_repeats, args.max_repeats)
    if args.memory_worker:
        return memory_worker(args.memory_worker)

    names = args.cases.split(",") if args.cases else list(CASES)
    unknown = [n for n in names if n not in CASES]
    if unknown:
        p.error(f"unknown case(s) {', '.join(unknown)}; choose from {', '.join(CASES)}")
    cases = [CASES[n] for n in names if not (args.quick and CASES[n].big)]
    r_ok, why = r_available()
    use_r, why = (False, "--no-r") if args.no_r else (r_ok, why)
    skipped = [c for c in cases if c.name in NEEDS_R and not r_ok]
    cases = [c for c in cases if c not in skipped]
    if not cases:
        p.error("no case left to run")

    info, load_before = machine(), load()
    for case in cases:                   # generate data before any clock starts
        data_paths(case.data)
    results = {}
    for case in cases:
        print(f"{case.name}: hlm ...", file=sys.stderr, flush=True)
        h = run_hlm(case.name, args.budget, args.min_repeats, args.max_repeats)
        r = None
        if use_r:
            print(f"{case.name}: lme4 ...", file=sys.stderr, flush=True)
            r = run_lme4(case, args.budget, max(1, args.min_repeats - 1), args.max_repeats)
        results[case.name] = (case, h, r)

    native = all(h["kernels"] == "native" for _, h, _ in results.values())
    cold = None if native else cold_first_call(cases[0].name)
    any_r = next((r for _, _, r in results.values() if r), None)
    report = "\n".join([
        f"hlm {info['commit']}, Python {info['python']}, numpy {next(iter(results.values()))[1]['numpy']}, "
        f"kernels {next(iter(results.values()))[1]['kernels']}; "
        + (f"lme4 {any_r['lme4']}, {any_r['R']}" if any_r else f"lme4 n/a ({why})"),
        f"{info['cpu']}, {info['cores']} cores; load average (1, 5, 15 min) {load_before} before, {load()} after.",
        "",
        table(results.values()),
        "",
        ("Models fitted by ML except the crossed ones (REML); hlm uses the engine's choice of optimizer ("
         + ", ".join(sorted({h["optimizer"] for _, h, _ in results.values()})) + "); lme4 "
         "uses bobyqa for the HSB rows (the seed's setting) and its default nloptwrap for the rest. "
         "Seconds: best of n warm fits from a DataFrame / data.frame in memory. ΔMB: peak RSS during one fit "
         "minus the RSS after imports, a tiny warm-up fit and data load (separate process); total MB: that "
         "process's peak RSS. "
         + ("hlm's kernels are the native ones built at install: no call compiles." if native else
            f"hlm's first call loads numba's kernels from their on-disk cache; with an empty cache the first "
            f"call ({cases[0].label}) took {fmt_seconds(cold)} (compilation).")),
        "",
        *([f"Skipped ({why}): " + ", ".join(c.name for c in skipped), ""] if skipped else []),
        *disagreements(results.values()),
        "Targets (engine issue):",
        targets(results),
    ])
    write_outputs(report, args, {"machine": info, "load_before": load_before, "cold_first_call": cold,
                                 "results": {k: {"hlm": h, "lme4": r} for k, (_, h, r) in results.items()}})


if __name__ == "__main__":
    main()
