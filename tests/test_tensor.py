"""Tests of the `Tensor` engine: the shared op table on hypothesis-chosen shapes, broadcasting,
matmul, reductions, shape ops, indexing, softmax, dtypes, errors, higher order, a PyTorch witness,
freeing graphs without the garbage collector, and agreement with the scalar `Value` engine."""
from __future__ import annotations

import gc
import math
import tracemalloc
import types
import weakref

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import autograd
from autograd import Tensor, Value, concatenate, detect_anomaly, gradcheck, stack, where
from tests.ops_table import BINARY, SETTINGS, UNARY, real

SHAPES = hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=4)
WEIGHTS = real(0.5, 2.0)


def rng(seed=0):
    return np.random.default_rng(seed)


def check(f, *inputs, tol=1e-6):
    report = gradcheck(f, *inputs, tol=tol)
    assert report.passed, str(report)
    return report


def weighted(f, w):
    """Scalar (f(...) ⊙ w).sum(): every output entry gets its own weight."""
    return lambda *xs: (f(*xs) * w).sum()


# --- the op table on tensors -----------------------------------------------------------------

@pytest.mark.parametrize("op", UNARY, ids=str)
@SETTINGS
@given(data=st.data())
def test_unary_op_on_tensors(op, data):
    shape = data.draw(SHAPES, label="shape")
    x = data.draw(hnp.arrays(np.float64, shape, elements=op.domain), label="x")
    w = data.draw(hnp.arrays(np.float64, shape, elements=WEIGHTS), label="w")
    check(weighted(op.apply, w), x)

    t = Tensor(x, requires_grad=True)
    y = op.apply(t)
    assert isinstance(y, Tensor) and y.shape == x.shape and y.dtype == np.float64
    np.testing.assert_allclose(y.data, op.ref(x), rtol=1e-12, atol=1e-300)
    y.backward(grad_out=w)
    assert t.grad.shape == x.shape
    np.testing.assert_allclose(t.grad, w * op.dref(x), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("op", BINARY, ids=str)
@SETTINGS
@given(data=st.data())
def test_binary_op_on_tensors(op, data):
    shape = data.draw(SHAPES, label="shape")
    node_a, node_b = op.nodes
    a = data.draw(hnp.arrays(np.float64, shape, elements=op.domain_a) if node_a else op.domain_a,
                  label="a")
    b = data.draw(hnp.arrays(np.float64, shape, elements=op.domain_b) if node_b else op.domain_b,
                  label="b")
    w = data.draw(hnp.arrays(np.float64, shape, elements=WEIGHTS), label="w")
    if node_a and node_b:
        check(weighted(op.apply, w), a, b)
    elif node_a:
        check(weighted(lambda x: op.apply(x, b), w), a)
    else:
        check(weighted(lambda x: op.apply(a, x), w), b)

    ta = Tensor(a, requires_grad=True) if node_a else a
    tb = Tensor(b, requires_grad=True) if node_b else b
    y = op.apply(ta, tb)
    assert isinstance(y, Tensor) and y.shape == shape
    np.testing.assert_allclose(y.data, op.ref(np.float64(a), np.float64(b)), rtol=1e-12,
                               atol=1e-300)
    y.backward(grad_out=w)
    da, db = op.dref(np.float64(a), np.float64(b))
    if node_a:
        np.testing.assert_allclose(ta.grad, w * da, rtol=1e-9, atol=1e-12)
    if node_b:
        np.testing.assert_allclose(tb.grad, w * db, rtol=1e-9, atol=1e-12)


# --- broadcasting ----------------------------------------------------------------------------

BROADCAST_SHAPES = [((3, 4), ()), ((3, 4), (4,)), ((3, 4), (1, 4)), ((3, 4), (3, 1)),
                    ((2, 3, 4), (3, 4)), ((2, 3, 4), (3, 1)), ((2, 1, 4), (3, 1)),
                    ((1,), (2, 3))]
BROADCAST_OPS = [("add", lambda a, b: a + b), ("sub", lambda a, b: a - b),
                 ("mul", lambda a, b: a * b), ("div", lambda a, b: a / b),
                 ("pow", lambda a, b: a ** b)]


@pytest.mark.parametrize("name,f", BROADCAST_OPS, ids=[o[0] for o in BROADCAST_OPS])
@pytest.mark.parametrize("shapes", BROADCAST_SHAPES + [s[::-1] for s in BROADCAST_SHAPES],
                         ids=str)
def test_broadcasting_binary_ops(name, f, shapes):
    r = rng(1)
    a = r.uniform(0.5, 2.0, size=shapes[0])
    b = r.uniform(0.5, 2.0, size=shapes[1])
    out_shape = np.broadcast_shapes(a.shape, b.shape)
    w = r.uniform(0.5, 2.0, size=out_shape)
    check(weighted(f, w), a, b)
    ta, tb = Tensor(a, requires_grad=True), Tensor(b, requires_grad=True)
    y = f(ta, tb)
    assert y.shape == out_shape
    np.testing.assert_allclose(y.data, f(a, b), rtol=1e-13, atol=1e-15)
    y.backward(grad_out=w)
    assert ta.grad.shape == a.shape and tb.grad.shape == b.shape


def test_broadcast_with_python_scalars_and_numpy_arrays():
    t = Tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    row = np.array([10.0, 20.0])
    y = (row * t + 2.0 - t / row).sum() + (1.0 - row + t).sum()
    assert isinstance(y, Tensor)
    y.backward()
    np.testing.assert_allclose(t.grad, np.array([[10 - 0.1 + 1, 20 - 0.05 + 1]] * 2),
                               rtol=1e-13, atol=1e-15)


# --- matmul ----------------------------------------------------------------------------------

MATMUL_SHAPES = [((3,), (3, 4)), ((3, 4), (4,)), ((3,), (3,)), ((2, 3, 4), (2, 4, 5)),
                 ((2, 3, 4), (4, 5)), ((4, 5), (2, 5, 3)), ((2, 1, 3, 4), (5, 4, 2)),
                 ((2, 3, 4), (4,)), ((4,), (2, 4, 3))]


@pytest.mark.parametrize("shapes", MATMUL_SHAPES, ids=str)
def test_matmul_cases(shapes):
    r = rng(2)
    a = r.standard_normal(shapes[0])
    b = r.standard_normal(shapes[1])
    w = r.standard_normal(np.matmul(a, b).shape)
    check(weighted(lambda x, y: x @ y, w), a, b)
    ta, tb = Tensor(a, requires_grad=True), Tensor(b, requires_grad=True)
    y = ta @ tb
    np.testing.assert_allclose(y.data, a @ b, rtol=1e-13, atol=1e-15)
    y.backward(grad_out=w)
    assert ta.grad.shape == a.shape and tb.grad.shape == b.shape


def test_matmul_with_plain_arrays_on_either_side():
    A = rng(3).standard_normal((2, 3))
    x = Tensor(rng(4).standard_normal(3), requires_grad=True)
    (A @ x).sum().backward()
    np.testing.assert_allclose(x.grad, A.sum(axis=0), rtol=1e-13, atol=1e-15)
    x.zero_grad()
    (x @ A.T).sum().backward()
    np.testing.assert_allclose(x.grad, A.sum(axis=0), rtol=1e-13, atol=1e-15)


# --- reductions ------------------------------------------------------------------------------

AXES = [None, 0, 1, -1, (0, 2), (0, 1, 2)]


@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("axis", AXES, ids=str)
@pytest.mark.parametrize("name", ["sum", "mean", "max"])
def test_reductions(name, axis, keepdims):
    r = rng(5)
    x = r.standard_normal((2, 3, 4))            # distinct values: no ties
    expected = getattr(np, name)(x, axis=axis, keepdims=keepdims)
    w = r.uniform(0.5, 2.0, size=np.shape(expected))

    def f(t):
        return getattr(t, name)(axis=axis, keepdims=keepdims)
    check(weighted(f, w), x)
    t = Tensor(x, requires_grad=True)
    y = f(t)
    assert y.shape == np.shape(expected)
    np.testing.assert_allclose(y.data, expected, rtol=1e-13, atol=1e-15)
    y.backward(grad_out=w)
    assert t.grad.shape == x.shape


def test_max_ties_share_the_gradient_equally():
    t = Tensor([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]], requires_grad=True)
    t.max(axis=1).sum().backward()
    np.testing.assert_allclose(t.grad, [[0, 0.5, 0.5], [1 / 3, 1 / 3, 1 / 3]], rtol=1e-15)

    t = Tensor([[1.0, 3.0], [3.0, 0.0]], requires_grad=True)
    t.max().backward()
    np.testing.assert_allclose(t.grad, [[0, 0.5], [0.5, 0]], rtol=1e-15)

    t = Tensor([[5.0, 1.0], [5.0, 2.0]], requires_grad=True)
    t.max(axis=0, keepdims=True).backward(grad_out=np.array([[2.0, 4.0]]))
    np.testing.assert_allclose(t.grad, [[1.0, 0.0], [1.0, 4.0]], rtol=1e-15)


