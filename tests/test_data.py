"""Reading data files: separators, ids that must keep their identity."""
import numpy as np
import pandas as pd
import pytest

import hlm
from hlm.data import Dataset, prepare, read_data


def test_semicolon_csv_with_decimal_commas_is_read_as_numbers(tmp_path):
    # as LibreOffice and Excel export a table in a German or French locale
    path = tmp_path / "eu.csv"
    path.write_text("y;x;g\n1,5;2,25;1\n2,5;3;1\n3;4,5;2\n", encoding="utf-8")
    frame = read_data(path).frame
    assert list(frame.columns) == ["y", "x", "g"]
    assert frame["y"].tolist() == [1.5, 2.5, 3.0] and frame["x"].tolist() == [2.25, 3.0, 4.5]


def test_comma_csv_is_unchanged(tmp_path):
    path = tmp_path / "plain.csv"
    path.write_text('y,label\n1.5,"a; b"\n2,c\n', encoding="utf-8")
    frame = read_data(path).frame
    assert frame["y"].tolist() == [1.5, 2.0] and frame["label"].tolist() == ["a; b", "c"]


@pytest.mark.parametrize("base", [2.0 ** 63, 2.0 ** 64, 1e19])
def test_huge_whole_number_ids_stay_distinct_in_every_path(base):
    # SPSS stores ids as doubles: ids at or above 2^63 overflow int64 and became one group
    rng = np.random.default_rng(1)
    ids = np.repeat([base, np.nextafter(base, np.inf), np.nextafter(np.nextafter(base, np.inf), np.inf)], 20)
    y = np.repeat([0.0, 3.0, 6.0], 20) + rng.standard_normal(60)
    frame = pd.DataFrame({"g": ids, "y": y})
    analysed, summary = prepare(Dataset(frame), "g", {})
    assert summary["n_groups"] == 3 and analysed["g"].nunique() == 3
    direct = hlm.lmer("y ~ 1 + (1 | g)", frame)
    piped = hlm.lmer("y ~ 1 + (1 | g)", analysed)
    assert direct.ngroups == piped.ngroups == {"g": 3}
    assert piped.loglik == pytest.approx(direct.loglik, abs=1e-9)


def test_ordinary_float_ids_become_integers():
    analysed, summary = prepare(Dataset(pd.DataFrame({"g": [1224.0, 1224.0, 1288.0], "y": [1.0, 2, 3]})), "g", {})
    assert analysed["g"].dtype == "int64" and list(summary["group_sizes"]["counts"]) == ["1224", "1288"]
