"""What a coefficient holds fixed, as the report says it: in a model with an interaction a main effect
is conditional (on the moderator at 0, near its mean, or at its reference category), and an intercept
whose 0 lies outside a predictor's observed range is called an extrapolation. Models fitted here
by hlm to the fixtures' data; the numbers beside the words are lme4's (report_wording_lme4.json,
tests/fixtures/r/ref_report_wording.R; hsb_lme4.json for HSB)."""
import json

import pytest
from conftest import FIXTURES, ROOT, load_reference

import hlm
from hlm.data import prepare, read_data
from hlm.escape import markdown_text
from hlm.labels import labels
from hlm.report import apa
from hlm.report.glmm_views import glmm_model_view
from hlm.report.models import model_view
from hlm.report.writers import MarkdownWriter, PlainWriter
from hlm.results.records import glmm_record, model_record

REF = json.loads((FIXTURES / "report_wording_lme4.json").read_text(encoding="utf-8"))
HSB = load_reference("hsb_lme4.json")["models"]
NAMES = {"en": {"mathach": "Mathematics achievement", "ses": "SES", "disclim": "Disciplinary climate",
                "year": "Year", "lowinc": "Low-income share", "female": "Sex", "age": "Age",
                "urban": "Urban residence", "livch": "Living children", "(Intercept)": "Intercept"},
         "zh": {"ses": "社会经济地位", "disclim": "纪律氛围", "year": "年份", "lowinc": "低收入比例",
                "urban": "城市居住", "age": "年龄", "(Intercept)": "截距"}}


def spec(name, formula, **glmm):
    base = {"name": name, "formula": formula, "REML": False, "optimizer": "bobyqa", "ddf": "Satterthwaite",
            "control": {}, "standardized": "none"}
    if glmm:
        base.update(ddf=None, optimizer=None, nAGQ=1, weights=None, link="logit", **glmm)
    return base


def lmm(formula, path, group, categorical=None):
    frame, summary = prepare(read_data(path), group, {}, categorical=categorical)
    record = json.loads(json.dumps(model_record(hlm.lmer(formula, frame, REML=False), spec("m", formula))))
    return record, summary


@pytest.fixture(scope="module")
def hsb():
    return lmm("mathach ~ 1 + ses + disclim + ses:disclim + (1 + ses | id)", ROOT / "data" / "hsb.sav", "id")


@pytest.fixture(scope="module")
def lowinc():
    return lmm(REF["eg_lowinc"]["formula"], FIXTURES / "data" / "egsingle_8_schools.sav", "childid")


@pytest.fixture(scope="module")
def female():
    return lmm(REF["eg_female"]["formula"], FIXTURES / "data" / "egsingle_8_schools.sav", "childid",
               categorical={"female": {}})


@pytest.fixture(scope="module")
def moderated():
    formula = REF["contraception_moderated"]["formula"]
    frame, summary = prepare(read_data(FIXTURES / "data" / "Contraception.csv"), "district", {},
                             categorical={"urban": {}, "livch": {}})
    fit = hlm.glmer(formula, frame, family="binomial")
    record = json.loads(json.dumps(glmm_record(fit, spec("m", formula, family="binomial"))))
    return record, summary


def view(fitted, language="en"):
    record, summary = fitted
    build = glmm_model_view if record.get("family") else model_view
    return build("m", record, "Model", NAMES[language], summary, labels(language))


def paragraph(v, writer=PlainWriter()):
    return " ".join(writer.render(s) for s in v["narrative"])


