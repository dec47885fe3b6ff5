"""nn.train.fit: the three descents, three kinds of model on one loop, scikit-learn as a witness,
argument checks before any update, checkpoints."""
import functools
import os
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier

import nn
from nn.data import make_moons
from nn.delta import DeltaNetwork
from nn.optim import SGD, Adam, ArrayParameter
from nn.train import History, accuracy, fit, predict


def _moons(n=100):
    return make_moons(n, noise=0.1, seed=0)


def _three_classes(n=60, d=4, seed=3):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    y = np.arange(n) % 3
    X[:, 0] += 1.5 * y                            # learnable, but not at once
    return X, y


def _delta_twin(mlp, cost, **kwargs):
    """A DeltaNetwork with the MLP's weights and activations."""
    state = mlp.state_dict()
    L = len(mlp.layers)
    return DeltaNetwork([state[f"layers.{l}.W"].copy() for l in range(L)],
                        [state[f"layers.{l}.b"].copy() for l in range(L)],
                        mlp.activations, cost=cost, **kwargs)


def _assert_same_weights(a, b, atol):
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        np.testing.assert_allclose(sa[k], sb[k], rtol=0, atol=atol, err_msg=k)


# -- the three descents --------------------------------------------------------------------------

@pytest.mark.parametrize("batch_size", [None, 10, 1])
def test_full_mini_and_stochastic_descent_reduce_the_loss(batch_size):
    X, y = _moons()
    model = nn.MLP(2, [8, 1], activation="tanh", output_activation="sigmoid", seed=0)
    before = nn.document_cost(model(X), y.reshape(-1, 1).astype(float)).data
    history = fit(model, X, y, optimizer=functools.partial(SGD, lr=0.5), batch_size=batch_size,
                  epochs=15, progress=False)
    after = nn.document_cost(model(X), y.reshape(-1, 1).astype(float)).data
    assert after < 0.8 * before
    assert history.loss[-1] < history.loss[0]
    assert history.updates[-1] == 15 * -(-100 // (batch_size or 100))
    assert history.accuracy[-1] > 0.75


# -- three kinds of model, one loop --------------------------------------------------------------

def test_value_mlp_and_tensor_mlp_give_the_same_history():
    X, y = _moons(24)
    tensor_net = nn.MLP(2, [4, 1], activation="tanh", output_activation="sigmoid", seed=1)
    value_net = nn.ValueMLP(2, [4, 1], activation="tanh", output_activation="sigmoid", seed=7)
    value_net.load_state_dict(tensor_net.state_dict())
    settings = dict(optimizer=functools.partial(SGD, lr=0.3), l2=1e-2, batch_size=None,
                    epochs=3, progress=False)
    ht = fit(tensor_net, X, y, **settings)
    hv = fit(value_net, X, y, **settings)
    for name in ("loss", "accuracy", "lr", "updates"):
        np.testing.assert_allclose(getattr(hv, name), getattr(ht, name), rtol=0, atol=1e-10)
    _assert_same_weights(value_net, tensor_net, 1e-10)


@pytest.mark.parametrize("cost, output, l2, convention", [
    ("document", "sigmoid", 1e-3, "ufldl"),
    ("mse", "identity", 0.5, "nielsen"),
    ("cross_entropy", "identity", 1e-2, "sklearn"),
])
def test_delta_reference_on_the_same_loop_gives_the_same_weights(cost, output, l2, convention):
    X, y = _three_classes()
    mlp = nn.MLP(4, [6, 5, 3], activation="tanh", output_activation=output, seed=2)
    delta = _delta_twin(mlp, cost, l2=l2, l2_convention=convention)
    settings = dict(optimizer=functools.partial(SGD, lr=0.2, momentum=0.9, nesterov=True),
                    batch_size=16, epochs=6, seed=4, progress=False)
    hm = fit(mlp, X, y, cost=cost, l2=l2, l2_convention=convention, **settings)
    hd = fit(delta, X, y, **settings)       # cost and L2 taken from the DeltaNetwork
    np.testing.assert_allclose(hd.loss, hm.loss, rtol=0, atol=1e-10)
    for l in range(3):
        np.testing.assert_allclose(delta.weights[l], mlp.layers[l].W.data, rtol=0, atol=1e-10)
        np.testing.assert_allclose(delta.biases[l], mlp.layers[l].b.data, rtol=0, atol=1e-10)
    assert delta.n_train is None            # the loop's n_train for 'nielsen' is not left behind


def test_delta_reference_settings_must_match():
    X, y = _three_classes()
    delta = DeltaNetwork.init([4, 5, 3], ["relu", "identity"], cost="cross_entropy")
    with pytest.raises(ValueError, match="cost='document'.*cost='cross_entropy'"):
        fit(delta, X, y, cost="document", progress=False)


def test_an_optimizer_over_array_parameters_drives_the_delta_reference():
    X, y = _three_classes()
    delta = DeltaNetwork.init([4, 5, 3], ["relu", "identity"], cost="cross_entropy")
    W1 = delta.weights[0]
    opt = SGD(ArrayParameter.wrap(delta.parameters()), lr=0.1)
    before = W1.copy()
    history = fit(delta, X, y, optimizer=opt, epochs=2, progress=False)
    assert delta.weights[0] is W1 and not np.array_equal(W1, before)
    assert history.updates == [1, 2]


def test_an_optimizer_over_other_parameters_is_refused():
    X, y = _moons(20)
    model, other = nn.MLP(2, [3, 1], seed=0), nn.MLP(2, [3, 1], seed=1)
    with pytest.raises(ValueError, match="does not hold this model's parameters"):
        fit(model, X, y, optimizer=SGD(other.parameters()), progress=False)


# -- scikit-learn as a witness ---------------------------------------------------------------------

def _sklearn_twin(model, X, y, epochs, **params):
    """MLPClassifier started from ``model``'s weights: fit once for the shapes, overwrite
    coefs_/intercepts_ and reset the epoch bookkeeping (t_, loss curve, no-improvement count),
    then fit again with warm_start, ``epochs`` epochs over the rows in order."""
    settings = dict(batch_size=20, shuffle=False, random_state=0, tol=0, n_iter_no_change=1000)
    settings.update(params)
    clf = MLPClassifier(hidden_layer_sizes=(model.sizes[1],), max_iter=1, **settings)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X, y)
        state = model.state_dict()
        clf.coefs_ = [state[f"layers.{l}.W"].copy() for l in range(2)]
        clf.intercepts_ = [state[f"layers.{l}.b"].copy() for l in range(2)]
        clf.t_, clf.loss_curve_, clf._no_improvement_count, clf.best_loss_ = 0, [], 0, np.inf
        clf.set_params(warm_start=True, max_iter=epochs)
        clf.fit(X, y)
    return clf


