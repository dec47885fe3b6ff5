"""`Tensor`: a numpy array on the same graph core and the same derivative rules as `Value`.

dtype: float64 by default; ``Tensor(x, dtype=np.float32)`` keeps float32 through every op
(Python numbers and plain arrays mixed in are cast to the tensor's dtype). Integer and bool input
becomes float64 unless a dtype is given; object, string and complex input is a TypeError.

As in PyTorch, a Tensor you make has ``requires_grad=False`` unless you ask; an op records its
inputs only when one of them requires a gradient. ``.grad`` is None until a backward pass
reaches the tensor, then an ndarray of its shape (a Tensor with ``create_graph=True``).
"""
from __future__ import annotations

import math
import numbers
import sys
import weakref

import numpy as np

try:
    from numpy.lib.array_utils import normalize_axis_tuple     # numpy ≥ 2
except ImportError:                                              # pragma: no cover - numpy 1.x
    from numpy.core.numeric import normalize_axis_tuple

from . import rules
from .backends import ArrayMath, NodeMath
from .core import MODE, Node, escaped, make_node

_ndarray = np.ndarray
_FLOAT_KINDS = ("f",)


def _convert(data, dtype):
    """numpy array of a float dtype, or TypeError naming what was given."""
    if isinstance(data, Node):
        raise TypeError(f"Tensor needs numbers or an array, got a {type(data).__name__} node; "
                        "use .data or .detach()")
    if isinstance(data, int) and not isinstance(data, bool) and not -2**63 <= data < 2**63:
        data = float(data)          # beyond int64 numpy would make an object array
    array = np.asarray(data)
    kind = array.dtype.kind
    if dtype is not None:
        dtype = np.dtype(dtype)
        if dtype.kind != "f":
            raise TypeError(f"Tensor dtype must be a float type, got {dtype}")
    if kind not in "fiub":
        raise TypeError(f"Tensor needs real numbers, got an array of dtype {array.dtype} "
                        f"(from {type(data).__name__})")
    if dtype is None:
        dtype = array.dtype if kind == "f" else np.dtype(np.float64)
    if array.dtype != dtype:
        array = array.astype(dtype)
    return array


def unbroadcast(m, g, parent):
    """Sum a gradient of the broadcast shape back to ``parent``'s shape (the only place
    broadcasting is undone): over the leading axes numpy added and the axes of size 1. A
    gradient has its node's dtype (a float32 leaf in a float64 expression gets a float32
    gradient, as in PyTorch)."""
    data = parent.data
    if type(g) is np.ndarray and g.dtype == data.dtype:     # the common cases, first
        g_shape, shape = g.shape, data.shape
        if g_shape == shape:
            return g
        if len(g_shape) == 2 and len(shape) == 1 and g_shape[1] == shape[0]:
            return np.add.reduce(g, axis=0)         # a bias's gradient: the rows summed
    if m.dtype(g) != data.dtype:
        g = m.astype(g, data.dtype)
    shape = data.shape
    g_shape = g.shape
    if g_shape == shape:
        return g
    lead = len(g_shape) - len(shape)
    axes = tuple(range(lead)) + tuple(lead + i for i, n in enumerate(shape)
                                      if n == 1 and g_shape[lead + i] != 1)
    if axes:
        g = m.sum(g, axis=axes)
        if m.shape(g) == shape:         # a bias: the sum is the gradient, no reshaped view
            return g
    return m.reshape(g, shape)


def _refcount_probe(g):
    return sys.getrefcount(g)


def _unshared_refcount():
    # References an unshared gradient has where `_owned` looks: the backward pass's dict entry
    # and local variable, and `_owned`'s own argument — measured, not assumed.
    grads = {0: np.zeros(1)}
    g = grads[0]
    return _refcount_probe(g)


_UNSHARED = _unshared_refcount()


