"""Equations in the seed's γ/β/u/r notation, generated from model records (table-driven).

Each case: formula -> the level-1, level-2 and combined equations in LaTeX, from the terms and
variable levels the design records (summary.terms_dict, through JSON as the report reads them)
on the HSB data. The seed's three models are written exactly as the seed writes them (its
equations (2)-(4), (9) and the full model's).
"""
import io
import json
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
import zipfile

import numpy as np
import pandas as pd
import pytest
from conftest import FIXTURES, hsb_frame
from docx import Document

import hlm
from hlm.escape import code_span
from hlm.data import prepare, read_data
from hlm.engine.design import build_design
from hlm.inference.summary import terms_dict
from hlm.pipeline.config import check_config, model_specs
from hlm.report.docx import docx_bytes
from hlm.report.equations import group_of, latex_name, model_equations, random_terms_of
from hlm.report.inputs import Results
from hlm.report.render import render_html, render_markdown
from hlm.report.view import build_view
from hlm.results.records import model_record
from hlm.results.writers import jsonable


@pytest.fixture(scope="module")
def hsb():
    """hsb.sav with the centred columns, a string factor sex (F, M) and sector_s (catholic,
    public), and ses2: the school mean of ses, constant within schools, named like ses."""
    frame = hsb_frame()
    frame["sex"] = np.where(frame.female == 1, "F", "M")
    frame["sector_s"] = np.where(frame.sector == 1, "catholic", "public")
    frame["ses2"] = frame.ses_mean
    return frame


def equations_of(formula, frame):
    """model_equations on the record of the design (random terms as VarCorr lists them)."""
    design = build_design(formula, frame)
    record = json.loads(json.dumps(terms_dict(design)))
    random_terms = {}
    for term in design.terms:
        random_terms.setdefault(term.group, []).extend(term.columns)
    return model_equations(record["response"], list(design.fixed_names), record["terms"],
                           record["variables"], list(random_terms.items()), nested_in=record["nested_in"])


