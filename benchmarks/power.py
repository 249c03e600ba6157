"""Cost of one power replicate (simulate + refit + Satterthwaite t test) against lme4 + lmerTest.

    python benchmarks/power.py                    # lme4 + lmerTest side by side when Rscript has them
    python benchmarks/power.py --no-r --nsim 50 --rounds 5
    python benchmarks/power.py --size 80 --effect 0.5

The seed's full model (`mathach ~ 1 + ses + disclim + ses:disclim + (1 + ses | id)`, ML) is fitted
to all of data/hsb.sav; its estimates, with ses:disclim set to `--effect`, are simulated on the
first `--size` schools (sorted ids) and refitted, and ses:disclim is tested with Satterthwaite's
df: hlm's `run_chunk` (which also fits the size's design once per chunk) against the same loop in
R (`power_time.R`: simulate(newparams) -> refit -> summary(as_lmerModLmerTest(fit)), the template
fit outside the clock). Each side runs `--rounds` rounds of `--nsim` replicates after a warm-up;
the table gives the median of the rounds' mean time per replicate, and hlm's time split into its
parts (simulate, refit, test) from one more round. The load average is printed with the table:
on a shared machine both sides slow down alike, their ratio much less.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

import hlm
from hlm.analysis.power import PowerSpec, refit_to, replicate_rng, run_chunk, simulation_parameters, sized_model
from hlm.data import read_data
from hlm.engine.simulate import simulate
from hlm.inference.contrasts import contrast_test

ROOT = Path(__file__).resolve().parent.parent

DATA = ROOT / "data" / "hsb.sav"
FORMULA = "mathach ~ 1 + ses + disclim + ses:disclim + (1 + ses | id)"
TERM = "ses:disclim"


def hlm_rounds(model, frame, spec, size, rounds):
    """Seconds per replicate of run_chunk, one value per round (each round its own replicates)."""
    run_chunk(model, frame, spec, size, 0, min(5, spec.nsim))    # warm-up: numba's kernels loaded
    out = []
    for round_ in range(rounds):
        shifted = PowerSpec(**{**spec.__dict__, "seed": spec.seed + round_})
        start = time.perf_counter()
        run_chunk(model, frame, shifted, size, 0, spec.nsim)
        out.append((time.perf_counter() - start) / spec.nsim)
    return out


def hlm_parts(model, frame, spec, size):
    """Mean milliseconds per replicate of simulate, refit and the t test."""
    sized = sized_model(model, frame, spec.along, size)
    params, index = simulation_parameters(model, spec), list(sized.design.fixed_names).index(spec.term)
    totals = np.zeros(3)
    for i in range(spec.nsim):
        t0 = time.perf_counter()
        y = simulate(sized, 1, rng=replicate_rng(spec, size, i), newparams=params)[:, 0]
        t1 = time.perf_counter()
        refit = refit_to(sized, y)
        t2 = time.perf_counter()
        contrast_test(refit, np.eye(refit.design.p)[index], spec.ddf)
        totals += [t1 - t0, t2 - t1, time.perf_counter() - t2]
    return 1000 * totals / spec.nsim


def r_rounds(effect, size, nsim, rounds):
    """lme4 + lmerTest's seconds per replicate (power_time.R), or None without Rscript."""
    if shutil.which("Rscript") is None:
        return None
    command = ["Rscript", str(ROOT / "benchmarks" / "power_time.R"), str(DATA), FORMULA, TERM, str(effect),
               str(size), str(nsim), str(rounds)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode:
        print(f"lme4 side failed: {done.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


def _commit():
    done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT, check=False)
    return done.stdout.strip() or "?"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=40, help="schools (default 40)")
    parser.add_argument("--effect", type=float, default=0.0, help="assumed ses:disclim (default 0)")
    parser.add_argument("--nsim", type=int, default=50, help="replicates per round (default 50)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds per side (default 5)")
    parser.add_argument("--no-r", action="store_true", help="skip lme4 + lmerTest")
    args = parser.parse_args(argv)
    frame = read_data(DATA).frame
    model = hlm.lmer(FORMULA, frame, REML=False)
    spec = PowerSpec(name="benchmark", term=TERM, effect=args.effect, along="id", sizes=(args.size,), nsim=args.nsim,
                     chunk=args.nsim)
    load_before = os.getloadavg()
    ours = hlm_rounds(model, frame, spec, args.size, args.rounds)
    parts = hlm_parts(model, frame, spec, args.size)
    theirs = None if args.no_r else r_rounds(args.effect, args.size, args.nsim, args.rounds)
    load_after = os.getloadavg()
    ms = 1000 * float(np.median(ours))
    print(f"HSB full model on {args.size} schools, {args.nsim} replicates x {args.rounds} rounds; "
          f"hlm {_commit()}, Python {sys.version.split()[0]}, "
          f"numpy {np.__version__}" + (f"; lme4 {theirs['lme4']}, lmerTest {theirs['lmerTest']}" if theirs else ""))
    print("load average (1, 5, 15 min) " + " ".join(f"{x:.2f}" for x in load_before) + " before, "
          + " ".join(f"{x:.2f}" for x in load_after) + " after\n")
    print("| side | ms / replicate | rounds (ms) | speed-up |")
    print("|---|--:|---|--:|")
    print(f"| hlm (simulate + refit + Satterthwaite t) | {ms:.1f} | "
          f"{', '.join(f'{1000 * x:.1f}' for x in ours)} | |")
    print(f"| hlm parts: simulate / refit / test | {parts[0]:.2f} / {parts[1]:.2f} / {parts[2]:.2f} | | |")
    if theirs:
        r_ms = 1000 * theirs["seconds"]
        print(f"| lme4 + lmerTest (simulate, refit, as_lmerModLmerTest) | {r_ms:.1f} | "
              f"{', '.join(f'{1000 * x:.1f}' for x in theirs['rounds'])} | {r_ms / ms:.1f}x |")


if __name__ == "__main__":
    main()
