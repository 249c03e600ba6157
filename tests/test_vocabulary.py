"""One vocabulary: every spelling the config accepts works in the API and prints one name."""
import pytest

from hlm.errors import ModelError
from hlm.vocabulary import DDF_METHODS, OPTIMIZERS, ddf_method, optimizer_name

HEADINGS = {"Satterthwaite": ". t-tests use Satterthwaite's method", "Kenward-Roger": ". t-tests use Kenward-Roger's method",
            "residual": ". t-tests use residual df method", "lme4": None}


@pytest.mark.parametrize("spelling, name", [(name, name) for name in DDF_METHODS] + [
    ("satterthwaite", "Satterthwaite"), ("kenward-roger", "Kenward-Roger"), ("KR", "Kenward-Roger"),
    ("kenward_roger", "Kenward-Roger"), ("Residual", "residual"), ("LME4", "lme4")])
def test_every_ddf_spelling_works_in_summary_and_the_coefficient_table(models, spelling, name):
    model = models.fit("hsb", "random_slope")
    assert ddf_method(spelling) == name
    first_line = model.summary(ddf=spelling).splitlines()[0]
    if HEADINGS[name] is None:
        assert first_line == "Linear mixed model fit by maximum likelihood"
        assert list(model.coef_table(ddf=spelling).columns) == ["Estimate", "Std. Error", "t value"]
    else:
        assert first_line == "Linear mixed model fit by maximum likelihood" + HEADINGS[name]
        assert "df" in model.coef_table(ddf=spelling).columns


def test_optimizer_spellings_and_unknown_names():
    assert [optimizer_name(n) for n in OPTIMIZERS] == list(OPTIMIZERS)
    assert optimizer_name("Nelder-Mead") == "nelder_mead" and optimizer_name("BOBYQA") == "bobyqa"
    with pytest.raises(ModelError, match="ddf 'satterthwait' is unknown; did you mean 'Satterthwaite'"):
        ddf_method("satterthwait")
    with pytest.raises(ModelError, match="optimizer 'newton' is unknown"):
        optimizer_name("newton")
