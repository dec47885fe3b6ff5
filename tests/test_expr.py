"""The expression parser of `chainrule explain`: a whitelist, never evaluation."""
import ast
import math
import pathlib

import pytest

from autograd import Value, topo_order
from autograd.expr import (FUNCTIONS, MAX_DEPTH, MAX_LENGTH, ExpressionError, Expr,
                           parse_assignments, parse_expression)

HOSTILE = [
    ("__import__('os').system('ls')", "attribute access"),
    ("__import__('os')", "unknown function '__import__'"),
    ("x.__class__", "attribute access"),
    ("x.__class__.__bases__[0].__subclasses__()", "attribute access"),
    ("(lambda: 1)()", "only calls of a function by its bare name"),
    ("lambda: 1", "lambda"),
    ("[x for x in y]", "comprehensions"),
    ("(x for x in y)", "generator expressions"),
    ("open('f')", "unknown function 'open'"),
    ("eval('1')", "unknown function 'eval'"),
    ("exec('1')", "unknown function 'exec'"),
    ("getattr(x, 'data')", "unknown function 'getattr'"),
    ("exp.__globals__", "attribute access"),
    ("x[0]", "indexing"),
    ("'a'*3", "strings"),
    ("b'a'", "bytes"),
    ("f'{x}'", "f-strings"),
    ("x if y else z", "conditional expressions"),
    ("x < y", "comparisons"),
    ("x and y", "boolean operators"),
    ("not x", "operator 'not'"),
    ("x % 2", "operator '%'"),
    ("x // 2", "operator '//'"),
    ("x @ y", "operator '@'"),
    ("~x", "operator '~'"),
    ("tanh(x)(y)", "only calls of a function by its bare name"),
    ("tanh(x=1)", "keyword arguments"),
    ("tanh(*x)", "starred arguments"),
    ("tanh(**x)", "keyword arguments"),
    ("*x", "syntax error"),
    ("(y := 1)", "assignment expressions"),
    ("True + x", "True/False"),
    ("1j * x", "complex numbers"),
    ("None", "None"),
    ("[1, 2]", "lists"),
    ("(x, y)", "tuples"),
    ("{1: 2}", "dictionaries"),
    ("import os", "syntax error"),
    ("x = 1", "syntax error"),
    ("x; y", "syntax error"),
    ("foo(x)", "unknown function 'foo' (allowed: exp, log"),
    ("tanh(x, y)", "tanh takes 1 argument, got 2"),
    ("sqrt()", "sqrt takes 1 argument, got 0"),
    ("leaky_relu(x, y)", "slope of leaky_relu must be a number"),
    ("leaky_relu(x, 0.1, 2)", "leaky_relu takes 1 or 2 arguments"),
    ("exp + 1", "exp is a function"),
    ("x * 1e400", "number too large"),
    ("x\0", ""),
    ("", "empty expression"),
    ("(" * 500 + "x" + ")" * 500, "too long"),
    ("(" * 300 + "x" + ")" * 300, ""),            # Python's parser: too many parentheses
    ("-" * 500 + "x", "nested too deeply"),
    ("x" + "**x" * (MAX_DEPTH + 1), "nested too deeply"),
    ("tanh(" * 150 + "x" + ")" * 150, "nested too deeply"),
    ("x+" * 5000 + "x", "too long"),
]


@pytest.mark.parametrize("text, problem", HOSTILE, ids=[repr(t)[:40] for t, _ in HOSTILE])
def test_hostile_input_is_rejected(text, problem):
    with pytest.raises(ExpressionError) as err:
        parse_expression(text)
    message = str(err.value)
    assert problem in message
    assert "\n" not in message
    assert isinstance(err.value, ValueError)


def test_at_least_the_documented_hostile_inputs():
    assert len(HOSTILE) >= 15


@pytest.mark.parametrize("template", [
    "open('{m}', 'w')",
    "__import__('os').system('touch {m}')",
    "exec(\"open('{m}', 'w')\")",
    "eval(\"open('{m}', 'w')\")",
    "(lambda: open('{m}', 'w'))()",
    "[open('{m}', 'w') for _ in 'a']",
    "x if open('{m}', 'w') else y",
    "tanh(open('{m}', 'w'))",
])
def test_nothing_is_ever_executed(tmp_path, template):
    marker = tmp_path / "marker"
    with pytest.raises(ExpressionError):
        parse_expression(template.format(m=marker))
    assert not marker.exists()


def test_the_module_never_evaluates():
    source = pathlib.Path(__file__).parent.parent.joinpath("autograd", "expr.py").read_text()
    called = {node.func.id for node in ast.walk(ast.parse(source))
              if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)}
    assert not called & {"eval", "exec", "compile", "__import__", "getattr"}


