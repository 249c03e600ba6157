"""Errors a user can fix. Each message names the offending thing and the fix.

The CLI and the workflow print these as one line (exit code 2) instead of a traceback.
"""
import difflib


class HlmError(Exception):
    """Base class: a user mistake or an impossible request, never a bug."""


class DataError(HlmError):
    """The data file cannot be read or does not suit the model."""


class FormulaError(HlmError):
    """The formula cannot be parsed or refers to something that does not exist."""


class ModelError(HlmError):
    """The model cannot be fitted as specified."""


class ResultsError(HlmError):
    """A result file is missing or damaged (truncated, not JSON or parquet): rerun to rebuild it."""


class ConfigError(HlmError):
    """The analysis config names a missing key, model, column or file."""


class UsageError(HlmError):
    """A command cannot do what it was asked: a folder without results, a tolerance that is not
    a number, another run already working in the folder."""


def did_you_mean(name, candidates):
    """A ' did you mean ...?' suffix naming the closest candidate, or ''."""
    close = difflib.get_close_matches(str(name), [str(c) for c in candidates], n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""
