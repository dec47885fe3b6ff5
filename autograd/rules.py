"""Every primitive op, written once: its forward computation beside its local derivatives.

Each VJP has the signature ``vjp(m, g, y, *xs, **ctx)``: g = ∂root/∂y is the gradient flowing in
from above, y the op's output, xs its inputs, m the math namespace (`autograd.backends`). It
returns g times the local derivative ∂y/∂x_i — the chain rule's "upstream × local". The same
function serves `Value` (floats), `Tensor` (arrays) and higher-order derivatives (nodes).
Broadcasting is undone by the graph core, not here.
"""
from __future__ import annotations

import numpy as np

from . import kernels
from .core import Node, Op

# --- arithmetic ---------------------------------------------------------------------------

ADD = Op("add",
         lambda m, a, b: a + b,
         (lambda m, g, y, a, b: g,                         # ∂(a+b)/∂a = 1
          lambda m, g, y, a, b: g),                        # ∂(a+b)/∂b = 1
         ("1", "1"), symbol="+")

SUB = Op("sub",
         lambda m, a, b: a - b,
         (lambda m, g, y, a, b: g,                         # ∂(a−b)/∂a = 1
          lambda m, g, y, a, b: -g),                       # ∂(a−b)/∂b = −1
         ("1", "−1"), symbol="−")

MUL = Op("mul",
         lambda m, a, b: a * b,
         (lambda m, g, y, a, b: g * b,                     # ∂(ab)/∂a = b
          lambda m, g, y, a, b: g * a),                    # ∂(ab)/∂b = a
         ("b", "a"), symbol="×")

DIV = Op("div",
         lambda m, a, b: m.div(a, b),
         (lambda m, g, y, a, b: m.div(g, b),               # ∂(a/b)/∂a = 1/b
          # ∂(a/b)/∂b = −a/b² = −y/b, formed before g multiplies it (as PyTorch): g·y can
          # overflow where the product is finite (g = 1e308, y = 1.9, b = 1.5)
          lambda m, g, y, a, b: g * -m.div(y, b)),
         ("1/b", "−a/b²"), symbol="÷")

POW = Op("pow",
         lambda m, a, b: m.pow(a, b),
         # ∂(aᵇ)/∂a = b·aᵇ⁻¹, 0 at b = 0; ∂(aᵇ)/∂b = aᵇ·ln a, 0 at a = 0, b ≥ 0: where aᵇ is
         # constant the upstream gradient is not passed at all (0, even for an inf upstream).
         # The local derivative is formed before g multiplies it (as PyTorch): g·b or g·aᵇ
         # can overflow where the product is finite (b = 1e308, aᵇ⁻¹ = 0: g·(b·0) = 0).
         (lambda m, g, y, a, b: m.gate(g, m.const(b, _flag(_data(b) != 0, b)))
          * (b * m.pow_lower(a, b)),
          lambda m, g, y, a, b: m.gate(g, m.const(b, _flag(
              (_data(a) != 0) | (_data(b) < 0), b))) * (y * m.log_base(a, b))),
         ("b·a^(b−1)", "a^b·ln(a)"), symbol="**")

NEG = Op("neg",
         lambda m, x: -x,
         (lambda m, g, y, x: -g,),                         # ∂(−x)/∂x = −1
         ("−1",), symbol="−")

# --- elementwise functions ----------------------------------------------------------------

EXP = Op("exp",
         lambda m, x: m.exp(x),
         (lambda m, g, y, x: g * y,),                      # (eˣ)′ = eˣ = y
         ("exp(u)",))

LOG = Op("log",
         lambda m, x: m.log(x),
         (lambda m, g, y, x: m.div(g, x),),                # (ln x)′ = 1/x
         ("1/u",))

SQRT = Op("sqrt",
          lambda m, x: m.sqrt(x),
          (lambda m, g, y, x: m.div(g * 0.5, y),),         # (√x)′ = 1/(2√x) = 1/(2y)
          ("1/(2·√u)",))

# The square root that ends a standard deviation: where the variance is 0 (a constant
# feature) the derivative is taken as 0, as PyTorch's std, not inf (which, times the variance's
# zero derivative, would make every gradient nan).
STD_ROOT = Op("sqrt",
              lambda m, x: m.sqrt(x),
              (lambda m, g, y, x: _root_vjp(m, g, y),),
              ("1/(2·√u), 0 at u = 0",))


def _root_vjp(m, g, y):
    # g/(2y) where y ≠ 0, else 0 — dividing by 1 there, so no 0/0 is ever formed
    mask = _flag(_data(y) != 0, y)
    return m.div(m.gate(g * 0.5, m.const(y, mask)), y + m.const(y, 1 - mask))

