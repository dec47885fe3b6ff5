"""The fused kernels give the numpy fallbacks' floats bit for bit, and training does not depend
on which path runs."""
import contextlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nn
from autograd import kernels
from nn import losses
from nn.optim import Adam, ArrayParameter
from nn.train import fit

import numba  # noqa: E402  (install_requires: the compiled path is tested, never skipped)

NUMBA_VERSION = numba.__version__      # (a use: pyflakes reads no noqa)


@pytest.fixture
def compiled_kernels(monkeypatch):
    """The compiled loops for work of every size, for the duration of a test."""
    from autograd import _compiled
    monkeypatch.setattr(kernels, "_loaded", _compiled)


def test_the_compiled_path_is_the_one_installed_for_large_work():
    assert kernels.compiled(kernels.LARGE)


def test_small_work_does_not_import_numba(tmp_path):
    """A small network's training never pays numba's import; a large one's does."""
    import subprocess
    import sys
    code = ("import sys, numpy as np\n"
            "from nn.optim import Adam, ArrayParameter\n"
            "p = ArrayParameter(np.zeros({n}, np.float32)); opt = Adam([p])\n"
            "p.grad = np.ones({n}, np.float32); opt.step()\n"
            "print('numba' in sys.modules, float(p.data[0]))\n")
    root = str(__import__("pathlib").Path(__file__).resolve().parents[1])
    for n, expected in ((100, "False"), (kernels.LARGE, "True")):
        done = subprocess.run([sys.executable, "-c", code.format(n=n)], capture_output=True,
                              text=True, cwd=root, env={**__import__("os").environ,
                                                        "PYTHONPATH": root})
        assert done.returncode == 0, done.stderr
        imported, first = done.stdout.split()
        assert imported == expected
        assert float(first) == pytest.approx(-1e-3)


def _adam_both_ways(monkeypatch, w, g, m, v, b1, b2, eps, lr_t):
    results = []
    from autograd import _compiled
    for loaded in (_compiled, False):
        monkeypatch.setattr(kernels, "_loaded", loaded)
        arrays = [a.copy() for a in (w, m, v)]
        kernels.adam_update(arrays[0], g, arrays[1], arrays[2], b1, b2, eps, lr_t)
        results.append(arrays)
    return results


@settings(max_examples=60, deadline=None)
@given(dtype=st.sampled_from([np.float32, np.float64]), n=st.integers(1, 300),
       seed=st.integers(0, 2**32 - 1), b1=st.floats(0, 0.999), b2=st.floats(0, 0.9999),
       lr_t=st.floats(1e-6, 1.0), eps=st.sampled_from([1e-8, 1e-7, 1e-3]))
def test_adam_update_is_the_numpy_arithmetic_bit_for_bit(dtype, n, seed, b1, b2, lr_t, eps):
    rng = np.random.default_rng(seed)
    w, g, m = (rng.standard_normal(n).astype(dtype) * s for s in (1.0, 10.0, 0.1))
    v = np.abs(rng.standard_normal(n)).astype(dtype) * 1e-3
    with pytest.MonkeyPatch.context() as mp:
        fast, slow = _adam_both_ways(mp, w, g, m, v, b1, b2, eps, lr_t)
    for a, b in zip(fast, slow):
        assert a.dtype == dtype
        np.testing.assert_array_equal(a, b)


def test_adam_update_handles_zero_moments_and_infinities_like_numpy(monkeypatch):
    w = np.array([1.0, 2.0, 3.0, 4.0], np.float32)
    g = np.array([0.0, np.inf, -np.inf, np.nan], np.float32)
    zeros = np.zeros(4, np.float32)
    with np.errstate(invalid="ignore"):
        fast, slow = _adam_both_ways(monkeypatch, w, g, zeros, zeros, 0.9, 0.999, 1e-8, 1e-3)
    for a, b in zip(fast, slow):
        np.testing.assert_array_equal(a, b)        # (nan == nan here)
    assert fast[0][0] == 1.0 and np.isnan(fast[0][1:]).all()


def test_adam_update_on_views_and_odd_layouts_falls_back_with_the_same_numbers(monkeypatch):
    rng = np.random.default_rng(1)
    base = rng.standard_normal((6, 8)).astype(np.float32)
    g = rng.standard_normal((8, 6)).astype(np.float32).T       # not C-contiguous
    m, v = np.zeros((6, 8), np.float32), np.zeros((6, 8), np.float32)
    expected = [base.copy(), m.copy(), v.copy()]
    monkeypatch.setattr(kernels, "_loaded", False)
    kernels.adam_update(expected[0], g, expected[1], expected[2], 0.9, 0.999, 1e-8, 1e-2)
    from autograd import _compiled
    monkeypatch.setattr(kernels, "_loaded", _compiled)
    kernels.adam_update(base, g, m, v, 0.9, 0.999, 1e-8, 1e-2)
    for a, b in zip((base, m, v), expected):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_add_scaled_is_g_plus_w_times_factor(compiled_kernels, dtype):
    rng = np.random.default_rng(2)
    g, w = rng.standard_normal((2, 5, 7)).astype(dtype)
    factor = np.asarray(1e-4 / 3, dtype=dtype) * 2
    expected = g + w * factor
    kernels.add_scaled(g, w, factor)
    np.testing.assert_array_equal(g, expected)
    kernels.add_scaled(g[:, ::2], w[:, ::2], factor)            # strided: the numpy path
    expected[:, ::2] += w[:, ::2] * factor
    np.testing.assert_array_equal(g, expected)


def test_the_environment_variable_selects_numpy(monkeypatch):
    monkeypatch.setattr(kernels, "_loaded", None)
    monkeypatch.setenv("CHAINRULE_KERNELS", "numpy")
    assert not kernels.compiled(kernels.LARGE)
    monkeypatch.delenv("CHAINRULE_KERNELS")
    monkeypatch.setattr(kernels, "_loaded", None)
    assert kernels.compiled(kernels.LARGE)


def _train(seed=0, dtype=np.float32, **options):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((300, 12)).astype(dtype)
    y = (X[:, 0] + X[:, 1] ** 2 > 1).astype(int) + (X[:, 2] > 0.5)
    model = nn.MLP(12, [16, 3], activation="relu", dtype=dtype, seed=seed)
    history = fit(model, X, y, cost="cross_entropy", l2=1e-3, l2_convention="sklearn",
                  batch_size=64, epochs=3, seed=seed, progress=False, **options)
    return model, history


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_training_gives_the_same_weights_on_either_path(monkeypatch, compiled_kernels, dtype):
    fast_model, fast = _train(dtype=dtype)
    monkeypatch.setattr(kernels, "_loaded", False)
    slow_model, slow = _train(dtype=dtype)
    assert fast.loss == slow.loss
    for a, b in zip(fast_model.parameters(), slow_model.parameters()):
        np.testing.assert_array_equal(a.data, b.data)


