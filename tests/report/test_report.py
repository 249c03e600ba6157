"""The report end to end: the shipped config through Snakemake into report.html, report.md and
tables.docx, in Chinese (as shipped) and English; the seed's figures in them; byte-identical
reruns; and report.html opened in headless Chromium with the network cut off.

Runs happen in a copy of the project under pytest's tmp folder, never in the repo's results/.
"""
import html
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, copy_project, ok, snakemake

from hlm.labels import labels, missing_translations
from hlm.report import apa

REPORT = ("results/report/report.html", "results/report/report.md", "results/report/tables.docx")
CHROMIUM = next((p for p in ("/usr/bin/chromium", shutil.which("chromium") or "",
                             shutil.which("chromium-browser") or "") if p and Path(p).exists()), None)


def set_language(folder, language):
    path = Path(folder) / "config" / "config.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_text(re.sub(r"(?m)^  language: \w+", f"  language: {language}", text), encoding="utf-8")


def visible_text(page):
    """The text a reader sees: no tags, no MathML or SVG, entities decoded."""
    page = re.sub(r"(?s)<(style|svg|math)\b.*?</\1>", " ", page)
    return html.unescape(re.sub(r"<[^>]+>", "", page))


@pytest.fixture(scope="module")
def zh_run(tmp_path_factory):
    """The shipped analysis (report.language: zh), every target."""
    folder = copy_project(tmp_path_factory.mktemp("report_zh"))
    assert yaml.safe_load((folder / "config/config.yaml").read_text())["report"]["language"] == "zh"
    ok(snakemake(folder))
    return folder


@pytest.fixture(scope="module")
def en_run(zh_run, tmp_path_factory):
    """The same analysis with report.language: en; only the figures and the report are redone."""
    folder = copy_project(tmp_path_factory.mktemp("report_en"), results_from=zh_run)
    set_language(folder, "en")
    process = ok(snakemake(folder))
    jobs = set(re.findall(r"rule (\w+):", process.stdout + process.stderr))
    assert "fit" not in jobs and "report" in jobs, jobs
    return folder


def read(folder, path):
    return (Path(folder) / path).read_text(encoding="utf-8")


# ---- labels and numbers ---------------------------------------------------------------------------

def test_every_label_has_both_languages():
    assert missing_translations() == []
    zh, en = labels("zh"), labels("en")
    assert zh["model_kinds"]["null"] == "零模型" and en["model_kinds"]["null"] == "Null model"


@pytest.mark.parametrize("call, expected", [
    (lambda: apa.t_test(66.98, 146.4092, 1e-100), "t(146.41) = 66.98, p < .001"),
    (lambda: apa.chisq_test(479.3411, 3, 1.4e-103), "χ²(3) = 479.34, p < .001"),
    (lambda: apa.p_value(0.0234), ".023"), (lambda: apa.p_value(0.5, with_symbol=True), "p = .500"),
    (lambda: apa.estimate(-1.1275372), "-1.13"), (lambda: apa.estimate(0.5710861), "0.571"),
    (lambda: apa.estimate(12.660624), "12.66"), (lambda: apa.proportion(0.1793109), "0.179"),
    (lambda: apa.percent(0.2331466), "23.3%"), (lambda: apa.integer(7185), "7,185"),
    (lambda: apa.signif(62.1648970), "62.165"), (lambda: apa.df(3.0), "3"),
    (lambda: apa.number(float("nan")), "—"),
])
def test_apa_numbers(call, expected):
    assert call() == expected


# ---- the three files ------------------------------------------------------------------------------

ZH_TERMS = ["零模型", "随机斜率模型", "全模型", "固定效应", "随机效应", "ICC", "方差解释率", "层1", "层2", "合并模型"]
EN_TERMS = ["Null model", "Random-slope model", "Full model", "Fixed effects", "Random effects", "ICC",
            "Variance explained", "Level 1", "Level 2", "Combined model"]
# the seed's figures: ICC 0.179; LRT chi-squares 479.34 and 62.165 (as R prints them, 62.16 in
# APA's two decimals); Satterthwaite df 146.41; disclim -1.13; ses:disclim 0.571
SEED = ["0.179", "479.34", "62.165", "χ²(2) = 62.16, p < .001", "t(146.41) = 66.98, p < .001",
        "-1.13", "0.571", "23.3%", "60.7%", "5.9%"]


