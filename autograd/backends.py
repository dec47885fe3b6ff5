"""The math namespaces that derivative rules are written against.

A rule such as ``g * m.cos(x)`` runs unchanged on

- `FloatMath`: Python floats (the `Value` engine), IEEE-754 results instead of exceptions;
- `ArrayMath`: numpy arrays (the `Tensor` engine);
- `NodeMath`: graph nodes themselves, so a gradient gets its own graph (``create_graph=True``).

Domain and overflow behaviour is the same everywhere and follows IEEE-754 as numpy does:
log(0) = −inf, log(−1) = nan, sqrt(−1) = nan, 1/0 = inf, 0 ** −1 = inf, exp(1000) = inf. Nothing
raises; `autograd.detect_anomaly()` turns the first non-finite value into an error.
"""
from __future__ import annotations

import math

import numpy as np

from . import kernels

INF = math.inf
NAN = math.nan


def _float_div(a, b):
    try:
        return a / b
    except ZeroDivisionError:
        if a == 0 or a != a:
            return NAN
        return math.copysign(INF, a) * math.copysign(1.0, b)


def _is_odd_integer(b):
    return b == int(b) and int(b) % 2 == 1 if math.isfinite(b) else False


def _float_pow(a, b):
    try:
        return math.pow(a, b)
    except ValueError:              # 0 ** negative, or negative ** non-integer
        if a == 0:
            return math.copysign(INF, a) if _is_odd_integer(b) else INF
        return NAN
    except OverflowError:
        return -INF if a < 0 and _is_odd_integer(b) else INF


def _float_exp(x):
    try:
        return math.exp(x)
    except OverflowError:
        return INF


def _float_log(x):
    if x > 0:
        return math.log(x)
    if x == 0:
        return -INF
    return NAN


def _float_sigmoid(x):
    # Two branches so exp never overflows: σ(x) = 1/(1+e^−x) = e^x/(1+e^x).
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


def _float_softplus(x):
    # log(1 + e^x) = max(x, 0) + log1p(e^−|x|), finite for any finite x.
    return max(x, 0.0) + math.log1p(math.exp(-abs(x)))


def _float_trig(f):
    def trig(x):
        try:
            return f(x)
        except ValueError:          # sin(inf)
            return NAN
    trig.__name__ = f.__name__
    return trig


class FloatMath:
    """Rules on Python floats."""

    exp = staticmethod(_float_exp)
    log = staticmethod(_float_log)
    div = staticmethod(_float_div)
    pow = staticmethod(_float_pow)
    tanh = staticmethod(math.tanh)
    sigmoid = staticmethod(_float_sigmoid)
    softplus = staticmethod(_float_softplus)
    sin = staticmethod(_float_trig(math.sin))
    cos = staticmethod(_float_trig(math.cos))
    abs = staticmethod(abs)

    @staticmethod
    def sqrt(x):
        return math.sqrt(x) if x >= 0 else NAN

    @staticmethod
    def relu(x):
        return 0.0 if x <= 0 else x         # nan stays nan, as numpy's maximum(x, 0)

    @staticmethod
    def step(x):
        """relu′(x): 1 for x > 0, else 0 (0 at the kink, as PyTorch)."""
        return 1.0 if x > 0 else 0.0

    @staticmethod
    def const(like, data):
        """A non-differentiable value of the same kind as ``like``: here, the number."""
        return data

    @staticmethod
    def gate(g, mask):
        """g where the 0/1 ``mask`` is 1, else 0: a selection, not a product, so an inf or nan
        gradient arriving where the function is flat gives 0 (PyTorch's threshold_backward),
        not 0 · inf = nan."""
        return g if mask else 0.0

    @staticmethod
    def relu_grad(g, x):
        """relu′ applied to g: gate(g, step(x))."""
        return g if x > 0 else 0.0

    @staticmethod
    def leaky_relu(x, slope):
        return x if x > 0 else slope * x

    @staticmethod
    def leaky_step(x, slope):
        return 1.0 if x > 0 else slope

    @staticmethod
    def sign(x):
        return 1.0 if x > 0 else (-1.0 if x < 0 else 0.0)

    @staticmethod
    def log_base(a, b):
        """ln a as ∂(aᵇ)/∂b = aᵇ·ln a uses it: 0 where a = 0 and b ≥ 0, where aᵇ does not
        change with b (as PyTorch), so the derivative is 0 rather than 0·(−inf) = nan."""
        return 0.0 if a == 0 and b >= 0 else _float_log(a)

    @staticmethod
    def pow_lower(a, b):
        """aᵇ⁻¹ as ∂(aᵇ)/∂a = b·aᵇ⁻¹ uses it: 0 where b = 0 (a⁰ = 1 does not change with a, as
        PyTorch), so the derivative is 0 rather than 0·0⁻¹ = nan at a = 0."""
        return 0.0 if b == 0 else _float_pow(a, b - 1)


