"""Parametric bootstrap as lme4's bootMer: responses simulated from the fitted model, refitted
on the same design.
"""
import logging
import sys
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import ModelError

log = logging.getLogger(__name__)


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
    estimates."""
    if int(nsim) < 2:
        raise ModelError(f"nsim = {nsim} is too small for a bootstrap; use e.g. nsim=500")
    rng = np.random.default_rng(seed)
    names = list(model.covariance_layout.names) + list(model.design.fixed_names)
    mean = model.design.X @ model.beta
    rows, failed, singular = [], 0, 0
    for _ in _progress(range(int(nsim)), int(nsim), "bootstrap", progress):
        y = mean + _simulate_random(model, rng) + model.sigma * rng.standard_normal(model.nobs)
        try:
            refit = model.with_response(y)
            rows.append(_estimates(refit))
            singular += refit.is_singular
        except (ArithmeticError, ValueError, RuntimeError, np.linalg.LinAlgError, ModelError):
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


def _simulate_random(model, rng):
    """Zb* for b* = σ̂ Λ u, u ~ N(0, I), term by term."""
    out = np.zeros(model.nobs)
    for term, lam in zip(model.design.terms, model.covariance_layout.factors(model.theta)):
        b = model.sigma * rng.standard_normal((term.nlevels, term.q)) @ lam.T
        out += np.einsum("nq,nq->n", term.matrix, b[term.codes])
    return out


def _progress(iterable, total, label, enabled):
    """Yield from iterable, drawing a one-line progress bar on stderr when it is a terminal."""
    show = sys.stderr.isatty() if enabled is None else bool(enabled)
    for i, item in enumerate(iterable, start=1):
        yield item
        if show:
            filled = int(30 * i / total)
            sys.stderr.write(f"\r{label} [{'#' * filled}{'.' * (30 - filled)}] {i}/{total}")
            if i == total:
                sys.stderr.write("\n")
            sys.stderr.flush()