# tanh′ = 1 − tanh² and σ′ = σ(1 − σ); where the unit saturates, 1 − y cancels to a few
# bits, so both are computed without that subtraction: 1 − σ(u) = σ(−u), and
# 1 − tanh²(u) = 4·σ(2u)·σ(−2u).
TANH = Op("tanh",
          lambda m, x: m.tanh(x),
          (lambda m, g, y, x: g * (4 * m.sigmoid(2 * x) * m.sigmoid(-2 * x)),),
          ("1 − tanh²(u)",))

SIGMOID = Op("sigmoid",
             lambda m, x: m.sigmoid(x),
             (lambda m, g, y, x: g * (y * m.sigmoid(-x)),),
             ("σ(u)·(1 − σ(u))",))


def _relu_vjp_summing(m, g, y, x):
    made = kernels.relu_grad_sums(g, x)       # (None for nodes: create_graph)
    return (m.relu_grad(g, x), None) if made is None else made


RELU = Op("relu",
          lambda m, x: m.relu(x),
          (lambda m, g, y, x: m.relu_grad(g, x),),         # gate(g, step(x)): relu′ = [x > 0]
          ("[u > 0]",), summing={0: _relu_vjp_summing})

LEAKY_RELU = Op("leaky_relu",
                lambda m, x, slope: m.leaky_relu(x, slope),
                (lambda m, g, y, x, slope: g * m.leaky_step(x, slope),),   # 1 or slope
                ("1 if u > 0 else slope",))

SOFTPLUS = Op("softplus",
              lambda m, x: m.softplus(x),
              (lambda m, g, y, x: g * m.sigmoid(x),),      # (ln(1 + eˣ))′ = σ(x)
              ("σ(u)",))

ABS = Op("abs",
         lambda m, x: m.abs(x),
         (lambda m, g, y, x: g * m.sign(x),),              # |x|′ = sign(x), 0 at 0
         ("sign(u)",))

SIN = Op("sin",
         lambda m, x: m.sin(x),
         (lambda m, g, y, x: g * m.cos(x),),               # sin′ = cos
         ("cos(u)",))

COS = Op("cos",
         lambda m, x: m.cos(x),
         (lambda m, g, y, x: -(g * m.sin(x)),),            # cos′ = −sin
         ("−sin(u)",))

#: Elementwise functions shared by Value and Tensor: method name → op.
UNARY = {"exp": EXP, "log": LOG, "sqrt": SQRT, "tanh": TANH, "sigmoid": SIGMOID, "relu": RELU,
         "softplus": SOFTPLUS, "abs": ABS, "sin": SIN, "cos": COS}

#: Python operators shared by Value and Tensor: __name__ and __rname__ → op.
OPERATORS = {"add": ADD, "sub": SUB, "mul": MUL, "truediv": DIV, "pow": POW}


def install(cls, binary, unary, operators=OPERATORS):
    """Give a node class its operators (``__add__``, ``__radd__``, …) and elementwise methods
    (``exp``, ``tanh``, …) from the tables above, through the class's own method factories."""
    for name, op in operators.items():
        setattr(cls, f"__{name}__", binary(op))
        setattr(cls, f"__r{name}__", binary(op, reflected=True))
    for name, op in UNARY.items():
        setattr(cls, name, unary(op))
    cls.__abs__ = cls.abs

# --- array ops (Tensor) -----------------------------------------------------------------


def _restore_reduced(m, g, shape, axis, keepdims):
    """Broadcast the gradient of a reduction over ``axis`` back to the input's ``shape``."""
    if axis is not None and not keepdims:
        axes = (axis,) if isinstance(axis, int) else axis
        kept = list(shape)
        for ax in axes:
            kept[ax % len(shape)] = 1
        g = m.reshape(g, tuple(kept))
    return m.broadcast_to(g, shape)


SUM_SQUARES = Op("sum_squares",
                 lambda m, x: m.sum_squares(x),
                 (lambda m, g, y, x: (2 * g) * x,),        # ∂(Σ xᵢ²)/∂xᵢ = 2xᵢ
                 ("2u",), symbol="Σ²")

SUM = Op("sum",
         lambda m, x, axis=None, keepdims=False: m.sum(x, axis=axis, keepdims=keepdims),
         (lambda m, g, y, x, axis=None, keepdims=False:    # ∂Σx/∂xᵢ = 1
          _restore_reduced(m, g, m.shape(x), axis, keepdims),),
         ("1",), symbol="Σ")


