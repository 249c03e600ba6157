"""The response distributions of generalized linear mixed models, as lme4's glmFamily computes them.

Links, variance functions and deviance residuals are compiled scalar functions (the PIRLS loop
calls them for every row at every iteration), with lme4's clamps: μ stays within [ε, 1 - ε] for
binomial links and at least ε for the log link. GlmResponse is lme4's glmResp: the response as the
family reads it (a binomial outcome as a proportion with its trials as weights), the offset, and
the constant parts of the log-likelihood, computed once.
"""
import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import scipy.special

from ..errors import DataError
from ..vocabulary import FAMILIES, LINKS, family_name, link_name
from .design import Factor, evaluate
from .kernels import compiled
from .vector_math import exp_into, log_into

EPSILON = np.finfo(float).eps
SQRT_2PI = math.sqrt(2 * math.pi)
BINOMIAL, POISSON = (FAMILIES.index(name) for name in ("binomial", "poisson"))
LOGIT, PROBIT, CLOGLOG, LOG = (LINKS.index(name) for name in ("logit", "probit", "cloglog", "log"))


@dataclass(frozen=True)
class Family:
    """A family and its link by their vocabulary names; `code` and `link_code` for the kernels."""
    name: str
    link: str

    @classmethod
    def named(cls, family, link=None):
        return cls(family_name(family), link_name(family, link))

    @property
    def code(self):
        return FAMILIES.index(self.name)

    @property
    def link_code(self):
        return LINKS.index(self.link)

    def linkfun(self, mu):
        """η from μ: only for the starting values (R's family$linkfun)."""
        return {"logit": scipy.special.logit, "probit": scipy.special.ndtri,
                "cloglog": lambda m: np.log(-np.log1p(-m)), "log": np.log}[self.link](mu)

    def linkinv(self, eta):
        return linkinv_array(np.asarray(eta, dtype=float), self.link_code)


# ---- compiled scalar functions (glmFamily.cpp) ---------------------------------------------------

@compiled(inline="always")
def linkinv(eta, link):
    if link == LOGIT:
        mu = 1.0 / (1.0 + math.exp(-eta)) if eta >= 0 else math.exp(eta) / (1.0 + math.exp(eta))
        return min(max(mu, EPSILON), 1.0 - EPSILON)
    if link == PROBIT:
        return min(0.5 * math.erfc(-eta / math.sqrt(2.0)), 1.0 - EPSILON)
    if link == CLOGLOG:
        return min(max(-math.expm1(-math.exp(eta)), EPSILON), 1.0 - EPSILON)
    return max(math.exp(eta), EPSILON)


@compiled(inline="always")
def mu_eta(eta, link):
    """dμ/dη."""
    if link == LOGIT:
        e = math.exp(-abs(eta))
        return max(e / (1.0 + e) ** 2, EPSILON)
    if link == PROBIT:
        return math.exp(-0.5 * eta * eta) / SQRT_2PI
    if link == CLOGLOG:
        return max(math.exp(eta - math.exp(eta)), EPSILON)
    return max(math.exp(eta), EPSILON)


@compiled(inline="always")
def variance(mu, family):
    if family == BINOMIAL:
        return max(mu * (1.0 - mu), EPSILON)
    return mu


@compiled(inline="always")
def _y_log_y(y, mu):
    return y * math.log(y / mu) if y != 0.0 else 0.0


@compiled(inline="always")
def deviance_residual(y, mu, weight, family):
    """The squared deviance residual of one row (the family's dev.resids)."""
    if family == BINOMIAL:
        return 2.0 * weight * (_y_log_y(y, mu) + _y_log_y(1.0 - y, 1.0 - mu))
    return 2.0 * weight * (_y_log_y(y, mu) - (y - mu))


@compiled
def linkinv_into(eta, mu, link):
    """μ = g⁻¹(η) row by row, vectorized for the logit and log links (the usual ones)."""
    if link == LOGIT:
        exp_into(-eta, mu)
        for i in range(len(mu)):
            mu[i] = min(max(1.0 / (1.0 + mu[i]), EPSILON), 1.0 - EPSILON)
    elif link == LOG:
        exp_into(eta, mu)
        for i in range(len(mu)):
            mu[i] = max(mu[i], EPSILON)
    else:
        for i in range(len(mu)):
            mu[i] = linkinv(eta[i], link)


@compiled
def deviance_total(y, mu, weights, family):
    """Σ d_i(μ_i): the sum of deviance_residual over the rows, with vectorized logarithms."""
    n = len(y)
    ratio, log_ratio = np.empty(n), np.empty(n)
    for i in range(n):
        ratio[i] = y[i] / mu[i] if y[i] > 0.0 else 1.0
    log_into(ratio, log_ratio)
    total = 0.0
    if family == BINOMIAL:
        log_complement = np.empty(n)
        for i in range(n):
            ratio[i] = (1.0 - y[i]) / (1.0 - mu[i]) if y[i] < 1.0 else 1.0
        log_into(ratio, log_complement)
        for i in range(n):
            total += 2.0 * weights[i] * (y[i] * log_ratio[i] + (1.0 - y[i]) * log_complement[i])
    else:
        for i in range(n):
            total += 2.0 * weights[i] * (y[i] * log_ratio[i] - (y[i] - mu[i]))
    return total


@compiled
def linkinv_array(eta, link):
    out = np.empty_like(eta)
    linkinv_into(eta, out, link)
    return out


@compiled
def variance_array(mu, family):
    out = np.empty_like(mu)
    for i in range(len(mu)):
        out[i] = variance(mu[i], family)
    return out


