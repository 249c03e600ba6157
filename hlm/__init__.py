"""hlm: multilevel (linear and generalized linear mixed) models with lme4's numbers.

The public names load their modules on first use, so `import hlm` (which every Snakemake job
and CLI call does) stays cheap until a model is actually fitted.
"""
import importlib

from .errors import HlmError

_EXPORTS = {
    "LinearMixedModel": "engine.model", "LmerTestModel": "inference.lmertest",
    "lmer": "inference.lmertest",
    "GeneralizedLinearMixedModel": "engine.glmm", "GlmerModel": "inference.glmm", "glmer": "inference.glmm",
    "anova_terms": "inference.contrasts", "coef_table": "inference.contrasts",
    "confint": "inference.intervals",
    "anova": "analysis.lrt", "icc": "analysis.variance", "r2_nakagawa": "analysis.variance",
    "variance_explained": "analysis.variance", "contextual": "analysis.contextual",
    "allfit": "analysis.allfit",
    "simulate": "engine.simulate", "PowerSpec": "analysis.power", "power_curve": "analysis.power",
    "pbmodcomp": "analysis.pbmodcomp",
}

__all__ = ["HlmError", *_EXPORTS]


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module 'hlm' has no attribute '{name}'")
