"""lme4's check.scaleX warning ("Some predictor variables are on very different scales"): hlm warns
for the fits lmer warned for (tests/fixtures/r/ref_scale_warning.R), on the 168 stored random
designs (7 warned, all with a predictor scaled by 1e3 or 1e-3: near the boundary) and on sleepstudy
with Days in minutes."""
import json

import pandas as pd
import pytest
from conftest import FIXTURES

from hlm.engine.design import SCALE_MESSAGE, build_design

REFERENCE = json.loads((FIXTURES / "scale_warning_lme4.json").read_text())


def scale_messages(formula, frame):
    return [m for m in build_design(formula, frame).messages if m.startswith(SCALE_MESSAGE)]


def test_the_message_is_lme4s():
    assert SCALE_MESSAGE == REFERENCE["message"]


def test_warns_for_the_random_designs_lmer_warned_for():
    designs = json.loads((FIXTURES / "random_designs_lme4.json").read_text())["designs"]
    warned = [bool(scale_messages(d["formula"], pd.DataFrame(d["data"]))) for d in designs]
    assert sum(REFERENCE["random_designs"]) == 7
    assert warned == REFERENCE["random_designs"]


SD = REFERENCE["sd"]   # R's sd() of the columns
DETAIL = {"sleepstudy_minutes": f"(the standard deviation of minutes is {SD['minutes']:.3g})",
          "sleepstudy_days": None,
          "sleepstudy_apart": f"(the standard deviations of small, {SD['small']:.3g}, and of Days, {SD['Days']:.3g}, "
                              "are more than 1,000 times apart)"}


@pytest.mark.parametrize("case", list(DETAIL))
def test_sleepstudy_in_days_in_minutes_and_beside_a_small_column(case):
    ref = REFERENCE[case]
    frame = pd.read_csv(FIXTURES / "data" / "sleepstudy.csv").assign(minutes=lambda d: d.Days * 1440,
                                                                     small=lambda d: d.Days ** 2 / 15000)
    messages = scale_messages(ref["formula"], frame)
    assert bool(messages) == ref["warned"]
    if ref["warned"]:   # lme4's words, then the columns it is about and their standard deviations
        assert messages == [f"{REFERENCE['message']} {DETAIL[case]}"]
