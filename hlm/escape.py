"""Text from data and configs (names, labels, titles), made inert for the place it is written.

A label is data, never syntax: whatever it holds (newlines, quotes, `#`, backticks, `$`,
link syntax), it must not change the structure of the YAML or Markdown it is written into.
One function per destination (LaTeX: report.equations.latex_name; HTML: Jinja's autoescape;
figures: no mathtext, figures.style).
"""
import re

import yaml

# PyYAML ends a line (and so a comment) at \r \n \x85 \u2028 \u2029, not only at \n
_UNSAFE_IN_COMMENT = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\ufeff\ud800-\udfff\ufffe\uffff]")
# what starts emphasis, code, math, citations, attributes, tables, sub- and superscripts and
# closing heading marks in pandoc's Markdown or CommonMark; a `<` or `&` that would start a tag,
# autolink or entity; a `]` that would close a link, image or span (`](`, `][`, `]{`). Plain
# brackets and comparisons, as in [-1.2, 3.4] and p < .001, stay as they are.
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_$#|~^@{}]|<(?=[A-Za-z/!?])|&(?=[#A-Za-z])|\](?=[(\[{]))")


def yaml_string(text):
    """A double-quoted YAML scalar that reads back as exactly `text` (line breaks and control
    characters escaped, never folded)."""
    dumped = yaml.dump(str(text), default_style='"', allow_unicode=True, width=float("inf"))
    return dumped.rstrip("\n").removesuffix("\n...")


def yaml_comment_text(text):
    """Text for inside a YAML comment: anything that would end the line, escaped."""
    return _UNSAFE_IN_COMMENT.sub(lambda m: f"\\u{ord(m.group()):04x}", str(text))


# the characters XML 1.0 cannot hold at all (Word's document.xml refuses them)
_NOT_IN_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def xml_text(text):
    """Text that XML can hold: each control character it cannot as U+FFFD (shown, not dropped)."""
    return _NOT_IN_XML.sub("\ufffd", str(text))


def one_line(text):
    """Text with every kind of line break (and tab) as a space."""
    return re.sub(r"[\r\n\t\x0b\x0c\x85\u2028\u2029]", " ", str(text))


def markdown_text(text):
    """Markdown (pandoc's and CommonMark's) that shows `text` literally: no emphasis, link,
    HTML, math or list from the characters it holds."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", one_line(text))


def code_span(text):
    """A Markdown code span holding `text` whatever backticks it contains: a fence longer than
    its longest run of backticks, padded with spaces."""
    text = one_line(text)
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    return f"{fence} {text} {fence}"


def code_block(text, info=""):
    """A fenced Markdown code block holding `text`: a fence longer than any run of backticks."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{info}\n{text}\n{fence}"
