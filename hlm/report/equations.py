"""A model's equations in the seed's notation, generated from its formula.

A two-level model (one grouping factor) is written as Raudenbush & Bryk write it and the seed
copies:

    level 1:   Y_ij = β_0j + β_1j X_ij + r_ij
    level 2:   β_0j = γ_00 + γ_01 W_j + u_0j
               β_1j = γ_10 + γ_11 W_j + u_1j
    combined:  Y_ij = γ_00 + γ_10 X_ij + γ_01 W_j + γ_11 X_ij W_j + u_0j + u_1j X_ij + r_ij

Each fixed coefficient is split into its level-1 part (the variables that vary within groups, or
have a random slope) and its level-2 part (variables constant within groups), as the model record
says: its term's variables and each variable's level (summary.terms_dict). The level-1 part
names the β it belongs to (β_0 for none); the level-2 part is a predictor in that β's equation,
so ses:disclim is γ_11, the effect of W(disclim) on the slope β_1 of X(ses). γ_pq numbers the
predictors within each β equation (q = 0 is the β's own intercept), u_pj is β_p's random effect
and τ_pp' the covariances of the u's. With several level-1 (or level-2) variables they are
numbered X_1ij, X_2ij (W_1j, W_2j) in the order they first appear.

A nested three-level model (two grouping factors that are data.levels 2 and 3, e.g. occasions
in children in schools) is written in Raudenbush & Bryk's three-level notation:

    level 1:   Y_ijk = π_0jk + π_1jk a_ijk + e_ijk
    level 2:   π_pjk = β_p0k + β_p1k X_jk + r_pjk
    level 3:   β_pqk = γ_pq0 + γ_pq1 W_k + u_pqk

with a, X, W the level-1, level-2 and level-3 predictors (a growth model's time is a), τ_π the
covariances of the r's and τ_β those of the u's. A model with crossed grouping factors (neither
nested in the other, as the record's nested_in says) is one combined equation over observations
i, each random effect indexed by the unit of its factor that observation i belongs to:

    Y_i = γ_0 + γ_1 x_i + u_{0,primary[i]} + u_{0,second[i]} + e_i

Nested factors not declared as levels get a combined equation only, with one u per grouping
factor (u^(class), u^(school)).

Every equation comes as LaTeX (for Markdown and pandoc) and as MathML (for the HTML report,
converted by latex2mathml). Variable names are set in upright text and escaped for both.
"""
import html
import re
from dataclasses import dataclass, field

from ..escape import one_line

INTERCEPT = "(Intercept)"
_PLACEHOLDER = re.compile(r"QQ(\d+)QQ")
_NAME = re.compile(r"\\text\{QQ(\d+)QQ\}")
SUBSCRIPT_DIGITS = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")


@dataclass(frozen=True)
class Math:
    """One formula as LaTeX (placeholders for names) plus the names the placeholders stand for."""
    template: str
    names: tuple = ()

    @property
    def latex(self):
        return _NAME.sub(lambda m: latex_name(self.names[int(m.group(1))]), self.template)

    def mathml(self, display="inline"):
        return to_mathml(self.template, self.names, display)

    @property
    def text(self):
        """Plain Unicode (γ₁₀, τ₀₀, σ²): for Word tables and figure labels."""
        return plain_text(self.template, self.names)


@dataclass(frozen=True)
class Equation:
    """lhs = rhs, kept apart so that several equations can be aligned on '='."""
    lhs: Math
    rhs: Math

    @property
    def latex(self):
        return f"{self.lhs.latex} &= {self.rhs.latex}"

    @property
    def plain_latex(self):
        return f"{self.lhs.latex} = {self.rhs.latex}"


