"""Diagnostic figures of a fitted model, as sjPlot's plot_model(type = "diag") draws them.

- `plot_diagnostics`: A QQ plot of the level-1 residuals, B their density against the normal
  curve, C residuals against fitted values with a lowess smooth, D a QQ plot of each random
  effect with 95% intervals (±1.96 conditional SD, lme4's condVar).
- `plot_caterpillar`: every group's random effects, sorted, with 95% intervals (lme4's
  dotplot(ranef(m, condVar = TRUE))).
- `simple_slopes` / `plot_simple_slopes`: for an interaction, the slope of the predictor at the
  moderator's mean − 1 SD, mean and mean + 1 SD (reghelper::simple_slopes), each tested with the
  model's df method, and the predicted lines with 95% confidence bands.

Figures use matplotlib's Agg backend and are deterministic: SVG with a fixed hash salt and no
date, PNG without metadata, so the same results give byte-identical files. Chinese labels
need a CJK font: the Noto Sans CJK collection that the `noto-cjk-sans-otc` package ships is
registered with matplotlib at run time; a system CJK font (fonts-noto-cjk, WenQuanYi, Droid
Sans Fallback, ...) is used when that package is missing.
"""
import logging
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

INTERCEPT = "(Intercept)"
Z95 = 1.959963984540054
SYSTEM_CJK_FAMILIES = ("Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC", "Source Han Sans CN",
                       "WenQuanYi Zen Hei", "WenQuanYi Micro Hei", "Droid Sans Fallback",
                       "AR PL UMing CN", "Microsoft YaHei", "SimHei", "PingFang SC",
                       "Hiragino Sans GB", "Noto Sans CJK JP")
POINT_COLOR = "#3b6ea5"
LINE_COLOR = "#c0392b"
RASTERIZE_ABOVE = 2000   # scatter layers with more points are embedded as images in SVGs
AT_LABELS = {"minus_sd": "minus_sd", "mean": "at_mean", "plus_sd": "plus_sd"}


# ---- fonts and the deterministic writer -------------------------------------------------------

_FONT = {}


def cjk_font():
    """The family name of a font with Chinese glyphs, registered with matplotlib, or None."""
    if "family" in _FONT:
        return _FONT["family"]
    from matplotlib import font_manager
    family = None
    try:
        import noto_cjk_sans_otc
        font_manager.fontManager.addfont(str(noto_cjk_sans_otc.FONT_PATH))
        names = {f.name for f in font_manager.fontManager.ttflist}
        family = "Noto Sans CJK SC" if "Noto Sans CJK SC" in names else None
    except (ImportError, OSError, RuntimeError) as exc:
        log.info("the bundled CJK font is not available (%s); looking for a system font", exc)
    if family is None:
        names = {f.name for f in font_manager.fontManager.ttflist}
        family = next((name for name in SYSTEM_CJK_FAMILIES if name in names), None)
    if family is None:
        log.warning("no font with Chinese glyphs found: install hlm's dependencies "
                    "(pip install -e .) or a CJK font (apt-get install fonts-noto-cjk)")
    _FONT["family"] = family
    return family


def _style(language):
    """matplotlib rcParams of every figure: fonts with a CJK fallback, deterministic SVG."""
    family = cjk_font()
    fonts = ["DejaVu Sans"] + ([family] if family else [])
    if language == "zh" and family:
        fonts = [family, "DejaVu Sans"]
    return {"font.family": "sans-serif", "font.sans-serif": fonts, "axes.unicode_minus": False,
            "svg.hashsalt": "hlm", "svg.fonttype": "path", "font.size": 9,
            "axes.titlesize": 10, "axes.titleweight": "bold", "axes.spines.top": False,
            "axes.spines.right": False, "figure.dpi": 100}


def save_figure(fig, path):
    """Write a figure as SVG or PNG (by the path's suffix), atomically and deterministically."""
    from .results import _atomic
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".svg":
        kwargs = {"format": "svg", "metadata": {"Date": None, "Creator": None}}
    elif suffix == ".png":
        kwargs = {"format": "png", "dpi": 150, "metadata": {"Software": None}}
    else:
        raise ValueError(f"figure '{path}' must end in .svg or .png")
    _atomic(path, lambda tmp: fig.savefig(tmp, bbox_inches="tight", **kwargs))


