"""Repeated measures (data.time): the observed trajectories of a sample of units and the fitted
mean curve, the first figure of a growth analysis (Singer & Willett's empirical growth plots).
"""
import numpy as np

from .style import _labels, _paths, _render

SAMPLE_UNITS = 20   # observed lines drawn: enough to see the spread, few enough to tell apart


def trajectories(model, frame, time, unit, sample=SAMPLE_UNITS):
    """The figure's numbers, from a fit on its table: at each occasion (value of `time`) the
    observed mean of the outcome and the fitted mean (the mean of the fixed-effects predictions
    Xβ̂ of its rows, R's tapply(predict(m, re.form = NA), time, mean)); and the observed lines of
    `sample` units of `unit` spread evenly over the sorted ids (the same units on every run)."""
    rows = frame.iloc[model.design.rows].reset_index(drop=True)
    times = rows[time].to_numpy(float)
    y, fixed = model.design.y, model.design.X @ model.fixef.to_numpy()
    occasions = np.unique(times)
    ids = np.sort(rows[unit].unique())
    chosen = ids[np.unique(np.linspace(0, len(ids) - 1, min(sample, len(ids))).round().astype(int))]
    lines = {}
    for unit_id in chosen:
        mine = (rows[unit] == unit_id).to_numpy()
        order = np.argsort(times[mine], kind="stable")
        lines[str(unit_id)] = {"x": times[mine][order].tolist(), "y": y[mine][order].tolist()}
    return {"time": time, "unit": unit, "outcome": model.design.response, "n_units": len(ids),
            "occasions": occasions.tolist(),
            "observed_mean": [float(y[times == t].mean()) for t in occasions],
            "fitted_mean": [float(fixed[times == t].mean()) for t in occasions],
            "lines": lines}


def plot_trajectories(result, output, language="en"):
    """Grey observed lines of the sampled units, the observed mean (points) and the fitted mean."""
    L = _labels(language)

    def draw(plt):
        fig, ax = plt.subplots(figsize=(6.4, 4.4))
        for line in result["lines"].values():
            ax.plot(line["x"], line["y"], color="#9e9e9e", linewidth=0.8, alpha=0.8)
        ax.plot(result["occasions"], result["observed_mean"], "o", color="#2c7bb6", markersize=4,
                label=L["trajectory_observed_mean"])
        ax.plot(result["occasions"], result["fitted_mean"], color="black", linewidth=2,
                label=L["trajectory_fitted_mean"])
        ax.set(xlabel=result["time"], ylabel=result["outcome"],
               title=L["trajectory_title"].format(outcome=result["outcome"], time=result["time"]))
        ax.legend(frameon=False, fontsize=8, loc="best")
        fig.tight_layout()
        return fig

    _render(language, draw, _paths(output))
