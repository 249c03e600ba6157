"""Every interaction the simple slopes do not probe gets one sentence saying why, also when
another interaction of the same model is probed (issue: I() and three-way terms)."""
import json

import pytest
from conftest import hsb_frame

import hlm
from hlm.analysis.simple_slopes import choose_interaction, simple_slopes
from hlm.labels import labels
from hlm.report.sections import figure_views
from hlm.report.writers import PlainWriter
from hlm.results.writers import jsonable
from hlm.results.records import model_record

FORMULA = "mathach ~ ses * disclim + I(ses^2):disclim + ses:female:disclim + ses:female + female + (1 | id)"


@pytest.fixture(scope="module")
def probed_and_not():
    """The model's record and its simple slopes record (ses × disclim, the cross-level one)."""
    frame = hsb_frame()
    spec = {"name": "full", "formula": FORMULA, "REML": True, "optimizer": "bobyqa", "ddf": "Satterthwaite"}
    model = hlm.lmer(FORMULA, frame)
    choice = choose_interaction(model.design)
    slopes = json.loads(json.dumps(jsonable(simple_slopes(model, *choice, frame))))
    return json.loads(json.dumps(jsonable(model_record(model, spec)))), slopes


def sentences(record, slopes, language):
    class Results:
        config = {"diagnostics": ["full"]}
        figures, trajectories = {}, {}
        models = {"full": record}
        simple_slopes = {"full": slopes} if slopes else {}
    view = figure_views(Results, {"full": "Full model"}, {}, labels(language))[0]
    return [PlainWriter().render(s) for s in view["sentences"]]


def test_the_other_interactions_say_why_they_are_not_probed(probed_and_not):
    record, slopes = probed_and_not
    assert (slopes["predictor"], slopes["moderator"]) == ("ses", "disclim")
    said = sentences(record, slopes, "en")
    assert said[0].startswith("Johnson–Neyman interval: the simple slope of ses")
    assert said[1:] == [
        "The interaction disclim:I(ses^2) is not probed with simple slopes: it involves a transformed variable "
        "(I() or a function); add the transformed column to the data and use it instead.",
        "The interaction ses:female is not probed with simple slopes: the simple slopes probe one interaction "
        "per model, here ses × disclim.",
        "The interaction ses:disclim:female is not probed with simple slopes: it is a three-way interaction; "
        "probe it by fitting the model within each category of one of its variables.",
    ]
    zh = sentences(record, slopes, "zh")
    assert len(zh) == 4 and zh[2] == "交互项 ses:female 未做简单斜率分析：每个模型只探查一个交互，这里探查的是 ses × disclim。"


def test_without_a_probed_interaction_every_interaction_gets_its_reason(probed_and_not):
    record, _ = probed_and_not
    said = sentences(record, None, "en")
    assert len(said) == 4 and said[0].startswith("The interaction ses:disclim is not probed")
