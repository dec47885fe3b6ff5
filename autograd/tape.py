"""Where `Value` graphs live: a tape (a Wengert list) of flat Python lists, one entry per node.

A scalar graph is mostly tiny nodes that die young: in ``sum(w*x for …)`` every product is a
temporary. If each node were an object pointing at its parents, the whole graph would stay alive
until backward and Python's garbage collector would walk it again and again (micrograd spends
most of its forward pass there). So a `Value` is a small handle — its float, its tape and its
index there — and the graph itself is recorded as numbers:

    entry i:  data[i]      the value of node i
              code[i]      what made it: CONSTANT, LEAF, FOREIGN (a node of an older tape) or an op
              pa[i], pb[i] the entries of its inputs (−1 when absent)

Lists of floats and ints are not tracked by the collector, handles are freed by reference
counting as soon as the program drops them, and creation order is already a topological order.
A tape holds its leaves (the parameters) and the older tapes it reads from; nothing points back
at a tape except handles, so there are no reference cycles. A new tape starts after every
backward pass from the current one and whenever the current one reaches `TAPE_LIMIT` entries, so
a tape is freed as soon as no handle on it is left.

The backward pass sweeps a tape from the root down, in reverse creation order: every consumer
of an entry comes after it, so an entry's gradient is complete when the sweep reaches it — the
same guarantee Kahn's order gives the object graph of `Tensor`. The local derivatives ∂y/∂x
come from the same rules (`autograd.rules`), evaluated once for all entries of an op with
numpy; the plain pass (`sweep`) is then one back substitution in compiled code. On a tape too
short for that to pay, `sweep_floats` calls each rule's float form per edge, and the general
pass (`sweep_general`: create_graph, explain, anomaly mode) does so with its bookkeeping.
"""
from __future__ import annotations

import itertools

import numpy as np

from . import kernels
from .backends import ArrayMath, FloatMath

CONSTANT, LEAF, FOREIGN = 0, 1, 2
FIRST_OP = 3

#: code → Op, for codes ≥ FIRST_OP (filled by `code_of`).
OPS = [None, None, None]
_CODES = {}

TAPE_LIMIT = 1 << 18          # entries; bounds what a tape of dropped temporaries holds on to

_serials = itertools.count(1)


def code_of(op):
    """The small integer that stands for ``op`` on a tape."""
    code = _CODES.get(op)
    if code is None:
        code = _CODES[op] = len(OPS)
        if code > 255:
            raise RuntimeError("too many ops for a tape's byte-sized codes")
        OPS.append(op)
    return code


class Tape:
    """One segment of recorded scalar graph (see the module docstring).

    ``objects`` maps an entry to the leaf or constant `Value` object it stands for, ``foreign``
    an entry to (older tape, entry) for a node recorded earlier, ``ctx`` and ``labels`` hold the
    few entries that have them. ``grads`` is filled by backward passes (`Value.grad` reads it).
    """

    __slots__ = ("serial", "data", "code", "pa", "pb", "objects", "foreign", "ctx", "labels",
                 "grads", "tokens", "first_token", "__weakref__")

    def __init__(self):
        self.serial = next(_serials)
        self.data = []
        self.code = bytearray()
        self.pa = []
        self.pb = []
        self.objects = {}
        self.foreign = {}
        self.ctx = {}
        self.labels = {}
        self.grads = None           # list: entry → ∂root/∂entry from the latest pass reaching it
        self.tokens = None          # list: entry → that pass's token (made on a second pass)
        self.first_token = None

    def __len__(self):
        return len(self.data)

    def __repr__(self):
        return f"<Tape #{self.serial}: {len(self.data)} entries>"

    # -- reading back what a backward pass stored ----------------------------------------------
    def grad_at(self, i):
        grads = self.grads
        if grads is None or i >= len(grads):
            return None
        return grads[i]

    def set_grad(self, i, g):
        self._grow_grads()
        self.grads[i] = g
        if g is None and self.tokens is not None:
            self.tokens[i] = None

    def token_at(self, i):
        if self.tokens is not None:
            return self.tokens[i] if i < len(self.tokens) else None
        return self.first_token if self.grad_at(i) is not None else None

    def _grow_grads(self):
        n = len(self.data)
        if self.grads is None:
            self.grads = [None] * n
        elif len(self.grads) < n:
            self.grads.extend([None] * (n - len(self.grads)))
        if self.tokens is not None and len(self.tokens) < n:
            self.tokens.extend([None] * (n - len(self.tokens)))

    def _store(self, g, token):
        """Keep a pass's gradients: entries it reached get them (and its token); the rest keep
        what an earlier pass gave them."""
        if self.grads is None:
            g.extend([None] * (len(self.data) - len(g)))
            self.grads, self.first_token = g, token
            return
        self._grow_grads()
        if self.tokens is None:
            first = self.first_token
            self.tokens = [None if v is None else first for v in self.grads]
        grads, tokens = self.grads, self.tokens
        for i, v in enumerate(g):
            if v is not None:
                grads[i] = v
                tokens[i] = token


