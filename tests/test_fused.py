"""nn.fused: a dense chain's step and Adam's update in one compiled call, the replay's numbers."""
from functools import partial

import numpy as np
import pytest

import nn
from autograd import Tensor, kernels, trace
from nn.optim import SGD, Adam
from nn.train import fit

import numba  # noqa: E402  (install_requires: the compiled path is tested, never skipped)

NUMBA_VERSION = numba.__version__


@pytest.fixture(autouse=True)
def compiled_kernels(monkeypatch):
    """The compiled loops for work of every size (these data sets are small)."""
    from autograd import _compiled
    monkeypatch.setattr(kernels, "_loaded", _compiled)


def _data(dtype, n=530, d=40, k=4, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, d)).astype(dtype), rng.integers(0, k, n)


def _both(sizes, dtype=np.float32, X=None, y=None, **kw):
    """fit with the fused step and without it, from the same start: (history, weights, grads)
    of each."""
    if X is None:
        X, y = _data(dtype, k=sizes[-1])
    out = []
    for fuse in (True, False):
        model = nn.MLP(X.shape[1], sizes, activation="relu", dtype=dtype, seed=1)
        settings = dict(cost="cross_entropy", batch_size=64, epochs=2, seed=3, progress=False)
        settings.update(kw)
        h = fit(model, X, y, fuse=fuse, **settings)
        out.append((h, [p.data.copy() for p in model.parameters()],
                    [None if p.grad is None else p.grad.copy() for p in model.parameters()]))
    return out


def _same(a, b):
    (h1, w1, g1), (h2, w2, g2) = a, b
    assert h1.loss == h2.loss and h1.accuracy == h2.accuracy
    assert h1.val_loss == h2.val_loss and h1.val_score == h2.val_score
    for x, y in zip(w1, w2):
        np.testing.assert_array_equal(x, y)
    for x, y in zip(g1, g2):
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("sizes", [[3], [16, 3], [12, 9, 5]])
@pytest.mark.parametrize("l2", [0.0, 1e-3])
@pytest.mark.parametrize("optimizer", [None, partial(SGD, lr=0.05),
                                       partial(SGD, lr=0.05, momentum=0.9, nesterov=True)])
def test_the_fused_step_trains_to_the_replays_numbers_bit_for_bit(dtype, sizes, l2, optimizer):
    fused, replayed = _both(sizes, dtype, l2=l2, l2_convention="sklearn", optimizer=optimizer)
    _same(fused, replayed)
    # 530 rows in batches of 64: 8 of 64 and one of 18 per epoch; the first batch of each size
    # is traced, every later one fused (the second once checked against the replay first)
    assert fused[0].fused == 2 * 9 - 2 and replayed[0].fused == 0
    assert fused[0].updates == replayed[0].updates == [9, 18]


def test_early_stopping_validation_and_no_shuffle_give_the_same_numbers():
    X, y = _data(np.float32, n=700)
    _same(*_both([10, 4], X=X, y=y, early_stopping=True, n_iter_no_change=1, epochs=4,
                 l2=1e-4, l2_convention="ufldl"))
    _same(*_both([10, 4], X=X, y=y, shuffle=False, drop_last=True))


def test_an_optimiser_object_passed_in_keeps_its_state_across_fits():
    X, y = _data(np.float32)
    weights = []
    for fuse in (True, False):
        model = nn.MLP(40, [8, 4], activation="relu", dtype=np.float32, seed=2)
        optimizer = Adam(model.parameters(), lr=0.01)
        for seed in (1, 2):
            fit(model, X, y, cost="cross_entropy", optimizer=optimizer, batch_size=50,
                epochs=1, seed=seed, progress=False, fuse=fuse)
        weights.append([p.data.copy() for p in model.parameters()])
        assert optimizer.t == 2 * 11 and optimizer.steps == [22] * 4
    for a, b in zip(*weights):
        np.testing.assert_array_equal(a, b)


