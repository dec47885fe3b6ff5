"""The backward pass told step by step: the chain rule, one edge at a time.

    >>> print(explain(y))                                # doctest: +SKIP

The engine visits the nodes in reverse topological order (the root first). For every node and
every input of it, it adds "upstream × local" to the input's gradient:

    ∂root/∂input += ∂root/∂node (upstream) × ∂node/∂input (local) = contribution

`explain` replays exactly that, with the engine's own VJPs (the local derivative of a `Value` is the
VJP run with grad_out = 1), names each number, shows a running sum when an input is reached a
second time, lists every leaf's gradient, and checks that they equal the engine's backward pass.
Formats: "text", "markdown", "latex".

``mode="forward"`` tells the other order of the same products, forward-mode differentiation with
respect to one input x (``wrt``): the nodes in topological order, the inputs first, each node's
derivative dnode/dx formed from its inputs' as

    dnode/dx += ∂node/∂input (local) × dinput/dx (incoming) = contribution,

with the same local derivatives. One forward pass gives ∂root/∂x for that one input (a column of
the Jacobian); one backward pass gives ∂root/∂x for every input at once (a row). For an array x
the pass carries a direction v (``tangent``) and gives the Jacobian times v; a Tensor op's local
derivative, a Jacobian, is then applied to the incoming derivative as a JVP.
"""
from __future__ import annotations

import math
import numbers
import re

import numpy as np

from .core import Node, _backprop, enable_grad, gradients, topo_order
from .draw import document_position, formula_text, local_derivative, node_name, visible

__all__ = ["explain"]

FORMATS = ("text", "markdown", "latex")
MODES = ("reverse", "forward")
SMALL_ARRAY = 4                     # arrays of at most this many entries are printed in full
MAX_LEAVES = 200                    # rows of the leaf table
_SIMPLE = re.compile(r"^[\w()\[\],.]+$")


# -- notation ---------------------------------------------------------------------------------
class _Text:
    """Plain Unicode notation (also used, in code spans, for markdown)."""

    times = "×"
    adds = "+="

    def name(self, s):
        return s if _SIMPLE.match(s) else f"({s})"

    def d(self, top, bottom):
        return f"∂{self.name(top)}/∂{self.name(bottom)}"

    def total(self, top, bottom):
        """The total derivative that forward mode carries: d top/d bottom."""
        return f"d{self.name(top)}/d{self.name(bottom)}"

    def plain(self, s):
        return s

    def num(self, x):
        return _num(x)

    def words(self, s):
        return s

    def label(self, s):
        return s


class _Latex(_Text):
    times = r"\times"
    adds = r"\mathrel{+}="
    _CHARS = {"∂": r"\partial ", "×": r"\times ", "−": "-", "²": "^{2}", "σ": r"\sigma ",
              "·": r"\cdot ", "ᵀ": r"^{\top}", "≤": r"\le ", "Σ": r"\Sigma ", "δ": r"\delta ",
              "‖": r"\| ", "…": r"\dots ", "⊙": r"\odot ", "ᵇ": "^{b}", "⁻": "-",
              "✓": r"\checkmark ", "÷": r"\div ", "√": r"\surd ",
              "ε": r"\varepsilon ",         # (the central differences' line): pdflatex has no ε
              "⟨": r"\langle ", "⟩": r"\rangle "}

    def name(self, s):
        return r"\text{" + _latex_escape(s) + "}"

    def d(self, top, bottom):
        return r"\frac{\partial " + self.name(top) + r"}{\partial " + self.name(bottom) + "}"

    def total(self, top, bottom):
        return r"\frac{d\," + self.name(top) + r"}{d\," + self.name(bottom) + "}"

    def plain(self, s):
        """Unicode math (formulas) in LaTeX math mode; names of two or more letters (exp, tanh,
        softmax, …) upright as \\operatorname, not as a product of italic letters; u**v and
        a^(b−1) as superscripts."""
        s = _POWER.sub(r"^{\1}", s.replace("**", "^"))
        return "".join(r"\operatorname{" + part + "}" if _WORD.fullmatch(part)
                       else self._symbols(part) for part in _WORD.split(s) if part)

    def _symbols(self, s):
        out, groups = [], 0               # groups: open ^{…} made by `plain` (kept as braces)
        for k, ch in enumerate(s):
            if ch in self._CHARS:
                out.append(self._CHARS[ch])
            elif ch in "_#%&$":
                out.append("\\" + ch)
            elif ch == "{" and k and s[k - 1] == "^":
                groups += 1
                out.append(ch)
            elif ch == "}" and groups:
                groups -= 1
                out.append(ch)
            elif ch in "{}":
                out.append("\\" + ch)
            else:
                out.append(ch)
        return "".join(out)

    def num(self, x):
        text = _num(x)
        if " with " in text:            # "array(4, 2) with ‖·‖ = 5.1": words, then math
            head, tail = text.split(" with ", 1)
            return r"\text{" + _latex_escape(head) + " with }" + self.plain(tail)
        return self.plain(text)

    def words(self, s):
        return r"\text{" + _text_mode(s) + "}"       # δ(3) as $\delta$(3) inside \text

    label = name


_WORD = re.compile(r"([A-Za-z]{2,})")
_POWER = re.compile(r"\^\(([^()]*)\)")


def _latex_escape(s):
    table = {"\\": r"\textbackslash{}", "{": r"\{", "}": r"\}", "_": r"\_", "#": r"\#",
             "%": r"\%", "&": r"\&", "$": r"\$", "^": r"\^{}", "~": r"\~{}", "\n": " ",
             "\r": " ", "<": r"\textless{}", ">": r"\textgreater{}"}
    return "".join(table.get(ch, ch) for ch in s)


def _text_mode(s):
    """Text for LaTeX text mode: specials escaped, Unicode math symbols as $\\cmd$."""
    marks = {"✓": r"\checkmark", "✗": r"\times"}
    return "".join(f"${marks.get(ch) or _Latex._CHARS[ch].strip()}$"
                   if ch in _Latex._CHARS or ch in marks else ch for ch in _latex_escape(s))


