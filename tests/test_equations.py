"""Equations in the seed's γ/β/u/r notation, generated from formulas (table-driven).

Each case: formula, coefficient names (as lme4 names them), random terms (as VarCorr lists them)
-> the level-1, level-2 and combined equations in LaTeX. The seed's three models are written
exactly as the seed writes them (its equations (2)-(4), (9) and the full model's).
"""
import xml.etree.ElementTree as ET

import pytest

from hlm.report.equations import group_of, latex_name, model_equations, random_terms_of

LEVELS = {"mathach": 1, "ses": 1, "female": 1, "ses_cwc": 1, "ses_gmc": 1,
          "disclim": 2, "sector": 2, "ses_mean": 2, "id": "group"}

CASES = {
    "seed null model": (
        "mathach ~ 1 + (1 | id)", ["(Intercept)"], [("id", ["(Intercept)"])],
        [r"Y_{ij}(\mathrm{mathach}) = \beta_{0j} + r_{ij}"],
        [r"\beta_{0j} = \gamma_{00} + u_{0j}"],
        r"Y_{ij}(\mathrm{mathach}) = \gamma_{00} + u_{0j} + r_{ij}"),
    "seed random-slope model": (
        "mathach ~ 1 + ses + (1 + ses | id)", ["(Intercept)", "ses"], [("id", ["(Intercept)", "ses"])],
        [r"Y_{ij}(\mathrm{mathach}) = \beta_{0j} + \beta_{1j}X_{ij}(\mathrm{ses}) + r_{ij}"],
        [r"\beta_{0j} = \gamma_{00} + u_{0j}", r"\beta_{1j} = \gamma_{10} + u_{1j}"],
        r"Y_{ij}(\mathrm{mathach}) = \gamma_{00} + \gamma_{10}X_{ij}(\mathrm{ses}) + u_{0j} + u_{1j}X_{ij}(\mathrm{ses}) + r_{ij}"),
    "seed full model (cross-level interaction)": (
        "mathach ~ 1 + ses + disclim + ses:disclim + (1 + ses | id)",
        ["(Intercept)", "ses", "disclim", "ses:disclim"], [("id", ["(Intercept)", "ses"])],
        [r"Y_{ij}(\mathrm{mathach}) = \beta_{0j} + \beta_{1j}X_{ij}(\mathrm{ses}) + r_{ij}"],
        [r"\beta_{0j} = \gamma_{00} + \gamma_{01}W_{j}(\mathrm{disclim}) + u_{0j}",
         r"\beta_{1j} = \gamma_{10} + \gamma_{11}W_{j}(\mathrm{disclim}) + u_{1j}"],
        r"Y_{ij}(\mathrm{mathach}) = \gamma_{00} + \gamma_{10}X_{ij}(\mathrm{ses}) + \gamma_{01}W_{j}(\mathrm{disclim})"
        r" + \gamma_{11}X_{ij}(\mathrm{ses})W_{j}(\mathrm{disclim}) + u_{0j} + u_{1j}X_{ij}(\mathrm{ses}) + r_{ij}"),
    "seed contextual model: fixed slope, group mean at level 2": (
        "mathach ~ ses_cwc + ses_mean + (1 | id)", ["(Intercept)", "ses_cwc", "ses_mean"],
        [("id", ["(Intercept)"])],
        [r"Y_{ij}(\mathrm{mathach}) = \beta_{0j} + \beta_{1j}X_{ij}(\mathrm{ses\_cwc}) + r_{ij}"],
        [r"\beta_{0j} = \gamma_{00} + \gamma_{01}W_{j}(\mathrm{ses\_mean}) + u_{0j}", r"\beta_{1j} = \gamma_{10}"],
        r"Y_{ij}(\mathrm{mathach}) = \gamma_{00} + \gamma_{10}X_{ij}(\mathrm{ses\_cwc}) + \gamma_{01}W_{j}(\mathrm{ses\_mean}) + u_{0j} + r_{ij}"),
    "two level-1 and two level-2 predictors, uncorrelated slopes (||)": (
        "mathach ~ ses * female + sector + disclim + (ses || id)",
        ["(Intercept)", "ses", "female", "sector", "disclim", "ses:female"],
        [("id", ["(Intercept)", "ses"])],
        [r"Y_{ij}(\mathrm{mathach}) = \beta_{0j} + \beta_{1j}X_{1ij}(\mathrm{ses}) + \beta_{2j}X_{2ij}(\mathrm{female})"
         r" + \beta_{3j}X_{1ij}(\mathrm{ses})X_{2ij}(\mathrm{female}) + r_{ij}"],
        [r"\beta_{0j} = \gamma_{00} + \gamma_{01}W_{1j}(\mathrm{sector}) + \gamma_{02}W_{2j}(\mathrm{disclim}) + u_{0j}",
         r"\beta_{1j} = \gamma_{10} + u_{1j}", r"\beta_{2j} = \gamma_{20}", r"\beta_{3j} = \gamma_{30}"],
        None),
    "random slope without a fixed slope, no fixed intercept": (
        "mathach ~ 0 + disclim + (1 + ses | id)", ["disclim"], [("id", ["(Intercept)", "ses"])],
        [r"Y_{ij}(\mathrm{mathach}) = \beta_{0j} + \beta_{1j}X_{ij}(\mathrm{ses}) + r_{ij}"],
        [r"\beta_{0j} = \gamma_{01}W_{j}(\mathrm{disclim}) + u_{0j}", r"\beta_{1j} = u_{1j}"],
        r"Y_{ij}(\mathrm{mathach}) = \gamma_{01}W_{j}(\mathrm{disclim}) + u_{0j} + u_{1j}X_{ij}(\mathrm{ses}) + r_{ij}"),
}


