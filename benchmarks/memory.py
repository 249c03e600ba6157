"""Where a fit's process memory goes: resident memory after each stage of a fresh process.

    python benchmarks/memory.py                    # the small fit (HSB random slope) and the 1M-row fit
    python benchmarks/memory.py --cases small      # only the small fit
    python benchmarks/memory.py --aot              # the same with the LMM kernels compiled ahead of time

Each case runs in its own fresh Python process, which goes through the stages in the order a
first fit needs them, importing each library on its own so that its share can be told apart:
numpy, pandas (which imports pyarrow when it is installed), hlm, the data in a DataFrame, the
scipy modules a fit uses, numba, numba's runtime (what the first call of any cached kernel sets
up: numba's implementation modules and its runtime library, compiled by LLVM at each start),
the first fit (the kernels loaded from numba's on-disk cache, and the fit) and a second fit.
For each stage: RSS after it, its increase, and the peak RSS so far (VmRSS and VmHWM of
/proc/self/status). Under the table: the resident memory by mapping after the fits
(/proc/self/smaps: the LLVM library numba loads, the heap, arrow's libraries) and the compiled
kernels the fits loaded. Linux only.

--aot is an experiment: hlm.engine.kernels' kernels, compiled ahead of time by numba.pycc
(deprecated by numba, needs a C compiler) with the signatures two small fits gave them under
numba, into an extension module in a temporary folder, stand in for hlm.engine.kernels, so that
the measured processes never load numba or LLVM; the other compiled loops (GLMMs') stay plain
Python, which an LMM fit never calls.
"""
import argparse
import collections
import json
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SCIPY_MODULES = ("scipy.linalg", "scipy.sparse", "scipy.special")   # what hlm's LMM fit imports
AOT_MODULE = "hlm_kernels_ahead_of_time"
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
    import numba.core.registry
    found = set()
    for name, module in list(sys.modules.items()):
        if not name.startswith("hlm."):
            continue
        for attribute, value in vars(module).items():
            if isinstance(value, numba.core.registry.CPUDispatcher) and value.signatures:
                found.add(f"{value.py_func.__module__.removeprefix('hlm.')}.{attribute}")
    return sorted(found)


def build_ahead_of_time(folder):
    """Compile hlm.engine.kernels' kernels into an extension module in folder (numba.pycc), for
    this machine's CPU as numba's JIT compiles, with the signatures that fits gave them here:
    a random-slope fit and a crossed one with a random slope, compiled by numba first."""
    import numba.core.registry
    from numba.pycc import CC

    import hlm
    from hlm.engine import kernels
    sys.path.insert(0, str(HERE))
    import generate
    frame = generate.two_level(2000, 100, 0)
    frame["h"] = frame.index % 7            # crossed with g
    hlm.lmer("y ~ x * w + (x | g)", frame, REML=False)
    hlm.lmer("y ~ x + (1 | g) + (x | h)", frame, REML=True)
    cc = CC(AOT_MODULE)
    cc.output_dir, cc.target_cpu = str(folder), "host"
    names = []
    for name, kernel in vars(kernels).items():
        if isinstance(kernel, numba.core.registry.CPUDispatcher):
            names.append(name)
            signatures = {_writable(signature) for signature in kernel.nopython_signatures}
            if len(signatures) > 1:
                raise RuntimeError(f"kernel {name} was called with {len(signatures)} signatures")
            for signature in signatures:
                cc.export(name, signature)(kernel.py_func)
    cc.compile()
    (Path(folder) / "kernels.json").write_text(json.dumps(names))


def _writable(signature):
    """The signature with read-only arrays as writable ones: the compiled module does not tell."""
    import numba.core.types
    import numba.core.typing

    def plain(t):
        return t.copy(readonly=False) if isinstance(t, numba.core.types.Array) else t
    return numba.core.typing.signature(signature.return_type, *map(plain, signature.args))


def use_ahead_of_time(folder):
    """Make the compiled module hlm.engine.kernels, before hlm is imported; a kernel the fits
    did not call here raises if called."""
    sys.path.insert(0, str(folder))
    native = __import__(AOT_MODULE)
    stand_in = types.ModuleType("hlm.engine.kernels")
    stand_in.compiled = lambda function=None, **options: function or (lambda f: f)
    for name in json.loads((Path(folder) / "kernels.json").read_text()):
        setattr(stand_in, name, getattr(native, name, None) or _not_compiled(name))
    sys.modules["hlm.engine.kernels"] = stand_in


def _not_compiled(name):
    def kernel(*args):
        raise RuntimeError(f"kernel {name} was not compiled ahead of time")
    return kernel


def worker(case, aot_folder=None):
    """Go through the stages in this process; print one JSON line."""
    stages = []

    def stage(label):
        rss, peak = status_mb()
        stages.append({"stage": label, "rss": rss, "peak": peak, "seconds": time.perf_counter() - start})

    start = time.perf_counter()
    stage("interpreter")
    import numpy as np
    stage("import numpy")
    if aot_folder:
        use_ahead_of_time(aot_folder)
        stage("kernels compiled ahead of time")
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
    if not aot_folder:
        import numba.core.registry
        stage("import numba (llvmlite)")
        numba.core.registry.cpu_target.target_context.refresh()   # what the first kernel call runs
        stage("numba's runtime (first kernel call)")
    model = hlm.lmer(formula, frame, REML=False)
    stage("first fit" + ("" if aot_folder else " (kernels from the cache)"))
    del model
    model = hlm.lmer(formula, frame, REML=False)
    stage("second fit")
    kernels = (["ahead of time: " + ", ".join(n for n in json.loads((Path(aot_folder) / "kernels.json").read_text())
                                             if hasattr(sys.modules[AOT_MODULE], n))]
               if aot_folder else loaded_kernels())
    print(json.dumps({"case": case, "stages": stages, "mappings": resident_by_mapping(), "kernels": kernels,
                      "loglik": float(model.loglik), "numba_loaded": "numba" in sys.modules,
                      "numpy": np.__version__, "pandas": pandas.__version__}))


def run_case(case, aot_folder=None):
    options = ["--aot-folder", str(aot_folder)] if aot_folder else []
    out = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--worker", case, *options],
                         capture_output=True, text=True, cwd=ROOT, check=False)
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
    p.add_argument("--aot", action="store_true", help="the kernels compiled ahead of time (numba.pycc), no numba")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--aot-folder", help=argparse.SUPPRESS)
    p.add_argument("--build-aot", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.build_aot:
        return build_ahead_of_time(args.build_aot)
    if args.worker:
        return worker(args.worker, args.aot_folder)
    with tempfile.TemporaryDirectory(prefix="hlm-aot-") as folder:
        if args.aot:   # in a process of its own, so that the fits measured never import numba
            subprocess.run([sys.executable, str(Path(__file__).resolve()), "--build-aot", folder], check=True)
        for case in args.cases.split(","):
            print(table(run_case(case, folder if args.aot else None)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