def _num(x):
    """A number (or array) as short text: 6 significant digits, arrays by shape and norm."""
    if isinstance(x, float):
        return f"{x:.6g}"
    a = np.asarray(getattr(x, "data", x))
    if a.size == 1:
        return f"{float(a.reshape(())):.6g}"
    if a.size <= SMALL_ARRAY:
        return " ".join(np.array2string(a, precision=4, separator=", ",
                                        max_line_width=200).split())
    return f"array{a.shape} with ‖·‖ = {float(np.linalg.norm(a)):.4g}"


def _shape(data):
    shape = np.shape(data)
    return "(" + "×".join(map(str, shape)) + ")" if shape else "()"


def _exact(x):
    return f"{float(x):.12g}"


# -- the replay ----------------------------------------------------------------------------------
class _Enough(Exception):
    """Raised from inside the engine's pass once the steps to be shown are recorded."""


def _replay(root, grad_out, leaves, max_steps):
    """Run the engine's own backward pass, recording the steps it takes up to its first
    ``max_steps`` edges (None: every one).

    Returns (grads, events, stopped): grads maps the root and each leaf to ∂root/∂node; events
    are ("node", node, g) and ("edge", node, i, child, g, local, contribution, total, (first six
    contributions, count)) in the order the engine ran them. A pass with more than max_steps
    edges is ``stopped`` at the first one past them, and the gradients come from the engine's
    plain pass instead: a capped story costs about a backward(), not a narration of every node.
    """
    shown, totals = {}, {}      # per node: its first contributions, and their running sum
    events = []
    edges = 0

    def observe(event):
        nonlocal edges
        if event[0] == "node":
            events.append(event)
            return
        if max_steps is not None and edges == max_steps:
            raise _Enough
        edges += 1
        _, node, i, parent, g, contribution, _ = event
        first, count = shown.get(parent, ((), 0))
        shown[parent] = (first + (contribution,) if count < 6 else first, count + 1)
        # the sum of every contribution so far (the engine's own running total is per tape
        # entry, and a node reused after a new tape began has an entry on each)
        previous = totals.get(parent)
        totals[parent] = contribution if previous is None else previous + contribution
        events.append(("edge", node, i, parent, g, local_derivative(node, i), contribution,
                       totals[parent], shown[parent]))

    keep = {root, *leaves}
    try:
        return _backprop(root, root._seed(grad_out, False), False, keep=keep,
                         observe=observe), events, False
    except _Enough:
        return _backprop(root, root._seed(grad_out, False), False, keep=keep), events, True


class _Names:
    """`draw.node_names` worked out only for the nodes asked about: the label (its control and
    format characters `visible`), else n<position in order>, primed past the labels. A position
    not given is found by walking the order from the output's end, where the narrated steps
    are, so a capped story names few nodes."""

    def __init__(self, order, known):
        self.order = order
        self.labels = {node.label for node in order if node.label}
        self.position = known                   # {node: its index in order}
        self.unread = len(order)                # order[unread:] is in position

    def __getitem__(self, node):
        if node.label:
            return visible(node.label)
        while node not in self.position:
            self.unread -= 1
            self.position[self.order[self.unread]] = self.unread
        return node_name(node, self.position[node], self.labels)


def _generic(node, i, notation, with_formula=True, operands="uv"):
    """The local derivative in generic letters: ∂tanh(u)/∂u = 1 − tanh²(u), ∂(u×v)/∂u = v
    (u, v rather than the rules' a, b, which a reader would take for a bias b; a binary op's
    ``operands`` are other letters where v names something else); only its left side without
    ``with_formula`` (a Tensor's formulas are written as VJPs, gᵀJ)."""
    op = node.op
    formula = formula_text(node, i, list(operands)) if with_formula else None
    if len(node.parents) == 2 and op.symbol != op.name:
        head = f"∂({operands[0]}{op.symbol}{operands[1]})/∂{operands[i]}"
    elif len(node.parents) == 1:
        head = f"∂{op.name}(u)/∂u"
    else:
        head = f"∂{op.name}/∂x{i + 1}"
    return notation.plain(head + (f" = {formula}" if formula else ""))


def _doc_note(label, kind_wanted="z"):
    """The document's name for ∂J/∂z(l)[j]: the residual δ(l+1)[j]."""
    position = document_position(label)
    if position is None or position[0] != kind_wanted:
        return None
    _, layer, neuron = position
    where = f"[{neuron}]" if neuron is not None else ""
    return f"δ({layer + 1}){where}"


def _leaf_note(label):
    """∂J/∂W(l)[i,j] = a(l)[i]·δ(l+1)[j]; ∂J/∂b(l)[j] = δ(l+1)[j] in the document's notation."""
    found = re.match(r"^([Wb])\((\d+)\)(?:\[(\d+)(?:,\s*(\d+))?\])?$", label or "")
    if not found:
        return ""
    kind, layer, first, second = found.groups()
    layer = int(layer)
    if kind == "W":
        if second is not None:
            return f"a({layer})[{first}]·δ({layer + 1})[{second}]"
        return f"a({layer})ᵀ·δ({layer + 1})"
    if first is not None:
        return f"δ({layer + 1})[{first}]"
    return f"Σ over the batch of δ({layer + 1})"