def _assert_tracks(model, clf, atol):
    for l in range(2):
        np.testing.assert_allclose(model.layers[l].W.data, clf.coefs_[l], rtol=0, atol=atol)
        np.testing.assert_allclose(model.layers[l].b.data, clf.intercepts_[l], rtol=0, atol=atol)


def test_adam_tracks_sklearn_mlpclassifier():
    X, y = _three_classes()
    model = nn.MLP(4, [5, 3], activation="relu", output_activation="identity", seed=0)
    clf = _sklearn_twin(model, X, y, 3, solver="adam", alpha=1e-4)
    history = fit(model, X, y, cost="cross_entropy", l2=1e-4, l2_convention="sklearn",
                  batch_size=20, shuffle=False, epochs=3, progress=False)   # Adam by default
    _assert_tracks(model, clf, 1e-6)
    np.testing.assert_allclose(history.loss, clf.loss_curve_, rtol=0, atol=1e-6)
    assert history.updates == [3, 6, 9]


@pytest.mark.parametrize("schedule, tol, n_iter_no_change, lrs", [
    ("invscaling", 0.0, 1000, [0.05] + [0.05 / (60 * e + 1) ** 0.5 for e in range(1, 5)]),
    # tol=10: only epoch 1 improves (on +inf); the no-improvement count exceeds 1 after
    # epochs 3 and 5, and each time 'adaptive' divides α by 5
    ("adaptive", 10.0, 1, [0.05, 0.05, 0.05, 0.01, 0.01]),
])
def test_sgd_schedules_track_sklearn_mlpclassifier(schedule, tol, n_iter_no_change, lrs):
    X, y = _three_classes()
    model = nn.MLP(4, [5, 3], activation="relu", output_activation="identity", seed=0)
    clf = _sklearn_twin(model, X, y, 5, solver="sgd", alpha=1e-3, learning_rate_init=0.05,
                        learning_rate=schedule, momentum=0.9, nesterovs_momentum=True, tol=tol,
                        n_iter_no_change=n_iter_no_change)
    opt = functools.partial(SGD, lr=0.05, momentum=0.9, nesterov=True, schedule=schedule)
    history = fit(model, X, y, cost="cross_entropy", l2=1e-3, l2_convention="sklearn",
                  optimizer=opt, batch_size=20, shuffle=False, epochs=5, tol=tol,
                  n_iter_no_change=n_iter_no_change, progress=False)
    np.testing.assert_allclose(history.lr, lrs, rtol=1e-15)
    assert clf.n_iter_ == 5
    np.testing.assert_allclose(history.loss, clf.loss_curve_, rtol=0, atol=1e-10)
    _assert_tracks(model, clf, 1e-10)


