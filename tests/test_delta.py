"""The δ reference against central differences in float64, and the document's formulas by hand."""

import re
import warnings

import numpy as np
import pytest
from hypothesis import assume, given, settings, strategies as st

from nn.delta import (ACTIVATIONS, COSTS, L2_CONVENTIONS, DeltaNetwork, backprop, forward,
                      sigmoid)


def central_differences(J, params, eps=1e-6):
    """∂J/∂p ≈ (J(p + ε) − J(p − ε)) / 2ε for every entry of every array in ``params``."""
    grads = []
    for p in params:
        g = np.zeros_like(p)
        for i in np.ndindex(p.shape):
            old = p[i]
            p[i] = old + eps
            plus = J()
            p[i] = old - eps
            minus = J()
            p[i] = old
            g[i] = (plus - minus) / (2 * eps)
        grads.append(g)
    return grads


def relative_error(analytic, numeric):
    """‖a − n‖ / ‖a + n‖ over all arrays together (0 when both are 0)."""
    a = np.concatenate([g.ravel() for g in analytic])
    n = np.concatenate([g.ravel() for g in numeric])
    denom = np.linalg.norm(a + n)
    return 0.0 if denom == 0 else np.linalg.norm(a - n) / denom


def random_network(rng, sizes):
    weights = [rng.normal(0, 1 / np.sqrt(m), (m, k)) for m, k in zip(sizes[:-1], sizes[1:])]
    biases = [rng.normal(0, 0.5, k) for k in sizes[1:]]
    return weights, biases


def targets(rng, cost, n, k):
    if cost == "cross_entropy":
        return rng.integers(0, k, n)
    return rng.uniform(0, 1, (n, k))


def check_against_central_differences(rng, sizes, names, n, cost, l2, convention):
    """Assert δ-reference gradients match central differences; False if a ReLU kink was drawn."""
    weights, biases = random_network(rng, sizes)
    x = rng.normal(0, 1, (n, sizes[0]))
    y = targets(rng, cost, n, sizes[-1])
    kwargs = dict(cost=cost, l2=l2, l2_convention=convention, n_train=50)
    result = backprop(weights, biases, x, y, names, **kwargs)
    if "relu" in names:  # central differences straddling a kink are meaningless
        _, z = forward(weights, biases, x, names)
        if any(np.min(np.abs(z_l)) < 1e-4 for z_l, f in zip(z, names) if f == "relu"):
            return False
    numeric = central_differences(
        lambda: backprop(weights, biases, x, y, names, **kwargs).cost, weights + biases)
    analytic = result.grad_W + result.grad_b
    err = relative_error(analytic, numeric)
    # A gradient near 0 has no meaningful relative error: central differences themselves are
    # only good to rounding ε_mach·|J|/ε plus truncation ε², so accept agreement within that.
    floor = 10 * np.finfo(float).eps * max(abs(result.cost), 1.0) / 1e-6 + 1e-12
    worst = max(np.max(np.abs(a - m)) for a, m in zip(analytic, numeric))
    assert err <= 1e-6 or worst <= floor, (sizes, names, n, cost, l2, convention, err, worst)
    return True


@st.composite
def architectures(draw):
    hidden = draw(st.lists(st.integers(1, 5), min_size=1, max_size=4))
    cost = draw(st.sampled_from(COSTS))
    # softmax needs at least 2 outputs (over one logit it is constantly 1)
    sizes = ([draw(st.integers(1, 4))] + hidden
             + [draw(st.integers(2 if cost == "cross_entropy" else 1, 4))])
    names = [draw(st.sampled_from(sorted(ACTIVATIONS))) for _ in hidden]
    output = st.just("identity") if cost == "cross_entropy" else st.sampled_from(sorted(ACTIVATIONS))
    names.append(draw(output))
    n = draw(st.sampled_from([1, 2, 3, 7]))
    l2 = draw(st.sampled_from([0.0, 0.1, 1.3]))
    convention = draw(st.sampled_from(L2_CONVENTIONS))
    seed = draw(st.integers(0, 2 ** 31))
    return sizes, names, n, cost, l2, convention, seed


