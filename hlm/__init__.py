"""hlm: multilevel (linear mixed) models with lme4's numbers."""
from .errors import HlmError
from .model import LinearMixedModel, lmer

__all__ = ["HlmError", "LinearMixedModel", "lmer"]