# -- early stopping, validation, history ------------------------------------------------------------

def test_early_stopping_stops_and_restores_the_best_weights():
    X, y = _moons()
    model = nn.MLP(2, [8, 2], seed=0)
    snapshots = []
    # tol=1: after epoch 1 (better than −inf) no epoch can beat the best by 1, so the count
    # grows by one per epoch and exceeds n_iter_no_change=2 at epoch 4; the best is epoch 1.
    history = fit(model, X, y, cost="cross_entropy", early_stopping=True, n_iter_no_change=2,
                  tol=1.0, epochs=20, batch_size=10, progress=False,
                  callback=lambda h: snapshots.append(model.state_dict()))
    assert history.epochs == 4 and history.stopped == "early_stopping"
    assert history.best_epoch == 1
    for k, v in snapshots[0].items():
        np.testing.assert_array_equal(model.state_dict()[k], v)


def test_history_lengths():
    X, y = _moons()
    model = nn.MLP(2, [8, 2], seed=0)
    history = fit(model, X, y, cost="cross_entropy", validation_fraction=0.2, batch_size=16,
                  epochs=4, progress=False)
    assert isinstance(history, History) and history.epochs == 4
    for name in ("loss", "accuracy", "val_loss", "val_accuracy", "val_score", "lr", "seconds",
                 "updates"):
        assert len(getattr(history, name)) == 4, name
    assert history.updates == [5, 10, 15, 20]        # 80 training rows in batches of 16
    assert history.stopped is None and "epochs=4" in repr(history)

    regression = nn.MLP(2, [4, 1], seed=0)
    target = X[:, 0] * 0.5
    h = fit(regression, X, target, cost="mse", epochs=2, progress=False)
    assert len(h.loss) == 2 and h.accuracy == [] and h.val_loss == [] and h.val_score == []
    h = fit(regression, X, target, cost="mse", epochs=2, validation_fraction=0.3, progress=False)
    assert len(h.val_score) == 2 and h.val_accuracy == []           # R² for regression


