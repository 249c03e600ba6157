"""Checks of a GLMM's fit, where a normal QQ plot of 0/1 or count residuals says nothing:

- binned residuals (performance::binned_residuals): the mean residual in bins of the fitted
  probability, against ±1.96 SE bounds;
- zero inflation (performance::check_zeroinflation): observed zeros against the zeros a Poisson
  model predicts;
- simulation-based scaled residuals (DHARMa::simulateResiduals): where each observed value falls
  among values simulated from the fitted model, uniform on (0, 1) when the model is right, with
  DHARMa's uniformity (Kolmogorov-Smirnov) and dispersion tests.

Each returns a small frozen dataclass with what a sentence about it needs (statistic, p, verdict).
"""
import dataclasses
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.stats

from ..engine.glmm import GeneralizedLinearMixedModel
from ..engine.simulate import family_draws, simulate
from ..errors import ModelError, did_you_mean
from ..inference.intervals import Z95

ALPHA = 0.05                 # the level at which a test's verdict is "significant"
BINNED_OK = 0.95             # performance: share of bins inside their bounds that counts as a good fit
BINNED_POOR = 0.8            # ... and below which the fit is probably bad
BINNED_COLUMNS = ["xbar", "ybar", "n", "x.lo", "x.hi", "se", "CI_low", "CI_high", "group"]


# ---- binned residuals --------------------------------------------------------------------------

@dataclass(frozen=True)
class BinnedResiduals:
    """performance::binned_residuals: one row per bin (R's columns: mean fitted value or term xbar,
    mean residual ybar, n, the bin's range x.lo/x.hi, se = 1.96 SD/√n, the bounds CI_low/CI_high
    around ybar, and group "yes" where |ybar| ≤ se), the share of bins inside (R's resid_ok) and
    performance's verdict: "ok" (≥ 95 % inside), "warning" (80-95 %) or "poor" (< 80 %)."""
    table: pd.DataFrame
    share_inside: float
    term: str = None

    @property
    def verdict(self):
        if self.share_inside >= BINNED_OK:
            return "ok"
        return "warning" if self.share_inside >= BINNED_POOR else "poor"

    def to_dict(self):
        """Plain numbers for a JSON record: the table by column, the share inside and the verdict."""
        return {"term": self.term, "share_inside": self.share_inside, "verdict": self.verdict,
                "table": {column: self.table[column].tolist() for column in BINNED_COLUMNS}}


def binned_residuals(model, term=None, n_bins=None):
    """Binned residuals of a binomial GLMM as performance 0.10.2 computes them: response residuals
    (observed proportion - fitted probability, random effects included) in n_bins bins (default
    round(√n)) of equal counts of the fitted probabilities, or of a numeric predictor `term` (a
    column of the fixed effects, e.g. "age"). Bins with fewer than two rows are left out, as R does."""
    _check_family(model, "binomial", "binned residuals")
    fitted = model.fitted
    x = fitted if term is None else _term_values(model, term)
    residual = model.response.y - fitted
    table = binned_table(x, residual, n_bins)
    share = float((table["group"] == "yes").mean()) if len(table) else float("nan")
    return BinnedResiduals(table, share, term)


def binned_table(x, residual, n_bins=None):
    """performance's table of binned residuals for values x (fitted probabilities or a predictor)
    and their residuals."""
    x, residual = np.asarray(x, dtype=float), np.asarray(residual, dtype=float)
    n_bins = int(np.rint(np.sqrt(len(x)))) if n_bins is None else _check_bins(n_bins)
    rows = [_bin_row(x[members], residual[members]) for members in _bins(x, n_bins)]
    return pd.DataFrame([row for row in rows if row is not None], columns=BINNED_COLUMNS)


def _bins(x, n_bins):
    """The row positions in each bin: R's cut(x, unique(c(-Inf, sort(x)[floor(n k / n_bins)], Inf)))."""
    n = len(x)
    index = np.floor(n * np.arange(1, n_bins) / n_bins).astype(int)
    cuts = np.unique(np.concatenate([[-np.inf], np.sort(x)[index[index > 0] - 1], [np.inf]]))
    codes = np.searchsorted(cuts, x, side="left")      # bins are (a, b], as R's cut
    return [np.flatnonzero(codes == k) for k in range(1, n_bins + 1)]


