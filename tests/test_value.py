"""Tests of the scalar `Value` engine: every op of the shared table against central differences
and closed forms, higher-order derivatives, graph semantics, IEEE behaviour and anomaly mode,
bad input, a million-node chain and freeing graphs without the garbage collector."""
from __future__ import annotations

import gc
import math
import sys
import weakref

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import autograd
import nn
from autograd import (Value, detect_anomaly, enable_grad, gradcheck, no_grad, topo_order,
                      weighted_sum)
from autograd.core import gradients
from tests.ops_table import BINARY, SETTINGS, UNARY


def close(actual, expected, rel=1e-9, abs_=1e-12):
    return math.isclose(actual, float(expected), rel_tol=rel, abs_tol=abs_)


# --- scale (first in the file: the slowest test, so a parallel run starts it early) ----

def test_million_node_chain_with_default_recursion_limit():
    assert sys.getrecursionlimit() <= 1000 * 10, "the test must not rely on a raised limit"
    n = 1_000_000
    x0 = Value(1.0)
    x = x0
    for _ in range(n):
        x = x * 1.0001 + 0
    x.backward()
    expected = 1.0001 ** n
    assert abs(x0.grad - expected) / expected < 1e-9
    assert abs(x.data - expected) / expected < 1e-9
    del x                               # freeing the chain must not recurse either



# --- the op table: gradients vs central differences and closed forms ---------------------------

@pytest.mark.parametrize("op", UNARY, ids=str)
@SETTINGS
@given(data=st.data())
def test_unary_op_matches_reference_and_central_differences(op, data):
    x = data.draw(op.domain, label="x")
    report = gradcheck(op.apply, x)
    assert report.passed, f"{op.name} at x={x!r}\n{report}"

    v = Value(x)
    y = op.apply(v)
    assert isinstance(y, Value)
    assert close(y.data, op.ref(np.float64(x)), rel=1e-12, abs_=1e-300)
    y.backward()
    assert close(v.grad, op.dref(np.float64(x))), (op.name, x, v.grad)


@pytest.mark.parametrize("op", BINARY, ids=str)
@SETTINGS
@given(data=st.data())
def test_binary_op_matches_reference_and_central_differences(op, data):
    a = data.draw(op.domain_a, label="a")
    b = data.draw(op.domain_b, label="b")
    node_a, node_b = op.nodes
    if node_a and node_b:
        report = gradcheck(op.apply, a, b)
    elif node_a:
        report = gradcheck(lambda x: op.apply(x, b), a)
    else:
        report = gradcheck(lambda x: op.apply(a, x), b)
    assert report.passed, f"{op.name} at a={a!r}, b={b!r}\n{report}"

    va = Value(a) if node_a else a
    vb = Value(b) if node_b else b
    y = op.apply(va, vb)
    assert isinstance(y, Value)
    assert close(y.data, op.ref(np.float64(a), np.float64(b)), rel=1e-12, abs_=1e-300)
    y.backward()
    da, db = op.dref(np.float64(a), np.float64(b))
    if node_a:
        assert close(va.grad, da), (op.name, a, b, va.grad, da)
    if node_b:
        assert close(vb.grad, db), (op.name, a, b, vb.grad, db)


def test_plain_number_operands_get_no_graph_gradient():
    x = Value(2.0)
    y = 3.0 * x + 1 - x / 4 + 2 ** x
    y.backward()
    constants = [n for n in topo_order(y) if n.is_leaf and n is not x]
    assert constants and all(not c.requires_grad and c.grad == 0.0 for c in constants)
    assert close(x.grad, 3.0 - 0.25 + 4.0 * math.log(2.0))


# --- second derivatives ------------------------------------------------------------------------

SECOND = [
    ("exp", lambda x: x.exp(), lambda x: math.exp(x), [-1.5, 0.0, 2.0]),
    ("log", lambda x: x.log(), lambda x: -1.0 / x ** 2, [0.3, 1.0, 4.0]),
    ("tanh", lambda x: x.tanh(),
     lambda x: -2.0 * math.tanh(x) * (1.0 - math.tanh(x) ** 2), [-1.2, 0.0, 0.7]),
    ("sigmoid", lambda x: x.sigmoid(),
     lambda x: (lambda s: s * (1 - s) * (1 - 2 * s))(1 / (1 + math.exp(-x))), [-2.0, 0.0, 1.3]),
    ("sin", lambda x: x.sin(), lambda x: -math.sin(x), [-2.0, 0.5, 3.0]),
    ("cube", lambda x: x ** 3, lambda x: 6.0 * x, [-2.0, 0.5, 3.0]),
]


@pytest.mark.parametrize("name,f,d2,points", SECOND, ids=[s[0] for s in SECOND])
def test_second_derivative_via_create_graph(name, f, d2, points):
    for p in points:
        x = Value(p, label="x")
        f(x).backward(create_graph=True)
        first = x.grad
        assert isinstance(first, Value), "create_graph=True must give a differentiable grad"
        x.zero_grad()
        first.backward()
        assert close(x.grad, d2(p), rel=1e-12, abs_=1e-14), (name, p, x.grad, d2(p))


@pytest.mark.parametrize("name,f,d2,points", SECOND, ids=[s[0] for s in SECOND])
def test_second_derivative_via_grad_of_grad(name, f, d2, points):
    for p in points:
        got = autograd.grad(autograd.grad(f))(p)
        assert isinstance(got, float)
        assert close(got, d2(p), rel=1e-12, abs_=1e-14), (name, p, got, d2(p))


def test_third_derivative_of_sin():
    assert close(autograd.grad(autograd.grad(autograd.grad(lambda x: x.sin())))(0.4),
                 -math.cos(0.4), rel=1e-12)


