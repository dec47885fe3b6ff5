"""nn.optim: each update equals its textbook formula, written out here in numpy, step for step;
the schedules follow scikit-learn's _stochastic_optimizers step for step."""
import math

import numpy as np
import pytest
from sklearn.neural_network._stochastic_optimizers import AdamOptimizer, SGDOptimizer

from autograd import Tensor, Value
from nn import optim as nn_optim
from nn.optim import SGD, Adam, ArrayParameter

SHAPES = [(3, 4), (4,), (2, 3)]
STEPS = 5


def _params(seed=0):
    rng = np.random.default_rng(seed)
    return [ArrayParameter(rng.standard_normal(s)) for s in SHAPES]


def _grads(seed=1):
    rng = np.random.default_rng(seed)
    return [[rng.standard_normal(s) for s in SHAPES] for _ in range(STEPS)]


def _run(optimizer, params, grads):
    """Apply the optimiser to the gradient sequence; return the parameters after each step."""
    trace = []
    for step in grads:
        for p, g in zip(params, step):
            p.grad = g
        optimizer.step()
        trace.append([p.data.copy() for p in params])
    return trace


@pytest.mark.parametrize("momentum, nesterov", [(0.0, False), (0.9, False), (0.9, True),
                                                (0.5, True)])
def test_sgd_is_the_textbook_update(momentum, nesterov):
    lr = 0.1
    params, grads = _params(), _grads()
    w = [p.data.copy() for p in params]
    v = [np.zeros_like(x) for x in w]
    got = _run(SGD(params, lr=lr, momentum=momentum, nesterov=nesterov), params, grads)
    for step, g in enumerate(grads):
        for i in range(len(w)):
            if momentum == 0:
                w[i] = w[i] - lr * g[i]                    # the document's w = w − α ∂J/∂w
            else:
                v[i] = momentum * v[i] - lr * g[i]
                w[i] = w[i] + (momentum * v[i] - lr * g[i] if nesterov else v[i])
            np.testing.assert_allclose(got[step][i], w[i], rtol=0, atol=1e-15)


def test_adam_is_the_textbook_update():
    lr, b1, b2, eps = 0.01, 0.9, 0.999, 1e-8
    params, grads = _params(), _grads()
    w = [p.data.copy() for p in params]
    m = [np.zeros_like(x) for x in w]
    v = [np.zeros_like(x) for x in w]
    got = _run(Adam(params, lr=lr), params, grads)
    for t, g in enumerate(grads, start=1):
        for i in range(len(w)):
            m[i] = b1 * m[i] + (1 - b1) * g[i]
            v[i] = b2 * v[i] + (1 - b2) * g[i] ** 2
            lr_t = lr * math.sqrt(1 - b2 ** t) / (1 - b1 ** t)
            w[i] = w[i] - lr_t * m[i] / (np.sqrt(v[i]) + eps)
            np.testing.assert_allclose(got[t - 1][i], w[i], rtol=0, atol=1e-15)


@pytest.mark.parametrize("ours, theirs", [
    (lambda p: SGD(p, lr=0.05), lambda p: SGDOptimizer(p, 0.05, momentum=0.0, nesterov=False)),
    (lambda p: SGD(p, lr=0.05, momentum=0.9, nesterov=True),
     lambda p: SGDOptimizer(p, 0.05, momentum=0.9, nesterov=True)),
    (lambda p: Adam(p, lr=0.003), lambda p: AdamOptimizer(p, 0.003)),
])
def test_updates_equal_sklearn_bit_for_bit(ours, theirs):
    params, grads = _params(), _grads()
    mine = _run(ours(params), params, grads)
    reference = [p.data.copy() for p in _params()]
    sk = theirs(reference)
    for step, g in enumerate(grads):
        sk.update_params(reference, g)
        for a, b in zip(mine[step], reference):
            np.testing.assert_array_equal(a, b)