CASES = {
    "seed null model": (
        "mathach ~ 1 + (1 | id)",
        [r"Y_{ij}(\mathrm{mathach}) = \beta_{0j} + r_{ij}"],
        [r"\beta_{0j} = \gamma_{00} + u_{0j}"],
        r"Y_{ij}(\mathrm{mathach}) = \gamma_{00} + u_{0j} + r_{ij}"),
    "seed random-slope model": (
        "mathach ~ 1 + ses + (1 + ses | id)",
        [r"Y_{ij}(\mathrm{mathach}) = \beta_{0j} + \beta_{1j}X_{ij}(\mathrm{ses}) + r_{ij}"],
        [r"\beta_{0j} = \gamma_{00} + u_{0j}", r"\beta_{1j} = \gamma_{10} + u_{1j}"],
        r"Y_{ij}(\mathrm{mathach}) = \gamma_{00} + \gamma_{10}X_{ij}(\mathrm{ses}) + u_{0j} + u_{1j}X_{ij}(\mathrm{ses}) + r_{ij}"),
    "seed full model (cross-level interaction)": (
        "mathach ~ 1 + ses + disclim + ses:disclim + (1 + ses | id)",
        [r"Y_{ij}(\mathrm{mathach}) = \beta_{0j} + \beta_{1j}X_{ij}(\mathrm{ses}) + r_{ij}"],
        [r"\beta_{0j} = \gamma_{00} + \gamma_{01}W_{j}(\mathrm{disclim}) + u_{0j}",
         r"\beta_{1j} = \gamma_{10} + \gamma_{11}W_{j}(\mathrm{disclim}) + u_{1j}"],
        r"Y_{ij}(\mathrm{mathach}) = \gamma_{00} + \gamma_{10}X_{ij}(\mathrm{ses}) + \gamma_{01}W_{j}(\mathrm{disclim})"
        r" + \gamma_{11}X_{ij}(\mathrm{ses})W_{j}(\mathrm{disclim}) + u_{0j} + u_{1j}X_{ij}(\mathrm{ses}) + r_{ij}"),
    "seed contextual model: fixed slope, group mean at level 2": (
        "mathach ~ ses_cwc + ses_mean + (1 | id)",
        [r"Y_{ij}(\mathrm{mathach}) = \beta_{0j} + \beta_{1j}X_{ij}(\mathrm{ses\_cwc}) + r_{ij}"],
        [r"\beta_{0j} = \gamma_{00} + \gamma_{01}W_{j}(\mathrm{ses\_mean}) + u_{0j}", r"\beta_{1j} = \gamma_{10}"],
        r"Y_{ij}(\mathrm{mathach}) = \gamma_{00} + \gamma_{10}X_{ij}(\mathrm{ses\_cwc}) + \gamma_{01}W_{j}(\mathrm{ses\_mean}) + u_{0j} + r_{ij}"),
    "two level-1 and two level-2 predictors, uncorrelated slopes (||)": (
        "mathach ~ ses * female + sector + disclim + (ses || id)",
        [r"Y_{ij}(\mathrm{mathach}) = \beta_{0j} + \beta_{1j}X_{1ij}(\mathrm{ses}) + \beta_{2j}X_{2ij}(\mathrm{female})"
         r" + \beta_{3j}X_{1ij}(\mathrm{ses})X_{2ij}(\mathrm{female}) + r_{ij}"],
        [r"\beta_{0j} = \gamma_{00} + \gamma_{01}W_{1j}(\mathrm{sector}) + \gamma_{02}W_{2j}(\mathrm{disclim}) + u_{0j}",
         r"\beta_{1j} = \gamma_{10} + u_{1j}", r"\beta_{2j} = \gamma_{20}", r"\beta_{3j} = \gamma_{30}"],
        None),
    "random slope without a fixed slope, no fixed intercept": (
        "mathach ~ 0 + disclim + (1 + ses | id)",
        [r"Y_{ij}(\mathrm{mathach}) = \beta_{0j} + \beta_{1j}X_{ij}(\mathrm{ses}) + r_{ij}"],
        [r"\beta_{0j} = \gamma_{01}W_{j}(\mathrm{disclim}) + u_{0j}", r"\beta_{1j} = u_{1j}"],
        r"Y_{ij}(\mathrm{mathach}) = \gamma_{01}W_{j}(\mathrm{disclim}) + u_{0j} + u_{1j}X_{ij}(\mathrm{ses}) + r_{ij}"),
    "a level-2 variable whose name starts with a level-1 one's (ses2, school mean of ses)": (
        "mathach ~ ses + ses2 + (1 | id)",
        [r"Y_{ij}(\mathrm{mathach}) = \beta_{0j} + \beta_{1j}X_{ij}(\mathrm{ses}) + r_{ij}"],
        [r"\beta_{0j} = \gamma_{00} + \gamma_{01}W_{j}(\mathrm{ses2}) + u_{0j}", r"\beta_{1j} = \gamma_{10}"],
        r"Y_{ij}(\mathrm{mathach}) = \gamma_{00} + \gamma_{10}X_{ij}(\mathrm{ses}) + \gamma_{01}W_{j}(\mathrm{ses2}) + u_{0j} + r_{ij}"),
    "factors: a level-1 dummy in an interaction, a level-2 dummy": (
        "mathach ~ ses * sex + sector_s + (1 | id)",
        [r"Y_{ij}(\mathrm{mathach}) = \beta_{0j} + \beta_{1j}X_{1ij}(\mathrm{ses}) + \beta_{2j}X_{2ij}(\mathrm{sexM})"
         r" + \beta_{3j}X_{1ij}(\mathrm{ses})X_{2ij}(\mathrm{sexM}) + r_{ij}"],
        [r"\beta_{0j} = \gamma_{00} + \gamma_{01}W_{j}(\mathrm{sector\_spublic}) + u_{0j}",
         r"\beta_{1j} = \gamma_{10}", r"\beta_{2j} = \gamma_{20}", r"\beta_{3j} = \gamma_{30}"],
        None),
    "computed variables take the level of their own values": (
        "mathach ~ I(ses^2) + I(ses_mean^2) + (1 | id)",
        [r"Y_{ij}(\mathrm{mathach}) = \beta_{0j} + \beta_{1j}X_{ij}(\mathrm{I(ses}^{\mathrm{2}}\mathrm{)}) + r_{ij}"],
        [r"\beta_{0j} = \gamma_{00} + \gamma_{01}W_{j}(\mathrm{I(ses\_mean}^{\mathrm{2}}\mathrm{)}) + u_{0j}",
         r"\beta_{1j} = \gamma_{10}"],
        None),
}


@pytest.mark.parametrize("case", CASES)
def test_two_level_equations(hsb, case):
    formula, level1, level2, combined = CASES[case]
    equations = equations_of(formula, hsb)
    assert equations.two_level and equations.group == "id"
    assert [eq.plain_latex for eq in equations.level1] == level1
    assert [eq.plain_latex for eq in equations.level2] == level2
    if combined is not None:
        assert equations.combined.plain_latex == combined


