"""Compiled loops: the blocked Cholesky factor, which runs at every evaluation of the
deviance for every level of the first grouping factor, where numpy's per-call cost dominates;
and the per-level sums of the cross-products, in one pass over the rows (np.bincount would make
an n-row temporary, and a copy of read-only codes, per column pair).

The LMM's kernels (`@kernel`) come from the native module `_native_<stamp>` where the
installation built it (setup.py has build_native compile them ahead of time with numba.pycc, for
the CPU it builds on): an LMM fit then never loads numba or LLVM, which are half of a small
fit's memory, and never compiles. Elsewhere, or with HLM_KERNELS=jit in the environment, numba compiles them
on first use and caches them on disk (`compiled`), as it does the GLMM's loops everywhere. Both
give the same numbers to the last bit (the same source, compiled by LLVM without fast-math, with
the numba installed and the one that built the module; tests/engine/test_native_kernels.py
compares them).
"""
import functools
import hashlib
import importlib.util
import logging
import os
import platform
import sys
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

# (kernel, argument position) of each call whose arguments a native kernel does not take, so that
# numba's compiled it instead: empty unless the engine passes something it does not expect.
fallbacks = set()


def compiled(function=None, *, inline="never", cache=True):
    """numba.njit, with the compiled code cached on disk where numba finds a writable folder
    (the package's __pycache__, NUMBA_CACHE_DIR, the user's cache); a read-only install
    without one compiles at each start instead of failing to import. `@compiled` or
    `@compiled(inline="always")` (numba's inlining of small helpers into their callers)."""
    if function is None:
        return lambda f: compiled(f, inline=inline, cache=cache)
    import numba  # here, so that a process using only the native kernels never loads it
    try:
        return numba.njit(cache=cache, error_model="numpy", inline=inline)(function)
    except RuntimeError:  # numba: "cannot cache function ...: no locator available"
        return numba.njit(error_model="numpy", inline=inline)(function)


def native_module_name():
    """The name of the native module that may stand in for this file's kernels, or None where none
    is used: `_native_<stamp>`, the stamp a digest of this file (the kernels and build_native, their
    recipe) and of the CPU's feature flags, as it is compiled for the CPU that builds it. A module
    built from another version of this file, or on another CPU, has another name: it is never loaded."""
    cpu = _cpu_features()
    if cpu is None or not __file__.endswith(".py"):     # not Linux, or an install without sources
        return None
    try:
        with open(__file__, "rb") as source:
            return f"_native_{hashlib.sha256(source.read() + cpu.encode()).hexdigest()[:16]}"
    except OSError:                                      # e.g. run from a zip file
        return None