def test_accuracy_and_predict():
    X, y = _moons()
    model = nn.MLP(2, [8, 2], seed=0)
    fit(model, X, y, cost="cross_entropy", optimizer=functools.partial(Adam, lr=0.05),
        epochs=60, progress=False)
    labels = predict(model, X)
    assert labels.shape == (100,) and set(labels) <= {0, 1}
    assert accuracy(model, X, y) == np.mean(labels == y) > 0.8
    assert accuracy(model, X, np.eye(2)[y]) == accuracy(model, X, y)


# -- bad input: every error before the first update -------------------------------------------------

def _bad(**changes):
    X, y = _moons(30)
    args = dict(X=X, y=y, cost="cross_entropy", batch_size=None)
    args.update(changes)
    return args


@pytest.mark.parametrize("args, message", [
    (_bad(X=np.zeros((30, 3))), "3 features per row, expected 2"),
    (_bad(X=np.zeros(30)), "must be 2-D"),
    (_bad(y=np.arange(30) % 5), r"integers in 0\.\.1.*0\.\.4"),
    (_bad(y=np.full(30, 0.5)), r"integers in 0\.\.1"),
    (_bad(X=np.where(np.arange(60).reshape(30, 2) == 7, np.nan, 0.0)), "X contains 1 NaN or inf"),
    (_bad(y=np.r_[np.inf, np.zeros(29)], cost="mse"), "y contains 1 NaN or inf"),
    (_bad(batch_size=0), "batch_size"),
    (_bad(batch_size=-4), "batch_size"),
    (_bad(batch_size=2.5), "batch_size"),
    (_bad(y=np.zeros(29, int)), "y has 29 rows but X has 30"),
    (_bad(cost="hinge"), "unknown cost 'hinge'"),
    (_bad(l2=1e-3, l2_convention="keras"), "unknown l2_convention 'keras'"),
    (_bad(l2=-1.0), "l2 must be"),
    (_bad(epochs=0), "epochs"),
    (_bad(validation_fraction=1.5), "validation_fraction"),
    (_bad(validation_fraction=0.01), "leaves 1 validation"),
    (_bad(progress="yes"), "progress"),
])
def test_bad_input_is_refused_before_any_update(args, message):
    model = nn.MLP(2, [4, 2], seed=0)
    before = model.state_dict()
    with pytest.raises(ValueError, match=message):
        fit(model, args.pop("X"), args.pop("y"), **args)
    for k, v in before.items():
        np.testing.assert_array_equal(model.state_dict()[k], v)


def test_batch_size_above_the_rows_is_clipped_with_a_warning():
    # as scikit-learn's solvers: one full batch per epoch, and a warning that says so
    X, y = _moons(20)
    full, big = nn.MLP(2, [4, 2], seed=0), nn.MLP(2, [4, 2], seed=0)
    fit(full, X, y, batch_size=20, epochs=2, progress=False, shuffle=False)
    with pytest.warns(UserWarning, match="larger than the 20 training rows"):
        history = fit(big, X, y, batch_size=50, epochs=2, progress=False, shuffle=False)
    assert history.updates == [1, 2]                  # one update per epoch
    for k, v in full.state_dict().items():
        np.testing.assert_array_equal(big.state_dict()[k], v)


def test_cross_entropy_needs_logits():
    X, y = _moons(20)
    model = nn.MLP(2, [4, 2], output_activation="sigmoid", seed=0)
    with pytest.raises(ValueError, match="logits"):
        fit(model, X, y, cost="cross_entropy", progress=False)


def test_unknown_model_is_a_type_error():
    with pytest.raises(TypeError, match="fit trains"):
        fit(object(), np.zeros((2, 2)), np.zeros(2))


# -- checkpoints --------------------------------------------------------------------------------------

def test_interrupted_run_leaves_the_epoch_2_model(tmp_path):
    X, y = _moons()
    model = nn.MLP(2, [8, 2], seed=0)
    path = tmp_path / "run" / "model.npz"
    at_epoch_2 = {}

    def interrupt(history):
        if history.epochs == 2:
            at_epoch_2.update(model.state_dict())
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fit(model, X, y, cost="cross_entropy", batch_size=10, epochs=10, checkpoint=path,
            callback=interrupt, progress=False)
    assert os.listdir(path.parent) == ["model.npz"]          # no temporary files left
    loaded = nn.MLP(2, [8, 2], seed=99).load(path)
    for k, v in at_epoch_2.items():
        np.testing.assert_array_equal(loaded.state_dict()[k], v)


