"""The project's key target: the document's δ formulas (nn.delta, plain numpy) and autograd give
the same ∂J/∂W^(l), ∂J/∂b^(l) — on Value and on Tensor, to a relative difference ≤ 1e-12 in
float64 — and both match central differences ≤ 1e-6 away from ReLU kinks.

Hypothesis chooses the architecture (1–4 hidden layers of 1–20 units; fewer and smaller for the
slow Value engine), the activations, the cost, the L2 convention and the batch size.
"""
import dataclasses

import numpy as np
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

import nn
from nn import delta
from nn.compare import compare_gradients

ACTIVATIONS = ("sigmoid", "tanh", "relu", "identity")
COSTS = ("document", "mse", "cross_entropy")
L2_CONVENTIONS = ("ufldl", "nielsen", "sklearn")

TOL_DELTA = 1e-12
TOL_NUMERIC = 1e-6
KINK = 1e-3          # |z| below this at a ReLU layer: central differences are not trusted
KAPPA = 1e3          # f′ = f(1 − f), 1 − f² amplify a 1-ulp difference in f(z) at most this much


@dataclasses.dataclass
class Case:
    n_in: int
    sizes: list          # hidden widths, then the k outputs
    activation: str
    output_activation: str
    cost: str
    l2: float
    l2_convention: str
    n_train: int | None
    n: int               # rows in the batch
    init: str
    seed: int

    def model(self, engine):
        if engine == "tensor":
            return nn.MLP(self.n_in, self.sizes, self.activation, self.output_activation,
                          init=self.init, seed=self.seed)
        return nn.ValueMLP(self.n_in, self.sizes, self.activation, self.output_activation,
                           init=self.init, seed=self.seed)

    def batch(self):
        rng = np.random.default_rng(self.seed + 1)
        X = rng.standard_normal((self.n, self.n_in))
        k = self.sizes[-1]
        if self.cost == "cross_entropy":
            return X, rng.integers(0, k, self.n)
        return X, rng.uniform(0.0, 1.0, (self.n, k))

    def kwargs(self):
        return dict(cost=self.cost, l2=self.l2, l2_convention=self.l2_convention,
                    n_train=self.n_train)


@st.composite
def cases(draw, max_hidden_layers, max_units, max_batch, inits=("glorot", "normal")):
    hidden = draw(st.lists(st.integers(1, max_units), min_size=1, max_size=max_hidden_layers))
    cost = draw(st.sampled_from(COSTS))
    activation = draw(st.sampled_from(ACTIVATIONS))
    # Cross-entropy takes logits z^(L): its output layer is the identity.
    output = "identity" if cost == "cross_entropy" else draw(st.sampled_from(ACTIVATIONS))
    convention = draw(st.sampled_from(L2_CONVENTIONS))
    return Case(
        n_in=draw(st.integers(1, max_units)),
        sizes=hidden + [draw(st.integers(2 if cost == "cross_entropy" else 1, 5))],
        activation=activation,
        output_activation=output,
        cost=cost,
        l2=draw(st.sampled_from([0.0, 1e-4, 0.1, 1.0]) | st.floats(0.0, 2.0)),
        l2_convention=convention,
        n_train=draw(st.integers(1, 1000)) if convention == "nielsen" else None,
        n=draw(st.integers(1, max_batch)),
        init=draw(st.sampled_from(inits)),
        seed=draw(st.integers(0, 2**32 - 1)),
    )


TENSOR_CASES = cases(max_hidden_layers=4, max_units=20, max_batch=64)
VALUE_CASES = cases(max_hidden_layers=2, max_units=6, max_batch=8)


def z_values(case, model):
    """[(f_l, z^(l)) for l = 1..L] by the δ reference's forward pass."""
    X, _ = case.batch()
    state = model.state_dict()
    L = len(case.sizes)
    weights = [state[f"layers.{l}.W"] for l in range(L)]
    biases = [state[f"layers.{l}.b"] for l in range(L)]
    names = [case.activation] * (L - 1) + [case.output_activation]
    _, z = delta.forward(weights, biases, X, names)
    return list(zip(names, z))


def conditioning(case, model):
    """κ: how much the document's f′ amplifies a 1-ulp difference between two computations of
    f(z) (autograd's sigmoid and numpy's differ in the last bit).

    sigmoid  f′ = f(1 − f): 1 − f loses log10(1 + e^z) digits for z > 0, κ = 1 + e^max(z, 0)
    tanh     f′ = 1 − f²:   κ = 1 / (1 − tanh² z) = cosh² z
    """
    kappa = 1.0
    with np.errstate(over="ignore"):
        for f, z in z_values(case, model):
            if f == "sigmoid":
                kappa = max(kappa, float(np.max(1 + np.exp(np.maximum(z, 0)))))
            elif f == "tanh":
                kappa = max(kappa, float(np.max(np.cosh(z) ** 2)))
    return kappa


