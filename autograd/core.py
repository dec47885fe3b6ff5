"""The graph core shared by `Value` and `Tensor`.

A node holds its data, its gradient, an ordered tuple of parents, the `Op` that made it and the
op's non-differentiable arguments (`ctx`). An `Op` carries a forward function and one
vector-Jacobian product (VJP) per input, all written once against a small math namespace ``m``
(see `autograd.backends`), so the same rule runs on floats, on numpy arrays and, for higher-order
derivatives, on nodes themselves.

The backward pass is the chain rule applied in reverse topological order: for every edge
node → parent it computes

    contribution = VJP_i(grad_out = ∂root/∂node)          (upstream × local)
    ∂root/∂parent += contribution                          (summed in `_backprop`, nowhere else)

Nodes never point at their rule's closure and rules never capture nodes, so a graph holds no
reference cycles and is freed by reference counting as soon as the root goes away.
"""
from __future__ import annotations

import contextlib
import gc
import math
import re
import unicodedata


class Op:
    """A primitive operation: ``forward(m, *xs, **ctx)`` and one VJP per input.

    ``vjps[i](m, g, y, *xs, **ctx)`` returns ∂root/∂x_i given g = ∂root/∂y, where y is the op's
    output. ``formulas[i]`` is the local derivative ∂y/∂x_i as text, for explanations.
    ``saving(m, *xs, **ctx)``, for an op whose VJPs reuse parts of its forward computation,
    returns ``(y, parts)``: the output and a dict of those parts, kept in the node's ctx (under
    names that start with "_") — so a replay (`autograd.trace`) can make them again.
    ``summing``, optional, maps an input i to ``(m, g, y, *xs, **ctx) → (vjps[i]'s result,
    its column sums or None)``, the sums those of ``np.add.reduce(·, axis=0)``: a replay whose
    input i is ``x + b`` with a bias b along the rows gets b's gradient from the same pass.
    """

    __slots__ = ("name", "forward", "vjps", "formulas", "symbol", "saving", "summing")

    def __init__(self, name, forward, vjps, formulas=None, symbol=None, saving=None,
                 summing=None):
        self.name = name
        self.forward = forward
        self.vjps = tuple(vjps)
        self.formulas = tuple(formulas) if formulas else (None,) * len(self.vjps)
        self.symbol = symbol or name
        self.saving = saving
        self.summing = dict(summing or {})

    def __repr__(self):
        return f"Op({self.name!r})"


class _Mode:
    """Grad recording and anomaly detection switches, process-wide (PyTorch keeps its grad mode
    per thread): a `threading.local` would cost each scalar op ~23 ns (~8%) to read.

    ``live`` — recording on and no anomaly checks — is the one flag the hot paths read.
    """

    __slots__ = ("_grad_enabled", "_anomaly", "transform_depth", "escapes", "live",
                 "record_constants")

    def __init__(self):
        self._grad_enabled = True
        self._anomaly = False
        self.live = True
        self.record_constants = False  # `autograd.trace` records ops on constants too
        self.transform_depth = 0      # > 0 while a `grad` transform is tracing a function
        self.escapes = 0              # traced values turned into plain numbers (see `escaped`)

    @property
    def grad_enabled(self):
        return self._grad_enabled

    @grad_enabled.setter
    def grad_enabled(self, on):
        self._grad_enabled = bool(on)
        self.live = self._grad_enabled and not self._anomaly

    @property
    def anomaly(self):
        return self._anomaly

    @anomaly.setter
    def anomaly(self, on):
        self._anomaly = bool(on)
        self.live = self._grad_enabled and not self._anomaly


MODE = _Mode()


@contextlib.contextmanager
def no_grad():
    """Run without recording a graph: results are leaves with ``requires_grad=False``."""
    previous = MODE.grad_enabled
    MODE.grad_enabled = False
    try:
        yield
    finally:
        MODE.grad_enabled = previous


@contextlib.contextmanager
def enable_grad():
    """Record a graph again inside a `no_grad` block."""
    previous = MODE.grad_enabled
    MODE.grad_enabled = True
    try:
        yield
    finally:
        MODE.grad_enabled = previous


