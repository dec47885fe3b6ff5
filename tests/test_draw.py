"""`autograd.draw`: labels, data, grads, local derivatives, clusters, stale marks, determinism,
highlighted chains, size limits, Tensor graphs and rendering."""
from __future__ import annotations

import re
import sys
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from autograd import Tensor, Value
from autograd.draw import GraphTooLarge, draw, picture
from nn.losses import document_cost
from nn.tensor_nets import MLP as TensorMLP
from nn.value_nets import MLP as ValueMLP



def neuron():
    x, w, b = Value(0.5, label="x"), Value(-1.0, label="w"), Value(2.0, label="b")
    y = (w * x + b).tanh().with_label("y")
    return y, x, w, b


def test_labels_data_grads_and_local_derivatives():
    y, x, w, b = neuron()
    y.backward()
    src = draw(y).source
    for text in ("w\\ndata -1\\ngrad 0.09035", "x\\ndata 0.5", "y\\ndata 0.9051\\ngrad 1"):
        assert text in src
    assert "tanh" in src and "×" in src
    # ∂tanh(u)/∂u = 1 − tanh²(1.5) = 0.1807 on the edge into tanh; ∂(w·x)/∂w = x = 0.5
    assert 'label="1 − tanh²(u) = 0.1807"' in src
    assert 'v0 -> op2 [label="x = 0.5"]' in src
    assert 'v1 -> op2 [label="w = -1"]' in src
    bare = draw(y, show_formula=False).source
    assert "label=0.1807" in bare and "tanh²" not in bare
    assert "label=0.1807" not in draw(y, show_local=False).source


def test_not_computed_and_stale_marks():
    y, x, w, b = neuron()
    before = draw(y).source
    assert "grad: not computed\\n(call backward)" in before
    y.backward()
    assert "not computed" not in draw(y).source
    newer = (w * 3.0).with_label("other")
    newer.backward()
    old = draw(y).source                       # y's graph after a newer backward through w
    assert "stale" in old
    assert "w\\ndata -1\\ngrad" in old and "stale: from another backward pass" in old


def test_deterministic_dot():
    y1 = neuron()[0]
    y1.backward()
    y2 = neuron()[0]
    y2.backward()
    assert draw(y1).source == draw(y1).source
    assert draw(y1).source == draw(y2).source
    ids = re.findall(r"\b(v\d+|op\d+)\b", draw(y1).source)
    assert ids and all(int(i.lstrip("vop")) < 6 for i in ids)


def test_highlight_product_equals_gradient():
    y, x, w, b = neuron()
    y.backward()
    src = draw(y, highlight=w).source
    assert "0.1807 × 1 × 0.5 = 0.09035" in src and "✓" in src
    a = Value(3.0, label="a")
    r = a * a + a
    r.backward()
    src = draw(r, highlight=a).source
    assert "(1 × 3) + (1 × 3) + (1) = 7" in src and "engine's backward: 7 ✓" in src
    assert src.count("#d62728") > 5


def test_highlighting_a_constant_says_so_instead_of_a_mismatch():
    a = Value(2.0, label="a")
    c = Value(5.0, label="c", requires_grad=False)
    y = a * c + a.exp()
    y.backward()
    src = draw(y, highlight=c).source
    assert "c is a constant" in src and "gives 2" in src and "✗" not in src


def _network():
    model = ValueMLP(2, [3, 1], activation="tanh", seed=1)
    J = document_cost([model([0.5, -0.2])], [[1.0]]).with_label("J")
    J.backward()
    return J, model


def test_clusters_by_layer_and_neuron():
    J, _ = _network()
    by_layer = draw(J, cluster="layer").source
    assert "subgraph cluster_layer1 {" in by_layer and "subgraph cluster_layer2 {" in by_layer
    assert "cluster_layer1_neuron" not in by_layer
    by_neuron = draw(J, cluster="neuron").source
    assert "subgraph cluster_layer1_neuron2 {" in by_neuron
    block = by_neuron.split("subgraph cluster_layer1_neuron2 {")[1].split("}")[0]
    for label in ("W(1)[0,2]", "b(1)[2]", "z(1)[2]", "a(2)[2]"):
        assert label in block
    assert "cluster" not in draw(J).source


def test_collapse_keeps_a_big_value_mlp_readable():
    model = ValueMLP(2, [16, 16, 1], seed=0)
    J = document_cost([model([0.5, -0.3])], [[1.0]]).with_label("J")
    J.backward()
    full = draw(J, collapse=False)
    small = draw(J, collapse=True)
    count = lambda g: len(re.findall(r"^\s+(?:v|op)\d+ \[", g.source, re.M))  # noqa: E731
    assert count(small) < count(full) / 5
    assert "Σ wᵢaᵢ + b" in small.source and "z(2)[15]" in small.source
    with pytest.raises(GraphTooLarge):
        draw(J, collapse=False, max_nodes=500)
    assert "Σ wᵢaᵢ + b" in draw(J, max_nodes=500).source       # "auto" collapses
    # every input feeds every collapsed neuron: edge bundles keep the layout compact
    assert "concentrate=true" in small.source and "concentrate" not in full.source


