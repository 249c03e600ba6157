"""Parametric bootstrap as lme4's bootMer: responses simulated from the fitted model, refitted
on the same design.
"""
import logging
import sys
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from ..engine.covariance import sdcor_from_theta, varpar_names
from ..engine.deviance import ProfiledDeviance
from ..engine.optimize import is_singular, optimize
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
    ε* ~ N(0, σ̂²)) with numpy's default_rng(seed), refit each (same REML setting, optimizer and
    start θ̂) and collect the sd/cor, σ and fixed-effect estimates."""
    if int(nsim) < 2:
        raise ModelError(f"nsim = {nsim} is too small for a bootstrap; use e.g. nsim=500")
    rng = np.random.default_rng(seed)
    design, dev = model.design, model.deviance_function
    names = varpar_names(model) + list(design.fixed_names)
    mean = design.X @ model.fixef.to_numpy()
    summary = model.optsummary
    rows, failed, singular = [], 0, 0
    for _ in _progress(range(int(nsim)), int(nsim), "bootstrap", progress):
        y = mean + _simulate_random(model, rng) + model.sigma * rng.standard_normal(design.n)
        try:
            dev_star = ProfiledDeviance(replace(design, y=y), reml=model.REML)
            theta = optimize(dev_star, summary.optimizer, summary.control, start=model.theta)[0]
            ev = dev_star.evaluate(theta)
            sigma = dev_star.sigma(ev)
            rows.append(np.concatenate([sdcor_from_theta(dev, theta, sigma), [sigma],
                                        dev_star.fixed_effects(ev)]))
            singular += is_singular(theta, dev.lower)
        except (ArithmeticError, ValueError, RuntimeError, np.linalg.LinAlgError, ModelError):
            failed += 1
            rows.append(np.full(len(names), np.nan))
    if singular:
        log.info("%d of %d bootstrap refits were singular", singular, nsim)
    if failed:
        log.warning("%d of %d bootstrap refits failed", failed, nsim)
    estimate = np.concatenate([sdcor_from_theta(dev, model.theta, model.sigma), [model.sigma],
                               model.fixef.to_numpy()])
    return Bootstrap(pd.DataFrame(rows, columns=names), pd.Series(estimate, index=names),
                     failed, singular, seed)


def _simulate_random(model, rng):
    """Zb* for b* = σ̂ Λ u, u ~ N(0, I), term by term."""
    out = np.zeros(model.design.n)
    for term, lam in zip(model.design.terms, model.deviance_function.evaluate(model.theta).factors):
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