@contextlib.contextmanager
def detect_anomaly():
    """Raise `FloatingPointError` at the first non-finite value made in forward or backward.

    The error names the op that made it from finite values — or, when the op was handed a
    value already non-finite (a leaf, a result computed outside the mode, a grad_out), that
    value: the op only passed it on.

    Outside this mode chainrule follows IEEE-754, like numpy: log(−1) is nan, log(0) is −inf,
    1/0 is inf, exp(1000) is inf, and nothing raises.
    """
    previous = MODE.anomaly
    MODE.anomaly = True
    try:
        yield
    finally:
        MODE.anomaly = previous


_NOT_PLAIN_ASCII = re.compile("[^\t\n\x20-\x7e]")
_HIDDEN = ("Cc", "Cf", "Cs")        # control, format, (lone) surrogate


def _escaped(found):
    ch = found.group()
    return ascii(ch)[1:-1] if unicodedata.category(ch) in _HIDDEN else ch


def visible(s):
    """``s`` with its control characters (all but tab and newline), format characters and lone
    surrogates written as Python escapes (\\x1b, \\r, \\u202e, \\u200b, \\ud800): SVG (XML)
    cannot hold some, NUL ends DOT's text, a carriage return or an escape sequence rewrites the
    reader's terminal, and a bidi override (U+202E) or a zero-width character draws as nothing
    or reorders what follows, so the label would read as another. Other text (W⁽¹⁾, δ, 中文)
    stays as it is."""
    return _NOT_PLAIN_ASCII.sub(_escaped, str(s))


def _describe(node):
    """'Tensor (label 'x') of shape (3,)', or for an unlabelled result the op that made it:
    'Tensor mul(x, ·) of shape (3,)'."""
    if node.label:
        name = f" (label {node.label!r})"
    elif node._op is not None:
        inputs = ", ".join(visible(p.label) if p.label else "·" for p in node._parents)
        name = f" {node._op.name}({inputs})"
    else:
        name = ""
    return f"{node._kind_name()}{name}{node._shape_text()}"


def check_finite(data, op_name, inputs):
    """Anomaly-mode check of an op's result in forward: raise naming the op, the labels and
    the shapes.

    Every result made in the mode is checked as it is made, so a non-finite input came from
    outside the checks — a leaf or constant, or an op run before the mode was on: that input
    is named, not the op, which only passed it on. (It is named even if the op also makes a
    non-finite value of its own: it is the earlier one.)"""
    if _all_finite(data):
        return
    raise FloatingPointError(_report(op_name, inputs, "forward"))


def check_backward(contribution, op_name, inputs, parent, grad_out, output):
    """`check_finite` for one VJP's result ∂root/∂parent, where the op's inputs, its
    ``output`` (recorded outside the mode) or the ``grad_out`` reaching it may have been
    non-finite first. A grad_out is a sum of contributions checked one by one (the seed is
    checked by `check_seed`): if it is not finite, that sum overflowed."""
    if _all_finite(contribution):
        return
    raise FloatingPointError(_report(op_name, inputs, "backward", parent, grad_out, output))


def check_leaf_sum(previous, g, leaf, accumulated=False):
    """Anomaly-mode check of a leaf's gradient ``previous + g`` (both finite) before it is
    formed. An interior node's overflowed sum is found when it is passed on (`check_backward`);
    a leaf's never is, so it is checked here: the sum over its uses in this pass, or
    (``accumulated``) the ``.grad`` an earlier pass left plus this pass's gradient."""
    if previous is None:
        return
    previous = previous.data if isinstance(previous, Node) else previous
    g = g.data if isinstance(g, Node) else g
    if isinstance(g, float) and isinstance(previous, float):
        total = previous + g
    else:
        import numpy as np
        with np.errstate(over="ignore", invalid="ignore"):
            total = np.add(previous, g)
    if _all_finite(total) or not (_all_finite(previous) and _all_finite(g)):
        return
    why = ("the .grad it held from an earlier backward pass plus this pass's gradient (a leaf's "
           ".grad accumulates)" if accumulated else
           "the sum of finite contributions, one per use,")
    raise FloatingPointError(f"detect_anomaly: the gradient of the leaf {_describe(leaf)} "
                             f"overflowed in backward: {why} is not finite")


def check_seed(seed, root):
    """Anomaly-mode check of the grad_out a backward pass starts from: an inf or nan there is
    the caller's, and would otherwise be reported as made by the first op it reaches."""
    if not _all_finite(seed):
        raise FloatingPointError(
            f"detect_anomaly: backward was given a non-finite grad_out for {_describe(root)}")