def test_sgds_schedule_is_followed_epoch_by_epoch():
    X, y = _data(np.float32)
    _same(*_both([10, 4], X=X, y=y, epochs=3, optimizer=partial(
        SGD, lr=0.2, momentum=0.5, schedule="invscaling", power_t=0.5)))


def test_an_sgd_velocity_replaced_between_epochs_is_followed():
    X, y = _data(np.float32)
    results = []
    for fuse in (True, False):
        model = nn.MLP(40, [8, 4], activation="relu", dtype=np.float32, seed=2)
        optimizer = SGD(model.parameters(), lr=0.1, momentum=0.9)

        def reset(history):
            optimizer.velocities = [np.zeros_like(v) for v in optimizer.velocities]
        h = fit(model, X, y, cost="cross_entropy", optimizer=optimizer, batch_size=64,
                epochs=3, progress=False, callback=reset, fuse=fuse)
        results.append((h.loss, [p.data.copy() for p in model.parameters()]))
    assert results[0][0] == results[1][0]
    for a, b in zip(results[0][1], results[1][1]):
        np.testing.assert_array_equal(a, b)


def test_a_callback_that_replaces_a_weight_array_is_followed():
    X, y = _data(np.float32)
    results = []
    for fuse in (True, False):
        model = nn.MLP(40, [8, 4], activation="relu", dtype=np.float32, seed=2)
        W = model.parameters()[0]

        def halve(history):
            grads.append([p.grad.copy() for p in model.parameters()])
            W.data = W.data * np.float32(0.5)       # a new array, between epochs
        grads = []
        h = fit(model, X, y, cost="cross_entropy", batch_size=64, epochs=3, seed=0,
                progress=False, callback=halve, fuse=fuse)
        assert h.fused > 0 if fuse else h.fused == 0
        results.append((h.loss, [p.data.copy() for p in model.parameters()], grads))
    assert results[0][0] == results[1][0]
    for a, b in zip(results[0][2], results[1][2]):    # the callback sees the last gradients
        for x, y in zip(a, b):
            np.testing.assert_array_equal(x, y)
    for a, b in zip(results[0][1], results[1][1]):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("case", ["sigmoid", "own optimiser", "mse", "no trace",
                                  "one row batches", "identity between layers"])
def test_other_steps_keep_the_replay(case):
    X, y = _data(np.float64, n=120)
    activation = {"sigmoid": "sigmoid", "identity between layers": "identity"}.get(case, "relu")
    model = nn.MLP(40, [6, 4], activation=activation, dtype=np.float64, seed=0)
    kw = dict(cost="cross_entropy", batch_size=30, epochs=1, progress=False)
    if case == "own optimiser":
        class OwnSGD(SGD):          # (a subclass may step otherwise: it keeps the replay)
            pass
        kw["optimizer"] = OwnSGD(model.parameters(), lr=0.1)
    elif case == "mse":
        kw["cost"] = "mse"
        model = nn.MLP(40, [6, 4], activation="relu", output_activation="sigmoid",
                       dtype=np.float64, seed=0)
    elif case == "no trace":
        kw["trace"] = False
    elif case == "one row batches":
        X, y = X[:20], y[:20]
        kw["batch_size"] = 1
    h = fit(model, X, y, **kw)
    assert h.fused == 0 and h.updates[-1] > 0


def test_a_label_out_of_range_gives_the_replays_error():
    X, y = _data(np.float32, n=300)
    y[250] = 7
    for fuse in (True, False):
        model = nn.MLP(40, [8, 4], activation="relu", dtype=np.float32, seed=2)
        with pytest.raises(ValueError) as error:
            fit(model, X, y, cost="cross_entropy", batch_size=50, epochs=1, shuffle=False,
                progress=False, fuse=fuse)
        assert "7" in str(error.value)


def test_a_batch_the_check_finds_different_keeps_the_replay(monkeypatch):
    from nn import fused
    monkeypatch.setattr(fused._Entry, "matches_replay", lambda *args: False)
    X, y = _data(np.float32)
    model = nn.MLP(40, [8, 4], activation="relu", dtype=np.float32, seed=2)
    h = fit(model, X, y, cost="cross_entropy", batch_size=64, epochs=2, progress=False)
    assert h.fused == 0 and h.replayed > 0


