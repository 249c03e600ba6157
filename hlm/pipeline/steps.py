"""The work of the workflow's steps on plain paths and tables, so that Snakemake's scripts stay
one call each and the logic is testable without Snakemake.
"""

import logging

from ..analysis.simple_slopes import choose_interaction, simple_slopes
from ..figures.caterpillar import plot_caterpillar
from ..figures.diagnostics import plot_diagnostics
from ..figures.simple_slopes import plot_simple_slopes
from ..figures.style import _render
from ..inference.lmertest import lmer
from ..results.writers import write_json


def fit_spec(spec, frame):
    """Fit one model spec (model_specs) to the analysed table."""
    return lmer(spec["formula"], frame, REML=spec["REML"], optimizer=spec["optimizer"],
                control=spec["control"] or None)


log = logging.getLogger(__name__)


def write_simple_slopes(model, table, spec, group, outputs, language="en"):
    """Simple slopes of a model's interaction: the model is refitted to the analysed table (its
    spec) so that each slope is tested with the model's df method; the rows it used decide the
    moderator's levels. outputs: name -> path for simple_slopes_svg, simple_slopes_png,
    simple_slopes_json. A model whose interactions are not of two numeric columns gets
    {"available": false} and an empty figure."""
    figures = [outputs["simple_slopes_svg"], outputs["simple_slopes_png"]]
    fitted = fit_spec(spec, table)
    choice = choose_interaction(fitted.design)
    if choice is None:
        log.info("no interaction of two numeric predictors to probe in %s", model["name"])
        _render(language, lambda plt: plt.figure(figsize=(2, 0.5)), figures)
        write_json(outputs["simple_slopes_json"], {"available": False})
        return
    result = simple_slopes(fitted, *choice, table, ddf=spec.get("ddf", "Satterthwaite"))
    plot_simple_slopes(result, fitted.design.response, figures, language)
    write_json(outputs["simple_slopes_json"], {"available": True, **result})


def write_diagnostic_figures(residuals, ranef, outputs, language="en"):
    """Panels A-D and the caterpillar plot of one model, as SVG and PNG. outputs: name -> path
    for diagnostics_svg, diagnostics_png, caterpillar_svg, caterpillar_png."""
    plot_diagnostics(residuals, ranef, [outputs["diagnostics_svg"], outputs["diagnostics_png"]], language)
    plot_caterpillar(ranef, [outputs["caterpillar_svg"], outputs["caterpillar_png"]], language)