def _array_sigmoid(x):
    # σ(|x|) = 1/(1 + e^−|x|), and σ(x) = e^−|x|·σ(|x|) for x < 0: no overflow for any x and
    # within an ulp or so (exp(−logaddexp(0, −x)) lost up to ~30 ulp at large negative x)
    e = np.exp(-np.abs(x))
    out = np.reciprocal(1.0 + e)
    if np.ndim(out) == 0:
        return out * e if x < 0 else out
    np.multiply(out, e, out=out, where=x < 0)
    return out


# (array methods rather than np.max/np.sum: the same ufunc reductions, less call overhead)
def _array_log_softmax(x, axis):
    if not x.shape[axis]:               # an empty axis: nothing to normalise (as PyTorch)
        return np.empty_like(x)
    shifted = x - x.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


def _array_softmax(x, axis):
    if not x.shape[axis]:
        return np.empty_like(x)
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


class ArrayMath:
    """Rules on numpy arrays."""

    exp = staticmethod(np.exp)
    log = staticmethod(np.log)
    sqrt = staticmethod(np.sqrt)
    tanh = staticmethod(np.tanh)
    sin = staticmethod(np.sin)
    cos = staticmethod(np.cos)
    abs = staticmethod(np.abs)
    sign = staticmethod(np.sign)
    div = staticmethod(np.divide)
    pow = staticmethod(np.power)
    sigmoid = staticmethod(_array_sigmoid)
    log_softmax = staticmethod(_array_log_softmax)
    softmax = staticmethod(_array_softmax)
    matmul = staticmethod(np.matmul)
    reshape = staticmethod(np.reshape)
    transpose = staticmethod(np.transpose)
    broadcast_to = staticmethod(np.broadcast_to)
    expand_dims = staticmethod(np.expand_dims)
    squeeze = staticmethod(np.squeeze)

    @staticmethod
    def softplus(x):
        return np.logaddexp(0.0, x)

    @staticmethod
    def relu(x):
        return np.maximum(x, 0)

    @staticmethod
    def step(x):
        return (x > 0).astype(x.dtype)

    @staticmethod
    def gate(g, mask):
        """`FloatMath.gate` elementwise: the product (fast), redone as a selection only where
        g holds an inf or nan."""
        if type(g) is np.ndarray and not np.isfinite(g).all():
            return np.where(mask != 0, g, 0).astype(np.result_type(g, mask), copy=False)
        return g * mask

    @staticmethod
    def relu_grad(g, x):
        """gate(g, step(x)), in one compiled pass when `autograd.kernels` can. Else numpy's,
        with the mask left boolean when g and x share a dtype (a cast pass fewer, the same
        numbers: g·1 and g·0)."""
        out = kernels.relu_grad(g, x)
        if out is not None:
            return out
        if type(g) is np.ndarray and type(x) is np.ndarray and g.dtype == x.dtype:
            return ArrayMath.gate(g, x > 0)
        return ArrayMath.gate(g, ArrayMath.step(x))

    @staticmethod
    def leaky_relu(x, slope):
        return np.where(x > 0, x, x * slope)

    @staticmethod
    def leaky_step(x, slope):
        return np.where(x > 0, 1.0, slope).astype(x.dtype)

    @staticmethod
    def sum(x, axis=None, keepdims=False):
        return x.sum(axis=axis, keepdims=keepdims)     # the method: less overhead than np.sum

    @staticmethod
    def sum_squares(x):
        # one pass, no temporary: the BLAS dot product of x with itself
        flat = x.reshape(-1)
        return np.asarray(np.dot(flat, flat))

    @staticmethod
    def mT(x):
        return x.swapaxes(-1, -2)       # the method: np.swapaxes adds a wrapper call

    @staticmethod
    def ndim(x):
        return x.ndim if type(x) is np.ndarray else np.ndim(x)

    @staticmethod
    def astype(x, dtype):
        return x.astype(dtype)

    @staticmethod
    def dtype(x):
        return x.dtype

    @staticmethod
    def shape(x):
        return x.shape if type(x) is np.ndarray else np.shape(x)

    @staticmethod
    def const(like, data):
        """A non-differentiable value of the same kind as ``like``."""
        return data

    @staticmethod
    def where(cond, a, b):
        return np.where(cond, a, b)

    @staticmethod
    def log_base(a, b):
        """`FloatMath.log_base` elementwise: ln a, 0 where a = 0 and b ≥ 0."""
        return np.log(np.where((a == 0) & (b >= 0), 1, a))

    @staticmethod
    def pow_lower(a, b):
        """`FloatMath.pow_lower` elementwise: aᵇ⁻¹, 0 where b = 0."""
        a, b = np.asarray(a), np.asarray(b)
        out = np.zeros(np.broadcast_shapes(a.shape, b.shape), dtype=np.result_type(a, b))
        return np.power(a, b - 1, out=out, where=b != 0)    # no 0⁻¹ computed (nor warned)

    @staticmethod
    def scatter(g, index, shape):
        """Zeros of ``shape`` with g added at ``index`` (repeated indices add up)."""
        out = np.zeros(shape, dtype=g.dtype)
        np.add.at(out, index, g)
        return out

    @staticmethod
    def getitem(x, index):
        return x[index]

    @staticmethod
    def concatenate(xs, axis):
        return np.concatenate(xs, axis=axis)


