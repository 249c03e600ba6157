"""The report's views of generalized linear mixed models (a model record with a family, fitted by
lme4's glmer): equations with a Bernoulli, binomial or Poisson level 1 and the link, Wald z tables
with odds or rate ratios, the interpretation paragraph (ratios and predicted probabilities), the
latent-scale ICC, and the sentences that say what variance explained and the diagnostics cannot
show for such models.
"""
import dataclasses
import math
import re

from ..results.records import is_glmm_record
from . import apa
from .conditions import conditions_text, intercept_note
from .equations import INTERCEPT, Equation, Math
from .models import (
    _factor_of,
    _group_of,
    _groups_text,
    _roles,
    effect_role,
    held_fixed_notes,
    model_view,
    with_sentences,
    worded,
)
from .names import term_name
from .writers import Code, Say, _say, joined

LINK_LHS = {"logit": r"\mathrm{logit}(p_{%s})", "probit": r"\Phi^{-1}(p_{%s})",
            "cloglog": r"\log(-\log(1 - p_{%s}))", "log": r"\log(\lambda_{%s})"}
INVERSE_LINKS = {"logit": lambda eta: 1 / (1 + math.exp(-eta)),
                 "probit": lambda eta: 0.5 * (1 + math.erf(eta / math.sqrt(2))),
                 "cloglog": lambda eta: 1 - math.exp(-math.exp(eta)), "log": math.exp}
RATIO_LINKS = ("logit", "log")      # whose exp(β) the paragraph reads as odds or rate ratios
_RESIDUAL = re.compile(r" \+ [re]_\{i\w*\}$")


def approximation(model, G):
    """Laplace, adaptive quadrature with its nAGQ, or nAGQ = 0, in the report's language."""
    n = model.get("nAGQ", 1)
    return G["laplace"] if n == 1 else G["pirls"] if n == 0 else G["agq"].format(n=n)


def level1_text(model, G):
    """The latent level-1 variance in words: π²/3 ≈ 3.29 for logit, the lognormal approximation's value."""
    kind = model["level1_variance"]["kind"]
    return G["level1"][kind].format(value=apa.estimate(model["level1_variance"]["value"], digits=4))


def glmm_model_view(name, model, title, names, summary, L):
    """model_view's view of one model, with what a GLMM shows instead: z, ratios, link equations."""
    view = model_view(name, model, title, names, summary, L)
    G = L["glmm"]
    family, link = model["family"], model["link"]
    ratio = G["ratio"].get(link) if model.get("ratio_name") else None
    for row, raw in zip(view["fixed"], model["coefficients"]):
        shown = ratio and apa.finite(raw.get("ratio"))
        row["ratio"] = apa.estimate(raw["ratio"]) if shown else ""
        row["ratio_ci"] = apa.ci(raw["ratio_low"], raw["ratio_high"]) if shown else ""
    method = G["method"].format(approximation=approximation(model, G))
    sample = L["model"]["sample"].format(n=view["n"], groups=view["groups"])
    fit = view["fit"]
    view.update({
        "glmm": True, "method": method, "statistic": G["z"], "ratio": ratio,
        "ratio_ci_header": G["ratio_ci"].format(ratio=ratio) if ratio else "",
        "estimate_header": G["estimate"].get(family, G["estimate"]["other"]),
        "summary_estimate_header": G["summary_estimate"][family],
        "equations": glmm_equations(view["equations"], model),
        "equation_notes": _equation_notes(model, G),
        "meta": G["meta"].format(family=G["families"][family], link=link, method=method,
                                 optimizer=view["optimizer"], sample=sample),
        "fixed_note": with_sentences(G["fixed_note"][link],
                                     held_fixed_notes(view["fixed"], model, summary, names, L, ratio), L),
        "random_note": G["random_note"].format(sample=sample, aic=fit["aic"], bic=fit["bic"], loglik=fit["loglik"],
                                               deviance=fit["deviance"], df_resid=fit["df_resid"],
                                               level1=level1_text(model, G)),
    })
    view["narrative"] = _narrative(view, model, names, summary, L)
    view["warnings"] = view["warnings"] + check_warnings(model, L)
    return view


