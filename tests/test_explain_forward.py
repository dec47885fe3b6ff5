"""`explain(mode="forward")` and `chainrule explain --forward`: forward-mode differentiation told
step by step, with the engine's local derivatives, checked against its backward pass."""
from __future__ import annotations

import math
import re

import numpy as np
import pytest

import demos.cli as cli
from autograd import Tensor, Value
from autograd.core import gradients
from autograd.explain import explain


def derivative_row(text):
    """(value, forward, engine, mark) from the text format's Derivative table."""
    block = text.split("Derivative:\n")[1].split("\n\n")[0].splitlines()
    cells = [c.strip() for c in block[1].split("|")]
    return float(cells[1]), float(cells[2]), float(cells[3]), cells[4]


def steps(text):
    """The numbered steps of the text format: [(k, text line)]."""
    return [(int(m.group(1)), m.group(2)) for m in
            re.finditer(r"^\s+(\d+)\. (.*)$", text, flags=re.MULTILINE)]


def central(f, values, i, h=1e-6):
    up, down = list(values), list(values)
    up[i] += h
    down[i] -= h
    return (f(*up) - f(*down)) / (2 * h)


FORMULAS = {
    "neuron": (lambda x, w, b: (w * x + b).tanh(),
               lambda x, w, b: math.tanh(w * x + b), (0.5, -1.0, 2.0)),
    "reuse": (lambda x, w, b: x * x * w + (x * b).exp() / (x + 3.0),
              lambda x, w, b: x * x * w + math.exp(x * b) / (x + 3.0), (0.7, 1.5, -0.4)),
    "powers": (lambda x, w, b: (x ** 3 - w.log() * x) * b.sigmoid(),
               lambda x, w, b: (x ** 3 - math.log(w) * x) / (1 + math.exp(-b)),
               (1.2, 2.5, 0.3)),
}


@pytest.mark.parametrize("name", sorted(FORMULAS))
@pytest.mark.parametrize("which", [0, 1, 2])
def test_forward_derivative_is_the_engine_gradient_and_the_central_difference(name, which):
    build, plain, point = FORMULAS[name]
    leaves = [Value(v, label=label) for v, label in zip(point, "xwb")]
    y = build(*leaves)
    text = explain(y, mode="forward", wrt=leaves[which])
    value, forward, engine, mark = derivative_row(text)
    assert value == point[which]
    assert forward == pytest.approx(gradients(y, [leaves[which]])[0], rel=1e-9, abs=1e-12)
    assert forward == pytest.approx(central(plain, point, which), rel=1e-6, abs=1e-8)
    assert engine == pytest.approx(forward, rel=1e-9, abs=1e-12) and mark == "✓"
    assert "equals the engine's backward pass" in text and "DOES NOT" not in text


def test_each_step_multiplies_the_local_derivative_by_the_incoming_one():
    x, w, b = Value(0.5, label="x"), Value(-1.0, label="w"), Value(2.0, label="b")
    y = (w * x + b).tanh().with_label("y")
    text = explain(y, mode="forward", wrt=x)
    shown = steps(text)
    # the nodes that depend on x, one input each: w·x, w·x + b, tanh
    assert [k for k, _ in shown] == [1, 2, 3]
    assert shown[0][1] == "dn2/dx += ∂n2/∂x × dx/dx = -1 × 1 = -1"      # n2 = w * x
    assert "dy/dx" in shown[2][1] and "0.180707 × -1 = -0.180707" in shown[2][1]
    assert "(w held fixed: no term)" in text and "(b held fixed: no term)" in text
    for _, line in shown:       # local × incoming = contribution, in the printed numbers
        a, b_, c = (float(v) for v in re.search(r"= (\S+) × (\S+) = (\S+)$", line).groups())
        assert a * b_ == pytest.approx(c, rel=1e-5)
    # the backward pass takes the same local derivatives, the other way round
    backward = explain(y)
    assert "1 − tanh²(u) = 0.180707" in backward and "1 − tanh²(u) = 0.180707" in text


