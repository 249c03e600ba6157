"""tables.docx: the report's tables as APA three-line tables in Word (python-docx).

APA 7 tables: a bold number line ("Table 1"), an italic title, horizontal rules only (above
and below the column heads and below the last row), and a note under the table. Wide tables
(all models side by side) get a landscape section. Symbols are Unicode (γ₁₀, τ₀₀, σ²).

The file is deterministic: fixed core properties (no author, no timestamps) and zip entries
with a fixed date, so the same results give byte-identical bytes.
"""
import io
import zipfile
from pathlib import Path

from ..escape import xml_text
from ..results.writers import _atomic
from .writers import PlainWriter

FIXED_DATE = (1980, 1, 1, 0, 0, 0)
FONT_LATIN = "Times New Roman"
FONT_EAST_ASIA = "SimSun"   # 宋体, the usual body font of Chinese theses; Word substitutes if absent
RULE_THICK = 12   # eighths of a point: 1.5 pt
RULE_THIN = 6     # 0.75 pt


def write_docx(view, path):
    """Write every table of the report view to a .docx file, atomically."""
    data = docx_bytes(view)
    _atomic(path, lambda tmp: Path(tmp).write_bytes(data))


def docx_bytes(view):
    document = _document(view)
    buffer = io.BytesIO()
    document.save(buffer)
    return _normalise_zip(buffer.getvalue())


# ---- the document -----------------------------------------------------------------------------

def _document(view):
    import datetime

    from docx import Document

    view = _xml_safe(view)
    L, writer = view["L"], PlainWriter()
    document = Document()
    _fonts(document)
    props = document.core_properties
    fixed = datetime.datetime(2000, 1, 1)
    props.author, props.last_modified_by, props.title = "hlm", "hlm", view["title"]
    props.created = props.modified = props.last_printed = fixed
    props.revision, props.comments = 1, ""
    props.subject = L["report"]["subtitle"]

    document.add_heading(view["title"], level=0)
    document.add_paragraph(L["report"]["subtitle"])
    counter = _Counter()

    document.add_heading(L["sections"]["data"], level=1)
    document.add_paragraph(writer.render(view["data"]["intro"]))
    D = L["data"]
    _table(document, counter, D["variables"],
           [D["variable"], D["label"], D["level"], D["mean"], D["sd"], D["min"], D["max"], D["missing"]],
           [[v["name"], v["label"] + v["values_after_label"], v["level"],
             v["mean"], v["sd"], v["min"], v["max"], v["missing"]] for v in view["data"]["variables"]],
           L=L, text_columns=(1, 2))

    document.add_heading(L["sections"]["models"], level=1)
    M = L["model"]
    for model in view["models"]:
        document.add_heading(f"{model['title']} ({model['name']})", level=2)
        document.add_paragraph(f"{M['formula']}{L['report']['colon']}{model['formula']}")
        for warning in model["warnings"]:
            document.add_paragraph(f"⚠ {warning}")
        if model["equations"] is not None:
            equations = model["equations"]
            lines = []
            if equations.two_level:
                lines += [(M["level1"], eq) for eq in equations.level1]
                lines += [(M["level2"], eq) for eq in equations.level2]
                lines += [(M["level3"], eq) for eq in equations.level3]
            else:
                document.add_paragraph(writer.render(model["equation_note"]))
            lines.append((M["combined"], equations.combined))
            for label, eq in lines:
                document.add_paragraph(f"{label}: {eq.lhs.text} = {eq.rhs.text}")
        for note in model.get("equation_notes") or []:
            document.add_paragraph(note)
        std, ratio = bool(model["standardized"]), bool(model.get("ratio"))   # a GLMM: z, and OR or IRR
        header = [M["term"], M["symbol"], model.get("estimate_header") or M["estimate"], M["se"]] \
            + ([M["df"]] if model["has_df"] else []) + [model.get("statistic") or M["t"]] \
            + ([M["p"]] if model["has_p"] else []) + [M["ci"]] + ([M["std"], M["std_ci"]] if std else []) \
            + ([model["ratio"], model["ratio_ci_header"]] if ratio else [])
        rows = [[r["label"], _symbol(r["symbol"]), r["estimate"], r["se"]] + ([r["df"]] if model["has_df"] else [])
                + [r["t"]] + ([r["p"]] if model["has_p"] else []) + [r["ci"]] + ([r["std"], r["std_ci"]] if std else [])
                + ([r["ratio"], r["ratio_ci"]] if ratio else [])
                for r in model["fixed"]]
        _table(document, counter, model["caption_fixed"], header, rows, note=model["fixed_note"], L=L)
        note = model["random_note"]
        _table(document, counter, model["caption_random"],
               [M["groups"], M["name"], M["symbol"], M["variance"], M["sd"], M["corr"]],
               [[r["group"], r["name"], _symbol(r["symbol"]), r["variance"], r["sd"], r["corr"]]
                for r in model["random"]], note=note, L=L, text_columns=(1,))
        if model.get("bootstrap"):
            B, boot = L["bootstrap_intervals"], model["bootstrap"]
            _table(document, counter, writer.render(boot["caption"]), [B["parameter"], B["estimate"], B["ci"]],
                   [[r["parameter"], r["estimate"], r["ci"]] for r in boot["rows"]], note=writer.render(boot["note"]),
                   L=L, text_columns=(0,))
        document.add_paragraph(L["narrative"]["sep"].join(writer.render(s) for s in model["narrative"]))

    _summary(document, counter, view, L)
    _comparisons(document, counter, view, L, writer)
    _variance(document, counter, view, L, writer)
    _rest(document, counter, view, L, writer)
    return document


