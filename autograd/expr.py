"""A safe parser for the formulas of ``chainrule explain "tanh(w*x + b)" x=0.5 w=-1 b=2``.

The text is parsed by Python's `ast` module (parsing only: nothing is ever evaluated, executed or
compiled to code) and accepted only if every node is on a small whitelist:

    numbers (int, float)   names   a + b  a - b  a * b  a / b  a ** b   -a  +a
    exp log sqrt tanh sigmoid relu softplus abs sin cos (one argument)
    leaky_relu(a)  leaky_relu(a, slope)        slope a number such as 0.1 or -0.2

Precedence is Python's: ``-x ** 2`` is −(x²). Everything else raises `ExpressionError` with a
one-line message naming the problem.

    >>> e = parse_expression("x*x + x")
    >>> y = e.build({"x": 3.0})            # one leaf "x", used three times
    >>> y.backward()
    >>> y.data, e.names
    (12.0, ('x',))
"""
from __future__ import annotations

import ast
import math
import numbers
import operator
import unicodedata
import warnings
from typing import NamedTuple

from .value import Value

MAX_LENGTH = 1000           # characters
MAX_DEPTH = 100             # levels of the syntax tree
MAX_LABEL = 24              # longer sub-expressions get no label

UNARY_FUNCTIONS = {"exp": Value.exp, "log": Value.log, "sqrt": Value.sqrt, "tanh": Value.tanh,
                   "sigmoid": Value.sigmoid, "relu": Value.relu, "softplus": Value.softplus,
                   "abs": Value.abs, "sin": Value.sin, "cos": Value.cos}
FUNCTIONS = (*UNARY_FUNCTIONS, "leaky_relu")

_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
           ast.Div: operator.truediv, ast.Pow: operator.pow}
_UNARY = {ast.USub: operator.neg, ast.UAdd: None}      # +a is a itself

# What each rejected kind of syntax is called in an error message.
_FORBIDDEN = {
    ast.Attribute: "attribute access", ast.Subscript: "indexing", ast.Slice: "slices",
    ast.Lambda: "lambda", ast.ListComp: "comprehensions", ast.SetComp: "comprehensions",
    ast.DictComp: "comprehensions", ast.GeneratorExp: "generator expressions",
    ast.JoinedStr: "f-strings", ast.FormattedValue: "f-strings", ast.Compare: "comparisons",
    ast.BoolOp: "boolean operators (and, or)", ast.IfExp: "conditional expressions",
    ast.NamedExpr: "assignment expressions (:=)", ast.Starred: "starred arguments",
    ast.List: "lists", ast.Tuple: "tuples", ast.Set: "sets", ast.Dict: "dictionaries",
    ast.Await: "await", ast.Yield: "yield", ast.YieldFrom: "yield",
}
_OPERATOR_TEXT = {ast.Mod: "%", ast.FloorDiv: "//", ast.MatMult: "@", ast.LShift: "<<",
                  ast.RShift: ">>", ast.BitAnd: "&", ast.BitOr: "|", ast.BitXor: "^",
                  ast.Not: "not", ast.Invert: "~"}


class ExpressionError(ValueError):
    """The text is not an expression chainrule accepts, or the inputs do not fit it."""


class Expr:
    """A checked expression: ``names`` in order of first appearance, ``build`` on Values."""

    __slots__ = ("text", "names", "_tree")

    def __init__(self, text, names, tree):
        self.text = text
        self.names = names
        self._tree = tree

    def build(self, values):
        """The expression on `Value`s: each name is one leaf labelled with the name."""
        return self.build_with_leaves(values)[0]

    def build_with_leaves(self, values):
        """(root, {name: leaf}): `build` plus the leaves, whose ``.grad`` the caller reads."""
        values = {_identifier(name) if isinstance(name, str) else name: value
                  for name, value in values.items()}
        missing = [n for n in self.names if n not in values]
        extra = [n for n in values if n not in self.names]
        if missing or extra:
            problems = []
            if missing:
                problems.append(f"missing value for {', '.join(missing)}")
            if extra:
                problems.append(f"unknown input {', '.join(map(str, extra))}")
            uses = ", ".join(self.names) if self.names else "no variables"
            raise ExpressionError(f"{'; '.join(problems)} (the expression uses {uses})")
        values = {_identifier(name): value for name, value in values.items()}
        leaves = {name: Value(_number(values[name], name), label=name) for name in self.names}
        root = _build(self._tree, leaves)
        return root, leaves

    def __repr__(self):
        return f"Expr({self.text!r}, names={self.names!r})"

    def __str__(self):
        return self.text