def test_a_node_with_two_dependent_inputs_adds_their_terms():
    x, w = Value(0.5, label="x"), Value(-1.0, label="w")
    y = x * x + w * x
    text = explain(y, mode="forward", wrt=x)
    assert "∂n1/∂x (input 1)" in text and "∂n1/∂x (input 2)" in text
    assert "dn1/dx adds its 2 terms: 0.5 + 0.5 = 1" in text
    assert derivative_row(text)[1] == 2 * 0.5 + -1.0


def test_nodes_that_do_not_depend_on_the_input_are_counted_not_shown():
    x, w, b = Value(0.5, label="x"), Value(-1.0, label="w"), Value(2.0, label="b")
    y = (w * b).exp() + x
    text = explain(y, mode="forward", wrt=x)
    assert "(2 more nodes not depending on x: derivative 0, not shown)" in text
    assert len(steps(text)) == 1 and derivative_row(text)[1] == 1.0
    text = explain(y, mode="forward", wrt=w)
    assert derivative_row(text)[1] == pytest.approx(b.data * math.exp(w.data * b.data))


def test_the_cost_line_counts_the_passes():
    x, w, b = Value(0.5, label="x"), Value(-1.0, label="w"), Value(2.0, label="b")
    text = explain((w * x + b).tanh(), mode="forward", wrt=w)
    assert text.rstrip().endswith("the other 2 inputs would need a pass each, where one "
                                  "backward pass gives the derivatives with respect to all 3 "
                                  "inputs at once (a row).")
    assert explain(x * w, mode="forward", wrt=x).rstrip().endswith(
        "the other input would need a pass of its own, where one backward pass gives the "
        "derivatives with respect to both inputs at once (a row).")
    assert explain(x.exp(), mode="forward", wrt=x).rstrip().endswith("a column of the Jacobian.")


def test_max_steps_caps_the_story_not_the_derivative():
    x = Value(0.3, label="x")
    y = x
    for _ in range(50):
        y = y * 1.01 + x
    full = explain(y, mode="forward", wrt=x, max_steps=None)
    capped = explain(y, mode="forward", wrt=x, max_steps=5)
    # per round: y·1.01 (one input depends on x) and + x (two): 3 steps
    assert len(steps(full)) == 150 and len(steps(capped)) == 5
    assert "… 145 more steps (raise max_steps to see them)" in capped
    assert derivative_row(capped)[1] == derivative_row(full)[1]
    assert derivative_row(full)[1] == pytest.approx(gradients(y, [x])[0], rel=1e-12)


def test_a_wrong_rule_is_caught_by_central_differences(monkeypatch):
    from autograd import rules
    vjp = rules.TANH.vjps[0]
    monkeypatch.setattr(rules.TANH, "vjps", (lambda m, g, y, u: vjp(m, g, y, u) * 0.5,))
    x, w = Value(0.5, label="x"), Value(-1.0, label="w")
    text = explain((w * x).tanh(), mode="forward", wrt=x)
    assert "equals the engine's backward pass" in text   # the same wrong rule both ways
    assert "they DISAGREE for x" in text


@pytest.mark.parametrize("format, headings", [
    ("markdown", ["### Forward-mode derivatives", "### Derivative", "| input | value |"]),
    ("latex", [r"\paragraph{Forward-mode derivatives}", r"\frac{d\,\text{x}}{d\,\text{x}}",
               r"\underbrace{\frac{d\,\text{input}}{d\,\text{x}}}_{\text{incoming}}"]),
])
def test_markdown_and_latex(format, headings):
    x, w = Value(0.5, label="x"), Value(-1.0, label="w")
    text = explain((w * x).tanh(), mode="forward", wrt=x, format=format)
    for heading in headings:
        assert heading in text
    assert "Backward pass" not in text and "Leaf gradients" not in text