@compiled
def deviance_residuals_array(y, mu, weights, family):
    """The squared deviance residuals."""
    out = np.empty_like(mu)
    for i in range(len(mu)):
        out[i] = deviance_residual(y[i], mu[i], weights[i], family)
    return out


# ---- the response as the family reads it ---------------------------------------------------------

@dataclass(frozen=True)
class GlmResponse:
    """lme4's glmResp: y (a binomial outcome as the proportion of successes), the weights (prior
    weights × trials), the offset, and the pieces of the log-likelihood that do not depend on μ.

    -2 Σ scale·log p(successes | trials, μ) is lme4's aic(): the binomial takes trials from the
    counts (cbind) or else from the weights (a proportion with weights = trials), as R's binomial()$aic.
    """
    family: Family
    y: np.ndarray
    weights: np.ndarray
    offset: np.ndarray
    scale: np.ndarray       # weight / trials (binomial), weight (Poisson): the multiplier of log p
    constant: np.ndarray    # log choose(trials, successes) (binomial), -log(y!) (Poisson)
    successes: np.ndarray
    trials: np.ndarray
    weights_name: str = None    # the data column the prior weights came from, if one did

    @cached_property
    def deviance_constant(self):
        """c in -2 Σ scale·log p(y | μ) = Σ d_i(μ) + c (the saturated model's -2 log-likelihood),
        so the likelihood comes with the deviance PIRLS adds up anyway; NaN where R's rounding of
        non-integer counts breaks the identity."""
        w, y = self.weights, self.y
        if self.family.name == "poisson":
            return float(-2 * np.sum(w * (scipy.special.xlogy(y, y) - y) + self.scale * self.constant))
        counts = np.column_stack([self.scale * self.successes, self.scale * (self.trials - self.successes)])
        if not np.allclose(counts, np.column_stack([w * y, w * (1 - y)]), rtol=1e-12, atol=1e-12):
            return float("nan")
        return float(-2 * np.sum(w * (scipy.special.xlogy(y, y) + scipy.special.xlogy(1 - y, 1 - y))
                                 + self.scale * self.constant))

    @property
    def n(self):
        return len(self.y)

    def initial_mu(self):
        """R's family$initialize: (w y + 1/2) / (w + 1) for the binomial, y + 0.1 for the Poisson."""
        if self.family.name == "binomial":
            return (self.weights * self.y + 0.5) / (self.weights + 1)
        return self.y + 0.1


def glm_response(values, label, family, weights, offset):
    """GlmResponse from the evaluated response (y, or successes and failures from cbind()),
    refusing values the family cannot take."""
    n = len(values)
    prior = np.ones(n) if weights is None else np.array(weights, dtype=float)   # own, writable copies:
    offset = np.zeros(n) if offset is None else np.array(offset, dtype=float)   # the kernels' array type
    if family.name == "binomial":
        return _binomial(np.array(values, dtype=float), label, family, prior, offset, weights is not None)
    return _poisson(np.array(values, dtype=float), label, family, prior, offset)


def _binomial(values, label, family, prior, offset, weighted):
    if values.ndim == 2:
        if values.shape[1] != 2 or (values < 0).any():
            raise DataError(f"outcome '{label}' must be cbind(successes, failures) with two non-negative counts")
        trials = values.sum(axis=1)
        y = np.divide(values[:, 0], trials, out=np.zeros(len(trials)), where=trials > 0)
        weights = prior * trials
    else:
        y, trials, weights = values, np.ones(len(values)), prior
        allowed = (y >= 0) & (y <= 1) if weighted else (y == 0) | (y == 1)
        if not allowed.all():
            bad = ", ".join(f"{v:g}" for v in np.unique(y[~allowed])[:3])
            raise DataError(f"outcome '{label}' has values other than {'proportions' if weighted else '0 and 1'} "
                            f"({bad}); family binomial needs a 0/1 or two-category outcome, cbind(successes, "
                            "failures), or proportions with weights = trials")
    size = np.rint(trials if (trials > 1).any() else weights)
    successes = np.rint(size * y)
    constant = scipy.special.gammaln(size + 1) - scipy.special.gammaln(successes + 1) \
        - scipy.special.gammaln(size - successes + 1)
    scale = np.divide(weights, size, out=np.zeros(len(size)), where=size > 0)
    return GlmResponse(family, y, weights, offset, scale, constant, successes, size)


def _poisson(values, label, family, prior, offset):
    if values.ndim != 1:
        raise DataError(f"outcome '{label}' has {values.shape[1]} columns; family poisson needs one column of counts")
    for bad, what in ((values < 0, "negative"), (values != np.round(values), "non-integer")):
        if bad.any():
            raise DataError(f"outcome '{label}' has {what} values ({values[bad][0]:g} in {int(bad.sum())} rows); "
                            "family poisson needs counts 0, 1, 2, ...")
    return GlmResponse(family, values, prior, offset, prior, -scipy.special.gammaln(values + 1), values,
                       np.ones(len(values)))


def response_reader(family):
    """The reader build_design calls for a GLMM's response: a two-category outcome becomes 0/1
    (the second category, as R orders them, is the success), other outcomes stay as numbers."""
    def read(variable, frame):
        value = evaluate(variable.node, frame)
        if isinstance(value, Factor):
            if family.name != "binomial" or len(value.levels) != 2:
                raise DataError(f"outcome '{variable.label}' has {len(value.levels)} categories "
                                f"({', '.join(value.levels[:4])}); family {family.name} needs "
                                f"{'two categories' if family.name == 'binomial' else 'counts'}")
            return (value.codes == 1).astype(float)
        return np.asarray(value, dtype=float)
    return read
