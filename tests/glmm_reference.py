"""lme4::glmer reference fits (tests/fixtures/glmm_lme4.json, written by fixtures/r/ref_glmm.R) and
hlm's fits of the same models, each fitted once per test session.

Each reference model was fitted as, e.g.,
    glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), data = cbpp, family = binomial(link = "logit"))
on the CSV in tests/fixtures/data, with the columns listed in "factors" read as factors.
"""
import numpy as np
import pandas as pd
from conftest import FIXTURES, load_reference

import hlm

REFERENCE = load_reference("glmm_lme4.json")
MODELS = REFERENCE["models"]
NAMES = sorted(MODELS)
SECOND_STAGE = [name for name in NAMES if MODELS[name]["nAGQ"] > 0]

# DESIGN.md's GLMM tolerances for "equal to lme4"
LL_ATOL = 1e-3       # logLik, deviance, AIC, BIC (absolute)
FIXEF_RTOL = 1e-4    # fixed effects
SE_RTOL = 1e-3       # standard errors
THETA_RTOL = 1e-3    # θ
ICC_RTOL = 1e-3      # ICC and R²
# lme4's Nelder-Mead stops when the deviance changes by less than 1e-5 (FtolAbs); where its estimates
# are further than FIXEF_RTOL from hlm's, hlm's must have the lower deviance, and agree to this
STOPPED_SHORT_RTOL = 1e-3

_frames, _fits = {}, {}


def frame(name):
    """The model's CSV, with its factor columns as categories in R's order (numbers numerically)."""
    ref = MODELS[name]
    if ref["data"] not in _frames:
        _frames[ref["data"]] = pd.read_csv(FIXTURES / ref["data"])
    df = _frames[ref["data"]].copy()
    for column in ref["factors"]:
        df[column] = pd.Categorical(df[column])
    return df


def fit(name):
    if name not in _fits:
        ref = MODELS[name]
        _fits[name] = hlm.glmer(ref["formula"], frame(name), family=ref["family"], link=ref["link"],
                                nAGQ=ref["nAGQ"], weights=ref["weights"])
    return _fits[name]


def values(mapping):
    return np.array(list(mapping.values()), dtype=float)


def deviance_at(model, params):
    """hlm's stage-2 deviance at (θ, β), PIRLS starting where the fit's did."""
    dev = model.deviance_function
    params = np.asarray(params, dtype=float)
    return dev.value(dev.modes(params[:dev.n_theta], params[dev.n_theta:], model.start))
