"""Numbers as a thesis prints them (APA 7th edition): t(146.41) = 66.98, p < .001.

Rules (APA 7 §6.36 and the seed's tables):
- estimates, standard errors and variance components: at least two decimals and at least
  three significant digits (12.66, -1.13, 0.571, 0.157), so small effects do not print as 0.00;
- test statistics (t, χ², F) and degrees of freedom: two decimals (whole-number df as integers);
- p: three decimals without a leading zero, and "< .001" below that (p values cannot exceed 1);
- proportions (ICC, R², variance explained, correlations): three decimals with the leading zero
  kept, as Chinese journals and R print them (0.179);
- a missing value prints as an em dash.

All functions return plain text (ASCII hyphen-minus for negative numbers, so a number pasted
into Excel or searched for stays a number); markup is the templates' business.
"""
import math

MISSING = "—"


def finite(x):
    """Whether x is a finite number (not None, NaN, a bool or text)."""
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def number(x, decimals=2):
    """x with a fixed number of decimals; -0.00 prints as 0.00."""
    if not finite(x):
        return MISSING
    text = f"{x:.{decimals}f}"
    return text[1:] if text.startswith("-") and float(text) == 0 else text


def estimate(x, digits=3, min_decimals=2, max_decimals=6):
    """At least `min_decimals` decimals and `digits` significant digits: -1.1275 -> -1.13,
    0.57109 -> 0.571, 0.0012345 -> 0.00123, 12.6606 -> 12.66."""
    if not finite(x):
        return MISSING
    if x == 0:
        return number(0.0, min_decimals)
    magnitude = math.floor(math.log10(abs(x)))
    decimals = min(max(min_decimals, digits - 1 - magnitude), max_decimals)
    return number(x, decimals)


def signif(x, digits=5):
    """R's format(x, digits): `digits` significant digits, as anova() prints Chisq (62.165)."""
    if not finite(x):
        return MISSING
    if x == 0:
        return "0"
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(x))))
    return number(x, decimals)


def stat(x):
    """A test statistic: two decimals."""
    return number(x, 2)


def df(x):
    """Degrees of freedom: integers as integers, otherwise two decimals (Satterthwaite)."""
    if not finite(x):
        return MISSING
    if abs(x - round(x)) < 1e-9:
        return str(int(round(x)))
    return number(x, 2)


def p_value(p, with_symbol=False):
    """'.023', '< .001' (with_symbol: 'p = .023', 'p < .001')."""
    if not finite(p):
        return MISSING
    if p < 0.001:
        relation, value = "<", ".001"
    else:
        shown = f"{min(p, 1.0):.3f}"
        relation, value = "=", shown if shown == "1.000" else shown[1:]
    if with_symbol:
        return f"p {relation} {value}"
    return f"< {value}" if relation == "<" else value


def proportion(x, decimals=3):
    """ICC, R², variance explained, correlations: 0.179."""
    return number(x, decimals)


def percent(x, decimals=1):
    """0.23315 -> '23.3%'."""
    if not finite(x):
        return MISSING
    return f"{number(100 * x, decimals)}%"


def integer(x):
    """7185 -> '7,185' (thousands separated, as APA asks for numbers of 1,000 and more)."""
    if not finite(x):
        return MISSING
    return f"{int(round(x)):,}"


def t_test(t, df_value, p):
    """'t(146.41) = 66.98, p < .001'."""
    return f"t({df(df_value)}) = {stat(t)}, {p_value(p, with_symbol=True)}"


def z_test(z, p):
    """'z = -11.47, p < .001': a GLMM's Wald z test."""
    return f"z = {stat(z)}, {p_value(p, with_symbol=True)}"


def f_test(f, df1, df2, p):
    """'F(2, 3745.30) = 12.31, p < .001': lmerTest's type III test of a term."""
    return f"F({df(df1)}, {df(df2)}) = {stat(f)}, {p_value(p, with_symbol=True)}"


def chisq_test(chisq, df_value, p):
    """'χ²(3) = 479.34, p < .001'."""
    return f"χ²({df(df_value)}) = {stat(chisq)}, {p_value(p, with_symbol=True)}"


def ci(low, high):
    """'[12.29, 13.04]'."""
    return f"[{estimate(low)}, {estimate(high)}]"