def _engine_check(root, leaves, narrated, grad_out):
    """Compare with the engine: ``.grad`` when it holds root's latest backward pass, else
    `autograd.gradients` (which touches no ``.grad``: explaining never changes what a later
    ``backward()`` accumulates). Returns (values, source, ok)."""
    states = [leaf.grad_state(root) for leaf in leaves]
    if leaves and all(s == "none" for s in states):
        source = "backward() has not run, so compared with autograd.gradients"
    elif all(s == "current" for s in states):
        values = [getattr(leaf.grad, "data", leaf.grad) for leaf in leaves]
        if all(_close(a, b) for a, b in zip(narrated, values)):
            return values, "compared with each leaf's .grad", True
        fresh = [getattr(g, "data", g) for g in gradients(root, leaves, grad_out)]
        if not all(_close(a, b) for a, b in zip(narrated, fresh)):
            return values, "compared with each leaf's .grad", False
        # .grad accumulates over backward passes: it can hold more than this pass's gradient
        return fresh, (".grad holds more than this pass (backward() ran more than once, or "
                       "with another grad_out; it accumulates), so compared with "
                       "autograd.gradients"), True
    else:
        source = "compared with autograd.gradients (some .grad hold other passes)"
    values = [getattr(g, "data", g) for g in gradients(root, leaves, grad_out)]
    return values, source, all(_close(a, b) for a, b in zip(narrated, values))


NUMERIC_ENTRIES = 100      # central differences in explain: at most this many leaf entries
NUMERIC_WORK = 400_000     # and at most this many op re-runs (4 passes per entry × nodes)


def _called(leaf):
    """A leaf as the central differences' line names it."""
    return visible(leaf.label) if leaf.label else "a leaf"


def _numeric_check(root, order, leaves, narrated, grad_out, direction=None):
    """The narrated gradients against central differences of the recorded function itself
    (each op's forward re-run on perturbed leaves, in float64): unlike the engine check, this
    does not reuse the derivative rules. One line, or None with too many entries.

    With a ``direction`` v (forward mode: one leaf x, and narrated[0] its derivative along v)
    the one number d/dt y(x + t·v) at t = 0 instead."""
    from .gradcheck import NO_QUOTIENT, InputCheck, _central_differences, relative_error
    size = sum(int(np.size(leaf.data)) for leaf in leaves) if direction is None else 1
    if not leaves:
        return None
    if size > NUMERIC_ENTRIES or 4 * size * len(order) > NUMERIC_WORK:
        if direction is not None:
            what, limit = "one direction", ""
        else:
            what = "1 leaf entry" if size == 1 else f"{size} leaf entries"
            limit = f"{NUMERIC_ENTRIES} entries and "
        return (f"Central differences: not run ({what} × {len(order)} nodes; explain runs "
                f"them for at most {limit}{NUMERIC_WORK:,} op re-runs — use autograd.gradcheck)")
    math_ = type(root)._math
    weights = None if grad_out is None else np.asarray(getattr(grad_out, "data", grad_out),
                                                       dtype=np.float64)

    def f(*nodes):
        values = {}
        for leaf, node in zip(leaves, nodes):
            values[leaf] = node.data
        for node in order:
            if node in values:
                continue
            if not node.parents:
                values[node] = node.data
            elif node.op.name == "astype":      # in float64 throughout: a narrowing cast
                values[node] = values[node.parents[0]]      # would round away the ±ε
            else:
                values[node] = node.op.forward(math_, *[values[p] for p in node.parents],
                                               **(node.ctx or {}))
        out = values[root]
        return float(np.sum(weights * out)) if weights is not None else out

    points = [(float(leaf.data), True) if isinstance(leaf.data, float)
              else (np.array(leaf.data, dtype=np.float64), False) for leaf in leaves]
    at = leaves
    if direction is not None:                   # t ↦ y(x + t·v), at t = 0
        (x0, _), v = points[0], np.asarray(direction, dtype=np.float64)
        # differenced along v/max|vᵢ|, the slope then scaled back: a step of ε·v itself would
        # move x by 1 for a v of 1e6, and by nothing measurable for a v of 1e-9
        length = float(np.max(np.abs(v))) or 1.0
        v = v / length
        along = f

        def f(t):
            moved = x0 + t.data * v
            return along(_Data(float(moved) if isinstance(x0, float) else moved))
        points, at = [(0.0, True)], [_Data(0.0)]
    with np.errstate(all="ignore"):
        numeric, noise = _central_differences(f, points, 1e-6)
        if direction is not None:
            numeric, noise = [numeric[0] * length], [noise[0] * length]
        # f itself not finite at the point (1/x at 0): (f(x+ε) − f(x−ε))/2ε is finite there
        # (1e12 for 1/x) but is no derivative, so there is no quotient for any entry
        pole = not np.all(np.isfinite(f(*at)))
    checks, undefined = [], []
    for i, (a, n, e) in enumerate(zip(narrated, numeric, noise)):
        a, n = np.asarray(a, dtype=np.float64), np.asarray(n, dtype=np.float64)
        # f(x ± ε) not finite (x at the edge of log's or sqrt's domain, an overflow): there is
        # no difference quotient to hold the rule against, which is not a disagreement
        gap = ~np.isfinite(n) | pole
        undefined.append((int(gap.sum()), gap.size))
        if gap.any():
            a, n, e = (np.where(gap, 0.0, v) for v in (a, n, e))
        with np.errstate(all="ignore"):         # an inf or nan rule left: ✗, not a warning
            checks.append(InputCheck(i, a, n, relative_error(a, n), e, 1e-6))
    unchecked = [_called(leaf) if k == size else f"{k} of the {size} entries of {_called(leaf)}"
                 for leaf, (k, size) in zip(leaves, undefined) if k]
    untaken = f"not taken for {', '.join(unchecked[:5])}: {NO_QUOTIENT}" if unchecked else ""
    also = f"; {untaken}" if untaken else ""
    bad = [(leaf, c) for leaf, c in zip(leaves, checks) if c.status == "FAIL"]
    noisy = [leaf for leaf, c in zip(leaves, checks) if c.status == "INCONCLUSIVE"]
    if unchecked and all(k == size for k, size in undefined):
        return f"Central differences (ε = 1e-6, float64, the forward pass re-run): {untaken}"
    if not bad and noisy:
        which = "" if direction is not None else f" for {', '.join(map(_called, noisy[:5]))}"
        others = "; the others agree" if len(noisy) < len(checks) else ""
        return (f"Central differences (ε = 1e-6, float64, the forward pass re-run): too noisy "
                f"to tell{which} (the rounding is as large as the "
                f"{'derivative' if direction is not None else 'gradient'}){others}{also}")
    if not bad:
        worst = max(c.relative_error for c in checks)
        every = ("the forward-mode derivative" if direction is not None else
                 "the narrated gradients" if unchecked else "every narrated gradient")
        return (f"Central differences (ε = 1e-6, float64, the forward pass re-run): they agree "
                f"with {every} (largest relative difference {worst:.1e}){also} ✓")
    leaf, c = bad[0]
    where = "" if c.worst is None or not c.worst[0] else f" entry {c.worst[0]}"
    got = (c.worst[1], c.worst[2]) if c.worst else (float(np.ravel(c.analytic)[0]),
                                                    float(np.ravel(c.numeric)[0]))
    return (f"Central differences (ε = 1e-6, float64, the forward pass re-run): they DISAGREE "
            f"for {_called(leaf)}{where}: narrated {_num(got[0])}, numeric "
            f"{_num(got[1])} (a wrong derivative rule, or a kink such as relu or abs at exactly "
            f"0){also} ✗")