def _render(language, draw, paths):
    """Draw a figure under the report's style and write it to every path."""
    import matplotlib
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    with matplotlib.rc_context(_style(language)):
        fig = draw(plt)
        try:
            for path in paths:
                save_figure(fig, path)
        finally:
            plt.close(fig)


def _labels(language):
    from .labels import labels
    return labels(language)["diagnostics"]


def _paths(output):
    return [output] if isinstance(output, (str, Path)) else list(output)


# ---- the data of the panels -------------------------------------------------------------------

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


# ---- A-D ------------------------------------------------------------------------------------------

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


def _scatter(ax, x, y, **kwargs):
    ax.scatter(x, y, s=4, alpha=0.45, color=POINT_COLOR, linewidths=0,
               rasterized=len(x) > RASTERIZE_ABOVE, **kwargs)


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


# ---- caterpillar ------------------------------------------------------------------------------------

def plot_caterpillar(ranef, output, language="en"):
    """Each group's random effects, sorted, with 95% intervals; one panel per term."""
    L = _labels(language)
    terms = random_effect_terms(ranef)

    def draw(plt):
        n = max((len(t[3]) for t in terms), default=1)
        height = min(max(3.0, 0.06 * n + 1.5), 9.0)
        fig, axes = plt.subplots(1, max(len(terms), 1), figsize=(4.2 * max(len(terms), 1), height),
                                 squeeze=False)
        for ax, (group, term, levels, values, sd) in zip(axes[0], terms):
            order = np.argsort(values, kind="stable")
            y = np.arange(len(values))
            if sd is not None:
                ax.errorbar(values[order], y, xerr=Z95 * sd[order], fmt="none", ecolor="0.55",
                            linewidth=0.8)
            ax.scatter(values[order], y, s=9, color=POINT_COLOR, zorder=3, linewidths=0)
            ax.axvline(0, color=LINE_COLOR, linewidth=0.9, linestyle="--")
            ax.set_title(f"{group}: {term}", fontsize=10)
            ax.set_xlabel(L["random_effect"])
            if len(values) <= 40:
                ax.set_yticks(y, levels[order], fontsize=7)
            else:
                ax.set_yticks([])
            ax.set_ylabel(L["groups_sorted"].format(group=group))
        if not terms:
            axes[0][0].set_axis_off()
        fig.suptitle(L["caterpillar_title"], fontsize=11, fontweight="bold")
        fig.tight_layout()
        return fig

    _render(language, draw, _paths(output))


# ---- simple slopes ------------------------------------------------------------------------------------

def interaction_terms(formula):
    """The two-way interactions of plain variables in a formula's fixed part whose two main
    effects are in it too, as (a, b): simple slopes need both (`y ~ a + a:b` has none)."""
    from .formula import Name, parse_formula
    fixed = parse_formula(formula).fixed.terms
    mains = {term[0].label for term in fixed if len(term) == 1}
    return [(term[0].label, term[1].label) for term in fixed
            if len(term) == 2 and all(isinstance(v.node, Name) and v.label in mains for v in term)]


def has_simple_slopes(formula):
    """Whether the diagnostics of a model with this formula include simple slopes."""
    return bool(interaction_terms(formula))


def choose_interaction(formula, coefficients, frame, group):
    """(predictor, moderator) of the interaction to probe, or None.

    A cross-level interaction comes first, its level-1 variable the predictor and the level-2
    one the moderator (the seed's ses × disclim); otherwise the first two-way interaction of
    numeric columns, the first variable the predictor. The interaction and both main effects
    must be coefficients of the model (not dropped as rank deficient).
    """
    from .data import level_of
    candidates = []
    for a, b in interaction_terms(formula):
        if not {a, b, f"{a}:{b}"} <= set(coefficients) or a not in frame or b not in frame:
            continue
        if not all(frame[c].dtype.kind in "fiu" for c in (a, b)):
            continue
        levels = (level_of(frame, a, group), level_of(frame, b, group)) if group in frame else (1, 1)
        if levels == (1, 2):
            candidates.append((0, a, b))
        elif levels == (2, 1):
            candidates.append((0, b, a))
        else:
            candidates.append((1, a, b))
    if not candidates:
        return None
    _, predictor, moderator = min(candidates, key=lambda c: c[0])
    return predictor, moderator


