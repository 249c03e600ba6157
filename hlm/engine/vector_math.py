"""exp and log of whole arrays, in loops that LLVM vectorizes.

numba calls the C library's scalar exp and log one element at a time; PIRLS needs one of each
per row at every iteration, which made them its largest cost. These take the exponent apart with
integer operations on the IEEE 754 bits and evaluate a polynomial on the reduced argument (Cody
and Waite's reduction), so the loops compile to SIMD instructions; the results agree with the C
library's to within 2 units in the last place (tests/test_glmm_engine.py checks them).
"""
import numpy as np

from .kernels import compiled

LOG2E = 1.4426950408889634
LN2_HI = 6.93147180369123816490e-01     # ln 2 = LN2_HI + LN2_LO, LN2_HI with its last bits zero
LN2_LO = 1.90821492927058770002e-10
ROUNDING = 6755399441055744.0           # 1.5·2^52: adding it rounds to an integer
SQRT2 = 1.4142135623730951
EXPONENT_MASK, MANTISSA_MASK, ONE_BITS = 0x7FF, 0xFFFFFFFFFFFFF, 0x3FF0000000000000


@compiled
def exp_into(x, out):
    """out = exp(x) for x in [-708, 709] (clamped there): exp(x) = 2^k exp(r), |r| <= ln2 / 2,
    exp(r) by its Taylor polynomial of degree 13, 2^k built from its bits."""
    n = len(x)
    powers = np.empty(n, dtype=np.int64)
    for i in range(n):
        xi = min(max(x[i], -708.0), 709.0)
        k = (xi * LOG2E + ROUNDING) - ROUNDING
        r = (xi - k * LN2_HI) - k * LN2_LO
        p = 1.0 / 6227020800.0
        p = p * r + 1.0 / 479001600.0
        p = p * r + 1.0 / 39916800.0
        p = p * r + 1.0 / 3628800.0
        p = p * r + 1.0 / 362880.0
        p = p * r + 1.0 / 40320.0
        p = p * r + 1.0 / 5040.0
        p = p * r + 1.0 / 720.0
        p = p * r + 1.0 / 120.0
        p = p * r + 1.0 / 24.0
        p = p * r + 1.0 / 6.0
        p = p * r + 0.5
        p = p * r + 1.0
        out[i] = p * r + 1.0
        powers[i] = (np.int64(k) + 1023) << 52
    scale = powers.view(np.float64)
    for i in range(n):
        out[i] *= scale[i]


@compiled
def log_into(x, out):
    """out = log(x) for positive, normal x: x = m·2^e with m in [√2/2, √2), log m = 2 atanh(s),
    s = (m - 1)/(m + 1), |s| <= 0.172, by its series to s^21."""
    n = len(x)
    bits = x.view(np.int64)
    mantissas = np.empty(n, dtype=np.int64)
    for i in range(n):
        b = bits[i]
        out[i] = np.float64(((b >> 52) & EXPONENT_MASK) - 1023)
        mantissas[i] = (b & MANTISSA_MASK) | ONE_BITS
    m_values = mantissas.view(np.float64)
    for i in range(n):
        m, e = m_values[i], out[i]
        if m > SQRT2:
            m *= 0.5
            e += 1.0
        s = (m - 1.0) / (m + 1.0)
        s2 = s * s
        p = 1.0 / 21.0
        p = p * s2 + 1.0 / 19.0
        p = p * s2 + 1.0 / 17.0
        p = p * s2 + 1.0 / 15.0
        p = p * s2 + 1.0 / 13.0
        p = p * s2 + 1.0 / 11.0
        p = p * s2 + 1.0 / 9.0
        p = p * s2 + 1.0 / 7.0
        p = p * s2 + 1.0 / 5.0
        p = p * s2 + 1.0 / 3.0
        p = p * s2 + 1.0
        out[i] = e * LN2_HI + (2.0 * s * p + e * LN2_LO)