def backward_anomaly(error, op_name, inputs, node, grad_out, output):
    """An anomaly raised while a VJP was being recorded (``create_graph=True``) happened in the
    backward pass of ``op_name``: say so first, with the inner op's report after it — unless
    the VJP was given a value that was non-finite already, which is then the one to name."""
    given = _given_non_finite(op_name, inputs, "backward", node, grad_out, output)
    return FloatingPointError(given or (
        f"detect_anomaly: op '{op_name}' produced a non-finite value in backward for "
        f"{_describe(node)}; inputs: {', '.join(_describe(x) for x in inputs)} (inside its "
        f"derivative: {str(error).removeprefix('detect_anomaly: ')})"))


def _report(op_name, inputs, phase, node=None, grad_out=None, output=None):
    """The message for a non-finite value from ``op_name`` in ``phase``: what it was given
    non-finite, else the op itself, which made it from finite values."""
    given = _given_non_finite(op_name, inputs, phase, node, grad_out, output)
    if given:
        return given
    target = f" for {_describe(node)}" if node is not None else ""
    made_from = "finite inputs" if phase == "forward" else "a finite gradient and inputs"
    return (f"detect_anomaly: op '{op_name}' produced a non-finite value in {phase}{target} "
            f"from {made_from}; inputs: {', '.join(_describe(x) for x in inputs)}")


def _given_non_finite(op_name, inputs, phase, node, grad_out, output):
    """The message naming what was non-finite before ``op_name`` ran, the earliest first — an
    input, the op's own output from a forward pass outside the mode, the gradient reaching it
    in backward — or None when all of them are finite."""
    head = f"detect_anomaly: op '{op_name}'"
    target = f" for {_describe(node)}" if node is not None else ""
    listed = f"; inputs: {', '.join(_describe(x) for x in inputs)}"
    for x in inputs:
        if not _all_finite(x.data):
            return (f"{head} was given a non-finite value in {phase}{target}: {_describe(x)} "
                    f"was already non-finite ({_origin(x)}){listed}")
    if output is not None and not _all_finite(output.data):
        return (f"{head} made {_describe(output)} non-finite in a forward pass outside "
                f"detect_anomaly() (found in backward{target}){listed}")
    if grad_out is not None and not _all_finite(grad_out):
        return (f"{head} was given a non-finite value in backward{target}: the gradient of its "
                f"output {_describe(output)} overflowed (it is the sum of finite "
                f"contributions, one per use){listed}")
    return None


def _origin(node):
    if node._op is None:
        return "it comes from outside the recorded graph: a leaf or a constant"
    return f"it comes from op '{node._op.name}' run outside detect_anomaly()"


def _all_finite(data):
    if isinstance(data, Node):              # a gradient built with create_graph=True
        data = data.data
    if isinstance(data, float):
        return math.isfinite(data)
    import numpy as np
    return bool(np.all(np.isfinite(data)))


