"""hlm beside the Python peers (mixedlm, lme-python) and lme4, on every reference model of tests/fixtures.

    python benchmarks/peers.py                              # every reference model; lme4 through Rscript if present
    python benchmarks/peers.py --no-r --models penicillin_crossed,sleepstudy_slope
    python benchmarks/peers.py --big synthetic_1m,insteval --peers hlm,mixedlm   # run.py's large cases too
    python benchmarks/peers.py --output benchmarks/PEERS.md --json benchmarks/results/peers.json
    python benchmarks/peers.py --clock cpu --rounds 15       # CPU seconds: steadier on a busy machine
    python benchmarks/peers.py --no-r --peers hlm --rounds 300 --statistic fastest   # one package, before/after a change

`pip install -e .[bench]` installs the peers; a peer that is not installed gets "n/a".

Method: one process; for each model the data are read into one pandas DataFrame that every
package is given as it is (its formula in lme4's syntax, REML or ML as lme4 fitted it); one
warm-up fit each, then `--rounds` rounds (7) in which every package fits once, in turn
(round-robin, the first package rotating, no garbage collection forced between fits: a
gc.collect() before each fit doubles a small fit's time), and the median of its rounds is its time. Timed:
the call that fits and the log-likelihood read (hlm: lmer() with .loglik and .fixef; mixedlm:
lmer() and logLik(); lme-python: lmer(), which returns log_likelihood computed). Each package's
log-likelihood is checked against lme4's in the fixture (|Δ| ≤ 1e-3, the design's tolerance):
a package that ends elsewhere is reported "≠ lme4" with its time, and is no one's fastest peer.
lme4 runs in its own Rscript process per model (benchmarks/lme4_time.R: the median of
`--rounds` fits from a data.frame in memory, the optimizer the fixture used).
"""
import argparse
import contextlib
import io
import json
import statistics
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
FIXTURES = ROOT / "tests" / "fixtures"
sys.path.insert(0, str(HERE))
import generate  # benchmarks/ is not a package
import run

LL_ATOL = 1e-3        # DESIGN.md: logLik equal to lme4's within 1e-3


@dataclass(frozen=True)
class Reference:
    name: str
    label: str
    data: str              # key of load_frame
    fixture: str           # file in tests/fixtures, then the keys down to the model's entry
    keys: tuple
    formula: str = ""      # where the fixture does not hold it (designs_lme4.json)
    reml: bool = True
    r_optimizer: str = ""  # lmerControl(optimizer =) of the fixture; "" = the fixture's own field


# Every lme4 reference model of tests/fixtures with a logLik, and the data it was fitted to.
REFERENCES = [
    Reference("penicillin_crossed", "Penicillin `(1|plate) + (1|sample)`", "Penicillin", "classic_lme4.json",
              ("models", "penicillin_crossed")),
    Reference("pastes_nested", "Pastes `(1|batch/cask)`", "Pastes", "classic_lme4.json", ("models", "pastes_nested")),
    Reference("pastes_interaction", "Pastes `(1|batch) + (1|batch:cask)`", "Pastes", "classic_lme4.json",
              ("models", "pastes_interaction")),
    Reference("dyestuff_reml", "Dyestuff, REML", "Dyestuff", "classic_lme4.json", ("models", "dyestuff_reml")),
    Reference("dyestuff_ml", "Dyestuff, ML", "Dyestuff", "classic_lme4.json", ("models", "dyestuff_ml")),
    Reference("dyestuff2_singular", "Dyestuff2 (singular)", "Dyestuff2", "classic_lme4.json",
              ("models", "dyestuff2_singular")),
    Reference("sleepstudy_slope", "sleepstudy `(Days|Subject)`, REML", "sleepstudy", "classic_lme4.json",
              ("models", "sleepstudy_slope")),
    Reference("sleepstudy_ml", "sleepstudy `(Days|Subject)`, ML", "sleepstudy", "classic_lme4.json",
              ("models", "sleepstudy_ml")),
    Reference("sleepstudy_uncorr", "sleepstudy `(Days||Subject)`", "sleepstudy", "classic_lme4.json",
              ("models", "sleepstudy_uncorr")),
    Reference("sleepstudy_no_fixed", "sleepstudy `0 + (1|Subject)`", "sleepstudy", "hardening_lme4.json",
              ("no_fixed_effects",), r_optimizer="default"),
    Reference("cake_factor", "cake `recipe * temp + (1|recipe:replicate)`", "cake", "classic_lme4.json",
              ("models", "cake_factor")),
    Reference("hsb_categorical", "HSB categorical, two terms per id", "hsb_cat", "classic_lme4.json",
              ("models", "hsb_categorical")),
    Reference("egsingle_null", "egsingle `(1|schoolid/childid)`", "egsingle", "designs_lme4.json",
              ("egsingle", "null"), "math ~ 1 + (1 | schoolid/childid)", r_optimizer="default"),
    Reference("egsingle_growth", "egsingle growth", "egsingle", "designs_lme4.json", ("egsingle", "growth"),
              "math ~ year + (1 | schoolid/childid)", r_optimizer="default"),
    Reference("egsingle_slope", "egsingle `(year|schoolid/childid)`", "egsingle", "designs_lme4.json",
              ("egsingle", "slope"), "math ~ year + (year | schoolid/childid)", r_optimizer="default"),
    Reference("exam_main", "Exam, categorical predictors", "exam", "designs_lme4.json", ("exam", "main"),
              "normexam ~ standLRT + sex + vr + intake + schavg + (1 | school)", r_optimizer="default"),
    *(Reference(f"hsb_{name}", f"HSB {name.replace('_', ' ')}", "hsb", "hsb_lme4.json", ("models", name))
      for name in ("null", "random_slope", "full", "full_reml", "uncorrelated", "contextual_grand",
                   "contextual_group")),
]


