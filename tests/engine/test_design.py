"""What the design knows of its formula: the term of each column (R's assign), each term's label
and variables, each variable's kind and factor levels, and the level at which it varies.

Terms, columns, assign and levels are R's: tests/fixtures/r/design_terms.R wrote them (R 4.2.2)
to tests/fixtures/design_terms.json, from model.matrix() and terms() on the model frame of
tests/fixtures/data/design.csv (24 pupils in 6 classes in 3 schools; 4 raters crossed with the
classes; x varies within classes, w is constant within classes, z and sector within schools,
rq within raters).
"""
import pandas as pd
import pytest
from conftest import FIXTURES, load_reference

from hlm.engine.design import build_design

DATA = pd.read_csv(FIXTURES / "data" / "design.csv")
R_TERMS = load_reference("design_terms.json")["formulas"]


@pytest.mark.parametrize("r", R_TERMS, ids=[r["formula"] for r in R_TERMS])
def test_terms_columns_and_assign_are_rs(r):
    # R: attr(terms(mf), "term.labels"), colnames(X), attr(X, "assign"),
    #    X <- model.matrix(terms(mf), mf), mf <- model.frame(nobars(formula), d)
    design = build_design(r["formula"], DATA)
    assert [term.label for term in design.fixed_terms] == r["term_labels"]
    assert [list(term.variables) for term in design.fixed_terms] == r["term_variables"]
    assert list(design.fixed_names) == r["columns"]
    assert list(design.assign) == r["assign"]
    for k, term in enumerate(design.fixed_terms):
        assert design.term_columns(k) == tuple(c for c, a in zip(r["columns"], r["assign"]) if a == k + 1)


@pytest.mark.parametrize("r", R_TERMS, ids=[r["formula"] for r in R_TERMS])
def test_variable_kinds_and_factor_levels_are_rs(r):
    # R: attr(terms(mf), "dataClasses"); levels(factor(mf[[v]])) of each non-numeric variable
    design = build_design(r["formula"], DATA)
    in_terms = {label for term in design.fixed_terms for label in term.variables}
    expected = {v: info for v, info in (r["variables"] or {}).items() if v in in_terms}
    assert [v.label for v in design.variables] == list(expected)
    for label, info in expected.items():
        variable = design.variable(label)
        assert variable.kind == ("numeric" if info["class"] == "numeric" else "factor")
        assert variable.levels == (None if info["levels"] is None else tuple(info["levels"]))
        assert variable.reference == (None if info["levels"] is None else info["levels"][0])


LEVELS = [
    # formula, {variable: (grouping factors it is constant within, level)}
    ("y ~ x + w + z + (1 | class)",
     {"x": ((), 1), "w": (("class",), 2), "z": (("class",), 2)}),
    ("y ~ x * w + z + sector + (1 | school/class)",            # lme4's terms: class:school, school
     {"x": ((), 1), "w": (("class:school",), 2), "z": (("class:school", "school"), 3),
      "sector": (("class:school", "school"), 3)}),
    ("y ~ x + w + z + (1 | class) + (1 | school)",             # classes named uniquely: nested too
     {"x": ((), 1), "w": (("class",), 2), "z": (("class", "school"), 3)}),
    ("y ~ x + w + rq + (1 | class) + (1 | rater)",             # crossed: a rater is no level up
     {"x": ((), 1), "w": (("class",), 2), "rq": (("rater",), 1)}),
    ("y ~ z + (0 + x | school)",                               # a random slope's variable too
     {"z": (("school",), 2), "x": ((), 1)}),
    ("y ~ x * sex + I(w^2) + (1 + x | class)",                 # a computed variable by its values
     {"x": ((), 1), "sex": ((), 1), "I(w^2)": (("class",), 2)}),
]


@pytest.mark.parametrize("formula, expected", LEVELS, ids=[f for f, _ in LEVELS])
def test_the_level_of_each_variable(formula, expected):
    design = build_design(formula, DATA)
    assert {v.label: (v.constant_within, v.level) for v in design.variables} == expected


def test_data_columns_are_those_of_rs_model_frame():
    # R: names(model.frame(y ~ x + z - z, d)) is y, x, z: a removed term's column is read too
    design = build_design("y ~ x + z - z + (1 | class)", DATA)
    assert design.data_columns == ("y", "x", "z", "class")
    assert build_design("y ~ I(w^2) + (x | school/class)", DATA).data_columns == ("y", "w", "x", "school", "class")