class Node:
    """One vertex of a computation graph (see the module docstring).

    ``grad`` holds ∂root/∂self after `backward`: raw data (float or ndarray), or a node with its
    own graph when ``create_graph=True``. Leaf gradients accumulate across backward calls, as in
    PyTorch; an intermediate node's gradient is that of the latest backward pass through it.
    """

    __slots__ = ()          # each kind of node keeps its own fields (`Tensor`, `Value`)

    # Filled in by subclasses.
    _math = None          # namespace of float or ndarray functions for this kind of node
    _node_math = None     # namespace of node functions, for create_graph=True
    _fit_grad = None      # unbroadcast for arrays: fit(m, contribution, parent)
    _own_grad = None      # a leaf's gradient, copied if it shares memory with another's
    _graph_backprop = None  # a kind that stores its graph its own way runs its own pass
    _graph_order = None     # … and may walk it its own way (`topo_order`)

    def __repr__(self):
        parts = [f"data={self._data_repr()}"]
        if self._grad is not None:
            parts.append(f"grad={self._grad_repr()}")
        if self.label:
            parts.append(f"label={self.label!r}")
        if self._op is not None:
            parts.append(f"op={self._op.name!r}")
        return f"{type(self).__name__}({', '.join(parts)})"

    # -- graph -------------------------------------------------------------------------------
    @property
    def parents(self):
        """The inputs this node was computed from, in argument order."""
        return self._parents

    @property
    def op(self):
        """The `Op` that made this node, or None for a leaf."""
        return self._op

    @property
    def ctx(self):
        """The op's non-differentiable arguments (axis, shape, slope, ...), or None. (Entries
        named ``_…`` are kept from the forward pass for the backward one: not arguments.)"""
        ctx = self._ctx
        if ctx and any(key[0] == "_" for key in ctx):
            return {key: value for key, value in ctx.items() if key[0] != "_"}
        return ctx

    @property
    def is_leaf(self):
        return not self._parents

    def is_vertex(self, other):
        """Is ``other`` this same vertex of the graph? Identity for a Tensor; for a Value op
        result, any handle on the same tape entry (handles are made afresh when walked)."""
        return self is other

    def with_label(self, label):
        """Set ``label`` and return self, so ``z = (w*x + b).with_label('z')`` reads in one line."""
        self.label = label
        return self

    def zero_grad(self):
        self._grad = None

    @property
    def has_grad(self):
        """True when ``.grad`` holds a gradient (from a backward pass, or set by hand) rather
        than nothing: a Value's ``.grad`` reads 0.0 before any, and optimisers skip such
        parameters, as PyTorch's skip a ``.grad`` of None."""
        return self._grad is not None

    def detach(self):
        """A new leaf sharing this node's data, cut from the graph."""
        return self._leaf(self.data, False, self.label)

    def backward(self, grad_out=None, create_graph=False):
        """Fill ``.grad`` of every node in this graph with ∂self/∂node (see `Node`).

        A node that does not require a gradient (a constant, or a result made under `no_grad`)
        has no graph to go back through: that is an error, as in PyTorch, not a silent no-op."""
        if not self.requires_grad:
            raise RuntimeError(
                f"backward: this {type(self).__name__} does not require a gradient (it is a "
                "constant, was made under no_grad(), or none of its inputs requires one), so "
                "there is no graph to differentiate")
        _backprop(self, _seed(self, grad_out, create_graph), create_graph, store=True)

    def grad_state(self, root):
        """'current' if ``.grad`` came from ``root``'s latest backward pass (one started at
        ``root`` itself), 'stale' if from another pass (an older graph, a newer one through
        shared leaves, or a pass from a node ``root`` feeds), 'none' if never computed.
        (Changing ``.data`` by hand after backward is not tracked.)"""
        if self._grad is None:
            return "none"
        token = root._pass
        if token is not None and self._pass is token and token.root == vertex_key(root):
            return "current"
        return "stale"          # another pass's, or one started at another root

    # Implemented by subclasses -------------------------------------------------------------
    @classmethod
    def _leaf(cls, data, requires_grad, label=None):
        raise NotImplementedError

    def _seed(self, grad_out, create_graph):
        raise NotImplementedError

    def _kind_name(self):
        return type(self).__name__

    def _shape_text(self):
        return ""

    def _data_repr(self):
        return repr(self.data)

    def _grad_repr(self):
        return repr(self._grad)


_new = object.__new__


def escaped(node):
    """Note that a traced value became a plain number (float(), int(), .item(), .numpy()) while a
    transform is tracing: its graph ends there, which `autograd.grad` reports."""
    if MODE.transform_depth and node.requires_grad:
        MODE.escapes += 1


def make_node(kind, data, parents, op, requires_grad, ctx=None):
    """The result of ``op`` on ``parents``, a node of class ``kind`` — the single place where
    op results are built for Value and Tensor alike. The graph is recorded only when grad mode
    is on and an input requires a gradient (constants combine into constants)."""
    out = _new(kind)
    out.data = data
    out._grad = None
    out._pass = None
    out.label = None
    out._ctx = ctx
    if requires_grad and MODE._grad_enabled:       # the fields, not the properties: hot path
        out._parents = parents
        out._op = op
        out.requires_grad = True
    elif MODE.record_constants:
        # while a trace records: an op on constants (an input among them), or one run under
        # no_grad, keeps its inputs, so a replay computes it again from new inputs; backward
        # never goes there
        out._parents = parents
        out._op = op
        out.requires_grad = False
    else:
        out._parents = ()
        out._op = None
        out.requires_grad = False
    if MODE._anomaly and op is not None:
        check_finite(data, op.name, parents)
    return out


