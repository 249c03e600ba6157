"""Where a fit's process memory goes: resident memory after each stage of a fresh process.

    python benchmarks/memory.py                    # the small fit (HSB random slope) and the 1M-row fit
    python benchmarks/memory.py --cases small      # only the small fit
    python benchmarks/memory.py --kernels jit      # with the kernels numba compiles (HLM_KERNELS=jit)

Each case runs in its own fresh Python process, which goes through the stages in the order a
first fit needs them, importing each library on its own so that its share can be told apart:
numpy, pandas (which imports pyarrow when it is installed), hlm, the data in a DataFrame, the
scipy modules a fit uses, then, where numba compiles the kernels, numba and numba's runtime
(what the first call of any cached kernel sets up: numba's implementation modules and its
runtime library, compiled by LLVM at each start), the first fit and a second fit. With the
native kernels (hlm.engine._native_<stamp>, which `pip install` builds) the process never loads numba.
For each stage: RSS after it, its increase, and the peak RSS so far (VmRSS and VmHWM of
/proc/self/status). Under the table: the resident memory by mapping after the fits
(/proc/self/smaps: the LLVM library numba loads, the heap, arrow's libraries) and the compiled
kernels the fits ran. Linux only.
"""
import argparse
import collections
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SCIPY_MODULES = ("scipy.linalg", "scipy.sparse", "scipy.special")   # what hlm's LMM fit imports
CASES = {
    "small": ("HSB random slope, data/hsb.sav (7,185 rows)", "hsb", "mathach ~ ses + (ses | id)"),
    "1m": ("synthetic 1M rows, 10,000 groups", "two_level_1000000", "y ~ x * w + (x | g)"),
}


def status_mb():
    """(VmRSS, VmHWM) of this process in MB."""
    values = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0]) / 1024
    return values["VmRSS"], values["VmHWM"]


def resident_by_mapping(top=6):
    """Resident MB per mapped file (anonymous memory and the heap by name), largest first."""
    totals, name = collections.Counter(), "[anon]"
    with open("/proc/self/smaps") as f:
        for line in f:
            fields = line.split()
            if "-" in fields[0] and not fields[0].endswith(":"):      # a mapping's header line
                name = fields[5].rsplit("/", 1)[-1] if len(fields) > 5 else "[anon]"
            elif fields[0] == "Rss:":
                totals[name] += int(fields[1]) / 1024
    return [(n, round(mb, 1)) for n, mb in totals.most_common(top)]


def loaded_kernels():
    """The numba kernels of hlm that have compiled code in this process, as module.function."""
    if "numba" not in sys.modules:
        return []
    import numba.core.registry
    found = set()
    for name, module in list(sys.modules.items()):
        if not name.startswith("hlm."):
            continue
        for attribute, value in vars(module).items():
            if isinstance(value, numba.core.registry.CPUDispatcher) and value.signatures:
                found.add(f"{value.py_func.__module__.removeprefix('hlm.')}.{attribute}")
    return sorted(found)


def worker(case):
    """Go through the stages in this process; print one JSON line."""
    stages = []

    def stage(label):
        rss, peak = status_mb()
        stages.append({"stage": label, "rss": rss, "peak": peak, "seconds": time.perf_counter() - start})

    start = time.perf_counter()
    stage("interpreter")
    import numpy as np
    stage("import numpy")
    import pandas
    stage("import pandas" + (" (+ pyarrow)" if "pyarrow" in sys.modules else ""))
    import hlm
    stage("import hlm")
    _, data_key, formula = CASES[case]
    sys.path.insert(0, str(HERE))
    import run  # benchmarks/ is not a package: run.py's data loading, as its cases read them
    frame = run.load_frame(data_key)
    stage("data in a DataFrame")
    for module in SCIPY_MODULES:
        __import__(module)
    stage("import " + ", ".join(SCIPY_MODULES))
    from hlm.engine import kernels
    native = kernels.NATIVE is not None
    if not native:
        import numba.core.registry
        stage("import numba (llvmlite)")
        numba.core.registry.cpu_target.target_context.refresh()   # what the first kernel call runs
        stage("numba's runtime (first kernel call)")
    model = hlm.lmer(formula, frame, REML=False)
    stage("first fit" + (" (native kernels)" if native else " (kernels from numba's cache)"))
    del model
    model = hlm.lmer(formula, frame, REML=False)
    stage("second fit")
    print(json.dumps({"case": case, "stages": stages, "mappings": resident_by_mapping(),
                      "kernels": [f"native: {kernels.NATIVE.__name__}"] if native else loaded_kernels(),
                      "loglik": float(model.loglik), "numba_loaded": "numba" in sys.modules,
                      "numpy": np.__version__, "pandas": pandas.__version__}))


def run_case(case, kernels):
    env = {**os.environ, **({"HLM_KERNELS": "jit"} if kernels == "jit" else {})}
    out = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--worker", case],
                         capture_output=True, text=True, cwd=ROOT, env=env, check=False)
    if out.returncode:
        raise RuntimeError(f"memory worker {case} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def table(result):
    label, _, formula = CASES[result["case"]]
    heading = (f"{label}: `{formula}`, ML, logLik {result['loglik']!r} (numpy {result['numpy']}, "
               f"pandas {result['pandas']}; numba {'loaded' if result['numba_loaded'] else 'not loaded'})")
    lines = [heading, "",
             "| stage | RSS MB | + MB | peak MB |", "|---|--:|--:|--:|"]
    previous = 0.0
    for s in result["stages"]:
        lines.append(f"| {s['stage']} | {s['rss']:.1f} | {s['rss'] - previous:+.1f} | {s['peak']:.1f} |")
        previous = s["rss"]
    lines += ["", "Resident MB by mapping at the end: "
              + ", ".join(f"{name} {mb}" for name, mb in result["mappings"]),
              f"Kernels: {', '.join(result['kernels'])}", ""]
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cases", default=",".join(CASES), help="comma-separated: " + ",".join(CASES))
    p.add_argument("--kernels", choices=("installed", "jit"), default="installed",
                   help="the installation's kernels (native where built), or numba's (HLM_KERNELS=jit)")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        return worker(args.worker)
    for case in args.cases.split(","):
        print(table(run_case(case, args.kernels)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
