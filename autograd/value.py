"""`Value`: one Python float on the graph core — the chain rule one number at a time.

    >>> a = Value(3.0, label="a")
    >>> b = a * a + a            # db/da = 2a + 1
    >>> b.backward()
    >>> a.grad
    7.0

A Value you make (a leaf) is an ordinary object. A Value an op makes is a handle on an entry of
a tape (`autograd.tape`): its float, the tape and the entry. Parents, op, label and gradient are
read from the tape, so every handle on the same entry is the same graph vertex: handles compare
equal and hash alike (``==`` on Values means "same vertex", as `is` does for leaves).
"""
from __future__ import annotations

import numbers
import operator

from . import rules
from . import tape as tp
from .backends import FloatMath, NodeMath
from .core import (MODE, Node, _PassToken, check_backward, check_finite, check_leaf_sum,
                   escaped)

_new = object.__new__

# The current tape and its lists' append methods, as module globals so that the hot paths
# below read them without attribute lookups. `_new_tape` rebinds them all.
# (``_data.append(x)`` on a global list is a specialised bytecode in CPython 3.11, faster than a
# stored bound method, so the lists themselves are the globals.)
_tape = _serial = _data = _code = _pas = _pbs = _limit = None


def _new_tape():
    global _tape, _serial, _data, _code, _pas, _pbs, _limit
    t = tp.Tape()
    _tape, _serial, _data, _limit = t, t.serial, t.data, tp.TAPE_LIMIT
    _code, _pas, _pbs = t.code.append, t.pa, t.pb


_new_tape()


def current_tape():
    """The tape new Value ops are recorded on."""
    return _tape


def _enter(v):
    """v's entry on the current tape, made now. A leaf or a lifted constant remembers it (one
    entry per tape however often it is used); a node of an older tape becomes a FOREIGN entry
    that the backward pass follows back to it."""
    i = len(_data)
    _data.append(v.data)
    _pas.append(-1)
    _pbs.append(-1)
    home = v._tape
    if home is None:
        v._home = _serial
        v._i = i
        _code(tp.LEAF if v.requires_grad else tp.CONSTANT)
        # The object itself stands for the entry: it gets its gradient, keeps its label and
        # stays the vertex `draw` or `gradients` is asked about. (Numbers in expressions
        # never become objects: their CONSTANT entries are written directly.)
        _tape.objects[i] = v
    elif v.requires_grad:
        _code(tp.FOREIGN)
        _tape.foreign[i] = (home, v._i)
    else:
        _code(tp.CONSTANT)
    return i


def _handle(tape, i, data, requires_grad):
    v = _new(Value)
    v.data = data
    v._tape = tape
    v._i = i
    v._home = tape.serial
    v.requires_grad = requires_grad
    return v


def node_at(tape, i):
    """The Value for entry ``i`` of ``tape``: the leaf or constant object itself, the node a
    FOREIGN entry stands for, else a handle."""
    obj = tape.objects.get(i)
    if obj is not None:
        return obj
    code = tape.code[i]
    if code == tp.FOREIGN:
        older, j = tape.foreign[i]
        return node_at(older, j)
    return _handle(tape, i, tape.data[i], code != tp.CONSTANT)


def _constant(data):
    """A leaf that needs no gradient (a number written in an expression)."""
    v = _new(Value)
    v.data = data
    v.requires_grad = False
    v._tape = None
    v._i = -1
    v._home = 0
    v._leaf_grad = v._leaf_label = v._leaf_pass = None
    return v


