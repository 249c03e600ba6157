"""hlm: multilevel (linear mixed) models with lme4's numbers.

The public names load their modules on first use, so `import hlm` (which every Snakemake job
and CLI call does) stays cheap until a model is actually fitted.
"""
import importlib

from .errors import HlmError

_EXPORTS = {
    "LinearMixedModel": "model", "lmer": "model",
    "anova_terms": "inference", "coef_table": "inference", "confint": "inference",
    "allfit": "compare", "anova": "compare", "contextual": "compare", "icc": "compare",
    "r2_nakagawa": "compare", "variance_explained": "compare",
}

__all__ = ["HlmError", *_EXPORTS]


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module 'hlm' has no attribute '{name}'")
