"""Cost of a bootstrap replicate against one fresh fit (HSB random-slope model by default).

    python benchmarks/bootstrap.py                  # lme4's bootMer side by side when Rscript + lme4 are there
    python benchmarks/bootstrap.py --no-r --nsim 20 --rounds 40
    python benchmarks/bootstrap.py --cases hsb,synthetic_100k --no-r

Cases, fitted by REML: `hsb`, `mathach ~ ses + (ses | id)` on data/hsb.sav (7,185 students, 160
schools); `synthetic_100k`, run.py's `y ~ x * w + (x | g)` on 100,000 rows in 10,000 groups.
Everything runs in this process after a warm-up fit (numba's kernel loaded), on the DataFrame in
memory, in rounds that time one of each row in turn (a shared machine's load then weighs on all
rows alike); the table gives medians over the rounds:

- fresh fit: `hlm.lmer(formula, frame)` plus `.sigma` and `.fixef`.
- bootstrap replicate: `bootstrap(model, nsim)` / nsim (simulate y*, `model.with_response(y*)`,
  collect sd/cor, σ, β).
- with_response(y*): the refit alone (cross-products of y*, BOBYQA, lme4's convergence check),
  and its part that forms the cross-products of y*.
- rebuilding every cross-product instead (`ProfiledDeviance.from_design` on the design with y*,
  then BOBYQA from θ̂): what a replicate did before with_response, without the convergence check.
- lme4 (Rscript, its own rounds, bobyqa): `lmer` and `bootMer(m, FUN, nsim)` / nsim, FUN
  collecting the same estimates (θ, σ, β).
"""
import argparse
import json
import subprocess
import sys
import time
from dataclasses import replace
from functools import partial
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import run  # benchmarks/ is not a package

# (label, formula, data key of run.py, grouping column)
CASES = {
    "hsb": ("HSB random slope, data/hsb.sav", "mathach ~ ses + (ses | id)", "hsb", "id"),
    "synthetic_100k": ("synthetic 100k rows, 10,000 groups", run.SYNTHETIC_FORMULA, "two_level_100000", "g"),
}

R_SCRIPT = r"""
suppressMessages({library(lme4); library(jsonlite)})
a <- commandArgs(TRUE); f <- as.formula(a[2]); nsim <- as.integer(a[4]); rounds <- as.integer(a[5])
d <- read.csv(a[1]); d[[a[3]]] <- factor(d[[a[3]]])
fit <- function() lmer(f, d, control = lmerControl(optimizer = "bobyqa"))
m <- fit()
est <- function(x) c(getME(x, "theta"), sigma(x), fixef(x))
times <- sapply(seq_len(rounds), function(i) c(
  system.time(fit())[["elapsed"]],
  system.time(suppressMessages(bootMer(m, est, nsim = nsim, seed = i)))[["elapsed"]] / nsim))
cat(toJSON(list(lmer = median(times[1, ]), replicate = median(times[2, ]), lme4 = as.character(packageVersion("lme4"))),
           auto_unbox = TRUE, digits = NA), "\n")
"""


def seconds(call):
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def measure_hlm(formula, data, nsim, rounds):
    """Medians over `rounds` rounds, each timing one of everything in turn, so that the load of a
    shared machine weighs on every row alike."""
    import hlm
    from hlm.engine.deviance import ProfiledDeviance
    from hlm.engine.optimize import optimize
    from hlm.inference.bootstrap import _simulate_random, bootstrap

    frame = run.load_frame(data)

    def fresh():
        model = hlm.lmer(formula, frame)
        model.sigma, model.fixef          # noqa: B018  (lme4's lmer() returns these computed)
        return model

    model = fresh()                       # warm-up: numba's kernel loaded
    rng = np.random.default_rng(1)
    mean = model.design.X @ model.beta
    responses = [mean + _simulate_random(model, rng) + model.sigma * rng.standard_normal(model.nobs)
                 for _ in range(rounds)]
    def rebuilt(y):
        return optimize(ProfiledDeviance.from_design(replace(model.design, y=y), model.REML), start=model.theta)

    rows = {"fresh": [], "replicate": [], "with_response": [], "products": [], "rebuilt": []}
    for i, y in enumerate(responses):
        rows["fresh"].append(seconds(fresh))
        rows["replicate"].append(seconds(partial(bootstrap, model, nsim, seed=i)) / nsim)
        rows["with_response"].append(seconds(partial(model.with_response, y)))
        rows["products"].append(seconds(partial(model.deviance_function.with_response, y)))
        rows["rebuilt"].append(seconds(partial(rebuilt, y)))
    out = {key: float(np.median(times)) for key, times in rows.items()}
    out["evaluations_fresh"] = model.optsummary.evaluations
    out["evaluations_replicate"] = float(np.median([model.with_response(y).optsummary.evaluations for y in responses]))
    out["evaluations_from_theta"] = float(np.median([optimize(model.deviance_function.with_response(y),
                                                              start=model.theta)[1].evaluations for y in responses]))
    return out


