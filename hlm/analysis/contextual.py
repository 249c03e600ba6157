"""Within, between and contextual effects of a predictor split into a level-1 part and its group
mean, under group-mean or grand-mean centering.
"""
import numpy as np
import pandas as pd

from ..errors import ModelError, did_you_mean
from ..inference.contrasts import contrast_test
from ..vocabulary import ddf_method
from .checks import _check_model


def contextual(model, within, between, centering=None, ddf="Satterthwaite"):
    """Within (β_w), between (β_b) and contextual (β_c = β_b - β_w) effects of a predictor split
    into a level-1 part `within` and its group mean `between`.

    Group-mean centering (within = x - mean_j(x)): β_w = γ_within, β_b = γ_between, β_c = β_b - β_w.
    Grand-mean centering (within = x or x - mean(x)): β_w = γ_within, β_c = γ_between,
    β_b = β_w + β_c. `centering` ("group" or "grand") is detected from the data when None.
    Rows within/between/contextual; columns term, Estimate, Std. Error, df, t value, Pr(>|t|).
    """
    _check_model(model)
    names = list(model.design.fixed_names)
    for column in (within, between):
        if column not in names:
            raise ModelError(f"fixed effect '{column}' is not in the model{did_you_mean(column, names)}; "
                             f"the coefficients are {', '.join(names)}")
    if within == between:
        raise ModelError("within and between name the same coefficient; give the level-1 part and the group mean")
    centering = centering or _detect_centering(model, within)
    if centering not in ("group", "grand"):
        raise ModelError(f"centering '{centering}' is unknown; use 'group' or 'grand'")
    w, b = np.eye(len(names))[names.index(within)], np.eye(len(names))[names.index(between)]
    if centering == "group":
        contrasts = {"within": (within, w), "between": (between, b), "contextual": (f"{between} - {within}", b - w)}
    else:
        contrasts = {"within": (within, w), "between": (f"{within} + {between}", w + b),
                     "contextual": (between, b)}
    method = ddf_method(ddf)
    rows = {effect: {"term": term, **contrast_test(model, L, method)} for effect, (term, L) in contrasts.items()}
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "effect"
    table.attrs["centering"] = centering
    return table


def _detect_centering(model, within):
    """"group" if `within` averages to zero in every group of some grouping factor, else "grand"."""
    x = model.design.X[:, list(model.design.fixed_names).index(within)]
    scale = 1e-8 * (1 + np.max(np.abs(x)))
    for term in model.design.terms:
        counts = np.bincount(term.codes, minlength=term.nlevels)
        means = np.bincount(term.codes, weights=x, minlength=term.nlevels) / np.maximum(counts, 1)
        if np.all(np.abs(means) <= scale):
            return "group"
    return "grand"