def _bin_row(x, residual):
    """One bin's row, None for bins R's complete.cases() drops (empty, or one row: no SD)."""
    if len(x) < 2:
        return None
    mean = residual.mean()
    se = Z95 * residual.std(ddof=1) / np.sqrt(len(x))
    return [x.mean(), mean, len(x), x.min(), x.max(), se, mean - se, mean + se, "no" if abs(mean) > se else "yes"]


def _term_values(model, term):
    names = list(model.design.fixed_names)
    if term not in names:
        raise ModelError(f"binned residuals term '{term}' is not a numeric fixed effect of '{model.formula}'"
                         f"{did_you_mean(term, names)}; use one of {', '.join(names[1:] or names)}")
    return model.design.X[:, names.index(term)]


def _check_bins(n_bins):
    if isinstance(n_bins, bool) or not isinstance(n_bins, (int, np.integer)) or n_bins < 2:
        raise ModelError(f"n_bins = {n_bins!r} is not a number of bins; use a whole number of 2 or more")
    return int(n_bins)


# ---- zero inflation ----------------------------------------------------------------------------

@dataclass(frozen=True)
class ZeroInflation:
    """performance::check_zeroinflation: observed zeros, predicted zeros (Σ P(y = 0 | μ̂), rounded),
    their ratio predicted/observed, and the verdict at the tolerance: "underfitting" zeros (ratio
    below 1 - tolerance: probable zero inflation), "overfitting" (above 1 + tolerance), "ok", or
    "no zeros" when the outcome has none (performance then returns NULL)."""
    observed_zeros: int
    predicted_zeros: int
    ratio: float
    tolerance: float

    @property
    def verdict(self):
        if self.observed_zeros == 0:
            return "no zeros"
        if self.ratio < 1 - self.tolerance:
            return "underfitting"
        return "overfitting" if self.ratio > 1 + self.tolerance else "ok"

    def to_dict(self):
        return {**dataclasses.asdict(self), "verdict": self.verdict}


def check_zeroinflation(model, tolerance=0.05):
    """Observed against predicted zeros of a Poisson GLMM (μ̂ with the random effects, as fitted())."""
    _check_family(model, "poisson", "the zero-inflation check")
    if not 0 < tolerance < 1:
        raise ModelError(f"tolerance {tolerance} must be between 0 and 1, e.g. 0.05")
    observed = int(np.sum(model.response.y == 0))
    predicted = int(np.rint(np.sum(np.exp(-model.fitted))))
    ratio = predicted / observed if observed else float("nan")
    return ZeroInflation(observed, predicted, ratio, float(tolerance))


# ---- simulation-based scaled residuals ---------------------------------------------------------

@dataclass(frozen=True)
class ScaledResiduals:
    """DHARMa's simulateResiduals: for each row the share of simulated values below the observed
    one (lower) and at most equal to it (upper); the scaled residual is uniform between the two
    (the randomized PIT, DHARMa's default method), so it is uniform on (0, 1) under the model also
    for counts. observed and simulated are counts (successes for a binomial); fitted is DHARMa's
    fittedPredictedResponse, the prediction without random effects (re.form = ~0)."""
    residuals: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    observed: np.ndarray
    simulated: np.ndarray        # (n, nsim)
    fitted: np.ndarray
    conditional: bool            # simulated at the conditional modes (True) or with new random effects
    seed: int = None


@dataclass(frozen=True)
class SimulationTest:
    """A test of scaled residuals: DHARMa's statistic (KS D; the dispersion ratio observed /
    simulated), its p-value (two-sided) and the verdict: "ok" (p ≥ 0.05), "not uniform", or
    "overdispersed" / "underdispersed"."""
    test: str                    # "uniformity" or "dispersion"
    statistic: float
    p_value: float
    method: str

    @property
    def significant(self):
        return self.p_value < ALPHA

    @property
    def verdict(self):
        if not self.significant:
            return "ok"
        if self.test == "uniformity":
            return "not uniform"
        return "overdispersed" if self.statistic > 1 else "underdispersed"

    def to_dict(self):
        return {**dataclasses.asdict(self), "significant": self.significant, "verdict": self.verdict}


