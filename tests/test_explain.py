"""`autograd.explain`: the narrated backward pass uses the engine's numbers and says so."""
from __future__ import annotations

import math
import re

import numpy as np
import pytest

from autograd import Tensor, Value
from autograd.core import gradients
from autograd.explain import explain
from nn.losses import document_cost
from nn.tensor_nets import MLP as TensorMLP
from nn.value_nets import MLP as ValueMLP


def leaf_table(text):
    """{leaf: (value, narrated, engine)} from the text format's final table."""
    block = text.split("Leaf gradients:\n")[1].split("\n\n")[0].splitlines()[1:]
    rows = {}
    for line in block:
        cells = [c.strip() for c in line.split("|")]
        rows[cells[0]] = tuple(float(c) for c in cells[1:4])
    return rows


def neuron():
    x, w, b = Value(0.5, label="x"), Value(-1.0, label="w"), Value(2.0, label="b")
    return (w * x + b).tanh(), {"x": x, "w": w, "b": b}


def test_numbers_equal_the_engine_gradients():
    y, leaves = neuron()
    text = explain(y)               # no backward yet: compared with gradients(), .grad untouched
    table = leaf_table(text)
    assert set(table) == {"x", "w", "b"}
    engine_grads = dict(zip(leaves, gradients(y, list(leaves.values()))))
    for name, leaf in leaves.items():
        value, narrated, engine = table[name]
        assert value == leaf.data and leaf.grad == 0.0
        assert math.isclose(narrated, engine_grads[name], rel_tol=1e-9)
        assert math.isclose(engine, engine_grads[name], rel_tol=1e-9)
    assert "Check: the narrated gradients equal the engine's for all 3 leaves" in text
    assert "backward() has not run, so compared with autograd.gradients" in text
    y.backward()                    # and a later backward accumulates once, not twice
    assert math.isclose(leaves["w"].grad, engine_grads["w"], rel_tol=1e-12)


def test_tanh_step_has_the_formula_and_the_order_of_the_engine():
    y, _ = neuron()
    y.backward()
    text = explain(y)
    local = 1 - math.tanh(1.5) ** 2
    assert f"∂tanh(u)/∂u = 1 − tanh²(u) = {local:.6g}" in text
    assert "Step 0. seed: ∂n5/∂n5 = 1" in text
    steps = re.findall(r"^\s+(\d+)\. (∂\S+)", text, re.M)
    assert [s[1] for s in steps] == ["∂n5/∂n4", "∂n5/∂n2", "∂n5/∂b", "∂n5/∂w", "∂n5/∂x"]
    assert "∂(u×v)/∂u = v = 0.5" in text      # u, v: never confused with a bias named b
    assert "backward() has not run" not in text


def test_reuse_shows_a_running_sum():
    a = Value(3.0, label="a")
    y = a * a + a
    y.backward()
    text = explain(y)
    assert "now has 2 contributions: 1 + 3 = 4" in text
    assert "now has 3 contributions: 1 + 3 + 3 = 7" in text
    assert "(input 1)" in text and "(input 2)" in text
    assert leaf_table(text)["a"][1] == 7.0 == a.grad


def test_stale_grad_is_checked_against_gradients():
    a = Value(2.0, label="a")
    (a * a).backward()                         # a.grad = 4 from another graph
    y = a * 5.0
    y.backward()                               # a.grad accumulates: 4 + 5
    text = explain(y)
    assert leaf_table(text)["a"][1] == 5.0
    assert "accumulates" in text and "✓" in text.splitlines()[-1]


def test_document_labels_mention_the_residuals():
    model = ValueMLP(2, [2, 1], activation="sigmoid", output_activation="sigmoid", seed=0)
    J = document_cost([model([0.05, 0.1])], [[0.01]]).with_label("J")
    text = explain(J, max_steps=None)
    assert "upstream ∂J/∂z(1)[0]" in text and "the residual δ(2)[0]" in text
    assert "the residual δ(3)[0]" in text
    assert "a(1)[0]·δ(2)[1]" in text           # the document's ∂J/∂W(1)[0,1]


def test_markdown_and_latex():
    y, _ = neuron()
    md = explain(y, format="markdown")
    assert md.startswith("## Backward pass")
    assert "| leaf | value |" in md and "|---|" in md
    assert "`∂n5/∂w += ∂n5/∂n2 × ∂n2/∂w = 0.180707 × 0.5 = 0.0903533`" in md
    tex = explain(y, format="latex")
    assert "\\begin{align*}" in tex and "\\end{align*}" in tex
    assert "\\frac{\\partial \\text{n5}}{\\partial \\text{w}}" in tex
    assert "1 - \\operatorname{tanh}^{2}(u)" in tex
    assert tex.count("{") == tex.count("}")
    assert "∂" not in tex and "×" not in tex
    assert "\\paragraph{Forward pass (topological order)}" in tex and "\\item w = -1" in tex
    z = (Value(0.3) * 2.0).with_label("z(2)[0]")    # the document's residual note, in \text
    note = explain((z * z).with_label("J"), format="latex")
    assert "the residual $\\delta$(3)[0]" in note and "δ" not in note
    with pytest.raises(ValueError, match="format"):
        explain(y, format="html")


def test_max_steps_caps_long_graphs():
    v = x = Value(1.0, label="x")
    for _ in range(500):
        v = v * 1.001
    v.backward()
    text = explain(v, max_steps=10)
    assert "… 490 more steps" in text
    assert len(text.splitlines()) < 80
    assert math.isclose(leaf_table(text)["x"][1], 1.001 ** 500, rel_tol=1e-9)
    assert math.isclose(x.grad, leaf_table(text)["x"][2], rel_tol=1e-9)


def test_tensor_graph_explains_with_shapes_and_norms():
    model = TensorMLP(4, [3, 2], activation="tanh", seed=0)
    x = Tensor(np.linspace(-1, 1, 8).reshape(2, 4))
    J = document_cost(model(x), np.zeros((2, 2))).with_label("J")
    J.backward()
    text = explain(J, max_steps=None)
    assert "Jacobian (2×3)×(4×3), applied as a VJP" in text
    assert "array(4, 3) with ‖·‖" in text
    assert "the residual δ(3)" in text
    block = text.split("Leaf gradients:\n")[1].split("\n\n")[0].splitlines()[1:]
    norms = {c[0]: float(c[2]) for c in ([s.strip() for s in line.split("|")] for line in block)}
    W1 = model.layers[0].W
    assert math.isclose(norms["W(1)"], np.linalg.norm(W1.grad), rel_tol=1e-5)
    assert text.rstrip().endswith("✓")
