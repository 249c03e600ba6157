"""Comparing models and the statistics derived from them.

- `anova(*models)`: likelihood-ratio tests laid out as lme4's anova (REML fits refitted by ML).
- `icc(m)`, `r2_nakagawa(m)`: performance's adjusted ICC and Nakagawa R² (random slopes too).
- `variance_explained(old, new)`: the seed's proportional reduction of each variance component.
- `contextual(m, within, between)`: within, between and contextual effects (either centering).
- `allfit(formula, data)`: lme4's allFit, every optimizer on the same model.
"""
import logging
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pandas as pd
import scipy.stats

from .errors import ModelError, did_you_mean
from .inference import contrast_test, ml_version, normalize_ddf, sdcor_from_theta, varpar_names

log = logging.getLogger(__name__)

REFIT_MESSAGE = "refitting model(s) with ML (instead of REML)"
SINGULAR_TOLERANCE = 1e-5   # insight's .is_singular, which performance's icc and r2 use


def _check_model(model, what="model"):
    from .model import LinearMixedModel
    if not isinstance(model, LinearMixedModel):
        raise ModelError(f"{what} is a {type(model).__name__}, not a fitted model; pass hlm.lmer(...) results")


def _check_same_rows(named):
    """Refuse models fitted to different rows or responses (their likelihoods do not compare)."""
    (first, a), rest = named[0], named[1:]
    for name, b in rest:
        if a.nobs != b.nobs:
            raise ModelError(f"models were fitted to different rows: '{first}' has {a.nobs} observations, "
                             f"'{name}' {b.nobs}; fit every model to the same complete rows (drop rows with "
                             "a missing value in any model's variables first)")
        if a.design.response != b.design.response or not np.array_equal(a.design.y, b.design.y):
            raise ModelError(f"models were fitted to different responses: '{first}' to "
                             f"'{a.design.response}', '{name}' to '{b.design.response}' (or to other rows); "
                             "compare models of the same response on the same rows")


# ---- likelihood-ratio tests -------------------------------------------------------------------

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


# ---- ICC and R² (performance / insight) -----------------------------------------------------

class R2(NamedTuple):
    marginal: float
    conditional: float


@dataclass(frozen=True)
class VarianceComponents:
    """insight::get_variance's pieces for a linear mixed model."""
    fixed: float      # var(Xβ̂)
    random: float     # mean of z'Σz over the rows, per grouping factor; NaN if singular
    residual: float   # σ²


def variance_components(model):
    """As insight::get_variance: the random part counts the first term of each grouping factor
    (VarCorr entries named like a ranef() factor) with its columns taken from the fixed design."""
    _check_model(model)
    X = model.design.X
    fixed = float(np.var(X @ model.fixef.to_numpy(), ddof=1))
    singular = np.any(np.abs(model.theta[np.isfinite(model.deviance_function.lower)]) < SINGULAR_TOLERANCE)
    random = np.nan if singular else _random_variance(model)
    return VarianceComponents(fixed, random, model.sigma ** 2)


def _random_variance(model):
    design = model.design
    names = list(design.fixed_names)
    X = design.X
    if "(Intercept)" not in names:
        X, names = np.column_stack([np.ones(design.n), X]), ["(Intercept)"] + names
    factors = set(model.ranef)
    total = 0.0
    for label, term, cov in zip(model.group_labels, design.terms, model.covariances):
        if label not in factors or term.nlevels == design.n:
            continue
        keep = [i for i, c in enumerate(term.columns) if c in names]
        Z = X[:, [names.index(term.columns[i]) for i in keep]]
        total += np.einsum("ni,ij,nj->", Z, cov[np.ix_(keep, keep)], Z) / design.n
    return float(total)


def icc(model):
    """performance::icc's adjusted ICC: σ²_random / (σ²_random + σ²); for the null model the
    seed's τ00 / (τ00 + σ²). NaN (with a warning) for a singular fit, as performance."""
    v = variance_components(model)
    if np.isnan(v.random):
        log.warning("ICC not computed: a variance component is (nearly) zero, the fit is singular")
        return float("nan")
    return float(v.random / (v.random + v.residual))


def r2_nakagawa(model):
    """performance::r2_nakagawa: (marginal, conditional) R² of Nakagawa, Johnson & Schielzeth
    (2017), random slopes included. For a singular fit the conditional R² is NaN and the
    marginal one leaves out the random part, as performance does."""
    v = variance_components(model)
    if np.isnan(v.random):
        log.warning("random-effect variances not available (singular fit); R2 ignores them")
        return R2(v.fixed / (v.fixed + v.residual), float("nan"))
    total = v.fixed + v.random + v.residual
    return R2(v.fixed / total, (v.fixed + v.random) / total)


# ---- variance explained (the seed's level-1 and level-2 formulas) ------------------------------