class _Data:
    """A point handed to `_numeric_check`'s re-run: only its ``data`` is read."""

    __slots__ = ("data",)

    def __init__(self, data):
        self.data = data


def _close(a, b):
    """Equal within 1e-9 (relative) or 1e-12 (absolute); nan equals nan: the narration and the
    engine agree when both give IEEE's nan (0·log 0, say)."""
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12) or (a != a and b != b)
    return bool(np.allclose(np.asarray(a), np.asarray(b), rtol=1e-9, atol=1e-12,
                            equal_nan=True))


# -- the story -----------------------------------------------------------------------------------
def explain(root, format="text", max_steps=200, grad_out=None, mode="reverse", wrt=None,
            tangent=None):
    """The backward pass from ``root`` as a readable story (see the module docstring).

    ``max_steps`` caps the edge steps printed and the forward nodes listed (None: all); the
    engine's pass is narrated only that far, and the leaf table and the final check are always
    complete (up to 200 leaves), from the whole pass.

    ``mode="forward"`` narrates forward-mode differentiation with respect to the input ``wrt``
    instead (see the module docstring), along ``tangent`` (needed when wrt has more than one
    entry: the pass gives the Jacobian times it), checked against the engine's backward pass and
    central differences.
    """
    if format not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {format!r}")
    whole = isinstance(max_steps, numbers.Integral) and not isinstance(max_steps, bool)
    if max_steps is not None and not (whole and max_steps >= 0):
        raise ValueError(f"max_steps must be a whole number ≥ 0 or None, got {max_steps!r}")
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    if not isinstance(root, Node):
        raise TypeError(f"explain needs a Value or Tensor, got {type(root).__name__}")
    if not root.requires_grad:
        raise ValueError(f"explain: the output is a constant (no input it depends on requires a "
                         f"gradient), so there is no {mode} pass to narrate")
    notation = _Latex() if format == "latex" else _Text()
    if mode == "forward":
        if grad_out is not None:
            raise ValueError("explain: grad_out weights the outputs of a backward pass; forward "
                             "mode takes the input to differentiate by, wrt")
        return _explain_forward(root, format, max_steps, wrt, tangent, notation)
    if wrt is not None or tangent is not None:
        raise ValueError("explain: wrt and tangent are forward mode's; pass mode='forward' "
                         "(the backward pass differentiates with respect to every input)")
    if grad_out is None and np.size(root.data) != 1:
        raise ValueError(f"explain: the output has shape {np.shape(root.data)}; pass "
                         f"grad_out (∂L/∂output, of that shape) to explain(root, grad_out=…)")
    order = topo_order(root)
    listed = order if max_steps is None else order[:max_steps]     # the forward pass shown
    known = {node: k for k, node in enumerate(listed)}
    leaves, edges = [], 0       # edges: the engine's steps, one per input needing a gradient
    for k, node in enumerate(order):
        parents = node.parents
        if parents:
            edges += sum(p.requires_grad for p in parents)
        elif node.requires_grad:
            if len(leaves) < MAX_LEAVES:
                known[node] = k
            leaves.append(node)
    grads, events, stopped = _replay(root, grad_out, leaves, max_steps)
    scalar = isinstance(root.data, float)

    names = _Names(order, known)
    taken = names.labels        # (no generated name n<k> is among the candidates below)
    r = _root_name(root, names, order)
    rname = {root: r}
    # with grad_out G the pass differentiates L = Σ G ⊙ root: ∂root/∂root is 1, never G
    top = r if grad_out is None else next(c for c in ("L", "ℓ", "loss", "L′")
                                          if c not in taken and c != r)

    def nm(node):
        return rname.get(node) or names[node]

    def d(node):
        return notation.d(top, nm(node))

    n = notation.num
    w = notation.words

    def call(node):
        args = ", ".join(notation.label(nm(p)) for p in node.parents)
        return f"{notation.label(nm(node))} = {w(node.op.name)}({args})"
    title = f"Backward pass of {r}"
    if r != names[root]:
        title += f" = {names[root]}"
    title += (f" = {_num(root.data)}" if np.size(root.data) == 1
              else f" (shape {np.shape(root.data)})")
    intro = [
        "The engine visits the nodes in reverse topological order, the output first. For every "
        "node and every input of it, it adds upstream × local to the input's gradient:",
        "∂out/∂input += ∂out/∂node (upstream) × ∂node/∂input (local) = contribution",
    ]
    forward = _values(listed, nm)

    lines = []                      # (kind, text): kind "node", "edge", "sum", "note"
    steps = 0
    seed = f"{w('Step 0. seed: ')}{d(root)} = {n(grads[root])}"
    if top != r:
        seed += w(f" (the grad_out given: {top} = Σ grad_out ⊙ {r})")
    lines.append(("node", seed))
    for event in events:
        if event[0] == "node":
            _, node, g = event
            if max_steps is not None and steps >= max_steps:
                continue
            text = f"{w('at ')}{call(node)}{w(', upstream ')}{d(node)} = {n(g)}"
            delta = _doc_note(node.label)
            if delta:
                text += w(f"; in the document this is the residual {delta}")
            lines.append(("node", text))
            continue
        _, node, i, child, g, local, contribution, total, parts = event
        steps += 1
        local_d = notation.d(nm(node), nm(child))
        if sum(p.is_vertex(child) for p in node.parents) > 1:     # x*x: say which input
            local_d += w(f" (input {i + 1})")
        if local is not None:
            text = (f"{d(child)} {notation.adds} {d(node)} {notation.times} {local_d} = "
                    f"{n(g)} {notation.times} {n(local)} = {n(contribution)}")
        else:
            text = (f"{d(child)} {notation.adds} {d(node)} {notation.times} {local_d} = "
                    f"{n(contribution)}")
        formula = _generic(node, i, notation)
        if local is None:
            formula += w(f"; Jacobian {_shape(node.data)}×{_shape(child.data)}, applied as a VJP")
        if local is not None and not formula.replace("−", "-").endswith(
                f"= {n(local)}".replace("−", "-")):                 # "= −1" already says -1
            formula += f" = {n(local)}"
        lines.append(("edge", (steps, text, formula)))
        first, count = parts                  # the first six contributions, and how many
        if count > 1:
            shown = " + ".join(n(p) for p in first) + (" + …" if count > 6 else "")
            lines.append(("sum", f"{w(nm(child) + ' was reached again: ')}{d(child)}"
                                 f"{w(f' now has {count} contributions: ')}{shown} = "
                                 f"{n(total)}"))

    narrated = [grads.get(leaf, None) for leaf in leaves]
    narrated = [np.zeros_like(leaf.data) if g is None and not isinstance(leaf.data, float)
                else (0.0 if g is None else g) for g, leaf in zip(narrated, leaves)]
    engine, source, ok = _engine_check(root, leaves, narrated, grad_out)
    rows = []
    for leaf, g, e in list(zip(leaves, narrated, engine))[:MAX_LEAVES]:
        note = _leaf_note(leaf.label)
        if scalar and isinstance(g, float):
            rows.append((nm(leaf), _exact(leaf.data), _exact(g), _exact(e),
                         "✓" if _close(g, e) else "✗", note))
        else:
            ga = np.asarray(g)
            rows.append((nm(leaf), str(np.shape(leaf.data)), f"{np.linalg.norm(ga):.6g}",
                         f"{float(np.max(np.abs(ga - np.asarray(e)))) if ga.size else 0.0:.3g}",
                         "✓" if _close(g, e) else "✗", note))
    if scalar:
        header = ("leaf", "value", f"∂{top}/∂leaf (narrated)", "engine", "", "document")
    else:
        header = ("leaf", "shape", f"‖∂{top}/∂leaf‖ (narrated)", "largest difference to engine",
                  "",
                  "document")
    if not any(row[-1] for row in rows):
        header = header[:-1]
        rows = [row[:-1] for row in rows]
    more_leaves = len(leaves) - len(rows)
    which = "the 1 leaf" if len(leaves) == 1 else f"all {len(leaves)} leaves"
    verdict = (f"Check: the narrated gradients {'equal' if ok else 'DO NOT equal'} the engine's "
               f"for {which} ({source}) {'✓' if ok else '✗'}")
    numeric = _numeric_check(root, order, leaves, narrated, grad_out)
    story = {"title": title, "intro": intro, "forward": forward,
             "more_nodes": len(order) - len(listed), "lines": lines,
             "hidden": edges - steps if stopped else 0, "header": header, "rows": rows,
             "more_leaves": more_leaves, "verdict": verdict, "numeric": numeric,
             "pass": "Backward pass (reverse topological order)", "table": "Leaf gradients",
             "rule": _BACKWARD_RULE, "footer": []}
    return _RENDER[format](story)


