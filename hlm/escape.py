"""Text from data and configs (names, labels, titles), made inert for the place it is written.

A label is data, never syntax: whatever it holds (newlines, quotes, `#`, backticks, `$`,
link syntax), it must not change the structure of the YAML, Markdown, LaTeX or matplotlib
text it is written into. One function per destination.
"""
import re

import yaml

# PyYAML ends a line (and so a comment) at each of these, not only at \n
YAML_LINE_BREAKS = "\r\n\x85\u2028\u2029"
_UNSAFE_IN_COMMENT = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\ufeff\ud800-\udfff\ufffe\uffff]")
_MARKDOWN_PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")  # every ASCII punctuation mark
_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "{": r"\{", "}": r"\}", "$": r"\$", "&": r"\&",
                  "#": r"\#", "^": r"\^{}", "_": r"\_", "%": r"\%", "~": r"\~{}"}


def yaml_string(text):
    """A double-quoted YAML scalar that reads back as exactly `text` (line breaks and control
    characters escaped, never folded)."""
    dumped = yaml.dump(str(text), default_style='"', allow_unicode=True, width=float("inf"))
    return dumped.rstrip("\n").removesuffix("\n...")


def yaml_comment_text(text):
    """Text for inside a YAML comment: anything that would end the line, escaped."""
    return _UNSAFE_IN_COMMENT.sub(lambda m: f"\\u{ord(m.group()):04x}", str(text))


def one_line(text):
    """Text with every kind of line break (and tab) as a space."""
    return re.sub(r"[\r\n\t\x0b\x0c\x85\u2028\u2029]", " ", str(text))


def markdown_text(text):
    """Markdown (pandoc's and CommonMark's) that shows `text` literally: no emphasis, link,
    HTML, math or list from the characters it holds."""
    return _MARKDOWN_PUNCTUATION.sub(r"\\\1", one_line(text))


def code_span(text):
    """A Markdown code span holding `text` whatever backticks it contains: a fence longer than
    its longest run of backticks, padded with spaces."""
    text = one_line(text)
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    return f"{fence} {text} {fence}"


def latex_text(text):
    """Text for inside LaTeX's \\text{...} (or \\mathrm{...}): its special characters escaped."""
    return "".join(_LATEX_SPECIAL.get(c, c) for c in one_line(text))


def mathtext_literal(text):
    """Text matplotlib draws as written: `$` escaped, so `$x$` is not parsed as mathtext."""
    return str(text).replace("$", r"\$")
