"""The records the workflow writes: hlm's objects as the plain JSON and table layouts that
config/README.md documents and the report reads, and the fit a model record restores.

Everything the report shows is computed here, so the report only formats.
"""
import numpy as np
import pandas as pd

from ..analysis.contextual import contextual
from ..analysis.glmm_checks import (
    binned_residuals,
    check_zeroinflation,
    dispersion_test,
    simulate_residuals,
    uniformity_test,
)
from ..analysis.latent import LINK_VARIANCES, distribution_variance
from ..analysis.standardized import standardized
from ..analysis.variance import icc, r2_nakagawa, variance_explained
from ..engine.design import build_design
from ..engine.glmm import OPTIMIZERS, GeneralizedLinearMixedModel
from ..engine.model import restore_fit
from ..engine.optimize import OptSummary
from ..errors import ModelError
from ..inference.glmm import RATIO_NAMES, restore_glmer
from ..inference.intervals import critical_value
from ..inference.lmertest import LmerTestModel
from ..inference.summary import terms_dict
from ..vocabulary import DDF_RECORD_KEYS, ddf_method
from .writers import jsonable

LEVEL = 0.95   # of every interval in the records


def model_record(model, spec, data=None):
    """model.to_dict() (the reference's key names) plus the spec it was fitted with, the df and p
    of the spec's ddf method, Nakagawa's R2, the adjusted ICC, the coefficient table as
    lmerTest prints it, with 95% intervals, and (spec's standardized: refit or pseudo, with `data`,
    the table the model was fitted to) the standardized coefficients as effectsize gives them."""
    record = {"name": spec["name"], "spec": spec, **jsonable(model.to_dict())}
    table = model.coef_table(ddf=spec["ddf"])  # lme4: no df, no p
    if "df" in table:
        record[DDF_RECORD_KEYS[ddf_method(spec["ddf"])]] = jsonable(table["df"])
    if "Pr(>|t|)" in table:
        record["p"] = jsonable(table["Pr(>|t|)"])
    record["r2_marginal"], record["r2_conditional"] = jsonable(r2_nakagawa(model))
    record["icc_adjusted"] = jsonable(icc(model))
    record["coefficients"] = [with_interval({"term": term, **row}) for term, row in zip(table.index, jsonable(table))]
    method = spec.get("standardized", "none")
    if method != "none" and data is not None:
        record["standardized"] = standardized_record(model, data, method)
    return record


def standardized_record(model, data, method):
    """{method, coefficients: [{term, Std_Coefficient, CI_low, CI_high}]} (effectsize's names),
    or {method, coefficients: [], message} when the method does not apply to the model."""
    try:
        std = standardized(model, data, method)
    except ModelError as exc:
        return {"method": method, "coefficients": [], "message": str(exc)}
    return {"method": method, "coefficients": [{"term": term, **row} for term, row in zip(std.index, jsonable(std))]}


def is_glmm_record(record):
    """Whether a model record is a GLMM's (glmer's records name their family)."""
    return bool(record.get("family"))


def restore_model(record, table):
    """The fit a model record saved, on the table it was fitted to, without optimizing again
    (restore_fit checks the objective at the saved θ; a GLMM's record restores with restore_glmer)."""
    spec = record["spec"]
    if is_glmm_record(record):
        return restore_glmer(record, table)
    return restore_fit(build_design(spec["formula"], table), spec["REML"], OptSummary.from_dict(record["optsummary"]),
                       record["converged"], record["messages"], model_class=LmerTestModel)


def with_interval(row):
    """A test's row (Estimate, Std. Error, df) with its 95% interval, ci_low and ci_high: t with
    the row's df, normal without one (a Wald z test), as lmerTest's contest1D(confint = TRUE)."""
    estimate, se, df = row.get("Estimate"), row.get("Std. Error"), row.get("df")
    if estimate is None or se is None:
        return {**row, "ci_low": None, "ci_high": None}
    q = critical_value(df, LEVEL)
    return {**row, "ci_low": estimate - q * se, "ci_high": estimate + q * se}


