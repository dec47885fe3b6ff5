"""`autograd.explain`: the narrated backward pass uses the engine's numbers and says so."""
from __future__ import annotations

import math
import re
import sys

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


@pytest.mark.parametrize("kind", ["value", "tensor"])
def test_max_steps_bounds_the_work_not_only_the_text(monkeypatch, kind):
    """A long chain with a small max_steps: the local derivatives worked out and the numbers
    written are those of the steps shown, not one per node (a 1,000,000-node chain took 40 s,
    replaying and formatting every node before the text was cut)."""
    module = sys.modules["autograd.explain"]        # (autograd.explain is the function)
    calls = {"local": 0, "num": 0}

    def counted(name, f):
        def wrapper(*args):
            calls[name] += 1
            return f(*args)
        return wrapper
    monkeypatch.setattr(module, "local_derivative", counted("local", module.local_derivative))
    monkeypatch.setattr(module, "_num", counted("num", module._num))
    v = Value(1.0, label="x") if kind == "value" else Tensor(np.ones(2), requires_grad=True,
                                                             label="x")
    for _ in range(3000):
        v = v * 1.0001
    text = explain(v if kind == "value" else v.sum(), max_steps=5)
    extra = 0 if kind == "value" else 1                          # the Tensor's sum
    assert f"… {2995 + extra} more steps" in text
    assert f"… {5996 + extra} more nodes" in text
    assert calls["local"] <= 5 and calls["num"] < 50, calls


GRAPHS = {
    "chain": lambda: _chain(Value(1.0, label="x"), 12),
    "reuse": lambda: _reuse(Value(3.0, label="a")),
    "constant leaf": lambda: _with_constant(Value(2.0, label="x")),
    "two tapes": lambda: _two_tapes(Value(3.0, label="x")),
    "tensor": lambda: _chain(Tensor(np.ones(2), requires_grad=True, label="x"), 6).sum(),
    "mlp": lambda: document_cost(TensorMLP(3, [2, 2], seed=0)(Tensor(np.ones((2, 3)))),
                                 np.zeros((2, 2))),
}


def _chain(v, n):
    for _ in range(n):
        v = (v * 1.5).tanh()
    return v


def _reuse(a):
    return a * a + a * (a + 1.0)


def _with_constant(x):
    c = Value(5.0, label="c", requires_grad=False)
    return x * c + (x * x).exp() * c


def _two_tapes(x):
    y = (x * 2).with_label("y")
    y.backward()                                   # later ops go on a new tape
    return (y * y + x).tanh()


@pytest.mark.parametrize("name", GRAPHS)
@pytest.mark.parametrize("format", ["text", "markdown", "latex"])
def test_a_capped_story_is_the_full_one_cut_and_counts_what_it_leaves_out(name, format):
    """With max_steps = k the steps shown are the first k of the full story, "… N more steps"
    counts exactly the rest, and the leaf table and the checks are the full story's."""
    full = explain(GRAPHS[name](), format=format, max_steps=None)
    head, tail = _split_at_leaves(full, format)
    total = len(re.findall(r"local: ", head))
    for k in range(total + 2):
        capped = explain(GRAPHS[name](), format=format, max_steps=k)
        capped_head, capped_tail = _split_at_leaves(capped, format)
        assert capped_tail == tail
        assert len(re.findall(r"local: ", capped_head)) == min(k, total)
        shown = _backward_lines(capped_head)
        assert shown == _backward_lines(head)[:len(shown)], k
        more = re.search(r"(\d+) more steps?\b", capped_head)
        assert (int(more.group(1)) if more else 0) == max(total - k, 0), k


def _backward_lines(head):
    """The backward section's lines, without the "more steps" line and the layout after it."""
    lines = [line for line in head.rsplit("Backward pass", 1)[1].splitlines()
             if "more step" not in line and line != "\\end{align*}"]
    while lines and not lines[-1]:
        lines.pop()
    return lines