def test_value_and_tensor_parameters_follow_the_same_formula():
    w0 = np.array([[0.5, -1.0], [2.0, 0.25]])
    T = Tensor(w0.copy(), requires_grad=True)
    V = [Value(float(x)) for x in w0.ravel()]
    opt_T, opt_V = Adam([T], lr=0.1), Adam(V, lr=0.1)
    for g in _grads_for(w0.shape):
        T.grad = g
        for v, gi in zip(V, g.ravel()):
            v.grad = float(gi)
        opt_T.step()
        opt_V.step()
    assert all(type(v.data) is float for v in V)
    np.testing.assert_allclose([v.data for v in V], T.data.ravel(), rtol=0, atol=1e-15)


def _grads_for(shape):
    rng = np.random.default_rng(5)
    return [rng.standard_normal(shape) for _ in range(4)]


def test_arrays_are_updated_in_place_and_none_is_skipped():
    W, b = np.ones((2, 2)), np.ones(2)
    params = ArrayParameter.wrap([W, b])
    opt = SGD(params, lr=0.5)
    params[0].grad = np.full((2, 2), 2.0)        # b's grad stays None: skipped
    opt.step()
    assert params[0].data is W
    np.testing.assert_array_equal(W, np.zeros((2, 2)))
    np.testing.assert_array_equal(b, np.ones(2))
    opt.zero_grad()
    assert all(p.grad is None for p in params)


def test_invscaling_schedule_matches_sklearn():
    ours = SGD(_params(), lr=0.1, schedule="invscaling", power_t=0.3)
    theirs = SGDOptimizer([p.data for p in _params()], 0.1, "invscaling", power_t=0.3)
    for t in [60, 120, 180, 1000, 12345]:           # samples seen after each epoch
        ours.iteration_ends(t)
        theirs.iteration_ends(t)
        assert ours.lr == theirs.learning_rate


def test_constant_schedule_ignores_iteration_ends():
    ours = SGD(_params(), lr=0.1)
    ours.iteration_ends(500)
    assert ours.lr == 0.1
    assert ours.trigger_stopping() is True


def test_adaptive_schedule_matches_sklearn():
    ours = SGD(_params(), lr=0.1, schedule="adaptive")
    theirs = SGDOptimizer([p.data for p in _params()], 0.1, "adaptive")
    for _ in range(12):                              # past the 1e-6 floor
        ours.iteration_ends(100)
        theirs.iteration_ends(100)
        assert ours.trigger_stopping() == theirs.trigger_stopping("", False)
        assert ours.lr == theirs.learning_rate
    assert ours.trigger_stopping() is True           # lr ≤ 1e-6: stop


def test_lr_is_settable_and_checked():
    opt = Adam(_params(), lr=0.01)
    opt.lr = 0.5
    assert opt.lr == 0.5
    with pytest.raises(ValueError, match="lr"):
        opt.lr = 0.0


@pytest.mark.parametrize("make, message", [
    (lambda p: SGD(p, lr=0), "lr must be"),
    (lambda p: SGD(p, lr=-1.0), "lr must be"),
    (lambda p: SGD(p, lr=float("nan")), "lr must be"),
    (lambda p: SGD(p, momentum=1.5), "momentum"),
    (lambda p: SGD(p, momentum=-0.1), "momentum"),
    (lambda p: SGD(p, schedule="cosine"), "unknown schedule"),
    (lambda p: Adam(p, beta_1=1.0), "beta_1"),
    (lambda p: SGD([]), "empty parameter list"),
    (lambda p: Adam([]), "empty parameter list"),
])
def test_bad_settings_are_clear_errors(make, message):
    with pytest.raises(ValueError, match=message):
        make(_params())


def test_bare_arrays_are_refused_with_a_hint():
    with pytest.raises(TypeError, match="ArrayParameter"):
        SGD([np.zeros(3)])


