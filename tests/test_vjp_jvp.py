"""Tests of vjp and jvp: central differences in float64, the Jacobian they are products of,
torch.func on the same functions and on random compositions, nesting with the other transforms,
and the errors."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from autograd import Node, Tensor, Value, grad, hessian, jacobian, jvp, no_grad, vjp
from tests.ops_table import SETTINGS
from tests.test_functional import TORCH_JIT_DEPRECATED, _compositions, _run, _same


def _amax(o, axis):
    return o.amax(axis) if hasattr(o, "amax") else o.max(axis=axis)


# (name, f written once for chainrule's nodes and torch's tensors, primal shapes; None: a float)
CASES = [
    ("broadcast", lambda x, b: (x * b).tanh() + b, [(2, 3), (3,)]),
    ("0-d times a vector", lambda s, y: s * y.exp() - s * s, [(), (2,)]),
    ("matmul", lambda W, x: (W @ x).sigmoid(), [(2, 3), (3, 4)]),
    ("reductions", lambda x: x.sum(axis=0) * x.mean() + _amax(x, 1).sum(), [(3, 4)]),
    ("softmax", lambda x: x.softmax(-1) * x, [(2, 3)]),
    ("scalar output", lambda x, y: ((x @ y) ** 2 + 1.0).log(), [(3,), (3,)]),
    ("Value", lambda a, b: a * b.sin() + a ** 3, [None, None]),
    ("list of Values", lambda a, b: [a * b, (a + b).tanh(), a.exp()], [None, None]),
]
IDS = [name for name, _, _ in CASES]


def _primals(shapes, seed=0):
    rng = np.random.default_rng(seed)
    return [float(rng.standard_normal()) if s is None else np.asarray(rng.standard_normal(s))
            for s in shapes]


def _like(x, rng):
    """Random numbers of x's shape: a float for a float."""
    return float(rng.standard_normal()) if type(x) is float else np.asarray(
        rng.standard_normal(np.shape(x)))


def _evaluate(f, xs):
    """f at plain numbers, as an array (no graph)."""
    out = f(*[Value(x, requires_grad=False) if type(x) is float else Tensor(x) for x in xs])
    return np.array([v.data for v in out] if isinstance(out, list) else out.data)


def _directions(f, args, seed):
    """(v, one per primal; u, of f's output shape) drawn from ``seed``."""
    rng = np.random.default_rng(seed)
    return tuple(_like(x, rng) for x in args), rng.standard_normal(_evaluate(f, args).shape)


def _moved(xs, i, d):
    """xs with x_i + d: a float stays a float, an array (0-d too) an array."""
    return [(x + d if type(x) is float else np.asarray(x + d)) if k == i else x
            for k, x in enumerate(xs)]


def _numeric_jvp(f, xs, vs, eps=1e-6):
    """(f(x + εv) − f(x − εv)) / 2ε."""
    up, down = list(xs), list(xs)
    for i, v in enumerate(vs):
        up, down = _moved(up, i, eps * v), _moved(down, i, -eps * v)
    return (_evaluate(f, up) - _evaluate(f, down)) / (2 * eps)


def _numeric_vjp(f, xs, u, eps=1e-6):
    """[∂⟨u, f(x)⟩/∂x_i entry by entry, by central differences]."""
    result = []
    for i, x in enumerate(xs):
        g = np.zeros(np.shape(x))
        for j in np.ndindex(g.shape):
            step = np.zeros(np.shape(x))
            step[j] = eps
            d = float(step) if type(x) is float else step
            up, down = _evaluate(f, _moved(xs, i, d)), _evaluate(f, _moved(xs, i, -d))
            g[j] = np.sum(u * (up - down)) / (2 * eps)
        result.append(float(g) if type(x) is float else g)
    return result