@dataclass(frozen=True)
class Equations:
    two_level: bool          # the hierarchical form is shown (two levels, or three with level3)
    group: str | None
    level1: tuple            # of Equation
    level2: tuple            # of Equation
    combined: Equation
    fixed_symbols: dict      # coefficient name -> Math (γ_pq)
    random_symbols: dict     # (group, column) -> Math (u_pj)
    variance_symbols: dict   # (group, column, other column or None) -> Math (τ_pp', σ² for Residual)
    roles: dict              # coefficient name -> intercept, level1, level2, level3, cross or other
    predictors: dict = field(default_factory=dict)  # variable text -> Math (X_ij, W_j)
    level3: tuple = ()       # of Equation: a nested three-level model's β equations
    crossed: tuple = ()      # the grouping factors of a crossed design, in the model's order

    def rows(self, which):
        return {"level1": self.level1, "level2": self.level2, "level3": self.level3,
                "combined": (self.combined,)}[which]

    def latex_block(self, which):
        """A display block for Markdown: one aligned environment per group of equations."""
        body = " \\\\\n".join(_latex_lines(eq) for eq in self.rows(which))
        return f"\\begin{{aligned}}\n{body}\n\\end{{aligned}}"

    def mathml_block(self, which):
        return mathml_table(self.rows(which))


# ---- names in LaTeX and MathML ------------------------------------------------------------------

_LATEX_ESCAPES = {"_": r"\_", "%": r"\%", "&": r"\&", "#": r"\#", "$": r"\$", "{": r"\{",
                  "}": r"\}", "~": r"\sim ", "\\": r"\backslash ", "^": r"\wedge ", " ": r"\ "}


def latex_name(name):
    """A variable name upright in math mode: ses_cwc -> \\mathrm{ses\\_cwc}; non-ASCII names
    (a Chinese column name) go in \\text{} so that MathJax and pandoc keep them."""
    name = one_line(name)  # a blank line would end the $...$ around it
    if any(ord(ch) > 127 for ch in name):
        return r"\text{" + "".join(_LATEX_ESCAPES.get(ch, ch) if ch in "%&#${}\\" else ch
                                   for ch in name) + "}"
    return "".join(_upright(piece) if k % 2 == 0 else "^{" + _upright(piece) + "}"
                   for k, piece in enumerate(_POWER.split(name)) if piece)


_POWER = re.compile(r"\^(\d+(?:\.\d+)?)")   # I(Days^2): the 2 as a superscript, not pandoc's hat accent


def _upright(text):
    return r"\mathrm{" + "".join(_LATEX_ESCAPES.get(ch, ch) for ch in text) + "}"


def to_mathml(template, names=(), display="inline"):
    """MathML of a LaTeX template whose names are \\text{QQkQQ} placeholders."""
    import latex2mathml.converter
    mathml = latex2mathml.converter.convert(template, display=display)
    return _fill_names(mathml, names)


def _fill_names(mathml, names):
    def name(match):
        return f'<mtext>{html.escape(names[int(match.group(1))], quote=False)}</mtext>'
    return re.sub(r"<mtext>QQ(\d+)QQ</mtext>", name, mathml)


def _inner(mathml):
    """The content of a <math> element."""
    return mathml[mathml.index(">") + 1:mathml.rindex("</math>")]


LINE_WIDTH = 64   # characters (a CJK one counts two) before the right-hand side goes on (browsers do not break MathML)


def _rhs_lines(math):
    """A sum cut into lines of at most about LINE_WIDTH visible characters, at its ' + '."""
    lines, current, width = [], [], 0
    for term in math.template.split(" + "):
        size = sum(2 if ord(ch) > 0x2E80 else 1 for ch in plain_text(term, math.names)) + 3
        if current and width + size > LINE_WIDTH:
            lines.append(current)
            current, width = [], 0
        current.append(term)
        width += size
    return [Math(" + ".join(terms), math.names) for terms in lines + [current]]


def _latex_lines(eq):
    """lhs &= rhs, a long rhs continued on lines that start with '+'."""
    return f"{eq.lhs.latex} &= " + " \\\\\n&\\quad + ".join(line.latex for line in _rhs_lines(eq.rhs))