@dataclass(frozen=True)
class Model:
    """A reference model resolved from its fixture: what every package fits, and lme4's logLik."""
    name: str
    label: str
    data: str
    formula: str
    reml: bool
    r_optimizer: str
    loglik: float | None


def resolve(reference):
    entry = json.loads((FIXTURES / reference.fixture).read_text())
    for key in reference.keys:
        entry = entry[key]
    return Model(reference.name, reference.label, reference.data, reference.formula or entry["formula"],
                 entry.get("REML", reference.reml), reference.r_optimizer or entry.get("optimizer", "default"),
                 entry["logLik"])


def big_model(case):
    """One of run.py's large cases (no fixture: checked against lme4 when it runs here)."""
    return Model(case.name, case.label, f"run:{case.data}", case.formula, case.reml, case.r_optimizer, None)


# ---- data -----------------------------------------------------------------------------------------

PREPARED = {"hsb", "egsingle", "exam"}   # read from .sav/.dta and prepared; the others are CSVs as they are


def load_frame(key):
    """The DataFrame a reference model was fitted to, prepared as its R script prepared it."""
    from hlm.data import read_data
    if key.startswith("run:"):
        return run.load_frame(key[4:])
    if key == "hsb":   # tests/conftest.py's hsb_frame: ref_hsb.R's centred columns
        frame = read_data(ROOT / "data" / "hsb.sav").frame
        frame["ses_gmc"] = frame.ses - frame.ses.mean()
        frame["ses_mean"] = frame.groupby("id").ses.transform("mean")
        frame["ses_cwc"] = frame.ses - frame.ses_mean
        return frame
    if key == "egsingle":
        return read_data(FIXTURES / "data" / "egsingle_8_schools.sav").frame
    if key == "exam":  # ref_designs.R: intake -99 is missing, complete cases, sex/vr/intake factors
        frame = read_data(FIXTURES / "data" / "exam.dta").frame
        frame = frame[frame.intake != -99].dropna().reset_index(drop=True)
        return frame.astype({c: int for c in ("sex", "vr", "intake")}).astype({c: str for c in ("sex", "vr", "intake")})
    return pd.read_csv(FIXTURES / "data" / f"{key}.csv")


def r_csv(model, frame):
    """A CSV of the frame for lme4_time.R: the fixture's own CSV, or the prepared frame written once."""
    if model.data.startswith("run:"):
        return run.data_paths(model.data[4:])[1]
    if model.data not in PREPARED:
        return FIXTURES / "data" / f"{model.data}.csv"
    path = generate.DATA_DIR / f"peers_{model.data}.csv"
    if not path.exists():
        generate.DATA_DIR.mkdir(parents=True, exist_ok=True)
        generate._atomic(path, lambda tmp: frame.to_csv(tmp, index=False))
    return path


# ---- the packages ---------------------------------------------------------------------------------