def _cpu_features():
    """The CPU's feature flags as Linux lists them (the first CPU's), with the architecture; None
    elsewhere. The whole line, so that any change of what the CPU offers means a rebuild."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith(("flags", "Features")):
                    return f"{platform.machine()} {line.split(':', 1)[1].strip()}"
    except OSError:
        pass
    return None


def _load_native():
    """The native module built from this file for this CPU, else None (numba's kernels)."""
    name = native_module_name()
    if name is None or os.environ.get("HLM_KERNELS") == "jit" or globals().get("_JIT_ONLY"):
        return None
    module = f"{__package__}.{name}"
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as error:
        if error.name != module or not any(p.name.startswith("_native_") for p in Path(__file__).parent.iterdir()):
            return None                                  # none was built here: numba's, as documented
        reason = "were built from another version of hlm or on another CPU"
    except ImportError as error:
        reason = f"could not be loaded ({error})"
    log.warning("hlm's compiled kernels %s; numba compiles them instead (installing hlm again from its source "
                "builds them: python -m pip install --force-reinstall --no-cache-dir, or pip install -e . in a clone)",
                reason)
    return None


def build_native(path):
    """Compile the kernels with a signature into the extension module at `path`, named as
    native_module_name() says (setup.py, at install, with HLM_KERNELS=jit: the kernels here are
    numba's). numba.pycc, with two of its defaults changed to what numba's JIT does here, so that
    the code is the same: the host CPU's features (pycc takes only its model's), and numpy's error
    model, as @compiled sets (pycc's is Python's: a division by 0 would raise)."""
    import numba.core.codegen
    import numba.pycc.compiler
    from numba.pycc import CC

    cc = CC(Path(path).name.split(".")[0], source_module=sys.modules[__name__])
    cc.output_dir, cc.output_file = str(Path(path).parent), Path(path).name
    cc.target_cpu = "host"
    for name, signature in SIGNATURES.items():
        cc.export(name, signature)(globals()[name].py_func)
    compile_extra, features = numba.pycc.compiler.compile_extra, numba.core.codegen.AOTCPUCodegen._customize_tm_features

    def with_numpy_errors(typing, target, function, args, return_type, flags, *rest, **options):
        flags.error_model = "numpy"
        return compile_extra(typing, target, function, args, return_type, flags, *rest, **options)
    numba.pycc.compiler.compile_extra = with_numpy_errors
    numba.core.codegen.AOTCPUCodegen._customize_tm_features = lambda codegen: codegen._get_host_cpu_features()
    try:
        cc.compile()
    finally:
        numba.pycc.compiler.compile_extra = compile_extra
        numba.core.codegen.AOTCPUCodegen._customize_tm_features = features


NATIVE = _load_native()
SIGNATURES = {}     # kernel name -> the numba signature the native module exports it with


def kernel(signature=None, *, writes=(), inline="never"):
    """An LMM kernel. With a signature (numba's, of the arguments the engine passes; `writes`: the
    positions of the arrays it writes into), Python calls it, and the native module exports it;
    without one, only other kernels call it, so the native module has it compiled into them and
    this name keeps the plain function (see numba_compiled)."""
    def decorate(function):
        if signature is not None:
            SIGNATURES[function.__name__] = signature
        if NATIVE is None:
            return compiled(function, inline=inline, cache=not globals().get("_JIT_ONLY"))
        if signature is None:
            return function
        return _checked(function, getattr(NATIVE, function.__name__), _Checks(function.__name__, signature, writes))
    return decorate


def numba_compiled(leaf, inline="never"):
    """A kernel that calls no other kernel, as numba compiles it, for the GLMM's compiled loops
    (which cannot call a native kernel): the kernel itself when numba compiles the kernels."""
    return leaf if NATIVE is None else compiled(leaf, inline=inline)


def _checked(function, native, checks):
    """The native kernel behind a check of its arguments: its compiled code takes them as they
    are, so another dtype or layout would be read wrongly (or crash), a float passed for an
    integer would be truncated, a read-only array written into; what it does not take goes to
    numba's kernel, which compiles for it."""
    @functools.wraps(function)
    def call(*args):
        if checks.take(args):
            return native(*args)
        return getattr(jitted(), function.__name__)(*args)
    call.native, call.checks = native, checks
    return call


def with_arguments(kernel, *rest):
    """kernel(first, *rest) as a function of its first argument, rest checked once: for the
    optimizer's objective, which calls it thousands of times (checking a dozen arguments costs a
    microsecond, as much as the kernel on a small model)."""
    checks = getattr(kernel, "checks", None)
    if checks is None or not checks.after_first().take((None, *rest)):
        return lambda first: kernel(first, *rest)
    native, first = kernel.native, checks.first()

    def call(argument):
        return native(argument, *rest) if first.take((argument,)) else kernel(argument, *rest)
    return call


# what a scalar of a signature takes: numpy's scalars and Python's (a bool is no integer here)
SCALAR_TYPES = {"f8": (float, np.floating), "i8": (int, np.integer), "b1": (bool, np.bool_)}


class _Checks:
    """What a native kernel takes, from its numba signature such as 'f8(f8[:, ::1], i8[::1], i8)':
    per argument (position, scalar types or None, dtype, ndim, C-contiguous, written into)."""

    def __init__(self, name, signature, writes=(), entries=None):
        self.name = name
        self.entries = _argument_entries(signature, writes) if entries is None else entries

    def take(self, args):
        """Whether the native kernel takes args (else the first argument it does not take is noted
        in `fallbacks`)."""
        for position, types, dtype, ndim, contiguous, written in self.entries:
            value = args[position]
            if types is not None:
                ok = isinstance(value, types) and (value.__class__ is not bool or types is SCALAR_TYPES["b1"])
            else:
                ok = (value.__class__ is np.ndarray and (value.dtype is dtype or value.dtype == dtype)
                      and value.ndim == ndim)
                if ok:
                    flags = value.flags
                    ok = flags.aligned and (flags.c_contiguous or not contiguous) and (flags.writeable or not written)
            if not ok:
                if (self.name, position) not in fallbacks:
                    log.warning("hlm's native kernel %s does not take argument %d as given (%s); numba compiles "
                                "the kernel for it", self.name, position, type(value).__name__)
                fallbacks.add((self.name, position))
                return False
        return True

    def first(self):
        return _Checks(self.name, None, entries=[entry for entry in self.entries if entry[0] == 0])

    def after_first(self):
        return _Checks(self.name, None, entries=[entry for entry in self.entries if entry[0] > 0])


def _argument_entries(signature, writes):
    """_Checks' entries of a numba signature; an array is 'dt[:, ...]' (any layout) or 'dt[:, ..., ::1]'
    (C-contiguous), nothing else."""
    depth, start = 0, None
    for i in range(len(signature) - 1, -1, -1):           # the argument list: the last top-level (...)
        depth += {")": 1, "(": -1}.get(signature[i], 0)
        if depth == 0:
            start = i
            break
    arguments, depth, current = [], 0, ""
    for character in signature[start + 1:-1] + ",":
        if character == "," and depth == 0:
            arguments.append(current.strip())
            current = ""
            continue
        depth += {"[": 1, "(": 1, "]": -1, ")": -1}.get(character, 0)
        current += character
    entries = []
    for position, argument in enumerate(arguments):
        if "[" not in argument:
            entries.append((position, SCALAR_TYPES[argument], None, 0, False, False))
            continue
        dtype, dimensions = argument[:-1].split("[")
        dimensions = [d.strip() for d in dimensions.split(",")]
        if any(d != ":" for d in dimensions[:-1]) or dimensions[-1] not in (":", "::1"):
            raise ValueError(f"kernel argument '{argument}': only any-layout or C-contiguous arrays are checked")
        entries.append((position, None, np.dtype(dtype), len(dimensions), dimensions[-1] == "::1",
                        position in writes))
    return entries


@functools.cache
def jitted():
    """A second copy of this module whose kernels numba compiles (without its disk cache, which
    belongs to this module), for arrays a native kernel does not take."""
    spec = importlib.util.spec_from_file_location(f"{__name__}_jit", __file__)
    module = importlib.util.module_from_spec(spec)
    module._JIT_ONLY = True
    spec.loader.exec_module(module)
    return module


@kernel("f8[:, :, ::1](i4[::1], f8[:, ::1], f8[:, ::1], i8)")
def level_products(codes, Z, W, nlevels):
    """Σ W[i, c]·Z[i, a] over the rows i of each level j (codes[i] is row i's level): W_j'Z_j as a
    (nlevels, W's columns, Z's columns) array, in one pass over the rows."""
    out = np.zeros((nlevels, W.shape[1], Z.shape[1]))
    for i in range(len(codes)):
        j = codes[i]
        for c in range(W.shape[1]):
            w = W[i, c]
            for a in range(Z.shape[1]):
                out[j, c, a] += w * Z[i, a]
    return out


@kernel("Tuple((f8[::1], b1[::1]))(f8[:, ::1])")
def column_spreads(X):
    """Per column of X (at least two rows): (sample standard deviation, whether every value is 0 or
    1), in two passes over the rows: the mean, then the squared deviations from it."""
    n, p = X.shape
    mean, binary = np.zeros(p), np.ones(p, dtype=np.bool_)
    for i in range(n):
        for j in range(p):
            x = X[i, j]
            mean[j] += x
            if x != 0.0 and x != 1.0:
                binary[j] = False
    mean /= n
    squares = np.zeros(p)
    for i in range(n):
        for j in range(p):
            squares[j] += (X[i, j] - mean[j]) ** 2
    return np.sqrt(squares / (n - 1)), binary


@kernel("f8[:, ::1](i8[:, ::1], f8[:, ::1], i8)")
def entry_products(entry_rows, entry_values, m):
    """Σ_i v_ia·v_ib at (r_ia, r_ib) over the rows i, where row i has the value v_ia at column r_ia
    of a matrix W (m columns, a few per row): W'W as a dense (m, m) array, in one pass over the rows."""
    out = np.zeros((m, m))
    for i in range(entry_rows.shape[0]):
        for a in range(entry_rows.shape[1]):
            target, value = out[entry_rows[i, a]], entry_values[i, a]
            for b in range(entry_rows.shape[1]):
                target[entry_rows[i, b]] += value * entry_values[i, b]
    return out


@kernel("Tuple((i8[::1], i8[::1], f8[::1]))(i4[::1], f8[:, ::1], i8[:, ::1], f8[:, ::1], f8[::1], i8, i8)")
def first_block_columns(codes, Z, rows, values, y, nlevels, m):
    """[W y]'Z_first as canonical CSC arrays (indptr, indices, data) of an (m, nlevels·q) matrix, for
    W = [Z_later X] given by its entries per row (row i has values[i, a] in column rows[i, a]) and y
    in row m − 1: row i adds values[i, a]·Z[i, c] at (rows[i, a], codes[i]·q + c) and y[i]·Z[i, c] at
    (m − 1, codes[i]·q + c). The rows are taken level by level in their order (a stable counting
    sort), so each sum adds its terms in row order, as level_products does; a first pass counts each
    level's distinct tail rows, so the arrays are allocated at their size."""
    n, k = rows.shape
    q = Z.shape[1]
    starts = np.zeros(nlevels + 1, dtype=np.int64)
    for i in range(n):
        starts[codes[i] + 1] += 1
    for j in range(nlevels):
        starts[j + 1] += starts[j]
    order = np.empty(n, dtype=np.int64)
    filled = starts[:-1].copy()
    for i in range(n):
        order[filled[codes[i]]] = i
        filled[codes[i]] += 1
    seen = np.full(m, -1, dtype=np.int64)       # the last level that reached each tail row
    distinct = np.zeros(nlevels, dtype=np.int64)
    for j in range(nlevels):
        for t in range(starts[j], starts[j + 1]):
            for a in range(k):
                r = rows[order[t], a]
                if seen[r] != j:
                    seen[r] = j
                    distinct[j] += 1
        if starts[j + 1] > starts[j]:
            distinct[j] += 1                     # y's row
    indptr = np.zeros(nlevels * q + 1, dtype=np.int64)
    indices = np.empty(q * distinct.sum(), dtype=np.int64)
    data = np.empty(q * distinct.sum())
    sums = np.zeros((m, q))
    touched = np.empty(m, dtype=np.int64)
    seen[:] = -1
    nnz = 0
    for j in range(nlevels):
        count = 0
        for c in range(q):
            sums[m - 1, c] = 0.0
        for t in range(starts[j], starts[j + 1]):
            i = order[t]
            for a in range(k):
                r = rows[i, a]
                if seen[r] != j:
                    seen[r] = j
                    touched[count] = r
                    count += 1
                    sums[r, :] = 0.0
                for c in range(q):
                    sums[r, c] += values[i, a] * Z[i, c]
            for c in range(q):
                sums[m - 1, c] += y[i] * Z[i, c]
        level_rows = np.sort(touched[:count])
        for c in range(q):
            for r in level_rows:
                indices[nnz] = r
                data[nnz] = sums[r, c]
                nnz += 1
            if count:
                indices[nnz] = m - 1
                data[nnz] = sums[m - 1, c]
                nnz += 1
            indptr[j * q + c + 1] = nnz
    return indptr, indices, data


@kernel()
def eliminate_first_block(A11, lam, level_ptr, level_rows, level_values, eliminated):
    """Factor Λ'A_jΛ + I = L_j L_j' for every level j of the first block and sum the first block's
    share of the tail's Schur complement, Σ_j Ã_j Ã_j' with Ã_j = A21_j Λ L_j^{-T}, into the lower
    triangle of `eliminated` (overwritten; its upper triangle is left as it is). Summed apart from
    A22 and subtracted once (tail_scale), as rounding is smaller that way.

    A21_j is given by its rows that are not zero: tail rows level_rows[level_ptr[j]:level_ptr[j + 1]]
    with values level_values[same, :] (every tail row for one grouping factor; a few for crossed ones),
    so a crossed model's update costs Σ_j (rows of level j)², not J·m². Returns (L, L⁻¹, Σ_j log|L_j|).
    Compiled, because it runs for every level at every evaluation of the deviance.
    """
    if A11.shape[1] == 1:
        return _eliminate_scalar_block(A11, lam[0, 0], level_ptr, level_rows, level_values, eliminated)
    if A11.shape[1] == 2:
        return _eliminate_pair_block(A11, lam, level_ptr, level_rows, level_values, eliminated)
    return _eliminate_block(A11, lam, level_ptr, level_rows, level_values, eliminated)


@kernel()
def _eliminate_block(A11, lam, level_ptr, level_rows, level_values, eliminated):
    """eliminate_first_block for any q, by loops over the q × q entries."""
    J, q = A11.shape[0], A11.shape[1]
    L = np.zeros((J, q, q))
    inv = np.zeros((J, q, q))
    log_det, product = 0.0, 1.0     # Σ_j log|L_j| as the log of running products: one log per ~100 levels
    M = np.empty((q, q))
    R = np.empty((q, q))
    longest = 0
    for j in range(J):
        longest = max(longest, level_ptr[j + 1] - level_ptr[j])
    S = np.empty((longest, q))
    for r in range(eliminated.shape[0]):
        for c in range(r + 1):
            eliminated[r, c] = 0.0
    for j in range(J):
        for a in range(q):                       # M = Λ'A_jΛ + I (explicit loops: q is tiny)
            for b in range(q):
                total = 1.0 if a == b else 0.0
                for c in range(a, q):
                    for d in range(b, q):
                        total += lam[c, a] * A11[j, c, d] * lam[d, b]
                M[a, b] = total
        for c in range(q):                       # Cholesky, column by column
            total = M[c, c]
            for k in range(c):
                total -= L[j, c, k] ** 2
            L[j, c, c] = np.sqrt(total)
            product *= L[j, c, c]
            for r in range(c + 1, q):
                total = M[r, c]
                for k in range(c):
                    total -= L[j, r, k] * L[j, c, k]
                L[j, r, c] = total / L[j, c, c]
        for c in range(q):                       # forward substitution for L^{-1}
            inv[j, c, c] = 1.0 / L[j, c, c]
            for r in range(c + 1, q):
                total = 0.0
                for k in range(c, r):
                    total -= L[j, r, k] * inv[j, k, c]
                inv[j, r, c] = total / L[j, r, r]
        for a in range(q):                       # R = Λ L_j^{-T}
            for b in range(q):
                total = 0.0
                for c in range(b + 1):
                    total += lam[a, c] * inv[j, b, c]
                R[a, b] = total
        if not 1e-100 < product < 1e100:
            log_det += np.log(product)
            product = 1.0
        start, stop = level_ptr[j], level_ptr[j + 1]
        for k in range(stop - start):            # S = A21_j R
            for b in range(q):
                total = 0.0
                for a in range(q):
                    total += level_values[start + k, a] * R[a, b]
                S[k, b] = total
        rows = level_rows[start:stop]
        for k in range(stop - start):            # eliminated += S S', lower triangle (rows ascending)
            target = eliminated[rows[k]]
            for l in range(k + 1):
                total = 0.0
                for b in range(q):
                    total += S[k, b] * S[l, b]
                target[rows[l]] += total
    return L, inv, log_det + np.log(product)


@kernel()
def _eliminate_scalar_block(A11, theta, level_ptr, level_rows, level_values, eliminated):
    """eliminate_first_block for a block of one scalar term (q = 1: most crossed and nested models),
    without _eliminate_block's q × q loops: the same operations in the same order, so the same numbers."""
    J = A11.shape[0]
    L = np.empty((J, 1, 1))
    inv = np.empty((J, 1, 1))
    log_det, product = 0.0, 1.0
    for r in range(eliminated.shape[0]):
        for c in range(r + 1):
            eliminated[r, c] = 0.0
    for j in range(J):
        total = 1.0
        total += theta * A11[j, 0, 0] * theta
        pivot = np.sqrt(total)
        L[j, 0, 0] = pivot
        inv[j, 0, 0] = 1.0 / pivot
        product *= pivot
        if not 1e-100 < product < 1e100:
            log_det += np.log(product)
            product = 1.0
        scale = 0.0 + theta * inv[j, 0, 0]                     # R = Λ L_j^{-T}
        for k in range(level_ptr[j], level_ptr[j + 1]):
            s_k = 0.0 + level_values[k, 0] * scale             # S = A21_j R
            target = level_rows[k]
            for l in range(level_ptr[j], k + 1):
                eliminated[target, level_rows[l]] += 0.0 + s_k * (0.0 + level_values[l, 0] * scale)
    return L, inv, log_det + np.log(product)


@kernel()
def _eliminate_pair_block(A11, lam, level_ptr, level_rows, level_values, eliminated):
    """eliminate_first_block for a block of q = 2 (a random intercept and slope, the commonest model
    of a thesis) with _eliminate_block's loops written out: the same operations in the same order, so
    the same numbers, in 40-60% of the time. Sums are written left to right, as the loops add."""
    J = A11.shape[0]
    L = np.zeros((J, 2, 2))
    inv = np.zeros((J, 2, 2))
    log_det, product = 0.0, 1.0
    l00, l01, l10, l11 = lam[0, 0], lam[0, 1], lam[1, 0], lam[1, 1]
    longest = 0
    for j in range(J):
        longest = max(longest, level_ptr[j + 1] - level_ptr[j])
    S = np.empty((longest, 2))
    for r in range(eliminated.shape[0]):
        for c in range(r + 1):
            eliminated[r, c] = 0.0
    for j in range(J):
        a00, a01, a10, a11 = A11[j, 0, 0], A11[j, 0, 1], A11[j, 1, 0], A11[j, 1, 1]
        m00 = 1.0 + l00 * a00 * l00 + l00 * a01 * l10 + l10 * a10 * l00 + l10 * a11 * l10   # M = Λ'A_jΛ + I
        m10 = 0.0 + l11 * a10 * l00 + l11 * a11 * l10
        m11 = 1.0 + l11 * a11 * l11
        p00 = np.sqrt(m00)                       # Cholesky
        p10 = m10 / p00
        p11 = np.sqrt(m11 - p10 ** 2)
        product *= p00
        product *= p11
        i00 = 1.0 / p00                          # L^{-1}
        i10 = (0.0 - p10 * i00) / p11
        i11 = 1.0 / p11
        L[j, 0, 0], L[j, 1, 0], L[j, 1, 1] = p00, p10, p11
        inv[j, 0, 0], inv[j, 1, 0], inv[j, 1, 1] = i00, i10, i11
        r00 = 0.0 + l00 * i00                    # R = Λ L_j^{-T}
        r01 = 0.0 + l00 * i10 + l01 * i11
        r10 = 0.0 + l10 * i00
        r11 = 0.0 + l10 * i10 + l11 * i11
        if not 1e-100 < product < 1e100:
            log_det += np.log(product)
            product = 1.0
        start, stop = level_ptr[j], level_ptr[j + 1]
        for k in range(stop - start):            # S = A21_j R
            v0, v1 = level_values[start + k, 0], level_values[start + k, 1]
            S[k, 0] = 0.0 + v0 * r00 + v1 * r10
            S[k, 1] = 0.0 + v0 * r01 + v1 * r11
        for k in range(stop - start):            # eliminated += S S', lower triangle (rows ascending)
            target = eliminated[level_rows[start + k]]
            for l in range(k + 1):
                target[level_rows[start + l]] += 0.0 + S[k, 0] * S[l, 0] + S[k, 1] * S[l, 1]
    return L, inv, log_det + np.log(product)


@kernel(inline="always")
def factor_from_index(theta, index):
    """Λ (q × q) read from θ through an index table: Λ[a, b] = θ[index[a, b]], 0 where it is -1."""
    q = index.shape[0]
    lam = np.zeros((q, q))
    for a in range(q):
        for b in range(q):
            if index[a, b] >= 0:
                lam[a, b] = theta[index[a, b]]
    return lam


@kernel("Tuple((f8[:, :, ::1], f8[:, :, ::1], f8, i8))(f8[::1], f8[:, ::1], b1, i8[:, ::1], i8[:, ::1], "
        "i8[::1], i8, f8[:, :, ::1], i8[::1], i8[::1], f8[:, ::1], f8[:, ::1])", writes=(1,))
def factor_blocks(theta, tail, factor_tail, first_index, tail_index, group_start, n_identity, A11, level_ptr,
                  level_rows, level_values, A22):
    """One evaluation's blocked factor in one compiled call: Λ of the first block read from θ
    (first_index[a, b]: the position in θ of Λ[a, b], -1 for 0), the first block eliminated
    (eliminate_first_block), the tail's Schur complement Λ_T'(A22 − E)Λ_T + I formed in `tail`
    (tail_scale) and, if factor_tail, factored in place (cholesky_lower). Returns (L, L⁻¹,
    Σ_j log|L_j|, info), info as LAPACK's (0 when the tail is left to the caller)."""
    lam = factor_from_index(theta, first_index)
    L, inv, log_det = eliminate_first_block(A11, lam, level_ptr, level_rows, level_values, tail)
    tail_scale(theta, tail_index, group_start, A22, tail, n_identity)
    info = cholesky_lower(tail) if factor_tail else 0
    return L, inv, log_det, info


@kernel()
def tail_scale(theta, tail_index, group_start, A22, eliminated, n_identity):
    """eliminated := Λ_T'(A22 − eliminated)Λ_T on the lower triangle, then 1 added to the first
    n_identity diagonal entries. Λ_T is block-diagonal: row r of the tail is in the group (a level of
    a later block, or one row of X or y) starting at group_start[r], and Λ_T[group_start[r] + a, r] is
    θ[tail_index[r, a]] (-1: 0, -2: 1). A diagonal Λ_T (scalar terms: InstEval, Penicillin) is a
    scaling of rows and columns, done in place; otherwise through an m × m temporary."""
    m, width = tail_index.shape
    values = np.zeros((m, width))
    for r in range(m):
        for a in range(width):
            index = tail_index[r, a]
            values[r, a] = 1.0 if index == -2 else theta[index] if index >= 0 else 0.0
    if width == 1:
        for r in range(m):
            for c in range(r + 1):
                eliminated[r, c] = (A22[r, c] - eliminated[r, c]) * (values[r, 0] * values[c, 0])
    else:
        D = np.empty((m, m))
        for r in range(m):
            for c in range(r + 1):
                D[r, c] = D[c, r] = A22[r, c] - eliminated[r, c]
        right = np.zeros((m, m))           # D Λ_T
        for r in range(m):
            for c in range(m):
                total = 0.0
                for a in range(width):
                    if values[c, a] != 0.0:
                        total += D[r, group_start[c] + a] * values[c, a]
                right[r, c] = total
        for r in range(m):                 # Λ_T' (D Λ_T), lower triangle
            for c in range(r + 1):
                total = 0.0
                for a in range(width):
                    if values[r, a] != 0.0:
                        total += values[r, a] * right[group_start[r] + a, c]
                eliminated[r, c] = total
    for r in range(n_identity):
        eliminated[r, r] += 1.0


@kernel()
def cholesky_lower(A):
    """The lower Cholesky factor of the symmetric matrix whose lower triangle A holds, in place
    (A's upper triangle is left as it is); 0, or k if the k-th pivot is not positive (LAPACK's info)."""
    for c in range(A.shape[0]):
        total = A[c, c]
        for k in range(c):
            total -= A[c, k] ** 2
        if not total > 0.0:  # also catches NaN, as LAPACK's dpotrf does
            return c + 1
        A[c, c] = np.sqrt(total)
        for r in range(c + 1, A.shape[0]):
            total = A[r, c]
            for k in range(c):
                total -= A[r, k] * A[c, k]
            A[r, c] = total / A[c, c]
    return 0


@kernel("Tuple((f8, i8))(f8[::1], i8, b1, i8[:, ::1], i8[:, ::1], i8[::1], i8, f8[:, :, ::1], i8[::1], "
        "i8[::1], f8[:, ::1], f8[:, ::1], i8)")
def tail_criterion(theta, dof, reml, first_index, tail_index, group_start, n_identity, A11, level_ptr, level_rows,
                   level_values, A22, p):
    """(the criterion at θ, info) in one compiled call, for a tail the compiled loops factor
    (factor_blocks): what the optimizer calls, so nothing but a number comes back to Python."""
    tail = np.empty(A22.shape)
    _, _, log_det, info = factor_blocks(theta, tail, True, first_index, tail_index, group_start, n_identity, A11,
                                        level_ptr, level_rows, level_values, A22)
    if info:
        return np.nan, info
    logdet_L, logdet_RX, r2 = log_determinants(log_det, tail, n_identity, p)
    return profiled_criterion(logdet_L, logdet_RX, r2, dof, reml), 0


@kernel("Tuple((f8[::1], f8[:, ::1], i8))(f8[::1], f8, i8, b1, i8[:, ::1], i8[:, ::1], i8[::1], i8, f8[:, :, ::1], "
        "i8[::1], i8[::1], f8[:, ::1], f8[:, ::1], i8)")
def criterion_derivatives(theta, step, dof, reml, first_index, tail_index, group_start, n_identity, A11, level_ptr,
                          level_rows, level_values, A22, p):
    """(gradient, Hessian, info) of tail_criterion at θ by lme4's central differences (deriv12, the
    convergence check) in one compiled call: the points and operations of derivatives.derivatives in
    its order, so the same numbers, without 1 + 2k² calls from Python. info: the first failed one's."""
    k = len(theta)
    grad, hess = np.zeros(k), np.zeros((k, k))
    x = theta.copy()
    f0, info = tail_criterion(x, dof, reml, first_index, tail_index, group_start, n_identity, A11, level_ptr,
                              level_rows, level_values, A22, p)
    values = np.empty(4)
    signs = np.array([[1.0, 1.0], [1.0, -1.0], [-1.0, 1.0], [-1.0, -1.0]])
    for i in range(k):
        for s in range(2):
            x[i] = theta[i] + step if s == 0 else theta[i] - step
            values[s], failed = tail_criterion(x, dof, reml, first_index, tail_index, group_start, n_identity, A11,
                                               level_ptr, level_rows, level_values, A22, p)
            if failed and not info:
                info = failed
        x[i] = theta[i]
        up, down = values[0], values[1]
        grad[i] = (up - down) / (2 * step)
        hess[i, i] = (up - 2 * f0 + down) / step ** 2
        for j in range(i):
            for s in range(4):        # (+, +), (+, −), (−, +), (−, −) in θ_i, θ_j
                x[i] = theta[i] + signs[s, 0] * step
                x[j] = theta[j] + signs[s, 1] * step
                values[s], failed = tail_criterion(x, dof, reml, first_index, tail_index, group_start, n_identity,
                                                   A11, level_ptr, level_rows, level_values, A22, p)
                if failed and not info:
                    info = failed
            x[i], x[j] = theta[i], theta[j]
            hess[i, j] = hess[j, i] = (values[0] - values[1] - values[2] + values[3]) / (4 * step ** 2)
    return grad, hess, info


@kernel("f8(f8, f8, f8, i8, b1)")
def profiled_criterion(logdet_L, logdet_RX, r2, dof, reml):
    """The profiled deviance (ML) or REML criterion from an evaluation's three numbers; dof is n (ML)
    or n − p (REML)."""
    value = logdet_L + dof * (1 + np.log(2 * np.pi * r2 / dof))
    return value + logdet_RX if reml else value


@kernel("UniTuple(f8, 3)(f8, f8[:, ::1], i8, i8)")
def log_determinants(log_det_first, tail, n_random, p):
    """(log|L_θ|², log|R_X|², r²) from the factored tail, whose first n_random rows are the later
    blocks' random effects, then p of X and the last one y's."""
    logdet_L, logdet_RX = 2.0 * log_det_first, 0.0
    for r in range(n_random):
        logdet_L += 2.0 * np.log(tail[r, r])
    for r in range(n_random, n_random + p):
        logdet_RX += 2.0 * np.log(tail[r, r])
    return logdet_L, logdet_RX, tail[-1, -1] ** 2


@kernel("f8(f8[:, ::1], i8[::1], i8[::1], f8[::1], f8[::1])")
def quadratic_forms(lower, level_ptr, rows, values, weights):
    """Σ_j weights[j]·a_j' S a_j for the symmetric S whose lower triangle `lower` holds and the sparse
    a_j (level j's rows, ascending, and values) restricted to S's rows: the gradient's trace of the
    first block (gradient.py)."""
    size = lower.shape[0]
    total = 0.0
    for j in range(len(weights)):
        start, stop = level_ptr[j], level_ptr[j + 1]
        level = 0.0
        for k in range(start, stop):
            r = rows[k]
            if r >= size:
                break
            row = lower[r]
            cross = 0.0
            for l in range(start, k):
                cross += row[rows[l]] * values[l]
            level += values[k] * (2 * cross + row[r] * values[k])
        total += weights[j] * level
    return total