def topo_order(root):
    """Every node reachable from ``root`` through parents, each after all of its parents.

    Iterative depth-first search (no recursion, so a million-node chain is fine); parents are
    visited in argument order, so the order is the same on every run.
    """
    # The walk makes millions of short-lived objects (stack entries, a Value's handles) and no
    # cycles: with the collector on, the collections they trigger re-scan every node already
    # kept, and a 1,000,000-node chain took 7.2 s instead of 3.3 s.
    collecting = gc.isenabled()
    gc.disable()
    try:
        walk = getattr(type(root), "_graph_order", None)
        return _topo_order(root) if walk is None else walk(root)
    finally:
        if collecting:
            gc.enable()


def _topo_order(root):
    order = []
    seen = set()
    stack = [(root, False)]
    push = stack.append
    pop = stack.pop
    while stack:
        node, expanded = pop()
        if expanded:
            order.append(node)
            continue
        if node in seen:
            continue
        seen.add(node)
        push((node, True))
        parents = node._parents
        # Reversed so the first parent is finished first: order follows argument order.
        for i in range(len(parents) - 1, -1, -1):
            parent = parents[i]
            if parent not in seen:
                push((parent, False))
    return order


class _PassToken:
    """Marks the nodes one backward pass reached (see `Node.grad_state`); ``root`` is the key
    of the node the pass started from (`vertex_key`), not the node: no graph is kept alive."""

    __slots__ = ("root",)

    def __init__(self, root):
        self.root = vertex_key(root)


def vertex_key(node):
    """A key for ``node`` as a vertex: its tape entry for a Value op result (whose handles are
    made afresh), else the object itself."""
    tape = getattr(node, "_tape", None)
    return (id(tape), node._i) if tape is not None else id(node)


def _seed(root, grad_out, create_graph):
    """The gradient a backward pass from ``root`` starts from. With ``create_graph`` a grad_out
    that is a node stays one, so the gradients are functions of it too (uᵀJ as a graph over u:
    how `autograd.jvp` gets J·v); one of the other kind cannot join root's graph, and taking
    its numbers would silently drop that dependence."""
    if create_graph and isinstance(grad_out, Node) and grad_out.requires_grad and \
            not isinstance(grad_out, type(root)):
        raise TypeError(f"backward: grad_out is a {type(grad_out).__name__} that requires a "
                        f"gradient, the output a {type(root).__name__}: a Value and a Tensor "
                        f"cannot be combined in one graph; give a {type(root).__name__}")
    return root._seed(grad_out, create_graph)


def _count_consumers(root):
    """{node: how many times it is an input below ``root``}, over nodes that need a gradient."""
    pending = {root: 0}
    stack = [root]
    pop, push = stack.pop, stack.append
    get = pending.get
    while stack:
        for parent in pop()._parents:
            if parent.requires_grad:
                count = get(parent)
                if count is None:
                    pending[parent] = 1
                    push(parent)
                else:
                    pending[parent] = count + 1
    return pending


