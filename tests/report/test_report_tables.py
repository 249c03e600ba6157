"""The report's tables and notes as a thesis committee reads them: one name (J) for the number of
groups, the adjusted ICC under its own name, a repeated-measures design's occasions, equal group
sizes said once, notes that render in CommonMark, simple-slopes tables without empty columns, a
GLMM config echo without LMM keys, power and bootstrap sentences that name what they test.
sleepstudy (lme4) fitted here; its numbers against lme4's in classic_lme4.json."""
import io
import json
import shutil
import subprocess

import pytest
from conftest import FIXTURES, load_reference
from docx import Document

import hlm
from hlm.data import prepare, read_data
from hlm.labels import labels
from hlm.pipeline.config import check_config, model_specs
from hlm.report import apa
from hlm.report.docx import docx_bytes
from hlm.report.equations import plain_text
from hlm.report.inputs import Results
from hlm.report.power import power_views
from hlm.report.render import render_html, render_markdown
from hlm.report.sections import _slopes_table, comparison_views
from hlm.report.view import build_view, config_echo
from hlm.report.writers import PlainWriter
from hlm.results.records import model_record
from hlm.results.writers import jsonable

PANDOC = shutil.which("pandoc")
SLEEP = load_reference("classic_lme4.json")["models"]


@pytest.fixture(scope="module")
def sleep_report(tmp_path_factory):
    """sleepstudy as repeated measures (data.time: Days): 18 subjects with 10 occasions each."""
    folder = tmp_path_factory.mktemp("sleep")
    shutil.copy(FIXTURES / "data" / "sleepstudy.csv", folder / "sleep.csv")
    config = check_config({"data": {"path": "sleep.csv", "group": "Subject", "time": "Days"},
                           "models": {"null": "Reaction ~ 1 + (1 | Subject)",
                                      "random_slope": "Reaction ~ Days + (Days | Subject)"}}, folder)
    frame, summary = prepare(read_data(folder / "sleep.csv"), "Subject", {}, time="Days")
    records = {}
    for name, spec in model_specs(config).items():
        model = hlm.lmer(spec["formula"], frame, REML=spec["REML"], optimizer=spec["optimizer"])
        records[name] = json.loads(json.dumps(jsonable(model_record(model, spec))))
    results = Results(folder, {"configfiles": ["config.yaml"]}, config, summary, records,
                      comparisons={}, derived={}, figures={}, simple_slopes={})
    return {language: build_view(results, language) for language in ("en", "zh")}


def rows(view):
    return {row["label"]: row["values"] for row in view["summary"]["random"]}


def test_the_side_by_side_table_counts_groups_as_j_and_names_the_adjusted_icc(sleep_report):
    en, zh = rows(sleep_report["en"]), rows(sleep_report["zh"])
    assert en["J (Subject)"] == zh["J（Subject）"] == ["18", "18"]
    assert "N (Subject)" not in en
    # a random-slope model's ICC is performance's adjusted one: the row says so
    assert en["Adjusted ICC (Nakagawa)"] == zh["校正 ICC（Nakagawa）"]
    assert en["Adjusted ICC (Nakagawa)"][1] == apa.proportion(SLEEP["sleepstudy_slope"]["icc_adjusted"])
    assert en["Observations (occasions)"] == zh["观测数（测量时点）"] == ["180", "180"]


def test_equal_group_sizes_are_one_number(sleep_report):
    said = PlainWriter().render(sleep_report["en"]["data"]["intro"])
    assert "with 10 measurement occasions each." in said and "10 to 10" not in said
    zh = PlainWriter().render(sleep_report["zh"]["data"]["intro"])
    assert "每个单元含 10 个测量时点。" in zh and "10 至 10" not in zh and "。 " not in zh


@pytest.mark.skipif(PANDOC is None, reason="pandoc is not installed")
@pytest.mark.parametrize("language, word", [("en", "Note."), ("zh", "注")])
def test_table_notes_are_emphasised_in_commonmark(sleep_report, language, word):
    markdown = render_markdown(sleep_report[language])
    page = subprocess.run([PANDOC, "-f", "commonmark", "-t", "html"], input=markdown, capture_output=True,
                          text=True, check=True).stdout
    assert page.count(f"<em>{word}</em>") >= 5                        # every table's note
    assert f"*{word}" not in page


def test_html_and_word_notes_italicise_only_the_word(sleep_report):
    assert "<em>Note.</em> df of the fixed-effect t tests" in render_html(sleep_report["en"])
    document = Document(io.BytesIO(docx_bytes(sleep_report["zh"])))
    note = next(p for p in document.paragraphs if p.text.startswith("注："))
    assert note.runs[0].text == "注" and note.runs[0].italic and not note.runs[1].italic


def test_word_holds_text_with_characters_xml_cannot(sleep_report):
    # names and labels come from the data; a control character in one (here \x01 and an ANSI escape)
    # is shown as U+FFFD instead of stopping tables.docx from being written
    view = dict(sleep_report["en"], models=[dict(sleep_report["en"]["models"][0], warnings=["level a\x01b\x1b[31m"])])
    paragraphs = [p.text for p in Document(io.BytesIO(docx_bytes(view))).paragraphs]
    assert "⚠ level a\ufffdb\ufffd[31m" in paragraphs


