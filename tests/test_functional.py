"""Tests of the functional API: grad and value_and_grad with argnums, nested grad on floats and
arrays, errors for bad outputs and arguments, and agreement with torch.func on random
compositions."""
from __future__ import annotations

import math
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from autograd import (Node, Tensor, Value, grad, gradcheck, hessian, jacobian, numerical_grad,
                      value_and_grad)
from tests.ops_table import SETTINGS


def f_xy(x, y):
    """f = x·y² + x³ (only arithmetic: an argument not differentiated stays a plain float)."""
    return x * y ** 2 + x ** 3


def test_grad_argnums_int():
    x, y = 0.7, -1.3
    assert math.isclose(grad(f_xy)(x, y), y ** 2 + 3 * x ** 2, rel_tol=1e-15)
    assert math.isclose(grad(f_xy, argnums=1)(x, y), 2 * x * y, rel_tol=1e-15)
    assert math.isclose(grad(f_xy, argnums=-1)(x, y), 2 * x * y, rel_tol=1e-15)


def test_grad_argnums_tuple():
    x, y = 0.7, -1.3
    gx, gy = grad(f_xy, argnums=(0, 1))(x, y)
    assert math.isclose(gx, y ** 2 + 3 * x ** 2, rel_tol=1e-15)
    assert math.isclose(gy, 2 * x * y, rel_tol=1e-15)
    (only_y,) = grad(f_xy, argnums=(1,))(x, y)
    assert math.isclose(only_y, 2 * x * y, rel_tol=1e-15)


def test_value_and_grad():
    value, g = value_and_grad(f_xy)(0.7, -1.3)
    assert isinstance(value, float)
    assert math.isclose(value, 0.7 * 1.69 + 0.7 ** 3, rel_tol=1e-15)
    assert math.isclose(g, 1.69 + 3 * 0.49, rel_tol=1e-15)
    value, (gx, gy) = value_and_grad(f_xy, argnums=(0, 1))(0.7, -1.3)
    assert math.isclose(gy, 2 * 0.7 * -1.3, rel_tol=1e-15)