class _Counter:
    def __init__(self):
        self.n = 0

    def next(self):
        self.n += 1
        return self.n


def _symbol(math):
    return math.text if math is not None else ""


def _summary(document, counter, view, L):
    from docx.enum.section import WD_ORIENT, WD_SECTION
    S, M, summary = L["summary"], L["model"], view["summary"]
    std = bool(summary["standardized"])   # report.standardized: a fourth column per model, as in the HTML
    ratio = bool(summary["ratio"])        # a GLMM's odds or rate ratios: one more
    per = 3 + std + ratio
    wide = len(summary["models"]) * per > 9
    if wide:
        _orientation(document.add_section(WD_SECTION.NEW_PAGE), WD_ORIENT.LANDSCAPE)
    document.add_heading(L["sections"]["summary"], level=1)
    header = [S["predictors"]]
    for model in summary["models"]:
        header += [f"{model['title']}\n{model['estimate_header']}", model["stat_header"], "p"] \
            + ([f"{M['std']} {M['std_ci']}"] if std else []) + ([model["ratio_header"]] if ratio else [])
    rows = [[row["label"]] + [x for c in row["cells"] for x in (c["est"], c["df"], c["p"]) + ((c["std"],) if std else ())
                              + ((c["ratio"],) if ratio else ())]
            for row in summary["fixed"]]
    rows.append([S["random_part"]] + [""] * (per * len(summary["models"])))
    rows += [[row["label"]] + [x for v in row["values"] for x in (v,) + ("",) * (per - 1)]
             for row in summary["random"] + summary["fit"]]
    note = "" if summary["all_glmm"] else S["note"] + (" " + S["reml_note"] if summary["any_reml"] else "")
    if std:
        note += " " + M["std_notes"][summary["standardized"]]
    if summary["glmm"]:
        note = (note + " " + L["glmm"]["summary_note"]).strip()
    _table(document, counter, S["caption"], header, rows, note=note, L=L, font_size=7 if wide else 9,
           merge_from=len(summary["fixed"]) + 1, merge_width=per)
    if wide:
        _orientation(document.add_section(WD_SECTION.NEW_PAGE), WD_ORIENT.PORTRAIT)


def _orientation(section, orientation):
    width, height = section.page_width, section.page_height
    section.orientation = orientation
    if (orientation == 1) != (width > height):
        section.page_width, section.page_height = height, width


def _comparisons(document, counter, view, L, writer):
    C = L["comparisons"]
    document.add_heading(L["sections"]["comparisons"], level=1)
    if not view["comparisons"]:
        document.add_paragraph(C["none"])
        return
    for comparison in view["comparisons"]:
        boot = [C["p_bootstrap"]] if comparison["bootstrap"] else []
        rows = [[f"{r['title']} ({r['model']})", r["npar"], r["aic"], r["bic"], r["loglik"], r["deviance"],
                 r["chisq"], r["df"], r["p"], *([r["p_bootstrap"]] if boot else [])] for r in comparison["rows"]]
        _table(document, counter, comparison["caption"],
               [C["model"], C["npar"], "AIC", "BIC", "logLik", "deviance", C["chisq"], C["df"], "p", *boot], rows,
               note=C["note"], L=L)
        for sentence in comparison["sentences"]:
            document.add_paragraph(writer.render(sentence))