def _root_name(root, names, order):
    """The output's name in formulas: its label when that reads as one symbol, else y (or the
    first of f, out, L that no label takes)."""
    r = names[root]
    if not _SIMPLE.match(r):
        r = next(c for c in ("y", "f", "out", "L", f"n{len(order) - 1}") if c not in names.labels)
    return r


def _values(listed, nm):
    """The forward pass's lines: each node with its op, its inputs and its value."""
    lines = []
    for node in listed:
        if node.parents:
            args = ", ".join(nm(p) for p in node.parents)
            lines.append(f"{nm(node)} = {node.op.name}({args}) = {_num(node.data)}")
        else:
            kind = "input" if node.requires_grad else "constant"
            lines.append(f"{nm(node)} = {_num(node.data)}  ({kind})")
    return lines


def _explain_forward(root, format, max_steps, wrt, tangent, notation):
    """Forward mode with respect to the input ``wrt``, told step by step (module docstring).

    For x = wrt, a direction v (``tangent``; 1 when x is one number) and each node u in
    topological order,

        du/dx·v = Σᵢ ∂u/∂pᵢ · (dpᵢ/dx·v)

    over the inputs pᵢ of u that depend on x (dx/dx·v = v; a node that does not depend on x
    has 0 and is not narrated). ∂u/∂pᵢ is the engine's own local derivative: for a Value its
    VJP at grad_out = 1, a number; for a Tensor a Jacobian J, applied to the incoming t as a JVP
    by the transpose trick — the VJP g ↦ gᵀJ is linear in g, so J·t = ∇_g ⟨gᵀJ, t⟩: the op's
    VJP recorded on nodes and differentiated once more (`_edge_jvp`). At the output, dy/dx·v
    is checked against the backward pass's ⟨∂y/∂x, v⟩ and against central differences of
    t ↦ y(x + t·v). Every derivative is computed; ``max_steps`` caps the steps and nodes shown.
    """
    if np.size(root.data) != 1:
        raise ValueError(f"explain: forward mode is narrated for a one-number output; this one "
                         f"has shape {np.shape(root.data)} (autograd.jvp gives J·v for any)")
    order = topo_order(root)
    listed = order if max_steps is None else order[:max_steps]     # the values shown
    known = {node: k for k, node in enumerate(listed)}
    leaves = []
    for k, node in enumerate(order):
        if not node.parents and node.requires_grad:
            known[node] = k
            leaves.append(node)
    names = _Names(order, known)
    inputs = ", ".join(names[leaf] for leaf in leaves[:10]) + (", …" if len(leaves) > 10 else "")
    if wrt is None:
        raise ValueError(f"explain: forward mode differentiates with respect to one input: pass "
                         f"wrt= one of the graph's inputs ({inputs})")
    if not isinstance(wrt, Node):
        raise TypeError(f"explain: wrt must be an input node of the graph, got "
                        f"{type(wrt).__name__}")
    x = next((leaf for leaf in leaves if leaf.is_vertex(wrt)), None)
    if x is None:
        what = "an input of" if wrt.requires_grad and not wrt.parents else "a leaf needing a " \
            "gradient in"
        raise ValueError(f"explain: wrt is not {what} this graph (its inputs: {inputs})")
    r = _root_name(root, names, order)
    rname = {root: r}

    def nm(node):
        return rname.get(node) or names[node]

    xname = nm(x)
    v = _direction(x, xname, tangent)
    scalar = isinstance(x.data, float)
    v_ = "" if tangent is None else "·v"        # dn/dx·v: along v (in text; in LaTeX
    along = notation.plain(v_)                  # the header and closing line are text mode)
    operands = "uv" if tangent is None else "pq"   # (v is the direction: ∂(p×q)/∂q = p)
    n, w = notation.num, notation.words

    def dx(node):
        return notation.total(nm(node), xname) + along

    tangents = {x: v}
    if tangent is None:
        seed = f"{w('Step 0. seed: ')}{dx(x)} = 1"
    else:
        seed = f"{w('Step 0. seed: ')}{dx(x)} = v = {n(v)}{w(', the direction given')}"
    if len(leaves) > 1:
        seed += w(f"; every other input is held fixed (d·/d{xname} = 0)")
    lines = [("node", seed)]
    steps = skipped = 0
    capped = max_steps is not None
    for node in order:
        parents = node.parents
        if not parents:
            continue
        terms = [(i, p) for i, p in enumerate(parents) if p in tangents]
        if not terms:
            skipped += 1
            continue
        total = None
        parts = []
        for i, parent in terms:
            local = local_derivative(node, i, parents)
            incoming = tangents[parent]
            contribution = _edge_jvp(node, i, parents, incoming) if local is None \
                else local * incoming
            total = contribution if total is None else total + contribution
            parts.append(contribution)
            steps += 1
            if capped and steps > max_steps:
                continue
            if len(parts) == 1:
                held = [nm(p) for p in parents if p not in tangents]
                args = ", ".join(notation.label(nm(p)) for p in parents)
                text = f"{w('at ')}{notation.label(nm(node))} = {w(node.op.name)}({args})"
                if held:
                    text += w(f" ({', '.join(held)} held fixed: no term)")
                lines.append(("node", text))
            local_d = notation.d(nm(node), nm(parent))
            if sum(p.is_vertex(parent) for p in parents) > 1:     # x*x: say which input
                local_d += w(f" (input {i + 1})")
            text = f"{dx(node)} {notation.adds} {local_d} {notation.times} {dx(parent)} = "
            if local is None:
                text += n(contribution)
                formula = _generic(node, i, notation, False, operands) + w(
                    f": Jacobian {_shape(node.data)}×{_shape(parent.data)}, applied to the "
                    f"incoming derivative (a JVP)")
            else:
                formula = _generic(node, i, notation, operands=operands)
                text += f"{n(local)} {notation.times} {n(incoming)} = {n(contribution)}"
                if not formula.replace("−", "-").endswith(f"= {n(local)}".replace("−", "-")):
                    formula += f" = {n(local)}"
            lines.append(("edge", (steps, text, formula)))
        tangents[node] = total
        if len(parts) > 1 and not (capped and steps > max_steps):
            lines.append(("sum", f"{dx(node)}{w(f' adds its {len(parts)} terms: ')}"
                                 f"{' + '.join(n(c) for c in parts)} = {n(total)}"))
    derivative = float(np.sum(tangents.get(root, 0.0)))         # (a one-number output)
    title = f"Forward-mode pass of {r}"
    if r != names[root]:
        title += f" = {names[root]}"
    title += f" = {_num(root.data)}, with respect to {xname}"
    if tangent is not None:
        title += " along v"
    intro = [
        f"Forward mode carries the derivative with respect to one input, {xname}"
        f"{'' if tangent is None else ', along the direction v given'}, together with the "
        f"values, in topological order, the inputs first. For every node and every input of it "
        f"that depends on {xname}, it adds local × incoming to the node's derivative:",
        f"dnode/d{xname}{v_} += ∂node/∂input (local) × dinput/d{xname}{v_} (incoming) = "
        f"contribution",
    ]
    if skipped:
        lines.insert(1, ("note", w(f"({_more(skipped, 'node')} not depending on {xname}: "
                                   f"derivative 0, not shown)")))
    (gradient,) = gradients(root, [x])          # an array, or a float for a Value
    expected = float(np.sum(np.asarray(gradient, dtype=np.float64) * v))
    # the two orders round differently: ~1e-7 apart where any node is float32 (a float32
    # leaf's gradient is float32 even in a float64 expression); Values are float64
    dtypes = {np.dtype(np.float64)}
    if not isinstance(root.data, float):
        dtypes.update(node.data.dtype for node in order)
    eps = max(float(np.finfo(dtype).eps) for dtype in dtypes)
    rtol = 1e-9 if eps <= np.finfo(np.float64).eps else 100 * eps
    ok = math.isclose(derivative, expected, rel_tol=rtol, abs_tol=1e-12) or (
        derivative != derivative and expected != expected)
    header = ("input", "value" if scalar else "shape", f"d{r}/d{xname}{v_} (forward)",
              f"∂{r}/∂{xname}{v_} (backward)", "")
    rows = [(xname, _exact(x.data) if scalar else str(np.shape(x.data)), _exact(derivative),
             _exact(expected), "✓" if ok else "✗")]
    inner = f"⟨∂{r}/∂{xname}, v⟩" if tangent is not None else f"∂{r}/∂{xname}"
    verdict = (f"Check: the forward-mode derivative {'equals' if ok else 'DOES NOT equal'} the "
               f"engine's backward pass ({inner} from autograd.gradients) {'✓' if ok else '✗'}")
    numeric = _numeric_check(root, order, [x], [derivative], None, direction=v)
    cost = _passes(f"d{r}/d{xname}{v_}", xname, int(np.size(x.data)), len(leaves),
                   tangent is not None,
                   sum(int(np.size(leaf.data)) for leaf in leaves if leaf is not x))
    story = {"title": title, "intro": intro, "forward": _values(listed, nm),
             "more_nodes": len(order) - len(listed), "lines": lines,
             "hidden": max(steps - max_steps, 0) if capped else 0, "header": header,
             "rows": rows, "more_leaves": 0, "verdict": verdict, "numeric": numeric,
             "pass": "Forward-mode derivatives (topological order)", "table": "Derivative",
             "rule": _FORWARD_RULE.replace("V", along).replace("X", notation.name(xname)),
             "footer": [cost]}
    return _RENDER[format](story)


