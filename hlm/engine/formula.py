"""lme4's formula language: text -> tokens -> syntax tree -> fixed and random terms.

The grammar is the table OPERATORS (symbol -> binding power, R's precedence); the algorithms
are plain functions. Variables keep the text R would print for them (`I(ses^2)`, `log(x)`),
because that text names the coefficients.
"""
import functools
import re
from dataclasses import dataclass
from itertools import combinations

from ..errors import FormulaError

# symbol -> left binding power (higher binds tighter), as in R's ?Syntax
OPERATORS = {"~": 10, "|": 20, "||": 20, "+": 30, "-": 30, "*": 40, "/": 40, ":": 50, "^": 60}
UNARY_POWER = 45  # unary minus binds tighter than * and / but looser than :
RIGHT_ASSOCIATIVE = {"^"}
# Limits that keep the recursive parser and tree walks within Python's recursion limit
MAX_PARENTHESES = 50   # nested parentheses or calls
MAX_DEPTH = 200        # operators in a chain (x1 + x2 + ... is a chain as deep as it has terms)

TOKEN_PATTERN = re.compile(r"""
    (?P<space>\s+)
  | (?P<number>\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?)
  | (?P<name>(?:[^\W\d]|\.)[\w.]*|`[^`]+`)
  | (?P<op>\|\||[~+\-*/:^|])
  | (?P<lparen>\()
  | (?P<rparen>\))
  | (?P<comma>,)
""", re.VERBOSE)


@dataclass(frozen=True)
class Token:
    kind: str
    text: str
    pos: int


# ---- syntax tree -------------------------------------------------------------------------

@dataclass(frozen=True)
class Name:
    name: str


@dataclass(frozen=True)
class Number:
    text: str


@dataclass(frozen=True)
class Call:
    func: str
    args: tuple


@dataclass(frozen=True)
class Binary:
    op: str
    left: object
    right: object


@dataclass(frozen=True)
class Unary:
    op: str
    operand: object


@dataclass(frozen=True)
class Paren:
    inner: object


# ---- terms -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Variable:
    """One variable of a formula: a column, or a call such as log(x), I(x^2) or factor(g)."""
    label: str
    node: object


@dataclass(frozen=True)
class Terms:
    """The model-matrix terms of a one-sided formula: each term a tuple of Variables."""
    intercept: bool
    terms: tuple


@dataclass(frozen=True)
class RandomTerm:
    """`(lhs | group)`: the columns of Z and the grouping factor (a tuple of variable names);
    `label` as lme4 names the term ('Days | Subject')."""
    lhs: Terms
    group: tuple
    label: str = ""


@dataclass(frozen=True)
class Formula:
    """A parsed formula: its terms, and the whole syntax tree (which names every column the
    model frame reads, those of removed terms too)."""
    text: str
    response: Variable
    fixed: Terms
    random: tuple
    tree: object
    offsets: tuple = ()     # Variables of the offset(...) terms: added to the linear predictor, not columns


def tokenize(text):
    tokens, pos = [], 0
    while pos < len(text):
        match = TOKEN_PATTERN.match(text, pos)
        if not match:
            raise FormulaError(_point(text, pos, f"unexpected character '{text[pos]}'"))
        if match.lastgroup != "space":
            tokens.append(Token(match.lastgroup, match.group(), pos))
        pos = match.end()
    return tokens


def _point(text, pos, message):
    """One line that names the position: CLI errors stay on one line."""
    return f"{message} at position {pos + 1} of formula '{text}' (here: '{text[:pos]}' <-)"


class _Parser:
    """Pratt parser over the token list; binding powers come from OPERATORS."""

    def __init__(self, text):
        self.text = text
        self.tokens = tokenize(text)
        self.index = 0

    def peek(self):
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def take(self):
        token = self.peek()
        if token is None:
            raise FormulaError(_point(self.text, len(self.text), "formula ends too early"))
        self.index += 1
        return token

    def expect(self, kind, what):
        token = self.take()
        if token.kind != kind:
            raise FormulaError(_point(self.text, token.pos, f"expected {what}, found '{token.text}'"))
        return token

    def parse(self):
        node = self.expression(0)
        token = self.peek()
        if token is not None:
            raise FormulaError(_point(self.text, token.pos, f"unexpected '{token.text}'"))
        return node

    def expression(self, min_power):
        left = self.prefix()
        while (token := self.peek()) is not None and token.kind == "op":
            power = OPERATORS[token.text]
            if power <= min_power:
                break
            self.take()
            right = self.expression(power - 1 if token.text in RIGHT_ASSOCIATIVE else power)
            left = Binary(token.text, left, right)
        return left

    def prefix(self):
        token = self.take()
        if token.kind == "number":
            return Number(token.text)
        if token.kind == "name":
            if (nxt := self.peek()) is not None and nxt.kind == "lparen":
                return self.call(token.text)
            return Name(token.text.strip("`"))
        if token.kind == "lparen":
            inner = self.expression(0)
            self.expect("rparen", "')'")
            return Paren(inner)
        if token.kind == "op" and token.text in ("-", "+", "~"):
            power = OPERATORS["~"] if token.text == "~" else UNARY_POWER
            return Unary(token.text, self.expression(power))
        raise FormulaError(_point(self.text, token.pos, f"unexpected '{token.text}'"))

    def call(self, func):
        self.take()  # "("
        args = []
        if self.peek() is not None and self.peek().kind != "rparen":
            args.append(self.expression(0))
            while self.peek() is not None and self.peek().kind == "comma":
                self.take()
                args.append(self.expression(0))
        self.expect("rparen", f"')' to close {func}(")
        return Call(func, tuple(args))


