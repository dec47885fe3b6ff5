"""nn.losses: the L2 term added after backward (`add_l2`) gives the numbers of recording it in the
graph; the cross-entropy cost is the fused Tensor op with the value of the chain it replaces."""
import math

import numpy as np
import pytest

from autograd import Tensor
from nn import losses


def _net(dtype, seed=0):
    r = np.random.default_rng(seed)
    weights = [Tensor(r.standard_normal(s).astype(dtype), requires_grad=True)
               for s in ((12, 5), (5, 3))]
    bias = Tensor(r.standard_normal(3).astype(dtype), requires_grad=True)
    x = r.standard_normal((7, 12)).astype(dtype)
    y = r.integers(0, 3, 7)
    return weights, bias, x, y


def _cost(weights, bias, x, y):
    return losses.softmax_cross_entropy((Tensor(x) @ weights[0]).tanh() @ weights[1] + bias, y)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("convention, kwargs", [("ufldl", {}), ("nielsen", {"n_train": 70}),
                                                ("sklearn", {"batch": 7})])
def test_add_l2_gives_the_numbers_of_the_recorded_penalty(dtype, convention, kwargs):
    weights, bias, x, y = _net(dtype)
    J = _cost(weights, bias, x, y) + losses.l2_penalty(weights, 0.3, convention, **kwargs)
    J.backward()
    recorded = [p.grad.copy() for p in weights + [bias]]
    for p in weights + [bias]:
        p.zero_grad()
    J_cost = _cost(weights, bias, x, y)
    J_cost.backward()
    cost_grads = [W.grad.copy() for W in weights]
    value = losses.add_l2(J_cost, weights, 0.3, convention, **kwargs)
    # the same arithmetic as the graph's ops (today float for float; rounding is all that may
    # differ if an op's implementation changes)
    tol = 1e-6 if dtype == np.float32 else 1e-14
    assert value.dtype == dtype
    np.testing.assert_allclose(value, J.data, rtol=tol)
    for got, want in zip([p.grad for p in weights + [bias]], recorded):
        assert got.dtype == dtype
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol)
    c = losses.l2_factor(0.3, convention, **kwargs)
    for W, g in zip(weights, cost_grads):                               # ∂/∂W (c Σ W²) = 2cW
        np.testing.assert_allclose(W.grad - g, 2 * c * W.data, rtol=1e-5 if dtype == np.float32
                                   else 1e-12)


def test_add_l2_gives_a_weight_the_pass_missed_its_decay():
    weights, bias, x, y = _net(np.float64)
    unused = Tensor(np.ones((2, 2)), requires_grad=True)
    J = _cost(weights, bias, x, y)
    J.backward()
    value = losses.add_l2(J, weights + [unused], 1.0, "ufldl")
    np.testing.assert_array_equal(unused.grad, 2 * 0.5 * np.ones((2, 2)))
    expected = J.data + 0.5 * (sum((W.data ** 2).sum() for W in weights) + 4.0)
    np.testing.assert_allclose(value, expected, rtol=1e-14)
    assert losses.add_l2(J, [], 1.0) == J.data


def test_cross_entropy_cost_takes_labels_one_hot_rows_and_whole_floats():
    r = np.random.default_rng(4)
    z = r.standard_normal((5, 3))
    y = np.array([0, 2, 1, 1, 0])
    values = [losses.softmax_cross_entropy(Tensor(z), t).data
              for t in (y, np.eye(3)[y], y.astype(np.float64), list(y))]
    shifted = z - z.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    for v in values:
        np.testing.assert_allclose(v, -log_p[np.arange(5), y].mean(), rtol=1e-14)
    with pytest.raises(ValueError, match="0..2"):
        losses.softmax_cross_entropy(Tensor(z), np.array([0, 3, 1, 1, 0]))