def _arrays(tape, n):
    """code, data, pa, pb of entries 0..n−1 as numpy arrays."""
    return (np.frombuffer(bytes(tape.code[:n]), dtype=np.uint8),
            np.fromiter(tape.data, dtype=np.float64, count=n),
            np.fromiter(tape.pa, dtype=np.intp, count=n),
            np.fromiter(tape.pb, dtype=np.intp, count=n))


def local_derivatives(tape, code, data, pa, pb):
    """(∂y/∂a, ∂y/∂b) per entry: each op's VJPs evaluated at g = 1 over all of its entries at
    once (a VJP is linear in g, so g times these is the chain rule's "upstream × local")."""
    n = len(code)
    da = np.zeros(n)
    db = np.zeros(n)
    counts = np.bincount(code, minlength=FIRST_OP)
    with_ctx = {tape.code[i] for i in tape.ctx if i < n}
    with np.errstate(all="ignore"):
        for k in np.flatnonzero(counts[FIRST_OP:]) + FIRST_OP:
            op = OPS[k]
            idx = np.flatnonzero(code == k)
            if k in with_ctx:
                _local_with_ctx(tape, op, idx, da, db)
                continue
            xs = (data[pa[idx]],) if len(op.vjps) == 1 else (data[pa[idx]], data[pb[idx]])
            y = data[idx]
            da[idx] = op.vjps[0](ArrayMath, 1.0, y, *xs)
            if len(op.vjps) == 2:
                db[idx] = op.vjps[1](ArrayMath, 1.0, y, *xs)
    return da, db


def _local_with_ctx(tape, op, idx, da, db):
    """Ops with per-entry arguments (leaky_relu's slope): one entry at a time, on floats."""
    data, pa, pb = tape.data, tape.pa, tape.pb
    for i in idx.tolist():
        xs = (data[pa[i]],) if len(op.vjps) == 1 else (data[pa[i]], data[pb[i]])
        ctx = tape.ctx.get(i) or {}
        da[i] = op.vjps[0](FloatMath, 1.0, data[i], *xs, **ctx)
        if len(op.vjps) == 2:
            db[i] = op.vjps[1](FloatMath, 1.0, data[i], *xs, **ctx)


SMALL_SWEEP = 150       # entries: below this the per-edge sweep beats setting up the compiled one
# Entries swept in Python, over all passes, before numba is imported for the compiled sweep:
# ~0.25 s of sweeping (~1 µs an entry; compiled, ~0.1 µs), against an import and cache load of
# ~0.5 s. A script's few passes never pay for the import; a training loop does within its first
# steps.
SWEEP_IMPORT = 250_000
_swept_in_python = 0


def sweep(tape, seeds):
    """∂root/∂entry for entries 0..max(seeds) of one tape, as a list (None: not reached).

    The plain pass, all at once. With g the gradients and J the local derivatives
    (J[c, p] = ∂entry_c/∂entry_p, nonzero only for inputs p < c), the reverse sweep

        g_p = seed_p + Σ_c J[c, p] · g_c        i.e.  (I − Jᵀ) g = seed

    is a unit upper-triangular system, solved by back substitution in compiled code
    (`autograd.kernels.back_substitute`): children before parents, each gradient complete
    before it is passed on, in the order the edge-by-edge `sweep_general` takes.

    Returns None — the caller then sweeps edge by edge — for a tape shorter than `SMALL_SWEEP`
    (setting up the arrays costs more than the Python sweep), until `SWEEP_IMPORT` entries have
    been swept in Python (numba's import would cost more than it saves), without numba, or when
    a local derivative, a seed or a gradient is not finite (the rules' array forms, evaluated at
    g = 1 over all entries at once, are not held to the float forms' IEEE-754 special cases:
    such a pass is left to the rules themselves).
    """
    global _swept_in_python
    if len(tape.data) < SMALL_SWEEP:
        return None             # (n ≤ the tape's length)
    n = max(seeds) + 1
    if n < SMALL_SWEEP:
        return None
    if not kernels.in_use():
        _swept_in_python += n
        if _swept_in_python < SWEEP_IMPORT or not kernels.compiled(kernels.LARGE):
            return None         # (compiled(LARGE) imports numba, once; False without it)
    code, data, pa, pb = _arrays(tape, n)
    da, db = local_derivatives(tape, code, data, pa, pb)
    g = np.zeros(n)
    reached = np.zeros(n, dtype=np.uint8)
    for i, s in seeds.items():
        g[i] = s
        reached[i] = 1
    if not (np.isfinite(da).all() and np.isfinite(db).all()):
        # an edge into a constant carries nothing (x ** 2 at x < 0 has ∂/∂2 = nan, unused)
        ops, constant = code >= FIRST_OP, code == CONSTANT
        da[ops & constant[pa]] = 0.0
        db[ops & constant[pb]] = 0.0
    if not (np.isfinite(da).all() and np.isfinite(db).all() and np.isfinite(g).all()):
        return None
    if not kernels.back_substitute(code, pa, pb, da, db, g, reached, FIRST_OP, CONSTANT):
        return None
    if not np.isfinite(g).all():
        return None
    out = g.tolist()
    for i in np.flatnonzero(reached == 0).tolist():     # unreached, and constants: no gradient
        out[i] = None
    return out


