"""Trace once, replay after: a Tensor function's forward and backward passes, recorded on its first
inputs and re-run on later inputs of the same shapes without building a graph.

    step = trace(lambda x, y: model(x).softmax_cross_entropy(y))
    J = step(X_batch, y_batch)      # fills each parameter's .grad, as J.backward() does

The first call with inputs of given shapes and dtypes runs ``fn`` as usual, on the graph, and
calls backward, watching the engine's pass (`core._backprop`'s ``observe``). What it saw becomes
a plan: the ops in topological order, each with its inputs' positions and its ctx, and the
engine's backward pass edge by edge, in the engine's order. A later call with inputs of the same
shapes runs that plan: each op's own ``forward``, then each edge's own VJP, the engine's
unbroadcast and its sum, over plain arrays. No node is made, no graph is ordered, nothing is
looked up twice: the rules are the engine's rules, called in the engine's order, so the numbers
are the engine's (every new plan is replayed once on the inputs it was traced on and checked
against the graph bit for bit before it is used). A few runs of ops are one call, computing the
same floats in fewer passes (`autograd.kernels`): a bias add and the relu that alone reads it; a
bias's gradient summed by the VJP above it; and at the root, softmax cross-entropy with class
labels of a bias add, with the cost's VJP (the root's gradient is the seed, known in advance).

What a trace keeps, as ``jax.jit`` and ``torch.jit.trace`` do, is the ops the function recorded
on those inputs. Python control flow that depends on the numbers, and arithmetic done on the
numbers outside Tensor ops (numpy on ``x`` or ``.data``, ``float()``), are frozen as the trace
saw them. While tracing, ops on constants, ops under `no_grad`, ``detach()`` and a Tensor's
conversion of an array to another dtype are recorded (outside a trace they make plain
constants), so a replay computes them from the new inputs. An input must appear in the graph
as itself — a leaf's data, or an op's argument such as cross-entropy's labels — or the trace
refuses to build a plan (`TraceError`). `Traced.check` compares a replay with the graph on
other inputs. Under `no_grad`, `detect_anomaly` or a `grad` transform a call runs on the graph.
"""
from __future__ import annotations

import sys

import numpy as np

from . import kernels
from .backends import ArrayMath
from .core import MODE, _backprop, _seed, topo_order
from .rules import ADD, MATMUL, RELU, SOFTMAX_CROSS_ENTROPY
from .tensor import Tensor

_ndarray = np.ndarray


class TraceError(ValueError):
    """``fn`` did something a replay cannot repeat (see the module docstring)."""


MAX_PLANS = 32      # signatures a traced function keeps plans for (jax.jit's cache is bounded too)


def trace(fn, fallback=False, max_plans=MAX_PLANS):
    """``fn(*arrays) -> Tensor`` (or a tuple of Tensors, the first a scalar to differentiate) as
    a `Traced` callable: it returns the outputs' numbers and fills the ``.grad`` of the leaves
    that require one, replaying a plan for inputs of shapes it has seen.

    Parameters (the leaves that require a gradient) must be made outside ``fn``: a replay fills
    the ``.grad`` of the leaves the trace saw, reading their ``.data`` (and constants') on each
    call; once one holds another shape or dtype, that signature is traced anew. A `TraceError`
    is raised when a trace cannot be replayed; with ``fallback=True`` that signature runs on the
    graph instead (the reason is kept in ``refused``).

    Plans are kept for the ``max_plans`` signatures used most recently: a function fed ever
    new shapes (a batch size per call, say) drops the least recently used plan, and traces
    that signature again if it comes back (``evicted`` counts the plans dropped)."""
    if not callable(fn):
        raise TypeError(f"trace needs a function, got {type(fn).__name__}")
    return Traced(fn, fallback, max_plans)