def test_checkpoint_of_a_delta_network_loads_into_an_mlp(tmp_path):
    X, y = _three_classes()
    delta = DeltaNetwork.init([4, 5, 3], ["relu", "identity"], cost="cross_entropy")
    fit(delta, X, y, epochs=2, checkpoint=tmp_path / "delta.npz", progress=False)
    mlp = nn.MLP(4, [5, 3]).load(tmp_path / "delta.npz")
    np.testing.assert_array_equal(mlp.layers[1].W.data, delta.weights[1])


def test_progress_bar_can_be_forced_on(capsys):
    X, y = _moons(20)
    fit(nn.MLP(2, [3, 2], seed=0), X, y, cost="cross_entropy", epochs=2, batch_size=5,
        progress=True)
    assert "epoch 2/2" in capsys.readouterr().err


def test_a_float32_training_step_stays_float32_and_skips_the_input_gradient():
    """Every node of the step's graph, every gradient the backward pass forms, the L2 term and
    Adam's state are float32: no silent float64 anywhere. X needs no gradient, so none is made
    for it (no d·Wᵀ matmul for the first layer)."""
    import autograd
    from autograd import Tensor
    from nn import losses
    rng = np.random.default_rng(0)
    model = nn.MLP(12, [6, 3], activation="relu", dtype=np.float32, seed=0)
    x = Tensor(rng.random((8, 12), dtype=np.float32))
    y = rng.integers(0, 3, 8)
    J = losses.softmax_cross_entropy(model(x), y)
    nodes = autograd.topo_order(J)
    assert {n.data.dtype for n in nodes} == {np.dtype(np.float32)}
    needing = [n for n in nodes if n.requires_grad]
    assert all(n is not x for n in needing)
    grads = autograd.gradients(J, needing)
    assert {g.dtype for g in grads} == {np.dtype(np.float32)}
    J.backward()
    assert x.grad is None
    value = losses.add_l2(J, model.weights(), 1e-4, "sklearn", batch=8)
    assert value.dtype == np.float32
    opt = Adam(model.parameters())
    opt.step()
    assert {p.data.dtype for p in model.parameters()} == {np.dtype(np.float32)}
    assert {a.dtype for a in opt.ms + opt.vs} == {np.dtype(np.float32)}
    history = fit(model, x.data, y, cost="cross_entropy", l2=1e-4, l2_convention="sklearn",
                  batch_size=4, epochs=2, progress=False)
    assert all(isinstance(v, float) for v in history.loss)
    assert {p.data.dtype for p in model.parameters()} == {np.dtype(np.float32)}


def test_value_network_given_a_batch_says_to_call_it_per_row():
    net = nn.ValueMLP(3, [4, 1])
    for batch in (np.ones((5, 3)), [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]):
        with pytest.raises(ValueError, match="once per row"):
            net(batch)
    assert net(np.ones(3))[0].data == net([1.0, 1.0, 1.0])[0].data


def test_save_and_load_the_same_name_without_npz(tmp_path):
    model = nn.MLP(3, [4, 2], seed=1)
    model.save(tmp_path / "model")                     # writes model.npz, as np.savez does
    assert (tmp_path / "model.npz").is_file()
    loaded = nn.MLP(3, [4, 2], seed=2).load(tmp_path / "model")
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(loaded.state_dict()[k], v)
    with pytest.raises(nn.ModelFileError, match="no such model file"):
        nn.MLP(3, [4, 2]).load(tmp_path / "other")
    (tmp_path / "cut.npz").write_bytes((tmp_path / "model.npz").read_bytes()[:200])
    with pytest.raises(nn.ModelFileError, match="truncated"):
        nn.MLP(3, [4, 2]).load(tmp_path / "cut.npz")