@pytest.mark.parametrize("cls", [SGD, Adam])
def test_a_parameter_listed_twice_is_refused(cls):
    """Listed twice, a parameter was silently stepped twice per step (PyTorch warns and will
    refuse); so is an array held by two ArrayParameters."""
    p = Tensor(np.ones(2), requires_grad=True)
    with pytest.raises(ValueError, match="parameters 0 and 2 are the same parameter"):
        cls([p, Tensor(np.ones(2), requires_grad=True), p], lr=0.1)
    a = np.ones(3)
    with pytest.raises(ValueError, match="parameters 0 and 1 are the same"):
        cls([ArrayParameter(a), ArrayParameter(a)], lr=0.1)
    v = Value(1.0)
    with pytest.raises(ValueError, match="same parameter"):
        cls([v, v], lr=0.1)
    cls([Value(1.0), Value(1.0), ArrayParameter(np.ones(3)), ArrayParameter(np.ones(3))], lr=0.1)


@pytest.mark.parametrize("cls", [SGD, Adam])
def test_a_bad_parameter_moves_none(cls):
    """A wrong gradient shape or a read-only array is refused before any parameter moves (SGD
    updated the parameters before the bad one, then raised; a read-only one gave numpy's
    'output array is read-only')."""
    a = Tensor(np.ones(2), requires_grad=True)
    b = Tensor(np.ones(3), requires_grad=True)
    opt = cls([a, b], lr=0.1)
    a.grad, b.grad = np.ones(2), np.ones(2)
    with pytest.raises(ValueError, match="parameter 1: gradient of shape"):
        opt.step()
    np.testing.assert_array_equal(a.data, np.ones(2))
    b.data, b.grad = np.broadcast_to(np.ones(3), (3,)), np.ones(3)
    with pytest.raises(ValueError, match="parameter 1: its array is read-only"):
        opt.step()
    np.testing.assert_array_equal(a.data, np.ones(2))


def test_repr_is_readable():
    assert repr(SGD(_params(), lr=0.1, momentum=0.9, nesterov=True)) == \
        "SGD(lr=0.1, momentum=0.9, nesterov=True, params=3)"
    assert repr(Adam(_params())) == \
        "Adam(lr=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-08, t=0, params=3)"
    assert "invscaling" in repr(SGD(_params(), schedule="invscaling"))
    assert repr(ArrayParameter(np.zeros((2, 3)))) == "ArrayParameter(shape=(2, 3), dtype=float64)"


def test_adam_packed_state_gives_the_per_parameter_floats():
    """Array parameters of one dtype share flat m, v buffers; a step over the whole buffer, a
    step with a skipped parameter (one at a time) and mixed dtypes and Values all give the
    floats of the formula applied to each parameter alone."""
    rng = np.random.default_rng(7)
    shapes = [(5, 3), (3,), (3, 2), (2,)]
    dtypes = [np.float32, np.float32, np.float64, np.float32]
    packed = [ArrayParameter(rng.standard_normal(s).astype(d)) for s, d in zip(shapes, dtypes)]
    packed.append(Value(0.75))
    alone = [[ArrayParameter(p.data.copy())] for p in packed[:-1]] + [[Value(0.75)]]
    arrays = [p.data for p in packed[:-1]]
    opt = Adam(packed, lr=0.01)
    singles = [Adam(ps, lr=0.01) for ps in alone]
    assert len(opt._groups) == 2                        # float32 and float64 arrays
    for step in range(6):
        grads = [rng.standard_normal(s).astype(d) for s, d in zip(shapes, dtypes)]
        grads.append(float(rng.standard_normal()))
        if step == 3:
            grads[1] = None                             # b skipped this step
        for p, ps, g in zip(packed, alone, grads):
            p.grad = g
            ps[0].grad = g
        opt.step()
        for single, ps, g in zip(singles, alone, grads):
            if g is not None:               # a skipped parameter's own step count stays behind
                single.step()
        for p, ps in zip(packed, alone):
            np.testing.assert_array_equal(p.data, ps[0].data)
    assert all(p.data is a for p, a in zip(packed, arrays))      # updated in place
    assert [p.data.dtype for p in packed[:-1]] == dtypes