def sweep_floats(tape, seeds):
    """`sweep_general`'s pass on floats alone (no create_graph, no observer, no anomaly
    checks), for a tape too short for the compiled `sweep`: the same VJP calls in the same
    order, so the same numbers, without the general pass's per-edge bookkeeping (a tiny
    graph's backward is mostly that)."""
    n = max(seeds) + 1
    g = [None] * n
    for i, s in seeds.items():
        g[i] = s
    code, data, pa, pb, ctxs = tape.code, tape.data, tape.pa, tape.pb, tape.ctx
    m = FloatMath
    for i in range(n - 1, -1, -1):
        gi = g[i]
        if gi is None:
            continue
        c = code[i]
        if c < FIRST_OP:
            continue
        vjps = OPS[c].vjps
        ctx = ctxs.get(i) if ctxs else None
        a, b = pa[i], pb[i]
        if b < 0:
            if code[a] != CONSTANT:
                d = (vjps[0](m, gi, data[i], data[a]) if ctx is None
                     else vjps[0](m, gi, data[i], data[a], **ctx))
                previous = g[a]
                g[a] = d if previous is None else previous + d
            continue
        y, xa, xb = data[i], data[a], data[b]
        if code[a] != CONSTANT:
            d = vjps[0](m, gi, y, xa, xb) if ctx is None else vjps[0](m, gi, y, xa, xb, **ctx)
            previous = g[a]
            g[a] = d if previous is None else previous + d
        if code[b] != CONSTANT:
            d = vjps[1](m, gi, y, xa, xb) if ctx is None else vjps[1](m, gi, y, xa, xb, **ctx)
            previous = g[b]
            g[b] = d if previous is None else previous + d
    return g


def sweep_general(tape, seeds, node_at, m, create_graph, observe, anomaly, check_backward):
    """The same sweep calling each rule's VJP per edge: on nodes for ``create_graph`` (the
    gradients get graphs of their own), and narrating to ``observe`` or checking for
    non-finite values (``anomaly``) as it goes."""
    n = max(seeds) + 1
    g = [None] * n
    for i, s in seeds.items():
        g[i] = s
    code, data, pa, pb, ctxs = tape.code, tape.data, tape.pa, tape.pb, tape.ctx
    for i in range(n - 1, -1, -1):
        gi = g[i]
        if gi is None or code[i] < FIRST_OP:
            continue
        op = OPS[code[i]]
        inputs = (pa[i],) if pb[i] < 0 else (pa[i], pb[i])
        node = node_at(tape, i) if (observe is not None or create_graph or anomaly) else None
        parents = tuple(node_at(tape, j) for j in inputs) if node is not None else None
        if observe is not None:
            observe(("node", node, gi))
        if create_graph:
            y, xs = node, parents
        else:
            y, xs = data[i], [data[j] for j in inputs]
        ctx = ctxs.get(i) or {}
        for slot, j in enumerate(inputs):
            if code[j] == CONSTANT:          # constants need no gradient
                continue
            try:
                contribution = op.vjps[slot](m, gi, y, *xs, **ctx)
            except FloatingPointError as error:         # anomaly mode, create_graph=True
                from .core import backward_anomaly
                raise backward_anomaly(error, op.name, parents, parents[slot], gi, node) from None
            if anomaly:
                check_backward(contribution, op.name, parents, parents[slot], gi, node)
                if code[j] == LEAF and g[j] is not None:    # a leaf's sum is never passed on
                    from .core import check_leaf_sum
                    check_leaf_sum(g[j], contribution, parents[slot])
            previous = g[j]
            # The general pass's one place where contributions to a node used twice are summed.
            g[j] = contribution if previous is None else previous + contribution
            if observe is not None:
                observe(("edge", node, slot, parents[slot], gi, contribution, g[j]))
    return g

