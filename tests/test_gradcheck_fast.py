"""`gradcheck(fast=True)` (uᵀJv along random directions, PyTorch's fast mode) and
`gradgradcheck` (second derivatives against central differences of the gradient)."""
from __future__ import annotations

import numpy as np
import pytest

from autograd import Node, Tensor, Value, gradcheck, gradgradcheck, jacobian
from autograd import rules


def mlp(x, W1, b1, W2):
    return ((x @ W1 + b1).tanh() @ W2).softmax_cross_entropy(np.array([0, 2, 1, 2]))


def points(seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((4, 3)), rng.standard_normal((3, 5)), rng.standard_normal(5),
            rng.standard_normal((5, 3)))


def test_fast_mode_is_the_number_u_J_v_with_its_seeds_draws():
    """The analytic number is uᵀ·J·v with u, v drawn from the seed: recomputed by hand here
    from the Jacobian, for a non-scalar output (f: 3×2 → 4×2)."""
    rng = np.random.default_rng(1)
    A, X = rng.standard_normal((4, 3)), rng.standard_normal((3, 2))
    f = lambda X: (Tensor(A) @ X).sin()
    report = gradcheck(f, X, fast=True, seed=7)
    assert report.passed and report.fast
    draws = np.random.default_rng(7)
    u, v = draws.standard_normal((4, 2)), draws.standard_normal((3, 2))
    J = jacobian(f)(X)                                   # (4, 2, 3, 2)
    expected = np.einsum("ab,abcd,cd->", u, J, v)
    assert report.inputs[0].analytic == pytest.approx(expected, rel=1e-12)
    assert report.inputs[0].numeric == pytest.approx(expected, rel=1e-7)


@pytest.mark.parametrize("fast", [False, True])
def test_a_correct_network_passes(fast):
    report = gradcheck(mlp, *points(), fast=fast)
    assert report.passed, str(report)
    assert len(report.inputs) == 4


def test_values_and_mixed_inputs():
    assert gradcheck(lambda a, b: (a * b).tanh() + a ** 3, 0.3, -1.2, fast=True).passed
    assert gradcheck(lambda a, x: (x * a).exp().sum(), np.array(0.5), np.array([0.1, -0.4]),
                     fast=True).passed


def test_fast_mode_costs_four_evaluations_per_input_not_per_entry():
    calls = []

    def f(x, w):
        calls.append(1)
        return (x * w).sum()
    big = np.random.default_rng(0).standard_normal(1000)
    gradcheck(f, big, np.ones(1000), fast=True)
    assert len(calls) == 1 + 4 * 2                   # one recording, four per input
    calls.clear()
    gradcheck(f, big[:10], np.ones(10))
    assert len(calls) == 1 + 4 * 20                  # per entry


def test_fast_mode_catches_a_wrong_rule(monkeypatch):
    vjp = rules.TANH.vjps[0]
    monkeypatch.setattr(rules.TANH, "vjps", (lambda m, g, y, u: vjp(m, g, y, u) * 0.9,))
    report = gradcheck(mlp, *points(), fast=True)
    assert report.status == "FAIL"
    assert [c.status for c in report.inputs][:2] == ["FAIL", "FAIL"]   # x and W1 pass tanh
    assert "uᵀJv: autograd" in str(report)


def test_seeds_draw_the_directions():
    one = gradcheck(mlp, *points(), fast=True, seed=3)
    same = gradcheck(mlp, *points(), fast=True, seed=3)
    other = gradcheck(mlp, *points(), fast=True, seed=4)
    assert [c.analytic for c in one.inputs] == [c.analytic for c in same.inputs]
    assert [c.analytic for c in one.inputs] != [c.analytic for c in other.inputs]


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match=r"scalar-valued function, got shape \(2,\) \(fast=True "
                                         r"checks any shape"):
        gradcheck(lambda x: x * 2, np.ones(2))
    with pytest.raises(TypeError, match="fast must be True or False, got 'yes'"):
        gradcheck(lambda x: x.sum(), np.ones(2), fast="yes")
    with pytest.raises(ValueError, match="seed must be None, an integer >= 0"):
        gradcheck(lambda x: x.sum(), np.ones(2), fast=True, seed=-1)
    with pytest.raises(ValueError, match=r"gradgradcheck needs a scalar-valued function, got "
                                         r"shape \(2,\)"):
        gradgradcheck(lambda x: x * 2, np.ones(2))
    with pytest.raises(TypeError, match="gradgradcheck needs a function, got int"):
        gradgradcheck(3, np.ones(2))


@pytest.mark.parametrize("fast", [False, True])
def test_gradgradcheck_passes_correct_second_derivatives(fast):
    assert gradgradcheck(mlp, *points(), fast=fast).passed
    assert gradgradcheck(lambda a, b: (a ** 3).sin() * b.exp() / (a + 2.0), 0.7, 0.2,
                         fast=fast).passed
    report = gradgradcheck(lambda x: (x * x).sum() * x.sum(), np.array([0.5, -1.0]), fast=fast)
    assert report.passed and str(report).startswith("gradgradcheck (tolerance 1e-06")


def test_gradgradcheck_catches_a_rule_right_to_first_order_only(monkeypatch):
    """tanh's VJP with y treated as a constant under create_graph: first derivatives exact, so
    gradcheck passes; the second derivative loses the ∂(1 − y²)/∂u term."""
    def first_order_only(m, g, y, u):
        if isinstance(y, Node):
            y = type(y)(y.data)                      # a constant: the graph through y is lost
        return g * (1 - y * y)
    monkeypatch.setattr(rules.TANH, "vjps", (first_order_only,))
    f = lambda x, W: (x @ W).tanh().sum()
    x, W = points()[0], points()[1]
    assert gradcheck(f, x, W).passed
    assert gradgradcheck(f, x, W).status == "FAIL"
    assert gradgradcheck(f, x, W, fast=True).status == "FAIL"
    assert gradgradcheck(lambda a: a.tanh(), Value(0.4)).status == "FAIL"


def test_float32_warnings_name_the_check_and_point_at_the_caller():
    x = np.ones(3, dtype=np.float32)
    for check in (gradcheck, gradgradcheck):
        with pytest.warns(UserWarning, match=rf"^{check.__name__}: input\(s\) \[0\] are float32") \
                as caught:
            assert check(lambda v: (v ** 3).sum(), x).passed
        assert len(caught) == 1 and caught[0].filename == __file__


def test_a_bad_seed_is_refused_in_either_mode():
    for fast in (False, True):
        with pytest.raises(ValueError, match="seed must be None, an integer >= 0"):
            gradcheck(lambda x: x.sum(), np.ones(2), fast=fast, seed=-1)
