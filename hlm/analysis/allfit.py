"""lme4's allFit: the same model with every optimizer, the log-likelihoods and estimates side by side.
"""
import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..engine.design import build_design
from ..engine.model import LinearMixedModel, fit_design
from ..errors import ModelError
from ..vocabulary import OPTIMIZERS, optimizer_name

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AllFit:
    """One fit per optimizer (lme4's allFit and its summary)."""
    models: dict              # optimizer -> LinearMixedModel, or None if the fit failed
    table: pd.DataFrame       # per optimizer: ok, warning, logLik, nll_diff, singular, converged, evaluations, messages
    fixef: pd.DataFrame       # optimizer × fixed effect
    sdcor: pd.DataFrame       # optimizer × variance parameter (sd_..., cor_..., sigma)
    theta: pd.DataFrame       # optimizer × θ

    @property
    def max_nll_diff(self):
        """lme4's print(allFit): max of the negative log-likelihoods minus their minimum."""
        return float(self.table["nll_diff"].max())

    @property
    def sd_nll(self):
        """lme4's print(allFit): standard deviation of the negative log-likelihoods."""
        return float((-self.table["logLik"]).std(ddof=1))


def allfit(formula, data=None, REML=True, optimizers=None, control=None):
    """Fit `formula` to `data` (or refit a fitted model) with every optimizer (hlm.vocabulary.OPTIMIZERS
    by default, evaluation budget 1e5 as allFit's maxfun) and tabulate the log-likelihoods, their
    differences and the estimates; fits that warn (singular, not converged) are flagged."""
    if isinstance(formula, LinearMixedModel):
        design, REML = formula.design, formula.REML
    else:
        if data is None:
            raise ModelError("allfit needs the data the formula refers to: hlm.allfit(formula, data)")
        design = build_design(formula, data)
    optimizers = list(OPTIMIZERS) if optimizers is None else list(optimizers)
    optimizers = [optimizer_name(name) for name in optimizers]
    settings = {"maxeval": 100000, **(control or {})}
    models, errors = {}, {}
    for name in optimizers:
        try:
            models[name] = fit_design(design, REML=REML, optimizer=name, control=settings)
        except (ModelError, ArithmeticError, ValueError, RuntimeError, np.linalg.LinAlgError) as exc:
            models[name], errors[name] = None, str(exc).splitlines()[0]
            log.warning("allfit: %s failed: %s", name, errors[name])
    return _allfit_result(models, errors)


def _allfit_result(models, errors):
    ok = {k: m for k, m in models.items() if m is not None}
    nll = {k: -m.loglik for k, m in ok.items()}
    best = min(nll.values()) if nll else np.nan
    rows = {}
    for name, model in models.items():
        if model is None:
            rows[name] = {"ok": False, "warning": True, "logLik": np.nan, "nll_diff": np.nan, "singular": None,
                          "converged": False, "evaluations": 0, "messages": errors[name]}
            continue
        messages = [m for m in model.messages if m not in model.design.messages]
        rows[name] = {"ok": True, "warning": bool(messages), "logLik": model.loglik, "nll_diff": nll[name] - best,
                      "singular": model.is_singular, "converged": model.converged,
                      "evaluations": model.optsummary.evaluations, "messages": "; ".join(messages)}
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "optimizer"
    first = next(iter(ok.values()), None)
    fixef = pd.DataFrame({k: m.fixef for k, m in ok.items()}).T
    sdcor = pd.DataFrame({k: m.covariance_layout.sdcor(m.theta, m.sigma) for k, m in ok.items()},
                         index=list(first.covariance_layout.names) if first else None).T
    theta = pd.DataFrame({k: m.theta for k, m in ok.items()}).T
    return AllFit(models, table, fixef, sdcor, theta)