def _as_value(x):
    """Lift a plain number to a constant leaf; anything else is a TypeError naming its type."""
    kind = type(x)
    if kind is Value:
        return x
    if kind is float:
        return _constant(x)
    if kind is int or (isinstance(x, numbers.Real) and not isinstance(x, bool)):
        return _constant(float(x))
    if isinstance(x, Node):             # a Tensor: the other engine
        from .tensor import _MIXED_ENGINES
        raise TypeError(_MIXED_ENGINES)
    if getattr(x, "ndim", 0):           # an array: the Tensor engine's
        raise TypeError(f"unsupported operand type for Value: {kind.__name__} of shape "
                        f"{x.shape}; a Value is one number, arrays belong in a Tensor. grad, "
                        f"jacobian and hessian trace a Python float argument as a Value and an "
                        f"array as a Tensor: pass np.array(2.0) to get a 0-d Tensor")
    raise TypeError(f"unsupported operand type for Value: {kind.__name__} ({x!r})")


def _result(op, data, parents, ctx=None):
    """The result of ``op`` outside the hot paths: with grad recording off (a constant), in
    anomaly mode (checked first), or with non-differentiable arguments ``ctx``."""
    if MODE._anomaly:           # constants too, as a Tensor's (the field: every constant op)
        check_finite(data, op.name, parents)
    if not (MODE.grad_enabled and any(p.requires_grad for p in parents)):
        return _constant(data)
    s = _serial
    inputs = [p._i if p._home == s else _enter(p) for p in parents]
    i = len(_data)
    _data.append(data)
    _code(tp.code_of(op))
    _pas.append(inputs[0])
    _pbs.append(inputs[1] if len(inputs) > 1 else -1)
    if ctx:
        _tape.ctx[i] = ctx
    out = _handle(_tape, i, data, True)
    if i >= _limit:
        _new_tape()
    return out


# Forward functions on floats: Python's own operators where the rule is one, else the rule.
_FLOAT_FORWARD = {rules.ADD: operator.add, rules.SUB: operator.sub, rules.MUL: operator.mul}


def _number(x):
    """A plain number operand as a float; anything else is a TypeError naming its type."""
    kind = type(x)
    if kind is float:
        return x
    return _as_value(x).data


def _binary(op, reflected=False):
    """``a op b`` for Values. Three hot paths record the entry inline — Value with Value,
    Value with a number, a number with a Value (reflected) — so the number never becomes an
    object: its CONSTANT entry is written straight to the tape."""
    forward = _FLOAT_FORWARD.get(op)
    if forward is None:
        def forward(a, b, _rule=op.forward):
            return _rule(FloatMath, a, b)
    code = tp.code_of(op)
    mode = MODE

    def method(self, other):
        if type(other) is Value and not reflected:
            data = forward(self.data, other.data)
            if not (mode.live and (self.requires_grad or other.requires_grad)):
                return _result(op, data, (self, other))
            s = _serial
            ia = self._i if self._home == s else _enter(self)
            ib = other._i if other._home == s else _enter(other)
        else:
            number = _number(other)
            data = forward(number, self.data) if reflected else forward(self.data, number)
            if not (mode.live and self.requires_grad):
                return _result(op, data, (_constant(number), self) if reflected
                               else (self, _constant(number)))
            s = _serial
            mine = self._i if self._home == s else _enter(self)
            constant = len(_data)
            _data.append(number)
            _code(tp.CONSTANT)
            _pas.append(-1)
            _pbs.append(-1)
            ia, ib = (constant, mine) if reflected else (mine, constant)
        i = len(_data)
        _data.append(data)
        _code(code)
        _pas.append(ia)
        _pbs.append(ib)
        out = _new(Value)
        out.data = data
        out._tape = _tape
        out._i = i
        out._home = s
        out.requires_grad = True
        if i >= _limit:
            _new_tape()
        return out
    method.__name__ = op.name
    return method


def _unary(op):
    rule = op.forward
    code = tp.code_of(op)
    mode = MODE

    def method(self):
        data = rule(FloatMath, self.data)
        if mode.live and self.requires_grad:
            s = _serial
            ia = self._i if self._home == s else _enter(self)
            i = len(_data)
            _data.append(data)
            _code(code)
            _pas.append(ia)
            _pbs.append(-1)
            out = _new(Value)
            out.data = data
            out._tape = _tape
            out._i = i
            out._home = s
            out.requires_grad = True
            if i >= _limit:
                _new_tape()
            return out
        return _result(op, data, (self,))
    method.__name__ = op.name
    method.__doc__ = f"{op.name}(self); d/du = {op.formulas[0]}"
    return method


