"""Residual diagnostics as sjPlot's plot_model(type = "diag") draws them: A a QQ plot of the
level-1 residuals, B their density against the normal curve, C residuals against fitted values
with a lowess smooth, D a QQ plot of each random effect with 95% intervals (±1.96 conditional SD,
lme4's condVar).
"""
import numpy as np

from ..inference.intervals import Z95
from .style import LINE_COLOR, POINT_COLOR, _labels, _paths, _render, _scatter


def ppoints(n):
    """R's ppoints(n): the probabilities at which qqnorm evaluates normal quantiles."""
    a = 3 / 8 if n <= 10 else 1 / 2
    return (np.arange(1, n + 1) - a) / (n + 1 - 2 * a)


def normal_quantiles(n):
    from scipy.stats import norm
    return norm.ppf(ppoints(n))


def lowess(x, y, frac=0.3):
    """A lowess smooth (statsmodels, no robustness iterations): sorted x and fitted y."""
    from statsmodels.nonparametric.smoothers_lowess import lowess as _lowess
    x, y = np.asarray(x, float), np.asarray(y, float)
    delta = 0.01 * (x.max() - x.min()) if len(x) else 0.0
    fit = _lowess(y, x, frac=frac, it=0, delta=delta, return_sorted=True)
    return fit[:, 0], fit[:, 1]


def random_effect_terms(ranef):
    """[(group, term, values sorted by level, conditional SDs or None)] from the ranef table."""
    out = []
    has_sd = "condsd" in ranef.columns
    for (group, term), part in ranef.groupby(["grp", "term"], sort=False):
        part = part.sort_values("level", kind="stable")
        sd = part["condsd"].to_numpy(float) if has_sd else None
        out.append((str(group), str(term), part["level"].astype(str).to_numpy(),
                    part["value"].to_numpy(float), sd))
    return out


def plot_diagnostics(residuals, ranef, output, language="en"):
    """Panels A-D of sjPlot's diagnostic plots for one model, written to output (.svg/.png,
    or a list of both); residuals and ranef are the parquet tables of the fit step."""
    L = _labels(language)
    terms = random_effect_terms(ranef)

    def draw(plt):
        fig = plt.figure(figsize=(10, 8))
        grid = fig.add_gridspec(2, 2, hspace=0.35, wspace=0.25)
        _panel_qq(fig.add_subplot(grid[0, 0]), residuals, L)
        _panel_density(fig.add_subplot(grid[0, 1]), residuals, L)
        _panel_fitted(fig.add_subplot(grid[1, 0]), residuals, L)
        _panel_random(fig, grid[1, 1], terms, L)
        return fig

    _render(language, draw, _paths(output))


def _panel_qq(ax, residuals, L):
    scaled = np.sort(residuals["scaled_residual"].to_numpy(float))
    theoretical = normal_quantiles(len(scaled))
    _scatter(ax, theoretical, scaled)
    low, high = theoretical.min(), theoretical.max()
    ax.plot([low, high], [low, high], color=LINE_COLOR, linewidth=1.2)
    ax.set(title=L["panel_a"], xlabel=L["theoretical"], ylabel=L["sample"])
    ax.title.set_ha("left"), ax.title.set_x(0)


def _panel_density(ax, residuals, L):
    from scipy.stats import gaussian_kde, norm
    values = residuals["residual"].to_numpy(float)
    sd = values.std(ddof=1)
    grid = np.linspace(values.min() - sd, values.max() + sd, 400)
    ax.fill_between(grid, gaussian_kde(values)(grid), color=POINT_COLOR, alpha=0.35,
                    linewidth=0, label=L["observed"])
    ax.plot(grid, norm.pdf(grid, loc=values.mean(), scale=sd), color=LINE_COLOR, linewidth=1.2,
            label=L["normal"])
    ax.set(title=L["panel_b"], xlabel=L["residuals"], ylabel=L["density"])
    ax.legend(frameon=False, loc="upper right")
    ax.title.set_ha("left"), ax.title.set_x(0)


def _panel_fitted(ax, residuals, L):
    fitted = residuals["fitted"].to_numpy(float)
    resid = residuals["residual"].to_numpy(float)
    _scatter(ax, fitted, resid)
    ax.axhline(0, color="0.4", linewidth=0.8, linestyle="--")
    xs, ys = lowess(fitted, resid)
    ax.plot(xs, ys, color=LINE_COLOR, linewidth=1.4)
    ax.set(title=L["panel_c"], xlabel=L["fitted"], ylabel=L["residuals"])
    ax.title.set_ha("left"), ax.title.set_x(0)


def _panel_random(fig, cell, terms, L):
    if not terms:
        ax = fig.add_subplot(cell)
        ax.set_axis_off()
        return
    inner = cell.subgridspec(1, len(terms), wspace=0.35)
    for k, (group, term, _, values, sd) in enumerate(terms):
        ax = fig.add_subplot(inner[0, k])
        order = np.argsort(values, kind="stable")
        theoretical = normal_quantiles(len(values))
        if sd is not None:
            ax.errorbar(theoretical, values[order], yerr=Z95 * sd[order], fmt="none",
                        ecolor=POINT_COLOR, alpha=0.35, linewidth=0.7)
        ax.scatter(theoretical, values[order], s=6, color=POINT_COLOR, zorder=3, linewidths=0)
        slope = np.std(values, ddof=1) if len(values) > 1 else 0.0
        ax.plot(theoretical[[0, -1]], slope * theoretical[[0, -1]] + np.mean(values),
                color=LINE_COLOR, linewidth=1.1)
        ax.set_title(f"{group}: {term}", fontsize=9, fontweight="normal")
        ax.set_xlabel(L["theoretical"])
        if k == 0:
            ax.set_ylabel(L["random_effect"])
    fig.text(cell.get_position(fig).x0, cell.get_position(fig).y1 + 0.035, L["panel_d"],
             fontsize=10, fontweight="bold", ha="left", va="bottom")
