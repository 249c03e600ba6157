"""The work of the workflow's steps on plain paths, records and tables, so that Snakemake's
scripts stay one call each and the logic is testable without Snakemake.

Each model is optimized once, by the fit step; every later step restores the fit from its
record and its table (restore_model), so nothing re-optimizes a fitted model. The only extra
optimizations are the ML refits of REML models that a likelihood-ratio test needs.
"""

import logging

from ..analysis.glmm_checks import dispersion_test, simulate_residuals, uniformity_test
from ..analysis.lrt import anova
from ..analysis.pbmodcomp import pb_chunk, pb_gather
from ..analysis.power import gather, run_chunk
from ..analysis.simple_slopes import choose_interaction, simple_slopes
from ..analysis.variance import icc_by_level
from ..data import missing_codes_line, prepare, read_data
from ..figures.caterpillar import plot_caterpillar
from ..figures.diagnostics import plot_diagnostics
from ..figures.glmm_diagnostics import plot_scaled_residuals
from ..figures.johnson_neyman import plot_johnson_neyman
from ..figures.power import plot_power_curve
from ..figures.simple_slopes import plot_simple_slopes
from ..figures.style import _render
from ..figures.trajectories import plot_trajectories, trajectories
from ..inference.bootstrap import bootstrap, bootstrap_confint
from ..inference.glmm import GlmerModel, glmer
from ..inference.lmertest import lmer
from ..results.records import (
    comparison_record,
    derived_record,
    glmm_icc_levels,
    glmm_record,
    glmm_slopes_record,
    is_glmm_record,
    model_record,
    ranef_frame,
    residuals_frame,
    restore_model,
)
from ..results.writers import file_sha256, jsonable, read_json, write_json, write_parquet
from .config import is_glmm, power_spec

log = logging.getLogger(__name__)


def write_tables(spec, tables, summary):
    """The data step: read the data, treat missing values, centre, and write each model's table
    (its columns, spec["columns"][model], on the analysed rows) and the summary. tables: one
    path per model, in the order of spec["columns"]. A model's table changes only when its
    columns or the analysed rows do, so the other models are not refitted."""
    frame, info = prepare(read_data(spec["path"]), spec.get("levels") or spec["group"], spec["centering"],
                          spec.get("complete"), spec["missing_codes"], spec.get("categorical"),
                          spec.get("factor_columns", ()), spec.get("time"))
    if info["suspect_missing_codes"]:
        for suspect in info["suspect_missing_codes"]:
            log.warning("column '%s' has %d rows of %s, which looks like a missing code (%s)", suspect["column"],
                        suspect["count"], suspect["value"], suspect["reason"])
        log.warning("if they are missing values, add to data: %s", missing_codes_line(info["suspect_missing_codes"]))
    for columns, path in zip(spec["columns"].values(), tables, strict=True):
        write_parquet(path, frame[columns])
    write_json(summary, {"path": spec["path"], "sha256": file_sha256(spec["path"]), "missing": spec["missing"],
                         **info})


def fit_model(spec, table, outputs):
    """The fit step, the one optimization of a model: its record, residuals and random
    effects. outputs: name -> path for model, residuals, ranef."""
    if is_glmm(spec):
        fit_glmm_model(spec, table, outputs)
        return
    model = lmer(spec["formula"], table, REML=spec["REML"], optimizer=spec["optimizer"],
                 control=spec["control"] or None)
    write_parquet(outputs["residuals"], residuals_frame(model, table))
    write_parquet(outputs["ranef"], ranef_frame(model))
    record = model_record(model, spec, table)
    record["outcome_values"] = outcome_values(model.design.y)
    record["anova"] = omnibus_tests(model, spec["ddf"])
    write_json(outputs["model"], record)


def fit_glmm_model(spec, table, outputs):
    """The fit step of a GLMM (family binomial or poisson): hlm.glmer, as lme4's glmer."""
    control = dict(spec["control"] or {}) | ({"optimizer": spec["optimizer"]} if spec["optimizer"] else {})
    model = glmer(spec["formula"], table, family=spec["family"], link=spec["link"], nAGQ=spec["nAGQ"],
                  weights=spec["weights"], control=control or None)
    write_parquet(outputs["residuals"], residuals_frame(model, table))
    write_parquet(outputs["ranef"], ranef_frame(model))
    write_json(outputs["model"], glmm_record(model, spec))