_MUL, _ADD = tp.code_of(rules.MUL), tp.code_of(rules.ADD)


def weighted_sum(weights, inputs, bias, label=None):
    """bias + w₁·x₁ + w₂·x₂ + … — a neuron's z = Σᵢ wᵢ aᵢ + b — recorded in one call, its
    result labelled ``label`` if given.

    The tape gets exactly the entries ``sum((w * x for w, x in zip(weights, inputs)), bias)``
    records, in the same order (each product, then the partial sum it joins), so the graph,
    its pictures, its explanations and its gradients are the same node for node. Only the
    Python per node is less: no handle is made for the temporaries. When a weight or the bias
    needs no gradient, an input is a plain number, or recording is off or checked (`no_grad`,
    `detect_anomaly`), it is that expression.
    """
    if type(weights) is not list:
        weights = list(weights)
    if type(inputs) is not list:
        inputs = list(inputs)
    if len(weights) != len(inputs):
        raise ValueError(f"weighted_sum: {len(weights)} weights for {len(inputs)} inputs")
    if not (MODE.live and type(bias) is Value and bias.requires_grad):
        return _labelled(sum(map(operator.mul, weights, inputs), bias), label, bias)
    s = _serial
    data, code, pas, pbs = _data, _code, _pas, _pbs
    acc = total = None
    for k, (w, x) in enumerate(zip(weights, inputs)):
        if not (type(w) is Value and w.requires_grad and type(x) is Value):
            # Off the fast path from this term on: the expression itself, from the sum so far.
            start = bias if acc is None else _handle(_tape, acc, total, True)
            rest = sum(map(operator.mul, weights[k:], inputs[k:]), start)
            return _labelled(rest, label, bias)
        iw = w._i if w._home == s else _enter(w)
        ix = x._i if x._home == s else _enter(x)
        product = w.data * x.data
        i = len(data)
        data.append(product)
        code(_MUL)
        pas.append(iw)
        pbs.append(ix)
        if acc is None:                    # bias + w₁x₁: the bias enters after the product
            acc = bias._i if bias._home == s else _enter(bias)
            total = bias.data
        total = total + product
        j = len(data)
        data.append(total)
        code(_ADD)
        pas.append(acc)
        pbs.append(i)
        acc = j
    if acc is None:
        return bias                 # no terms: the bias itself, whose label stays its own
    out = _handle(_tape, acc, total, True)
    if label is not None:
        _tape.labels[acc] = label
    if acc >= _limit:
        _new_tape()
    return out


def _labelled(node, label, bias=None):
    """``node`` labelled ``label`` — unless it is the caller's ``bias`` itself (no terms were
    added), whose label is the caller's, not this sum's."""
    if label is not None and node is not bias:
        node.label = label
    return node