def test_grad_on_arrays():
    x = np.array([0.5, -1.0, 2.0])
    A = np.array([[1.0, 2.0, 0.0], [0.5, -1.0, 3.0]])
    g = grad(lambda v: (v ** 3).sum())(x)
    assert isinstance(g, np.ndarray) and g.shape == (3,)
    np.testing.assert_allclose(g, 3 * x ** 2, rtol=1e-15)
    gx, gA = grad(lambda v, M: (Tensor(np.ones(2)) @ (M @ v).tanh()), argnums=(0, 1))(x, A)
    s = 1 - np.tanh(A @ x) ** 2
    np.testing.assert_allclose(gx, A.T @ s, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(gA, np.outer(s, x), rtol=1e-12, atol=1e-15)
    value, g = value_and_grad(lambda v: (v * v).sum())(x)
    assert math.isclose(float(value), float(x @ x), rel_tol=1e-15)


def test_grad_does_not_mutate_the_argument():
    x = np.array([1.0, 2.0])
    grad(lambda v: (v * v).sum())(x)
    np.testing.assert_array_equal(x, [1.0, 2.0])


def test_nested_grad_on_floats():
    cube = lambda x: x ** 3                              # noqa: E731
    assert grad(cube)(2.0) == 12.0
    assert grad(grad(cube))(2.0) == 12.0
    assert grad(grad(grad(cube)))(2.0) == 6.0
    assert math.isclose(grad(grad(lambda x: x.exp() * x))(0.5), math.exp(0.5) * 2.5,
                        rel_tol=1e-14)


def test_nested_grad_mixed_arguments():
    # ∂/∂y of ∂f/∂x for f = x·y² + x³ is 2y
    dfdx = grad(f_xy, argnums=0)
    assert math.isclose(grad(lambda y: dfdx(0.7, y))(-1.3), -2.6, rel_tol=1e-15)
    assert math.isclose(grad(lambda x: grad(f_xy, argnums=1)(x, -1.3))(0.7), -2.6,
                        rel_tol=1e-15)


def test_nested_grad_on_arrays():
    x = np.array([0.5, -1.0, 2.0])
    inner = grad(lambda v: (v ** 3).sum())
    second = grad(lambda v: inner(v).sum())(x)           # Σ ∂(3v²)/∂v = 6v
    np.testing.assert_allclose(second, 6 * x, rtol=1e-15)
    w = np.array([1.0, 2.0, -1.0])
    second = grad(lambda v: (grad(lambda u: u.tanh().sum())(v) * w).sum())(x)
    t = np.tanh(x)
    np.testing.assert_allclose(second, w * -2 * t * (1 - t ** 2), rtol=1e-13, atol=1e-15)


def test_grad_accepts_nodes():
    # a node that requires a gradient means "nested": the gradient comes back as a node
    x = Value(1.5)
    g = grad(lambda v: v * v)(x)
    assert isinstance(g, Value) and g.data == 3.0
    assert x.grad == 0.0
    assert grad(lambda v: v * v)(Value(1.5, requires_grad=False)) == 3.0
    t = Tensor([1.0, 2.0])
    np.testing.assert_array_equal(grad(lambda v: (v * v).sum())(t), [2.0, 4.0])


def test_non_scalar_output_is_an_error():
    with pytest.raises(ValueError, match="scalar"):
        grad(lambda v: v * 2.0)(np.ones(3))
    with pytest.raises(ValueError, match="scalar"):
        value_and_grad(lambda v: v.tanh())(np.ones((2, 2)))


def test_non_scalar_non_node_output_is_an_error():
    with pytest.raises(TypeError, match="str"):
        grad(lambda v: "3")(1.0)
    assert grad(lambda v: 3.0)(1.0) == 0.0          # a constant function: gradient 0, as JAX


def test_bad_argnums_and_arguments():
    with pytest.raises(ValueError, match="argnums"):
        grad(f_xy, argnums=2)(1.0, 2.0)
    with pytest.raises(TypeError, match="str"):
        grad(lambda v: v)("x")


@pytest.mark.parametrize("transform", [grad, value_and_grad, jacobian, hessian])
def test_a_transform_checks_its_function_and_argnums_when_made(transform):
    """A non-callable failed only when called, with Python's bare "'int' object is not
    callable"; hessian took argnums=() (returning ()), and said "'NoneType' object is not
    iterable" for None and "got ('0',)" for "0"."""
    name = transform.__name__
    for f in (3, None, np.ones(2)):
        with pytest.raises(TypeError, match=rf"^{name} needs a function to differentiate, "
                                            rf"got {type(f).__name__}$"):
            transform(f)
    for bad in ((), None, "0", 1.0, (0, "1"), [0.0]):
        with pytest.raises(TypeError, match=rf"^{name}: argnums must be an int or a non-empty "
                                            rf"tuple of ints, got {re.escape(repr(bad))}$"):
            transform(lambda a: a, argnums=bad)
    with pytest.raises(ValueError, match=rf"^{name}: argnums 2 is out of range for 2 "
                                         r"argument\(s\)$"):
        transform(lambda a, b: a * b, argnums=(0, 2))(1.0, 2.0)
    with pytest.raises(ValueError, match=r"^value_and_grad needs a scalar output"):
        value_and_grad(lambda v: v * 2.0)(np.ones(3))           # it said "grad needs"


@pytest.mark.parametrize("transform", [grad, value_and_grad, jacobian, hessian])
def test_a_bad_argument_is_named_with_its_position(transform):
    """An argument that is no point of f: one error naming the transform and the argument.
    An array of bools was differentiated as 0s and 1s while a bool was refused (JAX and
    torch.func refuse both); a ragged list got numpy's bare message."""
    name = transform.__name__
    f = lambda a, b: (a * b).sum()                      # noqa: E731
    for bad, kind in [(np.array([True, False]), "an array of bools"), ([True], "an array of bools"),
                      (True, "a bool"), ("x", "a str"), (None, "a NoneType"), (1j, "a complex")]:
        with pytest.raises(TypeError, match=rf"^{name}: argument 1: cannot differentiate with "
                                            rf"respect to {kind}$"):
            transform(f, argnums=(0, 1))(np.ones(2), bad)
    with pytest.raises(TypeError, match=rf"^{name}: argument 0: Tensor needs real numbers"):
        transform(f)(np.array(["a"]), 1.0)
    with pytest.raises(ValueError, match=rf"^{name}: argument 0: setting an array element"):
        transform(f)([1.0, [2.0]], 1.0)
    np.testing.assert_array_equal(grad(f)(np.array([1, 2]), np.array([3, 4])), [3.0, 4.0])


def test_nested_grad_through_a_closure():
    # the standard nested idiom: the inner function closes over the outer variable y
    y = -1.3
    assert math.isclose(grad(lambda v: grad(lambda x: x * v)(0.7))(y), 1.0, rel_tol=1e-15)
    # d/dy [∂(x²y)/∂x · y] = d/dy [2xy²] = 4xy at x = 0.7
    got = grad(lambda v: grad(lambda x: x * x * v)(0.7) * v)(y)
    assert math.isclose(got, 4 * 0.7 * y, rel_tol=1e-15), got


def test_nested_grad_never_drops_a_dependence_silently():
    # d/dy [∂f/∂x(0.7, y) · y] = d/dy [(y² + 3·0.7²) y] = 3y² + 1.47
    dfdx = grad(f_xy)
    y = -1.3
    got = grad(lambda v: dfdx(0.7, v) * v)(y)
    assert math.isclose(got, 3 * y ** 2 + 1.47, rel_tol=1e-14), got


def test_transforms_record_even_inside_no_grad():
    # as JAX's transforms (and torch.func): an outer no_grad does not turn gradients into zeros
    from autograd import no_grad
    x = np.array([1.0, 2.0])
    with no_grad():
        assert grad(lambda v: v ** 3)(2.0) == 12.0
        np.testing.assert_allclose(grad(lambda v: (v ** 3).sum())(x), [3.0, 12.0])
        np.testing.assert_allclose(jacobian(lambda v: v * 2.0)(x), 2 * np.eye(2))
        assert gradcheck(lambda v: (v ** 3).sum(), x).passed


def test_transforms_inside_no_grad_differentiate_node_arguments():
    """A node requiring a gradient passed to a transform under no_grad was copied as x + 0
    with recording off (a constant): every derivative came back 0. As torch.func, the outer
    no_grad holds outside f: the derivative is right, and numbers (nothing records it)."""
    from autograd import no_grad
    x = np.array([1.0, 2.0])
    t = Tensor(x, requires_grad=True)
    W = Tensor(np.array([3.0, -1.0]), requires_grad=True)
    with no_grad():
        assert grad(lambda v: v ** 3)(Value(2.0)) == 12.0
        np.testing.assert_array_equal(grad(lambda v: (v ** 3).sum())(t), 3 * x ** 2)
        value, g = value_and_grad(lambda v: (v ** 3).sum())(t)
        assert value == 9.0 and isinstance(g, np.ndarray)
        np.testing.assert_array_equal(jacobian(lambda v: v * v)(t), np.diag(2 * x))
        np.testing.assert_array_equal(hessian(lambda v: (v ** 3).sum())(t), np.diag(6 * x))
        np.testing.assert_array_equal(grad(lambda v: (W * v * v).sum())(t), 2 * W.data * x)
    # inside a transform, an inner one under no_grad is a constant to the outer one: ∂(u²v)/∂u
    # at u = v is 2v² = 18 (it was 0), and d/dv [18·v] = 18, as torch.func
    assert grad(lambda v: with_no_grad(grad(lambda u: u * u * v))(v) * v)(3.0) == 18.0
    assert t.grad is None and W.grad is None


def with_no_grad(f):
    """f called under no_grad."""
    from autograd import no_grad

    def wrapped(*args):
        with no_grad():
            return f(*args)
    return wrapped


def test_gradient_of_an_unused_argument_is_zero():
    assert grad(lambda x, y: x * 3.0, argnums=1)(2.0, 3.0) == 0.0
    np.testing.assert_array_equal(grad(lambda x, y: (x * 3.0).sum(), argnums=1)(
        np.ones(2), np.ones(3)), np.zeros(3))
    value, g = value_and_grad(lambda x: 5.0)(1.0)      # f ignores x altogether
    assert value == 5.0 and g == 0.0


def test_hessian_with_several_arguments_is_nested_blocks():
    x, y = np.array([1.0, 1.0]), np.array([1.0, 2.0])
    H = hessian(lambda a, b: (a * b).sum() ** 2, argnums=(0, 1))(x, y)
    s = x @ y                                           # f = s², s = x·y
    np.testing.assert_allclose(H[0][0], 2 * np.outer(y, y))
    np.testing.assert_allclose(H[0][1], 2 * (np.outer(y, x) + s * np.eye(2)))
    np.testing.assert_allclose(H[1][0], 2 * (np.outer(x, y) + s * np.eye(2)))
    np.testing.assert_allclose(H[1][1], 2 * np.outer(x, x))


def _penalised_loss(W0, x0):
    """L(W) = f(x₀) + ‖∂f/∂x(x₀)‖², f(x) = Σ tanh(W x): a gradient penalty, built with grad over
    a closure on W."""
    W = Tensor(W0, requires_grad=True)
    f = lambda x: (W @ x).tanh().sum()
    g = grad(f)(x0)
    return W, f(Tensor(x0)) + (g ** 2).sum(), g


def test_grad_keeps_the_dependence_on_a_closed_over_parameter():
    """As torch.func.grad: a derivative that depends on a leaf requiring a gradient outside the
    transform stays a node, so the penalty's gradient reaches W (it used to be dropped)."""
    r = np.random.default_rng(5)
    W0, x0 = r.standard_normal((2, 2)), r.standard_normal(2)
    W, L, g = _penalised_loss(W0, x0)
    assert isinstance(g, Tensor) and g.requires_grad
    L.backward()
    numeric = np.zeros_like(W0)
    for idx in np.ndindex(W0.shape):
        up, down = W0.copy(), W0.copy()
        up[idx] += 1e-6
        down[idx] -= 1e-6
        numeric[idx] = (float(_penalised_loss(up, x0)[1].data)
                        - float(_penalised_loss(down, x0)[1].data)) / 2e-6
    np.testing.assert_allclose(W.grad, numeric, rtol=1e-7, atol=1e-9)
    w = Value(0.5, requires_grad=True)              # the same for Values
    gv = grad(lambda x: (w * x).tanh())(0.3)
    assert isinstance(gv, Value)
    gv.backward()                                   # d/dw [w (1 − tanh²(0.3 w))]
    t = math.tanh(0.15)
    assert math.isclose(w.grad, (1 - t * t) - 0.5 * 2 * t * (1 - t * t) * 0.3, rel_tol=1e-12)
    assert isinstance(grad(lambda x: x * x)(3.0), float)        # nothing outside: numbers


def test_transforms_compose_with_jacobian_and_hessian():
    x = np.array([0.3, 0.7])
    t = np.tanh(x)
    # d/dx Σ tanh′(x) = tanh″(x) = −2 tanh (1 − tanh²)   (it used to be silently 0)
    np.testing.assert_allclose(grad(lambda v: jacobian(lambda u: u.tanh())(v).sum())(x),
                               -2 * t * (1 - t * t), rtol=1e-12)
    np.testing.assert_allclose(grad(lambda v: hessian(lambda u: (u ** 4).sum())(v).sum())(x),
                               24 * x, rtol=1e-12)
    # the Jacobian of a gradient taken inside a closure: ∂/∂a (2 a ⊙ y₀) = diag(2 y₀)
    y0 = np.array([1.0, 2.0])
    np.testing.assert_allclose(jacobian(lambda a: grad(lambda y: (a * y * y).sum())(y0))(x),
                               np.diag(2 * y0), rtol=1e-15)
    assert jacobian(lambda a: grad(lambda y: a * y * y)(3.0))(2.0) == 6.0
    np.testing.assert_allclose(hessian(lambda u: hessian(lambda v: (v ** 4).sum())(u).sum())(x),
                               24 * np.eye(2), rtol=1e-15)
    np.testing.assert_allclose(jacobian(jacobian(lambda u: u ** 3))(x),
                               np.einsum("ij,jk->ijk", np.eye(2), np.diag(6 * x)), rtol=1e-15)


def test_a_number_cut_from_the_graph_is_an_error_not_a_zero():
    x = np.array([1.0, 2.0])
    with pytest.raises(TypeError, match=r"plain number made from a traced value"):
        grad(lambda t: (t * t).sum().item())(x)
    with pytest.raises(TypeError, match=r"plain number made from a traced value"):
        grad(lambda v: float(v * v))(3.0)
    with pytest.raises(TypeError, match=r"plain number made from a traced value"):
        grad(lambda v: (v * v).item())(3.0)
    assert Value(2.5).item() == 2.5 and type(Value(2.5).item()) is float
    assert grad(lambda v: 3.0)(1.0) == 0.0          # a constant function is still fine


def test_numpy_of_a_traced_tensor_is_an_escape_too():
    """.numpy() hands out the array as .item() does a float, but was not counted: a function
    returning float(t.numpy()) got a silent 0, and one returning t.numpy() a bare 'got
    ndarray'."""
    x = np.array([1.0, 2.0])
    for f in (lambda t: float((t * t).sum().numpy()), lambda t: (t * t).sum().numpy()):
        with pytest.raises(TypeError, match=r"^grad: the function returned a plain number "
                                            r"made from a traced value \(.*\.numpy\(\)"):
            grad(f)(x)
    with pytest.raises(TypeError, match=r"^jacobian: .* made from a traced value"):
        jacobian(lambda t: (t * t).numpy())(x)
    # used again inside the function, it is a constant, as .item()'s number
    np.testing.assert_array_equal(grad(lambda t: (t * Tensor(t.numpy())).sum())(x), x)
    with pytest.raises(TypeError, match=r"got ndarray"):           # not made from a traced value
        grad(lambda t: np.ones(()))(x)


def test_argnums_forms_kwargs_and_empty_jacobians():
    assert grad(lambda a, b: a * b, argnums=(0, 0))(2.0, 3.0) == (3.0, 3.0)
    assert grad(lambda a, b: a * b, argnums=np.int64(1))(2.0, 3.0) == 2.0
    for bad in ("0", (), 1.0):
        with pytest.raises(TypeError, match="argnums must be"):
            grad(lambda a: a, argnums=bad)(1.0)
    np.testing.assert_allclose(grad(lambda v, s=1.0: (v * v).sum() * s)(np.ones(2), s=3.0),
                               [6.0, 6.0])
    assert jacobian(lambda t: t * 2)(np.zeros(0)).shape == (0, 0)
    assert jacobian(lambda t: t[:0])(np.ones(3)).shape == (0, 3)
    assert hessian(lambda t: (t * t).sum())(np.zeros(0)).shape == (0, 0)


def test_a_gradient_is_an_array_of_its_own_as_grad_is():
    """What grad and gradients return was the pass's raw result: for a 0-d array a numpy
    scalar or an array depending on f (v ↦ v·v against v ↦ v), for a sum a read-only view,
    and for a + b the very array both gradients shared (gx += 1 changed gy too)."""
    from autograd import gradients
    x0 = np.array(3.0)
    for f in (lambda v: v, lambda v: v * v, lambda v: v.exp(), lambda v: (v * 2.0).sum()):
        g = grad(f)(x0)
        assert type(g) is np.ndarray and g.shape == (), (f, type(g))
    t = Tensor(x0, requires_grad=True)
    (t * t).backward()
    assert type(gradients(t * t, t)[0]) is type(t.grad) is np.ndarray
    gx, gy = grad(lambda a, b: (a + b).sum(), argnums=(0, 1))(np.ones(3), np.ones(3))
    gx += 1.0
    np.testing.assert_array_equal(gy, [1.0, 1.0, 1.0])
    g0, g1 = grad(lambda a: (a * a).sum(), argnums=(0, 0))(np.ones(2))
    g0 *= 0.0
    np.testing.assert_array_equal(g1, [2.0, 2.0])
    _, g = value_and_grad(lambda a: a.sum())(np.ones(2))
    g -= 0.5                                    # not read-only
    np.testing.assert_array_equal(g, [0.5, 0.5])


def test_gradients_takes_one_node_or_a_list_of_nodes():
    from autograd import gradients
    x = Tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    (g,) = gradients((x * x).sum(), x)              # one node, not its rows
    np.testing.assert_array_equal(g, [2.0, 4.0, 6.0])
    with pytest.raises(TypeError, match=r"wrt\[0\] is a float"):
        gradients((x * x).sum(), [3.0])
    v = Value(2.0, requires_grad=True)
    for seed in (np.array([1.0, 2.0]), "a"):
        with pytest.raises(TypeError, match="grad_out of a Value must be a number"):
            (v * v).backward(seed)
    (v * v).backward(np.float64(2.0))
    assert v.grad == 8.0


def test_gradcheck_says_why_a_difference_at_a_domains_edge_is_nan():
    with np.errstate(divide="ignore", invalid="ignore"):
        report = gradcheck(lambda x: x.sqrt().sum(), np.array([1.0, 0.0]))
    assert report.status == "FAIL" and report.inputs[0].worst[0] == (1,)
    assert "numeric nan" in str(report) and "no difference quotient" in str(report)
    assert "no difference quotient" not in str(gradcheck(lambda x: x * x, 0.5))


def test_gradcheck_allows_rounding_noise_and_catches_a_wrong_small_entry():
    import warnings
    # f = 10⁻³x + 100: correct, but its differences carry ~1e-10/1e-6 of rounding noise
    report = gradcheck(lambda x: (x * 1e-3 + 100.0).sum(), np.array([0.5]))
    assert report.passed and report.inputs[0].relative_error > 1e-6
    assert "rounding noise" in str(report)
    # a gradient wrong by 2× on a small entry next to a large one: one norm hides it
    wrong = gradcheck(lambda x: x[0] ** 2 * 1000 + x[1] * x[1].detach(), np.array([1.0, 1e-3]))
    assert wrong.inputs[0].relative_error < 1e-6 and not wrong.passed
    assert wrong.inputs[0].worst[0] == (1,) and "entry (1,)" in str(wrong)
    assert gradcheck(lambda x: (x ** 4).sum() * 1e-8, np.array([1e-3, 0.0])).passed
    # a wrong gradient (0 against 1e-3) hidden in f ≈ 1e6's rounding: never a PASS
    hidden = gradcheck(lambda x: x * 0.0 + 1e6 + Value(x.data) * 1e-3, 0.5)
    assert not hidden.passed and hidden.status == "INCONCLUSIVE"
    # an exact 0 beside an O(ε²) truncation of 1e-8 (x³·1e4 at 0): not a FAIL
    assert gradcheck(lambda x: (x ** 3 * 1e4).sum(), np.array([0.0, 0.001])).passed
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert gradcheck(lambda x: (x * x).sum(), np.ones(2, np.float32)).passed
    assert any("checked in float64" in str(w.message) for w in caught)


def test_gradcheck_does_not_pass_a_slope_wrong_everywhere_by_more_than_tol():
    # f = x² + 5e-5·x² with the second term detached: autograd's 2x is 5e-5 too small in every
    # entry, far outside the differences' ~1e-8 noise; only noise may excuse rel > tol
    f = lambda t: (t * t).sum() + (Tensor(t.data) ** 2).sum() * 5e-5
    report = gradcheck(f, np.array([0.5, -1.0, 2.0]))
    assert 1e-6 < report.inputs[0].relative_error < 1e-3
    assert report.status == "FAIL" and "rounding noise" not in str(report)
    assert gradcheck(lambda v: v * v + Value(v.data) ** 2 * 5e-5, 0.5).status == "FAIL"


def test_relative_error_and_gradcheck_at_extreme_scales():
    from autograd import relative_error
    # the norms square each entry: 1e200² overflowed (nan), 1e-200² underflowed (0 for a 3× gap)
    assert relative_error([1e200], [1.1e200]) == pytest.approx(1 / 21)
    assert relative_error([3e-200], [1e-200]) == pytest.approx(0.5)
    assert gradcheck(lambda v: v * 1e200, 1.0).status == "PASS"        # was nan, INCONCLUSIVE
    # f ≈ 1e308: the noise allowance u·(|f₊| + |f₋|) overflowed to inf and excused any slope
    report = gradcheck(lambda v: v * 1e-300 + Value(v.data) * 1e308, 1.0)
    assert report.status == "FAIL" and report.inputs[0].relative_error == pytest.approx(1.0)


def test_gradcheck_inconclusive_names_truncation_as_well_as_rounding():
    # 10⁴x³ at 0: f(±ε) = ±1e-8, no rounding to speak of; D(ε) = 1e4·ε² is all truncation
    report = gradcheck(lambda x: x ** 3 * 1e4, 0.0)
    assert report.status == "INCONCLUSIVE"
    assert "truncation" in str(report) and "change eps" in str(report)


@pytest.mark.parametrize("kwargs", [dict(eps=0), dict(eps=-1e-6), dict(eps=float("nan")),
                                    dict(eps="1e-6"), dict(tol=float("nan")), dict(tol=-1.0)])
def test_gradcheck_refuses_a_bad_step_or_tolerance(kwargs):
    # eps=0 was a ZeroDivisionError; eps=nan a FAIL blaming f for not being finite
    name = next(iter(kwargs))
    with pytest.raises(ValueError, match=f"{name} must be a finite number"):
        gradcheck(lambda x: x * x, 0.5, **kwargs)
    if name == "eps":
        with pytest.raises(ValueError, match="eps must be a finite number > 0"):
            numerical_grad(lambda x: x * x, 0.5, **kwargs)


def test_hessian_with_a_tuple_passes_keywords_and_numpy_ints():
    f = lambda x, y, scale=1.0: (x * x * y).sum() * scale
    blocks = hessian(f, (0, 1))(np.ones(2), np.ones(2), scale=3.0)
    np.testing.assert_allclose(blocks[0][0], 6 * np.eye(2))       # ∂²/∂x² = 2y·scale
    np.testing.assert_allclose(blocks[0][1], 6 * np.eye(2))       # ∂²/∂x∂y = 2x·scale
    np.testing.assert_allclose(hessian(f, np.int64(0))(np.ones(2), np.ones(2), scale=3.0),
                               6 * np.eye(2))


def test_an_inner_transform_over_an_outer_variable_keeps_them_apart():
    """grad(x ↦ grad(y ↦ x·y²)(x)) = d/dx [2x·y at y = x] = 4x: the inner y is a copy of x,
    not x itself (which differentiated x·x² inside: 3x² = 27, then 18 at 3); torch.func gives
    12 too."""
    assert grad(lambda x: grad(lambda y: x * y * y)(x))(3.0) == 12.0
    np.testing.assert_allclose(
        grad(lambda x: grad(lambda y: (x * y * y).sum())(x).sum())(np.array([1.0, 2.0])),
        [4.0, 8.0])


def test_jacobian_names_the_item_of_a_returned_list_that_is_not_a_value():
    """A list holding a number or a Tensor was refused as 'got list', which a list of Values
    is not; and a number cut from the graph in a list was not reported as one."""
    with pytest.raises(TypeError, match=r"^jacobian needs a Tensor, Value or list of Values, "
                                        r"got a list whose item 1 is a float$"):
        jacobian(lambda a: [a * 2.0, 3.0])(1.0)
    with pytest.raises(TypeError, match=r"got a tuple whose item 0 is a Tensor \(join Tensors "
                                        r"with autograd.stack\)$"):
        jacobian(lambda t: (t[0], t[1]))(np.ones(2))
    with pytest.raises(TypeError, match=r"^jacobian: .* made from a traced value"):
        jacobian(lambda a: [a * 2.0, float(a)])(1.0)
    assert jacobian(lambda a: (a * 2.0, a * a))(3.0).tolist() == [2.0, 6.0]


# -- the transforms against torch.func on random compositions --------------------------------
# Each op is written once for chainrule's nodes and torch's tensors alike; the wrapped forms
# (log(x² + 1), …) keep every composition inside the ops' domains.
_ELEMENTWISE = {
    "tanh": lambda x: x.tanh(), "sigmoid": lambda x: x.sigmoid(), "sin": lambda x: x.sin(),
    "cos": lambda x: x.cos(), "exp": lambda x: x.tanh().exp(), "square": lambda x: x * x,
    "cube": lambda x: x ** 3, "log": lambda x: (x * x + 1.0).log(),
    "sqrt": lambda x: (x * x + 0.5).sqrt(), "abs": lambda x: x.abs(), "relu": lambda x: x.relu(),
    "reciprocal": lambda x: 1.0 / (x * x + 1.0), "affine": lambda x: 0.3 - x * 0.7,
    "neg": lambda x: -x,
}
_PAIRWISE = {
    "add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b,
    "div": lambda a, b: a / (b * b + 1.0), "pow": lambda a, b: (a * a + 1.0) ** b.tanh(),
}
# scalar results of an array (name, least ndim it needs, function)
_REDUCTIONS = [
    ("sum", 0, lambda o: o.sum()), ("mean", 0, lambda o: o.mean()),
    ("max", 0, lambda o: o.amax() if hasattr(o, "amax") else o.max()),
    ("sum of squares along axis 0", 1, lambda o: (o.sum(axis=0) ** 2).sum()),
    ("first × last", 1, lambda o: (o[..., 0] * o[..., -1]).sum()),
    # (−1, not 1: a last axis of one entry, shape (2, 1), has no index 1)
    ("repeated index", 1, lambda o: (o[..., [0, 0, -1]] ** 2).sum()),
    ("o·sin o", 1, lambda o: (o * o.sin()).sum() if o.ndim > 1 else o @ o.sin()),
    ("tanh(o oᵀ)", 2, lambda o: (o @ o.T).tanh().sum()),
]
_SHAPES = [[(3,)], [(2, 3), (3,)], [(2, 1), (1, 3)], [(2, 3), (1, 3)], [()]]


@st.composite
def _compositions(draw):
    """(args, program, reduce, ignores_last): floats (Values) or arrays (Tensors), one to three
    of them, a program of elementwise and pairwise steps over them (with broadcasting), and for
    arrays a reduction to a scalar."""
    n = draw(st.integers(1, 3))
    scalar = draw(st.booleans())
    shapes = [()] * n if scalar else draw(st.lists(st.sampled_from(draw(st.sampled_from(
        _SHAPES))), min_size=n, max_size=n))
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
    args = [float(rng.standard_normal()) if scalar else rng.standard_normal(s) for s in shapes]
    step = st.one_of(st.tuples(st.sampled_from(sorted(_ELEMENTWISE)), st.integers(0, n - 1)),
                     st.tuples(st.sampled_from(sorted(_PAIRWISE)), st.integers(0, n - 1),
                               st.integers(0, n - 1)))
    program = draw(st.lists(step, min_size=1, max_size=5))
    ndim = len(np.broadcast_shapes(*shapes))
    reduce = None if scalar else draw(st.sampled_from(
        [r for r in _REDUCTIONS if r[1] <= ndim]))
    return args, program, reduce, n > 1 and draw(st.booleans())


def _run(program, xs, reduce, ignores_last):
    xs = list(xs)
    for name, i, *j in program:
        xs[i] = _PAIRWISE[name](xs[i], xs[j[0]]) if j else _ELEMENTWISE[name](xs[i])
    out = xs[0]
    for x in xs[1:len(xs) - ignores_last]:
        out = out + x
    return out if reduce is None else reduce[2](out)


def _same(ours, theirs, what):
    if isinstance(theirs, (tuple, list)):
        assert isinstance(ours, (tuple, list)) and len(ours) == len(theirs), what
        for k, (o, t) in enumerate(zip(ours, theirs)):
            _same(o, t, f"{what}[{k}]")
        return
    assert not isinstance(ours, Node), f"{what}: a node where numbers are due"
    t = theirs.detach().numpy(force=True)
    o = np.asarray(ours)
    assert o.shape == t.shape, f"{what}: shape {o.shape}, torch.func {t.shape}"
    np.testing.assert_allclose(o, t, rtol=1e-10, atol=1e-12, err_msg=what)


# torch.func's first use goes through torch.jit.script, which torch itself now deprecates
TORCH_JIT_DEPRECATED = pytest.mark.filterwarnings(
    "ignore:`torch.jit.script` is deprecated:DeprecationWarning")


@TORCH_JIT_DEPRECATED
@given(_compositions())
@settings(SETTINGS, max_examples=25)
def test_transforms_agree_with_torch_func(case):
    torch = pytest.importorskip("torch")
    tf = pytest.importorskip("torch.func")
    args, program, reduce, ignores_last = case

    def ours(*xs):          # arguments not differentiated stay numbers: constants here
        xs = [Value(x, requires_grad=False) if isinstance(x, float) else
              Tensor(x) if isinstance(x, np.ndarray) else x for x in xs]
        return _run(program, xs, reduce, ignores_last)

    def theirs(*xs):
        return _run(program, xs, reduce, ignores_last)

    def vector(*xs):        # the output before the reduction, for jacobian
        return _run(program, [Tensor(x) if isinstance(x, np.ndarray) else x for x in xs], None,
                    ignores_last)

    t_args = [torch.tensor(x, dtype=torch.float64) for x in args]
    n = len(args)
    every = tuple(range(n))
    for argnums in sorted({0, n - 1, every, (n - 1, 0)[:n]}, key=str):
        _same(grad(ours, argnums)(*args), tf.grad(theirs, argnums)(*t_args), f"grad {argnums}")
        _same(hessian(ours, argnums)(*args), tf.hessian(theirs, argnums)(*t_args),
              f"hessian {argnums}")
    value, _ = value_and_grad(ours, every)(*args)
    _same(value, theirs(*t_args), "value")
    _same(jacobian(grad(ours))(*args), tf.jacrev(tf.grad(theirs))(*t_args), "jacobian(grad)")
    if reduce is not None:
        _same(jacobian(vector, every)(*args),
              tf.jacrev(lambda *xs: _run(program, xs, None, ignores_last), every)(*t_args),
              "jacobian")
        # the gradient of a function of a Hessian: third derivatives through two transforms
        _same(grad(lambda *xs: (hessian(ours)(*xs) ** 2).sum(), every)(*args),
              tf.grad(lambda *xs: (tf.hessian(theirs)(*xs) ** 2).sum(), every)(*t_args),
              "grad(Σ hessian²)")
    else:
        _same(grad(grad(ours))(*args), tf.grad(tf.grad(theirs))(*t_args), "grad(grad)")
        if n > 1:       # an inner transform closing over the outer variable, and over a copy
            _same(grad(lambda y: grad(ours)(args[0], y, *args[2:]))(args[1]),
                  tf.grad(lambda y: tf.grad(theirs)(t_args[0], y, *t_args[2:]))(t_args[1]),
                  "closure")
            _same(grad(lambda x: grad(ours, 1)(x, x, *args[2:]))(args[0]),
                  tf.grad(lambda x: tf.grad(theirs, 1)(x, x, *t_args[2:]))(t_args[0]),
                  "inner over the outer's variable")


def _three_argument_cost(x, s, W):
    """A scalar of three arrays, written once for chainrule's Tensors and torch's."""
    return (W @ x).tanh().sum() * s + (x ** 3).sum() * s * s + (W * W).sum() * (x * s).sin().sum()


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
def test_hessian_with_a_tuple_traces_f_and_records_the_gradient_once(monkeypatch):
    """All the blocks H[i][j] come from one graph of the gradient: f used to be traced (and
    its gradient recorded with create_graph) once per row i. The blocks are the ones the
    row-by-row composition gives, bit for bit, and torch.func.hessian's."""
    from autograd import functional
    r = np.random.default_rng(3)
    args = (r.standard_normal(3), np.array(0.7), r.standard_normal((2, 3)))
    argnums = (2, 0, 1)
    calls = []

    def f(*xs):
        calls.append(1)
        return _three_argument_cost(*xs)
    recorded = []                       # create_graph of each gradients() call
    gradients = functional.gradients

    def counted(*call, create_graph=False, **options):
        recorded.append(create_graph)
        return gradients(*call, create_graph=create_graph, **options)
    monkeypatch.setattr(functional, "gradients", counted)
    H = hessian(f, argnums)(*args)
    assert len(calls) == 1 and recorded.count(True) == 1, (len(calls), recorded.count(True))
    monkeypatch.undo()
    # the composition it replaced: row i is the Jacobian of the gradient's entry i
    rows = [jacobian(lambda *xs, i=i: grad(f, argnums)(*xs)[i], argnums)(*args)
            for i in range(len(argnums))]
    assert len(H) == len(argnums)
    for i, a in enumerate(argnums):
        assert len(H[i]) == len(argnums)
        for j, b in enumerate(argnums):
            assert np.shape(H[i][j]) == args[a].shape + args[b].shape
            np.testing.assert_array_equal(H[i][j], rows[i][j])
    torch = pytest.importorskip("torch")
    tf = pytest.importorskip("torch.func")
    _same(H, tf.hessian(_three_argument_cost, argnums)(
        *[torch.tensor(x, dtype=torch.float64) for x in args]), "hessian")


def test_a_scalar_functions_jacobian_and_hessian_are_floats_as_its_grad_is():
    f = lambda x: x ** 3                            # noqa: E731
    assert type(grad(f)(2.0)) is float and grad(f)(2.0) == 12.0
    for transform, expected in ((jacobian, 12.0), (hessian, 12.0)):
        got = transform(f)(2.0)
        assert type(got) is float and got == expected
    blocks = hessian(lambda x, y: x * y * y, (0, 1))(2.0, 3.0)
    assert blocks == ((0.0, 6.0), (6.0, 4.0)) and type(blocks[0][1]) is float