def _owned(g, unshared=_UNSHARED):
    """A leaf's gradient as memory no other gradient shares (PyTorch steals a gradient buffer
    the same way): kept when this pass made it and nothing else refers to it, else copied.
    Pass-through VJPs (add, reshape, …) hand one array to several nodes; those get copies.
    ``unshared``: the references an unshared gradient has here, as the caller holds it (the
    backward pass: a dict entry and a local variable; a trace's replay: a local variable)."""
    if type(g) is not _ndarray:
        # a 0-d leaf's VJPs give numpy scalars: its .grad is still an array, as PyTorch's
        return np.array(g) if isinstance(g, np.generic) else g
    if g.base is None and sys.getrefcount(g) <= unshared:
        return g
    return g.copy()


def _holding(array):
    """A constant leaf holding ``array`` as it is, whatever its dtype (a trace's feed for an
    input that a Tensor converts: integer or bool inputs too)."""
    leaf = Tensor.__new__(Tensor)
    leaf.data, leaf._grad, leaf._parents, leaf._op, leaf._ctx = array, None, (), None, None
    leaf.label, leaf.requires_grad, leaf._pass = None, False, None
    return leaf


def _make(data, parents, op, requires_grad, ctx=None):
    """A Tensor made by ``op``: numpy scalars from reductions become 0-d arrays."""
    if type(data) is not _ndarray:
        data = np.asarray(data)
    return make_node(Tensor, data, parents, op, requires_grad, ctx)


def _lift(x, like):
    """A constant Tensor of ``like``'s dtype from a number or array."""
    if type(x) is Tensor:
        return x
    if isinstance(x, (numbers.Real, np.ndarray, list, tuple)) and not isinstance(x, bool):
        return Tensor(x, dtype=like.data.dtype)
    if isinstance(x, Node):             # a Value: the other engine
        raise TypeError(_MIXED_ENGINES)
    raise TypeError(f"unsupported operand type for Tensor: {type(x).__name__}")


# Value and Tensor share the graph core but not a graph: say so, and how a float became a Value
_MIXED_ENGINES = ("a Value and a Tensor cannot be combined in one expression (separate "
                  "graphs): make the number a Tensor, e.g. Tensor(v.data) or Tensor(2.0). "
                  "grad, jacobian and hessian trace a Python float argument as a Value and an "
                  "array as a Tensor: pass np.array(2.0) to get a 0-d Tensor")


def _shape_error(op, a, b, error):
    return ValueError(f"{op.name}: shapes {a.data.shape} and {b.data.shape} do not match "
                      f"({error})")


def _binary(op, reflected=False):
    forward = op.forward

    def method(self, other):
        if type(other) is not Tensor:
            other = _lift(other, self)
        a, b = (other, self) if reflected else (self, other)
        try:
            data = forward(ArrayMath, a.data, b.data)
        except ValueError as error:
            raise _shape_error(op, a, b, error) from None
        return _make(data, (a, b), op, a.requires_grad or b.requires_grad)
    method.__name__ = op.name
    return method


def _unary(op):
    forward = op.forward

    def method(self):
        return _make(forward(ArrayMath, self.data), (self,), op, self.requires_grad)
    method.__name__ = op.name
    method.__doc__ = f"Elementwise {op.name}; d/du = {op.formulas[0]}"
    return method


def _apply(op, x, **ctx):
    """An op of one tensor input with non-differentiable arguments ``ctx``."""
    return _make(op.forward(ArrayMath, x.data, **ctx), (x,), op, x.requires_grad, ctx)


