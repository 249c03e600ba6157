"""Where a small fit's time goes: hlm.lmer() split into its phases, each timed on its own.

    python benchmarks/overhead.py                      # the small reference models, medians of 200 fits
    python benchmarks/overhead.py --cases penicillin_crossed --repeats 500   # any model of peers.py

Phases, in the order lmer() runs them, each timed inside real lmer() calls (the functions it
calls wrapped with a clock; medians over the fits): the design (formula, model frame, factor
coding, X and Z), the deviance function (the cross-products of [Z X y]), the optimizer (with its
evaluations), lme4's convergence check (gradient and Hessian by central differences, more
evaluations), and the rest (the model object, logLik and the fixed effects read). "evaluations"
is every evaluation of the deviance (optimizer and check); "outside the evaluations" the whole
fit minus those. Times are CPU time of this process (time.process_time), which the other jobs
on a shared machine move much less than wall time.
"""
import argparse
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import peers  # benchmarks/ is not a package

CLOCK = time.process_time   # CPU seconds: on the shared machine, wall time mostly measures the queue
SMALL = ["penicillin_crossed", "pastes_nested", "dyestuff_reml", "dyestuff2_singular", "sleepstudy_slope",
         "cake_factor", "exam_main", "hsb_null", "hsb_full"]


def timed(function, phase, totals):
    """`function`, adding the seconds of each call to totals[phase] and counting the calls."""
    def wrapper(*args, **kwargs):
        start = CLOCK()
        try:
            return function(*args, **kwargs)
        finally:
            totals[phase] = totals.get(phase, 0.0) + CLOCK() - start
            totals[phase + " calls"] = totals.get(phase + " calls", 0) + 1
    return wrapper


def phases(formula, frame, reml, repeats):
    """{phase: seconds per fit} of one case: medians over `repeats` fits of hlm.lmer(), each
    phase timed inside the real call (the functions lmer() calls wrapped with a clock)."""
    import hlm
    from hlm.engine import model as engine_model
    from hlm.engine.deviance import ProfiledDeviance
    from hlm.inference import lmertest

    totals = {}
    patches = [(lmertest, "build_design", "design"), (engine_model, "optimize", "optimizer"),
               (engine_model, "_checks", "convergence check")]
    originals = [(module, name, getattr(module, name)) for module, name, _ in patches]
    from_design, objective = ProfiledDeviance.__dict__["from_design"], ProfiledDeviance.objective
    for module, name, phase in patches:
        setattr(module, name, timed(getattr(module, name), phase, totals))
    ProfiledDeviance.from_design = classmethod(timed(from_design.__func__, "deviance function", totals))
    ProfiledDeviance.objective = timed(objective, "evaluations", totals)
    per_fit = []
    try:
        for k in range(repeats + 3):      # three warm-up fits
            totals.clear()
            start = CLOCK()
            fit = hlm.lmer(formula, frame, REML=reml)
            fit.loglik, fit.fixef  # noqa: B018  (what lme4's lmer() returns computed)
            totals["whole lmer()"] = CLOCK() - start
            if k >= 3:
                per_fit.append(dict(totals))
    finally:
        for module, name, original in originals:
            setattr(module, name, original)
        ProfiledDeviance.from_design, ProfiledDeviance.objective = from_design, objective
    keys = per_fit[0].keys()
    out = {key: statistics.median(fit[key] for fit in per_fit) for key in keys}
    out["rest"] = out["whole lmer()"] - out["design"] - out["deviance function"] - out["optimizer"] \
        - out["convergence check"]
    out["outside the evaluations"] = out["whole lmer()"] - out["evaluations"]
    return out


def table(results):
    head = ["case", "whole lmer()", "design", "deviance function", "optimizer", "convergence check", "rest",
            "evaluations", "outside the evaluations"]
    lines = ["| " + " | ".join(head) + " |", "|---|" + "--:|" * (len(head) - 1)]
    for name, r in results.items():
        ms = [f"{r[k] * 1e3:.2f} ms" for k in head[1:7]]
        outside = r["outside the evaluations"]
        lines.append("| " + " | ".join([
            name, *ms, (f"{r['evaluations calls']:.0f} × {r['evaluations'] / r['evaluations calls'] * 1e6:.1f} µs "
                        f"= {r['evaluations'] * 1e3:.2f} ms"),
            f"{outside * 1e3:.2f} ms ({outside / r['whole lmer()']:.0%})"]) + " |")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cases", help="comma-separated models of benchmarks/peers.py (default: " + ",".join(SMALL) + ")")
    p.add_argument("--repeats", type=int, default=200, help="fits per case (default 200)")
    args = p.parse_args(argv)
    by_name = {r.name: r for r in peers.REFERENCES}
    names = args.cases.split(",") if args.cases else SMALL
    unknown = [n for n in names if n not in by_name]
    if unknown:
        p.error(f"unknown case(s) {', '.join(unknown)}; choose from {', '.join(by_name)}")
    results = {}
    for name in names:
        model = peers.resolve(by_name[name])
        print(f"{name} ...", file=sys.stderr, flush=True)
        results[name] = phases(model.formula, peers.load_frame(model.data), model.reml, args.repeats)
    print(table(results))


if __name__ == "__main__":
    main()
