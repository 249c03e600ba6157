"""Parametric bootstrap as lme4's bootMer: responses simulated from the fitted model (engine's
simulate, lme4's simulate.merMod), refitted on the same design; percentile intervals as
confint(bootMer(...), type = "perc") (boot.ci).
"""
import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.special
from tqdm import tqdm

from ..engine.simulate import simulate
from ..errors import HlmError, ModelError

log = logging.getLogger(__name__)

REFIT_ERRORS = (HlmError, ArithmeticError, ValueError, RuntimeError, np.linalg.LinAlgError)  # a failed replicate


@dataclass(frozen=True)
class Bootstrap:
    """Parameter estimates of `nsim` refits to responses simulated from the fitted model."""
    replicates: pd.DataFrame   # nsim × (sd/cor..., sigma, fixed effects)
    estimate: pd.Series        # the same parameters of the original fit
    n_failed: int
    n_singular: int
    seed: object


def bootstrap(model, nsim=500, seed=1, progress=None):
    """Seeded parametric bootstrap: simulate y* = Xβ̂ + Zb* + ε* (b* ~ N(0, σ̂²ΛΛ'),
    ε* ~ N(0, σ̂²)) with numpy's default_rng(seed), refit each with model.with_response(y*)
    (same design, REML setting and optimizer) and collect the sd/cor, σ and fixed-effect
    estimates. progress: a tqdm bar (None: when stderr is a terminal)."""
    if int(nsim) < 2:
        raise ModelError(f"nsim = {nsim} is too small for a bootstrap; use e.g. nsim=500")
    rng = np.random.default_rng(seed)
    names = list(model.covariance_layout.names) + list(model.design.fixed_names)
    rows, failed, singular = [], 0, 0
    for _ in tqdm(range(int(nsim)), desc="bootstrap", disable=None if progress is None else not progress, leave=False):
        y = simulate(model, 1, rng=rng)[:, 0]
        try:
            refit = model.with_response(y)
            rows.append(_estimates(refit))
            singular += refit.is_singular
        except REFIT_ERRORS:
            failed += 1
            rows.append(np.full(len(names), np.nan))
    if singular:
        log.info("%d of %d bootstrap refits were singular", singular, nsim)
    if failed:
        log.warning("%d of %d bootstrap refits failed", failed, nsim)
    return Bootstrap(pd.DataFrame(rows, columns=names), pd.Series(_estimates(model), index=names),
                     failed, singular, seed)


def _estimates(model):
    """sd/cor, σ and the fixed effects of a fit, in lme4's order."""
    return np.concatenate([model.covariance_layout.sdcor(model.theta, model.sigma), model.beta])


def bootstrap_confint(boot, level=0.95):
    """confint(bootMer(...), type = "perc"): percentile limits of every parameter, as a DataFrame
    with R's column names ("2.5 %", "97.5 %"); failed refits are left out."""
    if not 0 < level < 1:
        raise ModelError(f"level {level} must be between 0 and 1, e.g. 0.95")
    alpha = np.array([(1 - level) / 2, (1 + level) / 2])
    limits = [percentile_interval(boot.replicates[c].to_numpy(), alpha) for c in boot.replicates.columns]
    return pd.DataFrame(limits, index=list(boot.replicates.columns),
                        columns=[f"{100 * a:.3g} %" for a in alpha])


def percentile_interval(t, alpha):
    """boot.ci(type = "perc"): the (R+1)α-th order statistics, interpolated on the normal
    quantile scale between neighbours (boot's norm.inter)."""
    t = np.sort(t[np.isfinite(t)])
    R = len(t)
    if R == 0:
        return np.full(len(alpha), np.nan)
    rk = (R + 1) * alpha
    k = np.trunc(rk).astype(int)
    out = np.empty(len(alpha))
    for i, (ki, rki, a) in enumerate(zip(k, rk, alpha)):
        if ki == rki and 0 < ki <= R:
            out[i] = t[ki - 1]
        elif ki <= 0:
            out[i] = t[0]
        elif ki >= R:
            out[i] = t[-1]
        else:
            z, z1, z2 = scipy.special.ndtri([a, ki / (R + 1), (ki + 1) / (R + 1)])
            out[i] = t[ki - 1] + (z - z1) / (z2 - z1) * (t[ki] - t[ki - 1])
    return out
