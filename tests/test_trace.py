"""autograd.trace: a step traced once and replayed gives the graph's numbers bit for bit (outputs
and every parameter's .grad), for every op; it refuses what it cannot replay, with a message
that names the problem; and nn.fit's traced step trains exactly as the graph does."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

import nn
from autograd import Tensor, TraceError, concatenate, detect_anomaly, no_grad, stack, trace, where
from autograd.core import Op, make_node
from nn.train import fit
from tests.ops_table import BINARY, UNARY


def _params(rng, dtype, *shapes):
    return [Tensor(rng.standard_normal(s).astype(dtype), requires_grad=True, label=f"P{i}")
            for i, s in enumerate(shapes)]


def _graph(fn, params, *inputs):
    """fn on the graph: (outputs' data, each parameter's .grad), from zeroed gradients."""
    for p in params:
        p.grad = None
    out = fn(*inputs)
    nodes = out if isinstance(out, tuple) else (out,)
    nodes[0].backward()
    return [n.data for n in nodes], [p.grad for p in params]


def _replayed(step, params, *inputs):
    for p in params:
        p.grad = None
    out = step(*inputs)
    return list(out) if isinstance(out, tuple) else [out], [p.grad for p in params]


def _assert_identical(got, expected):
    (outs, grads), (outs_g, grads_g) = got, expected
    for a, b in zip(outs + grads, outs_g + grads_g):
        if b is None:
            assert a is None
            continue
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(a, b)


def _check_replays(fn, params, batches):
    """Trace on the first batch, then every later batch is replayed and equals the graph."""
    step = trace(fn)
    _replayed(step, params, *batches[0])
    for inputs in batches[1:]:
        got = _replayed(step, params, *inputs)
        _assert_identical(got, _graph(fn, params, *inputs))
    assert step.traces == 1 and step.replays == len(batches) - 1
    return step


# --- every op: replay == graph, bit for bit ---------------------------------------------------

def _inside(op, rng, shape):
    """Points inside an op's domain, away from its kinks (the table's domains are ranges)."""
    if op.name in ("log", "sqrt"):
        return rng.uniform(1.0, 3.0, shape)
    return rng.uniform(0.5, 2.0, shape) * rng.choice([-1, 1], shape)


@pytest.mark.parametrize("op", UNARY, ids=str)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_every_unary_op_replays_the_graphs_numbers(op, dtype):
    rng = np.random.default_rng(1)
    W, = _params(rng, dtype, (3, 4))
    fn = lambda x: op.apply(W * 0.01 + x).sum()  # noqa: E731  (x joins as a constant leaf)
    _check_replays(fn, [W], [(_inside(op, rng, (3, 4)).astype(dtype),) for _ in range(3)])


@pytest.mark.parametrize("op", BINARY, ids=str)
def test_every_binary_op_replays_the_graphs_numbers(op):
    rng = np.random.default_rng(2)
    W, V = _params(rng, np.float64, (2, 3), (2, 3))

    def fn(x):
        a = W * 0.1 + Tensor(x)                    # in [0.7, 2.3]: pow's base, div's divisor
        b = V * 0.1 + Tensor(x) * 0.1 + 1.3        # away from 0 and 1
        return op.apply(a if op.nodes[0] else 1.7, b if op.nodes[1] else 1.7).sum()
    _check_replays(fn, [W, V], [(rng.uniform(1.0, 2.0, (2, 3)),) for _ in range(3)])


STRUCTURAL = {
    "matmul, bias broadcast, tanh": lambda W, b, x: ((x @ W + b).tanh() ** 2).mean(),
    "sum over an axis, keepdims": lambda W, b, x: (x @ W).sum(axis=0, keepdims=True).exp().sum(),
    "max and min": lambda W, b, x: (x @ W).max(axis=1).sum() - (x @ W).min(),
    "var and std": lambda W, b, x: (x @ W).var(axis=0).sum() + (x @ W).std(),
    "logsumexp, softmax, log_softmax": lambda W, b, x: ((x @ W).logsumexp(axis=1).sum()
                                                        + (x @ W).softmax()[:, 0].sum()
                                                        + (x @ W).log_softmax().mean()),
    "reshape, transpose, broadcast_to": lambda W, b, x: ((x @ W).reshape(-1).reshape(3, 4).T
                                                         * b.broadcast_to((2, 6))
                                                         .reshape(4, 3)).sum(),
    "clip and leaky_relu": lambda W, b, x: ((x @ W).clip(-0.5, 0.5)
                                            + (x @ W).leaky_relu(0.1)).sum(),
    "concatenate and stack": lambda W, b, x: (concatenate([x @ W, b.reshape(1, 6)]).sum()
                                              + stack([b, b * 2]).sum(axis=1).sum()),
    "a parameter used twice": lambda W, b, x: ((x @ W) * (x @ W) + W.sum_squares()).sum(),
    "where with a constant condition": lambda W, b, x: where(np.eye(2, 6) > 0, x @ W,
                                                             b * 3).sum(),
    "astype to float32": lambda W, b, x: (x @ W).astype(np.float32).sum(),
}


@pytest.mark.parametrize("name", sorted(STRUCTURAL))
def test_structural_ops_replay_the_graphs_numbers(name):
    rng = np.random.default_rng(3)
    W, b = _params(rng, np.float64, (4, 6), (6,))
    f = STRUCTURAL[name]
    _check_replays(lambda x: f(W, b, x), [W, b],
                   [(rng.standard_normal((2, 4)),) for _ in range(4)])


def test_an_input_used_as_an_index_and_as_labels_is_fed_on_each_replay():
    rng = np.random.default_rng(4)
    W, = _params(rng, np.float32, (5, 4))

    def fn(x, labels):
        z = x @ W
        picked = z[np.arange(3), labels]          # the labels inside an index tuple
        return z.softmax_cross_entropy(labels) + picked.sum(), z
    batches = [(rng.standard_normal((3, 5)).astype(np.float32), rng.integers(0, 4, 3))
               for _ in range(4)]
    _check_replays(fn, [W], batches)


def test_the_mlp_step_replays_for_every_cost_activation_and_dtype():
    from nn import losses
    rng = np.random.default_rng(5)
    for dtype in (np.float64, np.float32):
        for activation in ("relu", "tanh", "sigmoid"):
            model = nn.MLP(6, [5, 3], activation=activation, dtype=dtype, seed=1)
            params = model.parameters()
            for cost in ("document", "mse", "cross_entropy"):
                cost_fn = losses.get_cost(cost)

                def fn(x, y):
                    h = model(x)
                    return cost_fn(h, y), h
                if cost == "cross_entropy":
                    ys = [rng.integers(0, 3, 8) for _ in range(3)]
                else:
                    ys = [rng.random((8, 3)).astype(dtype) for _ in range(3)]
                batches = [(rng.random((8, 6)).astype(dtype), y) for y in ys]
                _check_replays(fn, params, batches)


@pytest.mark.parametrize("loaded", ["compiled", "numpy"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_the_mlp_steps_bias_relu_and_bias_sums_are_fused_and_exact(monkeypatch, loaded, dtype):
    """x·W + b then relu is one pass forward, and each bias's gradient is summed by the VJP
    above it (relu's, cross-entropy's): the graph's numbers with the compiled loops and with
    numpy (the helpers fall back to the ops' own rules)."""
    from autograd import _compiled, kernels
    from nn import losses
    monkeypatch.setattr(kernels, "_loaded", _compiled if loaded == "compiled" else False)
    rng = np.random.default_rng(15)
    model = nn.MLP(20, [16, 12, 5], activation="relu", dtype=dtype, seed=3)

    def fn(x, y):
        h = model(x)
        return losses.softmax_cross_entropy(h, y), h
    step = _check_replays(fn, model.parameters(),
                          [(rng.random((30, 20)).astype(dtype), rng.integers(0, 5, 30))
                           for _ in range(4)])
    code = next(iter(step.plans.values())).code
    assert code.count("= bias_relu(m, ") == 2
    assert code.count("and its column sums") == 3          # two relus and the cost
    assert code.count("(the column sums made above)") == 3
    # the last layer's add, the cost and the cost's VJP are one call; its edge reads it
    assert code.count("= bias_cost(m, ") == 1 and "(made with the cost)" in code
    assert "f10(m, v" not in code.replace("bias_cost(m, f9, f10,", "")


def test_a_cost_whose_bias_add_is_read_elsewhere_is_not_fused():
    """z = x·W + b read by the cost and by a penalty on z: z's gradient sums two edges, so the
    cost's VJP cannot stand for it; the replay keeps the ops apart, with the graph's numbers."""
    rng = np.random.default_rng(17)
    W, b = _params(rng, np.float32, (6, 4), (4,))

    def fn(x, y):
        z = x @ W + b
        return z.softmax_cross_entropy(y) + (z * z).sum() * 1e-3, z
    step = _check_replays(fn, [W, b], [(rng.standard_normal((9, 6)).astype(np.float32),
                                        rng.integers(0, 4, 9)) for _ in range(3)])
    assert "bias_cost" not in next(iter(step.plans.values())).code


@pytest.mark.parametrize("loaded", ["compiled", "numpy"])
def test_a_fused_cost_refuses_a_label_out_of_range_as_the_graph_does(monkeypatch, loaded):
    from autograd import _compiled, kernels
    monkeypatch.setattr(kernels, "_loaded", _compiled if loaded == "compiled" else False)
    rng = np.random.default_rng(18)
    W, b = _params(rng, np.float64, (5, 3), (3,))
    fn = lambda x, y: ((x @ W + b).softmax_cross_entropy(y),)   # noqa: E731
    step = _check_replays(fn, [W, b], [(rng.standard_normal((4, 5)), rng.integers(0, 3, 4))
                                       for _ in range(2)])
    assert "bias_cost" in next(iter(step.plans.values())).code
    for bad in ([0, 1, 3, 2], [0, -1, 2, 2]):
        with pytest.raises(ValueError, match="labels must lie in 0..2"):
            fn(rng.standard_normal((4, 5)), np.array(bad))
        with pytest.raises(ValueError, match="labels must lie in 0..2"):
            step(rng.standard_normal((4, 5)), np.array(bad))


def test_a_bias_add_with_two_uses_or_one_column_is_not_summed_by_the_vjp_above():
    """z = x·W + b used by relu and by a sum: z's gradient adds two edges, so b's is the
    engine's sum of it; b of one column is summed by numpy pairwise, another order."""
    rng = np.random.default_rng(16)
    W, b = _params(rng, np.float64, (4, 3), (3,))
    W2, b2 = _params(rng, np.float64, (4, 1), (1,))

    def twice(x):
        z = x @ W + b
        return (z.relu() ** 2).sum() + z.sum()
    for f, params in ((twice, [W, b]), (lambda x: (x @ W2 + b2).relu().sum(), [W2, b2])):
        step = _check_replays(f, params, [(rng.standard_normal((6, 4)),) for _ in range(3)])
        code = next(iter(step.plans.values())).code
        assert "bias_relu(m, " in code and "column sums" not in code


def test_the_code_later_calls_run_is_checked_against_the_graph_too(monkeypatch):
    """The first replay learns which edges unbroadcast changes and generates the code later
    calls run (the fused bias sums among it): that code is checked as well, so a summing VJP
    that is wrong is refused, not replayed."""
    from autograd import rules

    def wrong(m, g, y, x):
        out = m.relu_grad(g, x)
        return out, np.add.reduce(out, axis=0) * 2.0
    monkeypatch.setitem(rules.RELU.summing, 0, wrong)
    rng = np.random.default_rng(17)
    W, b = _params(rng, np.float64, (4, 3), (3,))
    step = trace(lambda x: (x @ W + b).relu().sum())
    with pytest.raises(TraceError, match="gradient of P1 .* differs from the graph"):
        step(rng.standard_normal((6, 4)))


# --- what a replay does with .grad ----------------------------------------------------------

def test_a_replay_accumulates_into_grad_as_backward_does():
    rng = np.random.default_rng(6)
    W, = _params(rng, np.float64, (3, 2))
    fn = lambda x: (x @ W).tanh().sum()  # noqa: E731
    step = trace(fn)
    x1, x2 = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    step(x1)                                   # traced (graph) pass
    step(x2)                                   # replayed, added to the first
    replayed = W.grad.copy()
    W.grad = None
    fn(x1).backward()
    fn(x2).backward()
    np.testing.assert_array_equal(replayed, W.grad)


def test_leaf_gradients_own_their_memory():
    """x + W + W: the add's VJP hands one array to both of its inputs; each .grad must be
    its own array, so an optimiser updating one in place cannot change another."""
    rng = np.random.default_rng(7)
    W, V = _params(rng, np.float64, (3,), (3,))
    step = trace(lambda x: ((W + V) * Tensor(x)).sum())
    for _ in range(3):
        W.grad = V.grad = None
        step(rng.standard_normal(3))
    assert W.grad is not V.grad and not np.shares_memory(W.grad, V.grad)
    before = V.grad.copy()
    W.grad += 1.0
    np.testing.assert_array_equal(V.grad, before)


def test_a_new_input_shape_is_traced_anew():
    rng = np.random.default_rng(8)
    W, = _params(rng, np.float64, (3, 2))
    fn = lambda x: (x @ W).sum()  # noqa: E731
    step = trace(fn)
    for n in (4, 4, 1, 4, 1):
        W.grad = None
        step(rng.standard_normal((n, 3)))
    assert step.traces == 2 and step.replays == 3 and len(step.plans) == 2
    assert repr(step).endswith("plans=2, traces=2, replays=3, refused=0, evicted=0)")


def test_plans_are_kept_for_the_most_recently_used_signatures_only():
    rng = np.random.default_rng(18)
    W, = _params(rng, np.float64, (3, 2))
    fn = lambda x: ((x @ W) ** 2).sum()  # noqa: E731
    step = trace(fn, max_plans=2)
    for n in (1, 2, 1, 3):          # 2 is the least recently used when 3 comes
        W.grad = None
        step(rng.standard_normal((n, 3)))
    assert [key[0][0] for key in step.plans] == [1, 3]
    assert step.traces == 3 and step.replays == 1 and step.evicted == 1
    x = rng.standard_normal((2, 3))         # evicted: traced again, the same numbers
    _assert_identical(_replayed(step, [W], x), _graph(fn, [W], x))
    assert step.traces == 4 and step.evicted == 2 and len(step.plans) == 2
    assert repr(step).endswith("plans=2, traces=4, replays=1, refused=0, evicted=2)")


@pytest.mark.parametrize("bad, error, words", [(0, ValueError, "at least 1"),
                                               (2.0, TypeError, "whole number"),
                                               (True, TypeError, "whole number")])
def test_a_bad_max_plans_is_refused(bad, error, words):
    with pytest.raises(error, match=words):
        trace(lambda x: Tensor(x).sum(), max_plans=bad)


def test_the_replay_reads_parameters_each_call_and_its_code_reads_like_the_pass():
    rng = np.random.default_rng(9)
    W, b = _params(rng, np.float64, (3, 2), (2,))
    fn = lambda x: ((x @ W + b).relu() ** 2).sum()  # noqa: E731
    step = trace(fn)
    x = rng.standard_normal((4, 3))
    step(x)
    W.data = W.data * 2.0                      # a new array, as load_state_dict makes
    got = _replayed(step, [W, b], x)
    _assert_identical(got, _graph(fn, [W, b], x))
    code = next(iter(step.plans.values())).code
    assert "def replay(inputs, params):" in code
    assert "# matmul" in code and "the chain rule" in code
    assert "∂/∂v" in code and "._grad = own(" in code
    # x @ W + b then relu: one pass forward, and b's gradient summed in relu's VJP
    assert "v4, v5 = bias_relu(m, f4, f5, v2, v3)  # add and relu in one pass" in code
    assert "g4, s4 = e5_0(m, g5, v5, v4)  # ∂/∂v4: relu input 0, and its column sums" in code


# --- refusals -------------------------------------------------------------------------------

def test_an_input_the_graph_does_not_hold_as_itself_is_refused():
    """Converted by numpy before it became a Tensor, the input is not in the graph: the trace
    cannot feed it (a Tensor's own conversion is recorded, see below)."""
    W, = _params(np.random.default_rng(10), np.float32, (3, 2))
    fn = lambda x: (Tensor(x.astype(np.float32)) @ W).sum()  # noqa: E731
    step = trace(fn)
    with pytest.raises(TraceError, match=r"input 0 \(float64 \(4, 3\)\) is not in the graph "
                                         r"as itself.*converted"):
        step(np.ones((4, 3)))
    # with fallback the graph's result stands, gradients stored once
    step = trace(fn, fallback=True)
    W.grad = None
    out = step(np.ones((4, 3)))
    assert out == pytest.approx(float((np.ones((4, 3), np.float32) @ W.data).sum()))
    np.testing.assert_array_equal(W.grad, np.full((3, 2), 4.0, np.float32))
    assert len(step.refused) == 1 and "not in the graph" in next(iter(step.refused.values()))
    W.grad = None
    step(np.ones((4, 3)))                      # that signature stays on the graph
    np.testing.assert_array_equal(W.grad, np.full((3, 2), 4.0, np.float32))
    assert step.replays == 0


def test_a_parameter_made_from_an_input_inside_the_function_is_refused():
    step = trace(lambda x: (Tensor(x, requires_grad=True) ** 2).sum())
    with pytest.raises(TraceError, match="make parameters outside the function"):
        step(np.ones(3))


def test_an_op_keeping_forward_parts_without_a_saving_function_is_refused():
    op = Op("scaled", lambda m, x: x * 2, (lambda m, g, y, x, _two=None: g * _two,))

    def fn(x):
        W = PARAM
        y = make_node(Tensor, W.data * 2, (W,), op, True, {"_two": 2.0})
        return (y * Tensor(x)).sum()
    PARAM = Tensor(np.ones(3), requires_grad=True)
    with pytest.raises(TraceError, match="keeps '_two'.*no saving function"):
        trace(fn)(np.ones(3))


def test_bad_calls_name_the_problem():
    W, = _params(np.random.default_rng(11), np.float64, (2,))
    with pytest.raises(TypeError, match="trace needs a function, got int"):
        trace(3)
    with pytest.raises(TypeError, match="input 1 must be a numpy array, got list"):
        trace(lambda x, y: W.sum())(np.ones(2), [1, 2])
    with pytest.raises(TypeError, match="must return a Tensor.*got float"):
        trace(lambda x: 1.0)(np.ones(2))
    with pytest.raises(RuntimeError, match="does not require a gradient"):
        trace(lambda x: Tensor(x).sum())(np.ones(2))


def test_a_function_reading_the_numbers_outside_ops_is_caught_by_check():
    """Frozen at trace time: a scale computed from x's numbers. check() compares the replay with
    the graph on other inputs and names what differs."""
    rng = np.random.default_rng(12)
    W, = _params(rng, np.float64, (3,))
    step = trace(lambda x: (W * Tensor(x) * float(np.abs(x).max())).sum())
    step(rng.standard_normal(3))
    with pytest.raises(TraceError, match="output 0 differs from the graph's"):
        step.check(rng.standard_normal(3))
    ok = trace(lambda x: (W * Tensor(x)).sum())
    assert ok.check(rng.standard_normal(3)) and ok.check(rng.standard_normal(3))


# --- modes ------------------------------------------------------------------------------------

def test_no_grad_anomaly_mode_and_a_create_graph_gradient_run_on_the_graph():
    rng = np.random.default_rng(13)
    W, = _params(rng, np.float64, (3,))
    step = trace(lambda x: (W * W * Tensor(x)).log().sum())
    step(np.ones(3) * 2)
    with no_grad(), pytest.raises(RuntimeError, match="does not require a gradient"):
        step(np.ones(3))
    W.grad = None
    bad = -np.ones(3)
    with detect_anomaly(), np.errstate(invalid="ignore"), \
            pytest.raises(FloatingPointError, match="log"):
        step(bad)
    assert step.replays == 0
    # an earlier create_graph pass left a node in .grad: the sum must keep its graph
    W.grad = None
    (W * W).sum().backward(create_graph=True)
    step(np.ones(3) * 2)
    assert isinstance(W.grad, Tensor) and W.grad.requires_grad and step.replays == 0


# --- what a replay must still get right, or refuse --------------------------------------------

def test_outputs_the_root_does_not_reach_are_replayed():
    """A second output computed beside the loss (a metric, a constant, the input itself)."""
    rng = np.random.default_rng(20)
    W, = _params(rng, np.float64, (3,))

    def fn(x):
        return (W * Tensor(x)).sum(), Tensor(x) * 2, W * 3, Tensor(np.ones(2))
    step = _check_replays(fn, [W], [(rng.standard_normal(3),) for _ in range(3)])
    # a constant handed out is the caller's to change, as the graph's fresh one would be
    step(rng.standard_normal(3))[3][:] = 7.0
    np.testing.assert_array_equal(step(rng.standard_normal(3))[3], np.ones(2))


def test_a_boolean_mask_input_as_an_index_is_refused():
    """How many rows a mask picks is in its numbers, not its shape: a plan made for one count
    would fit the gradients of another batch to the wrong shapes."""
    rng = np.random.default_rng(21)
    W, b = _params(rng, np.float64, (3,), (1,))
    step = trace(lambda x, keep: ((Tensor(x)[keep] * W[0]) * b).sum())
    with pytest.raises(TraceError, match=r"input 1 .*boolean mask.*index"):
        step(rng.standard_normal(5), np.array([1, 0, 0, 0, 0], bool))
    # (a mask that picks no rows by its shape — where's condition — replays)
    _check_replays(lambda x, c: where(c, Tensor(x) * W, b).sum(), [W, b],
                   [(rng.standard_normal(3), rng.random(3) > 0.5) for _ in range(3)])


# --- what a replay must still get right, or refuse --------------------------------------------

def test_detach_and_no_grad_inside_the_function_are_recomputed_on_each_replay():
    """A stop-gradient of a value made from the inputs is no constant of the trace."""
    rng = np.random.default_rng(22)
    W, = _params(rng, np.float64, (3,))

    def detached(x):
        h = W * Tensor(x)
        return (h * h.detach()).sum() + (W * W.detach()).sum()

    def scaled(x):
        with no_grad():
            s = (Tensor(x) ** 2).sum()
        return (W * Tensor(x) * s).sum()
    for fn in (detached, scaled):
        _check_replays(fn, [W], [(rng.standard_normal(3),) for _ in range(3)])
    # W's data replaced (as an optimiser may): its detached copy is read anew too
    step = trace(detached)
    step(rng.standard_normal(3))
    W.data = W.data * 2.0
    x = rng.standard_normal(3)
    _assert_identical(_replayed(step, [W], x), _graph(detached, [W], x))


# --- what a replay must still get right, or refuse --------------------------------------------

def test_a_trace_inside_a_traced_function_leaves_the_outer_one_recording():
    rng = np.random.default_rng(23)
    W, V = _params(rng, np.float64, (2, 3), (3,))
    inner = trace(lambda x: (Tensor(x) @ W).sum())

    def outer(x):
        inner(x)
        return (V * (Tensor(x) * 2).sum() * Tensor(x)[0, 0]).sum()
    _check_replays(outer, [V], [(rng.standard_normal((4, 2)),) for _ in range(3)])


# --- what a replay must still get right, or refuse --------------------------------------------

def test_a_parameter_or_constant_whose_data_changes_shape_or_dtype_is_traced_anew():
    rng = np.random.default_rng(24)
    W, b = _params(rng, np.float64, (2, 3), (3,))
    C = Tensor(np.ones(3))                      # a constant the function reads
    fn = lambda x: ((Tensor(x) @ W + b) * C).sum()  # noqa: E731
    step = trace(fn)
    x = rng.standard_normal((4, 2))
    step(x)
    for change in (lambda: setattr(b, "data", b.data.astype(np.float32)),
                   lambda: setattr(b, "data", b.data.reshape(1, 3)),
                   lambda: setattr(C, "data", np.full(3, 2.0)),
                   lambda: setattr(C, "data", np.full((4, 3), 3.0))):
        change()
        _assert_identical(_replayed(step, [W, b], x), _graph(fn, [W, b], x))
    assert step.traces == 4 and step.replays == 1


# --- what a replay must still get right, or refuse --------------------------------------------

def test_labels_out_of_range_are_refused_on_a_replay_as_on_the_graph():
    rng = np.random.default_rng(25)
    W, = _params(rng, np.float64, (3, 3))
    step = trace(lambda x, y: (Tensor(x) @ W).softmax_cross_entropy(y))
    step(rng.standard_normal((4, 3)), np.array([0, 1, 2, 0]))
    for bad in ([0, -1, 2, 0], [0, 3, 2, 0]):
        with pytest.raises(ValueError, match=r"class labels must lie in 0\.\.2"):
            step(rng.standard_normal((4, 3)), np.array(bad))


# --- what a replay must still get right, or refuse --------------------------------------------

def test_aliased_inputs_are_refused_with_the_reason():
    rng = np.random.default_rng(26)
    W, = _params(rng, np.float64, (3,))
    x = rng.standard_normal(3)
    with pytest.raises(TraceError, match="input 1 is the same array as input 0"):
        trace(lambda a, c: (W * Tensor(a) * Tensor(c)).sum())(x, x)
    with pytest.raises(TraceError, match=r"input 0 is the \.data of a leaf that requires a "
                                         r"gradient"):
        trace(lambda a: (W * Tensor(a)).sum())(W.data)


# --- what a replay must still get right, or refuse --------------------------------------------

def test_int32_labels_are_fed_to_cross_entropy_as_themselves():
    """Labels converted for the op (int32 → intp) were a copy the trace kept as a constant,
    while the same input, fed to an index, still counted as found."""
    rng = np.random.default_rng(27)
    W, = _params(rng, np.float64, (3, 3))

    def fn(x, y):
        z = Tensor(x) @ W
        return z.softmax_cross_entropy(y) + z[np.arange(4), y].sum()
    _check_replays(fn, [W], [(rng.standard_normal((4, 3)), rng.integers(0, 3, 4, np.int32))
                             for _ in range(3)])


# --- nn.fit: the traced step trains exactly as the graph ----------------------------------------

@pytest.mark.parametrize("cost", ["document", "mse", "cross_entropy"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_fit_with_the_traced_step_matches_the_graph_exactly(cost, dtype):
    rng = np.random.default_rng(14)
    X = rng.random((53, 6))
    y = rng.integers(0, 3, 53) if cost == "cross_entropy" else rng.random((53, 3))
    runs = []
    for traced in (True, False):
        model = nn.MLP(6, [7, 3], activation="tanh", dtype=dtype, seed=2)
        history = fit(model, X, y, cost=cost, l2=1e-3, batch_size=10, epochs=3, seed=4,
                      validation_fraction=0.2, progress=False, trace=traced)
        runs.append((model, history))
    (m1, h1), (m2, h2) = runs
    assert h1.loss == h2.loss and h1.val_loss == h2.val_loss
    for p, q in zip(m1.parameters(), m2.parameters()):
        np.testing.assert_array_equal(p.data, q.data)
    # 42 training rows in batches of 10: shapes 10 and 2, one trace each, the rest replayed
    assert h1.replayed == 3 * 5 - 2 and h2.replayed == 0


def test_fit_does_not_trace_a_model_whose_forward_is_overridden():
    class Noisy(nn.MLP):
        def forward(self, x):
            return super().forward(x)
    rng = np.random.default_rng(15)
    model = Noisy(4, [3, 2], seed=0)
    history = fit(model, rng.random((20, 4)), rng.random((20, 2)), batch_size=5, epochs=2,
                  progress=False)
    assert history.replayed == 0


def test_fit_refuses_a_trace_flag_that_is_not_a_bool():
    with pytest.raises(TypeError, match="trace must be True or False, got 'no'"):
        fit(nn.MLP(2, [1]), np.ones((3, 2)), np.ones(3), trace="no", progress=False)


@pytest.mark.parametrize("make", [
    lambda: nn.MLPClassifier(hidden_layer_sizes=(6,), max_iter=8, random_state=0),
    lambda: nn.MLPClassifier(hidden_layer_sizes=(5,), solver="lbfgs", max_iter=15,
                             random_state=1),
    lambda: nn.MLPRegressor(hidden_layer_sizes=(4,), max_iter=8, random_state=2,
                            early_stopping=True),
], ids=["classifier adam", "classifier lbfgs", "regressor early stopping"])
@pytest.mark.parametrize("classes", [2, 3])
def test_the_estimators_traced_step_fits_exactly_as_the_graph(monkeypatch, make, classes):
    """MLPClassifier/MLPRegressor replay their step (softmax and binary log loss, the
    document's cost; Adam and L-BFGS) and fit to the same floats as building the graph."""
    import warnings

    from nn import estimators
    rng = np.random.default_rng(16)
    X, y = rng.random((60, 4)), rng.integers(0, classes, 60)
    made = []

    def spy(fn, fallback):
        made.append(trace(fn, fallback))
        return made[-1]
    fitted = []
    for stub in (spy, lambda fn, fallback: None):        # traced, then the graph every step
        monkeypatch.setattr(estimators, "trace", stub)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")          # ConvergenceWarning at max_iter
            fitted.append(make().fit(X, y))
    assert sum(t.replays for t in made) > 0 and not any(t.refused for t in made)
    traced, graph = fitted
    assert traced.loss_ == graph.loss_
    assert getattr(traced, "loss_curve_", None) == getattr(graph, "loss_curve_", None)
    for p, q in zip(traced.coefs_ + traced.intercepts_, graph.coefs_ + graph.intercepts_):
        np.testing.assert_array_equal(p, q)


def test_the_poisson_regressor_is_not_traced(monkeypatch):
    """Its batch loss adds Σ y log y − y − … of the targets as a Python number: a replay would
    keep the first batch's, so the step runs on the graph."""
    from nn import estimators
    made = []
    monkeypatch.setattr(estimators, "trace", lambda fn, fallback: made.append(fn))
    rng = np.random.default_rng(17)
    with pytest.warns(ConvergenceWarning):
        nn.MLPRegressor(hidden_layer_sizes=(3,), loss="poisson", max_iter=2,
                        random_state=0).fit(rng.random((30, 2)), rng.poisson(2.0, 30) * 1.0)
    assert made == []


@pytest.mark.parametrize("given", [np.float64, np.int64, np.bool_])
def test_an_input_a_tensor_converts_is_converted_again_on_each_replay(given):
    """Tensor(x, dtype=float32) of a float64, int or bool input is a copy: while tracing it is
    recorded as astype of the input, so a replay converts the new numbers — also when the
    same input reaches the graph as itself elsewhere (which let the trace accept it)."""
    rng = np.random.default_rng(18)
    W, = _params(rng, np.float32, (3,))

    def fn(x):
        return (W * Tensor(x, dtype=np.float32)).sum() + Tensor(x).sum() * 0.5
    draws = [(rng.integers(0, 5, 3).astype(given),) for _ in range(4)]
    _check_replays(fn, [W], draws)