def mathml_table(equations):
    """Equations aligned on '=' as one MathML table (right-aligned lhs, left-aligned rhs), a
    long right-hand side continued on further lines that start with '+'."""
    rows = []
    for eq in equations:
        for k, line in enumerate(_rhs_lines(eq.rhs)):
            lhs = _inner(eq.lhs.mathml()) if k == 0 else ""
            sign = "<mo>=</mo>" if k == 0 else "<mo>+</mo>"
            rows.append('<mtr><mtd style="text-align:right">' + lhs + "</mtd>"
                        '<mtd style="text-align:left">' + sign + _inner(line.mathml()) + "</mtd></mtr>")
    return ('<math xmlns="http://www.w3.org/1998/Math/MathML" display="block">'
            '<mtable>' + "".join(rows) + "</mtable></math>")


_GREEK = {r"\gamma": "γ", r"\beta": "β", r"\tau": "τ", r"\sigma": "σ", r"\rho": "ρ",
          r"\chi": "χ", r"\mu": "μ", r"\pi": "π", r"\lambda": "λ", r"\Phi": "Φ"}
_SYMBOLS = {r"\mid": "|", "^{-1}": "⁻¹"}    # a GLMM's link equations: Prob(Y = 1 | β), Φ⁻¹(p)


def plain_text(template, names=()):
    """γ_{10} -> γ₁₀, \\sigma^2 -> σ², X_{ij} -> Xᵢⱼ (Unicode, for Word and figures)."""
    text = _NAME.sub(lambda m: "\ue000%s\ue001" % m.group(1), template)
    text = re.sub(r"\\mathrm\{([^}]*)\}", r"\1", text)
    for macro, symbol in _SYMBOLS.items():
        text = text.replace(macro, symbol)
    for macro, letter in _GREEK.items():
        text = text.replace(macro, letter)
    text = text.replace("^2", "²").replace("^{2}", "²")
    text = re.sub(r"\^\{\(([^}]*)\)\}", r"(\1)", text)

    def sub(match):
        body = match.group(1) or match.group(2)
        return "".join(piece if piece.startswith("\ue000") else _subscript(piece)
                       for piece in re.split("(\ue000\\d+\ue001)", body))
    text = re.sub(r"_\{([^}]*)\}|_(\w)", sub, text)
    text = re.sub("\ue001\\\\,", "\ue001 × ", text)   # \\, between two names: a product
    text = text.replace(r"\,", " ").replace("\\", "").replace("{", "").replace("}", "")
    return re.sub("\ue000(\\d+)\ue001", lambda m: names[int(m.group(1))], text)


def _subscript(text):
    return text.translate(SUBSCRIPT_DIGITS).replace("i", "ᵢ").replace("j", "ⱼ").replace("k", "ₖ").replace(",", "‚")


# ---- building the equations ---------------------------------------------------------------------

class _Names:
    """Collects variable names as placeholders for one Math, each shown by its label if it has one."""

    def __init__(self, labels=None):
        self.names = []
        self.labels = labels or {}

    def __call__(self, name):
        name = self.labels.get(name, name)
        if name not in self.names:
            self.names.append(name)
        return r"\text{QQ%dQQ}" % self.names.index(name)

    def math(self, template):
        used = sorted({int(i) for i in _PLACEHOLDER.findall(template)})
        remap = {old: new for new, old in enumerate(used)}
        template = _PLACEHOLDER.sub(lambda m: f"QQ{remap[int(m.group(1))]}QQ", template)
        return Math(template, tuple(self.names[i] for i in used))


def _index(*numbers):
    """Subscript of two indices: '10', or '1,10' once an index has two digits."""
    parts = [str(n) for n in numbers]
    return ",".join(parts) if any(len(p) > 1 for p in parts) else "".join(parts)


def column_parts(coefficients, terms, variables):
    """coefficient -> its parts, one per variable of its term, each with that variable:
    'ses:disclim' -> (('ses', 'ses'), ('disclim', 'disclim')), 'sexM' -> (('sexM', 'sex'),)."""
    term_of = {column: term for term in terms for column in term["columns"]}
    parts = {}
    for coefficient in coefficients:
        if coefficient == INTERCEPT:
            continue
        term = term_of[coefficient]
        parts[coefficient] = _split(coefficient, term["variables"], variables)
        if parts[coefficient] is None:
            raise ValueError(f"column '{coefficient}' is not named as a column of term '{term['label']}'")
    return parts