def test_native_functions_are_numpys_gemm_exp_and_log():
    kernels._load()
    from autograd import _compiled
    rng = np.random.default_rng(5)
    for dtype in (np.float32, np.float64):
        gemm, exp, exp_data, log, log_data = kernels.native_functions(dtype)
        a, b = rng.standard_normal((7, 300)).astype(dtype), rng.standard_normal((300, 11))
        b = b.astype(dtype)
        c = np.empty((7, 11), dtype)
        _compiled.gemm(gemm, False, False, a, b, c)
        np.testing.assert_array_equal(c, a @ b)
        x = rng.standard_normal(1001).astype(dtype) * 10
        out, scratch = np.empty_like(x), np.empty(5, np.intp)
        _compiled.ufunc_loop(exp, exp_data, x, out, scratch)
        np.testing.assert_array_equal(out, np.exp(x))
        _compiled.ufunc_loop(log, log_data, np.abs(x), out, scratch)
        np.testing.assert_array_equal(out, np.log(np.abs(x)))
    assert kernels.native_functions(np.float16) is None


def test_a_ufunc_loop_that_differs_from_numpy_is_not_used(monkeypatch):
    kernels._load()
    kernels.native_functions.cache_clear()
    wrong = kernels._ufunc_loop(np.sqrt, np.dtype(np.float32))     # not exp's numbers
    monkeypatch.setattr(kernels, "_ufunc_loop",
                        lambda ufunc, dtype: wrong if ufunc is np.exp else (0, 0))
    try:
        assert kernels.native_functions(np.float32) is None
    finally:
        kernels.native_functions.cache_clear()


def _plan(fn, *inputs):
    traced = trace(fn)
    traced(*inputs)
    return next(iter(traced.plans.values()))


def test_the_plan_names_a_dense_chains_layers():
    X, y = _data(np.float64, n=20)
    model = nn.MLP(40, [6, 5, 4], activation="relu", dtype=np.float64, seed=0)
    params = model.parameters()

    def step(x, labels):
        h = model(Tensor(x))
        return h.softmax_cross_entropy(labels), h
    plan = _plan(step, X, y)
    found = [(plan.params[w], plan.params[b]) for w, b in plan.dense_chain]
    assert [(id(w), id(b)) for w, b in found] == [(id(params[2 * l]), id(params[2 * l + 1]))
                                                  for l in range(3)]


def test_anything_beside_the_chain_is_not_a_dense_chain():
    X, y = _data(np.float64, n=20)
    model = nn.MLP(40, [6, 4], activation="relu", dtype=np.float64, seed=0)

    def scaled(x, labels):                  # one op more than the chain
        h = model(Tensor(x)) * 2.0
        return h.softmax_cross_entropy(labels), h

    def cost_only(x, labels):               # h not handed out
        return model(Tensor(x)).softmax_cross_entropy(labels)

    def tanh_between(x, labels):
        W1, b1, W2, b2 = model.parameters()
        h = (Tensor(x) @ W1 + b1).tanh() @ W2 + b2
        return h.softmax_cross_entropy(labels), h
    for fn in (scaled, cost_only, tanh_between):
        assert _plan(fn, X, y).dense_chain is None


def test_the_warm_up_runs_the_fused_step_in_both_dtypes():
    from nn import fused
    assert fused.warm() == 2 * 3      # per dtype: 4 batches, the first traced


@pytest.mark.parametrize("label_dtype", [np.uint8, ">i4", np.int32])
def test_labels_of_another_integer_dtype_train_fused_to_the_same_numbers(label_dtype):
    X, y = _data(np.float32)
    fused, replayed = _both([8, 4], X=X, y=y.astype(label_dtype))
    _same(fused, replayed)
    assert fused[0].fused > 0
    _same(fused, _both([8, 4], X=X, y=y)[0])        # the same classes as int64 labels
