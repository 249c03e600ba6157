"""The shipped GLMM example (config/contraception.yaml: mlmRev's Contraception, a binary outcome
fitted with family: binomial) run end to end into a report in both languages, every number the
report prints checked against lme4 / performance (tests/fixtures/r/glmm_pipeline.R ->
glmm_pipeline_lme4.json), the sentences against the facts; and the config's GLMM checks.
"""
import copy
import json
import math
import re
import shutil
from pathlib import Path

import docx
import pytest
import yaml
from conftest import FIXTURES, ROOT, copy_project, ok, snakemake

from hlm.errors import ConfigError
from hlm.labels import labels
from hlm.pipeline.config import check_config, model_specs, table_columns
from hlm.report import apa
from hlm.results.verify import verify
from hlm.results.writers import read_json

R = json.loads((FIXTURES / "glmm_pipeline_lme4.json").read_text(encoding="utf-8"))
EXAMPLE = ROOT / "config" / "contraception.yaml"

# DESIGN.md's GLMM tolerances for "equal to lme4"
LL_ATOL, FIXEF_RTOL, SE_RTOL, ICC_RTOL = 1e-3, 1e-4, 1e-3, 1e-3
STOPPED_SHORT_RTOL = 1e-3


def run_example(folder, language, results_from=None):
    """The project with the shipped example as its config, in `language`, run to the report."""
    copy_project(folder, results_from)
    shutil.copy(ROOT / "data" / "contraception.csv", folder / "data" / "contraception.csv")
    config = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    config["report"]["language"] = language
    (folder / "config" / "config.yaml").write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    ok(snakemake(folder))
    return folder


@pytest.fixture(scope="module")
def english(tmp_path_factory):
    return run_example(tmp_path_factory.mktemp("glmm_en"), "en")


@pytest.fixture(scope="module")
def chinese(tmp_path_factory, english):
    """The same analysis reported in Chinese: only the figures and the report are redone."""
    return run_example(tmp_path_factory.mktemp("glmm_zh"), "zh", results_from=english)


def report(folder):
    return (Path(folder) / "results" / "report" / "report.md").read_text(encoding="utf-8")


def model_section(text, title):
    """The Markdown of one model's section (## 2.k <title> ...)."""
    return re.split(r"\n## 2\.\d ", text.split(f" {title} (` ", 1)[1], maxsplit=1)[0]


def rows(text):
    """Markdown table rows as lists of cells."""
    return [[c.strip() for c in line.strip().strip("|").split("|")] for line in text.splitlines()
            if line.startswith("| ") and not line.startswith("|:")]


def shows(cell, *values):
    """Whether a printed cell ('1.11', '[0.800, 1.42]') shows these values rounded to its digits
    (a value a hair from a rounding boundary may round either way: lme4's differs in the 4th digit)."""
    numbers = re.findall(r"-?\d+(?:\.\d+)?", cell)
    return len(numbers) == len(values) and all(
        abs(float(n) - v) <= 0.5 * 10 ** -len(n.partition(".")[2]) + 1e-3 * abs(v) for n, v in zip(numbers, values))


def close(actual, expected, rel):
    return actual == pytest.approx(expected, rel=rel, abs=1e-12)


def estimate_agrees(actual, expected, record):
    """A fixed effect (or a combination of them) equal to lme4's at 1e-4; or, where lme4's
    Nelder-Mead stopped short (it stops when the deviance changes by less than 1e-5), at 1e-3 with
    hlm's fit (its record) the better optimum: its log-likelihood, at its estimates, above lme4's."""
    if close(actual, expected, FIXEF_RTOL):
        return True
    return close(actual, expected, STOPPED_SHORT_RTOL) and record["logLik"] > R["models"][record["name"]]["logLik"]