def simulate_residuals(model, nsim=250, seed=123, conditional=None):
    """Scaled residuals from nsim responses simulated from the fitted GLMM, as DHARMa 0.5's
    simulateResiduals(m, n = 250): conditional on the random effects' modes (DHARMa's default
    simulateREs = "conditional", lme4's re.form = NULL), whose dispersion test detects extra-binomial
    or extra-Poisson variation that new random effects would hide; conditional=False draws new
    random effects for every simulation (re.form = NA, DHARMa before 0.5). By default (None) a model
    with an observation-level term (one level per row) is simulated unconditionally: its modes
    reproduce every observation, so conditional residuals would bunch at 0.5 even for a right
    model. The same seed gives the same residuals."""
    _check_glmm(model, "scaled residuals")
    if isinstance(nsim, bool) or not isinstance(nsim, (int, np.integer)) or nsim < 2:
        raise ModelError(f"nsim = {nsim!r} is too few simulations for scaled residuals; use 2 or more (DHARMa: 250)")
    if conditional is None:
        conditional = not has_observation_level_term(model)
    rng = np.random.default_rng(seed)
    if conditional:
        eta = model.linear_predictor
        simulated = np.column_stack([family_draws(model.response, eta, rng) for _ in range(int(nsim))])
    else:
        simulated = simulate(model, int(nsim), rng=rng)
    return scaled_residuals(model, simulated, rng, bool(conditional), seed)


def has_observation_level_term(model):
    """Whether a random-effects term has one level per row (an observation-level random effect,
    which models overdispersion)."""
    return any(term.nlevels == model.nobs for term in model.design.terms)


def scaled_residuals(model, simulated, rng=None, conditional=None, seed=None):
    """Scaled residuals of a GLMM from a given (n, nsim) matrix of simulated counts (successes for
    a binomial), as DHARMa's createDHARMa; rng (a numpy Generator, or a seed) draws the PIT's
    uniform numbers."""
    _check_glmm(model, "scaled residuals")
    simulated = np.asarray(simulated, dtype=float)
    observed = _observed_counts(model)
    if simulated.ndim != 2 or simulated.shape[0] != len(observed):
        raise ModelError(f"simulated responses have shape {simulated.shape}; the model has {len(observed)} rows, "
                         "so give an (n rows, nsim) matrix")
    rng = np.random.default_rng(rng)
    lower = (simulated < observed[:, None]).mean(axis=1)
    upper = (simulated <= observed[:, None]).mean(axis=1)
    residuals = rng.uniform(lower, upper)           # = lower where lower == upper (continuous positions)
    return ScaledResiduals(residuals, lower, upper, observed, simulated, model.predict(random=False),
                           conditional, seed)


def uniformity_test(scaled):
    """DHARMa's testUniformity: R's one-sample ks.test of the scaled residuals against U(0, 1)
    (exact p below 100 residuals without ties, else the asymptotic Kolmogorov distribution)."""
    x = scaled.residuals
    exact = len(x) < 100 and len(np.unique(x)) == len(x)
    result = scipy.stats.kstest(x, "uniform", method="exact" if exact else "asymp")
    method = f"{'Exact' if exact else 'Asymptotic'} one-sample Kolmogorov-Smirnov test"
    return SimulationTest("uniformity", float(result.statistic), float(result.pvalue), method)


def dispersion_test(scaled):
    """DHARMa's default testDispersion (type = "DHARMa", no refit): the variance of observed -
    fitted against the same variance of each simulation; statistic = observed / mean simulated,
    p = two-sided share of simulations at least as extreme (DHARMa's getP). DHARMa divides both
    variances by the variance of all simulated values, which cancels in the ratio and the p-value."""
    def spread(values):
        return (values - scaled.fitted[:, None]).var(axis=0, ddof=1)
    observed = float(spread(scaled.observed[:, None])[0])
    simulated = spread(scaled.simulated)
    p = min(2 * min(np.mean(simulated <= observed), np.mean(simulated >= observed)), 1.0)
    return SimulationTest("dispersion", float(observed / simulated.mean()), float(p),
                          "DHARMa nonparametric dispersion test via sd of residuals fitted vs. simulated")


def _observed_counts(model):
    """The observed response as DHARMa reads it: successes for a binomial (proportion × trials),
    counts for a Poisson."""
    response = model.response
    return response.successes.astype(float) if response.family.name == "binomial" else response.y.astype(float)


def _check_glmm(model, what):
    if not isinstance(model, GeneralizedLinearMixedModel):
        raise ModelError(f"{what}: the model is a {type(model).__name__}, not a GLMM; fit it with hlm.glmer "
                         "(a linear mixed model's residuals are checked by the normal diagnostic plots)")


def _check_family(model, family, what):
    _check_glmm(model, what)
    if model.family != family:
        raise ModelError(f"{what}: the model's family is {model.family}; this check is for {family} GLMMs")