def residuals_frame(model, frame):
    """One row per observation the model used: its row in `frame` (the model's table, the data
    it was fitted to), the grouping columns, fitted values, residuals and residuals scaled by
    sigma (lme4's 'scaled'); for a GLMM the fitted means μ, deviance and Pearson residuals."""
    rows = model.design.rows
    out = pd.DataFrame({"row": rows})
    for group in model.ngroups:
        if group in frame.columns:
            out[group] = frame[group].to_numpy()[rows]
    out["fitted"] = np.asarray(model.fitted, dtype=float)
    glmm = isinstance(model, GeneralizedLinearMixedModel)   # deviance and Pearson residuals, as lme4's
    out["residual"] = np.asarray(model.residuals("deviance") if glmm else model.residuals(scaled=False), dtype=float)
    out["scaled_residual"] = np.asarray(model.residuals("pearson") if glmm else model.residuals(scaled=True),
                                        dtype=float)
    return out


def ranef_frame(model):
    """Conditional modes in long form: grp, level, term, value (one row per level and term),
    and condsd, their conditional SD (lme4's as.data.frame(ranef(m, condVar = TRUE)))."""
    sds = _conditional_sds(model)
    parts = []
    for grp, modes in model.ranef.items():
        long = modes.rename_axis("level").reset_index().melt(
            id_vars="level", var_name="term", value_name="value")
        long.insert(0, "grp", grp)
        long["level"] = long["level"].astype(str)
        long["condsd"] = [sds.get((grp, term, level), np.nan)
                          for term, level in zip(long["term"], long["level"])]
        parts.append(long)
    if not parts:
        return pd.DataFrame({"grp": [], "level": [], "term": [], "value": [], "condsd": []})
    return pd.concat(parts, ignore_index=True)


def _conditional_sds(model):
    """(group, term, level) -> conditional SD of the mode, from model.ranef_condvar."""
    sds = {}
    for label, term in zip(model.group_labels, model.design.terms):
        variances = np.asarray(model.ranef_condvar[label])
        for k, column in enumerate(term.columns):
            for level, variance in zip(term.levels, variances[:, k, k]):
                sds[(term.group, column, str(level))] = float(np.sqrt(max(variance, 0.0)))
    return sds


def comparison_record(table, specs):
    """hlm.anova's table as JSON: each column as a list over the models (in lme4's order, by
    number of parameters), Chisq/Df/p of the last row on their own for a pair, and the rows."""
    names = [str(i) for i in table.index]
    formulas = {s["name"]: s["formula"] for s in specs}
    record = {"models": names, "formulas": [formulas[n] for n in names],
              "refitted_with_ML": [s["name"] for s in specs if s["REML"]],
              "note": table.attrs.get("note", "")}
    for column in table.columns:
        record[{"Pr(>Chisq)": "p"}.get(column, column)] = jsonable(table[column].tolist())
    if len(names) == 2:
        for key in ("Chisq", "Df", "p"):
            record[key] = record[key][-1]
    record["table"] = [{"model": n, **row} for n, row in zip(names, jsonable(table))]
    return record


def derived_record(models, icc_models, variance_pairs, contextual_entries, group):
    """The ICC of each `icc_models` model with its design effect, variance explained for each
    [old, new] pair and the effects of each `contextual` entry ({model, within, between, ddf,
    centering?}), keyed as results/derived/derived.json documents. `models`: name -> fit."""
    record = {"icc": {name: icc(models[name]) for name in icc_models},
              "design_effect": {}, "variance_explained": {}, "contextual": {}}
    for name, value in record["icc"].items():
        if group in models[name].ngroups:
            record["design_effect"][name] = design_effect(models[name], group, value)
    for old, new in variance_pairs:
        values = variance_explained(models[old], models[new])
        record["variance_explained"][f"{old}_to_{new}"] = {"old": old, "new": new,
                                                           "values": jsonable(values)}
    for entry in contextual_entries:
        table = contextual(models[entry["model"]], within=entry["within"], between=entry["between"],
                           centering=entry.get("centering"), ddf=entry["ddf"])
        effects = {effect: with_interval(row) for effect, row in jsonable(table.to_dict(orient="index")).items()}
        record["contextual"][entry["model"]] = {**entry, "centering": table.attrs["centering"], "effects": effects}
    return jsonable(record)