def parse_expression(text):
    """The syntax tree of a formula or of an R expression."""
    if not text or not text.strip():
        raise FormulaError("the formula is empty; write it as 'response ~ predictors + (1 | group)'")
    parser = _Parser(text)
    _check_nesting(parser.tokens, text)
    tree = parser.parse()
    if (depth := _depth(tree)) > MAX_DEPTH:
        raise FormulaError(f"formula '{text[:60]}...' nests {depth} operators deep; hlm reads at most "
                           f"{MAX_DEPTH} (fewer terms, or a sum of fewer terms per parenthesis)")
    return tree


def _check_nesting(tokens, text):
    depth = 0
    for token in tokens:
        depth += {"lparen": 1, "rparen": -1}.get(token.kind, 0)
        if depth > MAX_PARENTHESES:
            raise FormulaError(f"formula '{text[:60]}...' nests parentheses more than {MAX_PARENTHESES} "
                               "deep; remove the redundant ones")


def _depth(tree):
    """The depth of a syntax tree, walked without recursion."""
    deepest, stack = 0, [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        children = {Binary: lambda n: (n.left, n.right), Unary: lambda n: (n.operand,),
                    Paren: lambda n: (n.inner,), Call: lambda n: n.args}.get(type(node), lambda n: ())
        stack += [(child, depth + 1) for child in children(node)]
    return deepest


def deparse(node):
    """The text R prints for an expression: spaces around + - * and none around / ^ :."""
    if isinstance(node, Name):
        return node.name if re.fullmatch(r"(?:[^\W\d]|\.)[\w.]*", node.name) else f"`{node.name}`"
    if isinstance(node, Number):
        return node.text
    if isinstance(node, Call):
        return f"{node.func}({', '.join(deparse(a) for a in node.args)})"
    if isinstance(node, Paren):
        return f"({deparse(node.inner)})"
    if isinstance(node, Unary):
        return f"{node.op}{deparse(node.operand)}"
    tight = node.op in ("/", "^", ":")
    sep = node.op if tight else f" {node.op} "
    return f"{deparse(node.left)}{sep}{deparse(node.right)}"


@functools.lru_cache(maxsize=256)
def parse_formula(text):
    """Parse an lme4 formula into its response, fixed terms and random terms. The result is
    immutable, so a formula fitted again (a bootstrap, allFit, a benchmark) is parsed once."""
    tree = parse_expression(text)
    if not (isinstance(tree, Binary) and tree.op == "~"):
        raise FormulaError(f"formula '{text}' needs a response and '~', e.g. 'mathach ~ ses + (1 | id)'")
    fixed_nodes, random_nodes = _split_random(tree.right)
    random = tuple(term for node in random_nodes for term in _random_terms(node, text))
    fixed = expand_terms(fixed_nodes, text, intercept=True)
    offsets = tuple(term[0] for term in fixed.terms if _is_offset(term))
    fixed = Terms(fixed.intercept, tuple(term for term in fixed.terms if not _is_offset(term)))
    return Formula(text, Variable(deparse(tree.left), tree.left), fixed, random, tree, offsets)


def _is_offset(term):
    """`offset(x)` as a term of its own, as R's terms() keeps it apart from the model matrix."""
    return len(term) == 1 and isinstance(term[0].node, Call) and term[0].node.func == "offset"


def _split_random(node):
    """Separate `(a | g)` terms from the fixed part of a sum."""
    if isinstance(node, Binary) and node.op == "+":
        fixed_left, random_left = _split_random(node.left)
        fixed_right, random_right = _split_random(node.right)
        return fixed_left + fixed_right, random_left + random_right
    if isinstance(node, Paren) and isinstance(node.inner, Binary) and node.inner.op in ("|", "||"):
        return [], [node.inner]
    return [node], []


def _random_terms(node, text):
    lhs = expand_terms([node.left], text, intercept=True)
    groups = _grouping_factors(node.right, text)
    if node.op == "||":  # lme4: one uncorrelated term per column
        parts = ([(Terms(True, ()), "1")] if lhs.intercept else [])
        parts += [(Terms(False, (t,)), "0 + " + ":".join(v.label for v in t)) for t in lhs.terms]
    else:
        parts = [(lhs, deparse(node.left))]
    return [RandomTerm(part, group, f"{left} | {':'.join(group)}")
            for group in groups for part, left in parts]


def _grouping_factors(node, text):
    """`g` -> [(g,)], `a:b` -> [(a, b)], `a/b` -> [(a,), (b, a)] as lme4 names `b:a`."""
    if isinstance(node, Paren):
        return _grouping_factors(node.inner, text)
    if isinstance(node, Name):
        return [(node.name,)]
    if isinstance(node, Binary) and node.op == ":":
        return [tuple(name for part in _grouping_factors(node.left, text)
                      + _grouping_factors(node.right, text) for name in part)]
    if isinstance(node, Binary) and node.op == "/":
        outer = _grouping_factors(node.left, text)
        inner = _grouping_factors(node.right, text)
        return outer + [inner[0] + outer[-1]]
    if isinstance(node, Binary) and node.op == "+":  # lme4's words
        raise FormulaError(f"Invalid grouping factor specification, {deparse(node)} (in formula '{text}'); "
                           "for crossed factors write (1 | a) + (1 | b)")
    raise FormulaError(f"grouping factor '{deparse(node)}' in formula '{text}' must be a column "
                       "name, 'a:b' or 'a/b'")


def expand_terms(nodes, text, intercept):
    """R's terms(): expand * / ^ and -, then order the terms by interaction order. As in R, the
    variables of a term are in the order they first appear in the formula (`sex + x:sex` has
    the term sex:x), which is also the order of its columns (the first varies fastest)."""
    terms = []
    for node in nodes:
        intercept = _expand(node, terms, intercept, text)
    order = {label: i for i, label in enumerate(dict.fromkeys(_labels_in_order(nodes)))}
    terms = [tuple(sorted(term, key=lambda v: order[v.label])) for term in terms]
    terms.sort(key=len)  # stable: main effects first, then two-way, ... as written
    return Terms(intercept, tuple(terms))


def _labels_in_order(nodes):
    """The labels of the variables in expressions, in the order they appear (repeats kept)."""
    labels = []
    for node in nodes:
        if isinstance(node, (Name, Call)):
            labels.append(deparse(node))
        elif isinstance(node, Binary):
            labels += _labels_in_order([node.left, node.right])
        elif isinstance(node, (Unary, Paren)):
            labels += _labels_in_order([node.operand if isinstance(node, Unary) else node.inner])
    return labels


def _same_term(a, b):
    """x:sex and sex:x are one term."""
    return {v.label for v in a} == {v.label for v in b}


def _expand(node, terms, intercept, text):
    """Add node's terms to `terms` (in place) and return the intercept flag."""
    if isinstance(node, Binary) and node.op in ("+", "-"):
        intercept = _expand(node.left, terms, intercept, text)
        if node.op == "+":
            return _expand(node.right, terms, intercept, text)
        removed = []
        drops_intercept = _expand(node.right, removed, False, text)
        terms[:] = [term for term in terms if not any(_same_term(term, r) for r in removed)]
        return intercept and not drops_intercept
    if isinstance(node, Unary) and node.op == "-":
        return intercept and not _expand(node.operand, [], False, text)
    if isinstance(node, Unary) and node.op == "+":
        return _expand(node.operand, terms, intercept, text)
    if isinstance(node, Number):
        if node.text in ("0", "1"):
            return node.text == "1"
        raise FormulaError(f"number '{node.text}' in formula '{text}' is not a term; use I({node.text})")
    for term in _products(node, text):
        if not any(_same_term(term, t) for t in terms):
            terms.append(term)
    return intercept


def _products(node, text):
    """The terms of a product expression: a:b, a*b, a/b, (a+b)^2, or a single variable."""
    if isinstance(node, Paren):
        found = []
        _expand(node.inner, found, True, text)
        return found
    if isinstance(node, Binary) and node.op in (":", "*", "/"):
        left, right = _products(node.left, text), _products(node.right, text)
        crossed = [_join(a, b) for a in left for b in right]
        if node.op == ":":
            return crossed
        if node.op == "*":
            return left + right + crossed
        outer = tuple(v for term in left for v in term if v)
        return left + [_join(outer, b) for b in right]
    if isinstance(node, Binary) and node.op == "^":
        base, power = _products(node.left, text), node.right
        if not (isinstance(power, Number) and power.text.isdigit()):
            raise FormulaError(f"'^' in formula '{text}' needs a whole number; use I(x^2) for a power")
        out = []
        for size in range(1, min(int(power.text), len(base)) + 1):  # higher powers add no term
            for combo in combinations(base, size):
                term = ()
                for part in combo:
                    term = _join(term, part)
                if term not in out:
                    out.append(term)
        return sorted(out, key=len)
    if isinstance(node, (Name, Call)):
        return [(Variable(deparse(node), node),)]
    if isinstance(node, Binary) and node.op in ("|", "||"):
        raise FormulaError(f"random term '{deparse(node)}' in formula '{text}' needs parentheses: "
                           f"({deparse(node)})")
    raise FormulaError(f"cannot use '{deparse(node)}' as a term in formula '{text}'; "
                       "wrap arithmetic in I(), e.g. I(x^2)")


def _join(a, b):
    return tuple(dict.fromkeys(a + b))