@pytest.mark.parametrize("language", ["zh", "en"])
def test_html_has_the_seeds_terms_and_figures(zh_run, en_run, language):
    folder = zh_run if language == "zh" else en_run
    text = visible_text(read(folder, "results/report/report.html"))
    for term in (ZH_TERMS if language == "zh" else EN_TERMS) + SEED:
        assert term in text, term
    if language == "en":
        assert not any(term in text for term in ["零模型", "随机斜率模型", "固定效应", "方差解释率"])


@pytest.mark.parametrize("language", ["zh", "en"])
def test_markdown_has_the_seeds_terms_figures_and_equations(zh_run, en_run, language):
    folder = zh_run if language == "zh" else en_run
    md = read(folder, "results/report/report.md")
    for term in (ZH_TERMS if language == "zh" else EN_TERMS) + SEED:
        assert term in md, term
    # the variables by the labels hsb.sav gives them
    assert r"\beta_{1j} &= \gamma_{10} + \gamma_{11}W_{j}(\text{Disciplinary climate (学校纪律环境)}) + u_{1j}" in md
    assert md.startswith("---\ntitle: ")
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
    assert len(links) == 4  # panels A-D, caterpillar, simple slopes and Johnson-Neyman of the full model
    for link in links:
        assert (folder / "results/report" / link).is_file(), link
        assert link.startswith("figures/") and link.endswith(".png")


def test_html_is_self_contained(zh_run):
    page = read(zh_run, "results/report/report.html")
    assert page.startswith("<!DOCTYPE html>")
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", page)
    assert not re.search(r"url\(\s*['\"]?(https?:|//)", page)
    assert "<script" not in page and '<link rel="stylesheet"' not in page
    assert page.count("<svg") >= 3 and "<math" in page and "<style>" in page
    assert "<mtext>Disciplinary climate (学校纪律环境)</mtext>" in page  # equations as MathML


def test_word_tables_are_three_line_tables(zh_run):
    import docx
    from docx.oxml.ns import qn
    document = docx.Document(str(zh_run / "results/report/tables.docx"))
    cells = {cell.text for table in document.tables for row in table.rows for cell in row.cells}
    for value in ("Socio-economic status, standardized (社会经济地位) × Disciplinary climate (学校纪律环境)", "0.571", "-1.13", "146.41", "62.165", "γ₁₁", "τ₀₀"):
        assert value in cells, value
    head = document.tables[0].rows[0].cells[0]._tc.tcPr.find(qn("w:tcBorders"))
    assert head.find(qn("w:top")).get(qn("w:val")) == "single"
    assert head.find(qn("w:bottom")).get(qn("w:val")) == "single"
    assert document.tables[0].rows[1].cells[0]._tc.tcPr.find(qn("w:tcBorders")) is None  # no inner rules
    assert document.core_properties.created.year == 2000  # no timestamp
    assert "表 1" in [p.text for p in document.paragraphs]


def test_rerun_gives_byte_identical_report(zh_run, tmp_path):
    folder = copy_project(tmp_path, results_from=zh_run)
    before = {path: (folder / path).read_bytes() for path in REPORT}
    ok(snakemake(folder, "--forcerun", "diagnostics", "simple_slopes", "report"))
    after = {path: (folder / path).read_bytes() for path in REPORT}
    assert after == before


def test_warnings_show_where_they_occur_and_in_their_section(zh_run):
    from hlm.report.inputs import load_results
    from hlm.report.render import render_html
    from hlm.report.view import build_view
    results = load_results(zh_run / "results/manifest.json")
    results.models["full"].update(singular=True, converged=False, n_dropped=12, messages=[
        "fixed-effect model matrix is rank deficient so dropping 1 column / coefficient"])
    page = render_html(build_view(results, "zh"))
    full = page[page.index('<section id="model-full" class="model">'):page.index('<section id="model-contextual_group" class="model">')]
    for text in ("畸形拟合", "模型未收敛", "rank deficient so dropping 1 column", "删除了 12 行"):
        assert text in full, text
    warnings = page[page.index('<section id="warnings">'):page.index('<section id="reproducibility">')]
    assert "畸形拟合" in warnings and 'href="#model-full"' in warnings
    clean = render_html(build_view(load_results(zh_run / "results/manifest.json"), "zh"))
    assert "没有警告" in clean


