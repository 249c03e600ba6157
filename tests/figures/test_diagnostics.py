"""Diagnostic figures: the numbers behind them, Chinese text without missing glyphs, and
byte-identical files on a second run."""
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from conftest import FIXTURES, ROOT

import hlm
from hlm.analysis.simple_slopes import _contrast, choose_interaction, interaction_terms, simple_slopes
from hlm.engine.design import build_design
from hlm.engine.formula import parse_formula
from hlm.figures.diagnostics import ppoints
from hlm.figures.style import cjk_font
from hlm.inference.intervals import Z95
from hlm.pipeline.paths import DIAGNOSTIC_FIGURES, figure_names
from hlm.pipeline.steps import write_diagnostic_figures, write_simple_slopes
from hlm.results.records import model_record, ranef_frame, residuals_frame

FULL = "mathach ~ 1 + ses + disclim + ses:disclim + (1 + ses | id)"
SPEC = {"name": "full", "formula": FULL, "REML": False, "optimizer": "bobyqa", "ddf": "Satterthwaite",
        "control": {}}


@pytest.fixture(scope="module")
def full(models):
    """The seed's full model with the tables the fit step writes."""
    model = models.fit("hsb", "full")
    frame = models.frame("hsb", "full")
    return {"model": model, "frame": frame, "record": model_record(model, SPEC),
            "residuals": residuals_frame(model, frame),
            "ranef": ranef_frame(model)}


def test_conditional_sds_are_lme4s_condvar(full):
    # R: as.data.frame(ranef(lmm_full, condVar = TRUE))$condsd   (tests/fixtures/r/ref_condvar.R)
    reference = json.loads((FIXTURES / "condvar_lme4.json").read_text())["hsb_full"][0]["terms"][0]
    ranef = full["ranef"]
    levels = full["model"].design.terms[0].levels
    for k, term in enumerate(["(Intercept)", "ses"]):
        expected = np.sqrt([matrix[k][k] for matrix in reference])
        rows = ranef[ranef.term == term].set_index("level").loc[[str(level) for level in levels]]
        assert np.allclose(rows["condsd"], expected, rtol=1e-3), term


def test_qq_positions_are_rs_ppoints():
    # R: ppoints(5); ppoints(20)[1:2]
    assert np.allclose(ppoints(5), [0.1190476, 0.3095238, 0.5, 0.6904762, 0.8809524])
    assert np.allclose(ppoints(20)[:2], [0.025, 0.075])


def test_simple_slopes_of_the_seeds_cross_level_interaction(full):
    frame = full["frame"]
    choice = choose_interaction(full["model"].design)
    assert choice == ("ses", "disclim")
    result = simple_slopes(full["model"], *choice, frame)
    fixef = full["model"].fixef
    mean, sd = frame["disclim"].mean(), frame["disclim"].std()
    slopes = {row["at"]: row for row in result["slopes"]}
    for key, value in {"minus_sd": mean - sd, "mean": mean, "plus_sd": mean + sd}.items():
        assert slopes[key]["moderator_value"] == pytest.approx(value)
        assert slopes[key]["Estimate"] == pytest.approx(fixef["ses"] + value * fixef["ses:disclim"])
        assert slopes[key]["ci_low"] < slopes[key]["Estimate"] < slopes[key]["ci_high"]
    assert slopes["plus_sd"]["Estimate"] > slopes["minus_sd"]["Estimate"]  # ses:disclim > 0
    # at disclim = 0 the simple slope is γ10 itself, tested as lmerTest tests it:
    # R: summary(lmm_full)$coefficients["ses", ]  (df 157.4166)
    reference = json.loads((FIXTURES / "hsb_lme4.json").read_text())["models"]["full"]
    L = np.eye(len(fixef))[list(fixef.index).index("ses")]
    at_zero = _contrast(full["model"], L, "Satterthwaite")
    assert at_zero["df"] == pytest.approx(reference["df_satterthwaite"]["ses"], rel=1e-2)
    assert at_zero["Pr(>|t|)"] == pytest.approx(reference["p"]["ses"], rel=1e-2)


def test_interactions_found_in_formulas():
    def interactions(formula):
        return interaction_terms(parse_formula(formula).fixed)
    assert interactions(FULL) == [("ses", "disclim")]
    assert interactions("y ~ a * b + (1 | g)") == [("a", "b")]
    assert interactions("y ~ a + b + (a | g)") == []
    assert figure_names("y ~ a + (1 | g)") == list(DIAGNOSTIC_FIGURES)
    # no main effect of the moderator: no simple slopes (and no figure files for them)
    assert interactions("mathach ~ ses + ses:disclim + (ses | id)") == []
    assert figure_names("y ~ a + a:b + (a | g)") == list(DIAGNOSTIC_FIGURES)


def test_an_interaction_needs_both_main_effects_among_the_coefficients(full):
    aliased = full["frame"].assign(disclim=2 * full["frame"].ses)   # disclim dropped as rank deficient
    assert "disclim" in build_design(FULL, aliased).dropped_columns
    assert choose_interaction(build_design(FULL, aliased)) is None
    assert choose_interaction(full["model"].design) == ("ses", "disclim")


def test_the_level_1_variable_of_a_cross_level_interaction_is_the_predictor(full):
    reversed_order = build_design("mathach ~ disclim * ses + (1 + ses | id)", full["frame"])
    assert choose_interaction(reversed_order) == ("ses", "disclim")
    same_level = build_design("mathach ~ ses * female + (1 | id)", full["frame"])
    assert choose_interaction(same_level) == ("ses", "female")