def test_second_derivative_of_cube_at_negative_x_is_finite_in_anomaly_mode():
    # d²(x³)/dx² = 6x = −12 at x = −2: every value and gradient is finite, so anomaly mode must
    # stay silent. (Ops whose inputs are all constants must not record a graph either: the
    # exponent's ``b − 1`` in the pow rule is such a constant, and ∂/∂(b−1) = aᵇ⁻¹·ln a is nan
    # for a < 0.)
    x = Value(-2.0, label="x")
    with detect_anomaly():
        (x ** 3).backward(create_graph=True)
        first = x.grad
        x.zero_grad()
        first.backward()
    assert x.grad == -12.0


def test_ops_on_constants_do_not_require_grad():
    # Same rule as Tensor: an op's result requires a gradient only if one of its inputs does.
    c = Value(2.0, requires_grad=False)
    assert not (c * 3).requires_grad
    assert not c.exp().requires_grad
    assert (c * Value(1.0)).requires_grad


# --- graph semantics -----------------------------------------------------------------------

def test_document_example():
    a = Value(3.0)
    b = a * a + a
    b.backward()
    assert a.grad == 7.0


def test_reuse_sums_contributions():
    a = Value(1.5)
    (a + a).backward()
    assert a.grad == 2.0

    a = Value(1.5)
    b = a * 3.0
    (b * b).backward()                 # d(9a²)/da = 18a
    assert close(a.grad, 27.0, rel=1e-15)
    assert close(b.grad, 9.0, rel=1e-15)


def test_diamond():
    a = Value(0.7, label="a")
    b = (a * 3.0).with_label("b")
    c = a.exp().with_label("c")
    d = (b * c).with_label("d")         # d = 3a·eᵃ, d′ = 3eᵃ(1 + a)
    d.backward()
    assert close(a.grad, 3 * math.exp(0.7) * 1.7, rel=1e-14)
    assert close(b.grad, c.data, rel=0)
    assert close(c.grad, b.data, rel=0)


def _labelled_graph():
    x = Value(0.3, label="x")
    w = Value(-1.2, label="w")
    b = Value(0.5, label="b")
    z = (w * x + b).with_label("z")
    a = z.tanh().with_label("a")
    u = (a * x).with_label("u")
    v = (a + w.sigmoid().with_label("s")).with_label("v")
    return (u * v + z).with_label("out"), [x, w, b, z, a, u, v]


def test_run_to_run_identical():
    root1, nodes1 = _labelled_graph()
    root2, nodes2 = _labelled_graph()
    labels1 = [n.label for n in topo_order(root1)]
    labels2 = [n.label for n in topo_order(root2)]
    assert labels1 == labels2
    root1.backward()
    root2.backward()
    assert [n.grad for n in nodes1] == [n.grad for n in nodes2]


def test_leaf_grads_accumulate_intermediates_hold_latest_pass():
    a = Value(2.0)
    b = a * a                          # intermediate
    c = b * 3.0
    c.backward()
    assert a.grad == 12.0 and b.grad == 3.0
    c.backward()
    assert a.grad == 24.0, "leaf gradients accumulate across backward calls (PyTorch rule)"
    assert b.grad == 3.0, "an intermediate holds the latest pass only"
    c.backward(grad_out=2.0)
    assert a.grad == 48.0 and b.grad == 6.0


def test_zero_grad():
    a = Value(2.0)
    (a * a).backward()
    assert a.grad == 4.0
    a.zero_grad()
    assert a.grad == 0.0
    (a * a).backward()
    assert a.grad == 4.0


def test_no_grad_makes_no_graph_and_enable_grad_restores():
    x = Value(2.0)
    with no_grad():
        y = x * x + 1.0
        with enable_grad():
            z = x * x
    assert y.parents == () and y.op is None and not y.requires_grad and y.is_leaf
    assert y.data == 5.0
    with pytest.raises(RuntimeError, match="does not require a gradient"):
        y.backward()                   # no graph: an error, as in PyTorch, not a silent no-op
    assert x.grad == 0.0
    assert z.parents == (x, x)
    w = x * x
    assert w.requires_grad and w.parents == (x, x)


def test_detach_cuts_the_graph():
    x = Value(3.0, label="x")
    y = x * x
    d = y.detach()
    assert d.is_leaf and d.data == 9.0 and not d.requires_grad and d is not y
    (d * x).backward()
    assert x.grad == 9.0               # no path through d
    assert y.grad == 0.0


# --- numerical stability and IEEE behaviour ------------------------------------------------

@pytest.mark.parametrize("x", [1000.0, -1000.0])
def test_saturating_functions_stay_finite_and_correct(x):
    cases = {
        "sigmoid": (lambda v: v.sigmoid(), 1.0 if x > 0 else 0.0, 0.0),
        "tanh": (lambda v: v.tanh(), math.copysign(1.0, x), 0.0),
        "softplus": (lambda v: v.softplus(), max(x, 0.0), 1.0 if x > 0 else 0.0),
    }
    for name, (f, value, derivative) in cases.items():
        v = Value(x)
        y = f(v)
        y.backward()
        assert math.isfinite(y.data) and math.isfinite(v.grad), name
        assert y.data == value, (name, y.data)
        assert v.grad == derivative, (name, v.grad)


@pytest.mark.parametrize("x", [-40.0, -20.0, 20.0, 40.0])
def test_sigmoid_and_softplus_accurate_in_the_tails(x):
    assert close(Value(x).sigmoid().data, 1.0 / (1.0 + math.exp(-x)), rel=1e-12, abs_=0)
    assert close(Value(x).softplus().data, math.log1p(math.exp(x)), rel=1e-12, abs_=0)


IEEE = [
    ("log", lambda x: x.log(), -1.0, "nan"),
    ("log", lambda x: x.log(), 0.0, -math.inf),
    ("sqrt", lambda x: x.sqrt(), -1.0, "nan"),
    ("pow", lambda x: x ** -1, 0.0, math.inf),
    ("exp", lambda x: x.exp(), 1000.0, math.inf),
    ("div", lambda x: 1.0 / x, 0.0, math.inf),
]