def _extreme_vjp(m, g, y, x, axis=None, keepdims=False):
    # max or min: ties share the gradient equally, as JAX's and PyTorch's amax/amin.
    shape = m.shape(x)
    y_full = _restore_reduced(m, y, shape, axis, keepdims)
    mask = m.const(x, _tie_mask(_data(x), _data(y_full), axis))
    return _restore_reduced(m, g, shape, axis, keepdims) * mask


def _data(x):
    """The raw array of a node; an ndarray as it is (its own ``.data`` is a memory buffer)."""
    return x.data if isinstance(x, Node) else x


def _flag(cond, like):
    """A 0/1 mask of ``cond`` in ``like``'s own kind: a float for floats, else an array of
    its dtype (bool would promote a float32 gradient to float64 as a node)."""
    data = _data(like)
    if isinstance(data, float):
        return 1.0 if cond else 0.0
    import numpy as np
    return np.asarray(cond).astype(np.result_type(data, np.float32))


def _tie_mask(x, y_full, axis):
    import numpy as np
    hits = (x == y_full).astype(x.dtype)
    return hits / np.sum(hits, axis=axis, keepdims=True)


MAX = Op("max",
         lambda m, x, axis=None, keepdims=False: _array_max(x, axis, keepdims),
         (_extreme_vjp,),
         ("[u = max] / #ties",))

MIN = Op("min",
         lambda m, x, axis=None, keepdims=False: x.min(axis=axis, keepdims=keepdims),
         (_extreme_vjp,),
         ("[u = min] / #ties",))


def _array_max(x, axis, keepdims):
    return x.max(axis=axis, keepdims=keepdims)


def _logsumexp_shift(m, x, axis):
    """logsumexp's shift: the maximum over ``axis`` (kept), 0 where it is not finite (a row of
    −inf) or over nothing."""
    shift = x.max(axis=axis, keepdims=True) if x.size else 0.0
    return np.where(np.isfinite(shift), shift, 0.0)


# A constant made from an input's numbers: no gradient flows through it (its VJP, never called
# by a backward pass, is 0). Recorded as an op only while `autograd.trace` records constants, so
# a replay computes it from the new numbers.
LOGSUMEXP_SHIFT = Op("logsumexp_shift", _logsumexp_shift,
                     (lambda m, g, y, x, axis: x * 0,),
                     ("0 (a constant)",), symbol="max")

# Tensor.detach while `autograd.trace` records: the same data as a constant, an op so that a
# replay takes it from the new numbers (a stop-gradient, as jax.lax.stop_gradient is traced)
DETACH = Op("detach", lambda m, x: x, (lambda m, g, y, x: x * 0,), ("0 (a constant)",))


RESHAPE = Op("reshape",
             lambda m, x, shape: m.reshape(x, shape),
             (lambda m, g, y, x, shape: m.reshape(g, m.shape(x)),),
             ("1 (same numbers, new shape)",))


def _inverse_axes(axes):
    inverse = [0] * len(axes)
    for i, ax in enumerate(axes):
        inverse[ax] = i
    return tuple(inverse)


TRANSPOSE = Op("transpose",
               lambda m, x, axes: m.transpose(x, axes),
               (lambda m, g, y, x, axes: m.transpose(g, _inverse_axes(axes)),),
               ("1 (entries moved)",), symbol="ᵀ")


def _matmul_vjp_a(m, g, y, a, b):
    """∂(a@b)/∂a: g @ bᵀ, with numpy's vector and batch conventions."""
    if m.ndim(b) == 1:
        if m.ndim(a) == 1:
            return g * b
        return m.expand_dims(g, -1) * b                   # outer(g, b), batched
    if m.ndim(a) == 1:
        return m.squeeze(m.matmul(m.expand_dims(g, -2), m.mT(b)), -2)
    return m.matmul(g, m.mT(b))


def _matmul_vjp_b(m, g, y, a, b):
    """∂(a@b)/∂b: aᵀ @ g, with numpy's vector and batch conventions."""
    if m.ndim(a) == 1:
        if m.ndim(b) == 1:
            return g * a
        return m.expand_dims(a, -1) * m.expand_dims(g, -2)  # outer(a, g), batched
    if m.ndim(b) == 1:
        return m.squeeze(m.matmul(m.mT(a), m.expand_dims(g, -1)), -1)
    return m.matmul(m.mT(a), g)


MATMUL = Op("matmul",
            lambda m, a, b: m.matmul(a, b),
            (_matmul_vjp_a, _matmul_vjp_b),
            ("(·) @ bᵀ", "aᵀ @ (·)"), symbol="@")