def _backprop_values(root, seed, create_graph, store, keep, observe):
    """The chain rule below ``root`` on tapes: {node: ∂root/∂node} for the nodes in ``keep``.

    The root's tape is swept first; a FOREIGN entry it reaches seeds the older tape it points
    into, and tapes are swept newest first, so every entry is complete before it is passed on.
    A leaf's contributions from several tapes are summed; with ``store`` it accumulates them in
    ``.grad`` as in PyTorch, and every entry reached keeps its gradient on its tape.
    """
    token = _PassToken(root) if store else None
    anomaly = MODE.anomaly
    general = create_graph or observe is not None or anomaly
    m = NodeMath if create_graph else FloatMath
    found = {}                              # leaf → ∂root/∂leaf, summed over tapes
    start = root._tape
    if start is None:
        if root.requires_grad:
            found[root] = seed
        pending = {}
    else:
        pending = {start: {root._i: seed}}
    recording = MODE.grad_enabled       # (set and restored by hand, not by a context
    MODE.grad_enabled = create_graph    # manager: ~1 µs of a tiny graph's ~6)
    try:
        while pending:
            tape = max(pending, key=_serial_of)
            seeds = pending.pop(tape)
            code = tape.code
            for i, leaf in tape.objects.items():     # a leaf's value now, as on Tensor graphs,
                tape.data[i] = leaf.data             # and whether it needs a gradient now: its
                code[i] = tp.LEAF if leaf.requires_grad else tp.CONSTANT    # one entry per
                # tape was written at its first use, perhaps before requires_grad changed
            # All at once when it can; edge by edge when it must (create_graph, explain,
            # anomaly mode) or when something is not finite (IEEE-754 results).
            g = None if general else tp.sweep(tape, seeds)
            if g is None:
                g = (tp.sweep_floats(tape, seeds) if not general else
                     tp.sweep_general(tape, seeds, node_at, m, create_graph, observe, anomaly,
                                      check_backward))
            n = len(g)
            if anomaly:             # a leaf's sum over the tapes swept before and this one
                for i, obj in tape.objects.items():
                    if i < n and g[i] is not None and obj.requires_grad:
                        check_leaf_sum(found.get(obj), g[i], obj)
            for i, obj in tape.objects.items():
                if i < n and g[i] is not None and obj.requires_grad:
                    _add_to(found, obj, g[i])
            for i, (older, j) in tape.foreign.items():
                if i < n and g[i] is not None:
                    _add_to(pending.setdefault(older, {}), j, g[i])
            if keep:
                for node in keep:
                    if node._tape is tape and node._i < n and g[node._i] is not None:
                        found[node] = g[node._i]
            if store:
                tape._store(g, token)
    finally:
        MODE.grad_enabled = recording
    if store and anomaly:               # and onto the .grad an earlier pass left
        for leaf, total in found.items():
            if leaf._tape is None:
                check_leaf_sum(leaf._leaf_grad, total, leaf, accumulated=True)
    if store:
        # with create_graph, or onto an earlier create_graph pass's gradient, summing is
        # recorded, even inside no_grad (as the Tensor engine and PyTorch): the sum stays
        # differentiable (summing plain floats records nothing)
        MODE.grad_enabled = True
        try:
            for leaf, total in found.items():
                if leaf._tape is None:
                    previous = leaf._leaf_grad
                    leaf._leaf_grad = total if previous is None else previous + total
                    leaf._leaf_pass = token
        finally:
            MODE.grad_enabled = recording
    if start is _tape:                      # start afresh, so this graph can be freed
        _new_tape()
    return found if keep else {}


def _topo_order_values(root):
    """`topo_order` for a Value graph, walked on its tapes: the same depth-first order (parents
    in argument order) as the general walk over `Node._parents`, but vertices are marked in a
    byte per tape entry instead of hashed, and one handle is made per vertex, when it is
    listed (the general walk makes a handle for a parent each time it looks at it: the
    4,000,001 vertices of the 1,000,000-step chain x·1.0001 + 0 took ~5.8 s, now ~2.4)."""
    if root._tape is None:
        return [root]
    marks = {}                  # tape → bytearray: 1 for an entry whose vertex is seen
    seen_objects = set()        # ids of leaf and constant objects seen (one vertex per object)
    order = []
    append = order.append

    def resolve(t, i):
        # (tape, entry) of the vertex entry i of t stands for: a FOREIGN entry is the node of
        # an older tape it points to; an entry of a leaf object stands for the object
        while True:
            obj = t.objects.get(i)
            if obj is not None:
                return obj, None
            if t.code[i] != tp.FOREIGN:
                return t, i
            t, i = t.foreign[i]

    def seen(t, i):
        if i is None:
            return id(t) in seen_objects
        mark = marks.get(t)
        return mark is not None and mark[i]

    stack = [(root._tape, root._i, False)]
    push, pop = stack.append, stack.pop
    while stack:
        t, i, expanded = pop()
        if expanded:
            if i is None:
                append(t)
            else:
                append(_handle(t, i, t.data[i], t.code[i] != tp.CONSTANT))
            continue
        if i is None:
            if id(t) in seen_objects:
                continue
            seen_objects.add(id(t))
            push((t, None, True))
            continue
        mark = marks.get(t)
        if mark is None:
            mark = marks[t] = bytearray(len(t.data))
        if mark[i]:
            continue
        mark[i] = 1
        push((t, i, True))
        if t.code[i] < tp.FIRST_OP:
            continue
        a, b = t.pa[i], t.pb[i]
        for j in ((a,) if b < 0 else (b, a)):       # reversed: the first parent finishes first
            parent = resolve(t, j)
            if not seen(*parent):
                push((*parent, False))
    order[-1] = root            # (listed last: the node itself, not a new handle on it)
    return order


