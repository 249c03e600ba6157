"""Formula -> terms and column names, as R's model.matrix and lme4's findbars give them.

Expected names were printed by R 4.2.2 / lme4 1.1-31 (tests/fixtures/r/formula_names.R):
colnames(model.matrix(~ <rhs>, d)) and lFormula(...)$reTrms$cnms on the same small data frame.
"""
import numpy as np
import pandas as pd
import pytest

from hlm.engine.design import build_design
from hlm.engine.formula import parse_formula
from hlm.errors import DataError, FormulaError, ModelError

DATA = pd.DataFrame({
    "y": np.arange(12, dtype=float) % 5 + np.arange(12) / 7,
    "x": np.linspace(-1, 1, 12),
    "z": np.array([3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8], dtype=float),
    "sex": ["F", "M"] * 6,
    "grade": pd.Categorical(["low", "mid", "high"] * 4, categories=["low", "mid", "high"]),
    "flag": [True, False, False] * 4,
    "g": ["a"] * 6 + ["b"] * 6,
    "h": [1, 2, 3] * 4,
})

FIXED_NAMES = [
    ("y ~ x + (1 | g)", ["(Intercept)", "x"]),
    ("y ~ 0 + x + (1 | g)", ["x"]),
    ("y ~ x - 1 + (1 | g)", ["x"]),
    ("y ~ -1 + sex + (1 | g)", ["sexF", "sexM"]),
    ("y ~ x * z + (1 | g)", ["(Intercept)", "x", "z", "x:z"]),
    ("y ~ x:z + x + (1 | g)", ["(Intercept)", "x", "x:z"]),
    ("y ~ x * sex + (1 | g)", ["(Intercept)", "x", "sexM", "x:sexM"]),
    ("y ~ sex * grade + (1 | g)", ["(Intercept)", "sexM", "grademid", "gradehigh",
                                   "sexM:grademid", "sexM:gradehigh"]),
    ("y ~ x:sex + (1 | g)", ["(Intercept)", "x:sexF", "x:sexM"]),
    ("y ~ flag + (1 | g)", ["(Intercept)", "flagTRUE"]),
    ("y ~ I(x^2) + log(z) + (1 | g)", ["(Intercept)", "I(x^2)", "log(z)"]),
    ("y ~ I(x * 2) + (1 | g)", ["(Intercept)", "I(x * 2)"]),
    ("y ~ factor(h) + (1 | g)", ["(Intercept)", "factor(h)2", "factor(h)3"]),
    ("y ~ (x + z + sex)^2 + (1 | g)", ["(Intercept)", "x", "z", "sexM", "x:z", "x:sexM", "z:sexM"]),
    ("y ~ x + z - z + (1 | g)", ["(Intercept)", "x"]),
    ("y ~ sex/x + (1 | g)", ["(Intercept)", "sexM", "sexF:x", "sexM:x"]),
]


@pytest.mark.parametrize("formula,names", FIXED_NAMES, ids=[f for f, _ in FIXED_NAMES])
def test_fixed_columns_are_named_as_model_matrix(formula, names):
    assert list(build_design(formula, DATA).fixed_names) == names


RANDOM_TERMS = [
    ("y ~ 1 + (1 | g)", [("g", ["(Intercept)"])]),
    ("y ~ x + (x | g)", [("g", ["(Intercept)", "x"])]),
    ("y ~ x + (1 + x | g)", [("g", ["(Intercept)", "x"])]),
    ("y ~ x + (0 + x | g)", [("g", ["x"])]),
    ("y ~ x + (x || g)", [("g", ["(Intercept)"]), ("g", ["x"])]),
    ("y ~ 1 + (1 | g/h)", [("h:g", ["(Intercept)"]), ("g", ["(Intercept)"])]),
    ("y ~ 1 + (1 | g:h)", [("g:h", ["(Intercept)"])]),
    ("y ~ 1 + (1 | g) + (1 | h)", [("h", ["(Intercept)"]), ("g", ["(Intercept)"])]),
    ("y ~ 1 + (0 + sex | g)", [("g", ["sexF", "sexM"])]),
]


@pytest.mark.parametrize("formula,terms", RANDOM_TERMS, ids=[f for f, _ in RANDOM_TERMS])
def test_random_terms_in_lme4_order(formula, terms):
    design = build_design(formula, DATA)
    assert [(t.group, list(t.columns)) for t in design.terms] == terms


def test_nested_factor_levels_are_observed_combinations():
    term = build_design("y ~ 1 + (1 | g:h)", DATA).terms[0]
    assert term.levels == ("a:1", "a:2", "a:3", "b:1", "b:2", "b:3")


def test_rank_deficient_column_is_dropped_with_lme4s_message():
    data = DATA.assign(x2=DATA.x * 2)
    design = build_design("y ~ x + x2 + (1 | g)", data)
    assert list(design.fixed_names) == ["(Intercept)", "x"]
    assert design.messages[0].startswith("fixed-effect model matrix is rank deficient so dropping 1 column")


def test_missing_rows_are_dropped_and_counted():
    data = DATA.copy()
    data.loc[[0, 3], "x"] = np.nan
    data.loc[5, "g"] = None
    design = build_design("y ~ x + (1 | g)", data)
    assert design.n == 9 and design.n_dropped_rows == 3


BAD_FORMULAS = [
    ("y ~ x + (1 | g", FormulaError, "position"),
    ("y ~ x $ z + (1 | g)", FormulaError, "position 7"),
    ("x + (1 | g)", FormulaError, "needs a response"),
    ("y ~ xx + (1 | g)", FormulaError, "did you mean 'x'"),
    ("y ~ x + (1 | gg)", FormulaError, "column 'gg' not in data"),
    ("y ~ x", FormulaError, "use OLS"),
    ("sex ~ x + (1 | g)", DataError, "not numeric"),
    ("y ~ x + (1 | one)", ModelError, "only 1 level"),
    ("y ~ foo(x) + (1 | g)", FormulaError, "not supported"),
]


@pytest.mark.parametrize("formula,error,text", BAD_FORMULAS, ids=[f for f, _, _ in BAD_FORMULAS])
def test_bad_formulas_name_the_problem(formula, error, text):
    with pytest.raises(error, match=text.replace("(", r"\(").replace("$", r"\$")):
        build_design(formula, DATA.assign(one="k"))


def test_a_removed_term_still_drops_its_missing_rows():
    # R: nrow(model.frame(y ~ x + z - z, d)) drops rows where z is NA, though z is no term
    data = DATA.copy()
    data.loc[2, "z"] = np.nan
    design = build_design("y ~ x + z - z + (1 | g)", data)
    assert list(design.fixed_names) == ["(Intercept)", "x"]
    assert design.n == 11 and design.n_dropped_rows == 1 and 2 not in design.rows


def test_every_row_missing_is_an_error():
    with pytest.raises(DataError, match="nothing to fit"):
        build_design("y ~ x + (1 | g)", DATA.assign(x=np.nan))


def test_names_in_any_script_as_r_allows():
    # R: colnames(model.matrix(~ 家庭, d)) is "(Intercept)" "家庭"
    data = DATA.rename(columns={"y": "成绩", "x": "家庭", "g": "学校"})
    design = build_design("成绩 ~ 家庭 + (1 | 学校)", data)
    assert list(design.fixed_names) == ["(Intercept)", "家庭"] and design.terms[0].group == "学校"


def test_parse_keeps_r_text_of_calls():
    formula = parse_formula("log(y) ~ I(x^2) + (1 | g)")
    assert formula.response.label == "log(y)"
    assert formula.fixed.terms[0][0].label == "I(x^2)"
