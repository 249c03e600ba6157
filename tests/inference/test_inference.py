"""Inference against lmerTest / pbkrtest / lme4 reference values (tests/fixtures/*.json).

Tolerances are DESIGN.md's: df within 1e-2 relative, p within 1e-3 relative (or both below
1e-15), fixed effects 1e-5 and standard errors 1e-4 relative, variance parameters 1e-3 relative.
The R calls that produced each value are in the comments (scripts in tests/fixtures/r/).
"""

import numpy as np
import pytest
from conftest import ALL_MODELS, CLASSIC, DF_RTOL, EXTRA, FIXEF_RTOL, HSB, P_RTOL, SE_RTOL, VARPAR_RTOL, reference

import hlm
from hlm.errors import ModelError
from hlm.inference.bootstrap import bootstrap, percentile_interval
from hlm.inference.intervals import confint
from hlm.inference.kenward_roger import kenward_roger_parts
from hlm.inference.satterthwaite import _satterthwaite, satterthwaite_parts
from hlm.inference.type3 import type3_contrasts


def assert_rel(actual, expected, rtol, what):
    assert actual == pytest.approx(expected, rel=rtol, abs=1e-12), f"{what}: {actual} vs R {expected}"


def assert_p(actual, expected, what):
    if actual < 1e-15 and expected < 1e-15:
        return
    assert_rel(actual, expected, P_RTOL, what)


# ---- t-tests: coef_table ------------------------------------------------------------------------

@pytest.mark.parametrize("suite,name", ALL_MODELS)
def test_satterthwaite_coef_table(models, suite, name):
    # R: coef(summary(lmerTest::lmer(formula, data, REML, control = lmerControl(optimizer = "bobyqa"))))
    ref = reference(suite, name)
    table = hlm.coef_table(models.fit(suite, name), ddf="satterthwaite")
    assert list(table.columns) == ["Estimate", "Std. Error", "df", "t value", "Pr(>|t|)"]
    assert list(table.index) == list(ref["fixef"])
    for term in ref["fixef"]:
        row = table.loc[term]
        assert_rel(row["Estimate"], ref["fixef"][term], FIXEF_RTOL, f"{name} {term} estimate")
        assert_rel(row["Std. Error"], ref["se"][term], SE_RTOL, f"{name} {term} SE")
        assert_rel(row["df"], ref["df_satterthwaite"][term], DF_RTOL, f"{name} {term} Satterthwaite df")
        assert_rel(row["t value"], ref["t"][term], SE_RTOL, f"{name} {term} t")
        assert_p(row["Pr(>|t|)"], ref["p"][term], f"{name} {term} p")


@pytest.mark.parametrize("suite,name", ALL_MODELS)
def test_kenward_roger_df(models, suite, name):
    # R: sapply(1:p, function(i) pbkrtest::get_Lb_ddf(m, diag(p)[i, ]))  (an ML fit: pbkrtest
    # takes P and W from its REML refit and vcov(m) of the ML fit itself)
    ref = reference(suite, name)
    table = models.fit(suite, name).coef_table(ddf="kenward-roger")
    for term, df in ref["df_kenward_roger"].items():
        assert_rel(table.loc[term, "df"], df, DF_RTOL, f"{name} {term} Kenward-Roger df")


def test_model_method_delegates(models):
    # R: summary(lmm_full)$coefficients[, "df"]  (the seed's full model)
    table = models.fit("hsb", "full").coef_table(ddf="satterthwaite")
    assert_rel(table.loc["ses:disclim", "df"], HSB["full"]["df_satterthwaite"]["ses:disclim"], DF_RTOL, "df")


@pytest.mark.parametrize("name", ["full", "null"])
def test_residual_df(models, name):
    # R: 2 * pt(abs(t), df.residual(m), lower.tail = FALSE)
    from scipy import stats
    ref = HSB[name]
    table = hlm.coef_table(models.fit("hsb", name), ddf="residual")
    for term, t in ref["t"].items():
        assert table.loc[term, "df"] == ref["df_resid"]
        assert_p(table.loc[term, "Pr(>|t|)"], 2 * stats.t.sf(abs(t), ref["df_resid"]), f"{term} p")