def _split_at_leaves(text, format):
    """(everything before the leaf table, the table and the checks)."""
    mark = {"text": "Leaf gradients:", "markdown": "### Leaf gradients",
            "latex": "\\begin{tabular}"}[format]
    head, tail = text.split(mark)
    return head, tail


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


def test_running_sums_across_tapes_add_every_contribution():
    """Nodes made before a backward() (a new tape begins) and reused after it: the narrated
    sum is the sum of the contributions shown (it used to print one tape entry's share)."""
    x = Value(3.0, label="x")
    y = (x * 2).with_label("y")
    y.backward()
    text = explain(y * y)
    assert "2 contributions: 6 + 6 = 12" in text
    assert "(input 1)" in text and "(input 2)" in text     # y·y: which input, for a handle too


def test_central_differences_catch_a_wrong_rule_the_engine_check_cannot(monkeypatch):
    """The engine check reruns the same derivative rules as the narration; the central
    differences re-run only the forward pass, so a wrong rule shows."""
    from autograd import rules
    x, w, b = Value(0.5, label="x"), Value(-1.0, label="w"), Value(2.0, label="b")
    text = explain((w * x + b).tanh())
    assert "Central differences" in text and "they agree with every narrated gradient" in text
    vjp = rules.TANH.vjps[0]
    monkeypatch.setattr(rules.TANH, "vjps", (lambda m, g, y, u: vjp(m, g, y, u) * 0.5,))
    x, w, b = Value(0.5, label="x"), Value(-1.0, label="w"), Value(2.0, label="b")
    text = explain((w * x + b).tanh())
    assert "equal the engine's" in text                 # the circular check still passes
    assert "they DISAGREE for" in text and "✗" in text.splitlines()[-1]
    W = Tensor(np.random.default_rng(0).standard_normal((3, 2)), requires_grad=True, label="W")
    big = Tensor(np.ones((20, 10)), requires_grad=True)
    assert "Central differences (" in explain((Tensor(np.ones((4, 3))) @ W).sum())
    assert "not run (200 leaf entries" in explain((big * big).sum())