def test_drop_last_skips_the_short_last_batch():
    X, y = _moons(20)
    seen = []
    model = nn.MLP(2, [4, 2], seed=0)
    opt = nn.SGD(model.parameters(), lr=0.1)
    step = opt.step

    def counting_step():
        seen.append(len(model.layers[0].W.grad))
        step()
    opt.step = counting_step
    history = fit(model, X, y, batch_size=6, epochs=2, optimizer=opt, drop_last=True,
                  progress=False)
    assert history.updates == [3, 6]                 # 20 rows: 3 batches of 6, 2 rows left out
    assert len(seen) == 6
    with pytest.raises(TypeError, match="drop_last"):
        fit(model, X, y, drop_last="yes", progress=False)


def test_a_shared_submodule_is_one_set_of_parameters():
    from nn.module import Module
    from nn.tensor_nets import Linear

    class Tied(Module):
        def __init__(self):
            self.a = Linear(2, 2)
            self.b = self.a

    tied = Tied()
    assert [name for name, _ in tied.named_parameters()] == ["a.W", "a.b"]
    W = tied.a.W
    before = W.data.copy()
    W.grad, tied.a.b.grad = np.ones((2, 2)), np.ones(2)
    nn.SGD(tied.parameters(), lr=0.1).step()
    np.testing.assert_allclose(W.data, before - 0.1)             # stepped once, not twice


@pytest.mark.parametrize("make", [lambda: nn.MLP(3, [4, 2]), lambda: nn.ValueMLP(3, [4, 2])])
def test_a_bad_state_leaves_the_model_unchanged(make):
    model = make()
    before = model.state_dict()
    bad = {k: (np.full(a.shape, "abc") if k == "layers.1.W" else a + 100)
           for k, a in before.items()}
    with pytest.raises(nn.ModelFileError, match="does not fit"):
        model.load_state_dict(bad)
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v, before[k])
    with pytest.raises(nn.ModelFileError, match="mapping"):
        model.load_state_dict([1, 2])


def test_fit_with_soft_targets_agrees_across_engines_and_the_delta_reference():
    X, y = _moons(30)
    T = np.full((30, 2), 0.05)
    T[np.arange(30), y] = 0.95                          # label smoothing
    tensor = nn.MLP(2, [4, 2], seed=3)
    value = nn.ValueMLP(2, [4, 2], seed=3)
    value.load_state_dict(tensor.state_dict())
    delta = _delta_twin(tensor, "cross_entropy")
    kw = dict(cost="cross_entropy", epochs=3, batch_size=10, shuffle=False, progress=False,
              optimizer=lambda params: nn.SGD(params, lr=0.5))
    histories = [fit(m, X, T, **kw) for m in (tensor, value)]
    histories.append(fit(delta, X, T, **{k: v for k, v in kw.items() if k != "cost"}))
    for h in histories[1:]:
        np.testing.assert_allclose(h.loss, histories[0].loss, rtol=1e-12)
    assert histories[0].accuracy                        # against each row's likeliest class
    with pytest.raises(ValueError, match="probabilities"):
        fit(nn.MLP(2, [4, 2]), X, T * 2, cost="cross_entropy", progress=False)


def test_frozen_parameters_are_saved_and_loaded(tmp_path):
    """As PyTorch's state_dict: requires_grad=False freezes a parameter, it does not drop it
    from the model's state (a saved file used to lack it and not load into a fresh model)."""
    import nn
    model = nn.MLP(3, [4, 2], seed=1)
    model.layers[0].W.requires_grad = False
    assert "layers.0.W" in model.state_dict()
    model.save(tmp_path / "m.npz")
    fresh = nn.MLP(3, [4, 2], seed=2)
    fresh.load(tmp_path / "m.npz")
    np.testing.assert_array_equal(fresh.layers[0].W.data, model.layers[0].W.data)
    before = model.layers[0].W.data.copy()
    X, y = np.random.default_rng(0).random((8, 3)), np.arange(8) % 2
    nn.fit(model, X, y, cost="cross_entropy", epochs=2, progress=False)
    np.testing.assert_array_equal(model.layers[0].W.data, before)      # frozen: not stepped