# ---- the records --------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["null", "full", "moderated"])
def test_the_records_hold_lme4s_numbers(english, name):
    record, ref = read_json(english / "results" / "models" / f"{name}.json"), R["models"][name]
    assert record["family"] == "binomial" and record["link"] == "logit" and record["nAGQ"] == 1
    assert record["logLik"] == pytest.approx(ref["logLik"], abs=LL_ATOL)
    assert record["AIC"] == pytest.approx(ref["AIC"], abs=LL_ATOL)
    assert record["nobs"] == ref["nobs"] and record["ngroups"] == ref["ngroups"]
    for row, expected in zip(record["coefficients"], ref["coefficients"], strict=True):
        assert row["term"] == expected["term"]
        assert estimate_agrees(row["Estimate"], expected["Estimate"], record)
        assert close(row["Std. Error"], expected["SE"], SE_RTOL)
        assert close(row["z value"], expected["z"], SE_RTOL)
        assert close(row["Pr(>|z|)"], expected["p"], 1e-2)     # a p of 1e-30 moves with z's last digits
        for key, r_key in (("ci_low", "ci_low"), ("ci_high", "ci_high"), ("ratio", "OR"),
                           ("ratio_low", "OR_low"), ("ratio_high", "OR_high")):
            assert close(row[key], expected[r_key], SE_RTOL), key
    assert close(record["varcorr"][0]["vcov"], ref["varcorr"]["vcov"], 2e-3)
    assert close(record["icc_adjusted"], ref["icc_adjusted"], ICC_RTOL)
    assert close(record["r2_conditional"], ref["r2_conditional"], ICC_RTOL)
    assert record["r2_marginal"] == pytest.approx(ref["r2_marginal"], rel=ICC_RTOL, abs=1e-12)
    assert close(record["level1_variance"]["value"], ref["level1_variance"], 1e-9)
    assert all(r["grp"] != "Residual" for r in record["varcorr"])


def test_the_comparison_and_derived_statistics_are_lme4s(english):
    lrt = read_json(english / "results" / "comparisons" / "full_vs_null.json")
    assert lrt["models"] == ["null", "full"] and lrt["refitted_with_ML"] == []
    assert lrt["Chisq"] == pytest.approx(R["lrt"]["Chisq"], abs=2e-3)
    assert lrt["Df"] == R["lrt"]["Df"] and close(lrt["p"], R["lrt"]["p"], 1e-2)
    derived = read_json(english / "results" / "derived" / "derived.json")
    assert close(derived["icc"]["null"], R["models"]["null"]["icc_adjusted"], ICC_RTOL)
    assert derived["icc_levels"]["null"]["kind"] == "latent"
    (values,) = [entry["values"] for entry in derived["variance_explained"].values()]
    assert list(values) == ["district: (Intercept)"]           # τ00 only: no residual variance to compare
    assert close(values["district: (Intercept)"], R["tau00_reduction"], 3e-3)


def test_the_fit_checks_are_in_the_record(english):
    checks = read_json(english / "results" / "models" / "full.json")["checks"]
    # performance::binned_residuals(full): 44 bins, 93% inside their bounds
    assert checks["binned_residuals"]["bins"] == R["binned"]["bins"]
    assert checks["binned_residuals"]["share_inside"] == pytest.approx(R["binned"]["share_inside"], abs=1e-12)
    assert checks["binned_residuals"]["verdict"] == "warning"
    assert (checks["simulations"], checks["seed"], checks["conditional"]) == (250, 123, True)
    for test in ("uniformity", "dispersion"):
        assert 0 <= checks[test]["p_value"] <= 1 and checks[test]["significant"] == (checks[test]["p_value"] < 0.05)


def test_simple_slopes_are_wald_z_tests_on_the_log_odds_scale(english):
    result = read_json(english / "results" / "figures" / "moderated_simple_slopes.json")
    record = read_json(english / "results" / "models" / "moderated.json")
    assert result["available"] and (result["predictor"], result["moderator"]) == ("age", "urban")
    assert result["response_scale"] == "P(use)" and result["ratio_name"] == "odds ratio"
    for row, expected in zip(result["slopes"], R["simple_slopes"], strict=True):
        assert row["label"] == expected["urban"] and row["df"] is None
        assert estimate_agrees(row["Estimate"], expected["Estimate"], record)
        assert close(row["Std. Error"], expected["SE"], SE_RTOL)
        assert close(row["t value"], expected["z"], SE_RTOL) and close(row["Pr(>|t|)"], expected["p"], 1e-2)
        for key, r_key in (("ci_low", "ci_low"), ("ci_high", "ci_high"), ("ratio", "OR"), ("ratio_low", "OR_low"),
                           ("ratio_high", "OR_high")):
            assert close(row[key], expected[r_key], SE_RTOL), key
    for key, line in result["response_lines"].items():           # plogis of the log-odds lines
        assert all(0 < p < 1 for p in line["fit"])
        assert line["fit"] == pytest.approx([1 / (1 + math.exp(-f)) for f in result["lines"][key]["fit"]], rel=1e-12)
    caption = "Simple slopes of Age (centred) at values of Urban residence"      # the variables' labels
    table = rows(report(english).split(caption, 1)[1].split("*Note.", 1)[0])
    # a category is its own value and a z test has no df: neither column is there
    assert table[0][:4] == ["Urban residence", "Simple slope", "SE", "z"] and table[0][6:] == ["OR", "OR 95% CI"]
    for row, expected in zip(table[1:], R["simple_slopes"], strict=True):
        assert row[0] == expected["urban"] and shows(row[1], expected["Estimate"]) and shows(row[3], expected["z"])
        assert shows(row[6], expected["OR"]) and shows(row[7], expected["OR_low"], expected["OR_high"])