def check_warnings(model, L):
    """The model's checks that failed (overdispersion, residuals not uniform, zero inflation), for
    the warnings section: a committee reads those before the diagnostics."""
    W, checks = L["warnings"], model.get("checks") or {}
    out = []
    dispersion, uniformity = checks.get("dispersion") or {}, checks.get("uniformity") or {}
    if dispersion.get("verdict") in ("overdispersed", "underdispersed"):
        out.append(W[dispersion["verdict"]].format(ratio=apa.number(dispersion["statistic"], 3),
                                                   p=apa.p_value(dispersion["p_value"], with_symbol=True)))
    if uniformity.get("verdict") == "not uniform":
        out.append(W["not_uniform"].format(D=apa.number(uniformity["statistic"], 3),
                                           p=apa.p_value(uniformity["p_value"], with_symbol=True)))
    zeros = checks.get("zero_inflation") or {}
    if zeros.get("verdict") == "underfitting":
        out.append(W["underfitting"].format(observed=apa.integer(zeros["observed_zeros"]),
                                            predicted=apa.integer(zeros["predicted_zeros"])))
    return out


def _equation_notes(model, G):
    notes = [G["equation_note"][model["family"]].format(link=model["link"])]
    offsets = [v for v in model.get("variables") or {} if v.startswith("offset(")]
    notes += [G["offset_note"].format(offset=offset) for offset in offsets]
    return notes


def glmm_equations(equations, model):
    """The LMM equations with the link: level 1 says how Y is distributed given the random effects
    (Prob(Y = 1) = p, or E(Y) = λ) and sets the link of that mean equal to the linear predictor,
    which has no level-1 residual; the combined model is the link's equation."""
    if equations is None:
        return None
    link, family = model["link"], model["family"]

    def link_side(eq):
        index = re.match(r"Y_\{(\w+)\}", eq.lhs.template).group(1)
        return Math(LINK_LHS[link] % index)

    def linear(eq):
        return Math(_RESIDUAL.sub("", eq.rhs.template), eq.rhs.names)

    level1 = []
    for eq in equations.level1:
        index = re.match(r"Y_\{(\w+)\}", eq.lhs.template).group(1)
        given = (r"\beta_" if len(index) == 2 else r"\pi_") + f"{{{index[1:]}}}"
        if family == "binomial":
            mean = Equation(Math(rf"\mathrm{{Prob}}({eq.lhs.template} = 1 \mid {given})", eq.lhs.names),
                            Math(f"p_{{{index}}}"))
        else:
            mean = Equation(Math(rf"\mathrm{{E}}({eq.lhs.template} \mid {given})", eq.lhs.names),
                            Math(rf"\lambda_{{{index}}}"))
        level1 += [mean, Equation(link_side(eq), linear(eq))]
    symbols = {k: v for k, v in equations.variance_symbols.items() if k[0] != "Residual"}
    return dataclasses.replace(equations, level1=tuple(level1), variance_symbols=symbols,
                               combined=Equation(link_side(equations.combined), linear(equations.combined)))


# ---- the interpretation paragraph ------------------------------------------------------------------

def _narrative(view, model, names, summary, L):
    N, G = L["narrative"], L["glmm"]
    family, link = model["family"], model["link"]
    inverse = INVERSE_LINKS[link]
    sentences = [_say(N["opening"], model=view["title"], method=view["method"], n=view["n"],
                      units=worded(N, "units", summary), groups=_groups_text(model.get("ngroups", {}), names, L))]
    fixed = view["fixed"]
    random_rows = [r for r in model["varcorr"] if not r.get("var2")]
    equations = view["equations"]
    sym = (lambda key: equations.variance_symbols.get(key) if equations else None)
    intercept = next((r["raw"]["estimate"] for r in fixed if r["term"] == INTERCEPT), None)
    if [r["term"] for r in fixed] == [INTERCEPT] and len(random_rows) == 1:
        row = fixed[0]
        sentences.append(_say(G["null_model"][family], g00=row["symbol"] or "γ00", estimate=row["estimate"],
                              se=row["se"], probability=apa.estimate(inverse(intercept)),
                              tau=sym((_group_of(random_rows[0]["grp"], equations), INTERCEPT, None)) or "τ00",
                              tau_value=apa.estimate(random_rows[0]["vcov"], digits=4)))
    else:
        sentences.append(_effects(fixed, model, equations, names, summary, L))
        meanings = _meanings(fixed, model, names, summary, L)
        if meanings:
            sentences.append(Say(G["meanings_intro"] + "{parts}" + N["end"], (("parts", joined(meanings, N["join"])),)))
        if intercept is not None:
            sentences.extend(_probabilities(fixed, model, names, summary, intercept, L))
    parts = []
    for r in random_rows:
        name = N["intercept"] if r["var1"] == INTERCEPT else term_name(r["var1"], names, model["variables"])
        if len(model.get("ngroups", {})) > 1:
            name = f"{name} ({r['grp']})"
        parts.append(_say(G["random_variance"], name=name, scale=G["scale"][link],
                          symbol=sym((_group_of(r["grp"], equations), r["var1"], None)) or f"{r['grp']} {r['var1']}",
                          value=apa.estimate(r["vcov"], digits=4)))
    parts.append(_say(G["no_residual"]))
    sentences.append(Say(N["random_intro"] + "{parts}" + N["end"], (("parts", joined(parts, N["join"])),)))
    fit = view["fit"]
    sentences.append(_say(G["fit"], deviance=fit["deviance"], aic=fit["aic"], bic=fit["bic"]))
    if apa.finite(model.get("r2_marginal")) and apa.finite(model.get("r2_conditional")):
        sentences.append(_say(G["r2"], marginal=apa.proportion(model["r2_marginal"]),
                              conditional=apa.proportion(model["r2_conditional"]),
                              level1=G["level1_short"][model["level1_variance"]["kind"]]))
    return sentences