def test_a_checkpoint_that_cannot_be_written_fails_before_training(tmp_path):
    import nn
    model = nn.MLP(3, [4, 2], seed=1)
    before = model.layers[0].W.data.copy()
    X, y = np.random.default_rng(0).random((8, 3)), np.arange(8) % 2
    (tmp_path / "afile").write_text("x")
    for path in ("/proc/ck.npz", tmp_path / "afile" / "ck.npz", tmp_path):
        with pytest.raises(ValueError, match="checkpoint"):
            nn.fit(model, X, y, cost="cross_entropy", epochs=1, checkpoint=path,
                   progress=False)
    np.testing.assert_array_equal(model.layers[0].W.data, before)    # no update was made


def test_a_model_file_declaring_a_vast_array_is_a_model_file_error(tmp_path):
    import io
    import zipfile
    import nn
    header = np.lib.format.header_data_from_array_1_0(np.zeros(1))
    header["shape"] = (2 ** 40,)
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, header)
    with zipfile.ZipFile(tmp_path / "vast.npz", "w") as z:
        z.writestr("layers.0.W.npy", buffer.getvalue() + bytes(8))
    with pytest.raises(nn.ModelFileError, match="vast.npz"):
        nn.MLP(3, [4, 2]).load(tmp_path / "vast.npz")


def test_activation_lists_per_hidden_layer_and_aliases_in_init():
    import nn
    from nn.init import init_layer
    net = nn.ValueMLP(2, [3, 1], activation=["tanh"], output_activation="sigmoid")
    assert [layer.activation for layer in net.layers] == ["tanh", "sigmoid"]
    assert nn.MLP(2, [3, 1], activation=["tanh", "sigmoid"]).activations == ["tanh", "sigmoid"]
    with pytest.raises(ValueError, match="output_activation is 'sigmoid'"):
        nn.MLP(2, [3, 1], activation=["tanh", "tanh"], output_activation="sigmoid")
    W, _ = init_layer("glorot", 10, 10, np.random.default_rng(0), "logistic")
    assert np.abs(W).max() <= np.sqrt(2 / 20)              # logistic is sigmoid: gain 2


def test_an_optimizer_holding_the_delta_parameters_in_another_order_trains_the_same():
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(8, 3)), rng.random((8, 3))
    a = DeltaNetwork.init([3, 3, 3], "sigmoid")                    # W^(1), W^(2) both 3 × 3
    b = DeltaNetwork.init([3, 3, 3], "sigmoid")
    fit(a, X, Y, optimizer=SGD(ArrayParameter.wrap(a.parameters()), lr=0.5), epochs=3,
        progress=False)
    W1, b1, W2, b2 = b.parameters()
    fit(b, X, Y, optimizer=SGD(ArrayParameter.wrap([W2, b2, W1, b1]), lr=0.5), epochs=3,
        progress=False)
    for p, q in zip(a.parameters(), b.parameters()):
        np.testing.assert_array_equal(p, q)


def test_a_checkpoint_whose_npz_file_is_a_folder_fails_before_training(tmp_path):
    X, y = _moons(20)
    (tmp_path / "best.npz").mkdir()                 # checkpoint="best" writes best.npz
    model = nn.MLP(2, [3, 2], seed=0)
    before = model.layers[0].W.data.copy()
    with pytest.raises(ValueError, match="best.npz.*not a regular file"):
        fit(model, X, y, cost="cross_entropy", epochs=1, checkpoint=tmp_path / "best",
            progress=False)
    np.testing.assert_array_equal(model.layers[0].W.data, before)    # no update was made