def test_bad_arguments_name_the_problem():
    x, w = Value(0.5, label="x"), Value(-1.0, label="w")
    y = (w * x).tanh()
    with pytest.raises(ValueError, match=r"pass wrt= one of the graph's inputs \(w, x\)"):
        explain(y, mode="forward")
    with pytest.raises(TypeError, match="wrt must be an input node of the graph, got str"):
        explain(y, mode="forward", wrt="x")
    with pytest.raises(ValueError, match=r"wrt is not a leaf needing a gradient in this graph"):
        explain(y, mode="forward", wrt=w * x)
    with pytest.raises(ValueError, match=r"wrt is not an input of this graph \(its inputs: w, x"):
        explain(y, mode="forward", wrt=Value(1.0))
    with pytest.raises(ValueError, match="grad_out weights the outputs of a backward pass"):
        explain(y, mode="forward", wrt=x, grad_out=1.0)
    with pytest.raises(ValueError, match="wrt and tangent are forward mode's"):
        explain(y, wrt=x)
    with pytest.raises(ValueError, match="wrt and tangent are forward mode's"):
        explain(y, tangent=1.0)
    with pytest.raises(ValueError, match="mode must be one of reverse, forward, got 'sideways'"):
        explain(y, mode="sideways")
    with pytest.raises(TypeError, match="explain needs a Value or Tensor, got float"):
        explain(1.0)
    W = Tensor(np.ones((2, 2)), requires_grad=True, label="W")
    with pytest.raises(ValueError, match=r"W has shape \(2, 2\): forward mode needs a "
                                         r"direction, tangent= an array of that shape"):
        explain((W * W).sum(), mode="forward", wrt=W)
    with pytest.raises(ValueError, match=r"tangent has shape \(2,\); W has \(2, 2\)"):
        explain((W * W).sum(), mode="forward", wrt=W, tangent=np.ones(2))
    with pytest.raises(TypeError, match="tangent must be numbers, got bool"):
        explain((W * W).sum(), mode="forward", wrt=W, tangent=np.ones((2, 2), dtype=bool))
    with pytest.raises(ValueError, match="tangent must be finite numbers"):
        explain((W * W).sum(), mode="forward", wrt=W, tangent=np.full((2, 2), np.inf))
    with pytest.raises(ValueError, match=r"one-number output; this one has shape \(2, 2\)"):
        explain(W * W, mode="forward", wrt=W, tangent=np.ones((2, 2)))


def test_a_value_tangent_scales_the_derivative():
    x, w = Value(0.5, label="x"), Value(-1.0, label="w")
    y = (w * x).tanh()
    once = derivative_row(explain(y, mode="forward", wrt=x))[1]
    text = explain(y, mode="forward", wrt=x, tangent=-2.5)
    assert "dx/dx·v = v = -2.5" in text and "with respect to x along v" in text
    assert derivative_row(text)[1] == pytest.approx(-2.5 * once, rel=1e-10)   # 12 digits shown


def tensor_graphs():
    rng = np.random.default_rng(3)
    X = Tensor(rng.standard_normal((5, 3)), label="X")
    W1 = Tensor(rng.standard_normal((3, 4)), requires_grad=True, label="W1")
    b1 = Tensor(rng.standard_normal(4), requires_grad=True, label="b1")
    W2 = Tensor(rng.standard_normal((4, 2)), requires_grad=True, label="W2")
    labels = np.array([0, 1, 1, 0, 1])
    hidden = (X @ W1 + b1).relu()
    return {
        "mlp cross-entropy": ((hidden @ W2).softmax_cross_entropy(labels), [W1, b1, W2]),
        "tanh squares": ((((X @ W1).tanh() * b1) ** 2).mean(), [W1, b1]),
        "reuse": ((X @ W1 * (X @ W1)).sum() + (b1 * b1).sum(), [W1, b1]),
    }


@pytest.mark.parametrize("name", sorted(tensor_graphs()))
def test_a_tensor_graph_gives_the_jacobian_times_v(name):
    """dy/dx·v = ⟨∂y/∂x, v⟩ for each input x, against the engine and central differences."""
    root, inputs = tensor_graphs()[name]
    rng = np.random.default_rng(7)
    for x in inputs:
        v = rng.standard_normal(x.shape)
        text = explain(root, mode="forward", wrt=x, tangent=v)
        value = float(text.split("Derivative:\n")[1].splitlines()[1].split("|")[2])
        (g,) = gradients(root, [x])
        assert value == pytest.approx(float(np.sum(g * v)), rel=1e-9, abs=1e-12)
        assert "equals the engine's backward pass" in text
        assert "they agree with the forward-mode derivative" in text