def parse_expression(text):
    """Parse and check ``text``; return an `Expr` or raise `ExpressionError`."""
    if not isinstance(text, str):
        raise TypeError(f"expression must be a str, got {type(text).__name__}")
    if len(text) > MAX_LENGTH:
        raise ExpressionError(
            f"expression too long: {len(text)} characters (the limit is {MAX_LENGTH})")
    if not text.strip():
        raise ExpressionError("empty expression")
    lead = len(text) - len(text.lstrip())
    try:
        with warnings.catch_warnings():         # "invalid decimal literal" and the like: the
            warnings.simplefilter("ignore")     # error, if any, is what the user needs
            module = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        where = (f" at column {exc.offset + lead}" if exc.offset and (exc.lineno or 1) == 1
                 else f" at line {exc.lineno}, column {exc.offset}" if exc.offset else "")
        raise ExpressionError(f"syntax error{where}: {exc.msg}") from None
    except (RecursionError, MemoryError):
        raise ExpressionError("expression nested too deeply for the parser") from None
    except ValueError as exc:                       # e.g. a NUL character
        raise ExpressionError(f"cannot parse expression: {exc}") from None
    names = []
    tree = _Checker(text.strip(), names).check(module.body, 0)
    return Expr(text.strip(), tuple(names), tree)


def parse_assignments(items):
    """``["x=0.5", "w=-1"]`` → ``{"x": 0.5, "w": -1.0}``, for the CLI's inputs."""
    values = {}
    for item in items:
        name, eq, number = item.partition("=")
        name, number = _identifier(name.strip()), number.strip()
        if not eq or not name.isidentifier():
            raise ExpressionError(f"expected name=value (such as x=0.5), got {item!r}")
        if name in FUNCTIONS:
            raise ExpressionError(f"{name!r} is a function name, not a variable: {item!r}")
        if name in values:
            raise ExpressionError(f"{name} is given twice: {item!r}")
        try:
            value = float(number)
        except ValueError:
            raise ExpressionError(f"the value of {name} is not a number: {item!r}") from None
        if not math.isfinite(value):
            raise ExpressionError(f"the value of {name} must be finite: {item!r}")
        values[name] = value
    return values


# -- checking: ast → a small tree -------------------------------------------------------------
# The checked tree: a float (constant), a str (variable), or an `_Apply`.

class _Apply(NamedTuple):
    function: object        # a callable on Values: operator.mul, Value.tanh, ...
    label: str | None       # the sub-expression's text, for drawings
    args: tuple             # checked trees
    settings: dict          # non-differentiable arguments: {"slope": 0.1}