def omnibus_tests(model, ddf):
    """lmerTest's type III anova() rows ({term, F, NumDF, DenDF, p}) when a term has several
    columns (a factor of three or more levels): the one test of such a term. With ddf lme4
    (no df) the F tests use Satterthwaite's df, as lmerTest's anova() does by default."""
    design = model.design
    if all(len(design.term_columns(k)) < 2 for k in range(len(design.fixed_terms))):
        return []
    table = model.anova(ddf="Satterthwaite" if ddf == "lme4" else ddf)
    return [{"term": term, "F": row["F value"], "NumDF": row["NumDF"], "DenDF": row["DenDF"], "p": row["Pr(>F)"]}
            for term, row in jsonable(table.to_dict(orient="index")).items()]


def outcome_values(y):
    """The outcome's values when it has two (a 0/1 outcome fitted as linear), else None."""
    values = sorted(set(y.tolist()))
    return [int(v) if float(v).is_integer() else v for v in values] if len(values) == 2 else None


def compare_models(records, tables, output, bootstrap=None, chunk_paths=()):
    """Likelihood-ratio test of the restored fits (lme4's anova; REML fits refitted by ML); with
    `bootstrap` ({nsim, seed}), pbkrtest's PBmodcomp p-value from the chunks beside it."""
    models = [restore_model(record, table) for record, table in zip(records, tables, strict=True)]
    result = anova(*models, names=[record["name"] for record in records])
    record = comparison_record(result, [record["spec"] for record in records])
    if bootstrap:
        large, small = _by_size(models)
        test = pb_gather([read_json(path) for path in chunk_paths], large, small, bootstrap["nsim"])
        record["bootstrap"] = {"method": "PBmodcomp", "seed": bootstrap["seed"], **test.to_dict()}
    write_json(output, record)


def bootstrap_chunk(name, records, tables, bootstrap, start, stop, output):
    """Replicates [start, stop) of a bootstrap comparison: LRT* of the two restored fits refitted
    to responses simulated from the smaller one, seeded by (seed, name, replicate)."""
    models = [restore_model(record, table) for record, table in zip(records, tables, strict=True)]
    write_json(output, pb_chunk(*_by_size(models), bootstrap["seed"], start, stop, name=name))


def bootstrap_intervals(record, table, options, output):
    """Percentile intervals of a model's fixed effects and variance components from a parametric
    bootstrap of the fit restored from its record (confint(bootMer(m, nsim), type = "perc"))."""
    model = restore_model(record, table)
    boot = bootstrap(model, nsim=options["nsim"], seed=options["seed"], progress=False)
    limits = bootstrap_confint(boot, level=options["level"])
    rows = [{"parameter": name, "estimate": boot.estimate[name], "ci_low": low, "ci_high": high}
            for name, (low, high) in zip(limits.index, limits.to_numpy())]
    write_json(output, {"model": record["name"], **options, "failed": boot.n_failed, "singular": boot.n_singular,
                        "rows": jsonable(rows)})


def _by_size(models):
    """(large, small): the model with more parameters first, as PBmodcomp takes them."""
    return tuple(sorted(models, key=lambda model: model.npar, reverse=True))


def derive_statistics(records, tables, icc, variance_explained, contextual, levels, output):
    """ICC and design effects (also per level: icc_levels), variance explained and contextual
    effects of the restored fits. levels: the grouping columns from level 2 upwards."""
    levels = [levels] if isinstance(levels, str) else list(levels)
    models = {record["name"]: restore_model(record, table) for record, table in zip(records, tables, strict=True)}
    record = derived_record(models, icc, variance_explained, contextual, levels[0])
    record["icc_levels"] = {name: jsonable(glmm_icc_levels(models[name]) if isinstance(models[name], GlmerModel)
                                           else icc_by_level(models[name], levels)) for name in icc}
    write_json(output, record)