GETITEM = Op("getitem",
             lambda m, x, index: m.getitem(x, index),
             (lambda m, g, y, x, index: m.scatter(g, index, m.shape(x)),),
             ("1 at the picked entries",), symbol="[]")

SCATTER = Op("scatter",
             lambda m, g, index, shape: m.scatter(g, index, shape),
             (lambda m, gy, y, g, index, shape: m.getitem(gy, index),),
             ("1 at the written entries",))

WHERE = Op("where",
           lambda m, a, b, cond: m.where(cond, a, b),
           (lambda m, g, y, a, b, cond: m.where(cond, g, 0.0),
            lambda m, g, y, a, b, cond: m.where(cond, 0.0, g)),
           ("[cond]", "[not cond]"))

CLIP = Op("clip",
          lambda m, x, lo, hi: _clip(x, lo, hi),
          (lambda m, g, y, x, lo, hi: m.gate(g, m.const(x, _inside(_data(x), lo, hi))),),
          ("[lo ≤ u ≤ hi]",))


def _clip(x, lo, hi):
    import numpy as np
    return np.clip(x, lo, hi)


def _inside(x, lo, hi):
    import numpy as np
    inside = np.ones_like(x)
    if lo is not None:
        inside = inside * (x >= lo)
    if hi is not None:
        inside = inside * (x <= hi)
    return inside


SOFTMAX = Op("softmax",
             lambda m, x, axis: m.softmax(x, axis),
             # J = diag(y) − y yᵀ, so gᵀJ = y ⊙ (g − Σ g ⊙ y)
             (lambda m, g, y, x, axis: y * (g - m.sum(g * y, axis=axis, keepdims=True)),),
             ("diag(y) − y·yᵀ",))

LOG_SOFTMAX = Op("log_softmax",
                 lambda m, x, axis: m.log_softmax(x, axis),
                 # J = I − 1·softmaxᵀ, so gᵀJ = g − softmax ⊙ Σ g
                 (lambda m, g, y, x, axis: g - m.exp(y) * m.sum(g, axis=axis, keepdims=True),),
                 ("I − softmax(u)ᵀ",))


class _EachInput:
    """VJPs of an op with any number of inputs: ``vjps[i]`` binds the input's index."""

    __slots__ = ("rule",)

    def __init__(self, rule):
        self.rule = rule

    def __getitem__(self, i):
        rule = self.rule
        return lambda m, g, y, *xs, **ctx: rule(i, m, g, y, *xs, **ctx)

    def __len__(self):
        return 0

    def __iter__(self):
        return iter(())


def _concatenate_vjp(i, m, g, y, *xs, axis):
    import numpy as np
    sizes = [m.shape(x)[axis] for x in xs]
    start = int(np.sum(sizes[:i]))
    index = [slice(None)] * m.ndim(g)
    index[axis] = slice(start, start + sizes[i])
    return m.getitem(g, tuple(index))


CONCATENATE = Op("concatenate",
                 lambda m, *xs, axis: m.concatenate(xs, axis),
                 (), symbol="concat")
CONCATENATE.vjps = _EachInput(_concatenate_vjp)

BROADCAST_TO = Op("broadcast_to",
                  lambda m, x, shape: m.broadcast_to(x, shape),
                  # each input entry was copied to many outputs: the core's unbroadcast sums g
                  (lambda m, g, y, x, shape: g,),
                  ("1 (copied)",))

ASTYPE = Op("astype",
            lambda m, x, dtype: m.astype(x, dtype),
            (lambda m, g, y, x, dtype: m.astype(g, m.dtype(x)),),
            ("1 (new precision)",))


# --- softmax cross-entropy: one op for the classifier's loss (Tensor) -------------------------

def _row_max(z):
    """max over each row of z (n × k), as a column. numpy reduces a short last axis row by row
    (~14 µs for 200 × 10); for few classes the elementwise maximum down the columns of the
    transposed copy is the same numbers ~5× faster."""
    if z.shape[1] <= 64:
        return np.ascontiguousarray(z.T).max(axis=0)[:, None]
    return z.max(axis=1, keepdims=True)


def _shifted_exp(z):
    """(e, m): e = exp(z − m) with m the row maxima, so every row of e has a 1 and none
    overflows."""
    shifted = kernels.row_shift(z)          # z − m and m in one compiled pass, if loaded
    if shifted is None:
        m = _row_max(z)
        e = z - m
    else:
        e, m = shifted
    np.exp(e, out=e)
    return e, m