def _coefficient_means(coefficients, frame):
    """The mean of each coefficient's column in the analysed rows (products of plain columns);
    0 where a column cannot be formed (factor levels are held at the baseline)."""
    means = {}
    for name in coefficients:
        if name == INTERCEPT:
            means[name] = 1.0
            continue
        parts = name.split(":")
        if all(p in frame and frame[p].dtype.kind in "fiu" for p in parts):
            means[name] = float(np.prod([frame[p].to_numpy(float) for p in parts], axis=0).mean())
        else:
            means[name] = 0.0
    return means


def simple_slopes(model, predictor, moderator, frame, ddf="Satterthwaite"):
    """The slope of `predictor` at the moderator's mean − SD, mean and mean + SD, each with
    the t test of L'β (lmerTest's contest1D), and the lines' predicted values.

    `frame` is the data the model was fitted to; the moderator's mean and SD (and the
    predictor's range) are those of the rows the model used, as reghelper and ggeffects take
    them from the model frame. With ddf 'lme4' the tests are Wald z tests.
    """
    from scipy.stats import norm, t as t_dist
    frame = frame.iloc[model.design.rows]
    names = list(model.fixef.index)
    interaction = next(n for n in (f"{predictor}:{moderator}", f"{moderator}:{predictor}") if n in names)
    values = frame[moderator].to_numpy(float)
    mean, sd = float(values.mean()), float(values.std(ddof=1))
    at = {"minus_sd": mean - sd, "mean": mean, "plus_sd": mean + sd}
    rows = []
    for key, value in at.items():
        L = np.zeros(len(names))
        L[names.index(predictor)] = 1.0
        L[names.index(interaction)] = value
        rows.append({"at": key, "moderator_value": value, **_contrast(model, L, ddf)})
    for row in rows:
        q = t_dist.ppf(0.975, row["df"]) if row["df"] is not None else norm.ppf(0.975)
        row["ci_low"] = row["Estimate"] - q * row["Std. Error"]
        row["ci_high"] = row["Estimate"] + q * row["Std. Error"]
    return {"predictor": predictor, "moderator": moderator, "interaction": interaction,
            "moderator_mean": mean, "moderator_sd": sd, "ddf": ddf, "slopes": rows,
            "lines": _lines(model, predictor, moderator, interaction, frame, at)}


def _contrast(model, L, ddf):
    from scipy.stats import norm
    if ddf in (None, "lme4"):
        estimate = float(L @ model.fixef.to_numpy())
        se = float(np.sqrt(L @ model.vcov.to_numpy() @ L))
        z = estimate / se
        return {"Estimate": estimate, "Std. Error": se, "df": None, "t value": z,
                "Pr(>|t|)": float(2 * norm.sf(abs(z)))}
    from .inference import contrast_test
    result = contrast_test(model, L, ddf=ddf)
    return {key: float(value) for key, value in result.items()}


def _lines(model, predictor, moderator, interaction, frame, at, points=50):
    """Predicted outcome over the predictor's range (mean ± 2 SD within the observed range) at
    each moderator value; other predictors at their means; 95% confidence bands."""
    names = list(model.fixef.index)
    beta = model.fixef.to_numpy()
    vcov = model.vcov.to_numpy()
    x = frame[predictor].to_numpy(float)
    low = max(x.min(), x.mean() - 2 * x.std(ddof=1))
    high = min(x.max(), x.mean() + 2 * x.std(ddof=1))
    grid = np.linspace(low, high, points)
    means = _coefficient_means(names, frame)
    lines = {}
    for key, value in at.items():
        rows = np.tile([means[n] for n in names], (points, 1))
        rows[:, names.index(predictor)] = grid
        rows[:, names.index(moderator)] = value
        rows[:, names.index(interaction)] = grid * value
        fit = rows @ beta
        se = np.sqrt(np.einsum("ij,jk,ik->i", rows, vcov, rows))
        lines[key] = {"x": grid.tolist(), "fit": fit.tolist(),
                      "low": (fit - Z95 * se).tolist(), "high": (fit + Z95 * se).tolist()}
    return lines


