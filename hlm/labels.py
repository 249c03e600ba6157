"""The report's words in Chinese and English: templates/labels.yaml, one entry per label.

Each leaf of labels.yaml is {zh: ..., en: ...}; `labels(language)` returns the same tree with
each leaf replaced by the text of one language, so templates write {{ L.data.title }}.
"""
from functools import lru_cache

import yaml

from .errors import ConfigError
from .resources import LABELS

LANGUAGES = ("zh", "en")


@lru_cache(maxsize=None)
def _table():
    return yaml.safe_load(LABELS.read_text(encoding="utf-8"))


def labels(language):
    """The label tree of one language ('zh' or 'en')."""
    if language not in LANGUAGES:
        raise ConfigError(f"report language '{language}' is not available; use zh or en")
    return _pick(_table(), language)


def _pick(node, language):
    if isinstance(node, dict) and set(node) <= set(LANGUAGES) and node:
        return node[language]
    if isinstance(node, dict):
        return {key: _pick(value, language) for key, value in node.items()}
    return node


def missing_translations(node=None, path=""):
    """Paths of leaves that lack a language (tests keep this empty)."""
    node = _table() if node is None else node
    if isinstance(node, dict) and node and set(node) <= set(LANGUAGES):
        return [] if set(node) == set(LANGUAGES) else [path]
    if isinstance(node, dict):
        return [p for key, value in node.items()
                for p in missing_translations(value, f"{path}.{key}" if path else key)]
    return [path]
