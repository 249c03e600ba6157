"""Likelihood-ratio tests laid out as lme4's anova(m1, m2, ...); REML fits are refitted by ML.
"""
import logging

import numpy as np
import pandas as pd
import scipy.stats

from ..errors import ModelError
from ..inference.cache import ml_version
from .checks import _check_model, _check_same_likelihood, _check_same_rows

log = logging.getLogger(__name__)


REFIT_MESSAGE = "refitting model(s) with ML (instead of REML)"


def anova(*models, names=None, **named_models):
    """lme4's anova(m1, m2, ...): one row per model, ordered by number of parameters, with
    npar, AIC, BIC, logLik, deviance, Chisq, Df, Pr(>Chisq) (each test against the row above).
    Models are named by `names`, by keyword (`anova(null=m0, full=m1)`) or MODEL1, MODEL2, ...
    REML fits are refitted by ML first; `table.attrs["note"]` then says so."""
    if names is not None and len(names) != len(models):
        raise ModelError(f"anova got {len(models)} models but {len(names)} names; give one name per model")
    labels = list(names) if names is not None else [f"MODEL{i + 1}" for i in range(len(models))]
    pairs = list(zip(labels, models)) + list(named_models.items())
    if len(pairs) < 2:
        raise ModelError("anova needs two or more models to compare; for F-tests of one model's terms "
                         "use hlm.anova_terms(model)")
    if len({name for name, _ in pairs}) < len(pairs):
        raise ModelError(f"anova got the model name '{_duplicate([n for n, _ in pairs])}' twice; name each model once")
    for name, model in pairs:
        _check_model(model, f"'{name}'")
    _check_same_rows(pairs)
    _check_same_likelihood(pairs)
    refitted = any(model.REML for _, model in pairs)
    if refitted:
        log.info(REFIT_MESSAGE)
    pairs = [(name, ml_version(model)) for name, model in pairs]
    order = np.argsort([model.npar for _, model in pairs], kind="stable")
    pairs = [pairs[i] for i in order]
    return _lrt_table(pairs, refitted)


def _duplicate(names):
    seen = set()
    for name in names:
        if name in seen:
            return name
        seen.add(name)


def _lrt_table(pairs, refitted):
    npar = np.array([m.npar for _, m in pairs])
    loglik = np.array([m.loglik for _, m in pairs])
    chisq = np.concatenate([[np.nan], 2 * np.maximum(0, np.diff(loglik))])
    df = np.concatenate([[np.nan], np.diff(npar)]).astype(float)
    with np.errstate(invalid="ignore"):
        p = np.where(df == 0, np.nan, scipy.stats.chi2.sf(chisq, np.where(df == 0, 1, df)))
    table = pd.DataFrame({"npar": npar, "AIC": [m.aic for _, m in pairs], "BIC": [m.bic for _, m in pairs],
                          "logLik": loglik, "deviance": -2 * loglik, "Chisq": chisq,
                          "Df": df,
                          "Pr(>Chisq)": p}, index=pd.Index([n for n, _ in pairs], name="model"))
    table.attrs["heading"] = ["Models:"] + [f"{name}: {m.formula}" for name, m in pairs]
    table.attrs["refitted"] = refitted
    table.attrs["note"] = REFIT_MESSAGE if refitted else ""
    return table
