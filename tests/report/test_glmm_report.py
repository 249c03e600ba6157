"""The report's views of GLMM records: a Poisson model with an offset (MASS's epil) and a probit
model (Contraception) as glmer fits them, against lme4's numbers (tests/fixtures/glmm_lme4.json);
and the warning that a 0/1 outcome fitted as a linear model gets, naming family: binomial.
"""
import json
import math

import pytest
from conftest import FIXTURES
from glmm_reference import MODELS, fit

from hlm.data import prepare, read_data
from hlm.labels import labels
from hlm.pipeline.steps import fit_model
from hlm.report import apa
from hlm.report.glmm_views import glmm_check_sentences, glmm_icc_sentences, glmm_model_view, icc_formula
from hlm.report.models import model_view, summary_table
from hlm.report.writers import MarkdownWriter, PlainWriter
from hlm.results.records import glmm_record
from hlm.results.writers import jsonable, read_json


def record_of(name):
    ref = MODELS[name]
    spec = {"name": name, "formula": ref["formula"], "family": ref["family"], "link": ref["link"], "nAGQ": ref["nAGQ"],
            "weights": None, "optimizer": None, "control": {}, "REML": False, "ddf": None, "standardized": "none"}
    return jsonable(glmm_record(fit(name), spec))


def view_of(name, language="en", summary=None):
    return glmm_model_view(name, record_of(name), name, {}, summary or {"variables": []}, labels(language))


def paragraph(view):
    return " ".join(PlainWriter().render(sentence) for sentence in view["narrative"])


@pytest.fixture(scope="module")
def epil():
    return view_of("epil_offset")


def test_a_poisson_model_has_log_rate_equations_with_its_offset_named(epil):
    equations = epil["equations"]
    assert equations.combined.lhs.latex == r"\log(\lambda_{ij})"
    assert "r_{ij}" not in equations.combined.rhs.latex and equations.combined.rhs.latex.endswith("u_{0j}")
    mean, linear = equations.level1
    assert mean.lhs.latex.startswith(r"\mathrm{E}(Y_{ij}(\mathrm{y}) \mid \beta_{j})") and mean.rhs.latex == r"\lambda_{ij}"
    assert linear.lhs.latex == r"\log(\lambda_{ij})" and linear.rhs.latex.startswith(r"\beta_{0j}")
    assert ("Residual", None, None) not in equations.variance_symbols
    notes = " ".join(epil["equation_notes"])
    assert "Poisson" in notes and "offset(log(base))" in notes


def test_a_poisson_table_has_log_rates_z_and_incidence_rate_ratios(epil):
    ref = MODELS["epil_offset"]
    assert (epil["estimate_header"], epil["statistic"], epil["ratio"]) == ("Log rate", "z", "IRR")
    assert epil["has_p"] and not epil["has_df"]
    wald = {row["name"]: row for row in ref["confint_wald"]}
    for row in epil["fixed"]:
        # exp(fixef(m)); exp(confint(m, method = "Wald"))
        assert row["ratio"] == apa.estimate(ref["exp_fixef"][row["term"]])
        assert row["ratio_ci"] == apa.ci(math.exp(wald[row["term"]]["lower"]), math.exp(wald[row["term"]]["upper"]))
        assert row["t"] == apa.stat(ref["z"][row["term"]]) and row["p"] == apa.p_value(ref["p"][row["term"]])
    text = paragraph(epil)
    assert "incidence-rate ratio IRR = " + apa.estimate(ref["exp_fixef"]["trtprogabide"]) in text
    assert "multiplies the expected count by" in text and "no residual variance σ²" in text
    # insight::get_variance_distribution: the lognormal approximation ln(1 + 1/λ), λ of the null model
    assert "ln(1 + 1/λ) = " + apa.estimate(ref["variance_components"]["var.distribution"], digits=4) \
        in epil["random_note"]


def test_a_poisson_icc_uses_the_lognormal_level1_variance():
    record = record_of("epil_offset")
    assert icc_formula(record) == r"\mathrm{ICC} = \frac{\tau_{00}}{\tau_{00} + \ln(1 + 1/\lambda)}"
    ref = MODELS["epil_offset"]
    (sentence,) = glmm_icc_sentences(ref["icc_adjusted"], record, "Epilepsy", labels("en"))
    text = MarkdownWriter().render(sentence)
    tau = apa.estimate(ref["variance_components"]["var.random"], digits=4)
    level1 = apa.estimate(ref["variance_components"]["var.distribution"], digits=4)
    assert f"ICC = {tau} / ({tau} + {level1}) = {apa.proportion(ref['icc_adjusted'])}" in text
    assert "latent scale" in text


