"""A starter config for a data file: its variables with their labels and levels, a guessed group
id (and the ids it is nested in, as levels:), a guessed outcome and proposed missing codes, each
guess said in a comment so the user checks it.
"""
import re
from pathlib import Path

from ..data import level_of, missing_codes_line, read_data, suspect_missing_codes
from ..engine.formula import Name, deparse
from ..errors import ConfigError, DataError
from ..escape import yaml_comment_text, yaml_string
from ..results.writers import write_text
from .config import DEFAULT_CONFIG

ID_HINTS = re.compile(r"(^|_)(id|ids|school|schid|sch|class|classid|cluster|group|grp|"
                      r"subject|subj|participant|pid|sid|team|unit|site|country|clinic|district|region|"
                      r"state|hospital|village|household|family|firm|child|student|person|patient)($|_|id)|id$",
                      re.IGNORECASE)
OUTCOME_HINTS = re.compile(r"ach|score|math|read|test|exam|outcome|result|grade|成绩|得分|分数", re.IGNORECASE)
MIN_UNITS = 10          # a grouping factor has at least this many units
MIN_DISTINCT = 10       # a continuous outcome has at least this many distinct values


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
    return commented(f"  {missing_codes_line(suspects)}", f"proposed, check them: {yaml_comment_text(where)}")


def starter_config(dataset, data_path):
    """The text of a starter config (YAML with comments) for a Dataset."""
    frame = dataset.frame
    group = guess_group(frame)
    if group is None:
        raise DataError(f"no column of '{data_path}' looks like a group id (a column whose values "
                        "repeat); add one, or write the config by hand (see config/README.md)")
    nesting = nested_ids(frame, group)
    levels = {c: level_of(frame, c, group) for c in frame.columns if c != group}
    outcome, why = guess_outcome(dataset, group, levels)
    q = yaml_string
    c = yaml_comment_text

    def commented(line, comment):
        return f"{line:<25}  # {comment}"

    lines = [
        "# hlm analysis config (every key: config/README.md). Run it with: hlm run <this file>",
        f"title: {q('Multilevel analysis of ' + Path(data_path).name)}",
        "",
        "data:",
        f"  path: {q(data_path)}",
        commented(f"  group: {q(group)}", "the level-2 id (guessed: an id-like column with many units; check it)"),
        *([commented(f"  levels: [{', '.join(q(level) for level in nesting)}]",
                     f"{c(' in '.join(nesting))}: each id nested in the next (found in the data)")]
          if len(nesting) > 1 else []),
        commented("  missing: listwise", "listwise: every model uses the same rows; per_model: as lme4"),
        _missing_codes_line(dataset, group, commented),
        "",
        (f"# Variables of {c(Path(data_path).name)} ({len(frame)} rows, {frame[group].nunique()} groups "
         f"of '{c(group)}'):"),
    ]
    width = max(len(c(column)) for column in frame.columns)
    for column in frame.columns:
        level = "group id" if column == group else f"level {levels[column]}"
        label = dataset.variable_labels.get(column, "")
        lines.append(f"#   {c(column):<{width}}  {level:<8}  {c(label)}".rstrip())
    lines += [
        "",
        "centering: {}            # e.g. {ses: group} adds ses_cwc and ses_mean; grand adds ses_gmc",
        "",
        "estimation:",
        "  REML: true",
        "  optimizer: bobyqa",
        "  ddf: Satterthwaite",
        "",
        "models:                  # name: formula (lme4 syntax); label: the name the report shows",
        f"  # outcome guessed: {c(outcome)}, {c(why)}; replace it if it is not yours",
        "  null:",
        f"    formula: {q(f'{_name(outcome)} ~ 1 + (1 | {_name(group)})')}",
        f"    label: {q('Null model')}",
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


def _name(column):
    """A column as a formula names it: backticked unless it is a syntactic R name."""
    return deparse(Name(str(column)))


def _is_id_like(frame, column):
    """Whole numbers or strings that repeat: at least MIN_UNITS units, at most n/2, never two-valued."""
    values = frame[column].dropna()
    k = values.nunique()
    whole = values.dtype.kind not in "fc" or values.mod(1).eq(0).all()
    return whole and MIN_UNITS <= k <= len(frame) / 2


def guess_group(frame):
    """The column most likely to be the level-2 id, or None.

    Candidates are id-like (_is_id_like); a name like id, school or subject wins, then the column
    within whose groups most other columns are constant, then the one with more units.
    """
    best, best_score = None, None
    for column in frame.columns:
        if not _is_id_like(frame, column):
            continue
        constant = sum(level_of(frame, other, column) == 2 for other in frame.columns if other != column)
        score = (bool(ID_HINTS.search(str(column))), constant, frame[column].nunique())
        if best_score is None or score > best_score:
            best, best_score = column, score
    return best


def nested_ids(frame, group):
    """[group, the id-named columns it is nested in, innermost first]: children in schools."""
    chain = [group]
    others = sorted((c for c in frame.columns if c != group and ID_HINTS.search(str(c)) and _is_id_like(frame, c)),
                    key=lambda c: -frame[c].nunique())
    for column in others:
        if frame[column].nunique() < frame[chain[-1]].nunique() and level_of(frame, column, chain[-1]) == 2:
            chain.append(column)
    return chain


def guess_outcome(dataset, group, levels):
    """(column, why): a continuous, labelled, non-id column that varies within the groups, a name
    or label like score or achievement first."""
    frame, labels = dataset.frame, dataset.variable_labels
    candidates = [c for c in frame.columns if c != group and frame[c].dtype.kind in "fiu"
                  and not ID_HINTS.search(str(c)) and not _is_row_id(frame[c], labels.get(c, ""))
                  and levels[c] == 1 and frame[c].nunique() >= MIN_DISTINCT]
    if not candidates:
        candidates = [c for c in frame.columns if c != group and frame[c].dtype.kind in "fiu"] or \
            [c for c in frame.columns if c != group]
        return candidates[0], "no continuous column varies within the groups"
    def score(column):
        return (bool(OUTCOME_HINTS.search(f"{column} {labels.get(column, '')}")), column in labels)
    outcome = max(candidates, key=score)
    reasons = [f"continuous ({frame[outcome].nunique()} distinct values)", "varies within groups"]
    if outcome in labels:
        reasons.append(f"labelled {labels[outcome]!r}")
    return outcome, ", ".join(reasons)


def _is_row_id(values, label):
    """A column of distinct whole numbers, or one whose label says id, numbers rows: not an outcome."""
    whole = values.dtype.kind in "iu" or values.dropna().mod(1).eq(0).all()
    return (whole and values.nunique() == len(values)) or bool(re.search(r"\bid\b", label, re.IGNORECASE))