def _split(column, labels, variables):
    """A column name cut into its variables' parts: a numeric variable's label, or a factor's
    label and one of its levels (R's model.matrix names), joined by ':'."""
    if not labels:
        return () if column == "" else None
    label, info = labels[0], variables[labels[0]]
    for part in [label + level for level in info["levels"]] if info["kind"] == "factor" else [label]:
        rest = column[len(part):]
        if column.startswith(part) and (rest == "" if len(labels) == 1 else rest.startswith(":")):
            tail = _split(rest[1:], labels[1:], variables)
            if tail is not None:
                return ((part, label),) + tail
    return None


def _role(coefficient, p, q):
    if coefficient == INTERCEPT:
        return "intercept"
    return "level1" if q == 0 else "level2" if p == 0 else "cross"


def model_equations(response, coefficients, terms, variables, random_terms, levels=(), labels=None,
                    nested_in=None):
    """The equations of a fitted model, from its record.

    response: the outcome's label; coefficients: fixed-effect names in order (after dropped
    columns); terms and variables: the record's (summary.terms_dict); random_terms:
    [(group, [column, ...]), ...] as VarCorr lists them (random_terms_of); levels: the data's
    grouping columns from level 2 up (data.levels), which make two factors a three-level model;
    labels: column -> the name the equations show; nested_in: the record's (grouping factor ->
    the factors it is nested in), which tells a crossed design.
    """
    groups = list(dict.fromkeys(group for group, _ in random_terms))
    parts = column_parts(coefficients, terms, variables)
    nested = _nested_levels(groups, levels)
    if nested:
        return _three_level_equations(response, coefficients, parts, variables, random_terms, *nested, labels)
    if len(groups) != 1:
        return _generic_equations(response, coefficients, parts, random_terms, labels,
                                  crossed=_crossed(groups, nested_in or {}))
    group = groups[0]
    random_columns = [c for _, columns in random_terms for c in columns]
    names = _Names(labels)
    outcome = names(response)

    def at_level(level, pieces):
        """The parts at level 2 (a variable constant within groups) or 1 (the others, and any
        part with a random slope)."""
        return tuple(part for part, label in pieces
                     if (2 if part not in random_columns and variables[label]["level"] >= 2 else 1) == level)

    # split each coefficient into its level-1 and level-2 parts
    split = {c: (at_level(1, parts.get(c, ())), at_level(2, parts.get(c, ()))) for c in coefficients}
    random_keys = {c: (() if c == INTERCEPT else tuple(p for p, _ in parts.get(c, ((c, None),))))
                   for c in random_columns}

    # number the level-1 variables (X), level-2 variables (W) and the β's
    x_vars = list(dict.fromkeys([p for l1, _ in split.values() for p in l1]
                                + [p for key in random_keys.values() for p in key]))
    w_vars = list(dict.fromkeys(p for _, l2 in split.values() for p in l2))
    beta_keys = [()] + list(dict.fromkeys([l1 for l1, _ in split.values() if l1]
                                          + [k for k in random_keys.values() if k]))
    has_intercept = INTERCEPT in coefficients or INTERCEPT in random_columns
    if not has_intercept:
        beta_keys = beta_keys[1:]
    beta_index = {key: (0 if key == () else i + (0 if has_intercept else 1))
                  for i, key in enumerate(beta_keys)}

    def x(part):
        k = x_vars.index(part) + 1
        sub = "ij" if len(x_vars) == 1 else f"{k}ij" if k < 10 else f"{k},ij"
        return f"X_{{{sub}}}({names(part)})"

    def w(part):
        k = w_vars.index(part) + 1
        sub = "j" if len(w_vars) == 1 else f"{k}j" if k < 10 else f"{k},j"
        return f"W_{{{sub}}}({names(part)})"

    def product(l1, l2=()):
        return "".join(x(p) for p in l1) + "".join(w(p) for p in l2)

    # γ_pq: q counts the level-2 predictors within β_p's equation, in coefficient order
    gamma, next_q = {}, {}
    for coefficient, (l1, l2) in split.items():
        p = beta_index[l1]
        if l2:
            next_q[p] = next_q.get(p, 0) + 1
            gamma[coefficient] = (p, next_q[p])
        else:
            gamma[coefficient] = (p, 0)
    u_index = {c: beta_index[key] for c, key in random_keys.items()}

    def g(coefficient):
        return r"\gamma_{%s}" % _index(*gamma[coefficient])

    def u(column):
        return "u_{%sj}" % (f"{u_index[column]}," if u_index[column] >= 10 else u_index[column])

    def beta(p):
        return r"\beta_{%sj}" % (f"{p}," if p >= 10 else p)

    # level 1
    level1_terms = [beta(beta_index[key]) + product(key) for key in beta_keys]
    level1 = [Equation(names.math(f"Y_{{ij}}({outcome})"), names.math(" + ".join(level1_terms + ["r_{ij}"])))]

    # level 2
    level2 = []
    for key in beta_keys:
        p = beta_index[key]
        rhs = [g(c) + product((), split[c][1]) for c in coefficients if split[c][0] == key]
        rhs += [u(c) for c in random_columns if random_keys[c] == key]
        level2.append(Equation(names.math(beta(p)), names.math(" + ".join(rhs) or "0")))

    # combined
    combined = [g(c) + product(*split[c]) for c in coefficients]
    combined += [u(c) + product(random_keys[c]) for c in random_columns]
    combined = Equation(names.math(f"Y_{{ij}}({outcome})"), names.math(" + ".join(combined + ["r_{ij}"])))

    fixed_symbols = {c: Math(g(c)) for c in coefficients}
    random_symbols = {(group, c): Math(u(c)) for c in random_columns}
    variance_symbols = {("Residual", None, None): Math(r"\sigma^2")}
    for _, columns in random_terms:
        for i, a in enumerate(columns):
            pa = u_index[a]
            variance_symbols[(group, a, None)] = Math(r"\tau_{%s}" % _index(pa, pa))
            for b in columns[i + 1:]:
                pb = u_index[b]
                variance_symbols[(group, a, b)] = Math(r"\rho_{%s}" % _index(pa, pb))
    predictors = {}
    for part in x_vars:
        predictors[part] = _single(x(part), names)
    for part in w_vars:
        predictors[part] = _single(w(part), names)
    roles = {c: _role(c, *gamma[c]) for c in coefficients}
    return Equations(True, group, tuple(level1), tuple(level2), combined, fixed_symbols,
                     random_symbols, variance_symbols, roles, predictors)


