"""What the report says a 0 or a tested parameter is, for designs where a name alone misleads:
group-mean-centred columns against group means (both derived from one variable), a model without
an intercept, and bootstrap comparisons whose models differ only in a covariance or in lme4's label
of a repeated grouping factor. Built from record-shaped dicts: these are the rules of the words,
not numbers."""
from hlm.labels import labels
from hlm.report.conditions import intercept_note, zero_of
from hlm.report.sections import _bootstrap_sentence
from hlm.report.writers import PlainWriter

C = labels("en")["conditions"]
NAMES = {"ses_cwc": "SES (group-mean centred)", "ses_mean": "SES (group mean)", "size": "School size"}
SUMMARY = {"variables": [
    {"name": "ses_cwc", "derived_from": "ses", "centering": "group", "min": -2.0, "max": 2.0, "mean": 0.0, "sd": 0.7},
    {"name": "ses_mean", "derived_from": "ses", "centering": "group", "min": 0.5, "max": 1.5, "mean": 1.0, "sd": 0.3},
    {"name": "size", "min": 113.0, "max": 1486.0, "mean": 600.0, "sd": 300.0}]}


def model(fixef, variables):
    return {"fixef": dict.fromkeys(fixef, 0.0), "variables": {v: {"kind": "numeric"} for v in variables},
            "terms": [{"label": v, "variables": [v], "columns": [v]} for v in variables]}


def test_a_group_mean_centred_column_is_zero_at_its_group_mean_but_a_group_mean_is_a_number():
    m = model(["(Intercept)", "ses_cwc", "ses_mean"], ["ses_cwc", "ses_mean"])
    assert zero_of("ses_cwc", m, SUMMARY, NAMES, C) == "SES (group-mean centred) = 0 (the mean of its group)"
    assert zero_of("ses_mean", m, SUMMARY, NAMES, C) == (
        "SES (group mean) = 0 (outside its observed range, 0.500 to 1.50: an extrapolation)")


def test_a_group_mean_whose_zero_is_outside_its_range_makes_the_intercept_an_extrapolation():
    m = model(["(Intercept)", "ses_cwc", "ses_mean"], ["ses_cwc", "ses_mean"])
    assert "SES (group mean) (0.500 to 1.50)" in intercept_note(m, SUMMARY, NAMES, C)


def test_a_model_without_an_intercept_gets_no_intercept_note():
    assert intercept_note(model(["size"], ["size"]), SUMMARY, NAMES, C) == ""
    assert "School size" in intercept_note(model(["(Intercept)", "size"], ["size"]), SUMMARY, NAMES, C)


def varcorr(*rows):
    return {"varcorr": [{"grp": g, "var1": a, "var2": b} for g, a, b in rows] + [{"grp": "Residual", "var1": None}]}


def bootstrap_text(a, b):
    boot = {"nsim": 100, "p_bootstrap": 0.04, "n_positive": 99, "failed": 0, "seed": 1}
    return PlainWriter().render(_bootstrap_sentence(boot, [a, b], labels("en")["comparisons"]))


def test_the_boundary_is_mentioned_only_when_a_variance_is_tested():
    slope = varcorr(("g", "(Intercept)", None), ("g", "x", None), ("g", "(Intercept)", "x"))
    uncorrelated = varcorr(("g", "(Intercept)", None), ("g.1", "x", None))
    intercept = varcorr(("g", "(Intercept)", None))
    boundary, fixed = labels("en")["comparisons"]["bootstrap_boundary"], labels("en")["comparisons"]["bootstrap_fixed"]
    assert boundary in bootstrap_text(slope, intercept)            # τ11 tested
    assert boundary not in bootstrap_text(slope, uncorrelated)     # only the correlation differs
    assert fixed not in bootstrap_text(slope, uncorrelated)
    assert fixed in bootstrap_text(intercept, intercept)           # same random effects
