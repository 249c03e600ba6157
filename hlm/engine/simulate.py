"""Responses simulated from a fitted model, as lme4's simulate.merMod with use.u = FALSE.

Each replicate draws new random effects b = σΛu (u ~ N(0, I)) for every level of every term,
then the response: Xβ + Zb + σε for a linear mixed model; for a GLMM μ = g⁻¹(offset + Xβ + Zb)
and binomial successes out of each row's trials (0/1 for a 0/1 outcome) or Poisson counts.
`newparams` replaces any of β, θ and σ, as lme4's newparams does; the rest stay as fitted.

A GLMM is told from a linear mixed model by its `response` (the outcome as its family reads
it), so that simulating from an LMM loads none of the GLMM engine's compiled code.
"""
import numpy as np

from ..errors import ModelError, did_you_mean


def simulate(model, nsim=1, seed=None, newparams=None, rng=None):
    """An (nobs, nsim) array of responses simulated from `model` (a LinearMixedModel or a
    GeneralizedLinearMixedModel). Random numbers come from `rng` (a numpy Generator) if given,
    else from numpy's default_rng(seed); per replicate the random effects are drawn first, then
    the residuals or the family's draws."""
    if isinstance(nsim, bool) or not isinstance(nsim, (int, np.integer)) or nsim < 1:
        raise ModelError(f"nsim = {nsim!r} is not a number of replicates; use a whole number of 1 or more")
    rng = np.random.default_rng(seed) if rng is None else rng
    beta, theta, sigma = parameters(model, newparams)
    response = glm_response(model)
    eta_fixed = model.design.X @ beta + (0.0 if response is None else response.offset)
    out = np.empty((model.nobs, int(nsim)))
    for k in range(int(nsim)):
        random = random_effects(model, theta, rng)
        if response is not None:
            out[:, k] = family_draws(response, eta_fixed + random, rng)
        else:
            out[:, k] = eta_fixed + sigma * (random + rng.standard_normal(model.nobs))
    return out


def glm_response(model):
    """A GLMM's GlmResponse; None for a linear mixed model."""
    return getattr(model, "response", None)


def parameters(model, newparams=None):
    """(β, θ, σ) to simulate from: the fit's, with those `newparams` names replaced. β may be
    given whole (an array in the order of the fixed effects) or in part ({name: value})."""
    newparams = dict(newparams or {})
    unknown = sorted(set(newparams) - {"beta", "theta", "sigma"})
    if unknown:
        raise ModelError(f"newparams has unknown key '{unknown[0]}'; use beta, theta and sigma")
    beta = _beta(model, newparams.get("beta"))
    theta = np.array(model.theta if newparams.get("theta") is None else newparams["theta"], dtype=float)
    if theta.shape != model.theta.shape or not np.isfinite(theta).all():
        raise ModelError(f"newparams theta has shape {theta.shape}; the model's θ has {len(model.theta)} finite values")
    if (theta < model.covariance_layout.lower).any():
        raise ModelError("newparams theta has negative diagonal entries; relative standard deviations are 0 or more")
    sigma = newparams.get("sigma")
    if sigma is not None and glm_response(model) is not None:
        raise ModelError(f"newparams sigma: a {model.family} model has no residual standard deviation; leave it out")
    sigma = float(model.sigma if sigma is None else sigma)
    if not (np.isfinite(sigma) and sigma > 0):
        raise ModelError(f"newparams sigma = {sigma} must be a positive number")
    return beta, theta, sigma


def _beta(model, given):
    names = list(model.design.fixed_names)
    if given is not None and not isinstance(given, dict):
        values = np.array(given, dtype=float)
        if values.shape != (len(names),):
            raise ModelError(f"newparams beta has {values.size} values; the model has {len(names)} fixed effects "
                             f"({', '.join(names)}): pass one each, or a dict of those to change")
        return values
    beta = np.array(model.fixef.to_numpy(), dtype=float)
    for name, value in (given or {}).items():
        if name not in names:
            raise ModelError(f"newparams beta names '{name}', not a fixed effect of '{model.formula}'"
                             f"{did_you_mean(name, names)}; its fixed effects are {', '.join(names)}")
        beta[names.index(name)] = float(value)
    return beta


def random_effects(model, theta, rng):
    """Z Λ u for one replicate, u ~ N(0, I) term by term (σ not applied)."""
    out = np.zeros(model.nobs)
    for term, lam in zip(model.design.terms, model.covariance_layout.factors(theta)):
        b = rng.standard_normal((term.nlevels, term.q)) @ lam.T
        out += np.einsum("nq,nq->n", term.matrix, b[term.codes])
    return out


def family_draws(response, eta, rng):
    """Binomial successes out of each row's trials, or Poisson counts, at μ = g⁻¹(η)."""
    mu = response.family.linkinv(eta)
    if response.family.name == "binomial":
        return rng.binomial(response.trials.astype(np.int64), np.clip(mu, 0.0, 1.0)).astype(float)
    return rng.poisson(mu).astype(float)