def _variance(document, counter, view, L, writer):
    V = L["variance_explained"]
    document.add_heading(L["sections"]["variance_explained"], level=1)
    if not view["variance_explained"]:
        document.add_paragraph(V["none"])
        return
    rows = []
    for entry in view["variance_explained"]:
        for i, r in enumerate(entry["rows"]):
            rows.append([f"{entry['old']} → {entry['new']}" if i == 0 else "", r["component"],
                         r["before"], r["after"], r["explained"]])
    _table(document, counter, L["sections"]["variance_explained"],
           [V["pair"], V["component"], V["old"], V["new"], V["explained"]], rows, note=view["variance_explained_intro"], L=L,
           text_columns=(1,))
    for entry in view["variance_explained"]:
        for sentence in entry["sentences"]:
            document.add_paragraph(writer.render(sentence))


def _rest(document, counter, view, L, writer):
    document.add_heading(L["sections"]["icc"], level=1)
    for entry in view["icc"]:
        document.add_paragraph(L["narrative"]["sep"].join(writer.render(s) for s in entry["sentences"]))
    if view["contextual"]:
        K, M = L["contextual"], L["model"]
        document.add_heading(L["sections"]["contextual"], level=1)
        rows = []
        for entry in view["contextual"]:
            for i, r in enumerate(entry["rows"]):
                rows.append([entry["title"] if i == 0 else "", r["effect"] + (f" ({r['label']})" if r["label"] else ""),
                             r["estimate"], r["se"], r["df"], r["p"], r["ci"]])
        _table(document, counter, L["sections"]["contextual"],
               [K["model"], M["term"], M["estimate"], M["se"], "df", "p", M["ci"]], rows, note=K["intro"],
               L=L, text_columns=(1,))
    if any(block["slopes"] for block in view["diagnostics"]):
        document.add_heading(L["sections"]["diagnostics"], level=1)
    for block in view["diagnostics"]:
        if block["slopes"]:
            G, M, slopes = L["diagnostics"], L["model"], block["slopes"]
            ratio = [slopes["ratio"], slopes["ratio_ci_header"]] if slopes["ratio"] else []   # a GLMM's exp(slope)
            value, df = slopes["has_value"], slopes["has_df"]
            _table(document, counter, slopes["caption"],
                   [slopes["moderator_header"]] + [G["moderator_value"]] * value + [G["slope"], M["se"]]
                   + ["df"] * df + [slopes["statistic"], "p", M["ci"]] + ratio,
                   [[r["at"]] + [r["value"]] * value + [r["estimate"], r["se"]] + [r["df"]] * df
                    + [r["t"], r["p"], r["ci"]] + ([r["ratio"], r["ratio_ci"]] if ratio else [])
                    for r in slopes["rows"]], note=slopes["note"], L=L)
            for sentence in block["sentences"]:
                document.add_paragraph(writer.render(sentence))
    _power(document, counter, view, L, writer)
    if view["warnings"]:
        document.add_heading(L["sections"]["warnings"], level=1)
        for warning in view["warnings"]:
            for message in warning["messages"]:
                document.add_paragraph(f"{warning['where']}: {message}")
    document.add_heading(L["sections"]["references"], level=1)
    for reference in view["references"]:
        document.add_paragraph(reference)


def _xml_safe(value):
    """The view with every string made one XML can hold: labels, names and levels come from the
    data, and a control character in one would stop the whole document from being written."""
    if isinstance(value, str):
        return xml_text(value)
    if isinstance(value, dict):
        return {key: _xml_safe(item) for key, item in value.items()}
    if type(value) in (list, tuple):
        return type(value)(map(_xml_safe, value))
    return value


# ---- a three-line table -------------------------------------------------------------------------

def _power(document, counter, view, L, writer):
    """Each power analysis: its paragraph and the table of its curve (the figure is in the HTML)."""
    P = L["power"]
    if view["power"]:
        document.add_heading(L["sections"]["power"], level=1)
    for entry in view["power"]:
        document.add_paragraph(L["narrative"]["sep"].join(writer.render(s) for s in entry["sentences"]))
        _table(document, counter, writer.render(entry["table_caption"]),
               [P["size"], P["nsim"], P["power"], P["ci"], P["failed_column"]],
               [[r["size"], r["nsim"], r["power"], r["ci"], r["failed"]] for r in entry["rows"]],
               note=writer.render(entry["intro"]), L=L)


