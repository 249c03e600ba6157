"""Diagnostic figures of a GLMM (hlm.analysis.glmm_checks), where a normal QQ plot of 0/1 or count
residuals says nothing:

- binned residuals as performance's plot(binned_residuals(m)): the mean residual of each bin
  against its mean fitted probability, inside (blue) or outside (red) the ±1.96 SE bounds;
- DHARMa's plot(simulateResiduals(m)): a uniform QQ plot of the scaled residuals with the
  KS and dispersion tests in its subtitle, and the residuals against the rank-transformed
  predictions with the quartiles 0.25, 0.5, 0.75 (expected) and those of bins of the predictions.
"""
import numpy as np
from scipy.stats import rankdata

from .diagnostics import ppoints
from .style import LINE_COLOR, POINT_COLOR, _labels, _paths, _render, _scatter

OUTSIDE_COLOR = LINE_COLOR
BOUND_COLOR = "0.45"
QUARTILES = (0.25, 0.5, 0.75)
RANK_BINS = 10          # bins of the ranked predictions whose residual quartiles are drawn


def plot_binned_residuals(binned, output, language="en"):
    """binned (glmm_checks.BinnedResiduals) as performance draws it, to output (.svg/.png or both)."""
    L = _labels(language)
    table = binned.table

    def draw(plt):
        fig, ax = plt.subplots(figsize=(6.4, 4.4))
        x = table["xbar"].to_numpy(float)
        inside = (table["group"] == "yes").to_numpy()
        ax.axhline(0, color=BOUND_COLOR, linewidth=0.8, linestyle="--")
        ax.plot(x, table["se"], color=BOUND_COLOR, linewidth=1.0, label=L["binned_bounds"])
        ax.plot(x, -table["se"], color=BOUND_COLOR, linewidth=1.0)
        for mask, color, label in ((inside, POINT_COLOR, L["binned_inside"]),
                                   (~inside, OUTSIDE_COLOR, L["binned_outside"])):
            if mask.any():
                ybar = table["ybar"].to_numpy(float)[mask]
                ax.errorbar(x[mask], ybar, yerr=table["se"].to_numpy(float)[mask], fmt="o", markersize=4,
                            color=color, ecolor=color, elinewidth=0.8, capsize=0, label=label)
        xlabel = L["binned_fitted"] if binned.term is None else binned.term
        ax.set(xlabel=xlabel, ylabel=L["binned_average"])
        ax.set_title(L["binned_title"], loc="left", pad=16)
        share = L["binned_share"].format(percent=f"{100 * binned.share_inside:.0f}", bins=len(table))
        ax.text(0.0, 1.01, share, fontsize=8, ha="left", va="bottom", transform=ax.transAxes)
        ax.legend(frameon=False, fontsize=8, loc="best")
        fig.tight_layout()
        return fig

    _render(language, draw, _paths(output))


def plot_scaled_residuals(scaled, uniformity, dispersion, output, language="en"):
    """DHARMa's two panels of scaled (glmm_checks.ScaledResiduals), with the uniformity and
    dispersion tests (glmm_checks.SimulationTest) in the QQ plot's subtitle."""
    L = _labels(language)

    def draw(plt):
        fig, (qq, rank) = plt.subplots(1, 2, figsize=(10, 4.4))
        _panel_uniform_qq(qq, scaled.residuals, uniformity, dispersion, L)
        _panel_rank(rank, scaled.fitted, scaled.residuals, L)
        fig.suptitle(L["scaled_title"].format(nsim=scaled.simulated.shape[1]), x=0.01, ha="left",
                     fontsize=10, fontweight="bold")
        fig.tight_layout()
        return fig

    _render(language, draw, _paths(output))


def _panel_uniform_qq(ax, residuals, uniformity, dispersion, L):
    observed = np.sort(residuals)
    expected = ppoints(len(observed))
    _scatter(ax, expected, observed)
    ax.plot([0, 1], [0, 1], color=LINE_COLOR, linewidth=1.1)
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel=L["scaled_expected"], ylabel=L["scaled_observed"])
    ax.set_title(L["scaled_qq"], loc="left")
    lines = [L["scaled_ks"].format(D=f"{uniformity.statistic:.3f}", p=p_text(uniformity.p_value)),
             L["scaled_dispersion"].format(ratio=f"{dispersion.statistic:.3f}", p=p_text(dispersion.p_value))]
    for k, (line, test) in enumerate(zip(lines, (uniformity, dispersion))):
        ax.text(0.03, 0.97 - 0.07 * k, line, transform=ax.transAxes, fontsize=8, va="top",
                color=OUTSIDE_COLOR if test.significant else "0.15")


def _panel_rank(ax, fitted, residuals, L):
    ranked = rank_transform(fitted)
    _scatter(ax, ranked, residuals)
    for q in QUARTILES:
        ax.axhline(q, color=BOUND_COLOR, linewidth=0.8, linestyle="--")
    centres, quartiles = binned_quartiles(ranked, residuals)
    for column in quartiles.T:
        ax.plot(centres, column, color=LINE_COLOR, linewidth=1.2)
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel=L["scaled_rank"], ylabel=L["scaled_observed"])
    ax.set_title(L["scaled_vs_predicted"], loc="left")


def p_text(p):
    """A test's p in the subtitle: three decimals, "< 0.001" below (a simulated p can be 0)."""
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def rank_transform(values):
    """DHARMa's rankTransform: rank(x, ties.method = "average") / max(rank), onto (0, 1]."""
    ranks = rankdata(np.asarray(values, dtype=float))
    return ranks / ranks.max() if len(ranks) else ranks


def binned_quartiles(x, y, bins=RANK_BINS):
    """The centres of equal-width bins of x on [0, 1] and the 0.25, 0.5, 0.75 quantiles of y in each
    (empty bins left out)."""
    edges = np.linspace(0, 1, bins + 1)
    codes = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, bins - 1)
    kept = [k for k in range(bins) if np.any(codes == k)]
    centres = (edges[:-1] + edges[1:])[kept] / 2
    quartiles = np.array([np.quantile(y[codes == k], QUARTILES) for k in kept]).reshape(-1, len(QUARTILES))
    return centres, quartiles