def _backprop(root, seed, create_graph, store=False, keep=(), observe=None):
    """The chain rule over the graph below ``root``: {node: ∂root/∂node} for the nodes in
    ``keep``.

    A node is processed once all of its consumers have been (Kahn's order, from the root), so
    its gradient is complete when it is passed on; then the pass lets go of it unless it is to
    be kept, so memory holds only the frontier. With ``store`` each gradient is written to
    ``.grad`` as it completes (leaves accumulate). With ``create_graph`` the VJPs run on nodes,
    so the gradients are nodes with their own graph (for higher-order derivatives).
    ``observe``, if given, is told each step as it happens — ("node", node, g) and
    ("edge", node, i, parent, g, contribution, total) — which is how `autograd.explain` narrates
    the engine's own pass.
    """
    kind = type(root)
    if MODE._anomaly:
        check_seed(seed, root)
    if kind._graph_backprop is not None:
        return kind._graph_backprop(root, seed, create_graph, store, keep, observe)
    pending = _count_consumers(root)
    grads = {root: seed}
    m = kind._node_math if create_graph else kind._math
    fit = kind._fit_grad
    own = kind._own_grad
    anomaly = MODE.anomaly
    checked = fit is not None or anomaly or observe is not None
    token = _PassToken(root) if store else None
    get = grads.get
    ready = [root]
    pop, push = ready.pop, ready.append
    recording = MODE.grad_enabled       # (set and restored here, not by a context manager: hot)
    MODE.grad_enabled = create_graph
    try:
        while ready:
            node = pop()
            g = grads[node]
            parents = node._parents
            if store:
                node._pass = token
                if parents:
                    node._grad = g
                else:
                    if own is not None:
                        g = own(g)
                    previous = node._grad
                    if previous is None:
                        node._grad = g
                    else:       # (a 0-d array's sum is a numpy scalar: own makes it an array)
                        if anomaly:
                            check_leaf_sum(previous, g, node, accumulated=True)
                        if not create_graph and isinstance(previous, Node) and \
                                previous.requires_grad:
                            # an earlier create_graph pass's gradient keeps its graph (the
                            # sum is recorded, this pass's part a constant), as in PyTorch
                            MODE.grad_enabled = True
                            try:
                                total = previous + g
                            finally:
                                MODE.grad_enabled = False
                        else:
                            total = previous + g
                        node._grad = total if own is None else own(total)
            if node not in keep:
                del grads[node]
            if not parents:
                continue
            if observe is not None:
                observe(("node", node, g))
            vjps = node._op.vjps
            ctx = node._ctx
            binary = len(parents) == 2 and ctx is None    # most ops: the hot path, spelt out
            if create_graph:
                y, xs = node, parents
            elif binary:
                y, xs = node.data, (parents[0].data, parents[1].data)
            else:
                y, xs = node.data, [p.data for p in parents]
            if binary:
                a, b = xs
            i = -1
            for parent in parents:
                i += 1
                if not parent.requires_grad:
                    continue
                try:
                    if binary:
                        contribution = vjps[i](m, g, y, a, b)
                    elif ctx is None:
                        contribution = vjps[i](m, g, y, *xs)
                    else:
                        contribution = vjps[i](m, g, y, *xs, **ctx)
                except FloatingPointError as error:   # anomaly mode, create_graph=True
                    raise backward_anomaly(error, node._op.name, parents, parent, g,
                                           node) from None
                if checked:
                    if fit is not None:
                        contribution = fit(m, contribution, parent)
                    if anomaly:
                        check_backward(contribution, node._op.name, parents, parent, g, node)
                        if not parent._parents:     # a leaf's sum is never passed on
                            check_leaf_sum(get(parent), contribution, parent)
                previous = get(parent)
                # The one place where contributions to a node used twice are summed.
                grads[parent] = contribution if previous is None else previous + contribution
                if observe is not None:
                    observe(("edge", node, i, parent, g, contribution, grads[parent]))
                count = pending[parent] - 1
                if count:
                    pending[parent] = count
                else:
                    del pending[parent]
                    push(parent)
            # Drop the loop's own references, so that a leaf gradient made here is unshared
            # when its turn comes and `_own_grad` can keep it instead of copying it.
            contribution = previous = None
    finally:
        MODE.grad_enabled = recording
    return grads


def gradients(root, wrt, grad_out=None, create_graph=False):
    """∂root/∂x for each x in ``wrt`` (a list of nodes, or one node), like
    ``torch.autograd.grad``; touches no ``.grad``.

    A node that ``root`` does not depend on gets a zero gradient. Each gradient is what x's
    ``.grad`` would hold: for a Tensor an array of its own (not a numpy scalar for a 0-d x,
    not a read-only broadcast view, not an array another gradient shares).
    """
    if isinstance(wrt, Node):
        wrt = [wrt]             # one node (as torch.autograd.grad): not its rows
    wrt = list(wrt)
    for i, x in enumerate(wrt):
        if not isinstance(x, Node):
            raise TypeError(f"gradients: wrt[{i}] is a {type(x).__name__}; the gradient is "
                            f"taken with respect to nodes (Value or Tensor) of the graph")
    grads = _backprop(root, _seed(root, grad_out, create_graph), create_graph, keep=set(wrt))
    out = []
    for x in wrt:
        g = grads.get(x)
        if g is None:
            g = x._zeros_like(create_graph)
        elif x._own_grad is not None:
            g = x._own_grad(g)
        out.append(g)
    return out