def slopes_record(kind):
    """A simple-slopes record as hlm.analysis.simple_slopes writes it (numbers as R's, made up)."""
    row = {"Estimate": -0.0235, "Std. Error": 0.00856, "t value": -2.74, "Pr(>|t|)": 0.006,
           "ci_low": -0.0403, "ci_high": -0.0067, "ratio": 0.977, "ratio_low": 0.961, "ratio_high": 0.993}
    if kind == "categorical":
        return {"predictor": "Age", "moderator": "Urban residence", "moderator_kind": "categorical",
                "family": "binomial", "link": "logit", "ratio_name": "odds ratio",
                "slopes": [{**row, "at": "N", "label": "N", "moderator_value": "N", "df": None},
                           {**row, "at": "Y", "label": "Y", "moderator_value": "Y", "df": None}]}
    return {"predictor": "SES", "moderator": "Disciplinary climate", "moderator_kind": "continuous",
            "slopes": [{**row, "at": at, "moderator_value": value, "df": 168.5}
                       for at, value in (("minus_sd", -1.08), ("mean", -0.132), ("plus_sd", 0.812))]}


def test_a_simple_slopes_table_has_no_empty_or_df_column_it_does_not_need():
    L = labels("en")
    glmm = _slopes_table(slopes_record("categorical"), L["diagnostics"], L)
    assert (glmm["has_value"], glmm["has_df"], glmm["statistic"], glmm["moderator_header"]) == (
        False, False, "z", "Urban residence")
    lmm = _slopes_table(slopes_record("continuous"), L["diagnostics"], L)
    assert (lmm["has_value"], lmm["has_df"], lmm["statistic"]) == (True, True, "t")
    assert [r["value"] for r in lmm["rows"]] == ["-1.08", "-0.132", "0.812"]
    assert "The mean and SD of Disciplinary climate are over the observations the model used" in lmm["note"]


def test_a_glmm_configs_echo_has_no_reml_or_ddf():
    config = {"estimation": {"family": "binomial", "REML": True, "optimizer": "bobyqa", "ddf": "Satterthwaite",
                             "control": {}}, "models": {"m": "y ~ x + (1 | g)"}}
    assert config_echo(config, {"m": {"family": "binomial"}})["estimation"] == {
        "family": "binomial", "control": {}}              # glmer's optimizer stages are its own
    mixed = {"m": {"family": "binomial"}, "lm": {"family": None}}
    assert config_echo(config, mixed) == config                # REML and ddf apply to the linear model


class PowerResults:
    def __init__(self, models, comparisons=None):
        curve = [{"size": 20, "nsim": 10, "failed": 0, "messages": [], "power": 0.5, "ci_low": 0.19, "ci_high": 0.81}]
        self.power = {"urban": {"name": "urban", "model": "full", "term": "urbanY", "effect": 0.5, "along": "district",
                                "alpha": 0.05, "nsim": 10, "seed": 1, "method": "z", "curve": curve}}
        self.power_figures = {}
        self.comparisons = comparisons or {}
        self.models = models


def test_power_names_the_term_by_its_label():
    full = {"variables": {"urban": {"kind": "factor", "levels": ["N", "Y"], "reference": "N"}}}
    [view] = power_views(PowerResults({"full": full}), {"full": "Full model"}, labels("en"),
                         {"urban": "Urban residence"})
    said = " ".join(PlainWriter().render(s) for s in view["sentences"])
    assert "the fixed effect Urban residence: Y is tested" in said and "urbanY" not in said
    assert "Urban residence: Y" in PlainWriter().render(view["table_caption"])


def comparison(ri, rs):
    rows = [{"model": "small", "npar": 4, "AIC": 1.0, "BIC": 2.0, "logLik": -1.0, "deviance": 2.0},
            {"model": "big", "npar": 5, "AIC": 1.5, "BIC": 2.5, "logLik": 0.0, "deviance": 0.0, "Chisq": 2.0,
             "Df": 1, "p": 0.157}]
    record = {"models": ["small", "big"], "table": rows, "refitted_with_ML": [],
              "bootstrap": {"method": "PBmodcomp", "seed": 1, "lrt": 2.0, "df": 1, "p_chisq": 0.157,
                            "p_bootstrap": 0.2, "nsim": 100, "failed": 0, "n_positive": 99, "n_extreme": 19}}
    results = PowerResults({"small": ri, "big": rs}, {"big_vs_small": record})
    [view] = comparison_views(results, {}, labels("en"))
    return " ".join(PlainWriter().render(s) for s in view["sentences"])


def test_the_bootstrap_sentence_names_the_boundary_only_when_a_variance_is_tested():
    intercept = [{"grp": "g", "var1": "(Intercept)", "var2": None}, {"grp": "Residual", "var1": None, "var2": None}]
    slope = intercept + [{"grp": "g", "var1": "x", "var2": None}, {"grp": "g", "var1": "(Intercept)", "var2": "x"}]
    assert "a tested variance is 0 in the simpler model, on its boundary" in comparison(
        {"varcorr": intercept}, {"varcorr": slope})
    fixed = comparison({"varcorr": intercept}, {"varcorr": intercept})
    assert "boundary" not in fixed and "differing only in their fixed effects" in fixed


@pytest.mark.parametrize("latex, word", [
    (r"\mathrm{Prob}(Y_{ij} = 1 \mid \beta_{j})", "Prob(Yᵢⱼ = 1 | βⱼ)"),
    (r"\mathrm{logit}(p_{ij}) = \beta_{0j}", "logit(pᵢⱼ) = β₀ⱼ"),
    (r"\Phi^{-1}(p_{ijk})", "Φ⁻¹(pᵢⱼₖ)"), (r"\mathrm{E}(Y_{ij} \mid \pi_{jk})", "E(Yᵢⱼ | πⱼₖ)"),
])
def test_a_glmms_link_equations_read_as_text_in_word(latex, word):
    assert plain_text(latex) == word