def _effects(fixed, model, equations, names, summary, L):
    """Each fixed effect with its Wald z test and, for logit and log links, its ratio and interval."""
    N, G = L["narrative"], L["glmm"]
    roles = _roles(equations, [r["term"] for r in fixed])
    effects = []
    for row in fixed:
        raw = row["raw"]
        role = effect_role(row, model, roles, names, summary, L)
        test = apa.z_test(raw["t"], raw["p"])
        if apa.finite(raw.get("p")):
            test += N["verdict"].format(verdict=N["significant"] if raw["p"] < 0.05 else N["not_significant"])
        if row["ratio"] and row["term"] != INTERCEPT:
            test += G["ratio_effect"][model["link"]].format(ratio=row["ratio"], ci=row["ratio_ci"])
        effects.append(_say(G["effect"], role=role, symbol=row["symbol"] or row["term"],
                            estimate=row["estimate"], se=row["se"], test=test))
    return Say(N["fixed_intro"] + "{effects}" + N["end"], (("effects", joined(effects, N["join"])),))


def _meanings(fixed, model, names, summary, L):
    """What each ratio says: odds (or the expected count) multiplied by exp(β) per unit or category,
    where the variables it interacts with are 0 (or at their reference category)."""
    G, C, link = L["glmm"], L["conditions"], model["link"]
    if link not in RATIO_LINKS:
        return []
    out = []
    for row in fixed:
        raw = row["raw"]
        if row["term"] == INTERCEPT or not row["ratio"] or ":" in row["term"]:
            continue
        dummy = _factor_of(row["term"], model)
        if dummy:
            meaning = G["meaning"][f"{link}_dummy"].format(variable=names.get(dummy[0], dummy[0]), level=dummy[1],
                                                           reference=dummy[2], ratio=row["ratio"])
        else:
            change = math.exp(raw["estimate"]) - 1
            direction = G["meaning"]["up" if change >= 0 else "down"].format(percent=apa.percent(abs(change)))
            meaning = G["meaning"][f"{link}_slope"].format(term=row["label"], ratio=row["ratio"], change=direction)
        conditions = conditions_text(row["term"], model, summary, names, C)
        out.append(_say("{text}", text=C["meaning"].format(meaning=meaning, conditions=conditions)
                        if conditions else meaning))
    return out


def _probabilities(fixed, model, names, summary, intercept, L):
    """Predicted probabilities (or counts) in a typical group: all predictors 0, then each
    category of a factor, and each numeric main effect one SD above 0."""
    G, family, inverse = L["glmm"], model["family"], INVERSE_LINKS[model["link"]]
    sentences = [_say(G["baseline"][family], probability=apa.estimate(inverse(intercept)),
                      estimate=apa.estimate(intercept))]
    extrapolation = intercept_note(model, summary, names, L["conditions"])
    if extrapolation:
        sentences.append(_say("{text}", text=extrapolation))
    sds = {v["name"]: v.get("sd") for v in summary.get("variables", [])}
    parts = []
    for row in fixed:
        term, raw = row["term"], row["raw"]
        if term == INTERCEPT or ":" in term:
            continue
        dummy = _factor_of(term, model)
        if dummy:
            condition = G["condition_dummy"].format(variable=names.get(dummy[0], dummy[0]), level=dummy[1])
            eta = intercept + raw["estimate"]
        elif apa.finite(sds.get(term)):
            condition = G["condition_sd"].format(term=row["label"], value=apa.estimate(sds[term]))
            eta = intercept + raw["estimate"] * sds[term]
        else:
            continue
        parts.append(_say(G["at_value"][family], condition=condition, probability=apa.estimate(inverse(eta))))
    if parts:
        sentences.append(Say(G["at_values"][family], (("parts", joined(parts, G["at_join"])),)))
    return sentences