@pytest.mark.parametrize("op,f,x,expected", IEEE, ids=[f"{c[0]}({c[2]})" for c in IEEE])
def test_math_domain_follows_ieee(op, f, x, expected):
    y = f(Value(x))
    if expected == "nan":
        assert math.isnan(y.data)
    else:
        assert y.data == expected


@pytest.mark.parametrize("op,f,x,expected", IEEE, ids=[f"{c[0]}({c[2]})" for c in IEEE])
def test_anomaly_mode_raises_naming_op_and_label(op, f, x, expected):
    v = Value(x, label="my_input")
    with detect_anomaly():
        with pytest.raises(FloatingPointError) as info:
            f(v)
    message = str(info.value)
    assert f"'{op}'" in message and "my_input" in message, message
    # and the mode is switched off again afterwards
    f(Value(x))


def test_anomaly_mode_in_backward_names_the_op():
    x = Value(0.0, label="x0")
    y = x.sqrt()                       # sqrt(0) = 0 is finite; its derivative 1/(2·0) is not
    assert y.data == 0.0
    with detect_anomaly():
        with pytest.raises(FloatingPointError) as info:
            y.backward()
    assert "'sqrt'" in str(info.value) and "backward" in str(info.value)
    assert "x0" in str(info.value)
    y.backward()                       # outside the mode: IEEE inf, no exception
    assert x.grad == math.inf


# --- bad input -----------------------------------------------------------------------------

@pytest.mark.parametrize("bad,type_name", [("3", "str"), (None, "NoneType"), ([1.0], "list"),
                                           (True, "bool"), (1 + 2j, "complex")])
def test_value_rejects_non_real_input(bad, type_name):
    with pytest.raises(TypeError, match=type_name):
        Value(bad)


def test_value_accepts_ints_and_numpy_reals():
    assert Value(3).data == 3.0 and type(Value(3).data) is float
    assert type(Value(np.float32(1.5)).data) is float
    assert Value(np.int64(2)).data == 2.0


@pytest.mark.parametrize("make", [lambda: Value(1) + "a", lambda: "a" + Value(1),
                                  lambda: Value(1) * "a", lambda: Value(1) ** "a",
                                  lambda: Value(1) / None])
def test_arithmetic_with_non_number_raises_type_error_naming_type(make):
    with pytest.raises(TypeError, match="str|NoneType"):
        make()


# --- graphs freed without the garbage collector -------------------------------------------

def test_graphs_freed_by_reference_counting_alone():
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        w = Value(0.4, label="w")
        refs, tapes = [], []
        for i in range(300):
            x = Value(0.1 * i, label="x")
            z = (w * x + 1.0).with_label("z")
            a = z.tanh()
            loss = (a * a + z.sigmoid()).with_label("loss")
            loss.backward()
            refs.append([weakref.ref(n) for n in topo_order(loss) if n is not w])
            tapes.append(weakref.ref(loss._tape))   # where the graph itself is recorded
        del x, z, a, loss
        dead = [r() is None for rs in refs for r in rs]
        assert all(dead), f"{dead.count(False)} nodes of old graphs are still alive"
        alive = [r() for r in tapes if r() is not None]
        assert not alive, f"{len(alive)} tapes of old graphs are still alive"
        assert w.grad != 0.0
    finally:
        if was_enabled:
            gc.enable()


# --- the tape behind Value graphs (autograd.tape) ---------------------------------------------

def _mlp_loss(xs, ws):
    """A small two-layer network on Values, its loss reusing every weight many times."""
    hidden = [sum((w * x for w, x in zip(row, xs)), Value(0.1, requires_grad=False)).tanh()
              for row in ws]
    return sum((h * h for h in hidden), Value(0.0, requires_grad=False)).sigmoid()


def test_graph_spread_over_many_tapes_gives_the_same_gradients(monkeypatch):
    from autograd import tape as tape_module
    from autograd import value as value_module
    rng = np.random.default_rng(3)
    xs = [float(v) for v in rng.normal(size=4)]
    weights = rng.normal(size=(5, 4))

    def grads():
        ws = [[Value(float(v)) for v in row] for row in weights]
        loss = _mlp_loss(xs, ws)
        tapes = set()
        for node in topo_order(loss):
            if node._tape is not None:
                tapes.add(node._tape.serial)
        loss.backward()
        return [w.grad for row in ws for w in row], loss.data, len(tapes)

    value_module._new_tape()
    expected, value, n_tapes = grads()
    assert n_tapes == 1
    monkeypatch.setattr(tape_module, "TAPE_LIMIT", 7)      # a new tape every 8 entries
    value_module._new_tape()
    got, value_small, n_small = grads()
    assert n_small > 10
    assert value_small == value
    assert got == pytest.approx(expected, rel=1e-14, abs=0)


def test_node_from_before_a_backward_pass_is_followed_back():
    a, b = Value(2.0), Value(5.0)
    y = a * b
    y.backward()                       # starts a new tape: z below records y as FOREIGN
    z = y * y + a
    assert z._tape is not y._tape
    a.zero_grad()
    b.zero_grad()
    z.backward()
    assert a.grad == 2 * 10.0 * 5.0 + 1.0
    assert b.grad == 2 * 10.0 * 2.0
    assert y.grad == 20.0


def test_leaf_used_on_two_tapes_sums_its_gradients():
    x = Value(3.0)
    y1 = x * x
    (y1 * 1.0).backward()              # a pass from the current tape: a fresh one starts
    x.zero_grad()
    y2 = x * 4.0
    loss = y1 + y2
    loss.backward()
    assert x.grad == 2 * 3.0 + 4.0


def test_handles_on_one_entry_are_one_vertex():
    a = Value(3.0, label="a")
    b = a * a + a
    m1, m2 = b.parents[0], b.parents[0]
    assert m1 is not m2 and m1 == m2 and hash(m1) == hash(m2)
    assert len({m1, m2, b}) == 2
    assert b.parents[1] is a                       # a leaf is always the object itself
    m1.label = "a²"
    assert m2.label == "a²"
    b.backward()
    assert m1.grad == 1.0 and a.grad == 7.0
    assert Value(1.0) != Value(1.0)                # leaves: only themselves


