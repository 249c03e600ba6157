"""hlm: multilevel (linear mixed) models with lme4's numbers."""
from .errors import HlmError
from .model import LinearMixedModel, lmer
from .inference import anova_terms, coef_table, confint
from .compare import allfit, anova, contextual, icc, r2_nakagawa, variance_explained

__all__ = ["HlmError", "LinearMixedModel", "lmer",
           "anova_terms", "coef_table", "confint",
           "allfit", "anova", "contextual", "icc", "r2_nakagawa", "variance_explained"]