def _passes(derivative, xname, entries, inputs, along, others):
    """The closing line of forward mode: what its one pass gave, and the passes each mode
    needs for the whole gradient (one forward pass per entry: x has ``entries``, the other
    inputs ``others`` together)."""
    everything = ("the whole gradient" if inputs == 1 else "the derivatives with respect to "
                  + ("both inputs" if inputs == 2 else f"all {inputs} inputs"))
    backward = f"one backward pass gives {everything} at once"
    the_others = "the other input" if inputs == 2 else f"the other {inputs - 1} inputs"
    if along:
        line = f"One forward pass gave {derivative}, the Jacobian times v"
        if entries > 1:
            more = f" (and {the_others} more)" if inputs > 1 else ""
            return (f"{line}; the gradient with respect to {xname} would take {entries} forward "
                    f"passes, one per entry{more}, where {backward} (a row).")
    else:
        line = f"One forward pass gave {derivative}: a column of the Jacobian"
    if inputs == 1:
        return line + "."
    if others > inputs - 1:                     # not every other input is one number
        rest = f"{the_others} would need {others} passes, one per entry"
    else:
        rest = ("the other input would need a pass of its own" if inputs == 2
                else f"the other {inputs - 1} inputs would need a pass each")
    return f"{line}; {rest}, where {backward} (a row)."