def test_intermediate_gradient_from_an_earlier_pass_is_stale_not_overwritten():
    a, b = Value(2.0), Value(3.0)
    p = a * b
    q = a + b
    out1 = p * 2.0
    out2 = q * 3.0
    out1.backward()
    assert p.grad == 2.0 and p.grad_state(out1) == "current"
    out2.backward()                                # reaches q, not p
    assert p.grad == 2.0 and p.grad_state(out2) == "stale"
    assert q.grad == 3.0 and q.grad_state(out2) == "current"
    assert a.grad == 2.0 * 3.0 + 3.0               # leaves accumulate over both passes


def test_leaf_value_changed_after_forward_is_read_at_backward_like_tensor():
    w = Value(2.0)
    y = w * w
    w.data = 5.0
    y.backward()
    assert w.grad == 10.0                          # the Tensor engine reads .data then too


_PROGRAM_OPS = ["add", "sub", "mul", "div", "tanh", "sigmoid", "neg", "relu", "leaky", "square",
                "add_number", "number_mul", "softplus"]


def _run_program(program, leaves):
    """Evaluate a random straight-line program over Values (or floats): each step applies an
    op to earlier results, so nodes are reused and the graph is a DAG."""
    nodes = list(leaves)
    for name, i, j, c in program:
        a, b = nodes[i % len(nodes)], nodes[j % len(nodes)]
        if name == "add":
            out = a + b
        elif name == "sub":
            out = a - b
        elif name == "mul":
            out = a * b
        elif name == "div":
            out = a / (b * b + 1.0)
        elif name == "tanh":
            out = a.tanh()
        elif name == "sigmoid":
            out = a.sigmoid()
        elif name == "neg":
            out = -a
        elif name == "relu":
            out = (a + 0.0731).relu()
        elif name == "leaky":
            out = (a - 0.0417).leaky_relu(0.2)
        elif name == "square":
            out = a ** 2
        elif name == "add_number":
            out = a + c
        elif name == "number_mul":
            out = c * a
        else:
            out = a.softplus()
        nodes.append(out)
    total = nodes[-1]
    for node in nodes[len(leaves):-1:3]:      # several outputs summed: a wider graph
        total = total + node * 0.5
    return total


def _float_program(program, xs):
    """The same program on floats; also how close any relu input came to its kink."""
    import math
    values = list(xs)
    kink = math.inf
    sig = lambda v: 1 / (1 + math.exp(-v))    # noqa: E731
    for name, i, j, c in program:
        a, b = values[i % len(values)], values[j % len(values)]
        if name in ("relu", "leaky"):
            a = a + 0.0731 if name == "relu" else a - 0.0417
            kink = min(kink, abs(a))
        values.append({"add": lambda: a + b, "sub": lambda: a - b, "mul": lambda: a * b,
                       "div": lambda: a / (b * b + 1.0), "tanh": lambda: math.tanh(a),
                       "sigmoid": lambda: sig(a), "neg": lambda: -a,
                       "relu": lambda: max(a, 0.0),
                       "leaky": lambda: a if a > 0 else 0.2 * a,
                       "square": lambda: a ** 2, "add_number": lambda: a + c,
                       "number_mul": lambda: c * a,
                       "softplus": lambda: math.log1p(math.exp(a))}[name]())
    total = values[-1]
    for v in values[len(xs):-1:3]:
        total = total + v * 0.5
    return total, kink


_programs = st.lists(
    st.tuples(st.sampled_from(_PROGRAM_OPS), st.integers(0, 50), st.integers(0, 50),
              st.floats(-2, 2).filter(lambda c: abs(c) > 0.1)),
    min_size=1, max_size=25)


@given(program=_programs, xs=st.lists(st.floats(-1.5, 1.5), min_size=1, max_size=4),
       limit=st.sampled_from([3, 5, 11, 1 << 18]))
def test_tape_passes_agree_on_random_programs(program, xs, limit):
    """backward() (the plain pass), gradients(create_graph=True) (the general pass, rules on
    nodes) and central differences agree on random DAGs, however the graph is cut into tapes."""
    from autograd import gradients
    from autograd import tape as tape_module
    from autograd import value as value_module
    from autograd import kernels
    assert kernels.compiled(kernels.LARGE)          # numba loaded: the compiled sweep runs
    saved = tape_module.TAPE_LIMIT, tape_module.SMALL_SWEEP
    tape_module.TAPE_LIMIT = limit
    try:
        value_module._new_tape()
        leaves = [Value(x) for x in xs]
        out = _run_program(program, leaves)
        general = [g.data for g in gradients(out, leaves, create_graph=True)]
        passes = {}
        for small in (0, 1 << 30):              # the compiled sweep, then the per-edge one
            tape_module.SMALL_SWEEP = small
            for leaf in leaves:
                leaf.grad = None
            out.backward()
            passes[small] = [leaf.grad for leaf in leaves]
    finally:
        tape_module.TAPE_LIMIT, tape_module.SMALL_SWEEP = saved
        value_module._new_tape()
    for grads in passes.values():
        assert grads == pytest.approx(general, rel=1e-12, abs=1e-12)
    plain = passes[0]
    value, kink = _float_program(program, xs)
    assert out.data == pytest.approx(value, rel=1e-12, abs=1e-12)
    if kink < 1e-4:                    # central differences straddle a relu kink
        return
    eps = 1e-6
    for k in range(len(xs)):
        up, down = list(xs), list(xs)
        up[k] += eps
        down[k] -= eps
        numeric = (_float_program(program, up)[0] - _float_program(program, down)[0]) / (2 * eps)
        assert plain[k] == pytest.approx(numeric, rel=1e-5, abs=1e-6)


