"""Sentences that each output renders its own way.

Sentences are kept as (template, values) pairs (`Say`) until a writer renders them, so that a
symbol becomes MathML in HTML, $LaTeX$ in Markdown and Unicode (γ₁₀) in Word; names (`Code`)
are escaped for the place they go.
"""
import html
import string
from dataclasses import dataclass

from ..escape import code_span, markdown_text
from .equations import Math


@dataclass(frozen=True)
class Code:
    """A name shown as code: a model, a variable, a formula."""
    text: str


@dataclass(frozen=True)
class Say:
    """A sentence: a label template (str.format) and the values to fill in. Values are plain
    text, Code, Math (a symbol), or nested Say / lists of Say (joined by `sep`)."""
    template: str
    values: tuple = ()
    sep: str = ""

    @staticmethod
    def of(template, **values):
        return Say(template, tuple(sorted(values.items())))


class Writer:
    """How one output format renders text, code, math and sentences."""

    def text(self, value):
        return str(value)

    def code(self, value):
        return str(value)

    def math(self, value):
        return value.text

    def render(self, value):
        if isinstance(value, Say):
            return self.say(value)
        if isinstance(value, (list, tuple)):
            return "".join(self.render(v) for v in value)
        if isinstance(value, Code):
            return self.code(value.text)
        if isinstance(value, Math):
            return self.math(value)
        return self.text(value)

    def say(self, sentence):
        """The template's text escaped for the format, its fields filled with rendered values."""
        values = {key: self.render(value) for key, value in sentence.values}
        out = []
        for literal, field, _, _ in string.Formatter().parse(sentence.template):
            out.append(self.text(literal))
            if field is not None:
                out.append(values[field])
        return "".join(out)


class HtmlWriter(Writer):
    def text(self, value):
        return html.escape(str(value))  # quotes too: safe in an attribute as well

    def code(self, value):
        return f"<code>{html.escape(value)}</code>"

    def math(self, value):
        return value.mathml()


class MarkdownWriter(Writer):
    def text(self, value):
        return markdown_text(value)

    def code(self, value):
        return code_span(value)

    def math(self, value):
        return f"${value.latex}$"


class PlainWriter(Writer):
    """Word: Unicode symbols, no markup."""


def _say(template, **values):
    return Say.of(template, **values)


def joined(parts, sep):
    """Parts with a separator between them, as one value a Say can hold (a list in a sentence)."""
    out = []
    for i, part in enumerate(parts):
        out.extend([sep, part] if i else [part])
    return out
