"""Result files: a damaged file is refused in one line naming it, and outdated so a rerun rebuilds it."""
import os

import pandas as pd
import pytest

from hlm.errors import ResultsError
from hlm.results.writers import is_intact, outdate_damaged, read_json, read_table, write_json, write_parquet


def test_truncated_files_are_refused_in_one_line(tmp_path):
    write_json(tmp_path / "m.json", {"fixef": {"(Intercept)": 12.6}})
    write_parquet(tmp_path / "t.parquet", pd.DataFrame({"y": [1.0, 2.0]}))
    for name, read in (("m.json", read_json), ("t.parquet", read_table)):
        path = tmp_path / name
        assert is_intact(path)
        path.write_bytes(path.read_bytes()[:-9])
        with pytest.raises(ResultsError) as info:
            read(path)
        message = str(info.value)
        assert message.startswith(f"result file '{path}' is damaged (") and "\n" not in message
        assert message.endswith("run the analysis again (snakemake --cores 2, or hlm run) to rebuild it")
        assert not is_intact(path)
    with pytest.raises(ResultsError, match="is missing; run the analysis again"):
        read_json(tmp_path / "none.json")


def test_damaged_files_are_made_older_than_any_input(tmp_path):
    write_json(tmp_path / "good.json", {"a": 1})
    (tmp_path / "bad.json").write_text('{"a": ')
    assert outdate_damaged([tmp_path / "good.json", tmp_path / "bad.json", tmp_path / "absent.json"]) == \
        [tmp_path / "bad.json"]
    assert os.stat(tmp_path / "bad.json").st_mtime == 0 and os.stat(tmp_path / "good.json").st_mtime > 0
