"""GLMM fit times of hlm against lme4's glmer (through Rscript) and mixedlm (when installed).

    python benchmarks/glmm.py                       # every case, every peer found
    python benchmarks/glmm.py --cases verbagg --budget 5
    python benchmarks/glmm.py --no-r --output benchmarks/GLMM.md

Cases are reference models of tests/fixtures/glmm_lme4.json on their CSVs. Each side runs in a
fresh process that imports, reads the CSV into a DataFrame / data.frame and only then starts the
clock: `first` is the first fit in the process (hlm's numba kernels load from their on-disk cache),
`seconds` the best of further fits repeated until they took --budget seconds. Everyone fits with
its defaults: hlm and lme4 bobyqa then Nelder-Mead, Laplace. The machine is shared, so the table
gives the load average; the ratios move much less than the times.
"""
import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
FIXTURES = ROOT / "tests" / "fixtures"
CASES = {
    "verbagg": "crossed binomial, 7,584 rows: id 316 × item 24",
    "contraception": "binomial, 1,934 rows, district 60",
    "grouseticks": "Poisson, 403 rows: INDEX 403, BROOD 118, LOCATION 63",
    "cbpp_laplace": "binomial counts, 56 rows, herd 15",
}


def reference(name):
    return json.loads((FIXTURES / "glmm_lme4.json").read_text())["models"][name]


def load_frame(name, categorical):
    """The case's CSV with its factor columns as categories (hlm's and mixedlm's view of R's factors)."""
    import pandas as pd
    ref = reference(name)
    frame = pd.read_csv(FIXTURES / ref["data"])
    for column in ref["factors"]:
        frame[column] = pd.Categorical(frame[column]) if categorical else frame[column]
    return frame


def repeat(fit, budget, min_n, max_n):
    """(first fit's seconds, best of the further fits, their number, the last result)."""
    start = time.perf_counter()
    result = fit()
    first = time.perf_counter() - start
    times = []
    while (len(times) < min_n or sum(times) < budget) and len(times) < max_n:
        start = time.perf_counter()
        result = fit()
        times.append(time.perf_counter() - start)
    return first, min(times), len(times), result


def hlm_worker(name, budget, min_n, max_n):
    sys.path.insert(0, str(ROOT))
    import hlm
    ref, frame = reference(name), load_frame(name, categorical=True)

    def fit():
        model = hlm.glmer(ref["formula"], frame, family=ref["family"], link=ref["link"], nAGQ=ref["nAGQ"],
                          weights=ref["weights"])
        return model.loglik, model.optsummary.evaluations
    first, best, n, (loglik, evaluations) = repeat(fit, budget, min_n, max_n)
    return {"first": first, "seconds": best, "repeats": n, "logLik": loglik, "evaluations": evaluations}


def mixedlm_worker(name, budget, min_n, max_n):
    import mixedlm
    from mixedlm.families import Binomial, Poisson
    ref, frame = reference(name), load_frame(name, categorical=False)
    response = ref["formula"].split("~")[0].strip()
    if frame[response].dtype == object:                     # mixedlm wants the 0/1 outcome as numbers
        frame[response] = (frame[response] == sorted(frame[response].unique())[1]).astype(float)
    family = {"binomial": Binomial, "poisson": Poisson}[ref["family"]]()

    def fit():
        return float(mixedlm.glmer(ref["formula"], frame, family=family, nAGQ=ref["nAGQ"]).logLik())
    first, best, n, loglik = repeat(fit, budget, min_n, max_n)
    return {"first": first, "seconds": best, "repeats": n, "logLik": loglik}


def run_python(side, name, args):
    """One side in a fresh interpreter (this script with --worker), its JSON line."""
    command = [sys.executable, __file__, "--worker", side, "--cases", name, "--budget", str(args.budget)]
    process = subprocess.run(command, capture_output=True, text=True, check=False)
    if process.returncode:
        return {"error": process.stderr.strip().splitlines()[-1] if process.stderr.strip() else "failed"}
    return json.loads(process.stdout.strip().splitlines()[-1])