def variance_explained(old, new):
    """(old - new) / old for each variance component the two models share: "Residual" (level 1,
    σ²) and "<group>: <column>" (level 2, τ00, τ11, ...), as the seed computes them."""
    _check_model(old, "old")
    _check_model(new, "new")
    _check_same_rows([("old", old), ("new", new)])
    before, after = _variances(old), _variances(new)
    shared = [k for k in after if k in before]
    if len(shared) <= 1 and len(after) > 1:
        log.warning("the models share only the residual variance; level-2 reductions need the same "
                    "random terms in both models")
    values = [(before[k] - after[k]) / before[k] if before[k] != 0 else np.nan for k in shared]
    return pd.Series(values, index=pd.Index(shared, name="component"), name="variance explained")


def _variances(model):
    vc = model.varcorr
    out = {"Residual": float(vc.loc[vc.grp == "Residual", "vcov"].iloc[0])}
    for row in vc[(vc.grp != "Residual") & vc.var2.isna()].itertuples():
        out[f"{row.grp}: {row.var1}"] = float(row.vcov)
    return out


# ---- contextual effects ---------------------------------------------------------------------------

def contextual(model, within, between, centering=None, ddf="satterthwaite"):
    """Within (β_w), between (β_b) and contextual (β_c = β_b - β_w) effects of a predictor split
    into a level-1 part `within` and its group mean `between`.

    Group-mean centering (within = x - mean_j(x)): β_w = γ_within, β_b = γ_between, β_c = β_b - β_w.
    Grand-mean centering (within = x or x - mean(x)): β_w = γ_within, β_c = γ_between,
    β_b = β_w + β_c. `centering` ("group" or "grand") is detected from the data when None.
    Rows within/between/contextual; columns term, Estimate, Std. Error, df, t value, Pr(>|t|).
    """
    _check_model(model)
    names = list(model.design.fixed_names)
    for column in (within, between):
        if column not in names:
            raise ModelError(f"fixed effect '{column}' is not in the model{did_you_mean(column, names)}; "
                             f"the coefficients are {', '.join(names)}")
    if within == between:
        raise ModelError("within and between name the same coefficient; give the level-1 part and the group mean")
    centering = centering or _detect_centering(model, within)
    if centering not in ("group", "grand"):
        raise ModelError(f"centering '{centering}' is unknown; use 'group' or 'grand'")
    w, b = np.eye(len(names))[names.index(within)], np.eye(len(names))[names.index(between)]
    if centering == "group":
        contrasts = {"within": (within, w), "between": (between, b), "contextual": (f"{between} - {within}", b - w)}
    else:
        contrasts = {"within": (within, w), "between": (f"{within} + {between}", w + b),
                     "contextual": (between, b)}
    method = normalize_ddf(ddf)
    rows = {effect: {"term": term, **contrast_test(model, L, method)} for effect, (term, L) in contrasts.items()}
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "effect"
    table.attrs["centering"] = centering
    return table


def _detect_centering(model, within):
    """"group" if `within` averages to zero in every group of some grouping factor, else "grand"."""
    x = model.design.X[:, list(model.design.fixed_names).index(within)]
    scale = 1e-8 * (1 + np.max(np.abs(x)))
    for term in model.design.terms:
        counts = np.bincount(term.codes, minlength=term.nlevels)
        means = np.bincount(term.codes, weights=x, minlength=term.nlevels) / np.maximum(counts, 1)
        if np.all(np.abs(means) <= scale):
            return "group"
    return "grand"


# ---- allFit ---------------------------------------------------------------------------------------

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
    """Fit `formula` to `data` (or refit a fitted model) with every optimizer (hlm.optimize.OPTIMIZERS
    by default, evaluation budget 1e5 as allFit's maxfun) and tabulate the log-likelihoods, their
    differences and the estimates; fits that warn (singular, not converged) are flagged."""
    from .design import build_design
    from .model import LinearMixedModel, fit_design
    from .optimize import OPTIMIZERS
    if isinstance(formula, LinearMixedModel):
        design, REML = formula.design, formula.REML
    else:
        if data is None:
            raise ModelError("allfit needs the data the formula refers to: hlm.allfit(formula, data)")
        design = build_design(formula, data)
    optimizers = list(OPTIMIZERS) if optimizers is None else list(optimizers)
    for name in optimizers:
        if name not in OPTIMIZERS:
            raise ModelError(f"optimizer '{name}' is unknown{did_you_mean(name, OPTIMIZERS)}; "
                             f"use some of {', '.join(OPTIMIZERS)}")
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
    sdcor = pd.DataFrame({k: np.append(sdcor_from_theta(m.deviance_function, m.theta, m.sigma), m.sigma)
                          for k, m in ok.items()}, index=varpar_names(first) if first else None).T
    theta = pd.DataFrame({k: m.theta for k, m in ok.items()}).T
    return AllFit(models, table, fixef, sdcor, theta)
