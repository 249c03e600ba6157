"""The LMM kernels compiled ahead of time (hlm.engine._native, built by setup.py) against the
same kernels as numba compiles them (HLM_KERNELS=jit): the same numbers to the last bit, with
lme4's; an LMM fit that loads neither numba nor LLVM; arrays the native code does not take go
to numba's; a native module built from another kernels.py, or for another CPU, is not used."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import CLASSIC, FIXTURES, HSB, LL_ATOL, ROOT

from hlm.engine import kernels

needs_native = pytest.mark.skipif(kernels.NATIVE is None, reason="the native kernels are not built here "
                                  "(python -m pip install -e . builds them; .ci/run checks they were)")

# (label, formula, data, REML, optimizer, logLik lme4 printed): a random slope (bobyqa), a crossed model
# by bobyqa and by L-BFGS-B with the gradient (quadratic_forms), a nested one, a crossed one whose tail
# of 92 columns LAPACK factors (random data: the same bits only), and a GLMM (its loops share two kernels)
FITS = [
    ("hsb_slope", HSB["random_slope"]["formula"], "data/hsb.sav", False, None, HSB["random_slope"]["logLik"]),
    ("penicillin", CLASSIC["penicillin_crossed"]["formula"], "tests/fixtures/data/Penicillin.csv", True, None,
     CLASSIC["penicillin_crossed"]["logLik"]),
    ("penicillin_gradient", CLASSIC["penicillin_crossed"]["formula"], "tests/fixtures/data/Penicillin.csv", True,
     "lbfgsb", CLASSIC["penicillin_crossed"]["logLik"]),
    ("pastes", CLASSIC["pastes_nested"]["formula"], "tests/fixtures/data/Pastes.csv", True, None,
     CLASSIC["pastes_nested"]["logLik"]),
    ("large_tail", "y ~ x + (1 | a) + (1 | b)", "random", True, None, None),
    ("cbpp", "cbind(incidence, size - incidence) ~ period + (1 | herd)", "tests/fixtures/data/cbpp.csv", None, None,
     json.loads((FIXTURES / "glmm_lme4.json").read_text())["models"]["cbpp_laplace"]["logLik"]),
]

WORKER = """
import json, sys
import numpy as np, pandas as pd
import hlm
from hlm.data import read_data
out = {}
for label, formula, path, reml, optimizer, _ in json.loads(sys.argv[1]):
    if path == "random":
        rng = np.random.default_rng(7)
        a, b = rng.integers(0, 150, 1200), rng.integers(0, 90, 1200)
        frame = pd.DataFrame({"a": a, "b": b, "x": rng.normal(size=1200)})
        frame["y"] = rng.normal(size=150)[a] + 0.5 * rng.normal(size=90)[b] + frame.x + rng.normal(size=1200)
    else:
        frame = read_data(path).frame
    if reml is None:
        model = hlm.glmer(formula, frame.astype({"herd": str, "period": str}))
    else:
        model = hlm.lmer(formula, frame, REML=reml, optimizer=optimizer)
    assert model.optsummary.optimizer == (optimizer or model.optsummary.optimizer)
    numbers = [*np.atleast_1d(model.theta), *model.fixef, model.loglik]
    out[label] = [float(x).hex() for x in numbers]
from hlm.engine import kernels
print(json.dumps({"fits": out, "native": kernels.NATIVE is not None, "fallbacks": sorted(kernels.fallbacks),
                  "loaded": sorted(m for m in sys.modules if m.split(".")[0] in ("numba", "llvmlite"))}))
