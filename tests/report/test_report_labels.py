"""A thesis-ready report: model labels and variable labels in all three formats, standardized
coefficients beside the fixed effects, and a 6-model report printed to PDF by headless Chromium
with every model's AIC in the side-by-side table (pdftotext)."""
import json
import re
import shutil
import subprocess

import docx
import pandas as pd
import pytest
import yaml
from conftest import FIXTURES, copy_project, ok, snakemake

import hlm
from hlm.labels import labels
from hlm.report.equations import plain_text
from hlm.report.models import model_view, summary_table
from hlm.report.pdf import find_browser
from hlm.results.records import model_record

LABELS = {"null": "M0 空模型", "random_slope": "M1 随机斜率", "full": "M2 跨层交互",
          "contextual_group": "M3 组均值对中", "contextual_grand": "M4 总均值对中"}
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
PDFTOTEXT = shutil.which("pdftotext")


@pytest.fixture(scope="module")
def labelled_run(tmp_path_factory):
    """The shipped analysis with a label for each model, a sixth model, labels: for two variables,
    pseudo-standardized coefficients and all four formats (pdf only where Chromium is installed)."""
    folder = copy_project(tmp_path_factory.mktemp("labelled"))
    path = folder / "config" / "config.yaml"
    config = yaml.safe_load(path.read_text(encoding="utf-8"))
    config["models"] = {str(name or "null"): {"formula": formula, "label": LABELS[name or "null"]}  # YAML reads null: as None
                        for name, formula in config["models"].items()}
    config["models"]["ses_only"] = {"formula": "mathach ~ ses + (1 | id)", "label": {"zh": "M5 仅含 SES", "en": "M5 SES only"}}
    config["labels"] = {"disclim": {"zh": "纪律氛围", "en": "Disciplinary climate"}, "mathach": "数学成绩"}
    config["report"]["standardized"] = "pseudo"
    config["report"]["formats"] = ["html", "md", "docx"] + (["pdf"] if CHROMIUM else [])
    path.write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False), encoding="utf-8")
    ok(snakemake(folder))
    return folder


def test_labels_in_every_format(labelled_run):
    report = labelled_run / "results" / "report"
    page = (report / "report.html").read_text(encoding="utf-8")
    md = (report / "report.md").read_text(encoding="utf-8")
    words = "\n".join(p.text for p in docx.Document(report / "tables.docx").paragraphs)
    cells = "\n".join(c.text for t in docx.Document(report / "tables.docx").tables for r in t.rows for c in r.cells)
    for text in (page, md, words + cells):
        for label in [*LABELS.values(), "M5 仅含 SES"]:
            assert label in text, label
        assert "纪律氛围" in text and "数学成绩" in text
        assert "模型 ses_only" not in text and "ses, group mean" not in text
    assert "M2 跨层交互的拟合优度显著高于M1 随机斜率" in page                       # the LRT sentence
    assert "社会经济地位, standardized (社会经济地位)（组均值对中）" not in page
    assert "Socio-economic status, standardized (社会经济地位)（组均值对中）" in page   # ses_cwc, in Chinese


def test_standardized_column_matches_effectsize(labelled_run):
    # standardize_parameters(full, method = "pseudo"): ses 0.30, disclim -0.38, ses:disclim 0.07
    page = (labelled_run / "results" / "report" / "report.html").read_text(encoding="utf-8")
    assert "标准化系数" in page and "Hoffman, 2015" in page
    for value in ("0.300 [0.273, 0.327]", "-0.375 [-0.490, -0.261]", "0.0661 [0.0395, 0.0928]"):
        assert value in page, value


@pytest.mark.skipif(not (CHROMIUM and PDFTOTEXT), reason="needs chromium and pdftotext (poppler-utils)")
def test_printed_pdf_keeps_every_models_aic(labelled_run):
    pdf = labelled_run / "results" / "report" / "report.pdf"
    text = subprocess.run([PDFTOTEXT, "-layout", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    summary = re.split(r"4\s+模型比较", re.split(r"3\s+模型汇总表", text)[1])[0]
    models = [yaml.safe_load((labelled_run / f"results/models/{name}.json").read_text()) for name in [*LABELS, "ses_only"]]
    for model in models:
        assert f"{model['AIC']:.1f}" in summary, model["name"]
        assert (LABELS | {"ses_only": "M5 仅含 SES"})[model["name"]].split()[0] in summary


def test_pdf_without_chromium_is_one_line_naming_the_package(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(Exception, match=r"^report.formats has pdf, which needs headless Chromium: install the 'chromium' package") as info:
        find_browser()
    assert "\n" not in str(info.value)


def test_uncorrelated_terms_show_one_group(tmp_path):
    # lmer(Reaction ~ Days + (Days || Subject), sleepstudy): VarCorr groups Subject and Subject.1
    frame = pd.read_csv(FIXTURES / "data" / "sleepstudy.csv")
    model = hlm.lmer("Reaction ~ Days + (Days || Subject)", frame)
    spec = {"name": "m", "formula": model.formula, "REML": True, "optimizer": "bobyqa", "ddf": "Satterthwaite",
            "control": {}, "standardized": "none"}
    record = json.loads(json.dumps(model_record(model, spec)))
    L = labels("en")
    view = model_view("m", record, "Uncorrelated slopes", {"Days": "Days of sleep deprivation"}, {}, L)
    assert [r["group"] for r in view["random"]] == ["Subject", "Subject", "Residual"]
    assert [r["symbol"].text for r in view["random"][:2]] == ["τ₀₀", "τ₁₁"]
    assert view["random"][1]["name"] == "Days of sleep deprivation"
    rows = summary_table({"m": record}, {"m": view}, L)["random"]
    assert [r["label"] for r in rows][1:3] == ["τ₀₀ Subject", "τ₁₁ Subject.Days"]


def test_word_products_have_a_separator():
    assert plain_text(r"\gamma_{4}\,\text{QQ0QQ}\,\text{QQ1QQ}", ("year", "lowinc_gmc")) == "γ₄ year × lowinc_gmc"


def test_references_listed_and_cited_where_each_method_is_used(labelled_run):
    page = (labelled_run / "results" / "report" / "report.html").read_text(encoding="utf-8")
    listed = page[page.index('<section id="references">'):page.index('<section id="reproducibility">')]
    for author in ("Bates, D., Mächler", "Kuznetsova, A.", "Satterthwaite, F. E.", "Hoffman, L.", "Enders, C. K.",
                   "Cohen, J.", "Kish, L.", "Nakagawa, S., &amp; Schielzeth", "Raudenbush, S. W."):
        assert author in listed, author
    assert "Kenward, M. G." not in listed                      # no model uses Kenward-Roger
    for citation in ("lme4；Bates et al., 2015", "Satterthwaite, 1946；lmerTest：Kuznetsova et al., 2017",
                     "Raudenbush 和 Bryk（2002）", "Enders &amp; Tofighi, 2007", "Hoffman, 2015", "Kish, 1965"):
        assert citation in page, citation
    icc = page[page.index('<section id="icc">'):page.index('<section id="contextual">')]
    assert "Cohen（1988）" in icc and "经验做法而非判定规则" in icc
