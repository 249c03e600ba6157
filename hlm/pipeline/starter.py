"""A starter config for a data file: its variables with their labels and levels, and a guessed
group id.
"""
import re
from pathlib import Path

from ..data import level_of, missing_codes_line, read_data, suspect_missing_codes
from ..errors import ConfigError, DataError
from ..results.writers import write_text
from .config import DEFAULT_CONFIG

ID_HINTS = re.compile(r"(^|_)(id|ids|school|schid|sch|class|classid|cluster|group|grp|"
                      r"subject|subj|participant|pid|sid|team|unit|site|country|clinic)($|_|id)",
                      re.IGNORECASE)


def write_starter_config(data_path, output_path=DEFAULT_CONFIG, force=False):
    """Write a config for a data file: its variables (with labels) and a guessed group id."""
    output = Path(output_path)
    if output.exists() and not force:
        raise ConfigError(f"'{output}' already exists; choose another file with -o, or --force to replace it")
    dataset = read_data(data_path)
    text = starter_config(dataset, str(data_path))
    output.parent.mkdir(parents=True, exist_ok=True)
    write_text(output, text)
    return output


def _missing_codes_line(dataset, group, commented):
    """missing_codes with the values that look like forgotten codes (data.suspect_missing_codes)
    proposed, or empty; the comment says which column holds them, to be checked."""
    suspects = suspect_missing_codes(dataset, (), skip=[group])
    if not suspects:
        return commented("  missing_codes: []", "values that mean 'missing', e.g. [-99, 999]")
    where = ", ".join(f"{s['column']} {s['value']} ({s['count']} rows)" for s in suspects)
    return commented(f"  {missing_codes_line(suspects)}", f"proposed, check them: {where}")


def starter_config(dataset, data_path):
    """The text of a starter config (YAML with comments) for a Dataset."""
    frame = dataset.frame
    group = guess_group(frame)
    if group is None:
        raise DataError(f"no column of '{data_path}' looks like a group id (a column whose values "
                        "repeat); add one, or write the config by hand (see config/README.md)")
    levels = {c: level_of(frame, c, group) for c in frame.columns if c != group}
    numeric = [c for c in frame.columns if c != group and frame[c].dtype.kind in "fiu"]
    outcome = next((c for c in numeric if levels[c] == 1 and frame[c].nunique() > 2),
                   numeric[0] if numeric else next(c for c in frame.columns if c != group))
    q = _quote
    def commented(line, comment):
        return f"{line:<25}# {comment}"

    lines = [
        "# hlm analysis config (every key: config/README.md). Run it with: hlm run <this file>",
        f"title: {q('Multilevel analysis of ' + Path(data_path).name)}",
        "",
        "data:",
        f"  path: {q(data_path)}",
        commented(f"  group: {q(group)}", "the level-2 id (guessed: check it)"),
        commented("  missing: listwise", "listwise: every model uses the same rows; per_model: as lme4"),
        _missing_codes_line(dataset, group, commented),
        "",
        f"# Variables of {Path(data_path).name} ({len(frame)} rows, {frame[group].nunique()} groups of '{group}'):",
    ]
    width = max(len(str(c)) for c in frame.columns)
    for column in frame.columns:
        level = "group id" if column == group else f"level {levels[column]}"
        label = dataset.variable_labels.get(column, "")
        lines.append(f"#   {str(column):<{width}}  {level:<8}  {label}".rstrip())
    lines += [
        "",
        "centering: {}            # e.g. {ses: group} adds ses_cwc and ses_mean; grand adds ses_gmc",
        "",
        "estimation:",
        "  REML: true",
        "  optimizer: bobyqa",
        "  ddf: Satterthwaite",
        "",
        "models:                  # name: formula (lme4 syntax); replace the outcome with yours",
        f"  null: {q(f'{outcome} ~ 1 + (1 | {group})')}",
        "",
        "comparisons: []          # e.g. [[random_slope, null]]",
        "icc: [null]",
        "variance_explained: []   # e.g. [[null, random_slope]]",
        "diagnostics: [null]",
        "",
        "report:",
        "  language: zh           # zh (Chinese) or en",
        "  formats: [html, md, docx]",
        "",
    ]
    return "\n".join(lines)


def _quote(text):
    import json
    return json.dumps(str(text), ensure_ascii=False)


def guess_group(frame):
    """The column most likely to be the level-2 id, or None.

    Candidates repeat (2 to n/2 distinct values, not floats with fractions); a name like id,
    school or subject wins, then the column within whose groups most other columns are constant.
    """
    n = len(frame)
    best, best_score = None, None
    for column in frame.columns:
        values = frame[column].dropna()
        k = values.nunique()
        if not 2 <= k <= n / 2 or (values.dtype.kind == "f" and not values.mod(1).eq(0).all()):
            continue
        constant = sum(level_of(frame, other, column) == 2 for other in frame.columns if other != column)
        score = (bool(ID_HINTS.search(str(column))), constant, k)
        if best_score is None or score > best_score:
            best, best_score = column, score
    return best