@pytest.mark.parametrize("case", CASES)
def test_two_level_equations(case):
    formula, coefficients, random_terms, level1, level2, combined = CASES[case]
    equations = model_equations(formula, coefficients, random_terms, LEVELS)
    assert equations.two_level and equations.group == "id"
    assert [eq.plain_latex for eq in equations.level1] == level1
    assert [eq.plain_latex for eq in equations.level2] == level2
    if combined is not None:
        assert equations.combined.plain_latex == combined


def test_symbols_of_the_seeds_full_model():
    equations = model_equations(*CASES["seed full model (cross-level interaction)"][:3], LEVELS)
    assert {k: v.text for k, v in equations.fixed_symbols.items()} == {
        "(Intercept)": "γ₀₀", "ses": "γ₁₀", "disclim": "γ₀₁", "ses:disclim": "γ₁₁"}
    variances = {k: v.text for k, v in equations.variance_symbols.items()}
    assert variances[("id", "(Intercept)", None)] == "τ₀₀"
    assert variances[("id", "ses", None)] == "τ₁₁"
    assert variances[("id", "(Intercept)", "ses")] == "ρ₀₁"
    assert variances[("Residual", None, None)] == "σ²"
    assert equations.combined.rhs.text == ("γ₀₀ + γ₁₀Xᵢⱼ(ses) + γ₀₁Wⱼ(disclim) + γ₁₁Xᵢⱼ(ses)Wⱼ(disclim)"
                                           " + u₀ⱼ + u₁ⱼXᵢⱼ(ses) + rᵢⱼ")


def test_mathml_is_well_formed_and_names_are_text():
    equations = model_equations(*CASES["seed contextual model: fixed slope, group mean at level 2"][:3], LEVELS)
    for which in ("level1", "level2", "combined"):
        mathml = equations.mathml_block(which)
        root = ET.fromstring(mathml)
        assert root.tag.endswith("math") and root.get("display") == "block"
    texts = [e.text for e in ET.fromstring(equations.mathml_block("combined")).iter()
             if e.tag.endswith("mtext")]
    assert "ses_cwc" in texts and "ses_mean" in texts and "mathach" in texts


def test_markdown_block_is_an_aligned_environment():
    equations = model_equations(*CASES["seed random-slope model"][:3], LEVELS)
    assert equations.latex_block("level2") == (
        "\\begin{aligned}\n\\beta_{0j} &= \\gamma_{00} + u_{0j} \\\\\n"
        "\\beta_{1j} &= \\gamma_{10} + u_{1j}\n\\end{aligned}")


def test_crossed_factors_get_a_combined_equation_only():
    equations = model_equations("y ~ x + (1 | subject) + (1 | item)", ["(Intercept)", "x"],
                                [("subject", ["(Intercept)"]), ("item", ["(Intercept)"])], {})
    assert not equations.two_level and equations.level1 == () and equations.level2 == ()
    assert equations.combined.plain_latex == (
        r"Y_{i}(\mathrm{y}) = \gamma_{0} + \gamma_{1}\,\mathrm{x} + u^{(\mathrm{subject})}_{0}"
        r" + u^{(\mathrm{item})}_{0} + r_{i}")


@pytest.mark.parametrize("name, latex", [
    ("ses", r"\mathrm{ses}"), ("ses_cwc", r"\mathrm{ses\_cwc}"), ("I(ses^2)", r"\mathrm{I(ses\hat{}2)}"),
    ("数学成绩", r"\text{数学成绩}"), ("a b", r"\mathrm{a\ b}"),
])
def test_names_are_escaped_for_latex(name, latex):
    assert latex_name(name) == latex


def test_random_terms_from_varcorr_rows():
    varcorr = [{"grp": "id", "var1": "(Intercept)", "var2": ""}, {"grp": "id.1", "var1": "ses", "var2": ""},
               {"grp": "Residual", "var1": "", "var2": ""}]
    assert random_terms_of(varcorr, "y ~ ses + (1 | id) + (0 + ses | id)") == [("id", ["(Intercept)", "ses"])]


def test_group_of_a_varcorr_label():
    # R: as.data.frame(VarCorr(lmer(y ~ ses + (1 | id) + (0 + ses | id))))$grp -> "id", "id.1", "Residual"
    assert group_of("id.1") == "id" and group_of("id") == "id" and group_of("Residual") == "Residual"
    assert group_of("wave.2", {"wave.2"}) == "wave.2"  # a factor whose own name ends in .2
    assert group_of("wave.2.1", {"wave.2"}) == "wave.2"
