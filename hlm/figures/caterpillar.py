"""Every group's random effects, sorted, with 95% intervals (lme4's
dotplot(ranef(m, condVar = TRUE))).
"""
import numpy as np

from ..inference.intervals import Z95
from .diagnostics import random_effect_terms
from .style import LINE_COLOR, POINT_COLOR, _labels, _paths, _render


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