def test_each_tensor_step_is_the_jacobian_applied_to_the_incoming_derivative():
    """The JVPs by hand: d(X·W)/dW·v = X·v; d tanh(z) = (1 − tanh² z) ⊙ dz; dΣ = Σ."""
    rng = np.random.default_rng(1)
    X = Tensor(rng.standard_normal((4, 3)), label="X")
    W = Tensor(rng.standard_normal((3, 2)), requires_grad=True, label="W")
    z = X @ W
    y = z.tanh().sum()
    v = rng.standard_normal((3, 2))
    text = explain(y, mode="forward", wrt=W, tangent=v)
    dz = X.data @ v
    dt = (1 - np.tanh(z.data) ** 2) * dz
    story = text.split("Forward-mode derivatives")[1]
    norms = [float(m) for m in re.findall(r"‖·‖ = (\S+)\n", story)]
    assert norms[:2] == pytest.approx([np.linalg.norm(dz), np.linalg.norm(dt)], rel=1e-3)
    assert derivative_row_value(text) == pytest.approx(dt.sum(), rel=1e-9)
    assert "Jacobian (4×2)×(3×2), applied to the incoming derivative (a JVP)" in text
    assert "uᵀ" not in story                  # no VJP formula (gᵀJ) shown for a JVP
    assert text.rstrip().endswith("One forward pass gave dn4/dW·v, the Jacobian times v; the "
                                  "gradient with respect to W would take 6 forward passes, one "
                                  "per entry, where one backward pass gives the whole gradient "
                                  "at once (a row).")


def derivative_row_value(text):
    return float(text.split("Derivative:\n")[1].splitlines()[1].split("|")[2])


def test_a_wrong_tensor_rule_is_caught_by_central_differences(monkeypatch):
    from autograd import rules
    vjp = rules.TANH.vjps[0]
    monkeypatch.setattr(rules.TANH, "vjps", (lambda m, g, y, u: vjp(m, g, y, u) * 0.5,))
    W = Tensor(np.array([[0.3, -0.2], [0.1, 0.4]]), requires_grad=True, label="W")
    text = explain((Tensor(np.ones((3, 2))) @ W).tanh().sum(), mode="forward", wrt=W,
                   tangent=np.ones((2, 2)))
    assert "equals the engine's backward pass" in text    # the same wrong rule both ways
    assert "they DISAGREE for W" in text


@pytest.fixture
def chainrule(monkeypatch, capsys):
    monkeypatch.setattr(cli, "SUBCOMMANDS", ("explain",))

    def run(*argv):
        try:
            status = cli.main(list(argv))
        except SystemExit as exc:
            status = exc.code
        out, err = capsys.readouterr()
        return status, out, err
    return run


def test_cli_forward(chainrule):
    status, out, err = chainrule("explain", "x*y + sin(x)", "x=1", "y=2", "--forward", "x")
    assert status == 0, err
    assert out.startswith("Forward-mode pass of f = x * y + sin(x) = 2.84147, with respect to x")
    assert derivative_row(out)[1] == pytest.approx(2 + math.cos(1.0), rel=1e-11)
    status, out, err = chainrule("explain", "x*y", "x=1", "y=2", "--forward", "z")
    assert status == 2 and out == ""
    assert "--forward z: not an input of the expression (its inputs: x, y)" in err
    assert len(err.strip().splitlines()) == 1