# --- shape ops and indexing ------------------------------------------------------------------

SHAPE_OPS = [
    ("reshape", lambda t: t.reshape(4, 6)),
    ("reshape_tuple", lambda t: t.reshape((3, -1))),
    ("transpose", lambda t: t.transpose((1, 0, 2))),
    ("transpose_negative", lambda t: t.transpose((-1, 0, 1))),
    ("transpose_all", lambda t: t.transpose()),
    ("T", lambda t: t.T),
    ("mT", lambda t: t.mT),
    ("expand_dims", lambda t: t.expand_dims(1)),
    ("squeeze", lambda t: t[:, :1].squeeze(1)),
    ("broadcast_to", lambda t: t.broadcast_to((5, 2, 3, 4))),
    ("int", lambda t: t[1]),
    ("slices", lambda t: t[:, 1:3]),
    ("step_and_ellipsis", lambda t: t[..., ::-2]),
    ("int_array", lambda t: t[[0, 1, 0]]),
    ("int_arrays_pair", lambda t: t[[0, 0, 1], [1, 1, 2]]),
    ("mixed", lambda t: t[1, [2, 2, 0], 1:]),
    ("bool_mask", lambda t: t[t.data > 0]),
    ("tensor_index", lambda t: t[Tensor([1, 0, 1])]),
]


@pytest.mark.parametrize("name,f", SHAPE_OPS, ids=[s[0] for s in SHAPE_OPS])
def test_shape_ops_and_indexing(name, f):
    r = rng(6)
    x = r.standard_normal((2, 3, 4))
    y = f(Tensor(x))
    w = r.uniform(0.5, 2.0, size=y.shape)
    check(weighted(f, w), x)
    t = Tensor(x, requires_grad=True)
    f(t).backward(grad_out=w)
    assert t.grad.shape == x.shape


def test_shape_op_values_match_numpy():
    x = np.arange(24.0).reshape(2, 3, 4)
    t = Tensor(x)
    np.testing.assert_array_equal(t.reshape(4, 6).data, x.reshape(4, 6))
    np.testing.assert_array_equal(t.T.data, x.T)
    np.testing.assert_array_equal(t.mT.data, np.swapaxes(x, -1, -2))
    np.testing.assert_array_equal(t[1, [2, 2, 0], 1:].data, x[1, [2, 2, 0], 1:])
    np.testing.assert_array_equal(t[..., ::-2].data, x[..., ::-2])


def test_repeated_indices_add_up():
    t = Tensor([1.0, 2.0, 3.0, 4.0], requires_grad=True)
    t[[0, 0, 2, 0]].sum().backward()
    np.testing.assert_array_equal(t.grad, [3.0, 0.0, 1.0, 0.0])
    m = Tensor(np.zeros((2, 2)), requires_grad=True)
    m[[1, 1], [0, 0]].backward(grad_out=np.array([2.0, 5.0]))
    np.testing.assert_array_equal(m.grad, [[0, 0], [7, 0]])


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_concatenate_and_stack(axis):
    r = rng(7)
    a, b, c = (r.standard_normal((2, 3)) for _ in range(3))
    d = r.standard_normal((2, 2)) if axis != 0 else r.standard_normal((1, 3))
    out = np.concatenate([a, b, d], axis=axis)
    w = r.uniform(0.5, 2.0, size=out.shape)
    check(weighted(lambda x, y, z: concatenate([x, y, z], axis=axis), w), a, b, d)
    np.testing.assert_array_equal(concatenate([Tensor(a), Tensor(b), Tensor(d)], axis).data, out)

    out = np.stack([a, b, c], axis=axis)
    w = r.uniform(0.5, 2.0, size=out.shape)
    check(weighted(lambda x, y, z: stack([x, y, z], axis=axis), w), a, b, c)
    np.testing.assert_array_equal(stack([Tensor(a), Tensor(b), Tensor(c)], axis).data, out)


def test_concatenate_gives_each_input_its_slice():
    a = Tensor([1.0, 2.0], requires_grad=True)
    b = Tensor([3.0], requires_grad=True)
    concatenate([a, b, a]).backward(grad_out=np.array([1.0, 2.0, 3.0, 4.0, 5.0]))
    np.testing.assert_array_equal(a.grad, [5.0, 7.0])
    np.testing.assert_array_equal(b.grad, [3.0])


# --- softmax, where, clip ----------------------------------------------------------------------

@pytest.mark.parametrize("axis", [-1, 0])
@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_softmax_gradcheck(name, axis):
    r = rng(8)
    x = r.standard_normal((3, 4)) * 3
    w = r.standard_normal((3, 4))
    check(weighted(lambda t: getattr(t, name)(axis=axis), w), x)
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    sm = e / e.sum(axis=axis, keepdims=True)
    got = getattr(Tensor(x), name)(axis=axis).data
    np.testing.assert_allclose(got, sm if name == "softmax" else np.log(sm), rtol=1e-12)