class Traced:
    """A traced function (see `trace`). ``plans`` holds one plan per input signature (shapes
    and dtypes), the most recently used last; ``traces`` and ``replays`` count the calls served
    each way, ``refused`` the signatures run on the graph and why, ``evicted`` the plans (and
    refusals) dropped to keep at most ``max_plans`` of each."""

    def __init__(self, fn, fallback=False, max_plans=MAX_PLANS):
        if isinstance(max_plans, bool) or not isinstance(max_plans, (int, np.integer)):
            raise TypeError(f"trace: max_plans must be a whole number, got "
                            f"{type(max_plans).__name__}")
        if max_plans < 1:
            raise ValueError(f"trace: max_plans must be at least 1, got {max_plans}")
        self.fn = fn
        self.fallback = bool(fallback)
        self.max_plans = int(max_plans)
        self.plans = {}
        self.refused = {}
        self.traces = 0
        self.replays = 0
        self.evicted = 0

    def __call__(self, *inputs):
        key = _signature(inputs)
        if not MODE.live or MODE.transform_depth:
            return self._graph(inputs)[0]
        plan = self.plans.get(key)
        if plan is not None and not plan.current():
            del self.plans[key]
            plan = None
        if plan is not None and plan.ready():
            self.replays += 1
            if len(self.plans) > 1:
                self.plans[key] = self.plans.pop(key)       # the most recently used: last
            return plan.run(inputs)
        if plan is not None or key in self.refused:
            # (an earlier create_graph gradient in a .grad: the graph's sum keeps its graph)
            return self._graph(inputs)[0]
        try:
            out, plan = self._trace(inputs)
        except TraceError as error:
            if not self.fallback:
                raise
            self._keep(self.refused, key, str(error))
            return error.result       # the graph ran: its outputs, its gradients stored
        self._keep(self.plans, key, plan)
        self.traces += 1
        return out

    def _keep(self, kept, key, item):
        kept.pop(key, None)
        while len(kept) >= self.max_plans:
            del kept[next(iter(kept))]      # the least recently used
            self.evicted += 1
        kept[key] = item

    def __repr__(self):
        name = getattr(self.fn, "__qualname__", type(self.fn).__name__)
        return (f"Traced({name}, plans={len(self.plans)}, traces={self.traces}, "
                f"replays={self.replays}, refused={len(self.refused)}, evicted={self.evicted})")

    def check(self, *inputs):
        """Run ``fn`` on the graph and the replay on ``inputs``; raise `TraceError` naming the
        first output or gradient that differs. The leaves' ``.grad`` are left as the graph made
        them. Returns True."""
        key = _signature(inputs)
        plan = self.plans.get(key)
        if plan is None or not plan.current():
            self._keep(self.plans, key, self._trace(inputs)[1])
            self.traces += 1
            return True
        before = {leaf: leaf._grad for leaf in plan.params}
        out, _ = self._graph(inputs)
        plan.compare(inputs, out, before)
        return True

    def _graph(self, inputs):
        nodes = _outputs(self.fn(*inputs))
        nodes[0].backward()
        return _unpack([n.data for n in nodes]), nodes

    def _trace(self, inputs):
        recording = MODE.record_constants      # (a trace inside a traced function: the outer
        MODE.record_constants = True            # one goes on recording after it)
        try:
            result = self.fn(*inputs)
        finally:
            MODE.record_constants = recording
        nodes = _outputs(result)
        root = nodes[0]
        order = topo_order(root)
        seen = set(order)
        for node in nodes[1:]:      # outputs made beside the root: their ops are replayed too
            later = [n for n in topo_order(node) if n not in seen]
            order += later
            seen.update(later)
        before = {n: n._grad for n in order if not n._parents and n.requires_grad}
        if not root.requires_grad:
            root.backward()                 # the engine's own error
        steps = []
        _backprop(root, _seed(root, None, False), False, store=True,
                  observe=lambda event: _record(steps, event))
        out = _unpack([n.data for n in nodes])
        try:
            plan = _Plan(order, nodes, inputs, steps)
            plan.compare(inputs, out, before)
        except TraceError as error:
            error.result = out      # the graph's pass is done: a fallback returns it
            raise
        return out, plan


def _record(steps, event):
    if event[0] == "node":
        steps.append((event[1], []))
    else:
        steps[-1][1].append((event[2], event[3]))


def _signature(inputs):
    """The plan key of ``inputs``: each array's shape and dtype (TypeError for a non-array)."""
    key = []
    for a in inputs:
        if type(a) is not _ndarray:
            raise TypeError(f"trace: input {len(key) // 2} must be a numpy array, got "
                            f"{type(a).__name__}")
        key.append(a.shape)
        key.append(a.dtype)
    return tuple(key)