def test_float32_rounding_is_not_a_disagreement():
    """Forward and backward orders round differently; in float32 that is ~1e-7, not a ✗."""
    rng = np.random.default_rng(5)
    X = Tensor(rng.standard_normal((50, 30)).astype(np.float32))
    W = Tensor(rng.standard_normal((30, 20)).astype(np.float32), requires_grad=True, label="W")
    y = ((X @ W).tanh() ** 2).mean()
    for seed in range(5):
        v = np.random.default_rng(seed).standard_normal((30, 20))
        text = explain(y, mode="forward", wrt=W, tangent=v)
        assert "equals the engine's backward pass" in text, text[-800:]


@pytest.mark.parametrize("tangent", [None, 2.0])
def test_latex_with_a_direction_is_ascii(tangent):
    """The table's header and the closing line are LaTeX text: ·v is $\\cdot$v there, not an
    escaped math command; the check's ⟨·,·⟩ is \\langle…\\rangle (pdflatex has no ⟨)."""
    x, w = Value(0.5, label="x"), Value(-1.0, label="w")
    W = Tensor(np.array([[0.3, -0.2], [0.1, 0.4]]), requires_grad=True, label="W")
    for root, wrt, v in (((w * x).tanh(), x, tangent),
                         ((W * W).sum(), W, np.ones((2, 2)))):
        tex = explain(root, mode="forward", wrt=wrt, tangent=v, format="latex")
        assert "textbackslash" not in tex, tex
        assert not [ch for ch in tex if ord(ch) > 127 and ch != "—"], tex


def test_latex_rule_carries_the_direction_as_the_steps_do():
    """With a direction the text's rule reads dnode/dx·v += … × dinput/dx·v; so does LaTeX's."""
    x, w = Value(0.5, label="x"), Value(-1.0, label="w")
    tex = explain((w * x).tanh(), mode="forward", wrt=x, tangent=2.0, format="latex")
    rule = next(line for line in tex.splitlines() if line.startswith(r"\["))
    assert rule.count(r"{d\,\text{x}}\cdot v") == 2, rule
    assert r"{d\,\text{x}}\cdot v \mathrel{+}=" in tex.split(r"\begin{align*}")[1]  # steps
    tex = explain((w * x).tanh(), mode="forward", wrt=x, format="latex")
    assert r"\cdot v" not in tex


def test_the_cost_line_counts_the_other_inputs_entries():
    """A pass per entry: the other input W of 6 entries needs 6 forward passes, not one."""
    b = Tensor(np.array(0.5), requires_grad=True, label="b")
    W = Tensor(np.ones((2, 3)), requires_grad=True, label="W")
    y = (W * b).tanh().sum()
    for tangent in (None, 2.0):
        assert explain(y, mode="forward", wrt=b, tangent=tangent).rstrip().endswith(
            "; the other input would need 6 passes, one per entry, where one backward pass "
            "gives the derivatives with respect to both inputs at once (a row).")
    assert explain(y, mode="forward", wrt=W, tangent=np.ones((2, 3))).rstrip().endswith(
        "would take 6 forward passes, one per entry (and the other input more), where one "
        "backward pass gives the derivatives with respect to both inputs at once (a row).")
    c = Tensor(np.ones(2), requires_grad=True, label="c")
    y = (W * b).tanh().sum() + (c * b).sum()
    assert explain(y, mode="forward", wrt=b).rstrip().endswith(
        "; the other 2 inputs would need 8 passes, one per entry, where one backward pass "
        "gives the derivatives with respect to all 3 inputs at once (a row).")


def test_the_central_differences_line_speaks_of_one_derivative(monkeypatch):
    """Forward mode checks one number: no 'the others agree', no '1 leaf entries'."""
    import importlib       # (autograd.explain is the function: the package exports it)
    module = importlib.import_module("autograd.explain")
    monkeypatch.setattr(module, "NUMERIC_WORK", 400)        # 100 nodes, not 100,000
    x = Value(0.5, label="x")
    y = (x * 1e-30 + 1.0).with_label("y")          # the slope drowns in f's rounding
    line = next(s for s in explain(y, mode="forward", wrt=x).splitlines()
                if s.startswith("Central"))
    assert "too noisy to tell (the rounding is as large as the derivative)" in line, line
    assert "others" not in line
    assert "others" not in next(s for s in explain(y).splitlines() if s.startswith("Central"))
    z = x
    for _ in range(101):
        z = z.sin()
    line = next(s for s in explain(z, mode="forward", wrt=x).splitlines()
                if s.startswith("Central"))
    assert line.startswith("Central differences: not run (one direction × 102 nodes; "
                           "explain runs them for at most 400 op re-runs"), line
    line = next(s for s in explain(z).splitlines() if s.startswith("Central"))
    assert "(1 leaf entry × 102 nodes;" in line, line