def fit_hlm(model, frame):
    import hlm
    fit = hlm.lmer(model.formula, frame, REML=model.reml)
    fit.fixef  # noqa: B018  (lme4's lmer() returns the fixed effects computed)
    return float(fit.loglik)


def fit_mixedlm(model, frame):
    import mixedlm
    return float(mixedlm.lmer(model.formula, frame, REML=model.reml).logLik())


def fit_lme_python(model, frame):
    import lme_python
    return float(lme_python.lmer(model.formula, frame, reml=model.reml).log_likelihood)


PACKAGES = {"hlm": ("hlm", fit_hlm), "mixedlm": ("mixedlm", fit_mixedlm), "lme-python": ("lme_python", fit_lme_python)}


def installed(names):
    import importlib.util
    return [name for name in names if importlib.util.find_spec(PACKAGES[name][0]) is not None]


def version(name):
    import importlib.metadata
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "n/a"


def quiet(fit, model, frame):
    """A fit with the package's warnings and printing kept out of the table."""
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        return fit(model, frame)


CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


STATISTICS = {"median": statistics.median, "fastest": min}


def time_packages(model, frame, names, rounds, clock=time.perf_counter, statistic=statistics.median):
    """{package: {"seconds": the statistic of its rounds, "loglik": ..., "error": ...}}: a warm-up fit
    each, then `rounds` interleaved rounds."""
    out, live = {}, []
    for name in names:
        try:
            out[name] = {"loglik": quiet(PACKAGES[name][1], model, frame), "times": []}
            live.append(name)
        except Exception as exc:  # noqa: BLE001  (a peer's failure is a result, not a crash)
            out[name] = {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:120] if str(exc) else ''}"}
    for k in range(rounds):
        for name in live[k % len(live):] + live[:k % len(live)] if live else []:
            start = clock()
            quiet(PACKAGES[name][1], model, frame)
            out[name]["times"].append(clock() - start)
    for name in live:
        out[name]["seconds"] = statistic(out[name].pop("times"))
    return out


def time_lme4(model, frame, rounds):
    csv = r_csv(model, frame)
    cmd = ["Rscript", str(HERE / "lme4_time.R"), str(csv), model.formula, "TRUE" if model.reml else "FALSE",
           model.r_optimizer, "time", "0", str(rounds), str(rounds)]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, check=False)
    if done.returncode:
        return {"error": done.stderr.strip().splitlines()[-1][:120] if done.stderr.strip() else "failed"}
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return {"seconds": result["median"], "loglik": result["logLik"], "optimizer": result["optimizer"],
            "version": result["lme4"]}


# ---- the table ------------------------------------------------------------------------------------

def matches(result, reference):
    return reference is not None and "loglik" in result and abs(result["loglik"] - reference) <= LL_ATOL


def cell(result, reference):
    if result is None:
        return "n/a"
    if "error" in result:
        return "fails"
    time_text = run.fmt_seconds(result["seconds"])
    if reference is None:
        return f"{time_text} (unchecked)"
    return time_text if matches(result, reference) else f"≠ lme4 ({time_text})"


def reference_loglik(model, results):
    """lme4's logLik: the fixture's, or for a large case the one Rscript printed here."""
    lme4 = results.get("lme4") or {}
    return model.loglik if model.loglik is not None else lme4.get("loglik")


def ratio(results, reference):
    """hlm's time over the fastest matching peer's (below 1: hlm is faster)."""
    hlm = results.get("hlm")
    peers = [r["seconds"] for name, r in results.items()
             if name not in ("hlm", "lme4") and r and matches(r, reference)]
    if not hlm or not matches(hlm, reference) or not peers:
        return None
    return hlm["seconds"] / min(peers)


def table(rows, names):
    head = ["model", "rows", *names, "lme4", "hlm / fastest peer"]
    lines = ["| " + " | ".join(head) + " |", "|---|" + "--:|" * (len(head) - 1)]
    for model, nobs, results in rows:
        reference = reference_loglik(model, results)
        r = ratio(results, reference)
        lme4 = results.get("lme4")
        lme4_text = "n/a" if lme4 is None else "fails" if "error" in lme4 else run.fmt_seconds(lme4["seconds"])
        lines.append("| " + " | ".join([model.label, f"{nobs:,}", *(cell(results.get(n), reference) for n in names),
                                        lme4_text, "n/a" if r is None else f"{r:.2f}"]) + " |")
    return "\n".join(lines)