class Tensor(Node):
    """An n-dimensional array node (see the module docstring)."""

    __slots__ = ("data", "_grad", "_parents", "_op", "_ctx", "label", "requires_grad",
                 "_pass", "__weakref__")
    _math = ArrayMath
    _node_math = NodeMath
    _fit_grad = staticmethod(unbroadcast)
    _own_grad = staticmethod(_owned)
    __array_priority__ = 1000           # ndarray ⊕ Tensor defers to Tensor's reflected ops

    def __array__(self, dtype=None, copy=None):
        """``np.asarray(t)``: the numbers of a Tensor that needs no gradient (as PyTorch's
        ``.numpy()``). One that requires a gradient raises, so that a numpy function cannot
        silently drop it from the graph."""
        if self.requires_grad:
            raise TypeError("numpy cannot take a Tensor that requires a gradient (the result "
                            "would leave the graph): use .data for its numbers, or the "
                            "Tensor's own methods (t.exp(), t.sum(), …) to stay in the graph")
        if copy:
            return np.array(self.data, dtype=dtype, copy=True)
        return self.data if dtype is None else self.data.astype(dtype, copy=False)

    def __init__(self, data, dtype=None, requires_grad=False, label=None):
        self.data = _convert(data, dtype)
        if getattr(data, "dtype", None) == np.bool_ or (
                isinstance(data, (list, tuple)) and np.asarray(data).dtype == np.bool_):
            _MASKS[id(self)] = self     # stored as 0/1 floats, still a mask when indexing
        self._grad = None
        self._parents = ()
        self._op = None
        self._ctx = None
        self.label = label
        self.requires_grad = bool(requires_grad)
        self._pass = None
        if MODE.record_constants and type(data) is np.ndarray and self.data is not data \
                and not self.requires_grad:
            # while `autograd.trace` records: an array converted to another dtype (an input,
            # perhaps) is astype of a leaf holding it, so a replay converts the new numbers
            # (the copy alone would be a constant of the first call)
            self._parents = (_holding(data),)
            self._op = rules.ASTYPE
            self._ctx = {"dtype": self.data.dtype}

    @classmethod
    def _leaf(cls, data, requires_grad, label=None):
        return cls(data, requires_grad=requires_grad, label=label)

    def detach(self):
        """A new leaf sharing this tensor's data, cut from the graph. (While `autograd.trace`
        records, a constant made by an op, so a replay takes it from the new inputs.)"""
        if not MODE.record_constants:
            return super().detach()
        out = make_node(Tensor, self.data, (self,), rules.DETACH, False)
        out.label = self.label
        return out

    @property
    def grad(self):
        return self._grad

    @grad.setter
    def grad(self, value):
        self._grad = value

    def _seed(self, grad_out, create_graph):
        if grad_out is None:
            if self.data.size != 1:
                raise RuntimeError(
                    "grad can be implicitly created only for scalar outputs: this Tensor has "
                    f"shape {self.data.shape}; pass grad_out of that shape to backward()")
            seed = np.ones_like(self.data)
        elif isinstance(grad_out, Tensor):
            seed = grad_out if create_graph else grad_out.data.astype(self.data.dtype,
                                                                      copy=False)
        else:
            seed = np.asarray(grad_out, dtype=self.data.dtype)
        if getattr(seed, "shape", None) != self.data.shape:
            raise ValueError(f"backward: grad_out has shape {np.shape(seed)}, "
                             f"the output has shape {self.data.shape}")
        if create_graph and not isinstance(seed, Tensor):
            seed = Tensor(seed)
        return seed

    def _zeros_like(self, create_graph):
        zeros = np.zeros_like(self.data)
        return Tensor(zeros) if create_graph else zeros

    # -- array facts ---------------------------------------------------------------------------
    shape = property(lambda self: self.data.shape)
    dtype = property(lambda self: self.data.dtype)
    ndim = property(lambda self: self.data.ndim)
    size = property(lambda self: self.data.size)

    def __len__(self):
        return len(self.data)

    def __iter__(self):
        if self.data.ndim == 0:
            raise TypeError("iteration over a 0-d Tensor")
        return (self[i] for i in range(len(self.data)))

    def __float__(self):
        return float(self._one("float"))

    def __int__(self):
        return int(self._one("int"))

    def _one(self, what):
        if self.data.size != 1:
            raise TypeError(f"only a one-element Tensor converts to {what}, this one has shape "
                            f"{self.data.shape}")
        escaped(self)
        return self.data.reshape(()).item()

    def numpy(self):
        """The array itself (shared, not a copy): like .item(), a constant from here on."""
        escaped(self)
        return self.data

    def item(self):
        escaped(self)
        return self.data.item()

    # + − × ÷ ** @ (and reflected) and exp log sqrt tanh sigmoid relu softplus abs sin cos are
    # installed after the class from the op tables in rules.py: the same ops as Value.

    def __neg__(self):
        return _make(-self.data, (self,), rules.NEG, self.requires_grad)

    def leaky_relu(self, slope=0.01):
        return _apply(rules.LEAKY_RELU, self, slope=float(slope))

    def clip(self, lo=None, hi=None):
        """min(max(x, lo), hi); derivative 1 inside [lo, hi], 0 outside. The bounds are taken
        in the Tensor's dtype (as numbers mixed into any op are)."""
        dtype = self.data.dtype.type
        lo, hi = (b if b is None else dtype(b) if isinstance(b, (float, int, np.number))
                  else np.asarray(b, dtype=self.data.dtype) for b in (lo, hi))
        return _apply(rules.CLIP, self, lo=lo, hi=hi)

    # -- reductions ----------------------------------------------------------------------------
    def sum(self, axis=None, keepdims=False):
        return _apply(rules.SUM, self, axis=_axis(axis), keepdims=keepdims)

    def sum_squares(self):
        """Σ xᵢ² over every entry (the L2 penalty's ‖W‖²), in one pass; derivative 2x."""
        return _make(rules.SUM_SQUARES.forward(ArrayMath, self.data), (self,), rules.SUM_SQUARES,
                     self.requires_grad)

    def mean(self, axis=None, keepdims=False):
        # mean is sum × (1/count): a derived op
        axis = _axis(axis)
        shape = self.data.shape
        if axis is None:
            count = self.data.size
        else:
            axes = normalize_axis_tuple(axis, self.data.ndim)    # numpy's AxisError if bad
            count = int(np.prod([shape[a] for a in axes]))
        # an empty mean is nan, as in numpy and PyTorch (0 · inf of the empty sum's scale)
        return self.sum(axis=axis, keepdims=keepdims) * (1.0 / count if count else math.nan)

    def max(self, axis=None, keepdims=False):
        """Maximum over ``axis``; tied maxima share the gradient equally."""
        return _apply(rules.MAX, self, axis=_axis(axis), keepdims=keepdims)

    def min(self, axis=None, keepdims=False):
        """Minimum over ``axis``; tied minima share the gradient equally."""
        return _apply(rules.MIN, self, axis=_axis(axis), keepdims=keepdims)

    def var(self, axis=None, keepdims=False, ddof=0):
        """Σ (x − mean)² / (count − ddof) over ``axis`` (numpy's ddof; PyTorch's default is
        ddof=1): a derived op, so the picture shows its mean, difference and square."""
        axis = _axis(axis)
        count = self.data.size if axis is None else int(np.prod(
            [self.data.shape[a] for a in normalize_axis_tuple(axis, self.data.ndim)]))
        centred = self - self.mean(axis=axis, keepdims=True)
        # count − ddof = 0 divides by zero (inf, as numpy and PyTorch); below 0, nan
        scale = (1.0 / (count - ddof) if count > ddof else math.inf if count == ddof
                 else math.nan)
        return (centred * centred).sum(axis=axis, keepdims=keepdims) * scale

    def std(self, axis=None, keepdims=False, ddof=0):
        """√var: the standard deviation over ``axis`` (derived); where the variance is 0 the
        root's derivative is taken as 0, as PyTorch's (not inf, which would make nan)."""
        v = self.var(axis=axis, keepdims=keepdims, ddof=ddof)
        return _make(rules.STD_ROOT.forward(ArrayMath, v.data), (v,), rules.STD_ROOT,
                     v.requires_grad)

    def logsumexp(self, axis=None, keepdims=False):
        """log Σ exp(x) over ``axis``, shifted by the maximum so it never overflows; its
        gradient is softmax(x) (derived: max, exp, sum, log)."""
        axis = _axis(axis)
        # a constant (no gradient through it), made by an op so a trace can recompute it
        shift = make_node(Tensor, np.asarray(rules.LOGSUMEXP_SHIFT.forward(
            ArrayMath, self.data, axis)), (self,), rules.LOGSUMEXP_SHIFT, False, {"axis": axis})
        total = (self - shift).exp().sum(axis=axis, keepdims=True).log() + shift
        if not keepdims:
            total = total.reshape(np.sum(self.data, axis=axis).shape)
        return total

    def softmax(self, axis=-1):
        """softmax(x)ᵢ = exp(xᵢ − max x) / Σⱼ exp(xⱼ − max x): finite for any finite input."""
        return _apply(rules.SOFTMAX, self, axis=self._one_axis(axis, "softmax"))

    def log_softmax(self, axis=-1):
        """log softmax(x)ᵢ = xᵢ − max x − log Σⱼ exp(xⱼ − max x)."""
        return _apply(rules.LOG_SOFTMAX, self, axis=self._one_axis(axis, "log_softmax"))

    def _one_axis(self, axis, name):
        """``axis`` as one int, in range (numpy's AxisError naming the op if not): the forward
        pass indexes the shape with it, which failed with a bare IndexError or TypeError."""
        if not isinstance(axis, numbers.Integral) or isinstance(axis, bool):
            raise TypeError(f"{name}: axis must be one int (the axis to normalise over), got "
                            f"{axis!r}")
        if not -self.data.ndim <= axis < self.data.ndim:
            raise np.exceptions.AxisError(int(axis), self.data.ndim, name)
        return int(axis)

    def softmax_cross_entropy(self, target):
        """Softmax cross-entropy from logits, in one op: for logits z of shape (n, k),

            J = −1/n Σᵢ Σⱼ tᵢⱼ log softmax(zᵢ)ⱼ,      ∂J/∂zᵢ = (softmax(zᵢ) · Σⱼ tᵢⱼ − tᵢ) / n

        ``target`` is class indices (n,) (tᵢ one-hot: ∂J/∂zᵢ = softmax(zᵢ) − tᵢ, over n) or rows
        of target probabilities (n, k), e.g. one-hot rows; it is data, not differentiated.
        The value is that of ``-(z.log_softmax(axis=1)[range(n), target].sum()) * (1 / n)`` or
        ``(z.log_softmax(axis=1) * target).sum() * (-1 / n)`` (the same operations in the same
        order, in z's dtype); the gradient skips their chain of five VJPs and the scatter of the
        indexing."""
        z = self.data
        if z.ndim != 2:
            raise ValueError(f"softmax_cross_entropy: logits must be 2-D (n rows × k classes), "
                             f"got shape {z.shape}")
        target = _cross_entropy_target(target, z)
        labels = target.dtype.kind != "f"
        J, parts = rules.SOFTMAX_CROSS_ENTROPY.saving(ArrayMath, z, target, labels)
        ctx = {"target": target, "labels": labels}
        if self.requires_grad and MODE.grad_enabled:    # for the backward pass (e / s = softmax)
            ctx.update(parts)
        return _make(J, (self,), rules.SOFTMAX_CROSS_ENTROPY, self.requires_grad, ctx)

    # -- shape ---------------------------------------------------------------------------------
    def reshape(self, *shape):
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        try:
            data = self.data.reshape(shape)
        except ValueError as error:
            raise ValueError(f"reshape: cannot reshape shape {self.data.shape} into "
                             f"{shape}") from error
        return _make(data, (self,), rules.RESHAPE, self.requires_grad, {"shape": shape})

    def transpose(self, *axes):
        if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
            axes = tuple(axes[0])
        if not axes:
            axes = tuple(range(self.data.ndim - 1, -1, -1))
        try:
            data = rules.TRANSPOSE.forward(ArrayMath, self.data, axes)
        except ValueError as error:         # numpy's message names neither
            raise ValueError(f"transpose: axes {axes} are not a permutation of the "
                             f"{self.data.ndim} axes of shape {self.data.shape} "
                             f"({error})") from None
        return _make(data, (self,), rules.TRANSPOSE, self.requires_grad, {"axes": axes})

    T = property(lambda self: self.transpose(), doc="All axes reversed, as numpy's .T.")

    @property
    def mT(self):
        """The last two axes swapped (matrix transpose of a batch)."""
        if self.data.ndim < 2:
            raise ValueError(f"mT swaps the last two axes: it needs at least 2, got shape "
                             f"{self.data.shape}")
        axes = list(range(self.data.ndim))
        axes[-1], axes[-2] = axes[-2], axes[-1]
        return self.transpose(tuple(axes))

    def expand_dims(self, axis):
        return self.reshape(np.expand_dims(self.data, axis).shape)

    def squeeze(self, axis=None):
        return self.reshape(np.squeeze(self.data, axis).shape)

    def broadcast_to(self, shape):
        # The VJP is the identity; the core's unbroadcast sums it back to this shape.
        shape = tuple(shape)
        try:
            data = rules.BROADCAST_TO.forward(ArrayMath, self.data, shape)
        except ValueError as error:         # numpy's message names neither shape
            raise ValueError(f"broadcast_to: cannot broadcast shape {self.data.shape} to "
                             f"{shape} ({error})") from None
        return _make(data, (self,), rules.BROADCAST_TO, self.requires_grad, {"shape": shape})

    def __getitem__(self, index):
        index = _plain_index(index)
        return _apply(rules.GETITEM, self, index=index)

    def scatter(self, index, shape):
        """Zeros of ``shape`` with this tensor added at ``index`` (the VJP of indexing)."""
        return _apply(rules.SCATTER, self, index=_plain_index(index), shape=tuple(shape))

    def getitem(self, index):
        return self[index]

    def astype(self, dtype):
        dtype = np.dtype(dtype)
        if dtype.kind != "f":
            raise TypeError(f"astype: a Tensor holds floats (its gradient needs them), got "
                            f"{dtype}; for other types use .data.astype({dtype})")
        return _apply(rules.ASTYPE, self, dtype=dtype)

    # -- comparisons: plain boolean arrays, not differentiable -----------------------------
    def _raw(self, other):
        return other.data if isinstance(other, Tensor) else other

    def __lt__(self, other):
        return self.data < self._raw(other)

    def __le__(self, other):
        return self.data <= self._raw(other)

    def __gt__(self, other):
        return self.data > self._raw(other)

    def __ge__(self, other):
        return self.data >= self._raw(other)

    def __eq__(self, other):
        return self.data == self._raw(other)

    def __ne__(self, other):
        return self.data != self._raw(other)

    # Identity hashing: tensors are graph vertices kept in sets and dicts.
    __hash__ = Node.__hash__

    def __bool__(self):
        return bool(self.data)

    def _shape_text(self):
        return f" of shape {self.data.shape}"

    def _data_repr(self):
        text = np.array2string(self.data, precision=4, threshold=20, separator=", ")
        return text if self.data.dtype == np.float64 else f"{text}, dtype={self.data.dtype}"

    def _grad_repr(self):
        g = self._grad
        if isinstance(g, np.ndarray):
            return np.array2string(g, precision=4, threshold=20, separator=", ")
        return repr(g)


