"""Writing the report: report.html (one self-contained file: inline CSS, figures as inline SVG,
equations as MathML, nothing fetched from the network), report.md (pandoc-friendly Markdown with
LaTeX math, figures as PNG files beside it) and tables.docx, from one view. Outputs are written
atomically and are deterministic: no clock, no random ids.
"""
import shutil
from pathlib import Path

from ..escape import code_block, markdown_text, one_line, yaml_string
from ..resources import TEMPLATES
from ..results.writers import _atomic, write_text
from .docx import write_docx
from .equations import Math
from .inputs import load_results
from .pdf import write_pdf
from .sections import inline_svg
from .view import build_view
from .writers import HtmlWriter, MarkdownWriter


def _environment(writer, autoescape):
    import jinja2
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=autoescape,
                             trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
                             undefined=jinja2.StrictUndefined)
    wrap = jinja2.utils.markupsafe.Markup if autoescape else str
    env.filters["say"] = lambda value: wrap(writer.render(value))
    env.filters["sym"] = lambda value: wrap(writer.math(value)) if isinstance(value, Math) else (
        wrap(writer.text(value)) if value else "")
    env.filters["code"] = lambda value: wrap(writer.code(str(value)))
    env.filters["text"] = lambda value: wrap(writer.text(value))
    return env


def render_html(view):
    env = _environment(HtmlWriter(), autoescape=True)
    import jinja2
    env.filters["svg"] = lambda path: jinja2.utils.markupsafe.Markup(inline_svg(path)) if path else ""
    env.filters["display_math"] = lambda eqs_which: jinja2.utils.markupsafe.Markup(
        eqs_which[0].mathml_block(eqs_which[1]))
    return env.get_template("report.html.j2").render(**view)


def render_markdown(view, figure_dir=None, md_path=None):
    env = _environment(MarkdownWriter(), autoescape=False)

    def figure_link(path):
        if not path:
            return ""
        if figure_dir is None or md_path is None:
            return Path(path).name
        target = Path(figure_dir) / Path(path).name
        return Path(_relative(target, Path(md_path).parent)).as_posix()

    env.filters["figure_link"] = figure_link
    env.filters["latex_block"] = lambda eqs_which: eqs_which[0].latex_block(eqs_which[1])
    env.filters["cell"] = one_line  # text() has escaped | already
    env.filters["yaml_markdown"] = lambda value: yaml_string(markdown_text(value))  # pandoc reads metadata as Markdown
    env.filters["code_block"] = code_block
    env.globals["id"] = lambda name: "{#" + name + "}"   # pandoc's {#id}, which Jinja reads as a comment
    return env.get_template("report.md.j2").render(**view)


def _relative(target, start):
    import os
    return os.path.relpath(Path(target).resolve(), Path(start).resolve())


def copy_figures(view, directory):
    """The PNG figures next to report.md (results/report/figures/)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for figure in png_figures(view):
        source = Path(figure["png"])
        _atomic(directory / source.name, lambda tmp, s=source: shutil.copyfile(s, tmp))


def png_figures(view):
    """Every figure of the report that has a PNG file (the Markdown links them)."""
    figures = [figure for block in view["diagnostics"] for figure in block["figures"]]
    return [figure for figure in figures + [p["figure"] for p in view["power"]] if figure["png"]]


def render_report(manifest_path, outputs):
    """Write the report formats named in `outputs` (html, md, docx, pdf -> path; figures -> the
    folder for the Markdown's PNGs) from a run's results/manifest.json."""
    results = load_results(manifest_path)
    language = results.config.get("report", {}).get("language", "en")
    view = build_view(results, language)
    if "html" in outputs or "pdf" in outputs:
        page = render_html(view)
        if "html" in outputs:
            write_text(outputs["html"], page)
        if "pdf" in outputs:
            write_pdf(page, outputs["pdf"])
    if "md" in outputs:
        figure_dir = outputs.get("figures") or Path(outputs["md"]).parent / "figures"
        if png_figures(view):
            copy_figures(view, figure_dir)
        write_text(outputs["md"], render_markdown(view, figure_dir, outputs["md"]))
    if "docx" in outputs:
        write_docx(view, outputs["docx"])
    return view