# ---- what the report prints ---------------------------------------------------------------------

@pytest.mark.parametrize("language", ["en", "zh"])
def test_the_report_prints_lme4s_numbers(english, chinese, language):
    text = report(english if language == "en" else chinese)
    ref = R["models"]["full"]
    table = rows(model_section(text, "Full model" if language == "en" else "全模型"))
    printed = {row[1]: row for row in table if row[1].startswith("$\\gamma")}
    for k, expected in enumerate(ref["coefficients"]):
        estimate, se, z, p, ci, ratio, ratio_ci = printed[f"$\\gamma_{{{k}0}}$"][2:]
        assert shows(estimate, expected["Estimate"]) and shows(se, expected["SE"]) and shows(z, expected["z"])
        assert p == apa.p_value(expected["p"])
        assert shows(ci, expected["ci_low"], expected["ci_high"]) and shows(ratio, expected["OR"])
        assert shows(ratio_ci, expected["OR_low"], expected["OR_high"])
    tau = apa.estimate(ref["varcorr"]["vcov"], digits=4)
    assert any(row[3] == tau for row in table if row[2] == "$\\tau_{00}$")
    null = R["models"]["null"]
    icc = f"{apa.estimate(null['varcorr']['vcov'], digits=4)} / ({apa.estimate(null['varcorr']['vcov'], digits=4)} " \
          f"+ {apa.estimate(null['level1_variance'], digits=4)}) = {apa.proportion(null['icc_adjusted'])}"
    assert icc in text
    assert f"{apa.proportion(ref['r2_marginal'])} / {apa.proportion(ref['r2_conditional'])}" in text
    assert apa.chisq_test(R["lrt"]["Chisq"], R["lrt"]["Df"], R["lrt"]["p"]) in text
    assert f"p = {apa.estimate(ref['probability_at_zero'])}" in text


@pytest.mark.parametrize("language", ["en", "zh"])
def test_the_report_says_what_a_logistic_model_is(english, chinese, language):
    text = report(english if language == "en" else chinese)
    assert "\\mathrm{logit}(p_{ij}) &= \\beta_{0j}" in text and "\\mathrm{Prob}(Y_{ij}" in text
    assert "r_{ij}" not in text                                  # no level-1 residual in the equations
    assert ("odds ratio" if language == "en" else "比值比") in text
    assert ("Log-odds" if language == "en" else "对数比值") in text and "| z |" in text
    summary = text.split("\n# 3 ", 1)[1].split("\n# 4 ", 1)[0]
    assert not any(row[0] == "σ²" for row in rows(summary))     # no residual variance row
    assert "π²/3" in summary
    assert "full_diagnostics.png" in text and "full_caterpillar.png" in text   # DHARMa's panels, no panels A-D
    assert ("QQ plot of the level-1 residuals" if language == "en" else "层1残差的 QQ 图") not in text
    assert ("normal QQ" if language == "en" else "正态 QQ 图") in text
    assert ("Dispersion test (DHARMa)" if language == "en" else "离散度检验（DHARMa）") in text
    binned = apa.percent(R["binned"]["share_inside"], 0)      # performance's share of bins inside, 93%
    assert (f"Binned residuals (performance::binned\\_residuals): only {binned} of the 44 bins" if language == "en"
            else f"44 个分箱中只有 {binned} 的平均残差") in text
    assert ("σ² is not compared" if language == "en" else "不比较 σ²") in text
    variance = text.split("\n# 5 ", 1)[1].split("\n# 6 ", 1)[0]
    assert labels(language)["variance_explained"]["intro_glmm"] in variance     # no σ² formula for a GLMM
    assert labels(language)["variance_explained"]["intro"] not in variance