rules.install(Tensor, _binary, _unary, {**rules.OPERATORS, "matmul": rules.MATMUL})


# -- softmax cross-entropy: one op for the classifier's loss ----------------------------------

def _cross_entropy_target(target, z):
    """Class indices (n,) of an integer dtype, or target rows (n, k) in z's dtype; ValueError
    otherwise."""
    if isinstance(target, Tensor):
        target = target.data
    target = np.asarray(target)
    n, k = z.shape
    if target.ndim == 1:                    # labels (a Tensor of labels holds whole floats)
        if target.shape[0] != n:
            raise ValueError(f"softmax_cross_entropy: {target.shape[0]} labels for {n} rows")
        if target.dtype.kind not in "iu" and not (target.dtype.kind in "fb" and
                                                 np.all(target == np.round(target))):
            raise ValueError(f"softmax_cross_entropy: class labels must be whole numbers, got "
                             f"{target.dtype} values {target[:5]}")
        # integer labels as they are (numpy indexes with any), so that a trace finds an input
        # of labels in the op's ctx as itself; their range: the op's saving checks
        return target if target.dtype.kind in "iu" else target.astype(np.intp)
    if target.shape != z.shape or target.dtype.kind not in "fiub":
        raise ValueError(f"softmax_cross_entropy: target must be integer class labels ({n},) or "
                         f"rows of real numbers {z.shape}, got {target.dtype} of shape "
                         f"{target.shape}")
    return target.astype(z.dtype, copy=False)