def plot_simple_slopes(result, outcome, output, language="en"):
    """The three predicted lines of `simple_slopes` with their confidence bands."""
    L = _labels(language)
    colors = {"minus_sd": "#2c7bb6", "mean": "#4d4d4d", "plus_sd": "#d7191c"}
    styles = {"minus_sd": "--", "mean": "-", "plus_sd": ":"}

    def draw(plt):
        fig, ax = plt.subplots(figsize=(6.4, 4.6))
        for key, line in result["lines"].items():
            slope = next(r for r in result["slopes"] if r["at"] == key)
            label = (f"{result['moderator']} = {L[AT_LABELS[key]]} ({slope['moderator_value']:.2f}): "
                     f"b = {slope['Estimate']:.2f}")
            ax.fill_between(line["x"], line["low"], line["high"], color=colors[key], alpha=0.12,
                            linewidth=0)
            ax.plot(line["x"], line["fit"], color=colors[key], linestyle=styles[key], linewidth=1.6,
                    label=label)
        ax.set(xlabel=result["predictor"], ylabel=L["predicted"].format(outcome=outcome),
               title=L["simple_slopes_title"].format(predictor=result["predictor"]))
        ax.legend(frameon=False, fontsize=8, loc="best")
        fig.tight_layout()
        return fig

    _render(language, draw, _paths(output))


# ---- one model's figures, as the workflow writes them --------------------------------------------

def outcome_of(formula):
    from .formula import parse_formula
    return parse_formula(formula).response.label


def write_diagnostic_figures(residuals, ranef, outputs, language="en"):
    """Panels A-D and the caterpillar plot of one model, as SVG and PNG. outputs: name -> path
    for diagnostics_svg, diagnostics_png, caterpillar_svg, caterpillar_png."""
    plot_diagnostics(residuals, ranef, [outputs["diagnostics_svg"], outputs["diagnostics_png"]], language)
    plot_caterpillar(ranef, [outputs["caterpillar_svg"], outputs["caterpillar_png"]], language)


def write_simple_slopes(model, table, spec, group, outputs, language="en"):
    """Simple slopes of a model's interaction: the model is refitted to the analysed table (its
    spec) so that each slope is tested with the model's df method; the rows it used decide the
    moderator's levels. outputs: name -> path for simple_slopes_svg, simple_slopes_png,
    simple_slopes_json. A model whose interactions are not of two numeric columns gets
    {"available": false} and an empty figure."""
    from .pipeline import fit_spec
    from .results import write_json
    figures = [outputs["simple_slopes_svg"], outputs["simple_slopes_png"]]
    fitted = fit_spec(spec, table)
    used = table.iloc[fitted.design.rows]
    choice = choose_interaction(model["formula"], list(fitted.fixef.index), used, group)
    if choice is None:
        log.info("no interaction of two numeric predictors to probe in %s", model["name"])
        _render(language, lambda plt: plt.figure(figsize=(2, 0.5)), figures)
        write_json(outputs["simple_slopes_json"], {"available": False})
        return
    result = simple_slopes(fitted, *choice, table, ddf=spec.get("ddf", "Satterthwaite"))
    plot_simple_slopes(result, outcome_of(model["formula"]), figures, language)
    write_json(outputs["simple_slopes_json"], {"available": True, **result})


DIAGNOSTIC_FIGURES = ("diagnostics_svg", "diagnostics_png", "caterpillar_svg", "caterpillar_png")
SIMPLE_SLOPES_FILES = ("simple_slopes_svg", "simple_slopes_png", "simple_slopes_json")


def figure_names(formula):
    """The names of the files the workflow writes for a diagnostics model with this formula."""
    return list(DIAGNOSTIC_FIGURES) + (list(SIMPLE_SLOPES_FILES) if has_simple_slopes(formula) else [])