@pytest.mark.parametrize("name, f, shapes", CASES, ids=IDS)
def test_jvp_and_vjp_agree_with_central_differences(name, f, shapes):
    xs = _primals(shapes)
    vs, u = _directions(f, xs, seed=1)
    out, Jv = jvp(f, tuple(xs), vs)
    value = _evaluate(f, xs)
    np.testing.assert_allclose(np.asarray(out), value, rtol=1e-15)
    np.testing.assert_allclose(np.asarray(Jv), _numeric_jvp(f, xs, vs), rtol=1e-7, atol=1e-9)
    out, vjp_fn = vjp(f, *xs)
    np.testing.assert_allclose(np.asarray(out), value, rtol=1e-15)
    uJ = vjp_fn(u if value.shape else float(u))
    assert isinstance(uJ, tuple) and len(uJ) == len(xs)
    for got, want, x in zip(uJ, _numeric_vjp(f, xs, u), xs):
        assert type(got) is (float if type(x) is float else np.ndarray)
        np.testing.assert_allclose(got, want, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("name, f, shapes", CASES, ids=IDS)
def test_jvp_is_the_jacobian_times_v_and_vjp_u_times_the_jacobian(name, f, shapes):
    xs = _primals(shapes, seed=3)
    vs, u = _directions(f, xs, seed=2)
    blocks = jacobian(f, tuple(range(len(xs))))(*xs)
    Jv = sum(np.tensordot(J, v, axes=np.ndim(v)) for J, v in zip(blocks, vs))
    np.testing.assert_allclose(jvp(f, tuple(xs), vs)[1], Jv, rtol=1e-13, atol=1e-15)
    for got, J in zip(vjp(f, *xs)[1](u), blocks):
        np.testing.assert_allclose(got, np.tensordot(u, J, axes=u.ndim), rtol=1e-13,
                                   atol=1e-15)


@TORCH_JIT_DEPRECATED
@pytest.mark.parametrize("name, f, shapes", CASES, ids=IDS)
def test_jvp_and_vjp_agree_with_torch_func(name, f, shapes):
    torch = pytest.importorskip("torch")
    tf = pytest.importorskip("torch.func")
    xs = _primals(shapes, seed=5)
    vs, u = _directions(f, xs, seed=4)
    t = lambda a: torch.tensor(a, dtype=torch.float64)       # noqa: E731
    out, Jv = jvp(f, tuple(xs), vs)
    t_out, t_Jv = tf.jvp(f, tuple(map(t, xs)), tuple(map(t, vs)))
    _same(out, t_out, "jvp's f(x)")
    _same(Jv, t_Jv, "J·v")
    out, vjp_fn = vjp(f, *xs)
    t_out, t_vjp_fn = tf.vjp(f, *map(t, xs))
    _same(out, t_out, "vjp's f(x)")
    _same(vjp_fn(u), t_vjp_fn(list(map(t, u)) if isinstance(t_out, list) else t(u)), "uᵀJ")


@given(_compositions(), st.integers(0, 2 ** 32 - 1))
@settings(SETTINGS, max_examples=30)
def test_random_compositions_satisfy_the_dot_product_identity(case, seed):
    """⟨u, J v⟩ = ⟨uᵀJ, v⟩ (summed over primals), and both match the Jacobian, on random
    compositions of elementwise and broadcasting steps (the output before any reduction)."""
    args, program, _, ignores_last = case
    f = lambda *xs: _run(program, xs, None, ignores_last)    # noqa: E731
    vs, u = _directions(f, args, seed)
    out, Jv = jvp(f, tuple(args), vs)
    uJ = vjp(f, *args)[1](u)
    assert type(Jv) is type(out) and all(type(g) is type(x) for g, x in zip(uJ, args))
    left = float(np.sum(u * Jv))
    right = sum(float(np.sum(g * v)) for g, v in zip(uJ, vs))
    assert math.isclose(left, right, rel_tol=1e-10, abs_tol=1e-12), (left, right)
    blocks = jacobian(f, tuple(range(len(args))))(*args)
    np.testing.assert_allclose(Jv, sum(np.tensordot(J, v, axes=np.ndim(v))
                                       for J, v in zip(blocks, vs)), rtol=1e-10, atol=1e-12)


@TORCH_JIT_DEPRECATED
@given(_compositions(), st.integers(0, 2 ** 32 - 1))
@settings(SETTINGS, max_examples=25)
def test_random_compositions_agree_with_torch_func(case, seed):
    torch = pytest.importorskip("torch")
    tf = pytest.importorskip("torch.func")
    args, program, _, ignores_last = case
    f = lambda *xs: _run(program, xs, None, ignores_last)    # noqa: E731
    t_args = [torch.tensor(x, dtype=torch.float64) for x in args]
    vs, u = _directions(f, args, seed)
    out, vjp_fn = vjp(f, *args)
    t_out, t_vjp_fn = tf.vjp(f, *t_args)
    _same(out, t_out, "f(x)")
    _same(vjp_fn(u), t_vjp_fn(torch.tensor(u, dtype=torch.float64)), "uᵀJ")
    _same(jvp(f, tuple(args), vs)[1],
          tf.jvp(f, tuple(t_args), tuple(torch.tensor(v, dtype=torch.float64) for v in vs))[1],
          "J·v")


def test_vjp_records_f_once_and_its_function_can_be_called_again():
    calls = []

    def f(W, x):
        calls.append(1)
        return (W @ x).tanh()

    W, x = _primals([(2, 3), (3,)], seed=6)
    out, vjp_fn = vjp(f, W, x)
    J_W, J_x = jacobian(f, (0, 1))(W, x)
    calls.clear()
    for u in (np.array([1.0, 0.0]), np.array([-0.5, 2.0]), np.array([1.0, 0.0])):
        g_W, g_x = vjp_fn(u)
        np.testing.assert_allclose(g_W, np.tensordot(u, J_W, axes=1), rtol=1e-14)
        np.testing.assert_allclose(g_x, u @ J_x, rtol=1e-14)
    assert calls == []
    first, again = vjp_fn(np.array([1.0, 2.0])), vjp_fn(np.array([1.0, 2.0]))
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    a, b = vjp_fn(np.array([1.0, 0.0])), vjp_fn(np.array([0.0, 1.0]))
    c = vjp_fn(np.array([3.0, -2.0]))                # linear in u
    for ai, bi, ci in zip(a, b, c):
        np.testing.assert_allclose(ci, 3 * ai - 2 * bi, rtol=1e-14, atol=1e-15)
    assert calls == []
    jvp(f, (W, x), (np.ones((2, 3)), np.ones(3)))
    assert calls == [1]


def test_what_they_return_is_the_callers_own():
    """f(x) is a copy (exp's VJP reads its output: changing the returned array must not change
    uᵀJ), and uᵀJ is not the cotangent (for the identity it has the same numbers)."""
    x = np.array([0.5, 1.0])
    out, vjp_fn = vjp(lambda t: t.exp(), x)
    out[:] = 0.0
    np.testing.assert_allclose(vjp_fn(np.ones(2))[0], np.exp(x), rtol=1e-15)
    u = np.array([2.0, 3.0])
    (g,) = vjp(lambda t: t, x)[1](u)
    g += 1.0
    np.testing.assert_array_equal(u, [2.0, 3.0])
    np.testing.assert_array_equal(x, [0.5, 1.0])


def test_floats_for_float_primals_and_numbers_outside_any_transform():
    out, vjp_fn = vjp(lambda a, b: a * b * b, 2.0, 3.0)
    assert type(out) is float and out == 18.0
    assert vjp_fn(1.0) == (9.0, 12.0) and all(type(g) is float for g in vjp_fn(2))
    out, Jv = jvp(lambda a, b: a * b * b, (2.0, 3.0), (1.0, 0.5))
    assert type(Jv) is float and Jv == 9.0 + 12.0 * 0.5
    out, Jv = jvp(lambda a: [a * a, a.sin()], (2.0,), (1.0,))
    assert out == [4.0, math.sin(2.0)] and Jv == [4.0, math.cos(2.0)]
    assert all(type(g) is float for g in Jv)
    # integers are real numbers too, as grad takes an integer array
    assert jvp(lambda a: a * a, (np.array([1, 2]),), ([1, 0],))[1].tolist() == [2.0, 0.0]
    np.testing.assert_array_equal(vjp(lambda a: a * a, [1, 2])[1]([1, 1])[0], [2.0, 4.0])


def test_node_primals_give_nodes_and_no_grad_gives_numbers():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    out, Jv = jvp(lambda t: t ** 3, (x,), (np.ones(2),))
    assert isinstance(Jv, Tensor) and Jv.requires_grad
    Jv.sum().backward()                              # d/dx Σ 3x² = 6x
    np.testing.assert_array_equal(x.grad, [6.0, 12.0])
    out, vjp_fn = vjp(lambda t: t ** 3, x)
    assert isinstance(out, Tensor) and isinstance(vjp_fn(np.ones(2))[0], Tensor)
    with no_grad():
        out, Jv = jvp(lambda t: t ** 3, (x,), (Tensor(np.ones(2), requires_grad=True),))
        assert type(out) is np.ndarray and type(Jv) is np.ndarray
        out, vjp_fn = vjp(lambda t: t ** 3, Value(2.0))
        assert vjp_fn(Value(1.0)) == (12.0,)


def test_grad_of_a_function_that_uses_jvp():
    """f(x) = x sin x; jvp gives f′(x)·v. d/dx of it is f″(x)·v and d/dv is f′(x)."""
    f = lambda t: t * t.sin()                                    # noqa: E731
    x, v = 0.7, 1.5
    df = math.sin(x) + x * math.cos(x)
    d2f = 2 * math.cos(x) - x * math.sin(x)
    inside = grad(lambda a: jvp(f, (a,), (v,))[1])(x)
    assert type(inside) is float and math.isclose(inside, d2f * v, rel_tol=1e-14)
    assert math.isclose(grad(lambda w: jvp(f, (x,), (w,))[1])(v), df, rel_tol=1e-14)
    # forward over forward: f″; and the Hessian of x ↦ f′(x) is f‴ = −3 sin x − x cos x
    _, d2 = jvp(lambda a: jvp(f, (a,), (1.0,))[1], (x,), (1.0,))
    assert type(d2) is float and math.isclose(d2, d2f, rel_tol=1e-14)
    assert math.isclose(hessian(lambda a: jvp(f, (a,), (1.0,))[1])(x),
                        -3 * math.sin(x) - x * math.cos(x), rel_tol=1e-14)
    y = np.array([0.3, -1.2, 2.0])                   # elementwise: ∂(f′(y)·w)/∂y = diag(f″ w)
    w = np.array([1.0, -2.0, 0.5])
    np.testing.assert_allclose(jacobian(lambda a: jvp(f, (a,), (w,))[1])(y),
                               np.diag((2 * np.cos(y) - y * np.sin(y)) * w), rtol=1e-14)


def test_grad_of_a_function_that_uses_vjp():
    f = lambda t: t * t.sin()                                    # noqa: E731
    x, u = 0.7, -0.4
    got = grad(lambda a: vjp(f, a)[1](u)[0])(x)
    assert math.isclose(got, u * (2 * math.cos(x) - x * math.sin(x)), rel_tol=1e-14)
    # vjp_fn made outside, called inside a transform on the cotangent: d/du (uᵀJ w) = J w,
    # as numbers (the primal's leaf is vjp's own, not a parameter f closes over)
    A = np.array([[1.0, 2.0, 0.0], [0.5, -1.0, 3.0]])
    x0 = np.array([0.1, -0.2, 0.3])
    _, vjp_fn = vjp(lambda t: (Tensor(A) @ t).tanh(), x0)
    w = np.array([1.0, 2.0, -1.0])
    g = grad(lambda c: (vjp_fn(c)[0] * w).sum())(np.array([0.5, 1.0]))
    assert type(g) is np.ndarray
    np.testing.assert_allclose(g, (1 - np.tanh(A @ x0) ** 2) * (A @ w), rtol=1e-14)


def test_jvp_of_grad_is_a_hessian_vector_product():
    # f = Σ x³ + (Σ x)², H = diag(6x) + 2·11ᵀ
    f = lambda t: (t ** 3).sum() + t.sum() ** 2                  # noqa: E731
    x, v = np.array([0.5, -1.0, 2.0]), np.array([1.0, 2.0, -0.5])
    _, Hv = jvp(grad(f), (x,), (v,))
    np.testing.assert_allclose(Hv, 6 * x * v + 2 * v.sum(), rtol=1e-14)
    # and the other way round: the gradient of ⟨v, ∇f⟩ (reverse over reverse) is Hv too
    np.testing.assert_allclose(grad(lambda t: (vjp(f, t)[1](1.0)[0] * v).sum())(x),
                               6 * x * v + 2 * v.sum(), rtol=1e-14)


def test_a_closed_over_parameter_keeps_its_dependence():
    """As grad: f(x) = W x with W requiring a gradient. ‖Wᵀu‖² (from vjp) has the gradient
    2 u (Wᵀu)ᵀ in W, and ‖W v‖² (from jvp) 2 (W v) vᵀ."""
    W0 = np.array([[1.0, 2.0, 0.0], [0.5, -1.0, 3.0]])
    x, u, v = np.array([0.1, 0.2, 0.3]), np.array([1.0, -2.0]), np.array([0.5, 1.0, -1.0])
    W = Tensor(W0, requires_grad=True)
    (uJ,) = vjp(lambda t: W @ t, x)[1](u)
    assert isinstance(uJ, Tensor)
    (uJ ** 2).sum().backward()
    np.testing.assert_allclose(W.grad, 2 * np.outer(u, W0.T @ u), rtol=1e-15)
    W.zero_grad()
    _, Jv = jvp(lambda t: W @ t, (x,), (v,))
    (Jv ** 2).sum().backward()
    np.testing.assert_allclose(W.grad, 2 * np.outer(W0 @ v, v), rtol=1e-15)


def _f(a, b):
    return (a * b).tanh()


@pytest.mark.parametrize("call, error, message", [
    (lambda: vjp(_f, np.ones(3), np.ones(3))[1](np.ones(2)), ValueError,
     r"^vjp: the cotangent has shape \(2,\), the output has shape \(3,\)$"),
    (lambda: vjp(_f, np.ones(3), np.ones(3))[1](np.ones((3, 1))), ValueError,
     r"^vjp: the cotangent has shape \(3, 1\), the output has shape \(3,\)$"),
    (lambda: vjp(_f, 1.0, 2.0)[1](np.ones(2)), ValueError,
     r"^vjp: the cotangent has shape \(2,\), the output has shape \(\)$"),
    (lambda: vjp(lambda a: [a, a * a], 1.0)[1]([1.0]), ValueError,
     r"^vjp: the cotangent has shape \(1,\), the output has shape \(2,\)$"),
    (lambda: vjp(lambda a: [a, a * a], 1.0)[1]([Value(1.0)]), ValueError,
     r"^vjp: the cotangent has shape \(1,\), the output has shape \(2,\)$"),
    (lambda: vjp(_f, np.ones(3), np.ones(3))[1](np.ones(3, bool)), TypeError,
     r"^vjp: the cotangent must be real numbers of the output's shape \(3,\), got an array "
     r"of bools of shape \(3,\)$"),
    (lambda: vjp(_f, 1.0, 2.0)[1](True), TypeError,
     r"^vjp: the cotangent must be real numbers of the output's shape \(\), got a bool$"),
    (lambda: vjp(_f, np.ones(2), np.ones(2))[1](np.ones(2) * 1j), TypeError,
     r"^vjp: the cotangent must be real numbers .* got an array of complex128 of shape \(2,\)$"),
    (lambda: vjp(_f, 1.0, 2.0)[1]("1"), TypeError,
     r"^vjp: the cotangent must be real numbers of the output's shape \(\), got a str$"),
    (lambda: vjp(_f, 1.0, 2.0)[1](None), TypeError, r"^vjp: the cotangent .* got a NoneType$"),
    (lambda: vjp(lambda a: [a, a * a], 1.0)[1]([Value(1.0), False]), TypeError,
     r"^vjp: item 1 of the cotangent must be real numbers of the output item's shape \(\), "
     r"got a bool$"),
    (lambda: vjp(_f, np.ones(2), np.ones(2))[1](Value(1.0)), TypeError,
     r"^vjp: the cotangent is a Value, the output a Tensor: give real numbers of shape \(2,\), "
     r"or a Tensor$"),
    (lambda: vjp(_f, 1.0, 2.0)[1](Tensor(np.array(1.0))), TypeError,
     r"^vjp: the cotangent is a Tensor, the output a Value"),
    (lambda: vjp(lambda a: [a, a * a], 1.0)[1](Tensor(np.ones(2))), TypeError,
     r"^vjp: the cotangent is a Tensor, the output a list of Values"),
    (lambda: vjp(_f, np.ones(2), np.ones(2))[1]([1.0, [2.0]]), ValueError,
     r"^vjp: the cotangent: setting an array element"),
    (lambda: vjp(3, 1.0), TypeError, r"^vjp needs a function to differentiate, got int$"),
    (lambda: vjp(_f, np.ones(2), [True, False]), TypeError,
     r"^vjp: argument 1: cannot differentiate with respect to an array of bools$"),
    (lambda: vjp(lambda a: "a", 1.0), TypeError,
     r"^vjp needs a Tensor, Value or list of Values, got str$"),
    (lambda: vjp(lambda a: (a * a).numpy(), np.ones(2)), TypeError,
     r"^vjp: the function returned a plain number made from a traced value"),
    (lambda: jvp(None, (1.0,), (1.0,)), TypeError,
     r"^jvp needs a function to differentiate, got NoneType$"),
    (lambda: jvp(_f, np.ones(2), np.ones(2)), TypeError,
     r"^jvp: primals must be a tuple with one entry per argument of f, got ndarray$"),
    (lambda: jvp(_f, (1.0, 2.0), 1.0), TypeError,
     r"^jvp: tangents must be a tuple with one entry per argument of f, got float$"),
    (lambda: jvp(_f, (1.0, 2.0), (1.0,)), ValueError, r"^jvp: 2 primal\(s\) but 1 tangent\(s\)$"),
    (lambda: jvp(_f, (np.ones(3), np.ones(3)), (np.ones(3), np.ones(2))), ValueError,
     r"^jvp: tangent 1 has shape \(2,\), primal 1 has shape \(3,\)$"),
    (lambda: jvp(_f, (1.0, 2.0), (1.0, np.ones(1))), ValueError,
     r"^jvp: tangent 1 has shape \(1,\), primal 1 has shape \(\)$"),
    (lambda: jvp(_f, (np.ones(2), np.ones(2)), (np.ones(2, bool), np.ones(2))), TypeError,
     r"^jvp: tangent 0 must be real numbers of primal 0's shape \(2,\), got an array of bools "
     r"of shape \(2,\)$"),
    (lambda: jvp(_f, (1.0, 2.0), (1.0, 1j)), TypeError,
     r"^jvp: tangent 1 must be real numbers of primal 1's shape \(\), got a complex$"),
    (lambda: jvp(_f, (1.0, 2.0), ("1", 1.0)), TypeError,
     r"^jvp: tangent 0 must be real numbers of primal 0's shape \(\), got a str$"),
    (lambda: jvp(_f, (np.ones(2), np.ones(2)), (Value(1.0), np.ones(2))), TypeError,
     r"^jvp: tangent 0 is a Value, primal 0 a Tensor: give real numbers of shape \(2,\), or a "
     r"Tensor$"),
    (lambda: jvp(_f, (1.0, np.array(2.0)), (1.0, 1.0)), TypeError,
     r"^a Value and a Tensor cannot be combined"),
    (lambda: jvp(_f, (np.ones(2), "x"), (np.ones(2), 1.0)), TypeError,
     r"^jvp: argument 1: cannot differentiate with respect to a str$"),
    (lambda: jvp(lambda a: [a, 2.0], (1.0,), (1.0,)), TypeError,
     r"^jvp needs a Tensor, Value or list of Values, got a list whose item 1 is a float$"),
])
def test_errors_name_the_transform_and_the_problem(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_jvp_takes_a_tangent_node_and_differentiates_through_it():
    """A tangent that requires a gradient: J·v is a node, linear in v (∂/∂v Σ J v = Jᵀ1)."""
    A = np.array([[1.0, 2.0], [3.0, 4.0], [0.0, -1.0]])
    v = Tensor(np.array([0.5, -1.0]), requires_grad=True)
    out, Jv = jvp(lambda t: Tensor(A) @ t, (np.zeros(2),), (v,))
    assert isinstance(out, Node) and isinstance(Jv, Tensor)
    Jv.sum().backward()
    np.testing.assert_array_equal(v.grad, A.T @ np.ones(3))