def _axis(axis):
    if isinstance(axis, list):
        return tuple(axis)
    if isinstance(axis, np.integer):
        return int(axis)
    return axis


# Tensors made from boolean arrays: they hold 0/1 floats, but index as the mask they came
# from (as numpy's and PyTorch's boolean indexing), not as positions 0 and 1.
_MASKS = weakref.WeakValueDictionary()        # id → Tensor (Tensors compare elementwise)


def _plain_index(index):
    """Tensors used as indices become their integer arrays (indices are never differentiated);
    their values must be whole numbers (Tensors hold floats), as numpy refuses float indices.
    A Tensor made from a boolean array is that mask again."""
    if isinstance(index, Tensor):
        return _index_array(index)
    if isinstance(index, tuple):
        return tuple(_index_array(i) if isinstance(i, Tensor) else i for i in index)
    return index


def _index_array(t):
    return t.data.astype(bool) if _MASKS.get(id(t)) is t else _whole(t.data)


def _whole(data):
    if not np.all(data == np.round(data)):
        raise IndexError(f"a Tensor used as an index must hold whole numbers, got "
                         f"{data.ravel()[:5]} (index with an integer or boolean numpy array)")
    return data.astype(np.intp)


def where(cond, a, b):
    """``a`` where ``cond`` else ``b``; the gradient flows to the branch that was taken."""
    cond = np.asarray(cond.data if isinstance(cond, Tensor) else cond, dtype=bool)
    like = a if isinstance(a, Tensor) else b
    if not isinstance(like, Tensor):
        like = Tensor(np.asarray(a, dtype=float))
    a, b = _lift(a, like), _lift(b, like)
    try:
        data = np.where(cond, a.data, b.data)
    except ValueError as error:
        raise _shape_error(rules.WHERE, a, b, error) from None
    return _make(data, (a, b), rules.WHERE, a.requires_grad or b.requires_grad, {"cond": cond})