def test_a_chinese_font_is_available():
    family = cjk_font()
    assert family is not None, "no CJK font: install the package's dependencies (noto-cjk-sans-otc)"
    from matplotlib import font_manager
    from matplotlib.ft2font import FT2Font
    path = font_manager.findfont(font_manager.FontProperties(family=family), fallback_to_default=False)
    font = FT2Font(path)
    for character in "层残差随机效应拟合值正态分位数简单斜率":
        assert font.get_char_index(ord(character)) != 0, character


@pytest.mark.parametrize("language", ["zh", "en"])
def test_figures_render_without_missing_glyphs_and_identically_twice(full, tmp_path, language):
    outputs = {name: tmp_path / f"a_{name.replace('_svg', '.svg').replace('_png', '.png')}"
               for name in DIAGNOSTIC_FIGURES}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        write_diagnostic_figures(full["residuals"], full["ranef"], outputs, language)
    missing = [str(w.message) for w in caught if "missing from" in str(w.message) or "Glyph" in str(w.message)]
    assert missing == []
    first = {name: Path(path).read_bytes() for name, path in outputs.items()}
    write_diagnostic_figures(full["residuals"], full["ranef"], outputs, language)
    assert {name: Path(path).read_bytes() for name, path in outputs.items()} == first
    svg = first["diagnostics_svg"].decode("utf-8")
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg
    assert "<dc:date>" not in svg  # no timestamp
    assert first["diagnostics_png"][:8] == b"\x89PNG\r\n\x1a\n"
    assert b"tEXtSoftware" not in first["diagnostics_png"]


def test_simple_slopes_files(full, tmp_path):
    outputs = {"simple_slopes_svg": tmp_path / "s.svg", "simple_slopes_png": tmp_path / "s.png",
               "simple_slopes_json": tmp_path / "s.json"}
    write_simple_slopes(full["record"], full["frame"], outputs, "zh")
    record = json.loads(outputs["simple_slopes_json"].read_text())
    assert record["available"] and record["predictor"] == "ses" and record["moderator"] == "disclim"
    assert [row["at"] for row in record["slopes"]] == ["minus_sd", "mean", "plus_sd"]
    assert all(row["df"] > 100 for row in record["slopes"])  # Satterthwaite, as lmerTest
    assert outputs["simple_slopes_png"].stat().st_size > 1000


def test_no_interaction_to_probe_writes_a_placeholder(models, tmp_path):
    model = models.fit("hsb", "random_slope")
    frame = models.frame("hsb", "random_slope")
    spec = {**SPEC, "name": "random_slope", "formula": model.formula}
    record = model_record(model, spec)
    outputs = {"simple_slopes_svg": tmp_path / "s.svg", "simple_slopes_png": tmp_path / "s.png",
               "simple_slopes_json": tmp_path / "s.json"}
    write_simple_slopes(record, frame, outputs, "en")
    assert json.loads(outputs["simple_slopes_json"].read_text()) == {"available": False}


def test_simple_slopes_on_the_rows_the_model_used(tmp_path):
    # data.missing: per_model keeps rows with missing values in the analysed table; lmer drops
    # them, and the moderator's mean and SD are those of the rows it used. R: lmerTest's
    # contest1D on the model frame (tests/fixtures/r/ref_simple_slopes.R)
    from hlm.data import prepare, read_data
    reference = json.loads((FIXTURES / "simple_slopes_lme4.json").read_text())
    table, _ = prepare(read_data(ROOT / "data" / "hsb.sav"), "id", {})
    i = np.arange(len(table))
    table.loc[i % 7 == 0, "disclim"] = np.nan
    table.loc[i % 11 == 3, "ses"] = np.nan
    table.loc[i % 13 == 5, "mathach"] = np.nan
    outputs = {"simple_slopes_svg": tmp_path / "s.svg", "simple_slopes_png": tmp_path / "s.png",
               "simple_slopes_json": tmp_path / "s.json"}
    record = model_record(hlm.lmer(FULL, table, REML=False), SPEC)
    write_simple_slopes(record, table, outputs, "en")
    result = json.loads(outputs["simple_slopes_json"].read_text())
    assert result["available"] and (result["predictor"], result["moderator"]) == ("ses", "disclim")
    assert result["moderator_mean"] == pytest.approx(reference["moderator_mean"], rel=1e-9)
    assert result["moderator_sd"] == pytest.approx(reference["moderator_sd"], rel=1e-9)
    for row, ref in zip(result["slopes"], reference["slopes"]):
        assert row["at"] == ref["at"]
        assert row["moderator_value"] == pytest.approx(ref["moderator_value"], rel=1e-9)
        assert row["Estimate"] == pytest.approx(ref["Estimate"], rel=1e-5)
        assert row["Std. Error"] == pytest.approx(ref["Std. Error"], rel=1e-4)
        assert row["df"] == pytest.approx(ref["df"], rel=1e-2)
        assert row["Pr(>|t|)"] == pytest.approx(ref["Pr(>|t|)"], rel=1e-3)
        line = result["lines"][ref["at"]]
        for k, end in zip((0, -1), ref["line_ends"]):
            assert line["x"][k] == pytest.approx(end["x"], rel=1e-9)
            assert line["fit"][k] == pytest.approx(end["fit"], rel=1e-5)
            se = (line["high"][k] - line["low"][k]) / (2 * Z95)
            assert se == pytest.approx(end["se"], rel=1e-4)