@settings(max_examples=25, deadline=None)
@given(architectures())
def test_delta_matches_central_differences(arch):
    sizes, names, n, cost, l2, convention, seed = arch
    assume(check_against_central_differences(np.random.default_rng(seed), sizes, names, n, cost,
                                             l2, convention))


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
@pytest.mark.parametrize("cost", COSTS)
@pytest.mark.parametrize("convention", L2_CONVENTIONS)
def test_every_activation_cost_and_convention(activation, cost, convention):
    """Every combination at least once: 2 hidden layers, batch 1 and batch 5."""
    output = "identity" if cost == "cross_entropy" else activation
    for n, seed in ((1, 0), (5, 1)):
        rng = np.random.default_rng(seed)
        for _ in range(20):  # redraw until no ReLU pre-activation sits near its kink
            if check_against_central_differences(rng, [3, 4, 3, 2], [activation] * 2 + [output],
                                                 n, cost, 0.3, convention):
                break
        else:
            pytest.fail("no kink-free draw")


def test_one_sample_document_formulas_by_hand():
    """L = 2 (input, one hidden layer, output), one sample, sigmoid, document cost."""
    rng = np.random.default_rng(3)
    W1, b1 = rng.normal(size=(3, 2)), rng.normal(size=2)
    W2, b2 = rng.normal(size=(2, 1)), rng.normal(size=1)
    x, y = rng.normal(size=(1, 3)), np.array([[0.25]])
    r = backprop([W1, W2], [b1, b2], x, y, "sigmoid")

    a1 = x
    z1 = a1 @ W1 + b1
    a2 = sigmoid(z1)
    z2 = a2 @ W2 + b2
    a3 = sigmoid(z2)
    d3 = -(y - a3) * a3 * (1 - a3)          # δ^(3) = −(y − a^(3)) ⊙ f′(z^(2)), n = 1
    d2 = (d3 @ W2.T) * a2 * (1 - a2)        # δ^(2) = (δ^(3) · W^(2)ᵀ) ⊙ f′(z^(1))
    np.testing.assert_allclose(r.delta_at(3), d3)
    np.testing.assert_allclose(r.delta_at(2), d2)
    np.testing.assert_allclose(r.grad_W_at(2), a2.T @ d3)
    np.testing.assert_allclose(r.grad_W_at(1), a1.T @ d2)
    np.testing.assert_allclose(r.grad_b_at(2), d3[0])
    np.testing.assert_allclose(r.grad_b_at(1), d2[0])
    assert r.cost == pytest.approx(0.5 * float(np.sum((y - a3) ** 2)))
    np.testing.assert_allclose(r.a_at(3), a3)
    np.testing.assert_allclose(r.z_at(1), z1)
    with pytest.raises(IndexError):
        r.delta_at(1)


def test_batch_gradient_is_mean_of_per_sample_gradients():
    """The 1/n sits in δ^(L+1): the batch gradient is the mean of the one-sample gradients."""
    rng = np.random.default_rng(4)
    weights, biases = random_network(rng, [3, 4, 2])
    x, y = rng.normal(size=(6, 3)), rng.uniform(size=(6, 2))
    batch = backprop(weights, biases, x, y, "tanh")
    singles = [backprop(weights, biases, x[i:i + 1], y[i:i + 1], "tanh") for i in range(6)]
    for l in (1, 2):
        mean = np.mean([s.grad_W_at(l) for s in singles], axis=0)
        np.testing.assert_allclose(batch.grad_W_at(l), mean)
    assert batch.cost == pytest.approx(np.mean([s.cost for s in singles]))