def _table(document, counter, title, header, rows, *, L, note=None, text_columns=(), font_size=9,
           merge_from=None, merge_width=3):
    """An APA table: 'Table n' (bold), the title (italic), rules above and below the head and
    below the body, a note in a smaller font. merge_from: from that row on, each model's
    merge_width cells are one (the random part of the side-by-side table)."""
    from docx.enum.table import WD_TABLE_ALIGNMENT
    from docx.shared import Pt

    labels = L
    number = counter.next()
    caption = document.add_paragraph()
    caption.paragraph_format.space_after = Pt(0)
    caption.paragraph_format.keep_with_next = True
    run = caption.add_run(f"{labels['report']['table']} {number}")
    run.bold = True
    title_paragraph = document.add_paragraph()
    title_paragraph.paragraph_format.keep_with_next = True
    title_paragraph.add_run(title).italic = True

    table = document.add_table(rows=1 + len(rows), cols=len(header))
    table.alignment = WD_TABLE_ALIGNMENT.LEFT
    table.autofit = True
    for j, text in enumerate(header):
        _cell(table.cell(0, j), text, font_size, align_left=(j == 0 or j in text_columns))
    for i, row in enumerate(rows, start=1):
        for j, text in enumerate(row):
            _cell(table.cell(i, j), text, font_size, align_left=(j == 0 or j in text_columns))
    if merge_from is not None:
        for i in range(1 + merge_from, 1 + len(rows)):
            for j in range(1, len(header), merge_width):
                value = table.cell(i, j).text
                merged = table.cell(i, j).merge(table.cell(i, j + merge_width - 1))
                for paragraph in merged.paragraphs[1:]:
                    paragraph._p.getparent().remove(paragraph._p)
                _cell(merged, value, font_size, align_left=False, center=True)
    _three_lines(table)
    if note:
        paragraph = document.add_paragraph()
        paragraph.add_run(labels["report"]["note"]).italic = True
        run = paragraph.add_run(labels["report"]["note_sep"] + note)
        run.font.size = Pt(font_size)
    else:
        document.add_paragraph()
    return table


def _cell(cell, text, font_size, align_left, center=False):
    from docx.enum.text import WD_ALIGN_PARAGRAPH
    from docx.shared import Pt
    cell.text = ""
    paragraph = cell.paragraphs[0]
    paragraph.paragraph_format.space_after = Pt(0)
    paragraph.alignment = (WD_ALIGN_PARAGRAPH.CENTER if center else
                           WD_ALIGN_PARAGRAPH.LEFT if align_left else WD_ALIGN_PARAGRAPH.RIGHT)
    lines = str(text).split("\n")
    for k, line in enumerate(lines):
        run = paragraph.add_run(line)
        run.font.size = Pt(font_size)
        if k < len(lines) - 1:
            run.add_break()


def _three_lines(table):
    """Borders: thick above the head, thin below it, thick below the last row; nothing else."""
    from docx.oxml import OxmlElement
    from docx.oxml.ns import qn

    tbl_pr = table._tbl.tblPr
    borders = OxmlElement("w:tblBorders")
    for edge in ("top", "left", "bottom", "right", "insideH", "insideV"):
        element = OxmlElement(f"w:{edge}")
        element.set(qn("w:val"), "nil")
        borders.append(element)
    tbl_pr.append(borders)
    last = len(table.rows) - 1
    for i, row in enumerate(table.rows):
        for cell in row.cells:
            edges = {}
            if i == 0:
                edges = {"top": RULE_THICK, "bottom": RULE_THIN}
            if i == last:
                edges["bottom"] = RULE_THICK
            if edges:
                _cell_borders(cell, edges)


def _cell_borders(cell, edges):
    from docx.oxml import OxmlElement
    from docx.oxml.ns import qn
    tc_pr = cell._tc.get_or_add_tcPr()
    existing = tc_pr.find(qn("w:tcBorders"))
    borders = existing if existing is not None else OxmlElement("w:tcBorders")
    for edge, size in edges.items():
        old = borders.find(qn(f"w:{edge}"))
        if old is not None:
            borders.remove(old)
        element = OxmlElement(f"w:{edge}")
        element.set(qn("w:val"), "single")
        element.set(qn("w:sz"), str(size))
        element.set(qn("w:space"), "0")
        element.set(qn("w:color"), "000000")
        borders.append(element)
    if existing is None:
        tc_pr.append(borders)


def _fonts(document):
    """Times New Roman for Latin text and 宋体 for Chinese, in the Normal style."""
    from docx.oxml.ns import qn
    from docx.shared import Pt
    style = document.styles["Normal"]
    style.font.name = FONT_LATIN
    style.font.size = Pt(11)
    fonts = style.element.rPr.rFonts
    fonts.set(qn("w:eastAsia"), FONT_EAST_ASIA)


# ---- deterministic bytes ------------------------------------------------------------------------

def _normalise_zip(data):
    """The same zip with every entry dated FIXED_DATE (python-docx stamps the current time)."""
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as target:
        for item in source.infolist():
            info = zipfile.ZipInfo(item.filename, date_time=FIXED_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            target.writestr(info, source.read(item.filename))
    return out.getvalue()