def test_the_report_formats_the_records_numbers(zh_run):
    # the intervals, the adjusted ICC and the design effect are the records'; the report computes none
    from hlm.report.inputs import load_results
    from hlm.report.render import render_markdown
    from hlm.report.view import build_view
    results = load_results(zh_run / "results/manifest.json")
    results.models["full"]["icc_adjusted"] = 0.4321
    next(r for r in results.models["full"]["coefficients"] if r["term"] == "disclim").update(ci_low=-9.87, ci_high=9.87)
    results.derived["contextual"]["contextual_group"]["effects"]["contextual"].update(ci_low=1.11, ci_high=2.22)
    results.derived["design_effect"]["null"].update(mean_group_size=12.5, value=3.21)
    md = render_markdown(build_view(results, "en"))
    for text in ("0.432", "[-9.87, 9.87]", "[1.11, 2.22]", "1 + (12.50 − 1) × 0.179 = 3.21"):
        assert text in md, text


def test_reproducibility_section(zh_run):
    import hashlib
    text = visible_text(read(zh_run, "results/report/report.html"))
    digest = hashlib.sha256((ROOT / "data/hsb.sav").read_bytes()).hexdigest()
    assert digest in text and "numpy" in text and "lme4" in text and "diagnostics:" in text
    assert "snakemake --cores 2 --configfile config/config.yaml" in text  # the config file used


# ---- in a browser ------------------------------------------------------------------------------------

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run",
                  "--disable-default-apps", "--hide-scrollbars",
                  # no network: every host unresolvable, every proxy connection refused
                  "--host-resolver-rules=MAP * ~NOTFOUND", "--proxy-server=127.0.0.1:9",
                  "--enable-logging=stderr", "--v=0", "--virtual-time-budget=5000"]