def test_symbols_and_roles_of_the_seeds_full_model(hsb):
    equations = equations_of(CASES["seed full model (cross-level interaction)"][0], hsb)
    assert {k: v.text for k, v in equations.fixed_symbols.items()} == {
        "(Intercept)": "γ₀₀", "ses": "γ₁₀", "disclim": "γ₀₁", "ses:disclim": "γ₁₁"}
    assert equations.roles == {"(Intercept)": "intercept", "ses": "level1", "disclim": "level2",
                               "ses:disclim": "cross"}
    variances = {k: v.text for k, v in equations.variance_symbols.items()}
    assert variances[("id", "(Intercept)", None)] == "τ₀₀"
    assert variances[("id", "ses", None)] == "τ₁₁"
    assert variances[("id", "(Intercept)", "ses")] == "ρ₀₁"
    assert variances[("Residual", None, None)] == "σ²"
    assert equations.combined.rhs.text == ("γ₀₀ + γ₁₀Xᵢⱼ(ses) + γ₀₁Wⱼ(disclim) + γ₁₁Xᵢⱼ(ses)Wⱼ(disclim)"
                                           " + u₀ⱼ + u₁ⱼXᵢⱼ(ses) + rᵢⱼ")


def test_mathml_is_well_formed_and_names_are_text(hsb):
    equations = equations_of(CASES["seed contextual model: fixed slope, group mean at level 2"][0], hsb)
    for which in ("level1", "level2", "combined"):
        mathml = equations.mathml_block(which)
        root = ET.fromstring(mathml)
        assert root.tag.endswith("math") and root.get("display") == "block"
    texts = [e.text for e in ET.fromstring(equations.mathml_block("combined")).iter()
             if e.tag.endswith("mtext")]
    assert "ses_cwc" in texts and "ses_mean" in texts and "mathach" in texts


def test_markdown_block_is_an_aligned_environment(hsb):
    equations = equations_of(CASES["seed random-slope model"][0], hsb)
    assert equations.latex_block("level2") == (
        "\\begin{aligned}\n\\beta_{0j} &= \\gamma_{00} + u_{0j} \\\\\n"
        "\\beta_{1j} &= \\gamma_{10} + u_{1j}\n\\end{aligned}")


def test_crossed_factors_get_a_combined_equation_only():
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"subject": np.repeat(list("abcdef"), 4), "item": list("wxyz") * 6,
                          "x": rng.standard_normal(24), "y": rng.standard_normal(24)})
    equations = equations_of("y ~ x + (1 | subject) + (1 | item)", frame)
    assert not equations.two_level and equations.level1 == () and equations.level2 == ()
    assert equations.combined.plain_latex == (
        r"Y_{i}(\mathrm{y}) = \gamma_{0} + \gamma_{1}\,\mathrm{x} + u_{0,\mathrm{subject}[i]}"
        r" + u_{0,\mathrm{item}[i]} + e_{i}")


@pytest.mark.parametrize("name, latex", [
    ("ses", r"\mathrm{ses}"), ("ses_cwc", r"\mathrm{ses\_cwc}"), ("I(ses^2)", r"\mathrm{I(ses}^{\mathrm{2}}\mathrm{)}"),
    ("数学成绩", r"\text{数学成绩}"), ("a b", r"\mathrm{a\ b}"),
])
def test_names_are_escaped_for_latex(name, latex):
    assert latex_name(name) == latex


def test_random_terms_from_varcorr_rows():
    # R: as.data.frame(VarCorr(lmer(y ~ ses + (1 | id) + (0 + ses | id))))$grp -> "id", "id.1", "Residual"
    varcorr = [{"grp": "id", "var1": "(Intercept)", "var2": ""}, {"grp": "id.1", "var1": "ses", "var2": ""},
               {"grp": "Residual", "var1": "", "var2": ""}]
    assert random_terms_of(varcorr, {"id": 160}) == [("id", ["(Intercept)", "ses"])]


def test_group_of_a_varcorr_label():
    # R: as.data.frame(VarCorr(lmer(y ~ ses + (1 | id) + (0 + ses | id))))$grp -> "id", "id.1", "Residual"
    assert group_of("id.1") == "id" and group_of("id") == "id" and group_of("Residual") == "Residual"
    assert group_of("wave.2", {"wave.2"}) == "wave.2"  # a factor whose own name ends in .2
    assert group_of("wave.2.1", {"wave.2"}) == "wave.2"


