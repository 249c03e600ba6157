"""lmerTest's model class: a fit with t-tests, F-tests, intervals and lme4's printout.

As lmerTest's lmerModLmerTest extends lme4's merMod, LmerTestModel extends the engine's
LinearMixedModel with what needs inference; `lmer()` returns one.
"""
import html

from ..engine.design import build_design
from ..engine.model import LinearMixedModel, fit_design
from ..vocabulary import ddf_method
from .contrasts import anova_terms, coef_table
from .intervals import confint
from .summary import format_summary, model_dict


def lmer(formula, data, REML=True, optimizer=None, control=None):
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

    def _repr_html_(self):
        """How Jupyter shows the model: what was fitted, and the fixed effects with Satterthwaite's
        df as an HTML table. Every name (formula, terms, groups) is escaped: they come from data."""
        method = "REML" if self.REML else "maximum likelihood"
        criterion = (f"REML criterion {self.reml_criterion:.1f}" if self.REML
                     else f"logLik {self.loglik:.1f}")
        groups = ", ".join(f"{html.escape(str(g))}: {n}" for g, n in self.ngroups.items())
        table = self.coef_table(ddf="Satterthwaite")
        header = "".join(f"<th>{html.escape(str(c))}</th>" for c in table.columns)
        rows = "".join(f"<tr><th>{html.escape(str(term))}</th>"
                       + "".join(f"<td>{_cell(column, value)}</td>" for column, value in row.items()) + "</tr>"
                       for term, row in table.iterrows())
        return (f"<div><p>Linear mixed model fit by {method}: <code>{html.escape(self.formula)}</code><br>"
                f"{self.nobs} observations; groups {groups}; {criterion}</p>"
                f"<table><thead><tr><th></th>{header}</tr></thead><tbody>{rows}</tbody></table></div>")


def _cell(column, value):
    return f"{value:.3g}" if column.startswith("Pr(") else f"{value:.5g}"