def test_unknown_ddf_is_refused(models):
    with pytest.raises(ModelError, match="ddf 'between-within' is unknown"):
        hlm.coef_table(models.fit("hsb", "null"), ddf="between-within")


def test_cached_inference_parts_are_read_only(models):
    # the Satterthwaite and Kenward-Roger pieces are kept per model: later df read them
    model = models.fit("hsb", "full_reml")
    for parts in (satterthwaite_parts(model), kenward_roger_parts(model)):
        arrays = [v for v in vars(parts).values() if isinstance(v, np.ndarray)] + list(getattr(parts, "P", ()))
        assert len(arrays) >= 4 and not any(a.flags.writeable for a in arrays)


def test_satterthwaite_costs_less_than_a_fit(models):
    # the budget: Satterthwaite df on the HSB full model cost less than one model fit
    model = models.fit("hsb", "full")
    parts = _satterthwaite(model)
    assert parts.evaluations < model.optsummary.evaluations  # seconds: benchmarks/run.py


# ---- F-tests: anova_terms (lmerTest's anova(m), type III) ------------------------------------------

def anova_cases(key):
    cases = [("classic", n, ref[key]) for n, ref in CLASSIC.items() if ref[key] is not None]
    cases += [("hsb", n, ref[key]) for n, ref in EXTRA["models"].items() if ref[key] is not None]
    return cases


@pytest.mark.parametrize("suite,name,rows", anova_cases("anova_type3_satterthwaite"))
def test_anova_terms_satterthwaite(models, suite, name, rows):
    # R: anova(m, type = 3, ddf = "Satterthwaite")
    table = hlm.anova_terms(models.fit(suite, name), ddf="satterthwaite")
    check_anova(table, rows, name)


@pytest.mark.parametrize("suite,name,rows", anova_cases("anova_type3_kr"))
def test_anova_terms_kenward_roger(models, suite, name, rows):
    # R: anova(m, type = 3, ddf = "Kenward-Roger")  (REML fits only in lmerTest)
    table = hlm.anova_terms(models.fit(suite, name), ddf="kenward-roger")
    check_anova(table, rows, name)


def check_anova(table, rows, name):
    assert list(table.index) == [r["term"] for r in rows]
    for r in rows:
        row = table.loc[r["term"]]
        assert row["NumDF"] == r["NumDF"], f"{name} {r['term']} NumDF"
        assert_rel(row["DenDF"], r["DenDF"], DF_RTOL, f"{name} {r['term']} DenDF")
        assert_rel(row["F value"], r["F value"], SE_RTOL, f"{name} {r['term']} F")
        assert_rel(row["Sum Sq"], r["Sum Sq"], VARPAR_RTOL, f"{name} {r['term']} Sum Sq")
        assert_rel(row["Mean Sq"], r["Mean Sq"], VARPAR_RTOL, f"{name} {r['term']} Mean Sq")
        assert_p(row["Pr(>F)"], r["Pr(>F)"], f"{name} {r['term']} p")


def test_type3_contrasts_of_a_three_level_factor_interaction(models):
    # cake: angle ~ recipe * temp; lmerTest's type III hypothesis for recipe is orthogonal to
    # recipe:temp (R: attr(anova(m), "hypotheses")$recipe has 2 rows)
    L = type3_contrasts(models.fit("classic", "cake_factor"))
    assert {k: v.shape[0] for k, v in L.items()} == {"recipe": 2, "temp": 1, "recipe:temp": 2}


# ---- confidence intervals ---------------------------------------------------------------------------

def ci_cases(key):
    cases = [("classic", n, ref[key]) for n, ref in CLASSIC.items()]
    cases += [("hsb", n, ref[key]) for n, ref in EXTRA["models"].items()]
    return cases