def test_adam_with_a_skipped_parameter_gives_the_same_weights_on_either_path(monkeypatch,
                                                                           compiled_kernels):
    def run():
        rng = np.random.default_rng(3)
        params = ArrayParameter.wrap([rng.standard_normal((4, 3)).astype(np.float32),
                                      rng.standard_normal(3).astype(np.float32)])
        opt = Adam(params, lr=0.01)
        for step in range(5):
            params[0].grad = rng.standard_normal((4, 3)).astype(np.float32)
            params[1].grad = None if step == 1 else rng.standard_normal(3).astype(np.float32)
            opt.step()
        return [p.data for p in params] + list(opt.ms) + list(opt.vs)
    fast = run()
    monkeypatch.setattr(kernels, "_loaded", False)
    for a, b in zip(fast, run()):
        np.testing.assert_array_equal(a, b)


def test_add_l2_gradient_on_either_path(monkeypatch, compiled_kernels):
    from autograd import Tensor

    def run():
        rng = np.random.default_rng(4)
        W = Tensor(rng.standard_normal((5, 4)).astype(np.float32), requires_grad=True)
        W.grad = rng.standard_normal((5, 4)).astype(np.float32)
        value = losses.add_l2_gradient([W], 1e-2, "sklearn", batch=7)
        return W.grad, value
    fast = run()
    monkeypatch.setattr(kernels, "_loaded", False)
    slow = run()
    np.testing.assert_array_equal(fast[0], slow[0])
    assert fast[1] == slow[1]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_relu_grad_selects_like_the_numpy_rule(compiled_kernels, dtype):
    from autograd.backends import ArrayMath
    rng = np.random.default_rng(5)
    x = rng.standard_normal((40, 30)).astype(dtype)
    x[0, :4] = [0.0, -0.0, np.nan, np.inf]
    g = rng.standard_normal((40, 30)).astype(dtype)
    g[1, :3] = [np.inf, -np.inf, np.nan]
    x[1, :3] = [-1.0, 2.0, -3.0]             # inf where flat → 0; −inf passed; nan where flat → 0
    fast = kernels.relu_grad(g, x)
    assert fast is not None and fast.dtype == dtype
    with np.errstate(invalid="ignore"):
        slow = ArrayMath.gate(g, ArrayMath.step(x))
    np.testing.assert_array_equal(fast, slow)
    assert fast[1, 0] == 0 and fast[1, 1] == -np.inf and fast[1, 2] == 0
    assert not np.signbit(fast[x <= 0]).any()        # +0 where flat (numpy's product: −0)
    np.testing.assert_array_equal(ArrayMath.relu_grad(g, x), fast)


@pytest.mark.parametrize("g_dtype, x_dtype", [(np.float32, np.float32), (np.float64, np.float64),
                                              (np.float32, np.float64), (np.float64, np.float32),
                                              (np.float16, np.float16)])
def test_relu_grad_numpy_path_gives_the_gate_rules_numbers(monkeypatch, g_dtype, x_dtype):
    """Without the compiled loop relu′ multiplies by a boolean mask when the dtypes agree: the
    floats of gate(g, step(x)) (the signs of the zeros too), the dtype of g·step(x), and a
    selection where g holds an inf or nan."""
    from autograd.backends import ArrayMath
    monkeypatch.setattr(kernels, "_loaded", False)
    rng = np.random.default_rng(8)
    x = rng.standard_normal((7, 5)).astype(x_dtype)
    x[0, :4] = [0.0, -0.0, np.nan, np.inf]
    g = rng.standard_normal((7, 5)).astype(g_dtype)
    for finite in (True, False):
        if not finite:
            g[1, :3] = [np.inf, -np.inf, np.nan]
            x[1, :3] = [-1.0, 2.0, -3.0]
        with np.errstate(invalid="ignore"):
            expected = ArrayMath.gate(g, ArrayMath.step(x))
        got = ArrayMath.relu_grad(g, x)
        assert got.dtype == expected.dtype == np.result_type(g, x)
        np.testing.assert_array_equal(got, expected)
        np.testing.assert_array_equal(np.signbit(got), np.signbit(expected))
    assert got[1, 0] == 0 and got[1, 1] == -np.inf and got[1, 2] == 0


def test_relu_grad_leaves_other_layouts_to_numpy(compiled_kernels):
    x = np.ones((3, 4), np.float32)
    assert kernels.relu_grad(np.ones((4, 3), np.float32).T, x) is None     # not contiguous
    assert kernels.relu_grad(np.ones((3, 4)), x) is None                   # dtypes differ
    assert kernels.relu_grad(np.ones((3, 4), np.float32), np.ones(4, np.float32)) is None


def test_relu_backward_through_a_tensor_on_either_path(monkeypatch, compiled_kernels):
    from autograd import Tensor

    def run():
        rng = np.random.default_rng(6)
        w = Tensor(rng.standard_normal((50, 40)).astype(np.float32), requires_grad=True)
        ((w * 3.0).relu() * Tensor(rng.standard_normal((50, 40)).astype(np.float32))).sum() \
            .backward()
        return w.grad
    fast = run()
    monkeypatch.setattr(kernels, "_loaded", False)
    np.testing.assert_array_equal(fast, run())


def test_a_numba_that_cannot_start_falls_back_to_numpy_with_a_warning(monkeypatch):
    """E.g. numba finds no writable folder for its cache: a warning naming the cause, then the
    numpy path (the same numbers)."""
    import sys

    import autograd

    class Refuse:
        def find_spec(self, name, path=None, target=None):
            if name == "autograd._compiled":
                raise RuntimeError("cannot cache function: no locator available")
            return None

    monkeypatch.delitem(sys.modules, "autograd._compiled", raising=False)
    monkeypatch.delattr(autograd, "_compiled", raising=False)
    monkeypatch.setattr(sys, "meta_path", [Refuse()] + sys.meta_path)
    monkeypatch.setattr(kernels, "_loaded", None)
    with pytest.warns(RuntimeWarning, match="no locator available.*numpy"):
        assert not kernels.compiled(kernels.LARGE)
    w, g = np.ones(4, np.float32), np.full(4, 2.0, np.float32)
    m, v = np.zeros(4, np.float32), np.zeros(4, np.float32)
    kernels.adam_update(w, g, m, v, 0.9, 0.999, 1e-8, 0.1)
    np.testing.assert_allclose(w, 1 - 0.1 * 0.2 / (np.sqrt(0.004) + 1e-8), rtol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("momentum, nesterov", [(0.0, False), (0.9, False), (0.9, True)])
def test_sgd_gives_the_same_weights_on_either_path(monkeypatch, compiled_kernels, dtype,
                                                   momentum, nesterov):
    from nn.optim import SGD

    def run():
        rng = np.random.default_rng(7)
        params = ArrayParameter.wrap([rng.standard_normal((6, 5)).astype(dtype),
                                      rng.standard_normal(5).astype(dtype)])
        opt = SGD(params, lr=0.05, momentum=momentum, nesterov=nesterov)
        for step in range(4):
            for p in params:
                p.grad = rng.standard_normal(p.data.shape).astype(dtype)
            if step == 2:
                params[1].grad = None
            opt.step()
        return [p.data for p in params] + [np.asarray(v) for v in opt.velocities]
    fast = run()
    monkeypatch.setattr(kernels, "_loaded", False)
    for a, b in zip(fast, run()):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)