def test_power_t_and_gradient_shapes_are_checked():
    with pytest.raises(ValueError, match="power_t"):
        SGD([ArrayParameter(np.zeros(2))], lr=0.1, schedule="invscaling", power_t=float("nan"))
    with pytest.raises(ValueError, match="power_t"):
        SGD([ArrayParameter(np.zeros(2))], lr=0.1, schedule="invscaling", power_t=-2)
    params = [ArrayParameter(np.zeros((2, 2))), ArrayParameter(np.zeros(2))]
    params[0].grad, params[1].grad = np.ones(2), np.ones(2)       # (2,) for a (2, 2) parameter
    with pytest.raises(ValueError, match="gradient of shape"):
        Adam(params).step()
    for make in (lambda ps: SGD(ps, lr=0.1, momentum=0.5), lambda ps: Adam(ps[:1])):
        with pytest.raises(ValueError, match=r"gradient of shape \(2,\) for a parameter of "
                                             r"shape \(2, 2\)"):
            make(params).step()         # numpy would have broadcast it over the rows
    assert not params[0].data.any()


def test_adam_counts_steps_per_parameter_as_pytorch():
    """A parameter skipped for a while (frozen) starts its bias correction from its own first
    step when it comes back: its first step is ≈ −lr·sign(g), as PyTorch's, not a step scaled
    by the correction of the global t."""
    a, b = ArrayParameter(np.zeros(3)), ArrayParameter(np.zeros(3))
    opt = Adam([a, b], lr=0.1)
    for _ in range(50):
        a.grad, b.grad = np.ones(3), None
        opt.step()
    a.grad = b.grad = np.ones(3)
    opt.step()
    assert opt.t == 51 and opt.steps == [51, 1]
    np.testing.assert_allclose(b.data, -0.1, rtol=1e-6)
    fresh = ArrayParameter(np.zeros(3))
    fresh_opt = Adam([fresh], lr=0.1)
    fresh.grad = np.ones(3)
    fresh_opt.step()
    np.testing.assert_array_equal(b.data, fresh.data)


@pytest.mark.parametrize("how", ["deepcopy", "pickle"])
def test_a_copied_adam_goes_on_as_the_original(how):
    """Copies keep the packed buffers and their views together (a view pickled alone would be
    a separate array, and the packed step would then add the raw gradient to the weights)."""
    import copy
    import pickle
    rng = np.random.default_rng(3)
    params = [ArrayParameter(rng.standard_normal(s)) for s in SHAPES]
    opt = Adam(params, lr=0.01)
    for p in params:
        p.grad = rng.standard_normal(p.data.shape)
    opt.step()
    clone = copy.deepcopy(opt) if how == "deepcopy" else pickle.loads(pickle.dumps(opt))
    assert all(m.base is clone._groups[0].m for m in clone.ms)
    grads = [rng.standard_normal(s) for s in SHAPES]
    for optimizer in (opt, clone):
        for p, g in zip(optimizer.params, grads):
            p.grad = g
        optimizer.step()
    for p, q in zip(opt.params, clone.params):
        np.testing.assert_array_equal(p.data, q.data)


@pytest.mark.parametrize("make", [lambda p: Adam([p], lr=0.1),
                                  lambda p: SGD([p], lr=0.1, momentum=0.9)])
def test_a_value_without_a_gradient_is_skipped_like_a_none_grad(make):
    # a Value's .grad reads 0.0 when it has none; has_grad tells the optimiser to skip it, as a
    # Tensor's .grad of None does (momentum and Adam's moments would otherwise still move it)
    p = Value(1.0)
    opt = make(p)
    (p * p).backward()
    opt.step()
    opt.zero_grad()
    assert not p.has_grad and p.grad == 0.0
    before = p.data
    opt.step()
    assert p.data == before


def test_adam_refuses_integer_parameters():
    # the numpy path failed at the first step (after counting it), the compiled one wrote −2⁶³
    with pytest.raises(TypeError, match="parameter 1 holds int64"):
        Adam([ArrayParameter(np.zeros(2)), ArrayParameter(np.arange(3))])