def _method(name):
    def call(x, *args, **kwargs):
        return getattr(x, name)(*args, **kwargs)
    call.__name__ = name
    return call


class NodeMath:
    """Rules on nodes: every step is recorded, so the gradient is itself differentiable."""

    for _name in ("exp", "log", "sqrt", "tanh", "sigmoid", "softplus", "sin", "cos", "abs",
                  "sum_squares",
                  "relu", "leaky_relu", "log_softmax", "softmax", "reshape", "transpose",
                  "sum", "broadcast_to", "expand_dims", "squeeze", "getitem"):
        locals()[_name] = staticmethod(_method(_name))
    del _name

    @staticmethod
    def div(a, b):
        return a / b

    @staticmethod
    def pow(a, b):
        return a ** b

    @staticmethod
    def matmul(a, b):
        return a @ b

    @staticmethod
    def mT(x):
        return x.mT

    @staticmethod
    def ndim(x):
        return np.ndim(x.data)

    @staticmethod
    def astype(x, dtype):
        return x.astype(dtype)

    @staticmethod
    def dtype(x):
        return x.data.dtype

    @staticmethod
    def shape(x):
        return np.shape(x.data)

    @staticmethod
    def const(like, data):
        return type(like)._leaf(data, False)

    @classmethod
    def _derivative_constant(cls, x, name, *args):
        # A piecewise-constant derivative (relu′, sign, ...) has derivative 0: a constant node.
        kind = type(x)
        return kind._leaf(getattr(kind._math, name)(x.data, *args), False)

    @classmethod
    def step(cls, x):
        return cls._derivative_constant(x, "step")

    @staticmethod
    def gate(g, mask):
        """`FloatMath.gate` on nodes, recorded so it can be differentiated again: g itself or
        a constant 0 for a Value, a `where` on g for a Tensor (0 · inf is 0 here too)."""
        data = mask.data
        if isinstance(data, float):
            return g if data else type(g)._leaf(0.0, False)
        from .tensor import where
        return where(np.asarray(data) != 0, g, 0.0)

    @classmethod
    def relu_grad(cls, g, x):
        return cls.gate(g, cls.step(x))

    @classmethod
    def leaky_step(cls, x, slope):
        return cls._derivative_constant(x, "leaky_step", slope)

    @classmethod
    def sign(cls, x):
        return cls._derivative_constant(x, "sign")

    @staticmethod
    def where(cond, a, b):
        from .tensor import where
        return where(cond, a, b)

    @staticmethod
    def log_base(a, b):
        """`FloatMath.log_base` on nodes: log(a + s)·(1 − s) with s = [a = 0 and b ≥ 0] a
        constant, so both the value and its derivatives are 0 where s = 1."""
        kind = type(a)
        data_b = getattr(b, "data", b)
        if isinstance(a.data, float):
            s = 1.0 if a.data == 0 and data_b >= 0 else 0.0
        else:
            s = ((a.data == 0) & (np.asarray(data_b) >= 0)).astype(a.data.dtype)
        return (a + kind._leaf(s, False)).log() * kind._leaf(1 - s, False)

    @staticmethod
    def pow_lower(a, b):
        """`FloatMath.pow_lower` on nodes: aᵇ⁻¹, and where b = 0 a constant 0, so its
        derivatives are 0 there too. a⁻¹ is never formed there: a is replaced by 1 first (a
        selection: shifting a by a constant would make a nan or subnormal a give 0·a⁻¹ = nan,
        and −0.0 + 0 would lose the sign of (−0)ᵇ⁻¹)."""
        data_b = getattr(b, "data", b)
        if isinstance(a.data, float):
            return type(a)._leaf(0.0, False) if data_b == 0 else a ** (b - 1)
        zero_b = np.asarray(data_b) == 0
        if not zero_b.any():
            return a ** (b - 1)
        from .tensor import where
        return where(zero_b, 0.0, where(zero_b, 1.0, a) ** (b - 1))

    @staticmethod
    def scatter(g, index, shape):
        return g.scatter(index, shape)

    @staticmethod
    def concatenate(xs, axis):
        from .tensor import concatenate
        return concatenate(xs, axis=axis)
