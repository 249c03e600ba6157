"""The Word writer on its own: an APA three-line table (APA 7th ed., 7.2: rules above and below
the head and below the body, none between rows or columns)."""
import json

import docx
import pytest
from conftest import FIXTURES, hsb_frame
from docx.oxml.ns import qn

import hlm
from hlm.labels import labels
from hlm.report import apa
from hlm.report.docx import RULE_THICK, RULE_THIN, _Counter, _summary, _table
from hlm.report.models import model_view, summary_table
from hlm.results.records import model_record
from hlm.results.writers import jsonable

EFFECTSIZE = json.loads((FIXTURES / "standardized_effectsize.json").read_text(encoding="utf-8"))


def borders(cell):
    found = cell._tc.tcPr.find(qn("w:tcBorders")) if cell._tc.tcPr is not None else None
    if found is None:
        return {}
    return {child.tag.split("}")[1]: int(child.get(qn("w:sz"))) for child in found}


def test_an_apa_table_has_three_rules_and_its_number_and_title():
    document, counter = docx.Document(), _Counter()
    header, rows = ["Term", "Estimate", "SE"], [["(Intercept)", "12.66", "0.24"], ["ses", "2.19", "0.11"]]
    table = _table(document, counter, "Fixed effects of the null model", header, rows, L=labels("en"), note="n = 7185.")
    _table(document, counter, "A second table", header, rows[:1], L=labels("en"))
    assert [[cell.text for cell in row.cells] for row in table.rows] == [header, *rows]
    assert [borders(cell) for cell in table.rows[0].cells] == [{"top": RULE_THICK, "bottom": RULE_THIN}] * 3
    assert [borders(cell) for cell in table.rows[1].cells] == [{}] * 3          # no rule between body rows
    assert [borders(cell) for cell in table.rows[2].cells] == [{"bottom": RULE_THICK}] * 3
    outer = table._tbl.tblPr.find(qn("w:tblBorders"))
    assert {child.get(qn("w:val")) for child in outer} == {"nil"}               # no grid
    texts = [paragraph.text for paragraph in document.paragraphs]
    assert texts[:2] == ["Table 1", "Fixed effects of the null model"] and "Table 2" in texts
    assert any(text.endswith("n = 7185.") for text in texts)


@pytest.mark.parametrize("method", ["refit", "pseudo"])
def test_the_side_by_side_table_has_the_standardized_column(method):
    # the seed's full and contextual models beside each other, report.standardized: refit | pseudo;
    # values: effectsize::standardize_parameters (tests/fixtures/standardized_effectsize.json)
    frame, L = hsb_frame(), labels("en")
    records, views = {}, {}
    for name in ("hsb_full", "hsb_contextual"):
        reference = EFFECTSIZE[name]
        spec = {"name": name, "formula": reference["formula"], "REML": reference["REML"], "optimizer": "bobyqa",
                "ddf": "Satterthwaite", "control": {}, "standardized": method}
        model = hlm.lmer(reference["formula"], frame, REML=reference["REML"])
        records[name] = json.loads(json.dumps(jsonable(model_record(model, spec, frame))))
        views[name] = model_view(name, records[name], name, {}, {}, L)
    document = docx.Document()
    summary = summary_table(records, views, L)
    _summary(document, _Counter(), {"summary": summary}, L)
    table = document.tables[0]
    cells = [[cell.text for cell in row.cells] for row in table.rows]
    assert cells[0][4] == cells[0][8] == f"{L['model']['std']} {L['model']['std_ci']}" and len(cells[0]) == 9
    by_term = {row[0]: row for row in cells[1:]}
    for k, name in enumerate(("hsb_full", "hsb_contextual")):
        for term, value in EFFECTSIZE[name][method].items():
            expected = f"{apa.estimate(value['Std_Coefficient'])} {apa.ci(value['CI_low'], value['CI_high'])}"
            label = views[name]["fixed"][[r["term"] for r in views[name]["fixed"]].index(term)]["label"]
            assert by_term[label][4 + 4 * k] == expected, (name, term)
    # the random part: each model's four cells are one
    random_row = table.rows[len(summary["fixed"]) + 2]   # below the head, the fixed rows and "Random part"
    assert random_row.cells[0].text == summary["random"][0]["label"]
    assert len({id(cell._tc) for cell in random_row.cells}) == 1 + 2
    assert document.paragraphs[-1].text.endswith(L["model"]["std_notes"][method])