def test_a_direction_v_is_not_also_an_operand_v():
    """With a direction v the binary ops' generic operands are not u, v: '∂(u×v)/∂v = u' under
    'dx/dx·v = v = 2' would name two things v."""
    x, w = Value(0.5, label="x"), Value(-1.0, label="w")
    text = explain((w * x).tanh(), mode="forward", wrt=x, tangent=2.0)
    assert "local: ∂(p×q)/∂q = p = -1" in text, text
    assert "∂(u×v)" not in text and "1 − tanh²(u)" in text
    assert "local: ∂(u×v)/∂v = u = -1" in explain((w * x).tanh(), mode="forward", wrt=x)
    W = Tensor(np.ones((2, 2)), requires_grad=True, label="W")
    text = explain((Tensor(np.ones(2)) @ W).sum(), mode="forward", wrt=W,
                   tangent=np.ones((2, 2)))
    assert "local: ∂(p@q)/∂q: Jacobian" in text, text


def test_a_float32_input_in_a_float64_graph_is_checked_at_float32_precision():
    """The backward pass gives a float32 leaf a float32 gradient (as PyTorch): ⟨∂y/∂W, v⟩ is
    rounded to float32 while the forward derivative is float64 past W's first op; ~1e-7
    apart is rounding, not a ✗ (central differences agree to 1e-10)."""
    rng = np.random.default_rng(0)
    X = Tensor(rng.standard_normal((3, 2)))
    W = Tensor(rng.standard_normal((2, 2)).astype(np.float32), requires_grad=True, label="W")
    b = Tensor(rng.standard_normal(2), requires_grad=True, label="b")
    y = ((X @ W + b).tanh() ** 2).sum()
    text = explain(y, mode="forward", wrt=W, tangent=np.ones((2, 2)))
    assert "equals the engine's backward pass" in text, text[-600:]
    assert "they agree with the forward-mode derivative" in text


def test_a_tangent_that_overflows_the_inputs_dtype_is_refused():
    """1e6 is finite, but not in float16: the pass would carry inf and nan and call it ✓."""
    W = Tensor(np.ones((2, 2), dtype=np.float16), requires_grad=True, label="W")
    with pytest.raises(ValueError, match=r"tangent must be finite numbers in W's dtype float16"):
        explain((W * W).sum(), mode="forward", wrt=W, tangent=np.full((2, 2), 1e6))


def test_the_help_line_does_not_promise_a_picture_without_o(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "or forward mode with --forward (and draw it with -o)" in help_text


@pytest.mark.parametrize("tangent", [1e6, 1e-9, -3e4])
def test_central_differences_along_a_long_or_short_direction(tangent):
    """t ↦ y(x + t·v) is differenced along v/max|vᵢ|, then scaled back: a step of 1e-6·v
    moved x by 1 for v = 1e6 (a false DISAGREE on sin), and by nothing measurable for 1e-9."""
    x = Value(0.5, label="x")
    text = explain(x.sin(), mode="forward", wrt=x, tangent=tangent)
    assert "they agree with the forward-mode derivative" in text, text[-400:]
    W = Tensor(np.array([0.3, -0.2]), requires_grad=True, label="W")
    text = explain((W * W).sin().sum(), mode="forward", wrt=W,
                   tangent=np.array([1.0, 2.0]) * tangent)
    line = next(s for s in text.splitlines() if s.startswith("Central"))
    assert "they agree" in line and float(re.search(r"difference (\S+)\)", line)[1]) < 1e-8