def test_length_limit_is_inclusive():
    text = "x" + "+x" * ((MAX_LENGTH - 1) // 2)
    text += " " * (MAX_LENGTH - len(text))
    assert len(text) == MAX_LENGTH
    with pytest.raises(ExpressionError, match="nested too deeply"):  # long, but too deep
        parse_expression(text)
    assert parse_expression("x" + "+x" * 90).names == ("x",)
    with pytest.raises(ExpressionError, match=f"{MAX_LENGTH + 1} characters"):
        parse_expression("x" * (MAX_LENGTH + 1))


def test_not_a_string_is_a_type_error():
    with pytest.raises(TypeError):
        parse_expression(b"x")


# -- accepted expressions: values and gradients by hand -----------------------------------------
def grads(expr, **values):
    root, leaves = expr.build_with_leaves(values)
    root.backward()
    return root, {name: leaf.grad for name, leaf in leaves.items()}


def test_neuron_tanh():
    e = parse_expression("tanh(w*x + b)")
    assert e.names == ("w", "x", "b")
    y, g = grads(e, x=0.5, w=-1.0, b=2.0)
    z = -1.0 * 0.5 + 2.0
    t = math.tanh(z)
    assert y.data == pytest.approx(t)
    assert g["w"] == pytest.approx((1 - t * t) * 0.5)        # d/dw = (1 − tanh²z)·x
    assert g["x"] == pytest.approx((1 - t * t) * -1.0)       # d/dx = (1 − tanh²z)·w
    assert g["b"] == pytest.approx(1 - t * t)
    assert y.label == "tanh(w * x + b)"
    assert y.parents[0].label == "w * x + b"


def test_neuron_sigmoid():
    e = parse_expression("sigmoid(w1*x1 + w2*x2 + b)")
    assert e.names == ("w1", "x1", "w2", "x2", "b")
    v = dict(x1=1.0, x2=-2.0, w1=0.5, w2=0.25, b=0.1)
    y, g = grads(e, **v)
    s = 1 / (1 + math.exp(-(0.5 * 1.0 + 0.25 * -2.0 + 0.1)))
    ds = s * (1 - s)
    assert y.data == pytest.approx(s)
    assert g == pytest.approx({"w1": ds * 1.0, "x1": ds * 0.5, "w2": ds * -2.0,
                               "x2": ds * 0.25, "b": ds})


def test_reused_name_is_one_leaf():
    e = parse_expression("x*x + x")
    y, g = grads(e, x=3.0)
    assert y.data == 12.0
    assert g["x"] == 7.0                                      # 2x + 1
    leaves = [n for n in topo_order(y) if n.label == "x"]
    assert len(leaves) == 1


def test_unary_minus_binds_looser_than_power():
    y, g = grads(parse_expression("-x ** 2"), x=3.0)
    assert y.data == -9.0                                     # −(x²), as in Python
    assert g["x"] == -6.0


def test_constant_base_power():
    y, g = grads(parse_expression("2 ** x"), x=3.0)
    assert y.data == pytest.approx(8.0)
    assert g["x"] == pytest.approx(8.0 * math.log(2.0))


@pytest.mark.parametrize("x, value, slope", [(-2.0, -0.2, 0.1), (2.0, 2.0, 1.0)])
def test_leaky_relu_with_slope(x, value, slope):
    y, g = grads(parse_expression("leaky_relu(x, 0.1)"), x=x)
    assert y.data == pytest.approx(value)
    assert g["x"] == pytest.approx(slope)


def test_leaky_relu_default_and_signed_slope():
    y, g = grads(parse_expression("leaky_relu(x)"), x=-1.0)
    assert y.data == pytest.approx(-0.01)
    y, g = grads(parse_expression("leaky_relu(x, -0.5)"), x=-1.0)
    assert y.data == pytest.approx(0.5) and g["x"] == pytest.approx(-0.5)


# Every accepted construct, against a plain-float reference and central differences.
REFERENCE = [
    ("exp(x) / (1 + x*x)", lambda x: math.exp(x) / (1 + x * x)),
    ("log(x) - sqrt(x)", lambda x: math.log(x) - math.sqrt(x)),
    ("sin(x) * cos(x) + +x", lambda x: math.sin(x) * math.cos(x) + x),
    ("softplus(x) + relu(x - 1) + abs(x - 2)",
     lambda x: math.log1p(math.exp(x)) + max(x - 1, 0) + abs(x - 2)),
    ("x ** 3 - 2 * x ** x / 4", lambda x: x ** 3 - 2 * x ** x / 4),
    ("1 - 2 - x", lambda x: 1 - 2 - x),
    ("2 ** -x", lambda x: 2 ** -x),
]


@pytest.mark.parametrize("text, f", REFERENCE, ids=[t for t, _ in REFERENCE])
@pytest.mark.parametrize("x", [0.7, 1.3, 2.9])
def test_matches_float_reference_and_central_differences(text, f, x):
    y, g = grads(parse_expression(text), x=x)
    assert y.data == pytest.approx(f(x), rel=1e-12)
    h = 1e-6
    assert g["x"] == pytest.approx((f(x + h) - f(x - h)) / (2 * h), rel=1e-6, abs=1e-9)


def test_constant_expression_builds_a_value():
    e = parse_expression("1 / 0 + 2")
    assert e.names == ()
    y = e.build({})
    assert isinstance(y, Value) and y.data == math.inf        # IEEE, like the engine


def test_leaf_labels_and_repr():
    e = parse_expression("  x*y  ")
    assert str(e) == "x*y" and repr(e) == "Expr('x*y', names=('x', 'y'))"
    y = e.build({"x": 2, "y": 5})
    assert y.data == 10.0
    assert [p.label for p in y.parents] == ["x", "y"]
    long = parse_expression("tanh(alpha*beta + gamma*delta + epsilon)")
    assert long.build(dict.fromkeys(long.names, 1.0)).label is None   # too long to label


def test_missing_and_extra_inputs_are_named():
    e = parse_expression("tanh(w*x + b)")
    with pytest.raises(ExpressionError, match="missing value for x, b"):
        e.build({"w": 1.0})
    with pytest.raises(ExpressionError, match="unknown input z"):
        e.build({"w": 1.0, "x": 1.0, "b": 1.0, "z": 2.0})
    with pytest.raises(ExpressionError, match="missing value for b; unknown input c"):
        e.build({"w": 1.0, "x": 1.0, "c": 1.0})
    with pytest.raises(ExpressionError, match="x must be a real number"):
        e.build({"w": 1.0, "x": "1", "b": 1.0})
    with pytest.raises(ExpressionError, match="x must be a real number"):
        e.build({"w": 1.0, "x": True, "b": 1.0})


# -- name=value items -----------------------------------------------------------------------------
def test_parse_assignments():
    assert parse_assignments(["x=0.5", "w=-1", " b = 2e0 "]) == {"x": 0.5, "w": -1.0, "b": 2.0}
    assert parse_assignments([]) == {}


@pytest.mark.parametrize("item, problem", [
    ("x", "expected name=value"),
    ("=1", "expected name=value"),
    ("2x=1", "expected name=value"),
    ("x.y=1", "expected name=value"),
    ("x=", "not a number"),
    ("x=abc", "not a number"),
    ("x=1,5", "not a number"),
    ("x=inf", "finite"),
    ("x=nan", "finite"),
    ("tanh=1", "function name"),
])
def test_parse_assignments_errors(item, problem):
    with pytest.raises(ExpressionError, match=problem) as err:
        parse_assignments([item])
    assert repr(item) in str(err.value)


def test_parse_assignments_duplicate():
    with pytest.raises(ExpressionError, match="x is given twice"):
        parse_assignments(["x=1", "x=2"])


def test_public_names():
    assert "leaky_relu" in FUNCTIONS and "tanh" in FUNCTIONS
    assert isinstance(parse_expression("x"), Expr)


def test_unicode_names_match_as_python_reads_them():
    """Python's parser reads ℓ as l and µ (micro sign) as μ (NFKC): the inputs do too."""
    from autograd.expr import parse_assignments, parse_expression
    for name in ("ℓ", "µ"):
        expr = parse_expression(f"{name}*2")
        root = expr.build(parse_assignments([f"{name}=1.5"]))
        assert root.data == 3.0
        assert expr.build({name: 2.0}).data == 4.0


def test_parser_messages_are_one_clean_line(capsys):
    import warnings
    import pytest
    from autograd.expr import ExpressionError, parse_expression
    with warnings.catch_warnings():
        warnings.simplefilter("error")                 # no SyntaxWarning escapes
        with pytest.raises(ExpressionError):
            parse_expression("1or x")
    with pytest.raises(ExpressionError, match="at column 6"):
        parse_expression("   x y")
    with pytest.raises(ExpressionError, match="one level per term"):
        parse_expression("+".join(["x"] * 102))
    with pytest.raises(ExpressionError, match="finite number"):
        parse_expression("x*2").build({"x": 10 ** 400})
    with pytest.raises(ExpressionError, match="finite number"):
        parse_expression("x*2").build({"x": float("nan")})
