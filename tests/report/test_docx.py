"""The Word writer on its own: an APA three-line table (APA 7th ed., 7.2: rules above and below
the head and below the body, none between rows or columns)."""
import docx
from docx.oxml.ns import qn

from hlm.labels import labels
from hlm.report.docx import RULE_THICK, RULE_THIN, _Counter, _table


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