def _add_to(sums, key, g):
    previous = sums.get(key)
    sums[key] = g if previous is None else previous + g


def _serial_of(tape):
    return tape.serial


class Value(Node):
    """A scalar node. ``requires_grad`` is True for Values you make, False for constants
    lifted from plain numbers (``x * 2``), which therefore get no gradient."""

    __slots__ = ("data", "requires_grad", "_tape", "_i", "_home",
                 "_leaf_grad", "_leaf_label", "_leaf_pass", "__weakref__")
    _math = FloatMath
    _node_math = NodeMath
    _fit_grad = None                # scalars never broadcast
    __array_ufunc__ = None          # ndarray ⊕ Value defers to Value's reflected ops either way
    _graph_backprop = staticmethod(_backprop_values)
    _graph_order = staticmethod(_topo_order_values)

    def __init__(self, data, label=None, requires_grad=True):
        if type(data) is not float:
            if type(data) is int or (isinstance(data, numbers.Real)
                                     and not isinstance(data, bool)):
                data = float(data)
            else:
                raise TypeError(
                    f"Value needs a real number, got {type(data).__name__} ({data!r})")
        self.data = data
        self.requires_grad = requires_grad
        self._tape = None
        self._i = -1
        self._home = 0
        self._leaf_grad = None
        self._leaf_label = label
        self._leaf_pass = None

    @classmethod
    def _leaf(cls, data, requires_grad, label=None):
        return cls(data, label=label, requires_grad=requires_grad)

    # -- the node protocol, read from the tape for op results --------------------------------
    @property
    def _parents(self):
        t = self._tape
        if t is None:
            return ()
        i = self._i
        if t.code[i] < tp.FIRST_OP:
            return ()
        a, b = t.pa[i], t.pb[i]
        return (node_at(t, a),) if b < 0 else (node_at(t, a), node_at(t, b))

    @property
    def _op(self):
        t = self._tape
        return None if t is None else tp.OPS[t.code[self._i]]

    @property
    def _ctx(self):
        t = self._tape
        return None if t is None else t.ctx.get(self._i)

    @property
    def label(self):
        t = self._tape
        return self._leaf_label if t is None else t.labels.get(self._i)

    @label.setter
    def label(self, label):
        t = self._tape
        if t is None:
            self._leaf_label = label
        elif label is None:
            t.labels.pop(self._i, None)
        else:
            t.labels[self._i] = label

    @property
    def _grad(self):
        t = self._tape
        return self._leaf_grad if t is None else t.grad_at(self._i)

    @_grad.setter
    def _grad(self, g):
        t = self._tape
        if t is None:
            self._leaf_grad = g
        else:
            t.set_grad(self._i, g)

    @property
    def _pass(self):
        t = self._tape
        return self._leaf_pass if t is None else t.token_at(self._i)

    @property
    def grad(self):
        """∂root/∂self from the last backward pass (0.0 before any)."""
        g = self._grad
        return 0.0 if g is None else g

    @grad.setter
    def grad(self, value):
        self._grad = value

    def _seed(self, grad_out, create_graph):
        if grad_out is None and not create_graph:
            return 1.0
        seed = 1.0 if grad_out is None else grad_out
        if not isinstance(seed, Value):
            zero_d = getattr(seed, "ndim", None) == 0 and getattr(seed, "dtype", None) is not None
            if isinstance(seed, bool) or not (isinstance(seed, numbers.Real) or zero_d):
                shape = getattr(seed, "shape", None)
                raise TypeError(f"grad_out of a Value must be a number (∂root/∂root), got "
                                f"{type(seed).__name__}" + (f" of shape {shape}" if shape else ""))
            seed = float(seed)
        elif not create_graph:          # its number, as the Tensor's seed (a leaf root keeps it)
            seed = seed.data
        if create_graph and not isinstance(seed, Value):
            return Value(seed, requires_grad=False)
        return seed

    def _zeros_like(self, create_graph):
        return Value(0.0, requires_grad=False) if create_graph else 0.0

    # + − × ÷ ** (and reflected) and exp log sqrt tanh sigmoid relu softplus abs sin cos are
    # installed below from the op tables in rules.py.

    def __neg__(self):
        return _result(rules.NEG, -self.data, (self,))

    def leaky_relu(self, slope=0.01):
        """x if x > 0 else slope·x; derivative 1 or slope."""
        ctx = {"slope": float(slope)}
        return _result(rules.LEAKY_RELU, rules.LEAKY_RELU.forward(FloatMath, self.data, **ctx),
                       (self,), ctx)

    # -- comparisons and conversions (not differentiable) -----------------------------------
    def __float__(self):
        escaped(self)
        return self.data

    def __int__(self):
        escaped(self)
        return int(self.data)

    def item(self):
        """The value as a Python float (as PyTorch's ``.item()``): a constant from here on."""
        escaped(self)
        return self.data

    def __round__(self, ndigits=None):
        return round(self.data, ndigits)

    def __format__(self, spec):
        return format(self.data, spec) if spec else repr(self)

    def __bool__(self):
        """``if v:`` tests the number, as for a float (and a PyTorch scalar tensor)."""
        return self.data != 0.0

    # -- copies are new vertices -------------------------------------------------------------
    def _copied(self):
        """A new leaf with this Value's number, label and requires_grad (and, for a leaf, its
        gradient): a copy is a vertex of its own, never a second handle on this one's tape
        entry, whose gradient would flow back to the original."""
        v = Value(self.data, label=self.label, requires_grad=self.requires_grad)
        if self.is_leaf:
            v._leaf_grad = self._grad
        return v

    def __copy__(self):
        return self._copied()

    def __deepcopy__(self, memo):
        return self._copied()

    def __reduce__(self):
        # only the number and its facts: no tape (its entry numbers mean nothing elsewhere)
        return (_restore_value, (self.data, self.label, self.requires_grad,
                                 self._grad if self.is_leaf else None))

    def __lt__(self, other):
        return self.data < _as_value(other).data

    def __le__(self, other):
        return self.data <= _as_value(other).data

    def __gt__(self, other):
        return self.data > _as_value(other).data

    def __ge__(self, other):
        return self.data >= _as_value(other).data

    # A vertex, not a number: two handles on the same tape entry are the same vertex; a leaf
    # is only itself. So Values live in sets and dicts as graph vertices.
    def __eq__(self, other):
        if self is other:
            return True
        t = self._tape
        return (type(other) is Value and t is not None and other._tape is t
                and other._i == self._i)

    def __hash__(self):
        t = self._tape
        return object.__hash__(self) if t is None else hash((id(t), self._i))

    is_vertex = __eq__

    def _data_repr(self):
        return f"{self.data:.6g}"

    def _grad_repr(self):
        g = self._grad
        return f"{g:.6g}" if isinstance(g, float) else repr(g)


rules.install(Value, _binary, _unary)


def _restore_value(data, label, requires_grad, grad):
    """Unpickling: a fresh leaf (see `Value.__reduce__`)."""
    v = Value(data, label=label, requires_grad=requires_grad)
    v._leaf_grad = grad
    return v
