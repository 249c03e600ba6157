"""Confidence intervals as lme4's confint.merMod: Wald, profile (confint.thpr, the profile's
interpolating spline inverted) and parametric bootstrap (percentiles as boot.ci).
"""
import logging

import numpy as np
import pandas as pd
import scipy.linalg
import scipy.special

from ..errors import ModelError
from .bootstrap import bootstrap, bootstrap_confint, percentile_interval  # noqa: F401 (percentile_interval: API)
from .cache import _cached
from .profile import profile, select_parameters

log = logging.getLogger(__name__)

Z95 = 1.959963984540054   # qnorm(0.975): the half-width of 95% Wald intervals in SDs


def critical_value(df, level=0.95):
    """The two-sided critical value of a test's interval: t with df, normal without df (a Wald z
    test), as lmerTest's contest1D(confint = TRUE) takes it."""
    tail = (1 + level) / 2
    return float(scipy.special.stdtrit(df, tail) if df is not None else scipy.special.ndtri(tail))


def confint(model, method="profile", level=0.95, parm=None, nsim=500, seed=1, progress=None):
    """lme4's confint(m, method=, oldNames = FALSE): a DataFrame indexed by parameter name
    ("sd_(Intercept)|id", "cor_ses.(Intercept)|id", "sigma", then the fixed effects) with the
    lower and upper limits as columns named as R names them ("2.5 %", "97.5 %").

    profile: lme4's likelihood profile of the ML deviance (a REML fit is refitted by ML, as
    lme4 does); Wald: fixed effects only (variance parameters NaN); boot: seeded parametric
    bootstrap with `nsim` refits and percentile limits (progress bar on a terminal).
    """
    if not 0 < level < 1:
        raise ModelError(f"level {level} must be between 0 and 1, e.g. 0.95")
    key = str(method).lower()
    if key not in ("profile", "wald", "boot"):
        raise ModelError(f"confint method '{method}' is unknown; use 'profile', 'wald' or 'boot'")
    names = list(model.covariance_layout.names) + list(model.design.fixed_names)
    wanted = select_parameters(names, parm)
    alpha = (1 - level) / 2
    columns = [_percent(alpha), _percent(1 - alpha)]
    if key == "wald":
        z = scipy.special.ndtri([alpha, 1 - alpha])
        se = np.sqrt(np.diag(model.vcov.to_numpy()))
        limits = np.full((len(names), 2), np.nan)
        limits[-len(se):] = model.fixef.to_numpy()[:, None] + se[:, None] * z
    elif key == "profile":
        return pd.DataFrame(_profile_confint(model, level, wanted), index=wanted, columns=columns)
    else:
        limits = _boot_confint(model, level, nsim, seed, progress)
    return pd.DataFrame(limits, index=names, columns=columns).loc[wanted]


def _percent(p):
    return f"{100 * p:.3g} %"


def _profile_confint(model, level, wanted):
    profiles = profile(model, which=wanted)
    z = scipy.special.ndtri([(1 - level) / 2, (1 + level) / 2])
    limits = []
    for name in wanted:
        prof = profiles[name]
        limit = _interpolate_profile(prof, z)
        for k, bound in enumerate((prof.lower_bound, prof.upper_bound)):
            if np.isnan(limit[k]) and not np.isnan(bound):
                limit[k] = bound
        limits.append(limit)
    return np.array(limits)


def _interpolate_profile(prof, z):
    """confint.thpr: invert the interpolating spline of ζ(x) (splines::backSpline); when the
    profile is not monotone, fall back to linear interpolation of x(ζ) as lme4 does."""
    ok = ~np.isnan(prof.zeta)
    x, zeta = prof.values[ok], prof.zeta[ok]
    try:
        return _back_spline_predict(x, zeta, z)
    except ValueError:
        if ok.sum() == 0 or np.all(np.diff(prof.zeta) < -0.01):
            log.warning("bad profile for %s", prof.name)
            return np.array([np.nan, np.nan])
        log.warning("bad spline fit for %s: falling back to linear interpolation", prof.name)
        return _approx(zeta, x, z)


def _approx(x, y, at):
    """R's approxfun(x, y)(at): ties in x averaged, NaN outside the range."""
    frame = pd.DataFrame({"x": x, "y": y}).groupby("x", sort=True)["y"].mean()
    xs, ys = frame.index.to_numpy(), frame.to_numpy()
    out = np.interp(at, xs, ys)
    return np.where((at < xs[0]) | (at > xs[-1]), np.nan, out)


def _back_spline_predict(x, zeta, at):
    """predict(backSpline(interpSpline(zeta ~ x)), at) for increasing ζ."""
    if len(x) < 4 or np.any(np.diff(x) <= 0):
        raise ValueError("too few or repeated points for a spline")
    adiff = np.diff(zeta)
    if not np.all(adiff > 0):
        raise ValueError("spline must be monotone")
    import scipy.interpolate  # lazy: it brings scipy.optimize, .spatial and .fft, which only profiles need

    slope = scipy.interpolate.CubicSpline(x, zeta, bc_type="natural")(x, 1)
    kdiff = np.diff(x)
    nk = len(x)
    b = np.full((nk, 4), np.nan)
    b[:, 0] = x
    b[:, 1] = 1 / slope
    for i in range(nk - 1):
        a = np.array([[adiff[i] ** 2, adiff[i] ** 3], [2 * adiff[i], 3 * adiff[i] ** 2]])
        b[i, 2:4] = np.linalg.solve(a, [kdiff[i] - adiff[i] * b[i, 1], b[i + 1, 1] - b[i, 1]])
    b[nk - 1, 1:] = np.nan
    if nk > 2:
        b[0, 3] = b[nk - 2, 3] = 0.0
        b[0, 1:3] = np.linalg.solve(np.array([[adiff[0], adiff[0] ** 2], [1, 2 * adiff[0]]]),
                                    [kdiff[0], 1 / slope[1]])
        b[nk - 2, 2] = (kdiff[-1] - adiff[-1] * b[nk - 2, 1]) / adiff[-1] ** 2
    if b[0, 2] > 0:
        b[0, 2], b[0, 1] = 0.0, kdiff[0] / adiff[0]
    if b[nk - 2, 2] < 0:
        b[nk - 2, 2], b[nk - 2, 1] = 0.0, kdiff[-1] / adiff[-1]
    out = np.full(len(at), np.nan)
    for k, value in enumerate(at):
        if value < zeta[0] or value > zeta[-1]:
            continue
        i = max(0, int(np.searchsorted(zeta, value, side="left")) - 1)
        d = value - zeta[i]
        out[k] = b[i, 0] + d * (b[i, 1] + d * (b[i, 2] + d * b[i, 3]))
    return out


def _boot_confint(model, level, nsim, seed, progress):
    run = lambda: bootstrap(model, nsim, seed, progress)
    boot = run() if seed is None else _cached(model, ("bootstrap", int(nsim), seed), run)
    return bootstrap_confint(boot, level).to_numpy()