def _outputs(result):
    nodes = tuple(result) if isinstance(result, (tuple, list)) else (result,)
    if not nodes or not all(isinstance(n, Tensor) for n in nodes):
        raise TypeError("trace: the function must return a Tensor, or a tuple of Tensors whose "
                        "first is the one to differentiate; got "
                        + ", ".join(type(n).__name__ for n in nodes))
    return nodes


def _unpack(arrays):
    return arrays[0] if len(arrays) == 1 else tuple(arrays)


def _where_input(value, inputs):
    for k, a in enumerate(inputs):
        if value is a:
            return k
    return None


def _feed(value, inputs):
    """How a ctx value comes from the inputs: k for input k itself, a tuple of k's and
    ("const", v) for a tuple holding inputs (an index), None for a value that holds none."""
    k = _where_input(value, inputs)
    if k is not None:
        return k
    if isinstance(value, tuple):
        parts = tuple(_where_input(v, inputs) for v in value)
        if any(k is not None for k in parts):
            return tuple(("const", v) if k is None else k for v, k in zip(value, parts))
    return None


class _Plan:
    """One signature's replay, as Python source: the forward ops in topological order, then the
    backward edges in the engine's order, one line each (``code``), run as a function."""

    def __init__(self, order, outputs, inputs, steps):
        for k, a in enumerate(inputs):
            for j in range(k):
                if inputs[j] is a:      # (inputs are found in the graph by identity)
                    raise TraceError(f"trace: input {k} is the same array as input {j}: the "
                                     "graph cannot show which of them each use is, so a "
                                     "replay could not feed them apart. Pass a copy")
        slot = {id(n): i for i, n in enumerate(order)}
        self.params = []              # leaves that require a gradient
        self.namespace = {"m": ArrayMath, "asarray": np.asarray, "fit": Tensor._fit_grad,
                          "own": Tensor._own_grad, "unshared": _UNSHARED,
                          "bias_relu": _bias_relu, "bias_cost": _bias_cross_entropy}
        ns = self.namespace
        lines = []
        found = set()
        constants = []
        self._ctx_arg = {}            # slot → ", **x{slot}" for an op with a ctx
        # x + b with a bias b along the rows: slot → (x's slot, b's slot). A relu taking it
        # alone is computed in the same pass (`kernels.bias_relu`), and the VJP that makes
        # its gradient may make b's too (Op.summing)
        self.bias_adds = {slot[id(n)]: (slot[id(n._parents[0])], slot[id(n._parents[1])])
                          for n in order if _is_bias_add(n)}
        # (numpy sums a one-column gradient pairwise, not row after row)
        self._summable = {i for i in self.bias_adds if kernels._summable(order[i].data)}
        fused_relu = {}               # the add's slot → the relu's
        for node in order:
            if node._op is RELU and slot[id(node._parents[0])] in self.bias_adds:
                fused_relu.setdefault(slot[id(node._parents[0])], slot[id(node)])
        relu_done = set(fused_relu.values())
        # the root: softmax cross-entropy of a bias add that nothing else reads, with class
        # labels: the add, the cost and the cost's VJP (the root's gradient is the seed) in one
        # call (`kernels.bias_cross_entropy`); the backward pass takes that VJP as made
        self.fused_cost = _fused_cost(order, outputs[0], slot, self.bias_adds)
        for i, node in enumerate(order):
            about = f"{_shape(node)}{_label(node)}"
            if self.fused_cost is not None and i == self.fused_cost[1]:
                continue                # (made with the cost below)
            if i in fused_relu:
                r = fused_relu[i]
                ns[f"f{i}"], ns[f"f{r}"] = ADD.forward, RELU.forward
                x, b = self.bias_adds[i]
                lines.append(f"v{i}, v{r} = bias_relu(m, f{i}, f{r}, v{x}, v{b})  # add and "
                             f"relu in one pass {about} → v{r}{_label(order[r])}")
                continue
            if i in relu_done:
                continue
            if not node._parents:
                k = _where_input(node.data, inputs)
                if node.requires_grad:
                    if k is not None:
                        raise TraceError(
                            f"trace: input {k} is the .data of a leaf that requires a gradient "
                            "(a parameter's data passed as an input, or a parameter made from "
                            "the input inside the function): a replay fills the .grad of the "
                            "leaves the trace saw, so make parameters outside the function "
                            "and pass it other arrays")
                    lines.append(f"v{i} = p{len(self.params)}.data  # parameter {about}")
                    self.params.append(node)
                elif k is not None:
                    lines.append(f"v{i} = inputs[{k}]  # input {about}")
                    found.add(k)
                else:       # (its .data read on each replay, as a parameter's: the graph would)
                    ns[f"c{i}"] = node
                    lines.append(f"v{i} = c{i}.data  # constant {about}")
                    constants.append(node)
                continue
            op = node._op
            ns[f"f{i}"] = op.forward if op.saving is None else op.saving
            args = ", ".join(f"v{slot[id(p)]}" for p in node._parents)
            static, fed = {}, []
            for name, value in (node._ctx or {}).items():
                if name.startswith("_"):        # made by op.saving, again on each replay
                    if op.saving is None:
                        raise TraceError(f"trace: op {op.name!r} keeps {name!r} from its "
                                         "forward computation but has no saving function to "
                                         "make it again")
                    continue
                spec = _feed(value, inputs)
                if spec is None:
                    static[name] = value
                    continue
                fed.append((name, spec))
                ks = [k for k in (spec if isinstance(spec, tuple) else (spec,)) if type(k) is int]
                found.update(ks)
                for k in ks:
                    if name == "index" and inputs[k].dtype == np.bool_:
                        raise TraceError(
                            f"trace: input {k} is a boolean mask used as an index ({op.name}): "
                            "how many entries it picks is in its numbers, not its shape, so a "
                            "plan made for one count cannot replay another. Index with the "
                            "positions (np.flatnonzero), or weight by the mask")
            ctx = ""
            if static or fed or op.saving is not None:
                ns[f"s{i}"] = static
                parts = [f"**s{i}"] + [f"{name!r}: {_source(spec, i, name, ns)}"
                                       for name, spec in fed]
                lines.append(f"x{i} = {{{', '.join(parts)}}}")
                ctx = f", **x{i}"
            if self.fused_cost is not None and i == self.fused_cost[0]:
                z = self.fused_cost[1]
                ns[f"f{z}"] = ADD.forward
                x, b = self.bias_adds[z]
                lines.append(f"v{z}, v{i}, pg{z}, ps{z} = bias_cost(m, f{z}, f{i}, v{x}, v{b}, "
                             f"seed, x{i})  # add, {_name(op)} and its VJP in one call "
                             f"{_shape(order[z])}{_label(order[z])} → {about}")
            elif op.saving is None:
                lines.append(f"v{i} = asarray(f{i}(m, {args}{ctx}))  # {_name(op)} {about}")
            else:
                lines.append(f"v{i}, saved = f{i}(m, {args}{ctx})  # {_name(op)} {about}")
                lines.append(f"v{i} = asarray(v{i})")
                lines.append(f"x{i} = {{**x{i}, **saved}}")
            self._ctx_arg[i] = ctx
        missing = [k for k in range(len(inputs)) if k not in found]
        if missing:
            k = missing[0]
            raise TraceError(
                f"trace: input {k} ({inputs[k].dtype} {inputs[k].shape}) is not in the graph "
                "as itself, so a replay could not feed it: it was converted (e.g. to another "
                "dtype) or copied by numpy before a Tensor took it, or not used at all. Pass "
                "it as the graph uses it")
        self.forward_lines = lines
        self.dense_chain = _dense_chain(order, outputs, inputs, self.params, fused_relu,
                                        self.fused_cost, slot)
        self.outputs = tuple(slot[id(n)] for n in outputs)
        self.root = self.outputs[0]
        # (made once: VJPs never write into the gradient they are given, and a leaf's .grad
        # is its own copy of it, by `_owned`)
        ns["seed"] = np.ones_like(outputs[0].data)
        # the backward pass: (node slot, its parents' slots, [(vjp name, parent slot, like)])
        self.steps = []
        for node, edges in steps:
            i = slot[id(node)]
            ps = tuple(slot[id(p)] for p in node._parents)
            named = []
            for k, parent in edges:
                ns[f"d{i}_{k}"] = node._op.vjps[k]
                ns[f"l{i}_{k}"] = _like(parent)
                if k in node._op.summing:
                    ns[f"e{i}_{k}"] = node._op.summing[k]
                named.append((k, slot[id(parent)], _name(node._op)))
            self.steps.append((i, ps, named))
        self.param_slots = [slot[id(p)] for p in self.params]
        # the leaves read on each replay, as the trace saw them: the VJPs and unbroadcasts
        # learned there hold for those shapes and dtypes only
        self.leaves = [(n, n.data.shape, n.data.dtype) for n in self.params + constants]
        self.constant_slots = {slot[id(n)] for n in constants}
        self.refits = None            # per edge: does unbroadcast change it (the first run's)
        self._generate()

    def _generate(self):
        """The replay function's source (``code``), compiled. Until a first run has shown which
        edges unbroadcast changes (shapes are fixed per plan), every edge is fitted and
        recorded."""
        learning = self.refits is None
        summed = set() if learning else self._summed_biases()
        lines = list(self.forward_lines)
        root = self.root
        lines.append("# the chain rule, edge by edge, in the backward pass's order")
        lines.append(f"g{root} = seed  # ∂root/∂root = 1")
        reached = {root}
        edge = 0
        for i, ps, named in self.steps:
            args = ", ".join(f"v{p}" for p in ps)
            for k, p, name in named:
                call = f"d{i}_{k}(m, g{i}, v{i}, {args}{self._ctx_arg.get(i, '')})"
                if self.fused_cost is not None and i == self.fused_cost[0]:
                    call = f"pg{p}"     # (made in the forward pass, with its column sums)
                    if p in summed:
                        lines.append(f"g{p}, s{p} = pg{p}, ps{p}  # ∂/∂v{p}: {name} input "
                                     f"{k}, and its column sums (made with the cost)")
                        reached.add(p)
                        edge += 1
                        continue
                if learning:
                    call = f"fit(m, {call}, l{i}_{k}, {edge})"
                elif self.refits[edge]:
                    call = f"fit(m, {call}, l{i}_{k})"
                edge += 1
                if p in summed:         # (the only edge into the bias add p)
                    lines.append(f"g{p}, s{p} = e{i}_{k}(m, g{i}, v{i}, {args}"
                                 f"{self._ctx_arg.get(i, '')})  # ∂/∂v{p}: {name} input {k}, "
                                 f"and its column sums")
                    reached.add(p)
                    continue
                if i in summed and k == 1:
                    call = f"(s{i} if s{i} is not None else {call})"
                    note = " (the column sums made above)"
                else:
                    note = ""
                total = f"g{p} + {call}" if p in reached else call
                lines.append(f"g{p} = {total}  # ∂/∂v{p}: {name} input {k}{note}")
                reached.add(p)
            lines.append(f"del g{i}")
        for j, i in enumerate(self.param_slots):
            if i not in reached:
                continue
            lines += [f"previous = p{j}._grad",
                      f"p{j}._grad = own(g{i}, unshared) if previous is None else "
                      f"own(previous + g{i}, unshared)",
                      f"p{j}._pass = None  # no root node: no pass's 'current' gradient",
                      f"del g{i}"]
        # a constant handed out as an output is copied: the graph makes it anew on each call,
        # and a caller writing into it would otherwise change the plan's constant
        outputs = ", ".join(f"v{i}.copy()" if i in self.constant_slots else f"v{i}"
                            for i in self.outputs)
        if self.params:
            names = ", ".join(f"p{j}" for j in range(len(self.params)))
            lines.insert(0, f"{names}{',' if len(self.params) == 1 else ''} = params")
        self.code = "def replay(inputs, params):\n" + "".join(
            f"    {line}\n" for line in lines) + f"    return {outputs}\n"
        namespace = dict(self.namespace)
        if learning:
            self._seen = []
            namespace["fit"] = self._fit_and_record
        exec(compile(self.code, "<autograd.trace replay>", "exec"), namespace)
        self._replay = namespace["replay"]

    def _summed_biases(self):
        """The bias adds whose gradient comes from one edge, of an op with a summing VJP for
        it (Op.summing), and whose bias's gradient is their gradient's column sums (as the
        first run showed: that edge's and x's gradients need no unbroadcast, b's does)."""
        into, edges, edge = {}, {}, 0
        for i, _, named in self.steps:
            for k, p, _ in named:
                into.setdefault(p, []).append((i, k))
                edges[i, k] = edge
                edge += 1
        summed = set()
        for a in self._summable:
            feeders = into.get(a, [])
            if (len(feeders) != 1 or f"e{feeders[0][0]}_{feeders[0][1]}" not in self.namespace
                    or self.refits[edges[feeders[0]]]):
                continue
            if (a, 1) in edges and self.refits[edges[a, 1]] and not (
                    (a, 0) in edges and self.refits[edges[a, 0]]):
                summed.add(a)
        return summed

    def _fit_and_record(self, m, made, like, edge):
        fitted = Tensor._fit_grad(m, made, like)
        self._seen.append(fitted is not made)
        return fitted

    def ready(self):
        """False while a parameter holds a gradient that is a node (an earlier create_graph
        pass): the graph's sum keeps its graph, a replay would not."""
        for p in self.params:
            if isinstance(p._grad, Tensor):
                return False
        return True

    def current(self):
        """False once a parameter's or constant's data has another shape or dtype than the
        trace saw (a new array assigned to .data): the plan is traced anew."""
        for leaf, shape, dtype in self.leaves:
            data = leaf.data
            if data.shape != shape or data.dtype != dtype:
                return False
        return True

    def run(self, inputs):
        out = self._replay(inputs, self.params)
        if self.refits is None:
            self.refits = self._seen
            self._generate()
        return out

    def compare(self, inputs, expected, before):
        """Replay on ``inputs`` from the leaf gradients ``before`` and raise `TraceError` unless
        every output and leaf gradient equals the graph's (``expected``, and the gradients the
        leaves hold now), which are then put back. A first run learns the unbroadcasts and
        generates the code later calls run, which is then checked too."""
        learning = self.refits is None
        self._compare_once(inputs, expected, before)
        if learning:
            self._compare_once(inputs, expected, before)

    def _compare_once(self, inputs, expected, before):
        after = [p._grad for p in self.params]
        for p in self.params:
            p._grad = before.get(p)
        try:
            got = self.run(inputs)
            got_grads = [p._grad for p in self.params]
        finally:
            for p, g in zip(self.params, after):
                p._grad = g
        got = got if isinstance(got, tuple) else (got,)
        expected = expected if isinstance(expected, tuple) else (expected,)
        for k, (a, b) in enumerate(zip(got, expected)):
            _same(a, b, f"output {k}")
        for p, a, b in zip(self.params, got_grads, after):
            _same(a, b, f"gradient of {p.label or 'a parameter'} {p.data.shape}")