@pytest.mark.parametrize("language", ["en", "zh"])
def test_table_1_counts_the_categories_and_the_equations_name_them(english, chinese, language):
    text, L = report(english if language == "en" else chinese), labels(language)
    table1 = text.split("\n# 2 ", 1)[0]
    for column, counts in R["counts"].items():             # R's table() of each text column
        total = sum(counts.values())
        cells = [L["data"]["counts"].format(label=level, n=apa.integer(n), percent=apa.percent(n / total))
                 for level, n in counts.items()]
        row = next(line for line in table1.splitlines() if line.startswith(f"| ` {column} `"))
        assert all(cell in row for cell in cells), row
    dummy = "\\mathrm{Urban\\ residence:\\ Y}" if language == "en" else "\\text{城市居住: Y}"
    assert f"X_{{2ij}}({dummy})" in text                       # the dummy by its label, not 'urbanY'
    assert "urbanY" not in text


def test_a_rerun_is_byte_identical(english, tmp_path):
    again = run_example(tmp_path / "again", "en")
    for path in ("models/full.json", "comparisons/full_vs_null.json", "derived/derived.json", "report/report.md"):
        assert (again / "results" / path).read_bytes() == (english / "results" / path).read_bytes(), path


def test_verify_compares_a_glmm_record_at_the_glmm_tolerances(english, tmp_path):
    saved = tmp_path / "saved"
    shutil.copytree(english / "results" / "models", saved / "models", ignore=shutil.ignore_patterns("*.parquet"))
    assert verify(saved, english / "results").ok
    record = read_json(saved / "models" / "full.json")
    record["fixef"]["age"] *= 1 + 5e-5          # within glmer's 1e-4 (lmer's 1e-5 would refuse it)
    record["se"]["age"] *= 1 + 5e-4             # within glmer's 1e-3
    (saved / "models" / "full.json").write_text(json.dumps(record), encoding="utf-8")
    assert verify(saved, english / "results").ok
    record["fixef"]["age"] *= 1 + 5e-4
    (saved / "models" / "full.json").write_text(json.dumps(record), encoding="utf-8")
    (difference,) = verify(saved, english / "results").differences
    assert difference.key == "fixef.age" and difference.allowed == "rel 0.0001"


# ---- the config's checks --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def example():
    return yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))


def refused(config, workdir=ROOT):
    with pytest.raises(ConfigError) as error:
        check_config(config, workdir)
    message = str(error.value)
    assert "\n" not in message
    return message


def test_the_example_config_declares_glmms(example):
    specs = model_specs(check_config(example, ROOT))
    assert specs["full"] == {"name": "full", "formula": "use ~ age + urban + livch + (1 | district)",
                             "family": "binomial", "link": "logit", "nAGQ": 1, "weights": None, "optimizer": None,
                             "control": {}, "REML": False, "ddf": None, "standardized": "none"}