def test_huge_chain_is_refused_by_the_bounded_pre_count(monkeypatch):
    # the refusal comes from counting at most max(max_nodes × 20, 200,000) nodes, before the
    # graph is ordered: a huge graph costs a bounded walk, not a full one
    draw_module = sys.modules["autograd.draw"]     # (the package exports the function)
    v = Value(1.0)
    for _ in range(100_000):                 # ~300,000 nodes with the constants
        v = v * 1.0001

    def no_ordering(root):
        raise AssertionError("the whole graph was ordered")
    monkeypatch.setattr(draw_module, "topo_order", no_ordering)
    with pytest.raises(GraphTooLarge, match="more than 200000 nodes.*smaller root"):
        draw(v)
    with pytest.raises(GraphTooLarge, match="more than 2000 nodes.*collapse=True"):
        draw(v, collapse=False)
    assert isinstance(GraphTooLarge("x"), ValueError)


def test_tensor_graph_draws_with_shapes():
    model = TensorMLP(4, [3, 2], activation="tanh", seed=0)
    x = Tensor(np.ones((2, 4)), label="a(1)")
    J = document_cost(model(x), np.zeros((2, 2))).with_label("J")
    J.backward()
    src = draw(J, cluster="layer", highlight=model.layers[0].W).source
    assert "W(1)\\n(4×3) float64" in src and "z(2)\\n(2×2) float64" in src
    assert "J (2×3)×(4×3)" in src                    # Jacobian shape on the edge W(1) → @
    assert "aᵀ @ (·)" in src or "a(1)ᵀ @ (·)" in src
    assert "‖·‖" in src


def test_render_svg_parses_as_xml(tmp_path):
    y, *_ = neuron()
    y.backward()
    path = tmp_path / "graph.svg"
    from autograd.draw import draw_to_file
    draw_to_file(y, path, highlight=y.parents[0])
    root = ET.parse(path).getroot()
    assert root.tag.endswith("svg")
    texts = "".join(t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}text"))
    assert "tanh" in texts
    assert picture(y).source == draw(y).source


def test_control_characters_in_labels_render_to_valid_svg(tmp_path):
    """XML cannot hold U+001B or a lone surrogate, and NUL ends DOT's text: shown escaped."""
    from autograd.draw import draw_to_file
    x = Value(2.0, label="esc\x1b nul\x00 sur\ud800")
    y = (x * 3).with_label("y\x0c")
    y.backward()
    path = draw_to_file(y, tmp_path / "graph.svg", title="t\x01", highlight=x)
    texts = "".join(t.text or "" for t in ET.parse(path).getroot().iter(
        "{http://www.w3.org/2000/svg}text"))
    assert "esc\\x1b nul\\x00 sur\\ud800" in texts and "y\\x0c" in texts


def test_collapse_draws_a_wide_input_layer():
    # a 784-input neuron stands for ~1,570 nodes: the graph (~51k nodes) collapses to ~1,000
    model = ValueMLP(784, [32, 10], activation="tanh", output_activation="sigmoid", seed=0)
    out = model(np.random.default_rng(0).random(784))
    J = sum(((o - 0.5) * (o - 0.5) for o in out), Value(0.0))
    J.backward()
    assert "Σ wᵢaᵢ + b" in draw(J, collapse=True).source
    with pytest.raises(GraphTooLarge) as info:
        draw(J, collapse=True, max_nodes=100)
    message = str(info.value)
    assert "nodes to draw even with each neuron collapsed" in message
    assert "collapse=True" not in message                 # it is on already: no such advice


def test_too_large_says_the_exact_count():
    model = ValueMLP(2, [4, 1], seed=0)
    J = document_cost([model([0.5, -0.3])], [[1.0]]).with_label("J")
    n = len(re.findall(r"^\s+(?:v|op)\d+ \[", draw(J, collapse=False).source, re.M))
    with pytest.raises(GraphTooLarge, match=f"graph too large to draw: {n} nodes to draw"):
        draw(J, collapse=False, max_nodes=n - 1)
    draw(J, collapse=False, max_nodes=n)