def _direction(x, xname, tangent):
    """The seed v of forward mode: ``tangent`` checked against x (a number for a Value, an
    array of x's shape and dtype for a Tensor), or 1 when x is one number."""
    scalar = isinstance(x.data, float)
    if tangent is None:
        if np.size(x.data) != 1:
            raise ValueError(f"explain: {xname} has shape {np.shape(x.data)}: forward mode needs "
                             f"a direction, tangent= an array of that shape (it gives the "
                             f"Jacobian times it)")
        return 1.0 if scalar else np.ones_like(x.data)
    if isinstance(tangent, Node):
        tangent = tangent.data
    v = np.asarray(tangent)
    if v.dtype.kind not in "iuf" or v.dtype == np.bool_:
        raise TypeError(f"explain: tangent must be numbers, got {v.dtype}")
    if v.shape != np.shape(x.data):
        raise ValueError(f"explain: tangent has shape {v.shape}; {xname} has "
                         f"{np.shape(x.data)}")
    if not np.all(np.isfinite(v)):
        raise ValueError("explain: tangent must be finite numbers")
    if scalar:
        return float(v)
    with np.errstate(over="ignore"):
        v = v.astype(x.data.dtype)
    if not np.all(np.isfinite(v)):
        raise ValueError(f"explain: tangent must be finite numbers in {xname}'s dtype "
                         f"{v.dtype} (an entry overflows it)")
    return v


def _edge_jvp(node, i, parents, t):
    """J·t for the Tensor edge node ← parents[i] (J = ∂node/∂parents[i]), by the transpose
    trick: the op's VJP g ↦ gᵀJ run on nodes, at g = 0 (it is linear), on constant copies of
    the node and its inputs (so the small graph it records reaches nothing of the user's), then
    ∇_g ⟨gᵀJ, t⟩ = J·t by one backward pass."""
    kind = type(node)
    y = kind._leaf(node.data, False)
    inputs = [kind._leaf(p.data, False) for p in parents]
    with enable_grad():
        g = kind._leaf(np.zeros_like(node.data), True)
        product = node.op.vjps[i](kind._node_math, g, y, *inputs, **(node.ctx or {}))
        if kind._fit_grad is not None:              # undo broadcasting, as the engine does
            product = kind._fit_grad(kind._node_math, product, parents[i])
        (jvp,) = gradients((product * t).sum(), [g])
    return jvp.data if isinstance(jvp, Node) else jvp


_BACKWARD_RULE = (r"\[ \frac{\partial\,\text{out}}{\partial\,\text{input}} \mathrel{+}= "
                  r"\underbrace{\frac{\partial\,\text{out}}{\partial\,\text{node}}}"
                  r"_{\text{upstream}} \times "
                  r"\underbrace{\frac{\partial\,\text{node}}{\partial\,\text{input}}}"
                  r"_{\text{local}} \]")
_FORWARD_RULE = (r"\[ \frac{d\,\text{node}}{d\,X}V \mathrel{+}= "     # X: the input, V: ·v
                 r"\underbrace{\frac{\partial\,\text{node}}{\partial\,\text{input}}}"
                 r"_{\text{local}} \times \underbrace{\frac{d\,\text{input}}{d\,X}V}"
                 r"_{\text{incoming}} \]")