def test_central_differences_that_cannot_be_taken_are_not_a_disagreement(monkeypatch):
    """At the edge of a domain (log or sqrt at 0) f(x − ε) is nan: no difference quotient
    exists, so the check says it was not taken instead of blaming the derivative rules, and
    it still holds the rules against the entries and leaves where one exists."""
    last = lambda root: explain(root).splitlines()[-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        x = Value(0.0, label="x")
        for root in (x.log(), x.sqrt() * x):
            line = last(root)
            assert "not taken for x" in line and "DISAGREE" not in line and "✗" not in line
        x, y = Value(0.0, label="x"), Value(2.0, label="y")
        line = last(x.sqrt() + y * y)
        assert "they agree with the narrated gradients" in line and "not taken for x" in line
        assert line.endswith("✓")
        v = Tensor(np.array([0.0, 1.0, 4.0]), requires_grad=True, label="v")
        line = last(v.sqrt().sum())
        assert "not taken for 1 of the 3 entries of v" in line and line.endswith("✓")
        assert "DISAGREE" not in line
        # a wrong rule is still caught on the entries that have a difference quotient
        from autograd import rules
        vjp = rules.SQRT.vjps[0]
        monkeypatch.setattr(rules.SQRT, "vjps", (lambda m, g, y, u: vjp(m, g, y, u) * 0.5,))
        v = Tensor(np.array([0.0, 1.0, 4.0]), requires_grad=True, label="v")
        line = last(v.sqrt().sum())
        assert "they DISAGREE for v" in line and "not taken for 1 of the 3 entries" in line


def test_a_grad_holding_more_than_the_pass_is_named_as_such():
    x = Value(2.0, label="x")
    y = x * x
    y.backward()
    y.backward()                                       # .grad holds two passes
    text = explain(y)
    assert "backward() ran more than once" in text and "✓" in text


def test_latex_and_markdown_hold_any_label_and_formula():
    """÷, √ and powers as LaTeX; labels with markdown or LaTeX specials escaped."""
    a, b = Value(2.0, label="a"), Value(3.0, label="b")
    tex = explain((a ** b) / a.sqrt(), format="latex")
    assert "÷" not in tex and "√" not in tex and r"\div" in tex
    assert "u^{v-1}" in tex.replace(" ", "") and "**" not in tex
    odd = Value(1.0, label="a += b\n\nc")
    tex = explain(odd * odd, format="latex")
    assert "\n\n\\" not in tex.split("\\begin{align*}")[1].split("\\end{align*}")[0]
    x, y, z = Value(1.0, label="<x>"), Value(2.0, label="[l](u)"), Value(3.0, label="a`b")
    md = explain(x * y + z * x, format="markdown")
    assert r"\<x\>" in md and r"\[l\]\(u\)" in md and "``a`b = 3  (input)``" in md
    with pytest.raises(ValueError, match="pass grad_out"):
        explain(Tensor(np.ones(2), requires_grad=True) * 2)


def test_latex_is_ascii_apart_from_labels():
    """pdflatex (amsmath, amssymb) stops at a Unicode symbol it has no definition for: every
    symbol explain writes, the central differences' ε and ✓ too, is a command."""
    x, y = Value(0.7, label="x"), Value(1.3, label="y")
    for root in ((x * y).tanh(), x.log() / y.sqrt(), x ** y,
                 Tensor(np.ones((20, 20)), requires_grad=True).softmax(axis=1).sum()):
        tex = explain(root, format="latex")
        assert "varepsilon" in tex or "not run" in tex
        assert not [ch for ch in tex if ord(ch) > 127 and ch != "—"], tex


def test_generated_names_never_repeat_a_users_name():
    from autograd.expr import parse_expression
    expr = parse_expression("a1*a2*a3*a4*a5*a6*a7*n10")
    root = expr.build({f"a{i}": float(i) for i in range(1, 8)} | {"n10": 8.0})
    text = explain(root)
    forward = text.split("Forward pass")[1].split("Backward")[0]
    names = [line.split(" = ")[0].strip() for line in forward.splitlines() if " = " in line]
    assert len(names) == len(set(names)) and "n10" in names
    long = parse_expression("a*b*c + d*e*f + g*h*i*x").build({k: 1.0 for k in "abcdefghix"})
    long.label = "a*b*c + d*e*f + g*h*i*x"           # as the CLI titles a long formula
    md = explain(long, format="markdown")
    assert md.splitlines()[0].count("\\*") >= 4                 # the title is escaped


def test_grad_out_narrates_the_loss_it_defines():
    """With grad_out G the numbers are ∂L/∂· for L = Σ G ⊙ root: ∂y/∂y is 1, so the seed 2 is
    ∂L/∂y, and x's 12 is ∂L/∂x (∂y/∂x is 6)."""
    x = Value(3.0, label="x")
    y = (x * x).with_label("y")
    text = explain(y, grad_out=2.0)
    assert "seed: ∂L/∂y = 2" in text and "∂y/∂y" not in text
    assert "∂L/∂x += ∂L/∂y × ∂y/∂x (input 1) = 2 × 3 = 6" in text
    assert "∂L/∂leaf (narrated)" in text
    assert "seed: ∂y/∂y = 1" in explain(y)
    W = Tensor(np.ones(2), requires_grad=True, label="L")       # the name L is taken
    tex = explain((W * 3.0).with_label("y"), grad_out=np.ones(2), format="latex")
    assert r"\frac{\partial \text{ℓ}}{\partial \text{L}}" in tex


def test_central_differences_not_taken_at_a_pole():
    """1/x at 0: f(0) = inf, and (f(ε) − f(−ε))/2ε = 1e12 is no derivative; the narration's
    −inf is not a wrong rule, and no RuntimeWarning leaks."""
    import warnings
    x = Value(0.0, label="x")
    y = 1 / x + Value(2.0, label="c") * x
    y.backward()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        last = explain(y).splitlines()[-1]
    assert "DISAGREE" not in last and "not taken for x, c" in last


def test_central_differences_run_casts_in_float64():
    """A narrowing astype on the path must not round the ±ε away (a false DISAGREE)."""
    x = Tensor(np.random.default_rng(0).standard_normal((3, 4)), requires_grad=True, label="x")
    assert "they agree" in explain(x.astype(np.float32).sum()).splitlines()[-1]


def test_max_steps_must_be_a_count():
    y, _ = neuron()
    for wrong in (-1, 2.5, "3", True):
        with pytest.raises(ValueError, match="max_steps must be a whole number"):
            explain(y, max_steps=wrong)
    assert "… 4 more steps" in explain(y, max_steps=np.int64(1))


CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")
ODD_LABEL = "red\x1b[31m nul\x00 cr\r bell\x07 csi\x9b"


def _with_odd_labels(format):
    """A graph whose labels hold control characters, one of them on a leaf whose central
    difference is not taken (1/x at 0): its label is also in the last line."""
    x = Value(0.0, label=ODD_LABEL)
    y = (1 / x + Value(2.0, label="c") * x).with_label("y\x1b]0;title\x07")
    return explain(y, format=format)


def test_text_shows_control_characters_in_labels_escaped():
    """A terminal escape in a label must not recolour (or retitle) the reader's terminal, nor
    a carriage return overwrite the line: they read as Python escapes, as `draw` shows them."""
    text = _with_odd_labels("text")
    assert not CONTROLS.search(text), CONTROLS.findall(text)
    shown = "red\\x1b[31m nul\\x00 cr\\r bell\\x07 csi\\x9b"
    assert f"  {shown} = 0  (input)" in text
    assert f"not taken for {shown}" in text.splitlines()[-1]
    assert "Backward pass of y = y\\x1b]0;title\\x07" in text


def test_markdown_shows_control_characters_in_labels_escaped():
    md = _with_odd_labels("markdown")
    assert not CONTROLS.search(md), CONTROLS.findall(md)
    assert "`red\\x1b[31m nul\\x00 cr\\r bell\\x07 csi\\x9b = 0  (input)`" in md
    assert "\\\\x1b\\]0;title\\\\x07" in md                 # the title, outside code spans


def test_latex_shows_control_characters_in_labels_escaped():
    tex = _with_odd_labels("latex")
    assert not CONTROLS.search(tex), CONTROLS.findall(tex)
    assert r"\text{red\textbackslash{}x1b[31m nul\textbackslash{}x00 cr\textbackslash{}r" in tex
    assert tex.count("{") == tex.count("}")


FORMAT_CHARACTERS = re.compile("[\u00ad\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]")


@pytest.mark.parametrize("format", ["text", "markdown", "latex"])
def test_format_characters_in_labels_are_shown_escaped_and_other_text_kept(format):
    """A bidi override or a zero-width character in a label reads as escapes in every
    format, as control characters do; Greek letters and superscripts stay as they are."""
    x = Value(0.5, label="x\u202eab\u200b")
    w = Value(2.0, label="wα⁽¹⁾")
    y = (w * x).with_label("y\u2066\ufeff")
    text = explain(y, format=format)
    assert not FORMAT_CHARACTERS.search(text), FORMAT_CHARACTERS.findall(text)
    backslash = r"\textbackslash{}" if format == "latex" else "\\"
    assert f"x{backslash}u202eab{backslash}u200b = 0.5  (input)" in text, text
    assert f"y = mul(wα⁽¹⁾, x{backslash}u202eab{backslash}u200b) = 1" in text, text


def test_one_step_left_out_is_counted_in_the_singular():
    x = Value(2.0, label="x")
    y = x * 3.0 + 1.0               # two edges need a gradient: mul → x, add → mul
    assert "… 1 more step (raise max_steps" in explain(y, max_steps=1)
    assert "1 more steps" not in explain(y, max_steps=1, format="markdown")