def test_sgd_with_a_gradient_of_another_dtype_takes_the_numpy_rule(compiled_kernels):
    from nn.optim import SGD
    w = ArrayParameter(np.ones(3, np.float32))
    opt = SGD([w], lr=0.5, momentum=0.5)
    w.grad = np.full(3, 2.0)                 # float64: numpy's promotion, then cast into w
    opt.step()
    np.testing.assert_array_equal(w.data, np.zeros(3, np.float32))
    assert w.data.dtype == np.float32


def _both_paths(monkeypatch, run):
    """run() on the compiled path, then on the numpy path: its two results (or exceptions)."""
    from autograd import _compiled
    results = []
    for loaded in (_compiled, False):
        monkeypatch.setattr(kernels, "_loaded", loaded)
        try:
            results.append(run())
        except Exception as error:        # noqa: BLE001  (compared below)
            results.append(error)
    return results


@pytest.mark.parametrize("dtype", [np.float16, ">f4", ">f8"])
def test_dtypes_numba_cannot_run_take_the_numpy_path(monkeypatch, dtype):
    """float16 (numba has none on the CPU) and non-native byte order ('>f4', as read from a
    big-endian file): the numpy fallbacks' numbers, not a NotImplementedError or TypingError."""
    dtype = np.dtype(dtype)
    rng = np.random.default_rng(7)
    w, g = (rng.standard_normal(64).astype(dtype) for _ in range(2))

    def adam():
        arrays = [w.copy(), np.zeros_like(w), np.zeros_like(w)]
        kernels.adam_update(arrays[0], g, arrays[1], arrays[2], 0.9, 0.999, 1e-3, 1e-2)
        return arrays

    def l2():
        out = g.copy()
        kernels.add_scaled(out, w, 0.25)
        return [out]

    def relu():
        from autograd.backends import ArrayMath
        return [ArrayMath.relu_grad(g, w)]

    for run in (adam, l2, relu):
        fast, slow = _both_paths(monkeypatch, run)
        assert not isinstance(fast, Exception), fast
        for a, b in zip(fast, slow):
            assert a.dtype.type is dtype.type      # (numpy's relu rule answers in native order)
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtype", [np.float16, ">f4"])
def test_relu_backward_of_float16_and_big_endian_tensors_runs_compiled_or_not(monkeypatch,
                                                                            dtype):
    from autograd import Tensor

    def run():
        x = Tensor(np.linspace(-1, 1, 40).astype(dtype), requires_grad=True)
        (x.relu() * 2.0).sum().backward()
        return x.grad
    fast, slow = _both_paths(monkeypatch, run)
    assert not isinstance(fast, Exception), fast
    np.testing.assert_array_equal(fast, slow)


def test_integer_arrays_are_not_run_through_the_float_loops(monkeypatch):
    """The compiled loop would round β₁ to the integer 0 and store −2⁶³ into w without a word;
    the numpy path's error (an integer array cannot hold Adam's floats) on both paths."""
    def run():
        w = np.arange(6)
        kernels.adam_update(w, np.ones(6, np.int64), np.zeros(6, np.int64),
                            np.zeros(6, np.int64), 0.9, 0.999, 1e-8, 0.01)
        return w
    fast, slow = _both_paths(monkeypatch, run)
    assert isinstance(slow, TypeError)
    assert type(fast) is type(slow) and str(fast) == str(slow)


def test_read_only_outputs_give_numpys_error_on_either_path(monkeypatch):
    """A read-only w, m, v (Adam) or g (L2) is numpy's ValueError, not numba's TypingError;
    a read-only input is only read, so it works and gives the same numbers."""
    rng = np.random.default_rng(8)
    base = [rng.standard_normal(50).astype(np.float32) for _ in range(4)]

    def adam(read_only):
        w, g, m, v = (a.copy() for a in base)
        v = np.abs(v)
        (w, g, m, v)[read_only].flags.writeable = False
        kernels.adam_update(w, g, m, v, 0.9, 0.999, 1e-8, 1e-2)
        return w, m, v

    for read_only in (0, 2, 3):
        fast, slow = _both_paths(monkeypatch, lambda r=read_only: adam(r))
        assert isinstance(fast, ValueError) and isinstance(slow, ValueError)
        assert "read-only" in str(fast) and "read-only" in str(slow)
    fast, slow = _both_paths(monkeypatch, lambda: adam(1))          # g: read, never written
    for a, b in zip(fast, slow):
        np.testing.assert_array_equal(a, b)

    def l2():
        g = base[0].copy()
        g.flags.writeable = False
        kernels.add_scaled(g, base[1], 0.5)
    fast, slow = _both_paths(monkeypatch, l2)
    assert isinstance(fast, ValueError) and "read-only" in str(fast)
    assert type(fast) is type(slow) and str(fast) == str(slow)


@pytest.mark.parametrize("alias", ["m", "v", "w", "m shifted", "scratch"])
def test_a_gradient_sharing_memory_with_the_state_gives_the_numbers_of_a_copy(monkeypatch,
                                                                            alias):
    """Both paths read g while they write w, m, v (and the numpy path its scratch): g that is
    one of them, or a window of the same buffer, is read as it was when the step began."""
    rng = np.random.default_rng(9)
    start = rng.standard_normal(4 * 33).astype(np.float32)

    def run(copy_g):
        buf = start.copy()
        w, m, v = buf[:32], buf[33:65], np.abs(buf[66:98])
        buf[66:98] = v
        v = buf[66:98]
        scratch = (buf[99:131], np.empty(32, np.float32))
        g = {"m": m, "v": v, "w": w, "m shifted": buf[34:66], "scratch": scratch[0]}[alias]
        kernels.adam_update(w, g.copy() if copy_g else g, m, v, 0.9, 0.999, 1e-8, 1e-2,
                            scratch)
        return [w.copy(), m.copy(), v.copy()]

    expected = _both_paths(monkeypatch, lambda: run(True))[1]
    for got in _both_paths(monkeypatch, lambda: run(False)):
        for a, b in zip(got, expected):
            np.testing.assert_array_equal(a, b)


def test_add_scaled_with_w_a_window_of_g_reads_w_as_it_was(monkeypatch):
    def run():
        buf = np.linspace(0.1, 1.0, 41).astype(np.float32)
        kernels.add_scaled(buf[1:], buf[:-1], 0.5)      # g[i] += w[i]·½ with w[i] = g[i − 1]
        return buf
    expected = np.linspace(0.1, 1.0, 41).astype(np.float32)
    expected[1:] += expected[:-1] * np.float32(0.5)
    for got in _both_paths(monkeypatch, run):
        np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("g_dtype, w_dtype", [(np.float64, np.float32),
                                              (np.float32, np.float64)])
def test_add_scaled_of_mixed_dtypes_is_the_expression_it_replaced(monkeypatch, g_dtype,
                                                                   w_dtype):
    """add_l2_gradient's W.grad += W·decay, decay in W's dtype: W·decay is rounded in W's
    dtype, as before the kernel (not in W.grad's)."""
    rng = np.random.default_rng(10)
    g = rng.standard_normal(1000).astype(g_dtype)
    w = rng.standard_normal(1000).astype(w_dtype)
    decay = np.asarray(1e-4 / 3, dtype=w_dtype) * 2
    expected = g.copy()
    expected += w * decay

    def run():
        out = g.copy()
        kernels.add_scaled(out, w, decay)
        return out
    for got in _both_paths(monkeypatch, run):
        np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("n_params", [1, 2])