# ---- the other sections ----------------------------------------------------------------------------

def glmm_icc_sentences(value, model, title, L):
    """The latent-scale ICC of a GLMM: τ00 / (τ00 + the link's level-1 variance)."""
    G = L["glmm"]
    taus = [r for r in model["varcorr"] if not r.get("var2")]
    if len(taus) != 1 or taus[0]["var1"] != INTERCEPT:
        return [_say(G["icc_adjusted"], model=title, icc=apa.proportion(value), level1_text=level1_text(model, G))]
    level1 = model["level1_variance"]["value"]
    return [_say(G["icc_sentence"], model=title, tau=apa.estimate(taus[0]["vcov"], digits=4),
                 level1=apa.estimate(level1, digits=4), level1_text=level1_text(model, G),
                 icc=apa.proportion(value), percent=apa.percent(value), group=Code(taus[0]["grp"]))]


def icc_formula(model):
    """The ICC's formula for a model record, in LaTeX: σ² for a linear model, the latent level-1 variance for a GLMM."""
    if not is_glmm_record(model):
        return r"\mathrm{ICC} = \frac{\tau_{00}}{\tau_{00} + \sigma^2}"
    level1 = {"logit": r"\pi^2/3", "probit": "1", "cloglog": r"\pi^2/6"}.get(model["level1_variance"]["kind"],
                                                                                r"\ln(1 + 1/\lambda)")
    return r"\mathrm{ICC} = \frac{\tau_{00}}{\tau_{00} + " + level1 + "}"


def icc_formula_text(model, L):
    """The ICC's formula in plain text, as the HTML report prints it."""
    if not is_glmm_record(model):
        return L["icc"]["formula"]
    return L["glmm"]["icc_formula"].format(level1=L["glmm"]["level1_short"][model["level1_variance"]["kind"]])


def variance_note(old, new, model, L):
    """Why a GLMM pair compares only τ: no residual variance, and the latent scale moves."""
    G = L["glmm"]
    return _say(G["variance_note"], old=old, new=new, level1=G["level1_short"][model["level1_variance"]["kind"]])


def comparison_note(model, L):
    return _say(L["glmm"]["comparison_note"], approximation=approximation(model, L["glmm"]))


def glmm_check_sentences(model, title, L):
    """Why a GLMM has no normal QQ plot, and what its checks (the record's, glmm_checks) found."""
    G, checks = L["glmm"], model["checks"]
    uniformity, dispersion = checks["uniformity"], checks["dispersion"]
    sentences = [_say(G["no_qq"], model=title, outcome=Code(model.get("response", "")), nsim=checks["simulations"]),
                 _say(G["uniformity"][uniformity["verdict"]], D=apa.number(uniformity["statistic"], 3),
                      p=apa.p_value(uniformity["p_value"], with_symbol=True)),
                 _say(G["dispersion"][dispersion["verdict"]], ratio=apa.number(dispersion["statistic"], 3),
                      p=apa.p_value(dispersion["p_value"], with_symbol=True))]
    if "binned_residuals" in checks:
        binned = checks["binned_residuals"]
        sentences.append(_say(G["binned"][binned["verdict"]], bins=binned["bins"],
                              percent=apa.percent(binned["share_inside"], 0)))
    if "zero_inflation" in checks:
        zeros = checks["zero_inflation"]
        sentences.append(_say(G["zero_inflation"][zeros["verdict"]], observed=apa.integer(zeros["observed_zeros"]),
                              predicted=apa.integer(zeros["predicted_zeros"]), ratio=apa.number(zeros["ratio"], 2)))
    return sentences


def dharma_caption(model, title, L):
    return L["glmm"]["dharma_caption"].format(model=title, nsim=model["checks"]["simulations"])