@pytest.fixture(scope="module")
def ses2_report(hsb, tmp_path_factory):
    """The report view of mathach ~ ses + ses2 + (1 | id) as the report step builds it, from
    the model record (through JSON) and the data summary."""
    folder = tmp_path_factory.mktemp("ses2")
    hsb[["id", "mathach", "ses", "ses2"]].to_csv(folder / "hsb.csv", index=False)
    config = check_config({"data": {"path": "hsb.csv", "group": "id"},
                           "models": {"m": "mathach ~ ses + ses2 + (1 | id)"}}, folder)
    frame, summary = prepare(read_data(folder / "hsb.csv"), "id", {})
    spec = model_specs(config)["m"]
    model = hlm.lmer(spec["formula"], frame, REML=spec["REML"], optimizer=spec["optimizer"])
    record = json.loads(json.dumps(jsonable(model_record(model, spec))))
    results = Results(folder, {"configfiles": ["config.yaml"]}, config, summary, {"m": record},
                      comparisons={}, derived={}, figures={}, simple_slopes={})
    return build_view(results, "en")


def test_a_level_2_variable_named_like_a_level_1_one_in_every_format(ses2_report):
    # ses2 is constant within schools: wherever an equation names it, it is W_j(ses2), the
    # level-2 predictor of β_0j, and the text says so, in HTML (MathML), Markdown (LaTeX) and
    # Word (Unicode) alike
    role = "the effect of the level-2 predictor ses2 on the intercept"
    markdown = render_markdown(ses2_report)
    assert r"\beta_{0j} &= \gamma_{00} + \gamma_{01}W_{j}(\mathrm{ses2}) + u_{0j}" in markdown
    assert markdown.count(r"(\mathrm{ses2})") == markdown.count(r"W_{j}(\mathrm{ses2})") == 2
    assert role in markdown

    page = render_html(ses2_report)
    w_ses2 = ('<msub><mi>W</mi><mrow><mi>j</mi></mrow></msub><mo stretchy="false">&#x00028;</mo>'
              "<mtext>ses2</mtext>")
    level2 = re.findall(r'(?s)<math[^>]*display="block">.*?</math>', page)[1]
    assert w_ses2 in level2
    assert page.count("<mtext>ses2</mtext>") == page.count(w_ses2) == 2
    assert role in page

    paragraphs = [p.text for p in Document(io.BytesIO(docx_bytes(ses2_report))).paragraphs]
    text = "\n".join(paragraphs)
    assert any(p.endswith(": β₀ⱼ = γ₀₀ + γ₀₁Wⱼ(ses2) + u₀ⱼ") for p in paragraphs), paragraphs
    assert text.count("(ses2)") == text.count("Wⱼ(ses2)") == 2
    assert role in text


def test_a_power_is_a_superscript_for_pandoc_not_a_hat_accent(tmp_path):
    # pandoc report.md -o report.docx: \hat{} would put an accent over the next letter
    (tmp_path / "m.md").write_text(f"${latex_name('I(Days^2)')}$\n", encoding="utf-8")
    pandoc = shutil.which("pandoc")
    if pandoc is None:
        pytest.skip("needs pandoc")
    subprocess.run([pandoc, str(tmp_path / "m.md"), "-o", str(tmp_path / "m.docx")], check=True)
    with zipfile.ZipFile(tmp_path / "m.docx") as archive:
        xml = archive.read("word/document.xml").decode()
    assert "<m:sSup>" in xml and "<m:acc>" not in xml


def test_crossed_factors_are_indexed_by_their_units():
    # design.csv: 4 raters crossed with the classes, classes nested in schools
    frame = pd.read_csv(FIXTURES / "data" / "design.csv")
    equations = equations_of("y ~ x + (1 | class) + (1 | rater) + (1 | school)", frame)
    assert equations.crossed == ("class", "rater", "school") and not equations.two_level
    assert equations.combined.plain_latex == (
        r"Y_{i}(\mathrm{y}) = \gamma_{0} + \gamma_{1}\,\mathrm{x} + u_{0,\mathrm{class}[i]}"
        r" + u_{0,\mathrm{rater}[i]} + u_{0,\mathrm{school}[i]} + e_{i}")
    assert equations.combined.rhs.text == "γ₀ + γ₁ x + u₀‚class[ᵢ] + u₀‚rater[ᵢ] + u₀‚school[ᵢ] + eᵢ"
    # classes in schools, no crossed factor: the combined model with u^(factor), not called crossed
    nested = equations_of("y ~ x + (1 | class) + (1 | school)", frame)
    assert nested.crossed == () and "u^{(\\mathrm{class})}_{0}" in nested.combined.plain_latex