def _is_bias_add(node):
    """x + b for a float matrix x and a bias b of its dtype along its rows (shape (k,))."""
    if node._op is not ADD:
        return False
    x, b = node._parents
    xd, bd = x.data, b.data
    return (x is not b and type(xd) is _ndarray and type(bd) is _ndarray and xd.ndim == 2
            and bd.shape == xd.shape[1:] and xd.dtype == bd.dtype and xd.dtype.kind == "f"
            and node.data.shape == xd.shape)


def _bias_relu(m, add, relu, x, b):
    """(x + b, relu(x + b)): one compiled pass when `kernels.bias_relu` applies, else the two
    ops' own forwards."""
    made = kernels.bias_relu(x, b)
    if made is None:
        z = np.asarray(add(m, x, b))
        return z, np.asarray(relu(m, z))
    return made


def _fused_cost(order, root, slot, bias_adds):
    """(the root's slot, its bias add's slot) when the root is softmax cross-entropy with
    class labels of a bias add whose only reader it is, else None."""
    if root._op is not SOFTMAX_CROSS_ENTROPY or not (root._ctx or {}).get("labels"):
        return None
    z = slot[id(root._parents[0])]
    if z not in bias_adds:
        return None
    add = order[z]
    readers = sum(1 for node in order for parent in node._parents if parent is add)
    return (slot[id(root)], z) if readers == 1 else None