def mean_factor(n):
    """1/n for a mean over n rows; nan for none (the mean of nothing, as numpy and PyTorch)."""
    return 1.0 / n if n else float("nan")


def cross_entropy_forward(z, target, labels):
    """−1/n Σᵢ Σⱼ tᵢⱼ log softmax(zᵢ)ⱼ with log softmax(zᵢ)ⱼ = zᵢⱼ − mᵢ − log Σₗ exp(zᵢₗ − mᵢ).
    With labels only the picked entries' logs are formed."""
    return cross_entropy_parts(z, target, labels)[0]


def cross_entropy_parts(z, target, labels):
    """(J, e, s): the cost of `cross_entropy_forward` with e = exp(z − m) and its row sums s,
    so softmax(z) = e / s — which the backward pass then needs to form only once more."""
    e, m = _shifted_exp(z)
    s = e.sum(axis=1, keepdims=True)
    log_sum = np.log(s)
    n = z.shape[0]
    if labels:
        rows = np.arange(n)
        picked = (z[rows, target] - m[:, 0]) - log_sum[:, 0]
        return -(picked.sum()) * mean_factor(n), e, s
    log_p = z - m
    log_p -= log_sum
    return (log_p * target).sum() * -mean_factor(n), e, s


def _softmax(z):
    e, _ = _shifted_exp(z)
    e /= e.sum(axis=1, keepdims=True)
    return e


def _cross_entropy_vjp(m, g, y, z, target, labels, _exp=None, _exp_sum=None):
    n = m.shape(z)[0]
    scale = g * mean_factor(n)
    if isinstance(z, np.ndarray):                 # arrays: in place on a fresh softmax
        if labels and _exp is not None:
            p = kernels.cross_entropy_grad(_exp, _exp_sum, target, scale)   # one pass
            if p is not None:
                return p
        # e / s kept by the forward pass: the numbers _softmax(z) computes, not recomputed
        p = _softmax(z) if _exp is None else _exp / _exp_sum
        if labels:
            p[np.arange(n), target] -= 1
        else:
            p *= target.sum(axis=1, keepdims=True)
            p -= target
        p *= scale
        return p
    # nodes (create_graph=True): the same formula, recorded, so it can be differentiated again
    p = m.softmax(z, 1)
    if labels:
        onehot = np.zeros(m.shape(z), dtype=m.dtype(z))
        onehot[np.arange(n), target] = 1
        return (p - onehot) * scale
    return (p * target.sum(axis=1, keepdims=True) - target) * scale


def _cross_entropy_saving(m, z, target, labels):
    """(J, the parts the VJP reuses): e = exp(z − m) and its row sums s (softmax = e / s).
    Labels outside 0..k−1 are a ValueError here, so a replay (`autograd.trace`), which feeds
    new labels straight to this function, refuses them as the graph does (a negative label
    would index from the end)."""
    k = z.shape[1]
    shifted = kernels.row_shift_pick(z, target) if labels else None
    if shifted is not None:     # the label check, z − m and the picked logits in one pass
        e, m, picked, in_range = shifted
    else:
        in_range = not labels or kernels.labels_in_range(target, k)
    if not in_range:
        raise ValueError(f"softmax_cross_entropy: class labels must lie in 0..{k - 1}, got "
                         f"{target.min()}..{target.max()}")
    if shifted is None:
        J, e, s = cross_entropy_parts(z, target, labels)
        return J, {"_exp": e, "_exp_sum": s}
    np.exp(e, out=e)
    s = e.sum(axis=1, keepdims=True)
    J = -((picked - np.log(s)[:, 0]).sum()) * mean_factor(z.shape[0])
    return J, {"_exp": e, "_exp_sum": s}


def _cross_entropy_vjp_summing(m, g, y, z, target, labels, _exp=None, _exp_sum=None):
    made = None
    if labels and _exp is not None and isinstance(z, np.ndarray):
        made = kernels.cross_entropy_grad(_exp, _exp_sum, target, g * mean_factor(z.shape[0]),
                                          sums=True)
    if made is None:
        return _cross_entropy_vjp(m, g, y, z, target, labels, _exp, _exp_sum), None
    return made


SOFTMAX_CROSS_ENTROPY = Op("softmax_cross_entropy",
                           lambda m, z, target, labels: cross_entropy_forward(z, target, labels),
                           (_cross_entropy_vjp,),
                           ("(softmax(u)·Σt − t) / n",), symbol="CE",
                           saving=_cross_entropy_saving,
                           summing={0: _cross_entropy_vjp_summing})