def _same_floats(a, b):
    """Lists of floats (or None) equal entry by entry, bit for bit (nan matching nan)."""
    return len(a) == len(b) and all(
        x is None and y is None or (x is not None and y is not None and (
            x == y and math.copysign(1, x) == math.copysign(1, y) or x != x and y != y))
        for x, y in zip(a, b))


def _both_sweeps(out):
    """(sweep_floats, sweep_general on floats) over out's own tape, seeded with 1."""
    from autograd import core, tape as tape_module, value as value_module
    from autograd.backends import FloatMath
    tape, seeds = out._tape, {out._i: 1.0}
    return (tape_module.sweep_floats(tape, seeds),
            tape_module.sweep_general(tape, seeds, value_module.node_at, FloatMath, False, None,
                                      False, core.check_backward))


@given(program=_programs, xs=st.lists(st.floats(-1.5, 1.5), min_size=1, max_size=4))
def test_the_float_sweep_gives_the_general_sweeps_numbers(program, xs):
    """A short tape's pass (`tape.sweep_floats`, the per-edge pass without create_graph,
    explain or anomaly checks) calls the same float rules in the same order as the general
    pass: the same floats, bit for bit, on random DAGs (shared inputs, constants, leaky_relu's
    slope as ctx)."""
    from autograd import value as value_module
    value_module._new_tape()
    out = _run_program(program, [Value(x) for x in xs])
    fast, general = _both_sweeps(out)
    assert _same_floats(fast, general)


@pytest.mark.parametrize("op", UNARY + list(BINARY), ids=str)
@pytest.mark.parametrize("x", [-2.0, -0.0, 0.0, 0.5, 3.0, math.inf, -math.inf, math.nan])
def test_the_float_sweep_follows_every_op_and_ieee_case(op, x):
    """Every op of the table, at ordinary points and at 0, ±inf and nan (where the compiled
    pass hands over to the per-edge one), used twice so contributions are summed."""
    from autograd import value as value_module
    value_module._new_tape()
    v = Value(x)
    if op in UNARY:
        y = op.apply(v)
        out = y * y + op.apply(v) * 2.0
    else:
        out = op.apply(v, v) * 1.5 + op.apply(v, v)
    fast, general = _both_sweeps(out)
    assert fast[out._i] == 1.0 and fast[v._i] is not None
    assert _same_floats(fast, general), (op, x, fast, general)


@given(program=_programs, xs=st.lists(st.floats(-1.5, 1.5), min_size=1, max_size=4),
       limit=st.sampled_from([3, 5, 11, 1 << 18]), constant=st.booleans())
def test_the_tape_walk_lists_the_general_walks_order(program, xs, limit, constant):
    """`topo_order` on a Value graph walks its tapes (`value._topo_order_values`): the same
    vertices in the same order as the general walk over `_parents`, however the graph is cut
    into tapes (FOREIGN entries), with leaves used on several tapes listed once."""
    from autograd import core
    from autograd import tape as tape_module
    from autograd import value as value_module
    saved = tape_module.TAPE_LIMIT
    tape_module.TAPE_LIMIT = limit
    try:
        value_module._new_tape()
        leaves = [Value(x, requires_grad=not (constant and k == 0)) for k, x in enumerate(xs)]
        out = _run_program(program, leaves)
        walked = topo_order(out)
        general = core._topo_order(out)
    finally:
        tape_module.TAPE_LIMIT = saved
        value_module._new_tape()
    assert len(walked) == len(general) and walked[-1] is out
    assert all(a.is_vertex(b) and a.data == b.data and a.requires_grad == b.requires_grad
               for a, b in zip(walked, general))
    for leaf in leaves:
        if any(node is leaf for node in general):
            assert sum(node is leaf for node in walked) == 1


def test_the_tape_walk_of_a_leaf_and_of_a_constant_root():
    x = Value(2.0)
    assert topo_order(x) == [x]
    c = Value(3.0) * 0 + 1.0
    assert [n.data for n in topo_order(c)][-1] == c.data


# --- weighted_sum: a neuron's Σ wᵢaᵢ + b recorded in one call ----------------------------------

def _recorded(build):
    """What ``build()`` records on a fresh tape: (codes, inputs, values), and its result."""
    from autograd import value as value_module
    value_module._new_tape()
    out = build()
    t = value_module.current_tape() if out._tape is None else out._tape
    return (list(t.code), list(t.pa), list(t.pb), list(t.data)), out


def _plain_sum(ws, xs, b):
    return sum((w * x for w, x in zip(ws, xs)), b)


@pytest.mark.parametrize("case", ["constant inputs", "inputs need gradients", "weight reused",
                                  "leaves already on the tape", "input from an older tape"])
def test_weighted_sum_records_what_the_plain_expression_records(case):
    from autograd import weighted_sum
    ws = [Value(0.5), Value(-1.25), Value(2.0)]
    b = Value(0.1)
    if case == "constant inputs":
        xs = [Value(v, requires_grad=False) for v in (2.0, 3.0, -1.0)]
    elif case == "weight reused":
        xs = [ws[0], Value(3.0), ws[0]]
    else:
        xs = [Value(v) for v in (2.0, 3.0, -1.0)]

    def build(f):
        if case == "leaves already on the tape":
            warm = ws[0] * xs[1] + b                 # enters w₀, x₁ and b first
            return f(ws, xs, b) * warm
        if case == "input from an older tape":
            older = xs[0] * 2.0
            (older * 1.0).backward()                # a fresh tape starts: older is FOREIGN
            return f(ws, [older] + xs[1:], b)
        return f(ws, xs, b)

    plain, z_plain = _recorded(lambda: build(_plain_sum))
    fast, z_fast = _recorded(lambda: build(weighted_sum))
    assert fast == plain
    assert z_fast.data == z_plain.data
    for v in ws + xs + [b]:
        v.zero_grad()
    z_plain.backward()
    expected = [v.grad for v in ws + xs + [b]]
    for v in ws + xs + [b]:
        v.zero_grad()
    z_fast.backward()
    assert [v.grad for v in ws + xs + [b]] == expected