@pytest.mark.parametrize("change, words", [
    (lambda c: c["models"].update(bad="age ~ urban + (1 | district)"),
     ["models.bad", "outcome 'age'", "0 and 1", "family binomial"]),
    (lambda c: c["models"].update(bad={"formula": "age ~ urban + (1 | district)", "family": "poisson"}),
     ["models.bad", "negative values", "counts"]),
    (lambda c: c["models"].update(bad={"formula": "use ~ urban + (1 | district) + (1 | woman)", "nAGQ": 9}),
     ["models.bad.nAGQ", "2 random terms", "nAGQ: 1"]),
    (lambda c: c["models"].update(bad={"formula": "use ~ urban + (urban | district)", "nAGQ": 9}),
     ["models.bad.nAGQ", "vector-valued"]),
    (lambda c: c["estimation"].update(REML=True), ["estimation.REML", "maximum likelihood"]),
    (lambda c: c["estimation"].update(ddf="Kenward-Roger"), ["estimation.ddf", "Wald z"]),
    (lambda c: c["estimation"].update(link="log"), ["estimation.link", "does not go with family binomial"]),
    (lambda c: c["estimation"].update(family="binominal"), ["estimation.family", "did you mean 'binomial'"]),
    (lambda c: c["models"].update(bad={"formula": "use ~ urban + (1 | district)", "family": "gaussian",
                                       "link": "probit"}), ["models.bad.link", "family: binomial"]),
    (lambda c: c["models"].update(bad={"formula": "age ~ urban + offset(log(woman)) + (1 | district)",
                                       "family": "gaussian"}), ["models.bad", "offset", "family: poisson"]),
    (lambda c: c.update(comparisons=[["full", "lin"]]) or c["models"].update(
        lin={"formula": "age ~ urban + (1 | district)", "family": "gaussian"}),
     ["comparisons[0]", "a linear mixed model", "different kinds"]),
    (lambda c: c["models"].update(bad={"formula": "use ~ urban + (1 | district)", "weights": "trials"}),
     ["models.bad", "column 'trials' not in data"]),
    (lambda c: c.update(comparisons=[{"models": ["full", "lin"], "method": "bootstrap"}]) or c["models"].update(
        lin={"formula": "age ~ urban + (1 | district)", "family": "gaussian"}),
     ["comparisons[0]", "a linear mixed model", "different kinds"]),
    (lambda c: c.update(power={"p": {"model": "full", "term": "urban", "effect": 0.4, "along": "district",
                                     "sizes": [20], "nsim": 10}}),
     ["power.p.term", "coefficients: (Intercept), age, urbanY, livch1, livch2, livch3+", "did you mean 'urbanY'"]),
    (lambda c: c["models"].update(full={"formula": c["models"]["full"], "intervals": "bootstrap"}),
     ["models.full.intervals", "linear mixed models only"]),
    (lambda c: c.update(comparisons=[{"models": ["full", "null"], "nsim": 100}]),
     ["comparisons[0].nsim", "method: bootstrap"]),
    (lambda c: c.update(power={"p": {"model": "full", "term": "rural", "effect": 0.4, "along": "district",
                                     "sizes": [20], "nsim": 10}}),
     ["power.p.term", "'rural' is not a fixed-effect coefficient"]),
])
def test_bad_glmm_settings_get_one_line(example, change, words):
    config = copy.deepcopy(example)
    change(config)
    message = refused(config)
    for word in words:
        assert word in message, message


def test_a_power_analysis_may_test_a_text_columns_dummy(example):
    config = copy.deepcopy(example)          # urban is text (N/Y) in the data: its dummy is urbanY, as glmer's
    config["power"] = {"p": {"model": "full", "term": "urbanY", "effect": 0.4, "along": "district",
                             "sizes": [20], "nsim": 10}}
    assert check_config(config, ROOT)["power"]["p"]["term"] == "urbanY"


def test_estimations_link_serves_the_glmms_beside_a_linear_model(example):
    config = copy.deepcopy(example)
    config["estimation"]["link"] = "probit"
    config["models"]["linear"] = {"formula": "age ~ urban + (1 | district)", "family": "gaussian"}
    specs = model_specs(check_config(config, ROOT))
    assert specs["full"]["link"] == "probit" and "link" not in specs["linear"]


def test_offsets_and_weights_are_legal_in_a_glmm(example):
    config = copy.deepcopy(example)
    config["models"]["offset"] = {"formula": "use ~ urban + offset(log(woman)) + (1 | district)", "nAGQ": 5}
    config["models"]["weighted"] = {"formula": "use ~ urban + (1 | district)", "weights": "woman"}
    checked = check_config(config, ROOT)
    specs = model_specs(checked)
    assert specs["offset"]["nAGQ"] == 5 and specs["weighted"]["weights"] == "woman"
    assert table_columns(checked)["weighted"] == ["use", "urban", "district", "woman"]


def test_the_word_tables_have_log_odds_z_and_odds_ratios(english):
    document = docx.Document(english / "results" / "report" / "tables.docx")
    tables = [[[cell.text for cell in row.cells] for row in table.rows] for table in document.tables]
    fixed = [t for t in tables if t[0][:3] == ["Term", "Symbol", "Log-odds"]]
    assert len(fixed) == 3 and fixed[1][0][4:] == ["z", "p", "95% CI", "OR", "OR 95% CI"]   # null, full, moderated
    ref = R["models"]["full"]["coefficients"]
    for row, expected in zip(fixed[1][1:], ref, strict=True):
        assert shows(row[2], expected["Estimate"]) and shows(row[4], expected["z"])
        assert shows(row[7], expected["OR"]) and shows(row[8], expected["OR_low"], expected["OR_high"])
    (summary,) = [t for t in tables if t[0][0] == "Predictors"]
    assert summary[0][1:5] == ["Null model\nLog-odds (SE)", "z", "p", "OR 95% CI"]
    assert "σ²" not in [row[0] for row in summary] and "Level-1 variance (latent scale, π²/3)" in [r[0] for r in summary]