def test_adam_rounds_a_gradient_to_its_parameters_dtype_on_every_path(monkeypatch, n_params):
    """A float64 gradient (or a list) for a float32 parameter: rounded to float32 first, as
    the packed path's copy does — so whether numba was imported earlier in the process (any
    large work) no longer changes the weights. Was: per-parameter float64 products."""
    def run(rounded):
        rng = np.random.default_rng(11)
        params = ArrayParameter.wrap([rng.standard_normal(7).astype(np.float32)
                                      for _ in range(n_params)])
        opt = Adam(params, lr=0.1)
        for step in range(3):
            for p in params:
                g = rng.standard_normal(7) * 1.2345678901
                p.grad = (g.astype(np.float32) if rounded
                          else list(g) if step == 1 else g)
            opt.step()
        return [p.data for p in params] + list(opt.ms) + list(opt.vs)
    expected = run(rounded=True)
    for got in _both_paths(monkeypatch, lambda: run(rounded=False)):
        for a, b in zip(got, expected):
            np.testing.assert_array_equal(a, b)


def test_a_bad_gradient_leaves_adam_as_it_was_on_either_path(monkeypatch):
    """Every gradient's shape is checked before anything moves: the compiled path updated the
    parameters before the bad one, the numpy path had already counted the step."""
    def run():
        params = ArrayParameter.wrap([np.ones(3, np.float32), np.ones(2, np.float32)])
        opt = Adam(params, lr=0.1)
        params[0].grad, params[1].grad = np.ones(3, np.float32), np.ones(3, np.float32)
        with pytest.raises(ValueError, match="parameter 1: gradient of shape"):
            opt.step()
        return [p.data for p in params] + list(opt.ms) + [opt.t, opt.steps]
    for got in _both_paths(monkeypatch, run):
        assert not isinstance(got, Exception), got
        for a in got[:4]:
            assert (a == (1 if a is got[0] or a is got[1] else 0)).all()
        assert got[4:] == [0, [0, 0]]


def test_a_read_only_parameter_is_refused_before_adam_changes_anything(monkeypatch):
    def run():
        frozen = np.ones(3, np.float32)
        frozen.flags.writeable = False
        params = ArrayParameter.wrap([np.ones(2, np.float32), frozen])
        opt = Adam(params, lr=0.1)
        for p in params:
            p.grad = np.ones_like(p.data)
        with pytest.raises(ValueError, match="parameter 1: its array is read-only"):
            opt.step()
        return [params[0].data] + list(opt.ms) + list(opt.vs) + [opt.t, opt.steps]
    for got in _both_paths(monkeypatch, run):
        assert not isinstance(got, Exception), got
        assert (got[0] == 1).all() and all((a == 0).all() for a in got[1:5])
        assert got[5:] == [0, [0, 0]]


def test_sgd_on_a_read_only_parameter_is_numpys_error_and_changes_nothing(compiled_kernels):
    from nn.optim import SGD
    data = np.ones(4, np.float32)
    data.setflags(write=False)
    w = ArrayParameter(data)
    opt = SGD([w], lr=0.1, momentum=0.9)
    w.grad = np.ones(4, np.float32)
    with pytest.raises(ValueError, match="read-only"):
        opt.step()
    np.testing.assert_array_equal(w.data, 1.0)