@pytest.mark.parametrize("args, error, message", [
    (dict(shuffle="False"), TypeError, "shuffle must be True or False, got 'False'"),
    (dict(early_stopping="no"), TypeError, "early_stopping must be True or False"),
    (dict(drop_last=1), TypeError, "drop_last must be True or False"),
    (dict(seed="x"), ValueError, "seed must be"),
    (dict(seed=-1), ValueError, "seed must be"),
])
def test_flags_and_seed_are_checked_before_any_update(args, error, message):
    X, y = _moons(30)
    model = nn.MLP(2, [4, 2], seed=0)
    before = model.layers[0].W.data.copy()
    with pytest.raises(error, match=message):
        fit(model, X, y, epochs=1, progress=False, **args)
    np.testing.assert_array_equal(model.layers[0].W.data, before)
    fit(model, X, y, epochs=1, progress=False, shuffle=np.False_, early_stopping=np.True_)


@pytest.mark.parametrize("make", [lambda p: nn.Adam(p), lambda p: nn.SGD(p, lr=0.05,
                                                                           momentum=0.9)])
def test_fit_hands_the_l2_gradient_to_the_step_with_the_same_numbers(monkeypatch, make):
    """fit passes the L2 term's gradient 2c·W to the optimiser's step (added inside its pass);
    an optimiser whose step() is overridden gets it in W.grad as before: the same floats."""
    from nn import losses as nn_losses
    rng = np.random.default_rng(11)
    X = rng.standard_normal((300, 12)).astype(np.float32)
    y = rng.integers(0, 3, 300)
    written = []
    add = nn_losses.add_l2_gradient
    monkeypatch.setattr(nn_losses, "add_l2_gradient",
                        lambda *a, **k: written.append(1) or add(*a, **k))

    def run(override):
        model = nn.MLP(12, [16, 3], activation="relu", dtype=np.float32, seed=2)
        opt = make(model.parameters())
        if override:
            class Overridden(type(opt)):
                def step(self):
                    super().step()
            opt.__class__ = Overridden
        history = fit(model, X, y, cost="cross_entropy", l2=1e-2, l2_convention="sklearn",
                      batch_size=64, epochs=3, seed=0, progress=False, optimizer=opt)
        return model, history
    folded_model, folded = run(False)
    assert written == []                     # nothing written into W.grad
    plain_model, plain = run(True)
    assert len(written) == 3 * 5             # 5 batches a epoch, each in W.grad
    assert folded.loss == plain.loss
    for a, b in zip(folded_model.parameters(), plain_model.parameters()):
        np.testing.assert_array_equal(a.data, b.data)


def test_the_estimator_hands_its_l2_gradient_to_the_step_with_the_same_numbers(monkeypatch):
    from nn import losses as nn_losses
    from nn.estimators import MLPClassifier as ChainruleMLP
    rng = np.random.default_rng(12)
    X = rng.standard_normal((150, 6))
    y = rng.integers(0, 3, 150)
    kwargs = dict(hidden_layer_sizes=(8,), alpha=1e-2, max_iter=4, random_state=0,
                  batch_size=40)
    written = []
    add = nn_losses.add_l2_gradient
    monkeypatch.setattr(nn_losses, "add_l2_gradient",
                        lambda *a, **k: written.append(1) or add(*a, **k))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        folded = ChainruleMLP(**kwargs).fit(X, y)
        assert written == []
        unfolded_fn = ChainruleMLP._backward_fn
        monkeypatch.setattr(ChainruleMLP, "_backward_fn",
                            lambda self, n, fold_l2=False: unfolded_fn(self, n, False))
        plain = ChainruleMLP(**kwargs).fit(X, y)
    assert len(written) == 4 * 4
    assert folded.loss_curve_ == plain.loss_curve_
    for a, b in zip(folded.coefs_ + folded.intercepts_, plain.coefs_ + plain.intercepts_):
        np.testing.assert_array_equal(a, b)