def _single(template, names):
    return names.math(template)


def _nested_levels(groups, levels):
    """(level-2 factor, level-3 factor) when the model's two grouping factors are data.levels 2
    and 3 (schoolid/childid: 'childid:schoolid' and 'schoolid'), else None."""
    if len(groups) != 2 or len(levels) < 2:
        return None
    column = {g: g if g in levels else g.split(":")[0] for g in groups}
    ranks = {g: levels.index(c) for g, c in column.items() if c in levels}
    if sorted(ranks.values()) != [0, 1]:
        return None
    inner, outer = sorted(groups, key=ranks.get)
    return inner, outer


def _three_level_equations(response, coefficients, parts, variables, random_terms, inner, outer, labels=None):
    """Raudenbush & Bryk's three-level form: π (level 1), β (level 2), γ (level 3); e, r, u."""
    names = _Names(labels)
    outcome = names(response)
    random2 = [c for g, columns in random_terms if g == inner for c in columns]
    random3 = [c for g, columns in random_terms if g == outer for c in columns]

    def level(part, label):
        return 1 if part in random2 else min(variables[label]["level"], 3)

    def split(pieces):
        return tuple(tuple(p for p, label in pieces if level(p, label) == k) for k in (1, 2, 3))

    coefficient_parts = {c: split(parts.get(c, ())) for c in coefficients}
    random_parts = {c: ((), (), ()) if c == INTERCEPT else split(parts.get(c, ((c, c),)))
                    for c in dict.fromkeys(random2 + random3)}
    keys = list(coefficient_parts.values()) + list(random_parts.values())
    pi_keys = list(dict.fromkeys([(), *[k[0] for k in keys]]))
    beta_keys = {a: list(dict.fromkeys([(), *[k[1] for k in keys if k[0] == a]])) for a in pi_keys}
    numbered = [list(dict.fromkeys(p for k in keys for p in k[i])) for i in range(3)]
    letters = (("a", "ijk"), ("X", "jk"), ("W", "k"))

    def var(i, part):
        k = numbered[i].index(part) + 1
        letter, sub = letters[i]
        index = sub if len(numbered[i]) == 1 else f"{k}{sub}" if k < 10 else f"{k},{sub}"
        return f"{letter}_{{{index}}}({names(part)})"

    def prod(i, pieces):
        return "".join(var(i, p) for p in pieces)

    def pq(key):
        return pi_keys.index(key[0]), beta_keys[key[0]].index(key[1])

    gamma, next_s = {}, {}
    for c, key in coefficient_parts.items():
        p, q = pq(key)
        s = 0
        if key[2]:
            next_s[(p, q)] = next_s.get((p, q), 0) + 1
            s = next_s[(p, q)]
        gamma[c] = (p, q, s)

    def g(c):
        return r"\gamma_{%s}" % _index(*gamma[c])

    def pi(p):
        return r"\pi_{%sjk}" % (f"{p}," if p >= 10 else p)

    def beta(p, q):
        return r"\beta_{%sk}" % (_index(p, q) + ("," if p >= 10 or q >= 10 else ""))

    def r(c):
        p = pi_keys.index(random_parts[c][0])
        return "r_{%sjk}" % (f"{p}," if p >= 10 else p)

    def u(c):
        p, q = pq(random_parts[c])
        return "u_{%sk}" % (_index(p, q) + ("," if p >= 10 or q >= 10 else ""))

    level1 = [Equation(names.math(f"Y_{{ijk}}({outcome})"), names.math(" + ".join(
        [pi(p) + prod(0, key) for p, key in enumerate(pi_keys)] + ["e_{ijk}"])))]
    level2, level3 = [], []
    for p, a in enumerate(pi_keys):
        rhs = [beta(p, q) + prod(1, b) for q, b in enumerate(beta_keys[a])]
        rhs += [r(c) for c in random2 if random_parts[c][0] == a]
        level2.append(Equation(names.math(pi(p)), names.math(" + ".join(rhs))))
        for q, b in enumerate(beta_keys[a]):
            rhs = [g(c) + prod(2, key[2]) for c, key in coefficient_parts.items() if key[:2] == (a, b)]
            rhs += [u(c) for c in random3 if random_parts[c][:2] == (a, b)]
            level3.append(Equation(names.math(beta(p, q)), names.math(" + ".join(rhs) or "0")))
    combined = [g(c) + prod(0, k[0]) + prod(1, k[1]) + prod(2, k[2]) for c, k in coefficient_parts.items()]
    combined += [r(c) + prod(0, random_parts[c][0]) for c in random2]
    combined += [u(c) + prod(0, random_parts[c][0]) + prod(1, random_parts[c][1]) for c in random3]
    combined = Equation(names.math(f"Y_{{ijk}}({outcome})"), names.math(" + ".join(combined + ["e_{ijk}"])))

    random_symbols = {(inner, c): Math(r(c)) for c in random2} | {(outer, c): Math(u(c)) for c in random3}
    variance_symbols = {("Residual", None, None): Math(r"\sigma^2")}
    for group, columns in random_terms:
        for i, a in enumerate(columns):
            if group == inner:
                pa = pi_keys.index(random_parts[a][0])
                variance_symbols[(group, a, None)] = Math(r"\tau_{\pi,%s}" % _index(pa, pa))
                for b in columns[i + 1:]:
                    pb = pi_keys.index(random_parts[b][0])
                    variance_symbols[(group, a, b)] = Math(r"\rho_{\pi,%s}" % _index(pa, pb))
            else:
                variance_symbols[(group, a, None)] = Math(r"\tau_{\beta,%s}" % _index(*pq(random_parts[a])))
                for b in columns[i + 1:]:
                    variance_symbols[(group, a, b)] = Math(r"\rho_{\beta,%s,%s}" % (
                        _index(*pq(random_parts[a])), _index(*pq(random_parts[b]))))
    predictors = {part: _single(var(i, part), names) for i in range(3) for part in numbered[i]}
    roles = {c: _three_level_role(c, coefficient_parts[c]) for c in coefficients}
    return Equations(True, inner, tuple(level1), tuple(level2), combined, {c: Math(g(c)) for c in coefficients},
                     random_symbols, variance_symbols, roles, predictors, tuple(level3))