def measure_lme4(formula, data, group, nsim, rounds):
    csv = run.data_paths(data)[1]
    done = subprocess.run(["Rscript", "-e", R_SCRIPT, str(csv), formula, group, str(nsim), str(rounds)],
                          capture_output=True, text=True, check=False)
    if done.returncode:
        raise RuntimeError(f"lme4 side failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def report(case, h, r, nsim, rounds):
    ms = run.fmt_seconds
    rows = [("fresh fit: hlm.lmer()", h["fresh"], f"{h['evaluations_fresh']} evaluations"),
            ("bootstrap replicate", h["replicate"], f"bootstrap(nsim={nsim}) / {nsim}"),
            ("  of which with_response(y*)", h["with_response"], "BOBYQA and lme4's convergence check"),
            ("    of which the cross-products of y*", h["products"], "deviance_function.with_response(y*)"),
            ("rebuilding every cross-product instead", h["rebuilt"],
             "ProfiledDeviance.from_design + optimize, no convergence check")]
    if r:
        rows += [(f"lme4 {r['lme4']}: lmer()", r["lmer"], "bobyqa"),
                 ("lme4: bootMer replicate", r["replicate"], f"bootMer(nsim={nsim}) / {nsim}")]
    label, formula = CASES[case][:2]
    lines = [f"{label}: `{formula}`, REML; medians of {rounds} rounds", "",
             "| what | seconds | × hlm fresh fit | how |", "|---|--:|--:|---|"]
    lines += [f"| {what} | {ms(s)} | {s / h['fresh']:.2f} | {how} |" for what, s, how in rows]
    met = h["replicate"] < h["fresh"]
    target = (f"Target: a replicate costs less than a fresh fit: {ms(h['replicate'])} vs {ms(h['fresh'])} "
              f"({h['fresh'] / h['replicate']:.1f}× cheaper) **{'met' if met else 'missed'}**")
    start = (f"BOBYQA's evaluations per replicate (median): {h['evaluations_replicate']:.0f} from lme4's start "
             f"(with_response), {h['evaluations_from_theta']:.0f} from θ̂ (lme4's refit)")
    lines += ["", target, start]
    if r:
        lines.append(f"lme4's bootMer replicate / hlm's: {r['replicate'] / h['replicate']:.1f}×")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--nsim", type=int, default=20, help="replicates per timed bootstrap call (default 20)")
    p.add_argument("--rounds", type=int, default=40, help="rounds of timings (default 40)")
    p.add_argument("--cases", default="hsb", help="comma-separated: " + ",".join(CASES) + " (default hsb)")
    p.add_argument("--no-r", action="store_true", help="do not run lme4")
    args = p.parse_args(argv)
    unknown = set(args.cases.split(",")) - set(CASES)
    if unknown:
        p.error(f"unknown case(s) {', '.join(sorted(unknown))}; choose from {', '.join(CASES)}")
    info, load_before = run.machine(), run.load()
    use_r = not args.no_r and run.r_available()[0]
    tables = []
    for case in args.cases.split(","):
        _, formula, data, group = CASES[case]
        run.data_paths(data)
        h = measure_hlm(formula, data, args.nsim, args.rounds)
        r = measure_lme4(formula, data, group, args.nsim, args.rounds) if use_r else None
        tables.append(report(case, h, r, args.nsim, args.rounds))
    machine = (f"hlm {info['commit']}, Python {info['python']}; {'lme4 via Rscript' if use_r else 'lme4 n/a'}\n"
               f"{info['cpu']}, {info['cores']} cores; load average {load_before} before, {run.load()} after.")
    print("\n\n".join([machine, *tables]))


if __name__ == "__main__":
    main()
