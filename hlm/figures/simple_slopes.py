"""The predicted lines of a probed interaction at the moderator's three values, with their
95% confidence bands.
"""
from .style import _labels, _paths, _render

AT_LABELS = {"minus_sd": "minus_sd", "mean": "at_mean", "plus_sd": "plus_sd"}


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
