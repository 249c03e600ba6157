"""The work of the workflow's steps on plain paths, records and tables, so that Snakemake's
scripts stay one call each and the logic is testable without Snakemake.

Each model is optimized once, by the fit step; every later step restores the fit from its
record and its table (restore_model), so nothing re-optimizes a fitted model. The only extra
optimizations are the ML refits of REML models that a likelihood-ratio test needs.
"""

import logging

from ..analysis.lrt import anova
from ..analysis.simple_slopes import choose_interaction, simple_slopes
from ..data import prepare, read_data
from ..figures.caterpillar import plot_caterpillar
from ..figures.diagnostics import plot_diagnostics
from ..figures.simple_slopes import plot_simple_slopes
from ..figures.style import _render
from ..inference.lmertest import lmer
from ..results.records import (
    comparison_record,
    derived_record,
    model_record,
    ranef_frame,
    residuals_frame,
    restore_model,
)
from ..results.writers import file_sha256, write_json, write_parquet

log = logging.getLogger(__name__)


def write_tables(spec, tables, summary):
    """The data step: read the data, treat missing values, centre, and write each model's table
    (its columns, spec["columns"][model], on the analysed rows) and the summary. tables: one
    path per model, in the order of spec["columns"]. A model's table changes only when its
    columns or the analysed rows do, so the other models are not refitted."""
    frame, info = prepare(read_data(spec["path"]), spec["group"], spec["centering"],
                          spec.get("complete"), spec["missing_codes"])
    for columns, path in zip(spec["columns"].values(), tables, strict=True):
        write_parquet(path, frame[columns])
    write_json(summary, {"path": spec["path"], "sha256": file_sha256(spec["path"]), "missing": spec["missing"],
                         **info})


def fit_model(spec, table, outputs):
    """The fit step, the one optimization of a model: its record, residuals and random
    effects. outputs: name -> path for model, residuals, ranef."""
    model = lmer(spec["formula"], table, REML=spec["REML"], optimizer=spec["optimizer"],
                 control=spec["control"] or None)
    write_parquet(outputs["residuals"], residuals_frame(model, table))
    write_parquet(outputs["ranef"], ranef_frame(model))
    write_json(outputs["model"], model_record(model, spec, table))


def compare_models(records, tables, output):
    """Likelihood-ratio test of the restored fits (lme4's anova; REML fits refitted by ML)."""
    models = [restore_model(record, table) for record, table in zip(records, tables, strict=True)]
    result = anova(*models, names=[record["name"] for record in records])
    write_json(output, comparison_record(result, [record["spec"] for record in records]))


def derive_statistics(records, tables, icc, variance_explained, contextual, group, output):
    """ICC and design effects, variance explained and contextual effects of the restored fits."""
    models = {record["name"]: restore_model(record, table) for record, table in zip(records, tables, strict=True)}
    write_json(output, derived_record(models, icc, variance_explained, contextual, group))


def write_simple_slopes(record, table, outputs, language="en"):
    """Simple slopes of a model's interaction, each tested with the model's df method, from the
    fit restored from its record; the rows it used decide the moderator's levels. outputs: name
    -> path for simple_slopes_svg, simple_slopes_png, simple_slopes_json. A model whose
    interactions are not of two numeric columns gets {"available": false} and an empty figure."""
    figures = [outputs["simple_slopes_svg"], outputs["simple_slopes_png"]]
    model = restore_model(record, table)
    choice = choose_interaction(model.design)
    if choice is None:
        log.info("no interaction of two numeric predictors to probe in %s", record["name"])
        _render(language, lambda plt: plt.figure(figsize=(2, 0.5)), figures)
        write_json(outputs["simple_slopes_json"], {"available": False})
        return
    result = simple_slopes(model, *choice, table, ddf=record["spec"]["ddf"])
    plot_simple_slopes(result, model.design.response, figures, language)
    write_json(outputs["simple_slopes_json"], {"available": True, **result})


def write_diagnostic_figures(residuals, ranef, outputs, language="en"):
    """Panels A-D and the caterpillar plot of one model, as SVG and PNG. outputs: name -> path
    for diagnostics_svg, diagnostics_png, caterpillar_svg, caterpillar_png."""
    plot_diagnostics(residuals, ranef, [outputs["diagnostics_svg"], outputs["diagnostics_png"]], language)
    plot_caterpillar(ranef, [outputs["caterpillar_svg"], outputs["caterpillar_png"]], language)