"""


def run_fits(fits, **environment):
    env = {**os.environ, "PYTHONPATH": str(ROOT), **environment}
    process = subprocess.run([sys.executable, "-c", WORKER, json.dumps(fits)], capture_output=True, text=True,
                             cwd=ROOT, env=env, check=False, timeout=600)
    assert process.returncode == 0, process.stderr[-3000:]
    return json.loads(process.stdout.strip().splitlines()[-1])


@needs_native
def test_native_and_numba_kernels_give_the_same_bits_and_lme4s_loglik():
    native, jit = run_fits(FITS), run_fits(FITS, HLM_KERNELS="jit")
    assert native["native"] and not jit["native"]
    assert native["fits"] == jit["fits"]
    assert native["fallbacks"] == []
    for label, *_, loglik in FITS:
        if loglik is not None:
            assert abs(float.fromhex(native["fits"][label][-1]) - loglik) < LL_ATOL, label


@needs_native
def test_an_lmm_fit_loads_neither_numba_nor_llvm():
    lmms = [fit for fit in FITS if fit[3] is not None]
    assert run_fits(lmms)["loaded"] == []
    assert "numba" in run_fits(FITS[-1:])["loaded"]    # a GLMM's loops are numba's


@needs_native
def test_an_array_the_native_kernel_does_not_take_goes_to_numbas_kernel(monkeypatch):
    rng = np.random.default_rng(1)
    codes = rng.integers(0, 5, 40).astype(np.int32)
    Z, W = rng.normal(size=(40, 2)), rng.normal(size=(40, 3))
    monkeypatch.setattr(kernels, "fallbacks", set())     # this test's own, not the session's
    expected = kernels.level_products(codes, Z, W, 5)
    assert not kernels.fallbacks
    wider = np.zeros((40, 6))
    wider[:, ::2] = W
    for same in (np.asfortranarray(W), wider[:, ::2]):                   # another layout: the same sums
        assert np.array_equal(kernels.level_products(codes, Z, same, 5), expected)
    np.testing.assert_allclose(kernels.level_products(codes, Z, W.astype(np.float32), 5), expected, rtol=1e-6)
    assert np.array_equal(kernels.level_products(codes.astype(np.int64), Z, W, 5), expected)
    assert kernels.fallbacks == {("level_products", 2), ("level_products", 0)}


@needs_native
def test_what_the_native_code_would_misread_goes_to_numbas_kernel(monkeypatch):
    # pycc's compiled code would truncate a float passed for an integer, so dof = 2.7 goes to numba
    monkeypatch.setattr(kernels, "fallbacks", set())
    expected = 1.0 + 2.7 * (1 + np.log(2 * np.pi * 1.0 / 2.7))
    assert kernels.profiled_criterion(1.0, 0.0, 1.0, 2.7, False) == pytest.approx(expected, rel=1e-15)
    assert kernels.fallbacks == {("profiled_criterion", 3)}
    kernels.fallbacks.clear()
    checks = kernels.factor_blocks.checks                  # factor_blocks writes the tail it is given
    arguments = [np.zeros(3), np.zeros((4, 4)), True, *[np.zeros((2, 2), np.int64)] * 2, np.zeros(4, np.int64), 1,
                 np.zeros((2, 2, 2)), *[np.zeros(3, np.int64)] * 2, np.zeros((3, 1)), np.zeros((4, 4))]
    assert checks.take(arguments)
    arguments[1].flags.writeable = False
    assert not checks.take(arguments)
    assert kernels.fallbacks == {("factor_blocks", 1)}


@needs_native
def test_native_kernels_divide_as_numbas_do():
    # numpy's error model in both (pycc's default, Python's, would raise ZeroDivisionError)
    native, numba = kernels.profiled_criterion(1.0, 1.0, 1.0, 0, False), kernels.jitted().profiled_criterion(
        1.0, 1.0, 1.0, 0, False)
    assert np.isnan(native) and np.isnan(numba)


@pytest.mark.skipif(kernels.native_module_name() is None, reason="native kernels are built on Linux only")
def test_a_native_module_from_another_source_or_cpu_is_not_used(monkeypatch, caplog):
    # its name carries a digest of kernels.py and of the CPU's flags: another one's is not imported
    name = kernels.native_module_name()
    assert name.startswith("_native_") and len(name) == len("_native_") + 16
    flags = kernels._cpu_features()
    monkeypatch.setattr(kernels, "_cpu_features", lambda: flags + " avx10")     # a CPU that offers more
    assert kernels.native_module_name() not in (None, name)
    if kernels.NATIVE is not None:            # a module with another stamp lies beside kernels.py: say so
        assert kernels._load_native() is None
        assert "built from another version of hlm or on another CPU" in caplog.text
    monkeypatch.setattr(kernels, "_cpu_features", lambda: flags)
    monkeypatch.setenv("HLM_KERNELS", "jit")
    assert kernels._load_native() is None


def test_the_checks_read_numbas_signatures(monkeypatch):
    checks = kernels._Checks("k", "Tuple((f8[:, ::1], i8))(f8[::1], i8, b1, i8[:, :], f8[:, :, ::1], i4[::1])",
                             writes=(4,))
    f8, i8, i4 = np.dtype("f8"), np.dtype("i8"), np.dtype("i4")
    assert checks.entries == [(0, None, f8, 1, True, False), (1, (int, np.integer), None, 0, False, False),
                              (2, (bool, np.bool_), None, 0, False, False), (3, None, i8, 2, False, False),
                              (4, None, f8, 3, True, True), (5, None, i4, 1, True, False)]
    assert checks.take([np.zeros(2), 3, True, np.zeros((2, 2), np.int64)[:, ::-1], np.zeros((1, 1, 1)),
                        np.zeros(1, np.int32)])
    monkeypatch.setattr(kernels, "fallbacks", set())
    assert not checks.take([np.zeros(2), True, True, np.zeros((2, 2), np.int64), np.zeros((1, 1, 1)),
                            np.zeros(1, np.int32)])                       # a bool for an integer
    assert kernels.fallbacks == {("k", 1)}
    with pytest.raises(ValueError, match="only any-layout or C-contiguous"):
        kernels._Checks("k", "f8(f8[::1, :])")
    assert set(kernels.SIGNATURES) == {"level_products", "column_spreads", "entry_products", "first_block_columns",
                                       "factor_blocks", "tail_criterion", "criterion_derivatives", "profiled_criterion",
                                       "log_determinants", "quadratic_forms"}