def test_crossed_factor_names_are_escaped():
    rng = np.random.default_rng(2)
    frame = pd.DataFrame({"a": np.repeat(list("abcdef"), 4), "b": list("wxyz") * 6, "y": rng.standard_normal(24)})
    design = build_design("y ~ 1 + (1 | a) + (1 | b)", frame)
    record = json.loads(json.dumps(terms_dict(design)))
    labels = {"a": "<b>x_1</b>", "b": "$\\begin{x}"}
    equations = model_equations("y", ["(Intercept)"], record["terms"], record["variables"],
                                [("a", ["(Intercept)"]), ("b", ["(Intercept)"])], labels=labels,
                                nested_in=record["nested_in"])
    assert r"u_{0,\mathrm{<b>x\_1</b>}[i]} + u_{0,\mathrm{\$\backslash begin\{x\}}[i]}" in equations.combined.latex
    mathml = equations.combined.rhs.mathml()
    assert "<mtext>&lt;b&gt;x_1&lt;/b&gt;</mtext>" in mathml and "<b>" not in mathml
    ET.fromstring(mathml)


@pytest.fixture(scope="module")
def penicillin_report(tmp_path_factory):
    """The report view of lme4's crossed example, diameter ~ 1 + (1 | plate) + (1 | sample)."""
    folder = tmp_path_factory.mktemp("penicillin")
    shutil.copy(FIXTURES / "data" / "Penicillin.csv", folder / "penicillin.csv")
    config = check_config({"data": {"path": "penicillin.csv", "group": "plate"},
                           "models": {"crossed": "diameter ~ 1 + (1 | plate) + (1 | sample)"}}, folder)
    frame, summary = prepare(read_data(folder / "penicillin.csv"), "plate", {})
    spec = model_specs(config)["crossed"]
    model = hlm.lmer(spec["formula"], frame, REML=spec["REML"], optimizer=spec["optimizer"])
    record = json.loads(json.dumps(jsonable(model_record(model, spec))))
    results = Results(folder, {"configfiles": ["config.yaml"]}, config, summary, {"crossed": record},
                      comparisons={}, derived={}, figures={}, simple_slopes={})
    return {language: build_view(results, language) for language in ("en", "zh")}


def test_a_crossed_design_in_every_format(penicillin_report):
    view = penicillin_report["en"]
    sentence = ("This is a crossed design: the grouping factors {} are not nested in one another, so the model is one "
                "combined equation over the observations i, each random effect indexed by the unit of its factor "
                "that observation i belongs to (e.g. {}).")
    markdown = render_markdown(view)
    assert (r"Y_{i}(\mathrm{diameter}) &= \gamma_{0} + u_{0,\mathrm{plate}[i]} + u_{0,\mathrm{sample}[i]}"
            r" + e_{i}") in markdown
    assert sentence.format(f"{code_span('plate')}, {code_span('sample')}", r"$u_{0,\mathrm{plate}[i]}$") in markdown
    page = render_html(view)
    assert sentence.format("<code>plate</code>, <code>sample</code>", "<math")[:-6] in page
    assert "several grouping factors" not in page and "several grouping factors" not in markdown
    paragraphs = [p.text for p in Document(io.BytesIO(docx_bytes(view))).paragraphs]
    assert sentence.format("plate, sample", "u₀‚plate[ᵢ]") in paragraphs
    assert "Combined model: Yᵢ(diameter) = γ₀ + u₀‚plate[ᵢ] + u₀‚sample[ᵢ] + eᵢ" in paragraphs
    # the variances beside their symbols are lme4's (tests/fixtures/classic_lme4.json, penicillin_crossed)
    random = {(r["group"], r["symbol"].text if r["symbol"] else None): r["variance"] for r in view["models"][0]["random"]}
    assert random == {("plate", "τ(plate)₀₀"): "0.7169", ("sample", "τ(sample)₀₀"): "3.731",
                      ("Residual", "σ²"): "0.3024"}
    zh = render_markdown(penicillin_report["zh"])
    assert f"这是交叉设计：分组因子 {code_span('plate')}、{code_span('sample')} 互不嵌套" in zh