def _dense_chain(order, outputs, inputs, params, fused_relu, fused_cost, slot):
    """The layers ((W's, b's index in params), first to last) when the traced function is a
    chain of dense layers and nothing else: (cost, h) for inputs (x, labels), with
    h = a·W + b for the last layer, a = relu(a'·W' + b') below it down to a = x, and the cost
    softmax cross-entropy of h with the labels, every W and b a parameter used once. None for
    anything else. (nn.fused runs such a step in one compiled call.)"""
    if fused_cost is None or len(inputs) != 2 or len(outputs) != 2:
        return None
    root, z = order[fused_cost[0]], order[fused_cost[1]]
    if outputs[1] is not z or (root._ctx or {}).get("target") is not inputs[1]:
        return None
    index = {id(p): k for k, p in enumerate(params)}
    layers, add = [], z
    while True:
        product, b = add._parents
        if product._op is not MATMUL or id(b) not in index:
            return None
        below, W = product._parents
        if id(W) not in index or W.data.ndim != 2:
            return None
        layers.append((index[id(W)], index[id(b)]))
        if not below._parents:
            if below.data is not inputs[0] or below.requires_grad:
                return None
            break
        if below._op is not RELU:
            return None
        add = below._parents[0]
        if fused_relu.get(slot[id(add)]) != slot[id(below)]:
            return None
    # x, then per layer W, b, the product and the add, a relu below all but the last, the cost:
    # nothing else in the graph (and no parameter used twice)
    if len(order) != 5 * len(layers) + 1 or len(params) != 2 * len(layers):
        return None
    return tuple(reversed(layers))


