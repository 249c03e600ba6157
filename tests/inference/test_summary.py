"""summary() laid out as lmerTest prints it: the same rows, and every printed number equal to R's
to the last printed digit (tests/fixtures/hsb_lme4_printout.txt, written by r/print_hsb.R)."""
import re

import pytest
from conftest import FIXTURES

PRINTOUT = (FIXTURES / "hsb_lme4_printout.txt").read_text()
NUMBER = re.compile(r"^-?\d+(\.\d+)?(e-?\d+)?$")
SECTIONS = {"null": "summary(lmm_null)", "random_slope": "summary(lmm_random_coef)", "full": "summary(lmm_full)"}


def r_section(title):
    start = PRINTOUT.index(f"## {title}\n")
    end = PRINTOUT.find("\n## ", start + 1)
    return PRINTOUT[start:end if end > 0 else None]


def block(text, heading, stop):
    lines = text.split(heading, 1)[1].splitlines()[1:]
    out = []
    for line in lines:
        if not line.strip() or line.startswith(stop):
            break
        out.append(line)
    return out


def numbers(line):
    return [float(t) for t in line.split() if NUMBER.match(t)]


def assert_same_digits(ours, theirs):
    """Each number equal to R's within one unit of R's last printed digit (or 1e-4 relative, which
    the df column needs: its last digits come from a numerical Hessian, in R as here)."""
    assert len(ours) == len(theirs), (ours, theirs)
    for a, b in zip(ours, theirs):
        assert a == pytest.approx(b, abs=max(1.01 * 10 ** -_decimals(b), 1e-4 * abs(b))), (ours, theirs)


def _decimals(value):
    text = repr(value)
    return len(text.split(".")[1]) if "." in text and "e" not in text else 0


@pytest.mark.parametrize("name", SECTIONS)
def test_summary_rows_match_lmertest(models, name):
    ours = models.fit("hsb", name).summary()
    theirs = r_section(SECTIONS[name])
    assert "Linear mixed model fit by maximum likelihood" in ours
    assert "t-tests use Satterthwaite's method" in ours
    assert "Number of obs: 7185, groups:  id, 160" in ours
    # AIC BIC logLik deviance df.resid
    assert_same_digits(numbers(block(ours, "df.resid", "x")[0]), numbers(block(theirs, "df.resid", "x")[0]))
    # fixed effects: Estimate, Std. Error, df, t value (p printed as < 2e-16 or in e-notation)
    r_rows, our_rows = block(theirs, "Fixed effects:", "---")[1:], block(ours, "Fixed effects:", "---")[1:]
    assert len(our_rows) == len(r_rows)
    for r_line, our_line in zip(r_rows, our_rows):
        assert r_line.split()[0] == our_line.split()[0]
        assert_same_digits(numbers(our_line)[:4], numbers(r_line)[:4])
    # random effects: variances, standard deviations, correlation
    r_rows, our_rows = block(theirs, "Random effects:", "Number")[1:], block(ours, "Random effects:", "Number")[1:]
    assert len(our_rows) == len(r_rows)
    for r_line, our_line in zip(r_rows, our_rows):
        assert_same_digits(numbers(our_line), numbers(r_line))


def test_the_record_carries_terms_and_variable_levels(models):
    # R: attr(terms(lmm_full), "term.labels") is ses, disclim, ses:disclim, each term's columns as
    # attr(model.matrix(lmm_full), "assign") gives them; disclim is constant within schools (id)
    record = models.fit("hsb", "full").to_dict()
    assert record["response"] == "mathach"
    assert record["data_columns"] == ["mathach", "ses", "disclim", "id"]
    assert record["terms"] == [{"label": "ses", "variables": ["ses"], "columns": ["ses"]},
                               {"label": "disclim", "variables": ["disclim"], "columns": ["disclim"]},
                               {"label": "ses:disclim", "variables": ["ses", "disclim"], "columns": ["ses:disclim"]}]
    assert record["variables"] == {"ses": {"kind": "numeric", "level": 1, "constant_within": []},
                                   "disclim": {"kind": "numeric", "level": 2, "constant_within": ["id"]}}


def test_the_record_names_factor_levels_and_the_reference(models):
    # R: levels(model.frame(hsb_categorical)$sex) is "F" "M" (hsb_cat.csv; columns sexM, ses3low, ses3mid)
    record = models.fit("classic", "hsb_categorical").to_dict()
    assert record["variables"]["sex"] == {"kind": "factor", "level": 1, "constant_within": [],
                                          "levels": ["F", "M"], "reference": "F"}
    assert record["variables"]["sector_s"]["level"] == 2
    assert record["variables"]["ses3"]["levels"] == ["high", "low", "mid"]
    assert [t["columns"] for t in record["terms"] if t["label"] == "ses3"] == [["ses3low", "ses3mid"]]