def test_float32_stays_float32():
    rng = np.random.default_rng(5)
    weights, biases = random_network(rng, [4, 5, 3])
    weights = [W.astype(np.float32) for W in weights]
    biases = [b.astype(np.float32) for b in biases]
    x = rng.normal(size=(8, 4)).astype(np.float32)
    for cost in COSTS:
        r = backprop(weights, biases, x, rng.integers(0, 3, 8), ("relu", "identity"), cost=cost,
                     l2=0.1, l2_convention="sklearn")
        for array in r.a + r.z + r.delta + r.grad_W + r.grad_b:
            assert array.dtype == np.float32


def test_sigmoid_is_stable():
    z = np.array([-1000.0, -50.0, 0.0, 50.0, 1000.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s = sigmoid(z)
        s32 = sigmoid(z.astype(np.float32))
    np.testing.assert_allclose(s, [0, 1 / (1 + np.exp(50)), 0.5, 1 / (1 + np.exp(-50)), 1])
    assert s32.dtype == np.float32


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_is_one_correctly_rounded_division_on_each_side(dtype):
    # 1/(1 + e) for z ≥ 0 and e/(1 + e) below, e = exp(−|z|): one rounding after e and 1 + e
    z = (np.random.default_rng(5).standard_normal(4001) * 12).astype(dtype)
    z[:3] = [0.0, -0.0, dtype(-1e-30)]
    e = np.exp(-np.abs(z))
    with np.errstate(all="ignore"):
        np.testing.assert_array_equal(sigmoid(z), np.where(z >= 0, 1 / (1 + e), e / (1 + e)))
    assert sigmoid(z).dtype == dtype


def test_activation_forms():
    rng = np.random.default_rng(6)
    weights, biases = random_network(rng, [2, 3, 3, 2])
    x = rng.normal(size=(4, 2))
    a_pair, _ = forward(weights, biases, x, ("tanh", "sigmoid"))
    a_list, _ = forward(weights, biases, x, ["tanh", "tanh", "sigmoid"])
    np.testing.assert_allclose(a_pair[-1], a_list[-1])
    a_one, z_one = forward(weights, biases, x, "relu")
    assert len(a_one) == 4 and len(z_one) == 3 and a_one[0] is not None
    # relu′(0) = 0
    assert ACTIVATIONS["relu"][1](np.array([0.0]))[0] == 0


@pytest.mark.parametrize("call, message", [
    (lambda W, b, x: backprop(W, b, x[:, :2], np.zeros((4, 2)), "tanh"), "x must be n × 3"),
    (lambda W, b, x: backprop(W, [b[0][:2], b[1]], x, np.zeros((4, 2)), "tanh"), "b^(1)"),
    (lambda W, b, x: backprop([W[0], W[0]], b, x, np.zeros((4, 2)), "tanh"), "W^(2)"),
    (lambda W, b, x: backprop(W, b, x, np.zeros((4, 2)), "softplus"), "sigmoid"),
    (lambda W, b, x: backprop(W, b, x, np.zeros((4, 2)), "tanh", cost="hinge"), "cross_entropy"),
    (lambda W, b, x: backprop(W, b, x, np.zeros((4, 2)), "tanh", l2=1, l2_convention="x"),
     "nielsen"),
    (lambda W, b, x: backprop(W, b, x, np.zeros((4, 2)), "tanh", l2=1, l2_convention="nielsen"),
     "n_train"),
    (lambda W, b, x: backprop(W, b, x, np.array([0, 1, 2, 1]), ("tanh", "identity"),
                              cost="cross_entropy"), "0..1"),
    (lambda W, b, x: backprop(W, b, x, np.array([0, 1, 1, 1]), "tanh", cost="cross_entropy"),
     "identity"),
    (lambda W, b, x: backprop(W, b, x, np.zeros((3, 2)), "tanh"), "shape (4, 2)"),
    (lambda W, b, x: backprop(W, b, x, np.zeros((4, 2)), ["tanh"] * 3), "one per layer"),
    (lambda W, b, x: backprop(W, b, x[:0], np.zeros((0, 2)), "tanh"), "x has no rows"),
    (lambda W, b, x: backprop(W, b, x[:0], np.zeros(0, int), ("tanh", "identity"),
                              cost="cross_entropy"), "x has no rows"),
])
def test_clear_errors(call, message):
    rng = np.random.default_rng(7)
    weights, biases = random_network(rng, [3, 4, 2])
    with pytest.raises(ValueError, match=re.escape(message)):
        call(weights, biases, rng.normal(size=(4, 3)))


def test_delta_network_trains_and_orders_parameters():
    rng = np.random.default_rng(8)
    x = rng.normal(size=(64, 2))
    y = (x[:, 0] * x[:, 1] > 0).astype(np.int64)
    net = DeltaNetwork.init([2, 8, 2], ("tanh", "identity"), cost="cross_entropy", seed=0,
                            l2=1e-4, l2_convention="sklearn")
    params = net.parameters()
    assert [p.shape for p in params] == [(2, 8), (8,), (8, 2), (2,)]
    assert params[0] is net.weights[0] and params[1] is net.biases[0]
    first, _ = net.loss_and_grads(x, y)
    for _ in range(300):
        J, grads = net.loss_and_grads(x, y)
        for p, g in zip(params, grads):
            p -= 0.5 * g  # w = w − α ∂J/∂w, in place
    assert J < 0.5 * first
    assert net.predict(x).shape == (64,)
    assert (net.predict(x) == y).mean() > 0.8
    assert "DeltaNetwork(sizes=[2, 8, 2]" in repr(net)


def test_never_imports_autograd():
    """delta.py and data.py load from their files alone, with autograd made unimportable."""
    import subprocess
    import sys
    from pathlib import Path
    nn_dir = Path(__file__).resolve().parent.parent / "nn"
    code = (
        "import sys, types, importlib\n"
        "sys.modules['autograd'] = None  # any 'import autograd' now fails\n"
        "package = types.ModuleType('nn')  # the folder, without nn/__init__.py's imports\n"
        f"package.__path__ = [{str(nn_dir)!r}]\n"
        "sys.modules['nn'] = package\n"
        "importlib.import_module('nn.delta')\n"
        "importlib.import_module('nn.data')\n"
        "loaded = sorted(m for m in sys.modules if m.startswith(('autograd', 'nn')))\n"
        "assert loaded == ['autograd', 'nn', 'nn.data', 'nn.delta', 'nn.fileio'], loaded\n"
        "assert sys.modules['autograd'] is None\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_delta_network_refuses_what_it_cannot_train():
    from nn.delta import DeltaNetwork
    with pytest.raises(TypeError, match="float"):
        DeltaNetwork.init([3, 2, 2], "sigmoid", dtype=int)        # would truncate the weights
    with pytest.raises(ValueError, match="at least one unit"):
        DeltaNetwork.init([3, 0, 2], "sigmoid")
    with pytest.raises(ValueError, match="l2"):
        DeltaNetwork.init([3, 2, 2], "sigmoid", l2=-1.0)
    result = DeltaNetwork.init([3, 2, 2], "sigmoid").backprop(np.ones((2, 3)), np.ones((2, 2)))
    for bad in (1.0, True):
        with pytest.raises(TypeError, match="whole number"):
            result.grad_W_at(bad)
    assert result.grad_W_at(np.int64(2)).shape == (2, 2)
    assert (result == result) is True                 # identity, not an ambiguous array test


def test_one_sample_takes_a_one_dimensional_target_row():
    from nn.delta import DeltaNetwork
    net = DeltaNetwork.init([3, 4, 2], "sigmoid")
    X, Y = np.random.default_rng(0).random((5, 3)), np.random.default_rng(1).random((5, 2))
    one, row = net.backprop(X[0], Y[0]), net.backprop(X[:1], Y[:1])
    assert one.cost == row.cost
    np.testing.assert_array_equal(one.grad_W_at(1), row.grad_W_at(1))
