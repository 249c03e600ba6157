"""The predicted lines of a probed interaction at the moderator's values (mean − 1 SD, mean,
mean + 1 SD; both values of a 0/1 column; each category of a factor), with their 95%
confidence bands.
"""
from .style import _labels, _paths, _render

AT_LABELS = {"minus_sd": "minus_sd", "mean": "at_mean", "plus_sd": "plus_sd"}


def plot_simple_slopes(result, outcome, output, language="en"):
    """The predicted lines of `simple_slopes` with their confidence bands."""
    L = _labels(language)
    palette = ["#2c7bb6", "#4d4d4d", "#d7191c", "#1a9641", "#7b3294", "#fdae61"]
    dashes = ["--", "-", ":", "-."]

    def draw(plt):
        fig, ax = plt.subplots(figsize=(6.4, 4.6))
        for k, (key, line) in enumerate(result["lines"].items()):
            slope = next(r for r in result["slopes"] if r["at"] == key)
            color, style = palette[k % len(palette)], dashes[k % len(dashes)]
            label = f"{result['moderator']} = {_point_label(key, slope, L)}: b = {slope['Estimate']:.2f}"
            ax.fill_between(line["x"], line["low"], line["high"], color=color, alpha=0.12, linewidth=0)
            ax.plot(line["x"], line["fit"], color=color, linestyle=style, linewidth=1.6, label=label)
        ax.set(xlabel=result["predictor"], ylabel=L["predicted"].format(outcome=outcome),
               title=L["simple_slopes_title"].format(predictor=result["predictor"]))
        ax.legend(frameon=False, fontsize=8, loc="best")
        fig.tight_layout()
        return fig

    _render(language, draw, _paths(output))


def _point_label(key, slope, L):
    """'Mean − 1 SD (2.31)' for the SD points, the category's label or the value otherwise."""
    if key in AT_LABELS:
        return f"{L[AT_LABELS[key]]} ({slope['moderator_value']:.2f})"
    return str(slope["label"])