def check_interval(model, table, rows, name):
    se = dict(zip(model.design.fixed_names, np.sqrt(np.diag(model.vcov.to_numpy()))))
    assert list(table.index) == [r["name"] for r in rows]
    assert list(table.columns) == ["2.5 %", "97.5 %"]
    for r in rows:
        for column, expected in zip(table.columns, (r["lower"], r["upper"])):
            actual = table.loc[r["name"], column]
            what = f"{name} {r['name']} {column}"
            if expected is None:
                assert np.isnan(actual), what
            elif r["name"] in se:   # a fixed effect: within 1e-4 of its standard error
                assert abs(actual - expected) <= SE_RTOL * se[r["name"]], f"{what}: {actual} vs R {expected}"
            else:
                assert actual == pytest.approx(expected, rel=VARPAR_RTOL, abs=1e-6), f"{what}: {actual} vs R {expected}"


@pytest.mark.parametrize("suite,name,rows", ci_cases("confint_wald"))
def test_confint_wald(models, suite, name, rows):
    # R: confint(m, method = "Wald", oldNames = FALSE)
    model = models.fit(suite, name)
    check_interval(model, hlm.confint(model, method="wald"), rows, name)


@pytest.mark.parametrize("suite,name,rows", ci_cases("confint_profile"))
def test_confint_profile(models, suite, name, rows):
    # R: confint(m, method = "profile", oldNames = FALSE)  (lme4 profiles the ML refit of a REML
    # fit; non-monotone correlation profiles fall back to linear interpolation, as in lme4)
    model = models.fit(suite, name)
    check_interval(model, confint(model, method="profile"), rows, name)


def test_confint_level_and_parm(models):
    # R: confint(m, parm = "sigma", level = 0.9, oldNames = FALSE) names its columns "5 %", "95 %"
    model = models.fit("classic", "dyestuff_ml")
    table = confint(model, method="profile", level=0.9, parm=["sigma", "(Intercept)"])
    assert list(table.columns) == ["5 %", "95 %"] and list(table.index) == ["sigma", "(Intercept)"]
    wide = confint(model, method="profile", parm="sigma")
    assert wide.iloc[0, 0] < table.iloc[0, 0] < table.iloc[0, 1] < wide.iloc[0, 1]


@pytest.mark.parametrize("kwargs,message", [
    ({"method": "bayes"}, "confint method 'bayes' is unknown"),
    ({"level": 95}, "level 95 must be between 0 and 1"),
    ({"parm": "sd_ses|id"}, "parameter 'sd_ses|id' is not in the model"),
])
def test_confint_errors(models, kwargs, message):
    with pytest.raises(ModelError, match=message.replace("|", r"\|")):
        confint(models.fit("hsb", "null"), **kwargs)


def test_bootstrap_is_seeded_and_near_R(models):
    # R: confint(full, method = "boot", nsim = 200, seed = 1, oldNames = FALSE)  (percentile);
    # different random streams, so only a Monte Carlo range: within a quarter of R's interval
    model = models.fit("hsb", "full")
    table = confint(model, method="boot", nsim=200, seed=1, progress=False)
    again = bootstrap(model, nsim=20, seed=7).replicates
    assert again.equals(bootstrap(model, nsim=20, seed=7).replicates)
    assert not again.equals(bootstrap(model, nsim=20, seed=8).replicates)
    for r in EXTRA["confint_boot_seed1"]["rows"]:
        if r["name"].startswith(("cor_", "sd_ses")):
            continue   # the slope variance is often 0 in a refit (69 of R's 200 were singular)
        width = r["upper"] - r["lower"]
        assert abs(table.loc[r["name"], "2.5 %"] - r["lower"]) < 0.25 * width, r["name"]
        assert abs(table.loc[r["name"], "97.5 %"] - r["upper"]) < 0.25 * width, r["name"]


def test_percentile_interval_as_boot():
    # R: boot:::norm.inter(1:200 / 10, c(0.025, 0.975)) -> 0.5026958801, 19.5973041199
    # (interpolated on the normal scale between order statistics 5 and 6, 195 and 196)
    out = percentile_interval(np.arange(1, 201) / 10, np.array([0.025, 0.975]))
    assert out == pytest.approx([0.5026958801, 19.5973041199], abs=1e-9)
    # R: boot:::norm.inter(1:199, c(0.025, 0.975)) -> exact order statistics 5 and 195
    assert percentile_interval(np.arange(1.0, 200), np.array([0.025, 0.975])) == pytest.approx([5, 195])