def test_softmax_cross_entropy_with_soft_targets_on_both_engines():
    from scipy.special import log_softmax, softmax

    from autograd import Value
    rng = np.random.default_rng(0)
    z = rng.standard_normal((4, 3))
    T = rng.random((4, 3))
    T /= T.sum(axis=1, keepdims=True)                   # rows of probabilities
    zt = Tensor(z, requires_grad=True)
    J = losses.softmax_cross_entropy(zt, T)
    J.backward()
    zv = [[Value(float(v)) for v in row] for row in z]
    Jv = losses.softmax_cross_entropy(zv, T)
    Jv.backward()
    expected = -(T * log_softmax(z, axis=1)).sum() / 4
    assert float(J.data) == pytest.approx(expected, rel=1e-12)
    assert Jv.data == pytest.approx(expected, rel=1e-12)
    np.testing.assert_allclose(zt.grad, (softmax(z, axis=1) - T) / 4, atol=1e-15)
    np.testing.assert_allclose([[v.grad for v in row] for row in zv], zt.grad, atol=1e-15)
    # one-hot rows are still read as labels: the same numbers as the labels themselves
    labels = np.array([0, 2, 1, 1])
    a = losses.softmax_cross_entropy(Tensor(z), np.eye(3)[labels]).data
    b = losses.softmax_cross_entropy(Tensor(z), labels).data
    assert a == b


def test_squared_costs_refuse_targets_of_another_shape():
    """Only a column and a vector of one output are taken for one another; any other mismatch
    is an error (it used to be reshaped, or cut short by zip, into a wrong number)."""
    from autograd import Value
    h = Tensor(np.arange(6.0).reshape(2, 3))
    for cost in (losses.document_cost, losses.mse):
        for y in (np.arange(6.0).reshape(3, 2), np.arange(6.0)):
            with pytest.raises(ValueError, match="shape"):
                cost(h, y)
    assert losses.document_cost(Tensor(np.ones((4, 1))), np.zeros(4)).data == 0.5
    assert losses.document_cost(Tensor(np.ones(4)), np.zeros((4, 1))).data == 0.5
    hv = [[Value(0.3), Value(0.7)], [Value(0.1), Value(0.9)]]
    for y in ([[0, 1, 5], [1, 0, 5]], [0.0, 1.0]):
        with pytest.raises(ValueError, match="row 0 has 2 outputs and"):
            losses.document_cost(hv, y)
    assert abs(losses.document_cost([[Value(0.3)], [Value(0.1)]], [0.0, 1.0]).data
               - 0.225) < 1e-15


def test_costs_of_an_empty_batch_are_nan_not_a_crash():
    # the mean of nothing, as numpy's and PyTorch's
    for J in (losses.mse(Tensor(np.zeros((0, 3))), np.zeros((0, 3))),
              losses.document_cost(Tensor(np.zeros((0, 3))), np.zeros((0, 3))),
              Tensor(np.zeros((0, 3)), requires_grad=True).softmax_cross_entropy(
                  np.zeros(0, int))):
        assert np.isnan(J.data)
    for J in (losses.mse([], []), losses.document_cost([], []),     # the Value engine too
              losses.softmax_cross_entropy([], [])):
        assert math.isnan(J.data)
    t = Tensor(np.zeros((3, 0)), requires_grad=True)
    out = t.log_softmax()
    out.sum().backward()
    assert out.data.shape == t.grad.shape == (3, 0)


def test_add_l2_gradient_adds_to_a_0d_weights_accumulated_gradient():
    """Two backward passes leave a 0-d leaf's .grad a numpy scalar (0-d + 0-d is a scalar in
    numpy): the decay is added to it, not to a temporary that is dropped."""
    W = Tensor(np.float32(2.0), requires_grad=True)
    (W * 3.0).backward()
    (W * 3.0).backward()
    losses.add_l2_gradient([W], 0.5, "sklearn", batch=1)      # c = ½/(2·1): 2c·W = 1
    assert float(W.grad) == 7.0