@pytest.mark.parametrize("case", ["number inputs", "constant bias", "constant weight",
                                  "no_grad", "anomaly mode", "number input after a Value",
                                  "no terms"])
def test_weighted_sum_is_the_plain_expression_off_the_fast_path(case):
    import contextlib
    from autograd import detect_anomaly, no_grad, weighted_sum
    ws = [Value(0.5), Value(-1.25)]
    xs = [Value(2.0, requires_grad=False), Value(3.0, requires_grad=False)]
    b = Value(0.1)
    context = contextlib.nullcontext()
    if case == "number inputs":
        xs = [2.0, 3.0]
    elif case == "constant bias":
        b = Value(0.1, requires_grad=False)
    elif case == "constant weight":
        ws[1] = Value(-1.25, requires_grad=False)
    elif case == "no_grad":
        context = no_grad()
    elif case == "number input after a Value":
        ws.append(Value(4.0))
        xs.append(5.0)                               # the fast path records two terms first
    elif case == "no terms":
        ws, xs = [], []
    else:
        context = detect_anomaly()
    with context:
        plain, z_plain = _recorded(lambda: _plain_sum(ws, xs, b))
        fast, z_fast = _recorded(lambda: weighted_sum(ws, xs, b))
    assert fast == plain
    assert z_fast.data == z_plain.data and z_fast.requires_grad == z_plain.requires_grad
    if z_fast.requires_grad and case != "no terms":
        z_plain.backward()
        expected = [v.grad for v in ws + [b]]
        for v in ws + [b]:
            v.zero_grad()
        z_fast.backward()
        assert [v.grad for v in ws + [b]] == expected


def test_weighted_sum_rejects_mismatched_lengths():
    from autograd import weighted_sum
    with pytest.raises(ValueError, match="2 weights for 3 inputs"):
        weighted_sum([Value(1.0), Value(2.0)], [Value(1.0)] * 3, Value(0.0))


@pytest.mark.parametrize("compiled", [False, True])
def test_non_finite_local_derivatives_keep_ieee_results_in_the_plain_pass(compiled,
                                                                         monkeypatch):
    """The plain pass solves all edges at once; where a local derivative or a gradient is not
    finite it goes edge by edge, so inf stays inf and 0 · inf is nan, as on Tensor graphs."""
    if compiled:
        from autograd import kernels, tape
        assert kernels.compiled(kernels.LARGE)
        monkeypatch.setattr(tape, "SMALL_SWEEP", 0)
    x, w = Value(0.0), Value(2.0)
    y = x.sqrt() * w + w * w                   # ∂y/∂x = w / (2√x) = inf at 0
    y.backward()
    assert x.grad == math.inf and w.grad == 4.0
    tx = autograd.Tensor([0.0], requires_grad=True)
    tw = autograd.Tensor([2.0], requires_grad=True)
    with np.errstate(divide="ignore"):      # numpy's warning for the same inf
        ((tx.sqrt() * tw + tw * tw).sum()).backward()
    assert tx.grad[0] == x.grad and tw.grad[0] == w.grad
    u = Value(0.0)
    z = u.sqrt() * 0.0 + u                     # 0 · inf on the edge into u
    z.backward()
    assert math.isnan(u.grad)


def test_a_constant_value_in_a_graph_is_itself_with_its_label():
    x = Value(0.05, label="a(1)[0]", requires_grad=False)
    w = Value(0.15, label="W(1)[0,0]")
    z = w * x + 0.35
    product = z.parents[0]
    assert product.parents[1] is x and product.parents[1].label == "a(1)[0]"
    assert x in topo_order(z)
    z.backward()
    assert w.grad == 0.05 and x.grad == 0.0      # constants get no gradient


def test_exponent_gradient_at_base_zero_is_zero_in_every_pass():
    # 0^b is constant for b ≥ 0, so ∂/∂b is 0 (as PyTorch), in the plain pass, the general pass
    # and to second order; elsewhere it is aᵇ·ln a
    for make in (lambda a, b: a ** b, lambda a, b: (a ** b) * 1.0 + a * 0.0):
        a, b = Value(0.0), Value(2.0)
        make(a, b).backward()
        assert b.grad == 0.0 and a.grad == 0.0
    a, b = Value(0.0), Value(2.0)
    (gb,) = gradients(a ** b, [b], create_graph=True)
    assert gb.data == 0.0
    (gbb,) = gradients(gb, [b])
    assert gbb == 0.0
    a, b = Value(0.0), Value(0.0)                 # a⁰ = 1: constant in a and (b ≥ 0) in b
    (a ** b).backward()
    assert a.grad == 0.0 and b.grad == 0.0
    a, b = Value(0.0), Value(0.0)
    ga, gb = gradients(a ** b, [a, b], create_graph=True)
    assert ga.data == 0.0 and gb.data == 0.0
    a, b = Value(2.0), Value(3.0)
    (a ** b).backward()
    assert b.grad == pytest.approx(8 * math.log(2.0)) and a.grad == 12.0


@pytest.fixture
def compiled_sweep(monkeypatch):
    """The plain pass's compiled back substitution for tapes of any length (numba loaded)."""
    from autograd import kernels, tape
    assert kernels.compiled(kernels.LARGE)
    monkeypatch.setattr(tape, "SMALL_SWEEP", 0)


def _refuse(*args, **kwargs):
    raise AssertionError("this pass should not run here")


def test_an_unused_nan_derivative_into_a_constant_keeps_the_plain_pass(monkeypatch,
                                                                       compiled_sweep):
    # ∂(x²)/∂2 = x²·ln x is nan for x < 0, but the constant 2 needs no gradient: the compiled
    # back substitution still applies (the edge-by-edge pass is not called)
    from autograd import tape, value
    monkeypatch.setattr(tape, "sweep_general", _refuse)
    monkeypatch.setattr(value, "sweep_general", _refuse, raising=False)
    x = Value(-3.0)
    y = x ** 2 + x * 4.0
    y.backward()
    assert x.grad == -2.0


