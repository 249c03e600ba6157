"""The power curve of a power analysis (simr's plot of powerCurve): the estimated power at each
size with its Clopper–Pearson 95% interval, the alpha line and the conventional 0.80 target.
"""
from ..analysis.power import TARGET_POWER
from ..labels import labels
from .style import LINE_COLOR, POINT_COLOR, _paths, _render


def plot_power_curve(result, output, language="en"):
    """Power against the number of units of `along`, from a gathered power result."""
    L = labels(language)["power"]
    rows = [row for row in result["curve"] if row["power"] is not None]

    def draw(plt):
        fig, ax = plt.subplots(figsize=(6.0, 4.0))
        sizes = [row["size"] for row in rows]
        power = [row["power"] for row in rows]
        below = [row["power"] - row["ci_low"] for row in rows]
        above = [row["ci_high"] - row["power"] for row in rows]
        ax.axhline(TARGET_POWER, color="#7f7f7f", linestyle="--", linewidth=1, label=L["target_line"])
        ax.axhline(result["alpha"], color=LINE_COLOR, linestyle=":", linewidth=1,
                   label=L["alpha_line"].format(alpha=f"{result['alpha']:g}"))
        ax.errorbar(sizes, power, yerr=[below, above], color=POINT_COLOR, marker="o", markersize=4,
                    linewidth=1.4, capsize=3, label=L["estimate_line"])
        ax.set(xlabel=L["x_label"].format(along=result["along"]), ylabel=L["y_label"], ylim=(0, 1.02),
               title=L["title"].format(term=result["term"]))
        ax.set_xticks(sizes)
        ax.legend(frameon=False, fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=3)
        fig.tight_layout()
        return fig

    _render(language, draw, _paths(output))