class _Checker:
    def __init__(self, text, names):
        self.text = text
        self.names = names

    def fail(self, node, problem):
        segment = ast.get_source_segment(self.text, node) or ""
        segment = " ".join(segment.split())
        if len(segment) > 40:
            segment = segment[:37] + "..."
        raise ExpressionError(f"{problem}: {segment}" if segment else problem)

    def label(self, node):
        text = ast.unparse(node)
        return text if len(text) <= MAX_LABEL else None

    def check(self, node, depth):
        if depth > MAX_DEPTH:
            raise ExpressionError(f"expression nested too deeply (the limit is {MAX_DEPTH} "
                                  "levels; a chain a + b + … counts one level per term)")
        kind = type(node)
        if kind is ast.Constant:
            return self.number(node)
        if kind is ast.Name:
            if node.id in FUNCTIONS:
                self.fail(node, f"{node.id} is a function; call it as {node.id}(...)")
            if node.id not in self.names:
                self.names.append(node.id)
            return node.id
        if kind is ast.BinOp:
            op = _BINARY.get(type(node.op))
            if op is None:
                self.fail(node, f"operator {_OPERATOR_TEXT.get(type(node.op), '?')!r} is not "
                                "allowed (use + - * / **)")
            left = self.check(node.left, depth + 1)
            right = self.check(node.right, depth + 1)
            return _Apply(op, self.label(node), (left, right), {})
        if kind is ast.UnaryOp:
            if type(node.op) not in _UNARY:
                self.fail(node, f"operator {_OPERATOR_TEXT.get(type(node.op), '?')!r} is not "
                                "allowed (use + - * / **)")
            operand = self.check(node.operand, depth + 1)
            op = _UNARY[type(node.op)]
            return operand if op is None else _Apply(op, self.label(node), (operand,), {})
        if kind is ast.Call:
            return self.call(node, depth)
        self.fail(node, f"{_FORBIDDEN.get(kind, kind.__name__)} not allowed")

    def number(self, node):
        value = node.value
        if type(value) not in (int, float):         # bool, complex, str, bytes, None, ...
            what = {bool: "True/False", complex: "complex numbers", str: "strings",
                    bytes: "bytes", type(None): "None"}.get(type(value), type(value).__name__)
            self.fail(node, f"{what} not allowed (only real numbers)")
        try:
            number = float(value)
        except OverflowError:
            number = math.inf
        if not math.isfinite(number):
            self.fail(node, "number too large")
        return number

    def call(self, node, depth):
        func = node.func
        if type(func) is ast.Attribute:
            self.fail(func, "attribute access not allowed")
        if type(func) is not ast.Name:
            self.fail(node, "only calls of a function by its bare name are allowed")
        name = func.id
        if name not in FUNCTIONS:
            self.fail(node, f"unknown function {name!r} (allowed: {', '.join(FUNCTIONS)})")
        if node.keywords:
            self.fail(node, f"keyword arguments not allowed in {name}(...)")
        for arg in node.args:
            if type(arg) is ast.Starred:
                self.fail(arg, "starred arguments not allowed")
        args = node.args
        if name == "leaky_relu":
            if len(args) not in (1, 2):
                self.fail(node, f"leaky_relu takes 1 or 2 arguments, got {len(args)}")
            x = self.check(args[0], depth + 1)
            settings = {"slope": self.slope(args[1])} if len(args) == 2 else {}
            return _Apply(Value.leaky_relu, self.label(node), (x,), settings)
        if len(args) != 1:
            self.fail(node, f"{name} takes 1 argument, got {len(args)}")
        return _Apply(UNARY_FUNCTIONS[name], self.label(node), (self.check(args[0], depth + 1),),
                      {})

    def slope(self, node):
        """A number literal, possibly signed: the slope is a setting, not a graph input."""
        sign, inner = 1.0, node
        if type(node) is ast.UnaryOp and type(node.op) in _UNARY:
            sign, inner = (-1.0 if type(node.op) is ast.USub else 1.0), node.operand
        if type(inner) is not ast.Constant:
            self.fail(node, "the slope of leaky_relu must be a number")
        return sign * self.number(inner)


# -- building the graph -----------------------------------------------------------------------
def _build(node, leaves):
    if isinstance(node, float):
        # A constant: a leaf without a gradient, as `x * 2` makes for its 2.
        return Value(node, requires_grad=False)
    if isinstance(node, str):
        return leaves[node]
    out = node.function(*(_build(a, leaves) for a in node.args), **node.settings)
    if node.label is not None and out.label is None:
        out.label = node.label
    return out


def _number(value, name):
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        try:
            number = float(value)
        except OverflowError:
            number = math.inf
        if not math.isfinite(number):
            raise ExpressionError(f"the value of {name} must be a finite number, got {value!r}")
        return number
    raise ExpressionError(f"the value of {name} must be a real number, got "
                          f"{type(value).__name__} ({value!r})")


def _identifier(name):
    """A name as Python's parser reads it (NFKC: ℓ is l, µ is μ), so inputs match it."""
    return unicodedata.normalize("NFKC", name)