def _layer(n_in=30, n_out=8, seed=0):
    """A tanh layer on Values, summed: a few hundred tape entries."""
    rng = np.random.default_rng(seed)
    xs = [Value(float(v)) for v in rng.standard_normal(n_in)]
    ws = [[Value(float(v)) for v in row] for row in rng.standard_normal((n_out, n_in))]
    out = sum((weighted_sum(row, xs, Value(0.1)).tanh() for row in ws), Value(0.0))
    return out, xs + [w for row in ws for w in row]


def test_a_short_tape_is_swept_edge_by_edge_and_a_long_one_in_compiled_code(monkeypatch):
    """Below SMALL_SWEEP entries the per-edge Python sweep is faster than setting up arrays
    (~4 µs against ~50 µs for a 5-entry tape); above it the compiled back substitution runs.
    Both give the general pass's numbers."""
    from autograd import gradients, kernels, tape, value
    assert kernels.compiled(kernels.LARGE)
    x = Value(0.5)
    y = (x * x + x).tanh()
    with monkeypatch.context() as m:
        m.setattr(tape, "local_derivatives", _refuse)   # no arrays for a short tape
        y.backward()
    assert x.grad == pytest.approx((2 * 0.5 + 1) * (1 - math.tanh(0.75) ** 2), rel=1e-15)
    out, leaves = _layer()
    general = [g.data for g in gradients(out, leaves, create_graph=True)]
    with monkeypatch.context() as m:
        m.setattr(tape, "sweep_general", _refuse)
        m.setattr(value, "sweep_general", _refuse, raising=False)
        out.backward()
    assert [leaf.grad for leaf in leaves] == pytest.approx(general, rel=1e-12, abs=1e-15)
    # without the compiled loop (CHAINRULE_KERNELS=numpy) the long tape goes edge by edge
    monkeypatch.setattr(kernels, "_loaded", False)
    for leaf in leaves:
        leaf.grad = None
    out.backward()
    assert [leaf.grad for leaf in leaves] == pytest.approx(general, rel=1e-12, abs=1e-15)


def test_numba_is_imported_for_the_sweep_only_once_python_sweeps_add_up(monkeypatch):
    """A script's few passes never pay numba's ~0.5 s import: it comes once SWEEP_IMPORT
    entries have been swept in Python, over all passes; short tapes do not count."""
    from autograd import kernels, tape
    loads = []
    real = kernels._loaded or kernels._load()
    assert real, "numba is a dependency"

    def load():
        loads.append(1)
        kernels._loaded = real
        return real
    monkeypatch.setattr(kernels, "_loaded", None)
    monkeypatch.setattr(kernels, "_load", load)
    monkeypatch.setattr(tape, "_swept_in_python", 0)
    monkeypatch.setattr(tape, "SWEEP_IMPORT", 1000)
    out, leaves = _layer(n_in=10, n_out=8)   # ~260 entries
    n = out._i + 1
    assert tape.SMALL_SWEEP <= n < 500, n
    x = Value(0.5)
    for _ in range(50):
        (x * x).backward()                   # short tapes: swept in Python, not counted
    passes = 0
    while tape._swept_in_python + n < 1000:
        out.backward()
        passes += 1
    assert loads == [] and passes >= 2
    out.backward()                           # this pass reaches 1000 entries: import, compile
    assert loads == [1] and kernels.in_use()
    out.backward()
    assert loads == [1]


def test_the_compiled_sweep_sums_as_the_per_edge_one(monkeypatch, compiled_sweep):
    """A node's contributions are added in the per-edge sweep's order, its consumers from the
    last down: x feeds x·1, x·1, x·1e16, so that order gives 1e16 + 1 + 1 = 1e16 (each 1 is
    below half an ulp of 1e16) where the creation order would give 1 + 1 + 1e16 = 1e16 + 2."""
    from autograd import tape
    for small in (0, 1 << 30):                  # the compiled sweep, then the per-edge one
        monkeypatch.setattr(tape, "SMALL_SWEEP", small)
        x = Value(3.0)
        (x * 1.0 + x * 1.0 + x * 1e16).backward()
        assert x.grad == 1e16
    out, leaves = _layer(seed=3)
    out = out * out + leaves[0] * leaves[0]
    out.backward()
    compiled = [leaf.grad for leaf in leaves]
    for leaf in leaves:
        leaf.grad = None
    out.backward()                              # per edge (SMALL_SWEEP is 2³⁰ now)
    # the local derivatives come from the rules' array forms (numpy) in the compiled sweep and
    # their float forms (math) per edge: an ulp apart at most, not summed differently
    assert [leaf.grad for leaf in leaves] == pytest.approx(compiled, rel=1e-14, abs=1e-300)


def test_the_compiled_sweep_runs_at_the_speed_of_a_compiled_loop():
    """The back substitution over a 300,000-entry chain costs about what numpy's cumulative
    product of its derivatives does (~1.5×): a few ns per entry. (Its helper once took the
    arrays themselves, which numba increfs and decrefs per call: ~10× the cumprod.)"""
    import time
    from autograd import kernels, rules, tape
    assert kernels.compiled(kernels.LARGE)
    n = 300_000
    code = np.full(n, tape.code_of(rules.MUL), dtype=np.uint8)
    code[0] = tape.LEAF
    code = np.frombuffer(code.tobytes(), dtype=np.uint8)       # read-only, as sweep's
    pa, pb = np.arange(-1, n - 1), np.full(n, -1)
    da, db = np.full(n, 0.999999), np.zeros(n)

    def substitute():
        g, reached = np.zeros(n), np.zeros(n, dtype=np.uint8)
        g[-1], reached[-1] = 1.0, 1
        start = time.perf_counter()
        kernels.back_substitute(code, pa, pb, da, db, g, reached, tape.FIRST_OP, tape.CONSTANT)
        return time.perf_counter() - start, g

    def cumprod():
        start = time.perf_counter()
        np.multiply.accumulate(da)
        return time.perf_counter() - start

    _, g = substitute()
    assert g[0] == pytest.approx(0.999999 ** (n - 1), rel=1e-9)
    ours = min(substitute()[0] for _ in range(5))
    numpy = min(cumprod() for _ in range(5))
    assert ours < 5 * numpy, f"{ours * 1e9 / n:.1f} ns per entry, cumprod {numpy * 1e9 / n:.1f}"


