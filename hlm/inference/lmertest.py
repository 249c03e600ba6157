"""lmerTest's model class: a fit with t-tests, F-tests, intervals and lme4's printout.

As lmerTest's lmerModLmerTest extends lme4's merMod, LmerTestModel extends the engine's
LinearMixedModel with what needs inference; `lmer()` returns one.
"""
from ..engine.design import build_design
from ..engine.model import LinearMixedModel, fit_design
from ..vocabulary import ddf_method
from .contrasts import anova_terms, coef_table
from .intervals import confint
from .summary import format_summary, model_dict


def lmer(formula, data, REML=True, optimizer="bobyqa", control=None):
    """Fit a linear mixed model as lmerTest::lmer does (REML by default)."""
    return fit_design(build_design(formula, data), REML=REML, optimizer=optimizer, control=control,
                      model_class=LmerTestModel)


class LmerTestModel(LinearMixedModel):
    """A fitted model whose coefficient table, anova and summary carry denominator df."""

    def coef_table(self, ddf=None):
        """Estimate, Std. Error, t value; with ddf (Satterthwaite, Kenward-Roger, residual) also
        df and Pr(>|t|), as lmerTest prints them."""
        plain = ddf is None or ddf_method(ddf) == "lme4"
        return super().coef_table() if plain else coef_table(self, ddf)

    def anova(self, ddf="Satterthwaite"):
        """lmerTest's type III anova(m): an F-test of each fixed term."""
        return anova_terms(self, ddf)

    def confint(self, method="profile", level=0.95, **options):
        """Intervals for variance components and fixed effects, as lme4's confint.merMod."""
        return confint(self, method, level, **options)

    def summary(self, ddf="Satterthwaite"):
        """summary(m) as lmerTest prints it; ddf=None prints lme4's plain t table."""
        return format_summary(self, ddf)

    def to_dict(self):
        """Every number of the fit, with the key names of lme4's reference JSON."""
        return model_dict(self)