def _more(count, noun):
    """'1 more step', '3 more steps', '2 more leaves'."""
    plural = "leaves" if noun == "leaf" else noun + "s"
    return f"{count} more {noun if count == 1 else plural}"


def _as_text(s):
    out = [s["title"], "=" * len(s["title"]), *s["intro"][:1], "    " + s["intro"][1], ""]
    forward, more = s["forward"], s["more_nodes"]
    out.append("Forward pass (topological order):")
    out += ["  " + line for line in forward]
    if more:
        out.append(f"  … {_more(more, 'node')}")
    out += ["", s["pass"] + ":"]
    for kind, item in s["lines"]:
        if kind == "edge":
            k, text, formula = item
            out.append(f"  {k:>3}. {text}")
            out.append(f"       local: {formula}")
        elif kind == "sum":
            out.append(f"       {item}")
        else:
            out.append(f"  {item}")
    if s["hidden"]:
        out.append(f"  … {_more(s['hidden'], 'step')} (raise max_steps to see them)")
    out += ["", s["table"] + ":"]
    table = [s["header"]] + [tuple(row) for row in s["rows"]]
    widths = [max(len(str(row[c])) for row in table) for c in range(len(s["header"]))]
    for row in table:
        out.append("  " + " | ".join(str(v).ljust(w) for v, w in zip(row, widths)).rstrip())
    if s["more_leaves"]:
        out.append(f"  … {_more(s['more_leaves'], 'leaf')}")
    out += ["", s["verdict"]] + ([s["numeric"]] if s["numeric"] else []) + s["footer"]
    return "\n".join(out) + "\n"


def _md_cell(v):
    v = str(v)
    return _md_code(v).replace("|", "\\|") if v and v not in ("✓", "✗") else v


def _md_code(s):
    """A code span that holds any text: fenced by one more backtick than the longest run in
    it (CommonMark), newlines as spaces."""
    s = " ".join(str(s).splitlines())
    fence = "`" * (max((len(run) for run in re.findall("`+", s)), default=0) + 1)
    pad = " " if s.startswith("`") or s.endswith("`") else ""
    return f"{fence}{pad}{s}{pad}{fence}"


def _md_text(s):
    """Text outside code spans: markdown's specials escaped (labels are user text)."""
    s = " ".join(str(s).splitlines())
    return re.sub(r"([\\`*_\[\]<>#|!{}()+\-.])", r"\\\1", s)


def _as_markdown(s):
    out = [f"## {_md_text(s['title'])}", "", s["intro"][0], "", f"    {s['intro'][1]}", "",
           "### Forward pass", ""]
    forward, more = s["forward"], s["more_nodes"]
    out += [f"- {_md_code(line)}" for line in forward]
    if more:
        out.append(f"- … {_more(more, 'node')}")
    out += ["", "### " + s["pass"].split(" (")[0], ""]
    for kind, item in s["lines"]:
        if kind == "edge":
            k, text, formula = item
            out.append(f"{k}. {_md_code(text)}  ")
            out.append(f"   local: {_md_code(formula)}")
        elif kind == "sum":
            out.append(f"   — {_md_text(item)}")
        else:
            out += ["", f"**{_md_text(item)}**", ""]
    if s["hidden"]:
        out.append(f"\n… {_more(s['hidden'], 'step')} (raise max_steps to see them)")
    out += ["", "### " + s["table"], "",
            "| " + " | ".join(s["header"]) + " |",
            "|" + "|".join("---" for _ in s["header"]) + "|"]
    out += ["| " + " | ".join(_md_cell(v) for v in row) + " |" for row in s["rows"]]
    if s["more_leaves"]:
        out.append(f"\n… {_more(s['more_leaves'], 'leaf')}")
    out += ["", s["verdict"]] + (["", s["numeric"]] if s["numeric"] else [])
    out += [line for extra in s["footer"] for line in ("", _md_text(extra))]
    return "\n".join(out) + "\n"


def _as_latex(s):
    out = ["% needs \\usepackage{amsmath,amssymb}",
           f"\\subsection*{{{_text_mode(s['title'])}}}",
           _text_mode(s["intro"][0]),
           s["rule"],
           r"\paragraph{Forward pass (topological order)}",
           "\\begin{itemize}"]
    forward, more = s["forward"], s["more_nodes"]
    out += [f"\\item {_text_mode(line)}" for line in forward]
    if more:
        out.append(f"\\item \\dots\\ {_more(more, 'node')}")
    out += ["\\end{itemize}", r"\paragraph{" + s["pass"].split(" (")[0] + "}",
            "\\begin{align*}"]
    for kind, item in s["lines"]:
        if kind == "edge":
            k, text, formula = item
            out.append(f"&({k})\\quad {text} &&\\text{{local: }} {formula} \\\\")
        elif kind == "sum":
            out.append(f"&\\qquad {item} \\\\")
        else:
            out.append(f"&{item} \\\\")
    out.append("\\end{align*}")
    if s["hidden"]:
        out.append(f"\\dots\\ {_more(s['hidden'], 'step')} (raise max\\_steps to see them)")
    cols = len(s["header"])
    out += ["\\begin{tabular}{" + "l" * cols + "}",
            " & ".join(_text_mode(h) for h in s["header"]) + " \\\\ \\hline"]
    out += [" & ".join(_text_mode(str(v)) for v in row) + " \\\\" for row in s["rows"]]
    out.append("\\end{tabular}")
    if s["more_leaves"]:
        out.append(f"\\dots\\ {_more(s['more_leaves'], 'leaf')}")
    out += ["", _text_mode(s["verdict"])] + (["", _text_mode(s["numeric"])] if s["numeric"]
                                             else [])
    out += [line for extra in s["footer"] for line in ("", _text_mode(extra))]
    return "\n".join(out) + "\n"


_RENDER = {"text": _as_text, "markdown": _as_markdown, "latex": _as_latex}