def test_a_nan_derivative_into_a_constant_is_not_drawn_as_a_number():
    x = Value(-3.0, label="x")
    y = (x - 1.0) ** 2                     # ∂/∂2 = (x − 1)²·ln(x − 1) = nan, never used
    y.backward()
    src = draw(y).source
    assert "constant: not used" in src and "= nan" not in src


def test_highlight_an_intermediate_value_and_a_nan_chain():
    from autograd import Value, draw
    x = Value(0.5, label="x")
    h = (x * 3).with_label("h")
    z = h.tanh()
    z.backward()
    source = draw(z, highlight=h).source        # h is a fresh handle on a tape entry
    assert "does not depend" not in source and "✓" in source
    x = Value(0.0, label="x")
    y = x.log() * 0.0                            # 0 × inf: nan on both sides, which agree
    assert "✗" not in draw(y, highlight=x).source


def test_highlight_needs_a_scalar_root_and_titles_are_not_html():
    import numpy as np
    import pytest
    from autograd import Tensor, Value, draw
    a = Tensor(np.array([1.0, 2.0]), requires_grad=True, label="a")
    with pytest.raises(ValueError, match="highlight needs a scalar root"):
        draw(a * a, highlight=a)
    y = Value(1.0, label="y") * 2
    assert 'label="<a & b>"' in draw(y, title="<a & b>").source   # quoted, not an HTML label


def test_gradients_of_a_pass_from_another_root_are_not_current():
    """After z.backward(), ∂z/∂· sits in .grad; drawing y (which z used) must not show those
    numbers as ∂y/∂·."""
    from autograd import Value
    x = Value(2.0, label="x")
    y = (x * x).with_label("y")
    z = y * 3
    z.backward()
    assert x.grad_state(z) == "current"
    assert y.grad_state(y) == "stale" and x.grad_state(y) == "stale"
    y.backward()
    assert x.grad_state(y) == "current" and x.grad_state(z) == "stale"


def test_accumulated_leaf_grad_says_what_this_pass_gave():
    """.grad of a leaf adds up over backward passes (PyTorch's rule); the picture of one pass
    must not pass the sum off as ∂root/∂leaf, which the edges and the caption give."""
    x = Value(2.0, label="x")
    y = x * x
    y.backward()
    assert "accumulated" not in draw(y).source
    y.backward()                                            # x.grad = 8, ∂y/∂x = 4
    src = draw(y, highlight=x).source
    assert "grad 8\\n(accumulated; this pass 4)" in src and "= 4 " in src
    z = x * 5                                               # another root through x
    z.backward()
    assert "grad 13\\n(accumulated; this pass 5)" in draw(z).source
    W = Tensor(np.ones(2), requires_grad=True, label="W")
    t = W * 3.0
    t.backward(np.ones(2))
    t.backward(np.full(2, 2.0))                             # 3 + 6; this pass (its seed 2): 6
    assert "accumulated; this pass:\\n[6. 6.]" in draw(t).source


def test_a_carriage_return_or_c1_control_in_a_label_is_shown_escaped():
    """\\r and U+009B (CSI) are valid XML but still control characters: shown as \\r, \\x9b."""
    y = (Value(2.0, label="cr\r csi\x9b del\x7f") * 3).with_label("y")
    source = draw(y).source
    assert "cr\\\\r csi\\\\x9b del\\\\x7f" in source
    assert not [ch for ch in source if ch in "\r\x9b\x7f"]


def test_format_characters_in_labels_are_shown_escaped_and_other_text_kept(tmp_path):
    """A bidi override, an isolate, a zero-width space and a BOM draw as nothing or reorder
    what follows: shown as \\u202e, \\u2066, ... in the DOT text and the SVG. Greek letters,
    superscripts and CJK are text, drawn as they are."""
    from autograd.draw import draw_to_file
    x = Value(2.0, label="W⁽¹⁾ α 中文")
    w = Value(3.0, label="rtl\u202eab iso\u2066c\u2069 zw\u200b bom\ufeff")
    y = (x * w).with_label("y\u200f")
    y.backward()
    source = draw(y, highlight=w, title="t\u202a").source
    assert not [ch for ch in source if ch in "\u202e\u2066\u2069\u200b\ufeff\u200f\u202a"]
    assert "rtl\\\\u202eab iso\\\\u2066c\\\\u2069 zw\\\\u200b bom\\\\ufeff" in source
    assert "y\\\\u200f" in source and "t\\\\u202a" in source
    assert "W⁽¹⁾ α 中文" in source
    path = draw_to_file(y, tmp_path / "graph.svg")
    texts = "".join(t.text or "" for t in ET.parse(path).getroot().iter(
        "{http://www.w3.org/2000/svg}text"))
    assert "rtl\\u202eab" in texts and "W⁽¹⁾ α 中文" in texts and "\u202e" not in texts