def design_effect(model, group, icc_value):
    """Kish's design effect 1 + (m - 1) ICC, m the mean size of the model's groups of `group`."""
    size = model.nobs / model.ngroups[group]
    return {"group": group, "mean_group_size": size, "value": 1 + (size - 1) * icc_value}


def glmm_record(model, spec):
    """A GLMM's record: glmer's numbers (GlmerModel.to_dict()) with its terms and variables, the
    spec, Wald z tests with 95% intervals and exp(β) ratios (odds or rate ratios, with the limits
    exp(β ± z·SE)), the latent-scale level-1 variance, ICC and Nakagawa R² (performance's)."""
    record = {"name": spec["name"], "spec": spec, **jsonable(model.to_dict()), **jsonable(terms_dict(model.design))}
    record["optimizer"] = spec.get("optimizer") or ", ".join(OPTIMIZERS)   # glmer's stages
    record["ratio_name"] = RATIO_NAMES.get(model.link)
    ratios = model.ratios(LEVEL).to_numpy() if record["ratio_name"] else None
    record["coefficients"] = []
    for k, (term, row) in enumerate(zip(model.fixef.index, jsonable(model.coef_table()))):
        row = with_interval({"term": term, **row})
        if ratios is not None:
            row.update(jsonable(dict(zip(("ratio", "ratio_low", "ratio_high"), ratios[k]))))
        record["coefficients"].append(row)
    record["level1_variance"] = {"value": distribution_variance(model),
                                 "kind": model.link if model.link in LINK_VARIANCES else "lognormal"}
    record["r2_marginal"], record["r2_conditional"] = jsonable(r2_nakagawa(model))
    record["icc_adjusted"] = jsonable(icc(model))
    record["outcome_values"] = None
    record["anova"] = []
    record["checks"] = glmm_checks(model)
    return jsonable(record)


SIMULATIONS, SIMULATION_SEED = 250, 123   # DHARMa's simulateResiduals(m, n = 250); the seed makes reruns identical


def glmm_checks(model):
    """What the report says of a GLMM's fit: DHARMa's uniformity and dispersion tests of its
    simulated scaled residuals, and performance's binned residuals (binomial) or zero-inflation
    check (poisson), as plain numbers."""
    scaled = simulate_residuals(model, nsim=SIMULATIONS, seed=SIMULATION_SEED)
    checks = {"simulations": SIMULATIONS, "seed": SIMULATION_SEED, "conditional": scaled.conditional,
              "uniformity": uniformity_test(scaled).to_dict(), "dispersion": dispersion_test(scaled).to_dict()}
    if model.family == "binomial":
        binned = binned_residuals(model)
        checks["binned_residuals"] = {"share_inside": binned.share_inside, "verdict": binned.verdict,
                                      "bins": len(binned.table)}
    else:
        checks["zero_inflation"] = check_zeroinflation(model).to_dict()
    return checks


def glmm_icc_levels(model):
    """A GLMM's icc_levels entry: its ICC on the latent scale (performance's adjusted ICC) and the
    level-1 variance it uses (π²/3 for logit, ...), as derived.json documents."""
    return {"kind": "latent", "value": icc(model), "family": model.family, "link": model.link,
            "level1_variance": distribution_variance(model)}


def glmm_slopes_record(result, model):
    """simple_slopes' result for a GLMM (tested with Wald z, ddf lme4): the slopes on the link scale
    (log-odds, log rate) with exp(slope) ratios and their limits for logit and log links, and
    `response_lines`, the predicted lines and bands through the inverse link (probabilities or
    expected counts, random effects at 0), `response_scale` naming them."""
    link = model.link
    inverse = model.response.family.linkinv
    for row in result["slopes"]:
        if link in RATIO_NAMES:
            row.update({key: float(np.exp(row[source])) for key, source in
                        (("ratio", "Estimate"), ("ratio_low", "ci_low"), ("ratio_high", "ci_high"))})
    result["response_lines"] = {key: {"x": line["x"], **{part: inverse(np.array(line[part])).tolist()
                                                       for part in ("fit", "low", "high")}}
                                for key, line in result["lines"].items()}
    name = model.design.response
    result.update({"family": model.family, "link": link, "ratio_name": RATIO_NAMES.get(link),
                   "response_scale": f"P({name})" if model.family == "binomial" else f"E({name})"})
    return result