def test_softmax_finite_at_plus_minus_1000():
    x = np.array([[1000.0, -1000.0, 0.0], [-1000.0, -1000.0, 1000.0]])
    w = np.array([[1.0, 2.0, 3.0], [-1.0, 0.5, 2.0]])
    t = Tensor(x, requires_grad=True)
    sm = t.softmax()
    np.testing.assert_array_equal(sm.data, [[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    (sm * w).sum().backward()
    assert np.all(np.isfinite(t.grad))
    np.testing.assert_array_equal(t.grad, np.zeros_like(x))

    t = Tensor(x, requires_grad=True)
    lsm = t.log_softmax()
    np.testing.assert_array_equal(lsm.data, [[0.0, -2000.0, -1000.0], [-2000.0, -2000.0, 0.0]])
    (lsm * w).sum().backward()
    p = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    np.testing.assert_allclose(t.grad, w - p * w.sum(axis=-1, keepdims=True), rtol=1e-15)


def _cross_entropy_reference(z, target):
    """−1/n Σᵢ Σⱼ tᵢⱼ log softmax(zᵢ)ⱼ in float64 numpy; target labels or rows."""
    z = np.asarray(z, dtype=np.float64)
    t = np.eye(z.shape[1])[target] if np.asarray(target).ndim == 1 else target
    shifted = z - z.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return -(t * log_p).sum() / z.shape[0]


@pytest.mark.parametrize("kind", ["labels", "one-hot", "probabilities"])
def test_softmax_cross_entropy_value_and_gradcheck(kind):
    r = rng(21)
    z = r.standard_normal((6, 4)) * 3
    labels = r.integers(0, 4, 6)
    target = {"labels": labels, "one-hot": np.eye(4)[labels],
              "probabilities": r.dirichlet(np.ones(4), size=6)}[kind]
    J = Tensor(z).softmax_cross_entropy(target)
    np.testing.assert_allclose(J.data, _cross_entropy_reference(z, target), rtol=1e-13)
    check(lambda t: t.softmax_cross_entropy(target), z)
    # the closed form: (softmax(z) · Σⱼ tᵢⱼ − t) / n
    t = Tensor(z, requires_grad=True)
    t.softmax_cross_entropy(target).backward()
    dense = np.eye(4)[labels] if kind == "labels" else target
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(t.grad, (p * dense.sum(axis=1, keepdims=True) - dense) / 6,
                               rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("k", [3, 100])                 # both ways of taking the row maximum
def test_softmax_cross_entropy_equals_the_chain_of_ops_and_keeps_float32(k):
    r = rng(22)
    z = (r.standard_normal((50, k)) * 4).astype(np.float32)
    labels = r.integers(0, k, 50)
    onehot = np.eye(k, dtype=np.float32)[labels]
    fused_l = Tensor(z, requires_grad=True)
    fused_d = Tensor(z, requires_grad=True)
    chain_l = Tensor(z, requires_grad=True)
    chain_d = Tensor(z, requires_grad=True)
    outputs = [fused_l.softmax_cross_entropy(labels), fused_d.softmax_cross_entropy(onehot),
               -(chain_l.log_softmax(axis=1)[np.arange(50), labels].sum()) * (1.0 / 50),
               (chain_d.log_softmax(axis=1) * onehot).sum() * (-1.0 / 50)]
    for J in outputs:
        J.backward()
        assert J.data.dtype == np.float32
    np.testing.assert_allclose(outputs[0].data, outputs[2].data, rtol=1e-6)
    np.testing.assert_allclose(outputs[1].data, outputs[3].data, rtol=1e-6)
    for fused, chain in ((fused_l, chain_l), (fused_d, chain_d)):
        assert fused.grad.dtype == np.float32
        np.testing.assert_allclose(fused.grad, chain.grad, rtol=0, atol=1e-7)


def test_softmax_cross_entropy_backward_reuses_the_forward_softmax():
    """The forward pass's exp(z − m) and row sums give the backward pass its softmax: the same
    floats as forming it again, kept only while recording, and not shown as op arguments."""
    r = rng(24)
    z = (r.standard_normal((30, 6)) * 8).astype(np.float32)
    labels = r.integers(0, 6, 30)
    soft = r.dirichlet(np.ones(6), 30).astype(np.float32)
    for target in (labels, soft):
        t = Tensor(z, requires_grad=True)
        J = t.softmax_cross_entropy(target)
        assert set(J._ctx) == {"target", "labels", "_exp", "_exp_sum"}
        assert set(J.ctx) == {"target", "labels"}
        J.backward()
        p = np.exp(z - z.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        if target is labels:
            p[np.arange(30), labels] -= 1
        else:
            p *= soft.sum(axis=1, keepdims=True)
            p -= soft
        p *= np.float32(1 / 30)
        np.testing.assert_array_equal(t.grad, p)
        J.backward()                                   # the kept arrays are not overwritten
        np.testing.assert_array_equal(t.grad, p + p)
    with autograd.no_grad():
        J = Tensor(z, requires_grad=True).softmax_cross_entropy(labels)
    assert set(J._ctx) == {"target", "labels"}


def test_softmax_cross_entropy_second_order_and_extremes():
    r = rng(23)
    z = r.standard_normal((4, 3))
    labels = np.array([0, 2, 1, 2])
    w = r.standard_normal((4, 3))
    # Hessian-vector product through create_graph, against central differences of the gradient
    t = Tensor(z, requires_grad=True)
    (g,) = autograd.gradients(t.softmax_cross_entropy(labels), [t], create_graph=True)
    (g * w).sum().backward()

    def grad_dot_w(x):
        s = Tensor(x, requires_grad=True)
        s.softmax_cross_entropy(labels).backward()
        return float((s.grad * w).sum())
    numeric = np.zeros_like(z)
    for idx in np.ndindex(z.shape):
        up, down = z.copy(), z.copy()
        up[idx] += 1e-6
        down[idx] -= 1e-6
        numeric[idx] = (grad_dot_w(up) - grad_dot_w(down)) / 2e-6
    np.testing.assert_allclose(t.grad, numeric, rtol=1e-6, atol=1e-8)
    # finite at ±1000: the loss of a confident right answer is 0, of a wrong one 2000/n
    big = Tensor(np.array([[1000.0, -1000.0], [-1000.0, 1000.0]]), requires_grad=True)
    J = big.softmax_cross_entropy(np.array([0, 0]))
    J.backward()
    assert J.data == 1000.0
    np.testing.assert_array_equal(big.grad, [[0.0, 0.0], [-0.5, 0.5]])   # (softmax − onehot)/n


def test_softmax_cross_entropy_errors_and_graph():
    z = Tensor(np.zeros((3, 4)), requires_grad=True)
    with pytest.raises(ValueError, match="0..3"):
        z.softmax_cross_entropy(np.array([0, 4, 1]))
    with pytest.raises(ValueError, match="0..3"):
        z.softmax_cross_entropy(np.array([0, -1, 1]))
    with pytest.raises(ValueError, match="2 labels for 3 rows"):
        z.softmax_cross_entropy(np.array([0, 1]))
    with pytest.raises(ValueError, match="target must be"):
        z.softmax_cross_entropy(np.zeros((3, 5)))
    with pytest.raises(ValueError, match="whole numbers"):
        z.softmax_cross_entropy(np.array([0.0, 1.5, 2.0]))
    with pytest.raises(ValueError, match="2-D"):
        Tensor(np.zeros(4)).softmax_cross_entropy(np.array([0]))
    J = z.softmax_cross_entropy(Tensor(np.array([0, 1, 2])))       # a Tensor of labels too
    assert J.op.name == "softmax_cross_entropy" and J.parents == (z,)
    np.testing.assert_allclose(J.data, np.log(4.0), rtol=1e-15)
    assert not Tensor(np.zeros((3, 4))).softmax_cross_entropy(np.array([0, 1, 2])).requires_grad


def test_where():
    r = rng(9)
    a, b = r.standard_normal((3, 4)), r.standard_normal((3, 4))
    cond = r.standard_normal((3, 4)) > 0
    w = r.uniform(0.5, 2.0, size=(3, 4))
    check(weighted(lambda x, y: where(cond, x, y), w), a, b)
    check(weighted(lambda x: where(cond, x, 0.0), w), a)
    check(weighted(lambda x: where(cond[0], x, 1.0), w), a)       # cond broadcast
    ta, tb = Tensor(a, requires_grad=True), Tensor(b, requires_grad=True)
    where(cond, ta, tb).sum().backward()
    np.testing.assert_array_equal(ta.grad, cond.astype(float))
    np.testing.assert_array_equal(tb.grad, (~cond).astype(float))


@pytest.mark.parametrize("lo,hi", [(-0.5, 0.5), (None, 0.3), (-0.3, None)])
def test_clip(lo, hi):
    x = np.array([-2.0, -0.7, -0.2, 0.1, 0.4, 0.9, 3.0])
    w = np.linspace(0.5, 2.0, x.size)
    check(weighted(lambda t: t.clip(lo, hi), w), x)
    t = Tensor(x, requires_grad=True)
    y = t.clip(lo, hi)
    np.testing.assert_array_equal(y.data, np.clip(x, lo, hi))
    y.sum().backward()
    inside = np.ones_like(x, dtype=bool)
    if lo is not None:
        inside &= x >= lo
    if hi is not None:
        inside &= x <= hi
    np.testing.assert_array_equal(t.grad, inside.astype(float))


# --- comparisons, dtypes, errors ----------------------------------------------------------------

def test_comparisons_return_plain_bool_arrays():
    t = Tensor([1.0, 2.0, 3.0], requires_grad=True)
    u = Tensor([3.0, 2.0, 1.0])
    for result, expected in [(t < 2, [True, False, False]), (t <= 2, [True, True, False]),
                             (t > u, [False, False, True]), (t >= u, [False, True, True]),
                             (t == u, [False, True, False]), (t != 2.0, [True, False, True])]:
        assert type(result) is np.ndarray and result.dtype == np.bool_
        np.testing.assert_array_equal(result, expected)


FLOAT32_EXTRA = [
    ("sum", lambda t: t.sum(axis=0)), ("mean", lambda t: t.mean()),
    ("mean_axis", lambda t: t.mean(axis=1, keepdims=True)),
    ("max", lambda t: t.max(axis=1)), ("softmax", lambda t: t.softmax()),
    ("log_softmax", lambda t: t.log_softmax(axis=0)), ("matmul", lambda t: t @ t.T),
    ("reshape", lambda t: t.reshape(-1)), ("T", lambda t: t.T), ("getitem", lambda t: t[[0, 0]]),
    ("concatenate", lambda t: concatenate([t, t * 2.0])), ("stack", lambda t: stack([t, t])),
    ("where", lambda t: where(t.data > 1.2, t, 0.0)), ("clip", lambda t: t.clip(1.1, 1.5)),
    ("broadcast_to", lambda t: t.broadcast_to((3, 2, 3))),
    ("numpy_scalar", lambda t: np.float64(2.0) * t * np.float64(3.0)),
    ("numpy_array", lambda t: np.array([1.0, 2.0, 3.0]) + t - np.ones(3)),
    ("rpow", lambda t: 2.0 ** t), ("rdiv", lambda t: 1.0 / t),
]


@pytest.mark.parametrize("op", UNARY + BINARY + FLOAT32_EXTRA,
                         ids=lambda op: str(op) if not isinstance(op, tuple) else op[0])
def test_float32_kept_through_every_op(op):
    x = np.array([[1.1, 1.3, 1.7], [1.2, 1.4, 1.9]], dtype=np.float32)
    t = Tensor(x, dtype=np.float32, requires_grad=True)
    if isinstance(op, tuple):
        y = op[1](t)
        inputs = [t]
    elif hasattr(op, "nodes"):
        a_node, b_node = op.nodes
        u = Tensor(x[::-1].copy(), requires_grad=True)
        number = 2 if "int" in op.name or op.name in ("square", "cube", "reciprocal") else 1.5
        y = op.apply(t if a_node else number, u if b_node else number)
        inputs = [n for n, is_node in ((t, a_node), (u, b_node)) if is_node]
    else:
        y = op.apply(t)
        inputs = [t]
    assert y.dtype == np.float32, y.dtype
    y.backward(grad_out=np.ones(y.shape, dtype=np.float32))
    for n in inputs:
        assert n.grad.dtype == np.float32, n.grad.dtype


@pytest.mark.parametrize("data", [[1, 2, 3], np.array([1, 2], dtype=np.int32),
                                  np.array([True, False]), 3, True])
def test_int_and_bool_input_become_float64(data):
    t = Tensor(data)
    assert t.dtype == np.float64
    np.testing.assert_array_equal(t.data, np.asarray(data, dtype=np.float64))
    assert Tensor(data, dtype=np.float32).dtype == np.float32


@pytest.mark.parametrize("data", [np.array([1, "a"], dtype=object), np.array(["1", "2"]),
                                  ["a", "b"], np.array([1 + 2j]), np.array([None])])
def test_object_string_complex_arrays_raise_type_error(data):
    with pytest.raises(TypeError):
        Tensor(data)


def test_tensor_from_a_node_raises_type_error():
    with pytest.raises(TypeError, match="Value"):
        Tensor(Value(1.0))


def test_tensor_plus_string_raises_type_error():
    with pytest.raises(TypeError, match="str"):
        Tensor([1.0]) + "a"


def test_matmul_shape_mismatch_names_op_and_shapes():
    with pytest.raises(ValueError) as info:
        Tensor(np.ones((2, 3))) @ Tensor(np.ones((4, 5)))
    message = str(info.value)
    assert "matmul" in message and "(2, 3)" in message and "(4, 5)" in message, message


def test_broadcast_shape_mismatch_names_op_and_shapes():
    with pytest.raises(ValueError) as info:
        Tensor(np.ones((2, 3))) * Tensor(np.ones((4,)))
    message = str(info.value)
    assert "mul" in message and "(2, 3)" in message and "(4,)" in message, message


def test_ieee_values_and_anomaly_mode_on_tensors():
    with np.errstate(all="ignore"):
        t = Tensor([-1.0, 0.0, 4.0], requires_grad=True, label="tx")
        np.testing.assert_array_equal(t.log().data, [np.nan, -np.inf, np.log(4.0)])
        np.testing.assert_array_equal(t.sqrt().data, [np.nan, 0.0, 2.0])
        np.testing.assert_array_equal((t ** -1.0).data, [-1.0, np.inf, 0.25])
        assert Tensor([1000.0]).exp().data[0] == np.inf
        big = Tensor([1.0, 1000.0, 2.0], label="tx")
        for op, f, x in [("log", lambda x: x.log(), t), ("sqrt", lambda x: x.sqrt(), t),
                         ("pow", lambda x: x ** -1.0, t), ("div", lambda x: 1.0 / x, t),
                         ("exp", lambda x: x.exp(), big)]:
            with detect_anomaly(), pytest.raises(FloatingPointError) as info:
                f(x)
            message = str(info.value)
            assert f"'{op}'" in message and "tx" in message and "(3,)" in message, message


def test_backward_on_non_scalar_needs_grad_out():
    t = Tensor(np.ones((2, 2)), requires_grad=True)
    with pytest.raises(RuntimeError, match="scalar outputs"):
        (t * 2.0).backward()
    with pytest.raises(ValueError, match="grad_out"):
        (t * 2.0).backward(grad_out=np.ones(3))
    (t * 2.0).backward(grad_out=np.ones((2, 2)))
    np.testing.assert_array_equal(t.grad, np.full((2, 2), 2.0))


def test_tensor_grad_semantics():
    t = Tensor([1.0, 2.0], requires_grad=True)
    c = Tensor([3.0, 4.0])                       # requires_grad=False by default
    assert t.grad is None
    y = (t * c).sum()
    y.backward()
    y.backward()
    np.testing.assert_array_equal(t.grad, [6.0, 8.0])  # leaves accumulate
    assert c.grad is None
    assert not (c * 2.0).requires_grad and (c * 2.0).is_leaf
    t.zero_grad()
    assert t.grad is None
    with autograd.no_grad():
        z = t * t
    assert z.is_leaf and not z.requires_grad


def test_leaf_grad_is_its_own_array():
    # two leaves must never share one gradient array (in-place updates would corrupt both)
    a = Tensor([1.0, 2.0], requires_grad=True)
    b = Tensor([1.0, 2.0], requires_grad=True)
    (a + b).sum().backward()
    a.grad += 1.0
    np.testing.assert_array_equal(b.grad, [1.0, 1.0])


def test_a_leaf_keeps_the_gradient_array_its_vjp_made(monkeypatch):
    # a fresh array the pass made and nothing else holds becomes .grad as it is (no copy: a
    # 784 × 100 copy per step was 5% of a Fashion-MNIST step); shared ones are still copied
    from autograd import rules
    made = []
    matmul_b = rules.MATMUL.vjps[1]

    def recording(*args):
        g = matmul_b(*args)
        made.append(id(g))              # an id, not a reference: a reference would be sharing
        return g

    monkeypatch.setattr(rules.MATMUL, "vjps", (rules.MATMUL.vjps[0], recording))
    x = Tensor(np.ones((3, 4)))
    W = Tensor(np.ones((4, 2)), requires_grad=True)
    b = Tensor(np.zeros(2), requires_grad=True)
    z = x @ W + b
    z.sum().backward()
    assert id(W.grad) == made[0]
    # b's gradient came through add's pass-through VJP: not shared with z's own gradient
    z2 = x @ W + b
    W.grad = b.grad = None
    (z2 + z2).sum().backward()
    np.testing.assert_array_equal(W.grad, np.full((4, 2), 6.0))
    W.grad += 1.0
    np.testing.assert_array_equal(b.grad, [6.0, 6.0])


# --- higher order: jacobian and hessian vs closed forms --------------------------------------

def test_hessian_through_matmul_and_tanh():
    r = rng(10)
    A = r.standard_normal((3, 2))
    x = r.standard_normal(3)
    H = autograd.hessian(lambda v: (v @ Tensor(A)).tanh().sum())(x)
    t = np.tanh(x @ A)
    expected = A @ np.diag(-2 * t * (1 - t ** 2)) @ A.T
    assert H.shape == (3, 3)
    np.testing.assert_allclose(H, expected, rtol=1e-12, atol=1e-14)


def test_second_derivative_via_create_graph_on_tensors():
    x = Tensor([0.5, -1.0, 2.0], requires_grad=True)
    (x ** 3).sum().backward(create_graph=True)
    g = x.grad
    assert isinstance(g, Tensor)
    np.testing.assert_allclose(g.data, 3 * x.data ** 2, rtol=1e-15)
    x.zero_grad()
    g.sum().backward()
    np.testing.assert_allclose(x.grad, 6 * x.data, rtol=1e-15)


def test_jacobian_and_hessian_closed_forms():
    r = rng(11)
    A = r.standard_normal((3, 3))
    B = r.standard_normal((2, 3))
    x = r.standard_normal(3)
    np.testing.assert_allclose(autograd.jacobian(lambda v: Tensor(B) @ v)(x), B, rtol=1e-15)
    np.testing.assert_allclose(autograd.hessian(lambda v: v @ (Tensor(A) @ v))(x), A + A.T,
                               rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(autograd.hessian(lambda v: v.exp().sum())(x),
                               np.diag(np.exp(x)), rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(autograd.jacobian(lambda v: v.tanh())(x),
                               np.diag(1 - np.tanh(x) ** 2), rtol=1e-13, atol=1e-15)
    M = r.standard_normal((2, 3))
    J = autograd.jacobian(lambda m: m.sum(axis=1))(M)
    assert J.shape == (2, 2, 3)
    np.testing.assert_array_equal(J, np.repeat(np.eye(2)[:, :, None], 3, axis=2))


def test_hessians_of_max_and_clip_are_zero_where_piecewise_linear():
    x = np.array([0.2, 0.9, -0.4])
    np.testing.assert_allclose(autograd.hessian(lambda v: v.max() * 3.0)(x), np.zeros((3, 3)))
    np.testing.assert_allclose(autograd.hessian(lambda v: (v.clip(-0.5, 0.5) ** 2).sum())(x),
                               np.diag([2.0, 0.0, 2.0]))


# --- PyTorch as an extra witness -----------------------------------------------------------

TORCH_CASES = [
    ("tanh", lambda t: t.tanh(), lambda t: t.tanh()),
    ("sigmoid", lambda t: t.sigmoid(), lambda t: t.sigmoid()),
    ("softplus", lambda t: t.softplus(), lambda t: __import__("torch").nn.functional.softplus(t)),
    ("exp_log", lambda t: (t * t + 1.0).log() + t.exp(), lambda t: (t * t + 1.0).log() + t.exp()),
    ("sqrt_abs", lambda t: abs(t).sqrt(), lambda t: t.abs().sqrt()),
    ("sin_cos", lambda t: t.sin() * t.cos(), lambda t: t.sin() * t.cos()),
    ("relu_leaky", lambda t: t.relu() + t.leaky_relu(0.1),
     lambda t: t.relu() + __import__("torch").nn.functional.leaky_relu(t, 0.1)),
    ("log_softmax", lambda t: t.log_softmax(axis=1), lambda t: t.log_softmax(dim=1)),
    ("softmax", lambda t: t.softmax(axis=0), lambda t: t.softmax(dim=0)),
    ("matmul", lambda t: t @ t.T, lambda t: t @ t.T),
    ("mean_pow", lambda t: (t ** 2).mean(axis=0) / 3.0, lambda t: (t ** 2).mean(dim=0) / 3.0),
    ("max_ties", lambda t: (t * 0.0 + 1.0).max(axis=1).sum() + t.max(axis=0),
     lambda t: (t * 0.0 + 1.0).amax(dim=1).sum() + t.amax(dim=0)),
    ("index", lambda t: t[[0, 0, 1], [2, 2, 0]], lambda t: t[[0, 0, 1], [2, 2, 0]]),
]


@pytest.mark.parametrize("name,ours,theirs", TORCH_CASES, ids=[c[0] for c in TORCH_CASES])
def test_gradients_agree_with_torch(name, ours, theirs):
    torch = pytest.importorskip("torch")
    r = rng(12)
    x = r.standard_normal((2, 3))
    tx = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    ty = theirs(tx)
    w = r.standard_normal(tuple(ty.shape))
    (ty * torch.tensor(w)).sum().backward()
    t = Tensor(x, requires_grad=True)
    y = ours(t)
    np.testing.assert_allclose(y.data, ty.detach().numpy(), rtol=1e-12, atol=1e-15)
    y.backward(grad_out=w)
    np.testing.assert_allclose(t.grad, tx.grad.numpy(), rtol=1e-12, atol=1e-15)


# --- graph freed without the garbage collector --------------------------------------------

def _train_step(params, x, y, lr=0.05):
    W1, b1, W2, b2 = params
    a2 = (x @ W1 + b1).tanh()
    a3 = (a2 @ W2 + b2).tanh()
    loss = ((y - a3) ** 2).sum() * (1.0 / (2 * x.shape[0]))
    for p in params:
        p.zero_grad()
    loss.backward()
    for p in params:
        p.data -= lr * p.grad
    return loss


def test_tensor_training_loop_frees_graphs_without_gc():
    r = rng(13)
    x = Tensor(r.standard_normal((16, 4)))
    y = Tensor(r.uniform(-0.5, 0.5, size=(16, 2)))
    params = [Tensor(r.standard_normal((4, 8)) * 0.5, requires_grad=True),
              Tensor(np.zeros(8), requires_grad=True),
              Tensor(r.standard_normal((8, 2)) * 0.5, requires_grad=True),
              Tensor(np.zeros(2), requires_grad=True)]
    was_enabled = gc.isenabled()
    gc.disable()
    tracemalloc.start()
    try:
        first = _train_step(params, x, y)
        first_value = float(first.data)
        nodes = [weakref.ref(n) for n in autograd.topo_order(first) if not n.is_leaf]
        del first
        assert all(ref() is None for ref in nodes), "an old graph outlived its root"
        for _ in range(20):
            _train_step(params, x, y)
        baseline, _ = tracemalloc.get_traced_memory()
        for _ in range(300):
            last = _train_step(params, x, y)
        del last
        current, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        if was_enabled:
            gc.enable()
    assert current - baseline < 64 * 1024, f"memory grew by {current - baseline} bytes"
    final = float(_train_step(params, x, y).data)
    assert final < first_value, "the loop should actually train"


# --- agreement: one MLP described once, on Values and on Tensors -----------------------------

def mlp_cost(ns, x, y, W1, b1, W2, b2):
    """J = 1/(2n) Σ (y − a³)² with a² = tanh(x·W¹ + b¹), a³ = tanh(a²·W² + b²)."""
    a2 = ns.tanh(ns.add(ns.matmul(x, W1), b1))
    a3 = ns.tanh(ns.add(ns.matmul(a2, W2), b2))
    diff = ns.sub(y, a3)
    return ns.scale(ns.sum(ns.mul(diff, diff)), 1.0 / (2 * ns.rows(x)))


def _value_matmul(a, W):
    """Row-by-column products of nested lists of Values, one scalar at a time."""
    return [[sum((a[i][k] * W[k][j] for k in range(len(W))), 0.0) for j in range(len(W[0]))]
            for i in range(len(a))]


VALUE_NS = types.SimpleNamespace(
    matmul=_value_matmul,
    add=lambda z, b: [[z_ij + b_j for z_ij, b_j in zip(row, b)] for row in z],
    sub=lambda y, a: [[y_ij - a_ij for y_ij, a_ij in zip(yr, ar)] for yr, ar in zip(y, a)],
    mul=lambda p, q: [[p_ij * q_ij for p_ij, q_ij in zip(pr, qr)] for pr, qr in zip(p, q)],
    tanh=lambda z: [[z_ij.tanh() for z_ij in row] for row in z],
    sum=lambda m: sum((v for row in m for v in row), 0.0),
    scale=lambda s, c: s * c,
    rows=len,
)

TENSOR_NS = types.SimpleNamespace(
    matmul=lambda a, W: a @ W, add=lambda z, b: z + b, sub=lambda y, a: y - a,
    mul=lambda p, q: p * q, tanh=lambda z: z.tanh(), sum=lambda m: m.sum(),
    scale=lambda s, c: s * c, rows=lambda x: x.shape[0],
)


def test_value_and_tensor_mlps_agree():
    r = rng(14)
    x, y = r.standard_normal((5, 3)), r.uniform(-0.5, 0.5, size=(5, 2))
    weights = [r.standard_normal((3, 4)), r.standard_normal(4), r.standard_normal((4, 2)),
               r.standard_normal(2)]

    def as_values(w):
        return [Value(float(v)) for v in w] if w.ndim == 1 else [as_values(row) for row in w]

    def values_data(v, attr):
        return np.array([getattr(e, attr) for e in v] if isinstance(v[0], Value)
                        else [values_data(row, attr) for row in v])

    v_params = [as_values(w) for w in weights]
    v_cost = mlp_cost(VALUE_NS, as_values(x), as_values(y), *v_params)
    v_cost.backward()

    t_params = [Tensor(w, requires_grad=True) for w in weights]
    t_cost = mlp_cost(TENSOR_NS, Tensor(x), Tensor(y), *t_params)
    t_cost.backward()

    assert isinstance(v_cost, Value) and isinstance(t_cost, Tensor)
    assert abs(v_cost.data - float(t_cost.data)) <= 1e-12 * abs(v_cost.data)
    for vp, tp in zip(v_params, t_params):
        np.testing.assert_allclose(values_data(vp, "grad"), tp.grad, rtol=1e-12, atol=1e-15)


def test_exponent_gradient_at_base_zero_matches_torch():
    # ∂(aᵇ)/∂b = aᵇ·ln a; at a = 0, b ≥ 0 aᵇ does not change with b: 0, not 0·(−inf) = nan
    a = np.array([0.0, 0.0, 2.0, 0.0, -1.5])
    b = np.array([2.0, 0.0, 3.0, -1.0, 2.0])
    ta, tb = Tensor(a, requires_grad=True), Tensor(b, requires_grad=True)
    (ta ** tb).sum().backward()
    assert tb.grad[0] == 0.0 and tb.grad[1] == 0.0
    assert tb.grad[2] == pytest.approx(8 * np.log(2.0))
    assert tb.grad[3] == -np.inf and np.isnan(tb.grad[4])        # IEEE, as before
    torch = pytest.importorskip("torch")
    xa = torch.tensor(a, requires_grad=True)
    xb = torch.tensor(b, requires_grad=True)
    (xa ** xb).sum().backward()
    np.testing.assert_array_equal(tb.grad, xb.grad.numpy())
    np.testing.assert_array_equal(ta.grad, xa.grad.numpy())


def test_backward_on_a_constant_is_an_error():
    x = Tensor(np.ones(3), requires_grad=True)
    with autograd.no_grad():
        y = (x * 2).sum()
    with pytest.raises(RuntimeError, match="does not require a gradient"):
        y.backward()
    assert x.grad is None


def test_numpy_takes_constant_tensors_and_refuses_graph_ones():
    c = Tensor(np.arange(3.0))
    np.testing.assert_array_equal(np.asarray(c), [0.0, 1.0, 2.0])
    assert np.asarray(c, dtype=np.float32).dtype == np.float32
    assert np.array(c, copy=True) is not c.data
    w = Tensor(np.ones(3), requires_grad=True)
    with pytest.raises(TypeError, match="requires a gradient"):
        np.exp(w)                                   # would silently leave the graph
    assert isinstance(np.ones(3) + w, Tensor)       # operators still defer to the Tensor


def test_a_gradient_has_its_nodes_dtype():
    # as PyTorch: a float32 leaf in a float64 expression gets a float32 .grad
    t = Tensor(np.ones(3, np.float32), requires_grad=True)
    (t * Tensor(np.full(3, 2.0))).sum().backward()
    assert t.grad.dtype == np.float32 and np.all(t.grad == 2.0)
    t.grad = None
    y = t * 2.0
    y.backward(Tensor(np.ones(3)))                   # a float64 grad_out
    assert t.grad.dtype == np.float32


def test_pow_at_exponent_zero_warns_nothing():
    # ∂(a⁰)/∂a = 0 is taken without computing the unused 0⁻¹ (no divide-by-zero warning)
    import warnings
    a = Tensor([0.0, 2.0], requires_grad=True)
    b = Tensor([0.0, 0.0], requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        (a ** b).sum().backward()
    np.testing.assert_array_equal(a.grad, [0.0, 0.0])
    np.testing.assert_allclose(b.grad, [0.0, np.log(2.0)])


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_softmax_bad_axis_names_the_op(name):
    """An axis out of range or not one int is numpy's AxisError or a TypeError naming the op
    (as sum's), not a bare IndexError from inside the forward pass."""
    t = Tensor(np.ones((2, 3)))
    for axis in (2, -3):
        with pytest.raises(np.exceptions.AxisError, match=f"{name}: axis {axis} is out of"):
            getattr(t, name)(axis=axis)
    for axis in (None, (0, 1)):
        with pytest.raises(TypeError, match=f"{name}: axis must be one int"):
            getattr(t, name)(axis=axis)
    np.testing.assert_allclose(getattr(t, name)(axis=np.int64(-2)).data,
                               getattr(t, name)(axis=0).data)


def test_value_and_tensor_mixed_says_why_and_how():
    """A Value and a Tensor in one expression (as grad makes of a float argument beside an
    array one) is a TypeError that says they are separate engines and how to get a Tensor."""
    for make in (lambda: Tensor(np.ones(2)) * Value(2.0), lambda: Value(2.0) * Tensor(np.ones(2)),
                 lambda: autograd.grad(lambda x, W: (Tensor(W) * x).sum())(2.0, np.ones(2))):
        with pytest.raises(TypeError, match="a Value and a Tensor cannot be combined.*np.array"):
            make()
    with pytest.raises(TypeError, match=r"ndarray of shape \(2,\).*pass np.array\(2.0\)"):
        autograd.grad(lambda x, W: (W * x).sum())(2.0, np.ones(2))     # the array meets a Value
    np.testing.assert_array_equal(
        autograd.grad(lambda x, W: (W * x).sum())(np.array(2.0), np.ones(2)), 2.0)


def test_shape_op_errors_name_the_shapes():
    """mT of a vector was a bare 'list index out of range'; transpose and broadcast_to gave
    numpy's messages, which name no shape."""
    with pytest.raises(ValueError, match=r"mT .* at least 2, got shape \(3,\)"):
        Tensor(np.ones(3)).mT
    with pytest.raises(ValueError, match=r"transpose: axes \(0, 0\) .* shape \(2, 3\)"):
        Tensor(np.ones((2, 3))).transpose(0, 0)
    with pytest.raises(ValueError, match=r"transpose: axes \(1, 0\) .* shape \(3,\)"):
        Tensor(np.ones(3)).transpose(1, 0)
    with pytest.raises(ValueError, match=r"broadcast_to: cannot broadcast shape \(2, 3\) to "
                                         r"\(3,\)"):
        Tensor(np.ones((2, 3))).broadcast_to((3,))
    t = Tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    (t.transpose(-1, 0).broadcast_to((4, 3, 2)) * np.arange(24.0).reshape(4, 3, 2)).sum().backward()
    np.testing.assert_array_equal(t.grad, np.arange(24.0).reshape(4, 3, 2).sum(axis=0).T)


def test_concatenate_axis_none_flattens_and_differentiates():
    """axis=None joins the flattened inputs, as numpy's; its forward pass worked but the
    backward pass failed with 'tuple indices must be integers or slices, not NoneType'."""
    a = Tensor(np.arange(4.0).reshape(2, 2), requires_grad=True)
    b = Tensor(np.arange(3.0), requires_grad=True)
    out = concatenate([a, b], axis=None)
    np.testing.assert_array_equal(out.data, np.concatenate([a.data, b.data], axis=None))
    (out * np.arange(7.0)).sum().backward()
    np.testing.assert_array_equal(a.grad, [[0.0, 1.0], [2.0, 3.0]])
    np.testing.assert_array_equal(b.grad, [4.0, 5.0, 6.0])


def test_tensor_python_protocol():
    A = Tensor(np.arange(6.0).reshape(3, 2), requires_grad=True)
    with pytest.raises(IndexError, match="whole numbers"):
        A[Tensor([1.7])]                              # numpy refuses float indices too
    np.testing.assert_array_equal(A[Tensor([2.0])].data, [[4.0, 5.0]])
    with pytest.raises(TypeError, match="holds floats"):
        A.astype(int)
    assert A.astype(np.float32).dtype == np.float32
    with pytest.raises(TypeError, match="0-d"):
        list(Tensor(3.0))
    assert [row.data.tolist() for row in A] == [[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]]
    np.testing.assert_array_equal(A.mean(axis=np.int64(0)).data, [2.0, 3.0])
    np.testing.assert_array_equal(A.mean(axis=-1).data, [0.5, 2.5, 4.5])
    with pytest.raises(np.exceptions.AxisError):
        A.mean(axis=2)
    assert np.isnan(Tensor(np.zeros((0, 3))).mean().data)
    assert float(Tensor([2.5])) == 2.5 and int(Tensor([[2.5]])) == 2
    with pytest.raises(TypeError, match="one-element"):
        float(Tensor([1.0, 2.0]))


def test_relu_and_clip_pass_nothing_where_flat_even_an_inf():
    """relu′ and clip′ select the gradient (PyTorch's threshold_backward): where the function
    is flat an inf or nan from above gives 0, not 0 · inf = nan."""
    for make in (lambda t: t.relu(), lambda t: t.clip(0.0, None)):
        x = Tensor(np.array([-1.0, 4.0]), requires_grad=True)
        with np.errstate(divide="ignore"):          # sqrt′(0) = inf on the flat side
            make(x).sqrt().sum().backward()
        np.testing.assert_array_equal(x.grad, [0.0, 0.25])
    x = Tensor(np.array([-1.0, 4.0, 2.0], np.float32), requires_grad=True)
    x.relu().backward(np.array([np.inf, 1.0, np.nan], np.float32))
    np.testing.assert_array_equal(x.grad, [0.0, 1.0, np.nan])
    assert x.grad.dtype == np.float32
    v = Value(-1.0, requires_grad=True)
    w = Value(2.0, requires_grad=True)
    (v.relu().sqrt() + w * w).backward()
    assert v.grad == 0.0 and w.grad == 4.0
    assert math.isnan(Value(float("nan")).relu().data)      # nan stays nan, as numpy's


def test_clip_bounds_take_the_tensors_dtype_and_a_0d_leaf_gets_an_array_grad():
    t = Tensor(np.array([0.1, 0.5, 2.0], np.float32), requires_grad=True)
    c = t.clip(np.float64(0.2), 1.0)
    assert c.dtype == np.float32
    np.testing.assert_array_equal(c.data, np.array([0.2, 0.5, 1.0], np.float32))
    p = Tensor(np.array(2.0), requires_grad=True)
    (p * p).backward()
    assert type(p.grad) is np.ndarray and p.grad.shape == () and p.grad == 4.0
    p.grad[...] = 0.0                                   # an array, as a PyTorch 0-d grad


def test_python_ints_beyond_int64_are_numbers():
    # numpy would hold 2**70 in an object array; it is a float like any other number
    np.testing.assert_array_equal((Tensor(np.ones(2)) + 2 ** 70).data, [2.0 ** 70 + 1] * 2)
    with pytest.raises(OverflowError, match="too large to convert to float"):
        Tensor(np.ones(2)) + 10 ** 400


def test_a_tensor_made_from_a_boolean_mask_indexes_as_the_mask():
    """It holds 0/1 floats, but x[mask] picks where the mask is true (numpy's and PyTorch's
    boolean indexing), not positions 0 and 1; float Tensors of whole numbers stay positions."""
    x = Tensor(np.array([10.0, 20.0, 30.0]), requires_grad=True)
    for mask in (Tensor(np.array([True, False, True])), Tensor([True, False, True])):
        picked = x[mask]
        np.testing.assert_array_equal(picked.data, [10.0, 30.0])
    picked.sum().backward()
    np.testing.assert_array_equal(x.grad, [1.0, 0.0, 1.0])
    np.testing.assert_array_equal(x[Tensor([0.0, 2.0])].data, [10.0, 30.0])
    np.testing.assert_array_equal(x[Tensor([1.0, 0.0, 1.0])].data, [20.0, 10.0, 20.0])


def test_sigmoid_is_within_an_ulp_or_two_everywhere():
    """σ(x) = e^−|x|/(1 + e^−|x|) for x < 0: exp(−logaddexp(0, −x)) lost up to ~30 ulp there."""
    from decimal import Decimal, getcontext
    getcontext().prec = 60
    xs = np.concatenate([-np.geomspace(1e-8, 740, 60), [0.0], np.geomspace(1e-8, 36, 40)])
    exact = np.array([float(1 / (1 + (-Decimal(float(x))).exp())) for x in xs])
    got = Tensor(xs).sigmoid().data
    assert np.max(np.abs(got - exact) / np.spacing(exact)) <= 2
    got32 = Tensor(xs.astype(np.float32)).sigmoid().data
    exact32 = np.array([float(1 / (1 + (-Decimal(float(x))).exp()))
                        for x in xs.astype(np.float32)])
    assert got32.dtype == np.float32
    tiny = exact32 > np.finfo(np.float32).tiny
    assert np.max(np.abs(got32[tiny] - exact32[tiny]) / np.spacing(exact32[tiny].astype(
        np.float32))) <= 2.5           # float32 arithmetic: a few roundings


@pytest.mark.parametrize("name, ours, numpy_value", [
    ("min", lambda t: t.min(axis=1), lambda x: x.min(axis=1)),
    ("min all", lambda t: t.min(), lambda x: x.min()),
    ("var", lambda t: t.var(axis=0), lambda x: x.var(axis=0)),
    ("var ddof=1", lambda t: t.var(ddof=1), lambda x: x.var(ddof=1)),
    ("std keepdims", lambda t: t.std(axis=1, keepdims=True), lambda x: x.std(axis=1,
                                                                             keepdims=True)),
    ("logsumexp", lambda t: t.logsumexp(axis=1), lambda x: np.log(np.exp(x).sum(axis=1))),
    ("logsumexp all", lambda t: t.logsumexp(), lambda x: np.log(np.exp(x).sum())),
])
def test_min_var_std_logsumexp(name, ours, numpy_value):
    """numpy's values; gradients against central differences (ties of min share, as amin)."""
    x = rng(31).standard_normal((4, 5))
    np.testing.assert_allclose(ours(Tensor(x)).data, numpy_value(x), rtol=1e-13)
    w = rng(32).uniform(0.5, 2.0, size=np.shape(numpy_value(x)))
    assert gradcheck(lambda t: (ours(t) * w).sum(), x).passed
    tied = np.array([[1.0, 0.0, 0.0]])
    t = Tensor(tied, requires_grad=True)
    t.min().backward()
    np.testing.assert_array_equal(t.grad, [[0.0, 0.5, 0.5]])
    big = Tensor(np.array([[1000.0, 1000.0]]))
    np.testing.assert_allclose(big.logsumexp(axis=1).data, [1000 + np.log(2)], rtol=1e-15)


def test_std_of_a_constant_feature_has_a_zero_gradient():
    """√ at a zero variance: derivative 0 (PyTorch's std), not inf × 0 = nan."""
    t = Tensor(np.array([[1.0, 3.0, 3.0], [2.0, 2.0, -1.0]]), requires_grad=True)
    t[:, 1:2].std(axis=1).sum().backward()
    np.testing.assert_array_equal(t.grad, np.zeros((2, 3)))
    with np.errstate(divide="ignore"):
        assert np.all(np.isinf(Tensor(np.ones((2, 3)) * [1, 2, 3]).var(axis=1, ddof=3).data))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_0d_leafs_gradient_stays_an_array_when_passes_accumulate(dtype):
    x = Tensor(np.array(2.0, dtype=dtype), requires_grad=True)
    (x * x).backward()
    (x * 3.0).backward()                  # accumulated across passes: 4 + 3
    assert type(x.grad) is np.ndarray and x.grad.shape == () and x.grad.dtype == dtype
    assert x.grad == 7.0
    x.grad[...] = 0.0                     # writable in place, as after one pass
    assert x.grad == 0.0