def _bias_cross_entropy(m, add, cost, x, b, seed, ctx):
    """(z = x + b, J = softmax cross-entropy of z, ∂J/∂z · seed, its column sums or None):
    `kernels.bias_cross_entropy` when it applies, else the ops' own forwards and the cost's
    VJP (which raises for a label out of range, as the graph does)."""
    made = kernels.bias_cross_entropy(x, b, ctx["target"], seed)
    if made is not None and made[0] is not None:
        return made
    z = np.asarray(add(m, x, b))
    J, saved = cost(m, z, **ctx)
    J = np.asarray(J)
    ctx = {**ctx, **saved}
    summing = SOFTMAX_CROSS_ENTROPY.summing.get(0)
    if summing is not None:
        p, sums = summing(m, seed, J, z, **ctx)
    else:
        p, sums = SOFTMAX_CROSS_ENTROPY.vjps[0](m, seed, J, z, **ctx), None
    return z, J, p, sums


def _source(spec, i, name, namespace):
    """The expression a replay feeds ctx ``name`` of op slot i from: an input, or a tuple of
    inputs and constants (an index)."""
    if type(spec) is int:
        return f"inputs[{spec}]"
    items = []
    for j, k in enumerate(spec):
        if type(k) is int:
            items.append(f"inputs[{k}]")
        else:
            namespace[f"k{i}_{name}_{j}"] = k[1]
            items.append(f"k{i}_{name}_{j}")
    return "(" + ", ".join(items) + ",)"