def run_r(name, args):
    ref = reference(name)
    command = ["Rscript", str(HERE / "glmm_time.R"), str(FIXTURES / ref["data"]), ref["formula"], ref["family"],
               str(ref["nAGQ"]), ",".join(ref["factors"]), str(args.budget)]
    process = subprocess.run(command, capture_output=True, text=True, check=False)
    if process.returncode:
        return {"error": process.stderr.strip().splitlines()[-1]}
    return json.loads(process.stdout.strip().splitlines()[-1])


def has_mixedlm():
    return subprocess.run([sys.executable, "-c", "import mixedlm"], capture_output=True, check=False).returncode == 0


def seconds(result):
    if "seconds" not in result:
        return "—"
    s = result["seconds"]
    return f"{s * 1e3:.1f} ms (n={result['repeats']})" if s < 1 else f"{s:.2f} s (n={result['repeats']})"


def ratio(peer, ours):
    return f"{peer['seconds'] / ours['seconds']:.1f}×" if "seconds" in peer and "seconds" in ours else "—"


def table(rows, with_r, with_mixedlm):
    head = ["case", "model", "hlm", "hlm 1st call", "hlm evals"]
    head += ["lme4", "lme4 / hlm", "|ΔlogLik| lme4"] if with_r else []
    head += ["mixedlm", "mixedlm / hlm", "ΔlogLik mixedlm"] if with_mixedlm else []
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, ours, lme4, peer in rows:
        cells = [name, CASES[name], seconds(ours), f"{ours.get('first', float('nan')):.2f} s",
                 str(ours.get("evaluations", "—"))]
        if with_r:
            delta = abs(ours["logLik"] - lme4["logLik"]) if "logLik" in lme4 and "logLik" in ours else None
            cells += [seconds(lme4), ratio(lme4, ours), "—" if delta is None else f"{delta:.1e}"]
        if with_mixedlm:
            delta = peer["logLik"] - ours["logLik"] if "logLik" in peer and "logLik" in ours else None
            cells += [seconds(peer), ratio(peer, ours), "—" if delta is None else f"{delta:+.1e}"]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def header(rows, with_r, with_mixedlm, load_before, load_after):
    """What was run where: hlm's revision, the peers' versions, the machine and its load."""
    revision = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=False).stdout.strip()
    versions = f"`python benchmarks/glmm.py`; hlm {revision}, Python {platform.python_version()}"
    if with_r:
        versions += f"; lme4 {rows[0][2].get('lme4', '?')}"
    if with_mixedlm:
        versions += "; mixedlm " + subprocess.run([sys.executable, "-c", "import mixedlm; print(mixedlm.__version__)"],
                                                  capture_output=True, text=True, check=False).stdout.strip()
    load = " before, ".join(" ".join(f"{x:.2f}" for x in values) for values in (load_before, load_after))
    machine = (f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
               f"load average (1, 5, 15 min) {load} after.")
    return [versions, machine]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--budget", type=float, default=3.0, help="seconds of repeated fits per case and side")
    parser.add_argument("--no-r", action="store_true")
    parser.add_argument("--no-mixedlm", action="store_true")
    parser.add_argument("--output", help="also write the table (Markdown) here")
    parser.add_argument("--worker", choices=["hlm", "mixedlm"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    names = args.cases.split(",")
    if args.worker:
        worker = hlm_worker if args.worker == "hlm" else mixedlm_worker
        print(json.dumps(worker(names[0], args.budget, 3, 50)))
        return
    with_r = not args.no_r and shutil.which("Rscript") is not None
    with_mixedlm = not args.no_mixedlm and has_mixedlm()
    load_before = os.getloadavg()
    rows = []
    for name in names:
        ours = run_python("hlm", name, args)
        lme4 = run_r(name, args) if with_r else {}
        peer = run_python("mixedlm", name, args) if with_mixedlm else {}
        rows.append((name, ours, lme4, peer))
        print(f"{name}: hlm {seconds(ours)}, lme4 {seconds(lme4)}, mixedlm {seconds(peer)}", file=sys.stderr)
    load_after = os.getloadavg()
    lines = header(rows, with_r, with_mixedlm, load_before, load_after) + [""] + table(rows, with_r, with_mixedlm)
    print("\n".join(lines))
    if args.output:
        Path(args.output).write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