def _first_tensor(items):
    """The first Tensor among ``items`` (its dtype is used for the rest), or one made from the
    first item."""
    for t in items:
        if isinstance(t, Tensor):
            return t
    return Tensor(items[0])


def concatenate(tensors, axis=0):
    """Join tensors along an existing axis (``axis=None``: flattened first, as numpy's); each
    input gets its slice of the gradient."""
    tensors = list(tensors)
    if not tensors:
        raise ValueError("concatenate: needs at least one tensor")
    like = _first_tensor(tensors)
    tensors = tuple(_lift(t, like) for t in tensors)
    if axis is None:        # numpy's: the inputs flattened, then joined (the VJP needs an axis)
        tensors, axis = tuple(t.reshape(-1) for t in tensors), 0
    try:
        data = np.concatenate([t.data for t in tensors], axis=axis)
    except ValueError as error:
        shapes = ", ".join(str(t.data.shape) for t in tensors)
        raise ValueError(f"concatenate: shapes {shapes} do not fit along axis {axis} "
                         f"({error})") from None
    return _make(data, tensors, rules.CONCATENATE, any(t.requires_grad for t in tensors),
                 {"axis": axis})


def stack(tensors, axis=0):
    # stack is concatenate of inputs each given a new axis: a derived op
    tensors = list(tensors)
    if not tensors:
        raise ValueError("stack: needs at least one tensor")
    like = _first_tensor(tensors)
    shapes = {np.shape(t.data if isinstance(t, Tensor) else t) for t in tensors}
    if len(shapes) != 1:
        raise ValueError(f"stack: all inputs need one shape, got {sorted(shapes)}")
    return concatenate([_lift(t, like).expand_dims(axis) for t in tensors], axis=axis)