def _name(op):
    """An op's name for a comment of the generated source (a name of any text is quoted, so
    it cannot end the comment)."""
    return op.name if op.name.isidentifier() else repr(op.name)


def _shape(node):
    return f"{node.data.dtype} {node.data.shape}"


def _label(node):
    return "" if not node.label else f" {str(node.label)!r}"


def _probe(g):
    return sys.getrefcount(g)


def _unshared_here():
    # References an unshared gradient has when `_owned` looks from a replay: the replay's
    # local variable and `_owned`'s own argument (measured, as tensor._unshared_refcount is)
    g = np.zeros(1)
    return _probe(g)


_UNSHARED = _unshared_here()


def _same(a, b, what):
    if a is None or b is None:
        if a is b:
            return
    elif np.shape(a) == np.shape(b) and np.asarray(a).dtype == np.asarray(b).dtype and \
            np.array_equal(a, b, equal_nan=True):
        return
    raise TraceError(f"trace: the replay's {what} differs from the graph's: an op computes "
                     "something outside its Op.forward, or the function depends on the "
                     "inputs' numbers outside Tensor ops")


def _like(node):
    """What the engine's unbroadcast reads of a parent (its data's shape and dtype), without
    keeping the parent's array: a read-only zero-stride view of one element."""
    return _Like(np.broadcast_to(np.zeros((), node.data.dtype), node.data.shape))


class _Like:
    __slots__ = ("data",)

    def __init__(self, data):
        self.data = data
