"""The Johnson–Neyman figure: the simple slope of the predictor over the moderator with its 95%
interval, the region where it is significant shaded, the boundaries marked and the observed
range of the moderator shown (reghelper / interactions::johnson_neyman draw the same).
"""
import numpy as np

from .style import _labels, _paths, _render


def plot_johnson_neyman(result, output, language="en"):
    """The curve of simple_slopes(...)["johnson_neyman"] for result's predictor and moderator."""
    L = _labels(language)
    jn = result["johnson_neyman"]
    curve = jn["curve"]

    def draw(plt):
        fig, ax = plt.subplots(figsize=(6.4, 4.4))
        x, p = np.asarray(curve["x"]), np.asarray(curve["p"])
        ax.fill_between(x, curve["low"], curve["high"], color="#4d4d4d", alpha=0.15, linewidth=0)
        ax.plot(x, curve["slope"], color="#4d4d4d", linewidth=1.6)
        significant = p < jn["alpha"]
        ax.fill_between(x, curve["low"], curve["high"], where=significant, color="#2c7bb6", alpha=0.25,
                        linewidth=0, label=L["jn_significant"])
        ax.axhline(0, color="black", linewidth=0.8)
        for bound in jn["bounds"]:
            if x.min() <= bound <= x.max():
                ax.axvline(bound, color="#d7191c", linestyle="--", linewidth=1)
        low, high = jn["observed"]
        ax.axvspan(low, high, color="#fdae61", alpha=0.12, linewidth=0, label=L["jn_observed"])
        ax.set(xlabel=result["moderator"], ylabel=L["jn_slope"].format(predictor=result["predictor"]),
               title=L["jn_title"].format(predictor=result["predictor"], moderator=result["moderator"]))
        ax.legend(frameon=False, fontsize=8, loc="best")
        fig.tight_layout()
        return fig

    _render(language, draw, _paths(output))