def test_an_adam_pickled_before_the_compiled_kernels_trains_on():
    """Estimators are pickled with their Adam; one saved before Adam had ``_size`` (the work
    that decides whether numba is imported) steps after loading instead of AttributeError."""
    import pickle
    params = _params()
    opt = Adam(params, lr=0.01)
    for p, g in zip(params, _grads()[0]):
        p.grad = g
    opt.step()
    new = pickle.loads(pickle.dumps(opt))
    del opt._size                                  # the state an older version pickled
    old = pickle.loads(pickle.dumps(opt))
    for optimizer in (new, old):
        for p, g in zip(optimizer.params, _grads()[1]):
            p.grad = g
        optimizer.step()
    for p, q in zip(new.params, old.params):
        np.testing.assert_array_equal(p.data, q.data)


def _decay_run(make, decay_in_step, seed=5):
    """Five steps with the L2 gradient d·W on the first and last parameter: handed to the
    step (``decay``) or written into .grad first (`kernels.add_scaled`), as fit did."""
    from autograd import kernels
    params = _params(seed)
    opt = make(params)
    chosen, d = [params[0], params[2]], 0.03
    for step in _grads(seed + 1):
        for p, g in zip(params, step):
            p.grad = g.copy()
        if decay_in_step:
            before = [p.grad.copy() for p in params]
            opt.step(decay=(chosen, d))
            for p, g in zip(params, before):            # .grad is left as it was
                np.testing.assert_array_equal(p.grad, g)
        else:
            for p in chosen:
                kernels.add_scaled(p.grad, p.data, d)
            opt.step()
    return [p.data for p in params]


class _Plain(nn_optim.Optimizer):
    """The base class's step: w ← w − lr·g."""

    def _update(self, i, g):
        return -self.lr * g


@pytest.mark.parametrize("make", [lambda p: Adam(p, lr=0.01),
                                  lambda p: SGD(p, lr=0.1, momentum=0.9, nesterov=True),
                                  lambda p: SGD(p, lr=0.1),
                                  lambda p: _Plain(p, lr=0.1)])
@pytest.mark.parametrize("compiled", [True, False])
def test_decay_in_the_step_is_adding_it_to_the_gradient_first(monkeypatch, make, compiled):
    from autograd import _compiled, kernels
    monkeypatch.setattr(kernels, "_loaded", _compiled if compiled else False)
    monkeypatch.setattr(kernels, "LARGE", 1 if compiled else kernels.LARGE)
    for a, b in zip(_decay_run(make, True), _decay_run(make, False)):
        np.testing.assert_array_equal(a, b)


def test_decay_reaches_value_parameters_too():
    def run(in_step):
        params = [Value(0.5), Value(-2.0)]
        opt = Adam(params, lr=0.1)
        for k in range(3):
            for p in params:
                p.grad = 0.25 * (k + 1)
            if in_step:
                opt.step(decay=([params[1]], 0.2))
            else:
                params[1].grad += params[1].data * 0.2
                opt.step()
        return [p.data for p in params]
    assert run(True) == run(False)


@pytest.mark.parametrize("decay, error, message", [
    (0.1, TypeError, "decay must be a pair"),
    (([], 0.1, 2), TypeError, "decay must be a pair"),
    (([], float("nan")), ValueError, "finite number"),
    (([], True), ValueError, "finite number"),
    (([ArrayParameter(np.ones(2))], 0.1), ValueError, "does not hold"),
])
@pytest.mark.parametrize("cls", [SGD, Adam])
def test_a_bad_decay_is_a_clear_error_and_moves_nothing(cls, decay, error, message):
    params = _params()
    for p in params:
        p.grad = np.ones_like(p.data)
    before = [p.data.copy() for p in params]
    opt = cls(params, lr=0.1)
    with pytest.raises(error, match=message):
        opt.step(decay=decay)
    for p, b in zip(params, before):
        np.testing.assert_array_equal(p.data, b)


def test_takes_decay_tells_the_librarys_steps_from_an_override():
    class Recording(SGD):
        def step(self):
            super().step()
    params = _params()
    assert nn_optim.takes_decay(Adam(params)) and nn_optim.takes_decay(SGD(params))
    assert nn_optim.takes_decay(_Plain(params, lr=0.1))
    assert not nn_optim.takes_decay(Recording(params))
