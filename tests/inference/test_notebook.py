"""A model in Jupyter: _repr_html_ shows lme4's fixed effects as an HTML table, names escaped."""
import html
import re

import numpy as np
import pandas as pd
from conftest import HSB

import hlm


def cells(markup):
    """The rows of the HTML table: [[header, cell, ...], ...], unescaped."""
    body = markup.split("<tbody>", 1)[1]
    return [[html.unescape(c) for c in re.findall(r"<t[hd]>(.*?)</t[hd]>", row)]
            for row in re.findall(r"<tr>(.*?)</tr>", body)]


def test_html_shows_lme4s_fixed_effects_with_satterthwaite_df(models):
    # summary(lmer(mathach ~ ses * disclim + (ses | id), hsb)) with lmerTest's Satterthwaite df
    ref = HSB["full_reml"]
    markup = models.fit("hsb", "full_reml")._repr_html_()
    assert "fit by REML" in markup and f"REML criterion {ref['REMLcrit']:.1f}" in markup
    rows = {row[0]: row[1:] for row in cells(markup)}
    assert list(rows) == list(ref["fixef"])
    for term, (estimate, se, df, t, p) in rows.items():
        assert estimate == f"{ref['fixef'][term]:.5g}", term
        assert se == f"{ref['se'][term]:.5g}", term
        assert df == f"{ref['df_satterthwaite'][term]:.5g}", term
        assert float(p) == float(f"{ref['p'][term]:.3g}"), term


def test_every_name_is_escaped():
    rng = np.random.default_rng(7)
    groups = np.repeat(np.arange(20), 10)
    frame = pd.DataFrame({"y": rng.normal(size=200) + groups / 10, "g<x>": groups,
                          "grp": np.where(rng.random(200) < 0.5, "a", 'z<script>&"')})
    markup = hlm.lmer("y ~ grp + (1 | `g<x>`)", frame)._repr_html_()
    assert "<script>" not in markup and "g<x>" not in markup
    assert "grpz&lt;script&gt;&amp;&quot;" in markup and "g&lt;x&gt;: 20" in markup
    assert [row[0] for row in cells(markup)] == ["(Intercept)", 'grpz<script>&"']


def test_summary_stays_plain_text(models):
    text = models.fit("hsb", "full_reml").summary()
    assert text.startswith("Linear mixed model fit by REML") and "<t" not in text