def chromium(tmp_path, *args):
    profile = tmp_path / "chromium-profile"
    process = subprocess.run([CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
                             capture_output=True, text=True, timeout=120)
    return process


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (.ci/run installs it: "
                                             "apt-get install -y chromium)")
@pytest.mark.parametrize("language", ["zh", "en"])
def test_report_opens_in_headless_chromium(zh_run, en_run, tmp_path, language):
    from PIL import Image
    folder = zh_run if language == "zh" else en_run
    url = (folder / "results/report/report.html").resolve().as_uri()
    dom = chromium(tmp_path, "--dump-dom", url)
    assert dom.returncode == 0, dom.stderr[-3000:]
    console = [line for line in dom.stderr.splitlines() if "CONSOLE" in line]
    assert console == [], console
    assert "<math" in dom.stdout and ("全模型" if language == "zh" else "Full model") in dom.stdout
    shot = tmp_path / "page.png"
    screenshot = chromium(tmp_path, "--window-size=1200,2400", f"--screenshot={shot}", url)
    assert screenshot.returncode == 0 and shot.is_file(), screenshot.stderr[-3000:]
    assert not [line for line in screenshot.stderr.splitlines() if "CONSOLE" in line]
    image = Image.open(shot).convert("L")
    histogram = image.histogram()
    dark = sum(histogram[:128]) / (image.width * image.height)
    assert 0.01 < dark < 0.5, f"the page looks blank (dark pixels: {dark:.4f})"
    assert len([count for count in histogram if count]) > 20


# ---- hostile names and labels: no injection --------------------------------------------------------

SCRIPT = "<script>alert(1)</script>"
LINK = "[click](javascript:alert(1))"
HOSTILE_GROUPS = ["$a$", LINK, "<b>g</b>", "`x`", "D:\\thesis", "$", "a_b*c*", "<img src=x onerror=alert(1)>"]


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory):
    """A run whose title, labels, value labels and group names are HTML, Markdown, YAML and mathtext."""
    import numpy as np
    import pandas as pd
    import pyreadstat
    folder = copy_project(tmp_path_factory.mktemp("hostile"))
    rng = np.random.default_rng(3)
    n = 8 * len(HOSTILE_GROUPS)
    frame = pd.DataFrame({"sch": np.repeat(HOSTILE_GROUPS, 8), "ses": rng.normal(size=n),
                          "sector": np.tile([0.0, 1.0], n // 2)})
    frame["score"] = 10 + 2 * frame.ses + frame.sector + np.repeat(rng.normal(size=len(HOSTILE_GROUPS)), 8) \
        + rng.normal(size=n)
    pyreadstat.write_sav(frame, folder / "data" / "hostile.sav",
                         column_labels={"score": SCRIPT, "ses": LINK, "sch": "`</code>" + SCRIPT + "`",
                                        "sector": "$x$ ---"},
                         variable_value_labels={"sector": {0.0: LINK, 1.0: SCRIPT}})
    config = {"title": 'D:\\thesis " ---\nheader-includes: ' + SCRIPT + "\n" + LINK,
              "data": {"path": "data/hostile.sav", "group": "sch"},
              "models": {"null": "score ~ 1 + (1 | sch)", "slope": "score ~ ses + sector + (1 | sch)"},
              "comparisons": [["slope", "null"]], "icc": ["null"], "diagnostics": ["slope"],
              "report": {"language": "en", "formats": ["html", "md", "docx"]}}
    (folder / "config" / "config.yaml").write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    ok(snakemake(folder))
    return folder


def no_injected_markup(page):
    assert "<script>alert" not in page and "<img src=x" not in page and "<b>g</b>" not in page
    assert not re.search(r"""href\s*=\s*["']?\s*javascript""", page, re.IGNORECASE)


def test_hostile_text_injects_nothing_into_the_html(hostile_run):
    page = read(hostile_run, "results/report/report.html")
    no_injected_markup(page)
    assert "<script" not in page and "<img" not in page  # the report itself has neither
    text = visible_text(page)
    assert SCRIPT in text and LINK in text and "D:\\thesis" in text  # shown as written


@pytest.mark.skipif(shutil.which("pandoc") is None, reason="pandoc is not installed")
def test_hostile_markdown_converts_with_pandoc_to_plain_text(hostile_run):
    converted = subprocess.run(["pandoc", "--standalone", "-f", "markdown", "-t", "html",
                                "results/report/report.md"], cwd=hostile_run, capture_output=True,
                               text=True, timeout=120)
    assert converted.returncode == 0, converted.stderr
    no_injected_markup(converted.stdout)
    text = visible_text(converted.stdout)
    assert SCRIPT in text and LINK in text and "D:\\thesis" in text and "`</code>" in text


def test_hostile_group_names_are_drawn(hostile_run):
    for name in ("slope_diagnostics.png", "slope_caterpillar.png", "slope_caterpillar.svg"):
        assert (hostile_run / "results" / "figures" / name).stat().st_size > 1000, name


@pytest.mark.skipif(shutil.which("pandoc") is None, reason="pandoc is not installed")
def test_code_spans_and_text_hold_any_column_name():
    from hlm.report.writers import MarkdownWriter
    writer = MarkdownWriter()
    names = ["x` <b>y</b> `z", "``" + SCRIPT, "a\n\nb", LINK, "$x$ @cite {#id} | ~s~ ^t^"]
    markdown = "\n\n".join(f"{writer.code(name)} and {writer.text(name)}" for name in names)
    converted = subprocess.run(["pandoc", "-f", "markdown", "-t", "html"], input=markdown, capture_output=True,
                               text=True, timeout=60)
    no_injected_markup(converted.stdout)
    paragraphs = re.findall(r"(?s)<p>(.*?)</p>", converted.stdout)
    assert len(paragraphs) == len(names)
    def words(text):
        return " ".join(html.unescape(text).split())

    for name, paragraph in zip(names, paragraphs, strict=True):
        code, text = re.fullmatch(r"(?s)<code>(.*?)</code>\s+and\s+(.*)", paragraph).groups()
        assert words(code) == words(text) == words(name)  # literally, in the code span and in the text