def test_a_copied_or_unpickled_value_is_a_vertex_of_its_own():
    import copy
    import pickle
    a = Value(3.0, label="a")
    a * a                                         # a now has an entry on the current tape
    for twin in (copy.copy(a), copy.deepcopy(a), pickle.loads(pickle.dumps(a))):
        (twin * 5.0).backward()
        assert twin.grad == 5.0 and twin.label == "a" and twin is not a
    assert a.grad == 0.0                          # nothing flowed back to the original
    assert len(pickle.dumps(Value(1.0) * Value(2.0))) < 200    # no tape in the pickle


def test_a_deep_copied_value_network_trains_on_its_own():
    import copy
    model = nn.ValueMLP(2, [3, 1], seed=0)
    model([0.5, 0.2])                             # a forward pass before copying
    twin = copy.deepcopy(model)
    twin([0.5, 0.2])[0].backward()
    assert all(p.grad == 0.0 for p in model.parameters())
    assert any(p.grad != 0.0 for p in twin.parameters())


def test_value_converts_like_a_float():
    assert not Value(0.0) and Value(-2.0)
    assert int(Value(2.7)) == 2 and round(Value(2.567), 2) == 2.57
    assert f"{Value(2.0):.2f}" == "2.00" and float(Value(1.5)) == 1.5


def test_requires_grad_changed_between_uses_on_one_tape_is_honoured():
    # a leaf has one entry per tape, written at its first use: whether it needs a gradient is
    # read again at backward (unfreezing after a monitoring forward pass, say)
    x = Value(3.0)
    c = Value(2.0, requires_grad=False)
    c * x                                    # first use while frozen
    c.requires_grad = True
    (c * c).backward()
    assert c.grad == 4.0                     # was 0.0
    w = Value(5.0)
    w * x                                    # first use while trainable
    w.requires_grad = False
    (w * x + x * x).backward()
    assert w.grad == 0.0 and x.grad == 5.0 + 6.0


def test_value_with_numpy_arrays_behaves_the_same_either_way_round():
    v = Value(2.0)
    for make in (lambda: v * np.array([1.0, 2.0]), lambda: np.array([1.0, 2.0]) * v):
        with pytest.raises(TypeError, match="ndarray"):
            make()                               # was an object array of Values one way round
    assert (np.float64(2.0) * v).data == 4.0 and (v * np.float32(2.0)).data == 4.0


def test_anomaly_with_create_graph_names_the_op_being_differentiated():
    x = Value(0.0)
    with detect_anomaly():
        f = x.sqrt() * 0.0 + x * x
        with pytest.raises(FloatingPointError) as info:
            f.backward(create_graph=True)
    message = str(info.value)
    assert message.startswith("detect_anomaly: op 'sqrt' produced a non-finite value in backward")
    assert "inside its derivative" in message


def test_create_graph_gives_the_first_derivatives_of_the_plain_pass_at_flat_points():
    """relu and aᵇ where they are flat pass nothing on, even an inf, in both modes (PyTorch)."""
    from autograd import gradients
    c = Value(float("inf"), requires_grad=False)
    cases = []
    x = Value(1.0)
    cases.append(((x - 2.0).relu() * c + x, x, 1.0))
    a, e = Value(2.0), Value(0.0)
    cases.append(((a ** e) * c, a, 0.0))
    z, b = Value(0.0), Value(2.0)
    cases.append(((z ** b) * c, b, 0.0))
    for y, leaf, want in cases:
        assert gradients(y, [leaf])[0] == want
        assert gradients(y, [leaf], create_graph=True)[0].data == want


def test_weighted_sum_of_no_terms_leaves_the_bias_label_alone():
    from autograd import weighted_sum
    b = Value(1.0, label="b")
    assert weighted_sum([], [], b, label="z") is b and b.label == "b"
    assert weighted_sum([Value(2.0)], [Value(3.0)], b, label="z").label == "z"
    assert b.label == "b"


def test_create_graph_inside_no_grad_keeps_the_accumulated_gradient_differentiable():
    # PyTorch and the Tensor engine record the sum onto an earlier gradient too: d/dx of the
    # accumulated 3x² + 3x² is 12x, not "a constant"
    x = Value(2.0)
    y1, y2 = x ** 3, x ** 3
    with no_grad():
        y1.backward(create_graph=True)
        y2.backward(create_graph=True)
    g = x.grad
    assert g.data == 24.0 and g.requires_grad
    x.zero_grad()
    g.backward()
    assert x.grad == 24.0


def test_a_value_grad_out_seeds_with_its_number_unless_create_graph():
    """backward(Value(3.0)): the leaf root's .grad is the number 3.0, as a non-leaf root's
    leaves get numbers (it kept the Value object itself); with create_graph it is a node."""
    a = Value(2.0, requires_grad=True)
    a.backward(Value(3.0))
    assert a.grad == 3.0 and type(a.grad) is float
    b = Value(2.0, requires_grad=True)
    (b * 1.0).backward(Value(3.0))
    assert type(b.grad) is float and b.grad == 3.0
    c = Value(2.0, requires_grad=True)
    c.backward(Value(3.0), create_graph=True)
    assert isinstance(c.grad, Value) and c.grad.data == 3.0