@pytest.mark.parametrize("language, words", [("en", ["probit", "no OR"]), ("zh", ["probit", "不报告 OR"])])
def test_a_probit_model_has_no_ratios(language, words):
    view = view_of("contraception_probit", language)
    ref = MODELS["contraception_probit"]
    assert view["ratio"] is None and all(row["ratio"] == "" for row in view["fixed"])
    assert view["equations"].combined.lhs.latex == r"\Phi^{-1}(p_{ij})"
    assert [row["estimate"] for row in view["fixed"]] == [apa.estimate(v) for v in ref["fixef"].values()]
    for word in words:
        assert word in view["fixed_note"]
    # pnorm of the intercept: the predicted probability with every predictor at 0 in a typical district
    probability = 0.5 * (1 + math.erf(ref["fixef"]["(Intercept)"] / math.sqrt(2)))
    assert f"p = {apa.estimate(probability)}" in paragraph(view)


def test_the_side_by_side_table_of_glmms_has_z_ratios_and_no_sigma2():
    L = labels("en")
    records = {"a": record_of("epil_offset")}
    views = {"a": glmm_model_view("a", records["a"], "A", {}, {"variables": []}, L)}
    table = summary_table(records, views, L)
    (model,) = table["models"]
    assert (model["estimate_header"], model["stat_header"], model["ratio_header"]) == ("Log rate (SE)", "z", "IRR 95% CI")
    assert table["all_glmm"] and table["ratio"]
    labels_shown = [row["label"] for row in table["random"]]
    assert "σ²" not in labels_shown and labels_shown[0] == "Level-1 variance (latent scale, ln(1 + 1/λ))"
    intercept = table["fixed"][0]["cells"][0]
    assert intercept["df"] == apa.stat(MODELS["epil_offset"]["z"]["(Intercept)"])


def test_a_binary_outcome_fitted_as_linear_is_warned_in_the_report(tmp_path):
    frame, _ = prepare(read_data(FIXTURES / "data" / "contraception_10_districts.sav"), "district", {})
    spec = {"name": "m", "formula": "use ~ age + (1 | district)", "REML": True, "optimizer": "bobyqa",
            "ddf": "Satterthwaite", "control": {}, "standardized": "none"}
    outputs = {k: tmp_path / f"{k}.{e}" for k, e in (("model", "json"), ("residuals", "parquet"), ("ranef", "parquet"))}
    fit_model(spec, frame, outputs)
    for language in ("en", "zh"):
        view = model_view("m", read_json(outputs["model"]), "M", {}, {"variables": []}, labels(language))
        (warning,) = [w for w in view["warnings"] if "family: binomial" in w]
        assert "use" in warning and "(0, 1)" in warning


def test_a_glmm_with_a_vector_term_reports_the_adjusted_latent_icc():
    record = {"varcorr": [{"grp": "g", "var1": "(Intercept)", "var2": None, "vcov": 0.5, "sdcor": 0.7},
                          {"grp": "g", "var1": "x", "var2": None, "vcov": 0.1, "sdcor": 0.3}],
              "level1_variance": {"value": math.pi ** 2 / 3, "kind": "logit"}}
    (sentence,) = glmm_icc_sentences(0.123, record, "M", labels("en"))
    assert "adjusted ICC on the latent scale (performance::icc) = 0.123" in PlainWriter().render(sentence)


def test_a_count_models_checks_say_whether_zeros_are_inflated():
    # performance::check_zeroinflation(epil_offset): 23 zeros observed, 12 predicted (tests/fixtures/glmm_checks.json)
    zeros = json.loads((FIXTURES / "glmm_checks.json").read_text(encoding="utf-8"))["zeroinflation"]["epil_offset"]
    record = record_of("epil_offset")
    assert "binned_residuals" not in record["checks"]
    sentences = [PlainWriter().render(s) for s in glmm_check_sentences(record, "Epilepsy", labels("en"))]
    assert sentences[0].startswith("Epilepsy is a generalized linear mixed model") and "250 outcomes simulated" in sentences[0]
    assert sentences[-1] == (f"Zero-inflation check (performance::check_zeroinflation): {zeros['observed_zeros']} zeros "
                             f"observed but only {zeros['predicted_zeros']} predicted (ratio "
                             f"{apa.number(zeros['ratio'], 2)}): probable zero inflation.")
    assert any(s.startswith("Dispersion test (DHARMa)") for s in sentences)


@pytest.mark.parametrize("language", ["en", "zh"])
def test_failed_checks_are_warnings(epil, language):
    # performance::check_zeroinflation(m): "Model is underfitting zeros (probable zero-inflation)."
    zeros = json.loads((FIXTURES / "glmm_checks.json").read_text(encoding="utf-8"))["zeroinflation"]["epil_offset"]
    warnings = (epil if language == "en" else view_of("epil_offset", "zh"))["warnings"]
    expected = labels(language)["warnings"]["underfitting"].format(
        observed=apa.integer(zeros["observed_zeros"]), predicted=apa.integer(zeros["predicted_zeros"]))
    assert expected in warnings
    cbpp = view_of("cbpp_laplace", language)      # its checks pass (dispersion ok): nothing to warn of
    assert record_of("cbpp_laplace")["checks"]["dispersion"]["verdict"] == "ok"
    assert not any("DHARMa" in w for w in cbpp["warnings"])
