"""`Value`: one Python float on the graph core — the chain rule one number at a time.

    >>> a = Value(3.0, label="a")
    >>> b = a * a + a            # db/da = 2a + 1
    >>> b.backward()
    >>> a.grad
    7.0
"""
from __future__ import annotations

import numbers

from . import rules
from .backends import FloatMath, NodeMath
from .core import Node, make_node


def _constant(data):
    """A leaf that needs no gradient (a number written in an expression)."""
    return make_node(Value, data, (), None, False)


def _as_value(x):
    """Lift a plain number to a constant leaf; anything else is a TypeError naming its type."""
    kind = type(x)
    if kind is Value:
        return x
    if kind is float:
        return _constant(x)
    if kind is int or (isinstance(x, numbers.Real) and not isinstance(x, bool)):
        return _constant(float(x))
    raise TypeError(f"unsupported operand type for Value: {kind.__name__} ({x!r})")


def _unary(op):
    forward = op.forward

    def method(self):
        return make_node(Value, forward(FloatMath, self.data), (self,), op, self.requires_grad)
    method.__name__ = op.name
    method.__doc__ = f"{op.name}(self); d/du = {op.formulas[0]}"
    return method


def _binary(op, reflected=False):
    forward = op.forward

    if reflected:
        def method(self, other):
            other = _as_value(other)
            return make_node(Value, forward(FloatMath, other.data, self.data), (other, self),
                             op, self.requires_grad or other.requires_grad)
    else:
        def method(self, other):
            if type(other) is not Value:
                other = _as_value(other)
            return make_node(Value, forward(FloatMath, self.data, other.data), (self, other),
                             op, self.requires_grad or other.requires_grad)
    method.__name__ = op.name
    return method


class Value(Node):
    """A scalar node. ``requires_grad`` is True for Values you make, False for constants
    lifted from plain numbers (``x * 2``), which therefore get no gradient."""

    __slots__ = ()
    _math = FloatMath
    _node_math = NodeMath
    _fit_grad = None                # scalars never broadcast

    def __init__(self, data, label=None, requires_grad=True):
        if type(data) is not float:
            if type(data) is int or (isinstance(data, numbers.Real)
                                     and not isinstance(data, bool)):
                data = float(data)
            else:
                raise TypeError(
                    f"Value needs a real number, got {type(data).__name__} ({data!r})")
        self.data = data
        self._grad = None
        self._parents = ()
        self._op = None
        self._ctx = None
        self.label = label
        self.requires_grad = requires_grad
        self._pass = None

    @classmethod
    def _leaf(cls, data, requires_grad, label=None):
        return cls(data, label=label, requires_grad=requires_grad)

    @property
    def grad(self):
        """∂root/∂self from the last backward pass (0.0 before any)."""
        g = self._grad
        return 0.0 if g is None else g

    @grad.setter
    def grad(self, value):
        self._grad = value

    def _seed(self, grad_out, create_graph):
        seed = 1.0 if grad_out is None else grad_out
        if create_graph and not isinstance(seed, Value):
            return Value(float(seed), requires_grad=False)
        return seed

    def _zeros_like(self, create_graph):
        return Value(0.0, requires_grad=False) if create_graph else 0.0

    # + − × ÷ ** (and reflected) and exp log sqrt tanh sigmoid relu softplus abs sin cos are
    # installed below from the op tables in rules.py.

    def __neg__(self):
        return make_node(Value, -self.data, (self,), rules.NEG, self.requires_grad)

    def leaky_relu(self, slope=0.01):
        """x if x > 0 else slope·x; derivative 1 or slope."""
        ctx = {"slope": float(slope)}
        return make_node(Value, rules.LEAKY_RELU.forward(FloatMath, self.data, **ctx),
                         (self,), rules.LEAKY_RELU, self.requires_grad, ctx)

    # -- comparisons and conversions (not differentiable) -----------------------------------
    def __float__(self):
        return self.data

    def __lt__(self, other):
        return self.data < _as_value(other).data

    def __le__(self, other):
        return self.data <= _as_value(other).data

    def __gt__(self, other):
        return self.data > _as_value(other).data

    def __ge__(self, other):
        return self.data >= _as_value(other).data

    # Identity, not numeric equality: Values are graph vertices and live in sets and dicts.
    __hash__ = Node.__hash__

    def _data_repr(self):
        return f"{self.data:.6g}"

    def _grad_repr(self):
        g = self._grad
        return f"{g:.6g}" if isinstance(g, float) else repr(g)


rules.install(Value, _binary, _unary)