def test_sgd_with_a_gradient_overlapping_its_velocity_reads_a_copy(monkeypatch,
                                                                   compiled_kernels):
    from nn.optim import SGD

    def run():
        w = ArrayParameter(np.arange(6, dtype=np.float64))
        opt = SGD([w], lr=0.5, momentum=0.9)
        w.grad = np.ones(6)
        opt.step()
        w.grad = opt.velocities[0]          # the gradient is the velocity buffer itself
        opt.step()
        return w.data.copy(), np.array(opt.velocities[0])
    fast = run()
    monkeypatch.setattr(kernels, "_loaded", False)
    for a, b in zip(fast, run()):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("path", ["compiled", "numpy"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_moment_whose_gradient_stays_zero_reaches_zero_not_a_subnormal(monkeypatch, path,
                                                                          dtype):
    """m ← β₁m decays into the subnormal range and would stick there (0.9·k ulps rounds back
    to k for k ≤ 4), making every later step slow: it is set to 0, on both paths alike."""
    from autograd import _compiled
    from nn.optim import Adam
    monkeypatch.setattr(kernels, "_loaded", _compiled if path == "compiled" else False)
    w = ArrayParameter(np.ones(6, dtype))
    opt = Adam([w], lr=1e-3)
    w.grad = np.array([1e-3, -1e-3, 0.0, 5.0, np.nan, 1e-30], dtype)
    opt.step()
    w.grad = np.zeros(6, dtype)
    tiny = np.finfo(dtype).tiny
    for _ in range(8000 if dtype == np.float64 else 1200):
        opt.step()
    m, v = opt.ms[0], opt.vs[0]
    finite = np.isfinite(m)
    assert not np.any((m[finite] != 0) & (np.abs(m[finite]) < tiny))
    assert not np.any((v[finite] != 0) & (v[finite] < tiny))
    assert np.all(m[finite] == 0) and np.isnan(m[4])      # decayed to 0; nan stays nan
    assert np.all(np.isfinite(w.data[finite]))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_flush_keeps_both_paths_equal_on_tiny_and_huge_moments(monkeypatch, dtype):
    from autograd import _compiled
    tiny = np.finfo(dtype).tiny
    w = np.ones(7, dtype)
    g = np.array([0, 0, 0, 0, 1e-20, -1e-20, 3.0], dtype)
    m = np.array([tiny * 4, -tiny * 4, tiny / 8, -tiny / 8, 0, -0.0, 1e30], dtype)
    v = np.array([tiny * 2, tiny / 4, 0, tiny, 1e-40, 0, 1e30], dtype)
    results = []
    for loaded in (_compiled, False):
        monkeypatch.setattr(kernels, "_loaded", loaded)
        arrays = [a.copy() for a in (w, m, v)]
        kernels.adam_update(arrays[0], g, arrays[1], arrays[2], 0.9, 0.999, 1e-8, 1e-3)
        results.append(arrays)
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(np.signbit(a), np.signbit(b))     # zeros too
    m_after = results[0][1]
    assert m_after[2] == m_after[3] == 0 and not np.signbit(m_after[3])  # flushed to +0
    assert m_after[1] == np.float64(-tiny * 4) * 0.9 or m_after[1] < 0     # normal: kept


@pytest.mark.parametrize("path", ["compiled", "numpy"])
@pytest.mark.parametrize("nesterov", [False, True])
def test_a_velocity_whose_gradient_stays_zero_reaches_zero_not_a_subnormal(monkeypatch, path,
                                                                           nesterov):
    from autograd import _compiled
    from nn.optim import SGD
    monkeypatch.setattr(kernels, "_loaded", _compiled if path == "compiled" else False)
    w = ArrayParameter(np.ones(4, np.float32))
    opt = SGD([w], lr=0.1, momentum=0.9, nesterov=nesterov)
    w.grad = np.array([1e-3, -1e-3, 2.0, np.nan], np.float32)
    opt.step()
    w.grad = np.zeros(4, np.float32)
    for _ in range(1200):
        opt.step()
    v = np.asarray(opt.velocities[0])
    assert np.all(v[:3] == 0) and np.isnan(v[3])           # decayed to 0; nan stays nan


def test_adams_common_step_is_the_general_paths_floats(monkeypatch, compiled_kernels):
    """Adam's common step (every parameter a fitting array with a gradient: one compiled call
    each, no per-call checks) gives the general compiled path's floats; whatever does not fit
    it — a float64 gradient of a float32 parameter, a transposed gradient, a skipped
    parameter — goes the general way, and a read-only parameter is still refused by name."""
    def run():
        rng = np.random.default_rng(8)
        params = ArrayParameter.wrap([rng.standard_normal((4, 3)).astype(np.float32),
                                      rng.standard_normal(3).astype(np.float32),
                                      rng.standard_normal((3, 2))])
        opt = Adam(params, lr=0.01)
        for step in range(6):       # common at steps 0 and 3 (when it is not patched out)
            params[0].grad = rng.standard_normal((4, 3)).astype(np.float32)
            params[1].grad = rng.standard_normal(3).astype(np.float32)
            params[2].grad = rng.standard_normal((3, 2))
            if step == 1:
                params[0].grad = params[0].grad.astype(np.float64)  # rounded first
            if step == 2:
                params[2].grad = params[2].grad.T.copy().T          # not C-contiguous
            if step == 4:
                params[1].grad = None       # skipped: its own step count from then on
            opt.step()
        return [p.data for p in params] + list(opt.ms) + list(opt.vs) + [opt.steps]
    params = ArrayParameter.wrap([np.ones(3, np.float32)])
    opt = Adam(params)
    params[0].data.flags.writeable = False
    params[0].grad = np.ones(3, np.float32)
    with pytest.raises(ValueError, match="parameter 0: its array is read-only"):
        opt.step()
    calls = []
    flat = kernels.adam_update_flat
    monkeypatch.setattr(kernels, "adam_update_flat", lambda *a: calls.append(1) or flat(*a))
    common = run()
    assert len(calls) == 2 * 3                  # two steps of three parameters
    monkeypatch.setattr(Adam, "_common_step", lambda self, factors=None: False)
    for a, b in zip(common, run()):
        np.testing.assert_array_equal(a, b)


def test_adams_common_step_runs_when_everything_fits(monkeypatch, compiled_kernels):
    calls = []
    original = kernels.adam_update_flat
    monkeypatch.setattr(kernels, "adam_update_flat",
                        lambda *args: calls.append(1) or original(*args))
    params = ArrayParameter.wrap([np.ones((2, 2), np.float32), np.ones(2, np.float32)])
    opt = Adam(params)
    for p in params:
        p.grad = np.full(p.data.shape, 0.5, np.float32)
    opt.step()
    assert len(calls) == 2 and opt.steps == [1, 1] and opt.t == 1



@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_row_shift_is_z_minus_its_row_maxima(compiled_kernels, dtype):
    rng = np.random.default_rng(9)
    z = rng.standard_normal((30, 7)).astype(dtype)
    z[0, :3] = [np.nan, 1.0, 2.0]                  # a nan is the row's maximum, as numpy's
    z[1, :] = -np.inf
    z[2, :3] = [5.0, 5.0, -0.0]                    # tied maxima
    z[3, :] = 0.0
    z[3, 1] = -0.0
    e, m = kernels.row_shift(z)
    with np.errstate(invalid="ignore"):
        want_m = z.max(axis=1, keepdims=True)
        want_e = z - want_m
    np.testing.assert_array_equal(m, want_m)
    np.testing.assert_array_equal(e, want_e)
    assert e.dtype == m.dtype == dtype and m.shape == (30, 1)
    assert kernels.row_shift(z.T) is None                  # another layout: numpy's way
    assert kernels.row_shift(z[:, :0]) is None


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("label_dtype", [np.int64, np.int32, np.uint8])
def test_cross_entropy_grad_is_softmax_minus_onehot_scaled(compiled_kernels, dtype,
                                                           label_dtype):
    rng = np.random.default_rng(10)
    e = rng.random((25, 6)).astype(dtype)
    s = e.sum(axis=1, keepdims=True)
    target = rng.integers(0, 6, 25).astype(label_dtype)
    scale = dtype(1) * (1.0 / 25)
    p = kernels.cross_entropy_grad(e, s, target, scale)
    want = e / s
    want[np.arange(25), target] -= 1
    want *= scale
    np.testing.assert_array_equal(p, want)
    assert p.dtype == dtype
    assert kernels.cross_entropy_grad(e, s, target.astype(float), scale) is None
    assert kernels.cross_entropy_grad(e, s, target, np.ones(2)) is None


def test_softmax_cross_entropy_is_the_same_on_either_path(monkeypatch, compiled_kernels):
    """The op's value and gradient with the compiled row shift and VJP, and with numpy."""
    from autograd import Tensor

    def run():
        rng = np.random.default_rng(11)
        z = Tensor(rng.standard_normal((40, 10)).astype(np.float32), requires_grad=True)
        J = z.softmax_cross_entropy(rng.integers(0, 10, 40))
        J.backward()
        return J.data, z.grad
    fast = run()
    monkeypatch.setattr(kernels, "_loaded", False)
    slow = run()
    for a, b in zip(fast, slow):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("label_dtype", [np.int64, np.int32, np.uint8])
def test_labels_in_range_on_either_path(monkeypatch, compiled_kernels, label_dtype):
    cases = [([0, 3, 9], True), ([0, 10], False), ([], True), ([9, 9], True)]
    if np.dtype(label_dtype).kind == "i":
        cases.append(([-1, 2], False))
    for values, want in cases:
        target = np.array(values, dtype=label_dtype)
        assert kernels.labels_in_range(target, 10) is want
    monkeypatch.setattr(kernels, "_loaded", False)
    for values, want in cases:
        assert kernels.labels_in_range(np.array(values, dtype=label_dtype), 10) is want


@contextlib.contextmanager
def _compiled_loops():
    """`compiled_kernels` for a hypothesis test (a fixture would outlive its examples)."""
    from autograd import _compiled
    saved, kernels._loaded = kernels._loaded, _compiled
    try:
        yield
    finally:
        kernels._loaded = saved


def _bits(a):
    """The array's bytes: equal only when every float is the same float (−0 ≠ +0)."""
    return np.ascontiguousarray(a).view(np.uint8)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("label_dtype", [np.int64, np.int32, np.uint8])
def test_row_shift_pick_checks_the_labels_then_shifts_and_picks(compiled_kernels, dtype,
                                                                 label_dtype):
    rng = np.random.default_rng(12)
    z = rng.standard_normal((30, 7)).astype(dtype)
    z[0, :3] = [np.nan, 1.0, 2.0]
    z[1, :] = -np.inf
    z[2, :3] = [5.0, 5.0, -0.0]
    target = rng.integers(0, 7, 30).astype(label_dtype)
    e, m, picked, in_range = kernels.row_shift_pick(z, target)
    with np.errstate(invalid="ignore"):
        want_m = z.max(axis=1, keepdims=True)
        want_e = z - want_m
        want_picked = z[np.arange(30), target] - want_m[:, 0]
    assert in_range is True
    np.testing.assert_array_equal(m, want_m)
    np.testing.assert_array_equal(e, want_e)
    np.testing.assert_array_equal(picked, want_picked)
    assert e.dtype == m.dtype == picked.dtype == dtype and picked.shape == (30,)
    bad = target.copy()
    bad[-1] = 7
    assert kernels.row_shift_pick(z, bad) == (None, None, None, False)
    if np.dtype(label_dtype).kind == "i":
        bad[-1] = -1
        assert kernels.row_shift_pick(z, bad) == (None, None, None, False)
    assert kernels.row_shift_pick(z.T.copy().T, target) is None        # another layout
    assert kernels.row_shift_pick(z, target.astype(float)) is None      # not class labels
    assert kernels.row_shift_pick(z, target[:-1]) is None


@settings(max_examples=40, deadline=None)
@given(dtype=st.sampled_from([np.float32, np.float64]), n=st.integers(1, 300),
       k=st.integers(2, 40), seed=st.integers(0, 2**16))
def test_cross_entropy_grad_sums_are_numpys_column_sums_bit_for_bit(dtype, n, k, seed):
    rng = np.random.default_rng(seed)
    e = rng.random((n, k)).astype(dtype)
    s = e.sum(axis=1, keepdims=True)
    target = rng.integers(0, k, n)
    scale = dtype(1) * (1.0 / n)
    with _compiled_loops():
        p, sums = kernels.cross_entropy_grad(e, s, target, scale, sums=True)
        alone = kernels.cross_entropy_grad(e, s, target, scale)
    assert np.array_equal(_bits(p), _bits(alone))
    assert np.array_equal(_bits(sums), _bits(np.add.reduce(p, axis=0)))
    assert sums.dtype == dtype and sums.shape == (k,)


def test_column_sums_are_refused_where_numpy_sums_in_another_order(compiled_kernels):
    e = np.ones((5, 1))
    assert kernels.cross_entropy_grad(e, e.sum(axis=1, keepdims=True), np.zeros(5, int),
                                      0.2, sums=True) is None        # one column: pairwise
    assert kernels.relu_grad_sums(np.ones((5, 1)), np.ones((5, 1))) is None
    assert kernels.relu_grad_sums(np.ones((0, 3)), np.ones((0, 3))) is None
    assert kernels.relu_grad_sums(np.ones(6), np.ones(6)) is None     # not a matrix


@settings(max_examples=40, deadline=None)
@given(dtype=st.sampled_from([np.float32, np.float64]), n=st.integers(1, 300),
       k=st.integers(2, 130), seed=st.integers(0, 2**16))
def test_relu_grad_sums_are_relu_grad_and_numpys_column_sums(dtype, n, k, seed):
    rng = np.random.default_rng(seed)
    g = (rng.standard_normal((n, k)) * 10.0 ** rng.integers(-3, 4, (n, k))).astype(dtype)
    x = rng.standard_normal((n, k)).astype(dtype)
    x[rng.random((n, k)) < 0.1] = 0.0
    with _compiled_loops():
        out, sums = kernels.relu_grad_sums(g, x)
        alone = kernels.relu_grad(g, x)
    assert np.array_equal(_bits(out), _bits(alone))
    assert np.array_equal(_bits(sums), _bits(np.add.reduce(out, axis=0)))


def test_relu_grad_sums_select_as_relu_grad_does(compiled_kernels):
    """inf and nan in g where relu is flat give 0; a nan x is not > 0."""
    g = np.array([[np.inf, np.nan, 2.0], [-np.inf, 1.0, 3.0]], np.float32)
    x = np.array([[-1.0, 0.0, np.nan], [1.0, 2.0, 0.5]], np.float32)
    out, sums = kernels.relu_grad_sums(g, x)
    np.testing.assert_array_equal(out, [[0, 0, 0], [-np.inf, 1, 3]])
    np.testing.assert_array_equal(sums, [-np.inf, 1, 3])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bias_relu_is_numpys_add_and_maximum(compiled_kernels, dtype):
    rng = np.random.default_rng(13)
    x = rng.standard_normal((37, 11)).astype(dtype)
    b = rng.standard_normal(11).astype(dtype)
    x[0, :5] = [np.nan, np.inf, -np.inf, -0.0, 0.0]
    b[:5] = [1.0, 1.0, 1.0, -0.0, -0.0]             # −0 + −0 = −0: relu gives +0, as numpy
    z, a = kernels.bias_relu(x, b)
    want_z = x + b
    want_a = np.maximum(want_z, 0)
    assert np.array_equal(_bits(z), _bits(want_z))
    assert np.array_equal(_bits(a), _bits(want_a))
    assert z.dtype == a.dtype == dtype
    assert kernels.bias_relu(x, b.astype(np.float16)) is None        # promotes: numpy's way
    assert kernels.bias_relu(x.T, b[:1].repeat(37)) is None           # another layout
    assert kernels.bias_relu(x, b[:3]) is None
    assert kernels.bias_relu(x[:, 0], b[:1]) is None                  # not a matrix


def test_softmax_cross_entropy_refuses_a_label_out_of_range_on_either_path(monkeypatch,
                                                                           compiled_kernels):
    from autograd import Tensor
    z = Tensor(np.zeros((3, 4), np.float32), requires_grad=True)
    for loaded in (kernels._loaded, False):
        monkeypatch.setattr(kernels, "_loaded", loaded)
        for labels in ([0, 4, 1], [0, -1, 1]):
            with pytest.raises(ValueError, match=r"class labels must lie in 0\.\.3"):
                z.softmax_cross_entropy(np.array(labels))


@settings(max_examples=40, deadline=None)
@given(dtype=st.sampled_from([np.float32, np.float64]), n=st.integers(0, 60),
       k=st.integers(2, 12), seed=st.integers(0, 2**16))
def test_argmax_hits_counts_numpys_argmax_matches(dtype, n, k, seed):
    """Ties (the first wins), nan (the first nan wins) and ±inf as numpy's argmax."""
    rng = np.random.default_rng(seed)
    h = rng.choice(np.array([-np.inf, -1.0, 0.0, -0.0, 1.0, 2.0, np.inf, np.nan]),
                   (n, k)).astype(dtype)
    labels = rng.integers(0, k, n)
    with _compiled_loops():
        hits = kernels.argmax_hits(h, labels)
    assert hits == int(np.count_nonzero(h.argmax(axis=1) == labels))


def test_argmax_hits_leaves_what_it_does_not_take_to_numpy(compiled_kernels):
    h = np.zeros((4, 3))
    assert kernels.argmax_hits(h, np.zeros(4, int)) == 4
    assert kernels.argmax_hits(h[:, :1].copy(), np.zeros(4, int)) is None   # one column
    assert kernels.argmax_hits(h, np.zeros(4)) is None                      # float labels
    assert kernels.argmax_hits(h, np.zeros(3, int)) is None
    assert kernels.argmax_hits(h.T.copy().T, np.zeros(4, int)) is None     # another layout


@settings(max_examples=40, deadline=None)
@given(dtype=st.sampled_from([np.float32, np.float64]), n=st.integers(1, 200),
       seed=st.integers(0, 2**32 - 1), decay=st.floats(-1.0, 1.0),
       momentum=st.sampled_from([0.0, 0.9]), nesterov=st.booleans())
def test_a_decayed_update_is_add_scaled_then_the_update_bit_for_bit(dtype, n, seed, decay,
                                                                     momentum, nesterov):
    """Adam's and SGD's ``decay=d`` (g + d·w added inside the pass) give the floats of
    `add_scaled` into a copy of g and then the plain update, on the compiled and the numpy
    path alike; g is left as it was."""
    rng = np.random.default_rng(seed)
    w, g, m = (rng.standard_normal(n).astype(dtype) * s for s in (1.0, 10.0, 0.1))
    v = np.abs(rng.standard_normal(n)).astype(dtype) * 1e-3
    g_before = g.copy()
    for loaded in (True, False):
        with _compiled_loops() if loaded else contextlib.nullcontext():
            if not loaded:
                saved, kernels._loaded = kernels._loaded, False
            try:
                plain = g.copy()
                kernels.add_scaled(plain, w, decay)
                adam = [a.copy() for a in (w, m, v)]
                kernels.adam_update(adam[0], g, adam[1], adam[2], 0.9, 0.999, 1e-8, 1e-2,
                                    decay=decay)
                expected = [a.copy() for a in (w, m, v)]
                kernels.adam_update(expected[0], plain, expected[1], expected[2], 0.9, 0.999,
                                    1e-8, 1e-2)
                for a, b in zip(adam, expected):
                    assert _bits(a).tobytes() == _bits(b).tobytes()
                sgd, sgd_v = w.copy(), m.copy()
                fused = kernels.sgd_update(sgd, g, sgd_v, 0.1, momentum, nesterov, decay=decay)
                assert fused == loaded
                if fused:
                    ref, ref_v = w.copy(), m.copy()
                    assert kernels.sgd_update(ref, plain, ref_v, 0.1, momentum, nesterov)
                    assert _bits(sgd).tobytes() == _bits(ref).tobytes()
                    assert _bits(sgd_v).tobytes() == _bits(ref_v).tobytes()
            finally:
                if not loaded:
                    kernels._loaded = saved
            assert _bits(g).tobytes() == _bits(g_before).tobytes()


def test_a_decayed_adam_update_rounds_as_add_scaled_does_for_a_wider_gradient(monkeypatch,
                                                                              compiled_kernels):
    """A float64 gradient of a float32 w: d·w is added in float64 (add_scaled's order), then
    rounded, not rounded first; and a gradient that is a window of w is read before w moves."""
    rng = np.random.default_rng(21)
    w = rng.standard_normal(50).astype(np.float32)
    g = rng.standard_normal(50) * 1e-3
    m, v = np.zeros(50, np.float32), np.zeros(50, np.float32)
    plain = g.copy()
    kernels.add_scaled(plain, w, 0.37)
    expected = [a.copy() for a in (w, m, v)]
    kernels.adam_update(expected[0], plain, expected[1], expected[2], 0.9, 0.999, 1e-8, 1e-2)
    got = [a.copy() for a in (w, m, v)]
    kernels.adam_update(got[0], g, got[1], got[2], 0.9, 0.999, 1e-8, 1e-2, decay=0.37)
    for a, b in zip(got, expected):
        np.testing.assert_array_equal(a, b)
    shared = rng.standard_normal(20).astype(np.float32)     # g is w itself
    copy = shared.copy()
    m2, v2 = np.zeros(20, np.float32), np.zeros(20, np.float32)
    kernels.adam_update(shared, shared, m2, v2, 0.9, 0.999, 1e-8, 1e-2, decay=0.5)
    twin = copy.copy()
    kernels.adam_update(copy, twin * np.float32(1.5), np.zeros(20, np.float32),
                        np.zeros(20, np.float32), 0.9, 0.999, 1e-8, 1e-2)
    np.testing.assert_array_equal(shared, copy)


# --- numpy's summation order, and the fused bias add + cross-entropy + VJP -----------------

_SPECIAL = [0.0, -0.0, 1.0, -1.0, 1e30, -1e30, 1e-30, np.inf, -np.inf, np.nan]


@settings(max_examples=80, deadline=None)
@given(dtype=st.sampled_from([np.float32, np.float64]), n=st.integers(0, 2100),
       seed=st.integers(0, 2 ** 32 - 1), special=st.booleans())
def test_the_compiled_sum_is_numpys_pairwise_sum_bit_for_bit(dtype, n, seed, special):
    """`_compiled._pairwise` (and `row_sums`, row by row) add in numpy's order: 0 + the
    pairwise sum (eight partial sums up to 128 entries, halves above), so every rounding, −0
    and nan comes out as numpy's."""
    from autograd import _compiled
    rng = np.random.default_rng(seed)
    a = (rng.standard_normal(n) * 10.0 ** rng.uniform(-8, 8, n)).astype(dtype)
    if special and n:
        a[rng.integers(0, n, max(1, n // 50))] = rng.choice(_SPECIAL, max(1, n // 50))
    zero = dtype(0)
    with np.errstate(all="ignore"):
        expected = a.sum()
        got = zero + _compiled._pairwise(a, 0, n, zero)
    assert np.array_equal(got, expected, equal_nan=True)
    assert np.isnan(got) or np.signbit(got) == np.signbit(expected)
    k = max(1, n // 7)
    rows = a[: (n // k) * k].reshape(-1, k)
    s = np.empty((rows.shape[0], 1), dtype)
    with np.errstate(all="ignore"):
        _compiled.row_sums(rows, s, zero)
        assert np.array_equal(s, rows.sum(axis=1, keepdims=True), equal_nan=True)


@pytest.mark.parametrize("n", [0, 1, 7, 8, 9, 15, 16, 127, 128, 129, 136, 241, 242, 248, 249,
                               255, 256, 257, 263, 264, 271, 272, 500, 1023, 1024, 1025, 2049,
                               100_003])
def test_the_compiled_sum_cuts_where_numpy_does(n):
    """Sizes at the edges of numpy's blocks (8, 128) and of its cuts into halves."""
    from autograd import _compiled
    rng = np.random.default_rng(n)
    for dtype in (np.float32, np.float64):
        a = (rng.standard_normal(n) * 10.0 ** rng.uniform(-6, 6, n)).astype(dtype)
        assert np.array_equal(dtype(0) + _compiled._pairwise(a, 0, n, dtype(0)), a.sum())
        k = max(1, n // 3)
        rows = a[:3 * k].reshape(3, k) if n >= 3 else a.reshape(1, -1)
        s = np.empty((rows.shape[0], 1), dtype)
        _compiled.row_sums(rows, s, dtype(0))
        assert np.array_equal(s, rows.sum(axis=1, keepdims=True))


def test_the_compiled_sum_of_negative_zeros_is_numpys_plus_zero():
    from autograd import _compiled
    for n in (1, 7, 8, 9, 129, 300):
        a = np.full(n, -0.0, np.float32)
        got = np.float32(0) + _compiled._pairwise(a, 0, n, np.float32(0))
        assert got == 0 and not np.signbit(got) and not np.signbit(a.sum())


def _unfused_cost(x, b, target, seed):
    """The add, cross-entropy's forward and its VJP, op by op on numpy (`autograd.rules`),
    and b's gradient as the engine sums it (numpy's add.reduce over the rows)."""
    from autograd import rules
    from autograd.backends import ArrayMath
    saved_loops, kernels._loaded = kernels._loaded, False
    try:
        z = np.asarray(rules.ADD.forward(ArrayMath, x, b))
        J, saved = rules._cross_entropy_saving(ArrayMath, z, target, True)
        J = np.asarray(J)
        p = rules._cross_entropy_vjp(ArrayMath, seed, J, z, target, True, **saved)
    finally:
        kernels._loaded = saved_loops
    return z, J, p, np.add.reduce(p, axis=0)


@settings(max_examples=60, deadline=None)
@given(dtype=st.sampled_from([np.float32, np.float64]), n=st.integers(1, 300),
       k=st.integers(2, 140), seed=st.integers(0, 2 ** 32 - 1), special=st.booleans(),
       label_dtype=st.sampled_from([np.int64, np.int32, np.uint8]))
def test_bias_cross_entropy_is_the_ops_numbers_bit_for_bit(dtype, n, k, seed, special,
                                                           label_dtype):
    """z = x + b, J, ∂J/∂z and its column sums in three compiled passes around numpy's exp and
    log: what the add, the cost's forward and its VJP give one by one, with large logits,
    infinities and nans among them."""
    from autograd import _compiled
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((n, k)) * rng.uniform(0.1, 50)).astype(dtype)
    b = rng.standard_normal(k).astype(dtype)
    if special:
        x[rng.integers(0, n), rng.integers(0, k)] = rng.choice(_SPECIAL)
    target = rng.integers(0, min(k, 255), n).astype(label_dtype)
    seed_grad = np.ones((), dtype)
    with np.errstate(all="ignore"):
        expected = _unfused_cost(x, b, target, seed_grad)
        kernels._loaded, saved = _compiled, kernels._loaded
        try:
            got = kernels.bias_cross_entropy(x, b, target, seed_grad)
        finally:
            kernels._loaded = saved
    for a, e in zip(got, expected):
        assert a.dtype == e.dtype and a.shape == e.shape
        assert np.array_equal(a, e, equal_nan=True)


def test_bias_cross_entropy_declines_what_its_loops_do_not_take(compiled_kernels):
    x = np.ones((4, 3), np.float32)
    b, t, g = np.zeros(3, np.float32), np.array([0, 1, 2, 0]), np.ones((), np.float32)
    assert kernels.bias_cross_entropy(x, b, t, g)[0] is not None
    for args in ((x[:, :1].copy(), b[:1], t * 0, g),          # one column: numpy sums it pairwise
                 (x, b.astype(np.float64), t, g),              # b of another dtype
                 (x, b, t.astype(np.float64), g),              # soft or float labels
                 (x[:, ::2], b[:2], t % 2, g),                 # not contiguous
                 (x, b, t, np.ones(2, np.float32))):           # g not a scalar
        assert kernels.bias_cross_entropy(*args) is None
    assert kernels.bias_cross_entropy(x, b, np.array([0, 1, 3, 0]), g) == (None,) * 4
    assert kernels.bias_cross_entropy(x, b, np.array([0, -1, 2, 0]), g) == (None,) * 4


@pytest.mark.parametrize("label_dtype", [">i8", ">i4", ">u2"])
def test_big_endian_labels_take_numpys_path_with_the_same_numbers(compiled_kernels,
                                                                  label_dtype):
    """Class labels in big-endian order (an IDX file's integers, read as they are) cannot go
    through the compiled loops: every label helper declines them and the cost, its VJP, a
    traced replay and fit's accuracy give what native labels give."""
    from autograd import Tensor, trace
    rng = np.random.default_rng(19)
    native = rng.integers(0, 4, 12)
    swapped = native.astype(label_dtype)
    z = rng.standard_normal((12, 4)).astype(np.float32)
    b = np.zeros(4, np.float32)
    assert kernels.row_shift_pick(z, swapped) is None
    assert kernels.argmax_hits(z, swapped) is None
    assert kernels.bias_cross_entropy(z, b, swapped, np.ones((), np.float32)) is None
    assert kernels.labels_in_range(swapped, 4) and not kernels.labels_in_range(swapped, 3)
    results = []
    for labels in (native, swapped):
        x = Tensor(z, requires_grad=True)
        J = x.softmax_cross_entropy(labels)
        J.backward()
        W = Tensor(np.eye(4, dtype=np.float32), requires_grad=True)
        Bias = Tensor(b.copy(), requires_grad=True)
        step = trace(lambda x, y: (Tensor(x) @ W + Bias).softmax_cross_entropy(y))
        for _ in range(2):
            W.grad = Bias.grad = None
            Jr = step(z, labels)
        results.append((J.data, x.grad, Jr, W.grad, Bias.grad))
    for a, c in zip(*results):
        assert np.array_equal(a, c)
    model = nn.MLP(4, [3, 4], activation="relu", dtype=np.float32, seed=0)
    history = fit(model, z, swapped, cost="cross_entropy", batch_size=6, epochs=2, seed=0,
                  progress=False)
    assert 0 <= history.accuracy[-1] <= 1


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_take_rows_copies_the_rows_into_the_buffer(compiled_kernels, dtype):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((50, 7)).astype(dtype)
    out = np.full((12, 7), np.nan, dtype)
    rows = rng.permutation(50)[:9]
    got = kernels.take_rows(x, rows, out)
    assert np.shares_memory(got, out) and got.shape == (9, 7)
    np.testing.assert_array_equal(got, x[rows])
    assert np.isnan(out[9:]).all()              # the rows past the batch are left alone


def test_take_rows_falls_back_to_numpys_index_and_its_errors(compiled_kernels):
    x = np.arange(12.0).reshape(4, 3)
    out = np.empty((4, 3))
    with pytest.raises(IndexError):
        kernels.take_rows(x, np.array([0, 4]), out)        # nothing written, numpy's error
    np.testing.assert_array_equal(kernels.take_rows(x, np.array([-1, 0]), out), x[[-1, 0]])
    for odd in (x.T.copy().T, x.astype(np.int64), x.astype(np.float16)):
        got = kernels.take_rows(odd, np.array([2, 1]), np.empty((4, 3), odd.dtype))
        np.testing.assert_array_equal(got, odd[[2, 1]])
    got = kernels.take_rows(x, np.array([3, 1], np.int32), out)   # other index types too
    np.testing.assert_array_equal(got, x[[3, 1]])