def test_a_cross_level_interactions_main_effects_are_conditional_on_the_other_at_0(hsb):
    v = view(hsb)
    ses, disclim = apa.estimate(HSB["full"]["fixef"]["ses"]), apa.estimate(HSB["full"]["fixef"]["disclim"])
    said = paragraph(v)
    # disclim is not centred, but its mean over the rows is close to 0: said so, with the mean
    assert (f"the mean slope of the level-1 predictor SES where Disciplinary climate = 0 (near its mean, -0.0151), "
            f"γ₁₀ = {ses}") in said
    assert (f"the effect of the level-2 predictor Disciplinary climate on the intercept where SES = 0 "
            f"(near its mean, 0.000143), γ₀₁ = {disclim}") in said
    assert "In a model with an interaction a main effect is conditional: the coefficient of SES is its effect " \
           "where Disciplinary climate = 0" in v["fixed_note"]
    assert "extrapolation" not in said + v["fixed_note"]          # every 0 is inside its range
    zh = view(hsb, "zh")
    assert "纪律氛围 = 0（接近其均值 -0.0151） 时层1预测变量 社会经济地位 的平均斜率" in paragraph(zh)
    assert "含交互项的模型中，主效应是条件效应" in zh["fixed_note"]


def test_a_moderator_whose_0_is_out_of_range_makes_the_slope_and_intercept_extrapolations(lowinc):
    v = view(lowinc)
    low, high = (apa.estimate(x) for x in REF["eg_lowinc"]["lowinc_range"])
    said = paragraph(v)
    assert (f"the mean slope of the level-1 predictor Year where Low-income share = 0 (outside its observed range, "
            f"{low} to {high}: an extrapolation), γ₁₀ = {apa.estimate(REF['eg_lowinc']['fixef']['year'])}") in said
    assert f"0 lies outside the observed range of Low-income share ({low} to {high}), so the intercept" in said
    assert "so the intercept and predictions at 0 are extrapolations" in v["fixed_note"]
    zh = view(lowinc, "zh")
    assert f"低收入比例 = 0（超出其观测范围 {low} 至 {high}，是外推） 时层1预测变量 年份 的平均斜率" in paragraph(zh)
    assert f"而 低收入比例（{low} 至 {high}） 的 0 在观测范围之外" in zh["fixed_note"]


def test_a_factor_moderator_holds_its_reference_category(female):
    v = view(female)
    year = apa.estimate(REF["eg_female"]["fixef"]["year"])
    said = paragraph(v)
    assert ("the mean slope of the level-1 predictor Year where Sex is at its reference category Female, "
            f"γ₁₀ = {year}") in said
    assert "the difference of Sex = Male from the reference category Female where Year = 0" in said
    assert "the difference of the slope of Year for Sex = Male from that for the reference category Female" in said


def test_a_glmms_odds_ratios_are_conditional_too(moderated):
    v = view(moderated)
    ref = REF["contraception_moderated"]
    said = paragraph(v)
    odds = apa.estimate(ref["odds_ratio"]["age"])
    assert (f"the mean slope of the level-1 predictor Age where Urban residence is at its reference category N, "
            f"γ₁₀ = {apa.estimate(ref['fixef']['age'])}") in said
    assert f"each one-unit increase in Age multiplies the odds by {odds}" in said
    assert "lower) where Urban residence is at its reference category N" in said
    assert f"the odds for Urban residence = Y are {apa.estimate(ref['odds_ratio']['urbanY'])} times those of the " \
           "reference category N where Age = 0" in said
    assert "the coefficient of Age (and its OR) is its effect where Urban residence is at its reference category N" \
        in v["fixed_note"]
    assert "σ²" not in v["fixed_note"] + v["random_note"] and " t " not in v["fixed_note"]
    assert "城市居住 为参照类别“N” 时，年龄 每增加 1 个单位" in paragraph(view(moderated, "zh"))


def test_labels_with_markup_stay_text_in_the_conditions(hsb):
    record, summary = hsb
    names = {**NAMES["en"], "disclim": "*climate* {x} <b>"}
    v = model_view("m", record, "Model", names, summary, labels("en"))
    said = paragraph(v, MarkdownWriter())
    assert f"where {markdown_text(names['disclim'])} = 0" in said and "\\<b>" in said
