"""The power section and the bootstrap comparison in the report, from result records written here
by hand (the numbers the sentences must carry), in both languages and all three writers."""
from pathlib import Path

import pytest

from hlm.labels import labels
from hlm.report.power import power_views
from hlm.report.references import REFERENCES
from hlm.report.sections import comparison_views
from hlm.report.writers import HtmlWriter, MarkdownWriter, PlainWriter


def power_record(**changes):
    curve = [{"size": 20, "nsim": 100, "failed": 0, "messages": [], "power": 0.31, "ci_low": 0.2210, "ci_high": 0.4112},
             {"size": 40, "nsim": 100, "failed": 3, "messages": [{"message": "refit failed: x", "count": 3},
                                                                 {"message": "singular fit (kept)", "count": 7}],
              "power": 0.8144, "ci_low": 0.7227, "ci_high": 0.8862},
             {"size": 80, "nsim": 100, "failed": 100, "messages": [], "power": None, "ci_low": None, "ci_high": None}]
    record = {"name": "interaction", "model": "full", "term": "ses:disclim", "effect": 0.25, "along": "id",
              "alpha": 0.05, "nsim": 100, "seed": 7, "method": "Satterthwaite t", "curve": curve}
    return {**record, **changes}


class Results:
    def __init__(self, power=None, comparisons=None):
        self.power = {"interaction": power or power_record()}
        self.power_figures = {"interaction": {"svg": Path("a.svg"), "png": Path("a.png")}}
        self.comparisons = comparisons or {}
        self.models = {}       # no records: the comparison is described from its own record


def text(view, writer=PlainWriter()):
    return " ".join(writer.render(s) for s in [view["intro"], *view["sentences"]])


def test_the_paragraph_says_what_was_simulated_and_the_power_at_each_size():
    [view] = power_views(Results(), {"full": "Full model"}, labels("en"))
    said = text(view)
    assert ("The analysis interaction uses Full model: the fixed effect ses:disclim is tested (t test with "
            "Satterthwaite df, α = 0.05) with an assumed effect of 0.250") in said
    assert "the number of units of id is 20, 40, 80, with 100 simulations per size (seed 7)" in said
    assert ("with 20 units the power is 0.310 (95% CI [0.221, 0.411]), with 40 units the power is 0.814 "
            "(95% CI [0.723, 0.886])") in said
    assert "the smallest with a power of at least 0.80 is 40 units" in said
    assert "103 refits failed or did not converge (3 at 40 units, 100 at 80 units)" in said
    assert "7 of the 300 refits were singular" in said
    assert [row["power"] for row in view["rows"]] == ["0.310", "0.814", "—"]
    assert [row["failed"] for row in view["rows"]] == ["0", "3", "100"]


def test_no_size_reaching_80_percent_is_said_so_in_both_languages():
    record = power_record(curve=power_record()["curve"][:1])
    [en] = power_views(Results(record), {}, labels("en"))
    [zh] = power_views(Results(record), {}, labels("zh"))
    assert "None of the simulated sizes reaches a power of 0.80." in text(en)
    assert "Every refit converged." in text(en)
    assert "所模拟的样本量中没有一个的功效达到 0.80。" in text(zh)
    assert "20 个单元时功效为 0.310（95% CI [0.221, 0.411]）" in text(zh)
    assert "Kenward–Roger" in text(power_views(Results(power_record(method="Kenward-Roger")), {}, labels("zh"))[0])


@pytest.mark.parametrize("writer", [HtmlWriter(), MarkdownWriter()])
def test_names_from_the_config_cannot_change_the_page(writer):
    record = power_record(term="a<b>*_`x`_", along="<script>alert(1)</script>")
    [view] = power_views(Results(record), {}, labels("en"))
    page = text(view, writer) + writer.render(view["figure"]["caption"])
    if isinstance(writer, HtmlWriter):
        assert "<script>" not in page and "<b>" not in page and "&lt;script&gt;" in page
    else:  # Markdown shows them as code spans, whose content is never markup
        assert page.count("<script>") == page.count("` <script>alert(1)</script> `") == 3
        assert page.count("a<b>") == page.count("`` a<b>*_`x`_ ``") == 2


def test_the_bootstrap_p_value_stands_beside_the_chi_square_test():
    rows = [{"model": "ri", "npar": 4, "AIC": 1.0, "BIC": 2.0, "logLik": -1.0, "deviance": 2.0},
            {"model": "rs", "npar": 6, "AIC": 1.5, "BIC": 2.5, "logLik": 0.0, "deviance": 0.0, "Chisq": 4.5354,
             "Df": 2, "p": 0.1035}]
    record = {"models": ["ri", "rs"], "table": rows, "refitted_with_ML": [],
              "bootstrap": {"method": "PBmodcomp", "seed": 1, "lrt": 4.5354, "df": 2, "p_chisq": 0.1035,
                            "p_bootstrap": 0.0476, "nsim": 1000, "failed": 2, "n_positive": 990, "n_extreme": 46}}
    [view] = comparison_views(Results(comparisons={"rs_vs_ri": record}), {}, labels("en"))
    assert view["bootstrap"] and [row["p_bootstrap"] for row in view["rows"]] == ["", ".048"]
    said = " ".join(PlainWriter().render(s) for s in view["sentences"])
    assert "χ²(2) = 4.54, p = .103" in said
    assert "1,000 outcomes were simulated from the simpler model (seed 1)" in said
    assert "with the 990 positive likelihood-ratio statistics as the reference, p = .048" in said
    assert "2 refits failed and are left out" in said
    assert "Halekoh & Højsgaard, 2014" in said and "halekoh2014" in REFERENCES
    [zh] = comparison_views(Results(comparisons={"rs_vs_ri": record}), {}, labels("zh"))
    assert "从较简单的模型模拟 1,000 次因变量" in " ".join(PlainWriter().render(s) for s in zh["sentences"])