def agree(p, comparison, tol):
    """rel(autograd, δ) ≤ tol, or, for a gradient that is small because its terms cancel (a
    relative measure then magnifies rounding), every entry within 1e-14·max(1, |J|): the two
    sum the same O(1) terms in different orders."""
    return p.rel_delta <= tol or p.max_abs_delta <= 1e-14 * max(1.0, abs(comparison.cost_delta))


def describe(case, comparison):
    return f"{case}\n{comparison.table()}"


def assert_delta_agrees_with_autograd(case, engine, tol=TOL_DELTA):
    X, y = case.batch()
    c = compare_gradients(case.model(engine), X, y, numeric=False, **case.kwargs())
    for p in c.parameters:
        assert p.autograd.shape == p.delta.shape == p.shape
        assert agree(p, c, tol), f"{p.name}: rel {p.rel_delta:.3e}\n{describe(case, c)}"
    assert abs(c.cost_autograd - c.cost_delta) <= TOL_DELTA * max(1.0, abs(c.cost_delta))


def relu_z_clear_of_kinks(case, model):
    """False when some z^(l) of a ReLU layer has |z| < KINK (central differences meaningless)."""
    return all(np.min(np.abs(z)) >= KINK for f, z in z_values(case, model) if f == "relu")


def assert_both_agree_with_central_differences(case, engine):
    model = case.model(engine)
    assume(relu_z_clear_of_kinks(case, model))
    assume(conditioning(case, model) <= KAPPA)
    X, y = case.batch()
    c = compare_gradients(model, X, y, numeric=True, max_entries=40, seed=case.seed,
                          **case.kwargs())
    assert c.warnings == []
    for p in c.parameters:
        assert agree(p, c, TOL_DELTA), f"{p.name}\n{describe(case, c)}"
        # rel ≤ 1e-6, or (for a gradient too small for a relative measure) every entry within
        # the noise floor of central differences themselves: see Comparison.numeric_floor.
        assert p.numeric_agrees(TOL_NUMERIC, c.numeric_floor), f"{p.name}\n{describe(case, c)}"
    assert c.passed()


# ≤ 1e-12 everywhere, saturated units included: both sides compute f′ without the
# cancellation of 1 − f (σ′ = σ(z)σ(−z), tanh′ = sech² z), so a last-bit difference in f(z)
# is not amplified. (Computed as f(1 − f), a sigmoid output at z ≈ 19 gave rel 5e-9.)
@settings(max_examples=40, deadline=None)
@given(TENSOR_CASES)
def test_delta_agrees_with_autograd_on_tensor(case):
    assert_delta_agrees_with_autograd(case, "tensor")


@settings(max_examples=15, deadline=None)
@given(VALUE_CASES)
# found by hypothesis: W(1)'s gradient, −2.6e−6, is a sum whose terms cancel; the two sides
# differ by 1.2e−17, a relative 2.4e−12
@example(Case(n_in=1, sizes=[1, 1], activation="tanh", output_activation="tanh",
              cost="document", l2=0.0, l2_convention="ufldl", n_train=None, n=3,
              init="glorot", seed=487))
def test_delta_agrees_with_autograd_on_value(case):
    assert_delta_agrees_with_autograd(case, "value")


@settings(max_examples=40, deadline=None)
@given(TENSOR_CASES, st.sampled_from(["tensor", "value"]))
def test_delta_agrees_with_autograd_where_units_saturate(case, engine):
    if engine == "value":
        case = dataclasses.replace(case, sizes=[min(s, 6) for s in case.sizes[-3:]],
                                   n_in=min(case.n_in, 6), n=min(case.n, 8))
    # N(0, 1) weights and biases (the document's init) put wide sigmoid/tanh layers deep
    # into saturation
    case = dataclasses.replace(case, init="normal")
    assert_delta_agrees_with_autograd(case, engine)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow])
@given(TENSOR_CASES)
def test_tensor_and_delta_agree_with_central_differences(case):
    assert_both_agree_with_central_differences(case, "tensor")


@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow])
@given(VALUE_CASES)
def test_value_and_delta_agree_with_central_differences(case):
    assert_both_agree_with_central_differences(case, "value")


def test_value_and_tensor_autograd_agree_on_the_same_weights():
    """The two engines on one set of weights: the same gradients, up to rounding."""
    case = Case(3, [4, 5, 2], "tanh", "sigmoid", "document", 0.5, "nielsen", 30, 6, "glorot", 7)
    X, y = case.batch()
    tensor_model, value_model = case.model("tensor"), case.model("value")
    value_model.load_state_dict(tensor_model.state_dict())
    ct = compare_gradients(tensor_model, X, y, numeric=False, **case.kwargs())
    cv = compare_gradients(value_model, X, y, numeric=False, **case.kwargs())
    for pt, pv in zip(ct.parameters, cv.parameters):
        np.testing.assert_allclose(pv.autograd, pt.autograd, rtol=1e-12, atol=1e-18)
        np.testing.assert_array_equal(pv.delta, pt.delta)