def write_simple_slopes(record, table, outputs, language="en"):
    """Simple slopes of a model's interaction, each tested with the model's df method, from the
    fit restored from its record; the rows it used decide the moderator's values. outputs: name
    -> path for simple_slopes_svg/png/json and johnson_neyman_svg/png. A model with no
    interaction of a numeric predictor with a numeric or categorical moderator gets
    {"available": false} and empty figures; the Johnson–Neyman figure is empty unless the
    moderator is continuous."""
    figures = [outputs["simple_slopes_svg"], outputs["simple_slopes_png"]]
    jn_figures = [outputs[k] for k in ("johnson_neyman_svg", "johnson_neyman_png") if k in outputs]
    model = restore_model(record, table)
    choice = choose_interaction(model.design)
    if choice is None:
        log.info("no interaction of a numeric predictor with a numeric or categorical moderator in %s", record["name"])
        for paths in (figures, jn_figures):
            _render(language, lambda plt: plt.figure(figsize=(2, 0.5)), paths)
        write_json(outputs["simple_slopes_json"], {"available": False})
        return
    if isinstance(model, GlmerModel):   # Wald z tests on the link scale, the lines as probabilities (or counts)
        result = glmm_slopes_record(simple_slopes(model, *choice, table, ddf="lme4"), model)
        plot_simple_slopes({**result, "lines": result["response_lines"]}, result["response_scale"], figures, language)
    else:
        result = simple_slopes(model, *choice, table, ddf=record["spec"]["ddf"])
        plot_simple_slopes(result, model.design.response, figures, language)
    if "johnson_neyman" in result:
        plot_johnson_neyman(result, jn_figures, language)
    else:
        _render(language, lambda plt: plt.figure(figsize=(2, 0.5)), jn_figures)
    write_json(outputs["simple_slopes_json"], {"available": True, **result})


def write_trajectory(record, table, time, unit, outputs, language="en"):
    """The trajectory figure of a repeated-measures model (data.time) and its numbers, from the
    fit restored from its record. outputs: name -> path for trajectory_svg/png/json; unit: the
    level-2 column (the persons whose occasions are level 1)."""
    result = trajectories(restore_model(record, table), table, time, unit)
    plot_trajectories(result, [outputs["trajectory_svg"], outputs["trajectory_png"]], language)
    write_json(outputs["trajectory_json"], result)


def write_diagnostic_figures(residuals, ranef, outputs, language="en", record=None, table=None):
    """Panels A-D and the caterpillar plot of one model, as SVG and PNG. outputs: name -> path
    for diagnostics_svg, diagnostics_png, caterpillar_svg, caterpillar_png. A GLMM (its record
    and table given) gets DHARMa's simulated scaled residuals instead of panels A-D, whose
    normal QQ plots mean nothing for 0/1 or count residuals."""
    figures = [outputs["diagnostics_svg"], outputs["diagnostics_png"]]
    if record is not None and is_glmm_record(record):
        model = restore_model(record, table)
        checks = record["checks"]     # the same simulations as the record's tests (its seed)
        scaled = simulate_residuals(model, nsim=checks["simulations"], seed=checks["seed"])
        plot_scaled_residuals(scaled, uniformity_test(scaled), dispersion_test(scaled), figures, language)
    else:
        plot_diagnostics(residuals, ranef, figures, language)
    plot_caterpillar(ranef, [outputs["caterpillar_svg"], outputs["caterpillar_png"]], language)


def power_chunk(name, entry, record, table, size, start, stop, output):
    """One job of a power analysis (config key power.<name>): replicates [start, stop) at one
    size, simulated from and refitted on the fit restored from the model's record."""
    result = run_chunk(restore_model(record, table), table, power_spec(name, entry), size, start, stop)
    write_json(output, result)


def gather_power(name, entry, chunk_paths, output):
    """The power curve of an analysis from its chunks; the same bytes whatever the chunking."""
    write_json(output, gather(power_spec(name, entry), [read_json(path) for path in chunk_paths]))


def write_power_figure(result_path, outputs, language="en"):
    """The power-curve figure of a gathered power result, as SVG and PNG."""
    plot_power_curve(read_json(result_path), [outputs["svg"], outputs["png"]], language)