def _three_level_role(coefficient, key):
    if coefficient == INTERCEPT:
        return "intercept"
    present = [i for i, part in enumerate(key) if part]
    return {(0,): "level1", (1,): "level2", (2,): "level3"}.get(tuple(present), "cross")


def _crossed(groups, nested_in):
    """Whether some two of the grouping factors are crossed: neither nested in the other."""
    return any(b not in nested_in.get(a, [b]) and a not in nested_in.get(b, [a])
               for k, a in enumerate(groups) for b in groups[k + 1:])


def _generic_equations(response, coefficients, parts, random_terms, labels=None, crossed=False):
    """Several factors (or none): the combined equation, one u per factor; in a crossed design
    u_{k,factor[i]}, the effect of the factor's unit that observation i is in, and e_i."""
    names = _Names(labels)
    outcome = names(response)

    def product(column):
        if column == INTERCEPT:
            return ""
        return "".join(r"\,%s" % names(part) for part, _ in parts.get(column, ((column, None),)))

    terms = [r"\gamma_{%d}%s" % (k, product(c)) for k, c in enumerate(coefficients)]
    fixed_symbols = {c: Math(r"\gamma_{%d}" % k) for k, c in enumerate(coefficients)}
    random_symbols, variance_symbols = {}, {("Residual", None, None): Math(r"\sigma^2")}
    for group, columns in random_terms:
        for k, column in enumerate(columns):
            sup = r"^{(%s)}" % names(group)
            symbol = rf"u_{{{k},{names(group)}[i]}}" if crossed else f"u{sup}_{{{k}}}"
            terms.append(symbol + product(column))
            random_symbols[(group, column)] = names.math(symbol)
            variance_symbols[(group, column, None)] = names.math(r"\tau%s_{%s}" % (sup, _index(k, k)))
            for j, other in enumerate(columns[k + 1:], start=k + 1):
                variance_symbols[(group, column, other)] = names.math(r"\rho%s_{%s}" % (sup, _index(k, j)))
    residual = "e_{i}" if crossed else "r_{i}"
    combined = Equation(names.math(f"Y_{{i}}({outcome})"), names.math(" + ".join(terms + [residual])))
    roles = {c: "intercept" if c == INTERCEPT else "other" for c in coefficients}
    factors = tuple(dict.fromkeys(group for group, _ in random_terms)) if crossed else ()
    return Equations(False, None, (), (), combined, fixed_symbols, random_symbols, variance_symbols, roles,
                     crossed=factors)


def group_of(label, groups=()):
    """The grouping factor of a VarCorr label: 'id.1' (lme4's name for a second term on id)
    -> 'id'. A label in `groups` (the model's grouping factors, one may be named 'wave.2') and
    'Residual' stay as they are."""
    return label if label in groups or label == "Residual" else re.sub(r"\.\d+$", "", label)


def random_terms_of(varcorr, groups):
    """[(group, [columns])] from a model record's varcorr rows (as.data.frame(VarCorr()) layout)
    and its grouping factors (the keys of ngroups); a label such as 'id.1' (lme4's name for a
    second term on id) maps back to its group."""
    out = {}
    for row in varcorr:
        if row["grp"] == "Residual" or row.get("var2"):
            continue
        group = group_of(row["grp"], groups)
        out.setdefault(group, [])
        if row["var1"] not in out[group]:
            out[group].append(row["var1"])
    return list(out.items())