def summary(rows):
    """Which models hlm is the fastest on, and by how much it is not on the others."""
    compared = [(m, ratio(res, reference_loglik(m, res))) for m, _, res in rows]
    compared = [(m, r) for m, r in compared if r is not None]
    slower = [f"{m.label} ({r:.2f}×)" for m, r in compared if r > 1]
    lines = [f"hlm fastest on {len(compared) - len(slower)} of {len(compared)} models with a matching peer."]
    if slower:
        lines.append("Slower than the fastest peer (hlm's time / the peer's): " + "; ".join(slower) + ".")
    agree = {name: sum(matches(res.get(name) or {}, reference_loglik(m, res)) for m, _, res in rows)
             for name in PACKAGES}
    lines.append("logLik equal to lme4's (1e-3): " + ", ".join(f"{n} {k}/{len(rows)}" for n, k in agree.items()) + ".")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", help="comma-separated: " + ",".join(r.name for r in REFERENCES))
    p.add_argument("--big", default="", help="also run.py's cases, comma-separated: " + ",".join(run.CASES))
    p.add_argument("--peers", default=",".join(PACKAGES), help="packages to run (default: all installed)")
    p.add_argument("--rounds", type=int, default=7, help="timed rounds per model (default 7)")
    p.add_argument("--statistic", choices=STATISTICS, default="median",
                   help="each package's time: the median of its rounds (default; the issue's measure) or the fastest, "
                        "which moves least with the machine's load (for one package before and after a change)")
    p.add_argument("--clock", choices=CLOCKS, default="wall",
                   help="wall (default) or cpu: this process's CPU seconds (lme4's stay elapsed), which the other "
                        "jobs of a shared machine move much less; it counts every thread a package runs")
    p.add_argument("--no-r", action="store_true", help="do not run lme4")
    p.add_argument("--output", help="also write the Markdown table to this file")
    p.add_argument("--json", help="also write the raw measurements to this file")
    args = p.parse_args(argv)
    by_name = {r.name: r for r in REFERENCES}
    wanted = args.models.split(",") if args.models else list(by_name)
    big = [b for b in args.big.split(",") if b]
    unknown = [n for n in wanted if n not in by_name] + [b for b in big if b not in run.CASES]
    if unknown:
        p.error(f"unknown model(s) {', '.join(unknown)}")
    names = installed([n for n in args.peers.split(",") if n in PACKAGES])
    use_r = not args.no_r and run.r_available()[0]
    models = [resolve(by_name[n]) for n in wanted] + [big_model(run.CASES[b]) for b in big]

    info, load_before = run.machine(), run.load()
    rows, frames = [], {}
    for model in models:
        print(f"{model.name} ...", file=sys.stderr, flush=True)
        frame = frames.setdefault(model.data, load_frame(model.data))
        results = time_packages(model, frame, names, args.rounds, CLOCKS[args.clock], STATISTICS[args.statistic])
        if use_r:
            results["lme4"] = time_lme4(model, frame, args.rounds)
        rows.append((model, len(frame), results))
    peak_mb = run.status_mb("VmHWM")
    versions = ", ".join(f"{n} {version(n)}" for n in names)
    lme4_version = next((r["lme4"]["version"] for _, _, r in rows if "version" in (r.get("lme4") or {})), "n/a")
    report = "\n".join([
        "`" + " ".join(["python benchmarks/peers.py", *(sys.argv[1:] if argv is None else argv)]) + "`",
        f"hlm {info['commit']}, Python {info['python']}; {versions}; lme4 {lme4_version}",
        (f"{info['cpu']}, {info['cores']} cores; load average (1, 5, 15 min) {load_before} before, {run.load()} "
         f"after; peak RSS of the process {peak_mb:.0f} MB."),
        "",
        table(rows, names),
        "",
        (f"{args.statistic.capitalize()} of {args.rounds} interleaved warm fits in one process, {args.clock} clock (lme4: elapsed, median "
         f"of {args.rounds} in its own Rscript process). \"≠ lme4\": the package's logLik differs from lme4's by more than 1e-3; \"fails\": it "
         "raised an error."),
        "",
        summary(rows),
    ])
    run.write_outputs(report, args, {"machine": info, "load_before": load_before, "peak_mb": peak_mb,
                                     "models": {m.name: {"label": m.label, "rows": n, "formula": m.formula,
                                                         "REML": m.reml, "lme4_loglik": m.loglik, "results": res}
                                                for m, n, res in rows}})


if __name__ == "__main__":
    main()
