"""Fused elementwise kernels: numba-compiled loops when numba is installed, numpy otherwise.

A numpy expression over arrays makes one pass over memory per operation: Adam's update is
eleven passes and L2's gradient three, each reading and writing whole arrays. A compiled loop
makes one pass and keeps every intermediate in a register — the difference between ~140 µs and
~35 µs per step for a 784 × 100 float32 weight matrix on the benchmark machine.

Each kernel computes the same floats as its numpy fallback, bit for bit: the same operations in
the same order in the array's dtype, every scalar rounded to that dtype first (as numpy does
with a Python float), and no fused multiply-add (numba contracts nothing unless asked for
fastmath). ``tests/test_kernels.py`` checks this on both paths. Both paths also set Adam's
subnormal moments to 0 (see `flush_subnormal`). Arrays the loops do not take —
another layout or shape, float16, a non-native byte order, integers — go the numpy way, so
both paths give the same numbers and the same errors.

Numba is imported on the first call of a kernel over `LARGE` elements or more, not with
chainrule (its import takes ~0.3 s), and compiled code is cached on disk next to this file (or
in numba's user cache). Set the environment variable ``CHAINRULE_KERNELS=numpy`` to use the
numpy fallbacks.
"""
from __future__ import annotations

import functools
import os
import warnings

import numpy as np

_loaded = None           # None: not tried yet; False: numpy; else the module of compiled loops


def _load():
    global _loaded
    _loaded = False
    if os.environ.get("CHAINRULE_KERNELS", "").lower() != "numpy":
        try:
            from . import _compiled
            _loaded = _compiled
        except ImportError:         # numba not installed: the numpy fallbacks
            pass
        except Exception as error:  # e.g. no writable folder for numba's cache
            warnings.warn(f"chainrule's compiled kernels are unavailable ({error}); using "
                          f"numpy (the same numbers, slower)", RuntimeWarning, stacklevel=3)
    return _loaded


# Below this many elements of work numba is not imported: its ~0.3 s import and cache load
# would not be paid back by a small network's training (scikit-learn's digits fit in ~0.6 s).
# Once imported, work of every size runs compiled.
LARGE = 1 << 15


def _kernels(size):
    """The compiled loops for work over ``size`` elements, or False for numpy."""
    if _loaded is None:
        return _load() if size >= LARGE else False
    return _loaded


def compiled(size=LARGE):
    """True when work over ``size`` elements runs compiled (numba), False when numpy does."""
    return bool(_kernels(size))


def in_use():
    """True once the compiled loops are loaded (some work was large enough), so running."""
    return bool(_loaded)


# The dtypes the loops run on: numba has no float16 on the CPU and reads no non-native byte
# order ('>f4'), and it would run an integer array's float arithmetic truncated, silently.
_FLOATS = frozenset((np.dtype(np.float32), np.dtype(np.float64)))
_ndarray = np.ndarray          # (a global name, not an attribute lookup, on the hot path)


def _fusable(w, *others):
    """w and the others: C-contiguous numpy arrays of one shape and one dtype, float32 or
    float64 in native byte order (the loops index the flat buffers, so any other layout, a
    dtype mix or a broadcast shape takes the numpy path)."""
    if type(w) is not _ndarray or not w.flags.c_contiguous:
        return False
    dtype, shape = w.dtype, w.shape
    for a in others:
        if (type(a) is not _ndarray or (a.dtype is not dtype and a.dtype != dtype)
                or a.shape != shape or not a.flags.c_contiguous):
            return False
    return dtype in _FLOATS


@functools.lru_cache(maxsize=64)
def _adam_constants(dtype, beta_1, beta_2, epsilon):
    """β₁, 1−β₁, β₂, 1−β₂, ε rounded to the dtype, as numpy rounds a Python float operand."""
    t = dtype.type
    return t(beta_1), t(1 - beta_1), t(beta_2), t(1 - beta_2), t(epsilon)


def _decay_arguments(dtype, decay):
    """The loops' (d, whether to add d·w to g) for ``decay`` (None: nothing added)."""
    return (dtype.type(0), False) if decay is None else (dtype.type(decay), True)


@functools.lru_cache(maxsize=8)
def _flush_constants(dtype):
    """(the dtype's smallest normal number, 0): moments below it are set to 0."""
    return dtype.type(np.finfo(dtype).tiny), dtype.type(0)


def adam_update(w, g, m, v, beta_1, beta_2, epsilon, lr_t, scratch=None, work=None,
                decay=None):
    """One Adam step in place, scikit-learn's arithmetic in w's dtype:

        m ← β₁m + (1−β₁)g,   v ← β₂v + (1−β₂)g²,   w ← w + (−α_t m) / (√v + ε).

    ``decay``: a factor d to use g + d·w for g (an L2 term's gradient, added in the same
    pass when compiled; g itself is left as it is). The floats of `add_scaled` (g, w, d)
    followed by the step.

    ``w, m, v`` are arrays of one shape and dtype, updated in place; ``g`` has their shape and
    is rounded to their dtype first (a float64 gradient of a float32 w: float32 arithmetic,
    as `nn.optim.Adam`'s packed copy does). ``scratch`` (two arrays like w) spares the numpy
    fallback its temporaries. ``work``: the size of the whole update this is part of (all of
    an optimiser's parameters; w's size if None), which decides whether numba is worth
    importing (`LARGE`).
    """
    kernels = _kernels(w.size if work is None else work)
    if decay is not None and not (kernels and _fusable(w, g, m, v)):
        g, decay = decayed(g, w, decay), None
    if kernels and not _fusable(w, g, m, v):
        g = _rounded(g, w.dtype)
        kernels = _fusable(w, g, m, v) and kernels
    if kernels:
        dtype = w.dtype
        try:
            kernels.adam_update(w.reshape(-1), g.reshape(-1), m.reshape(-1), v.reshape(-1),
                                *_adam_constants(dtype, beta_1, beta_2, epsilon),
                                dtype.type(-lr_t), *_flush_constants(dtype),
                                *_decay_arguments(dtype, decay))
            return
        except kernels.TypingError:         # read-only w, m or v: numpy's error, below
            pass
    if decay is not None:
        g = decayed(g, w, decay)
    g = _rounded(g, w.dtype)
    t1, t2 = scratch if scratch is not None else (np.empty_like(w), np.empty_like(w))
    if (np.may_share_memory(g, m) or np.may_share_memory(g, v)
            or np.may_share_memory(g, t1) or np.may_share_memory(g, t2)):
        g = g.copy()        # the passes below write m, v and the scratch while reading g
    w += adam_step_numpy(m, v, g, t1, t2, beta_1, beta_2, epsilon, lr_t)


def adam_constants(dtype, beta_1, beta_2, epsilon):
    """The constants `adam_update` hands its compiled loop for ``dtype``: β₁, 1−β₁, β₂, 1−β₂,
    ε rounded to it, then the flush's smallest normal number and 0 (for `adam_update_flat`)."""
    dtype = np.dtype(dtype)
    return _adam_constants(dtype, beta_1, beta_2, epsilon) + _flush_constants(dtype)


def adam_update_flat(w, g, m, v, constants, minus_lr_t, decay=None):
    """`adam_update`'s compiled loop called directly, for a caller that has checked what
    `adam_update` checks: the compiled loops loaded (`compiled`), and w, g, m, v flat,
    C-contiguous, writeable where written, of one dtype and size. ``constants`` from
    `adam_constants`, ``minus_lr_t`` = −α_t and ``decay`` (None, or d for g + d·w) in that
    dtype. The same floats, without the per-call checks (~7 µs a step for four parameters,
    in a training loop)."""
    _loaded.adam_update(w, g, m, v, *constants[:5], minus_lr_t, *constants[5:],
                        *((constants[6], False) if decay is None else (decay, True)))


def sgd_update(w, g, v, lr, momentum, nesterov, work=None, decay=None):
    """One SGD step in place, scikit-learn's arithmetic in w's dtype, in one compiled pass:

        v ← μ·v − α·g;   w ← w + (μ·v − α·g if nesterov else v),

    a subnormal velocity set to 0 as Adam's moments are (`flush_subnormal`). ``decay`` as in
    `adam_update` (g + d·w for g, in the same pass).

    Returns False, changing nothing, when the loop does not apply (numba absent or not yet
    worth importing; arrays not all C-contiguous float32 or float64 of one shape and dtype;
    a read-only w or v): the caller's numpy rule then gives these same floats, or numpy's
    error. ``work`` as in `adam_update`."""
    kernels = _kernels(w.size if work is None else work)
    if not (kernels and _fusable(w, g, v)):
        return False
    t = w.dtype.type
    try:
        kernels.sgd_update(w.reshape(-1), g.reshape(-1), v.reshape(-1), t(momentum), t(lr),
                           bool(nesterov), *_flush_constants(w.dtype),
                           *_decay_arguments(w.dtype, decay))
    except kernels.TypingError:             # read-only w or v
        return False
    return True


def _rounded(g, dtype):
    """g as an array of ``dtype`` (itself if it is one already): numpy's same-kind cast, as
    ``np.copyto`` rounds a gradient into Adam's packed buffer."""
    if type(g) is np.ndarray and g.dtype == dtype:
        return g
    return np.asarray(g).astype(dtype, casting="same_kind")


def adam_step_numpy(m, v, g, t1, t2, beta_1, beta_2, epsilon, lr_t):
    """The numpy fallback of `adam_update` without its last line: m and v updated in place and
    the step −α_t m/(√v + ε) written into t2 (returned), t1 the scratch. scikit-learn's
    operations in its order, so the same floats as scikit-learn's in float64. (In float32
    scikit-learn's step is computed in float64 — NumPy 2 promotes its np.float64 learning rate —
    and rounded once; here it stays float32, so the two can differ by an ulp.)"""
    m *= beta_1
    m += np.multiply(g, 1 - beta_1, out=t1)
    v *= beta_2
    np.multiply(g, g, out=t1)
    t1 *= 1 - beta_2
    v += t1
    flush_subnormal(m, t1)
    flush_subnormal(v, None)           # (v ≥ 0: no absolute value needed)
    np.sqrt(v, out=t1)
    t1 += epsilon
    np.multiply(m, -lr_t, out=t2)
    t2 /= t1
    return t2


def flush_subnormal(x, scratch):
    """x's subnormal entries (0 < |x| < the smallest normal number) set to 0, scratch taking
    |x| (None: x is known to be ≥ 0).

    A moment whose gradient stays exactly 0 (the weights of an always-blank pixel, without
    L2) decays by β₁ per step into the subnormal range and sticks there: 0.9·k ulps rounds
    back to k for k ≤ 4, so it never reaches 0. Arithmetic on subnormal floats is slow on
    x86 (measured: Fashion-MNIST without L2 ran 0.33 s/epoch from the third epoch on, with
    2,949 subnormal moments, against 0.26 s). Set to 0 they change a step by at most
    α_t·(smallest normal)/ε (~1e-33 in float32), below a normal weight's resolution."""
    if x.dtype.kind == "f" and x.size:
        size = x if scratch is None else np.abs(x, out=scratch)
        np.copyto(x, 0, where=size < np.finfo(x.dtype).tiny)


def add_scaled(g, w, factor):
    """g ← g + w·factor in place (g an array; w of g's shape), ``factor`` rounded to w's
    dtype: the floats of ``g += w * factor`` without the temporary (w·factor in w's dtype,
    then added into g's, also when the two differ)."""
    kernels = _kernels(g.size)
    if kernels and _fusable(g, w):
        try:
            kernels.add_scaled(g.reshape(-1), w.reshape(-1), g.dtype.type(factor))
            return
        except kernels.TypingError:         # a read-only g: numpy's error, below
            pass
    g += w * np.asarray(factor, dtype=w.dtype)


def decayed(g, w, factor):
    """g + w·factor as a new array (g is left as it is): `add_scaled`'s floats, on a copy."""
    g = np.array(g, copy=True)
    add_scaled(g, w, factor)
    return g


def back_substitute(code, pa, pb, da, db, g, reached, first_op, constant):
    """The scalar engine's plain reverse sweep over one tape, in place (`autograd.tape.sweep`):
    for each entry i from the last down that the pass reached and an op made,

        g[p] ← g[p] + g[i]·∂i/∂p        (g[p] ← g[i]·∂i/∂p for p's first contribution)

    for its inputs p = pa[i], pb[i] that are not constants, marking p reached — the per-edge
    sweep's order, so its sums. Returns False, changing nothing, when the compiled loops are not
    loaded (the caller decides when they are worth importing: `autograd.tape.SWEEP_IMPORT`)."""
    if not _loaded:
        return False
    _loaded.back_substitute(code, pa, pb, da, db, g, reached, first_op, constant)
    return True


def _rows(z):
    """z a C-contiguous float32/float64 matrix with a row to take a maximum of."""
    return (type(z) is _ndarray and z.ndim == 2 and z.shape[1] > 0 and z.flags.c_contiguous
            and z.dtype in _FLOATS)


def _labels(target, n=None):
    """target an array of integer class labels the loops can read (native byte order: an IDX
    file's big-endian integers are not), one per row when ``n`` is given."""
    return (type(target) is _ndarray and target.dtype.kind in "iu" and target.dtype.isnative
            and (n is None or target.shape == (n,)))


def row_shift(z):
    """(z − m, m) with m the row maxima of z as a column (a nan in a row is its maximum, as
    numpy's), in one compiled pass: the numbers of ``z - z.max(axis=1, keepdims=True)``
    (subtraction is exact per entry; which of tied maxima is taken does not change m). None
    when the compiled loop does not apply."""
    kernels = _loaded
    if not kernels or not _rows(z):
        return None
    e, m = np.empty_like(z), np.empty((z.shape[0], 1), dtype=z.dtype)
    kernels.row_shift(z, e, m)
    return e, m


def row_shift_pick(z, target):
    """`row_shift` for softmax cross-entropy with integer class labels ``target``, in one
    compiled pass that first checks the labels: ``(z − m, m, picked, True)`` with picked_i =
    z[i, target_i] − m_i (exact per entry, the numbers of ``z[range(n), target] - m[:, 0]``),
    or ``(None, None, None, False)`` when a label lies outside 0..k−1 (nothing computed).
    None when the compiled loop does not apply."""
    kernels = _loaded
    if not kernels or not _rows(z) or not _labels(target, z.shape[0]):
        return None
    n = z.shape[0]
    e, m, picked = (np.empty_like(z), np.empty((n, 1), dtype=z.dtype),
                    np.empty(n, dtype=z.dtype))
    if not kernels.row_shift_pick(z, target, e, m, picked):
        return None, None, None, False
    return e, m, picked, True


def argmax_hits(h, labels):
    """How many rows of h have their label as ``h.argmax(axis=1)`` (numpy's: the first largest
    entry, the first nan if there is one), in one compiled pass: a classifier's correct
    predictions. None when the loop does not apply (h not a C-contiguous float matrix of 2 or
    more columns, labels not integers, one per row)."""
    kernels = _loaded
    if not kernels or not _rows(h) or h.shape[1] < 2 or not _labels(labels, h.shape[0]):
        return None
    return int(kernels.argmax_hits(h, labels))


def take_rows(x, rows, out):
    """``x[rows]`` written into ``out`` (rows an integer array; out's first len(rows) rows) and
    returned: one compiled loop when x is a C-contiguous float matrix and the loops are loaded
    (a shuffled batch's rows, copied without numpy's fancy-index machinery and its new array:
    ~190 µs against ~230 for a 200 × 784 float32 batch in the training loop), else numpy's
    fancy index (a new array; numpy's error for a row out of range). ``out`` must not share
    memory with x."""
    if (type(x) is _ndarray and x.ndim == 2 and x.flags.c_contiguous and x.dtype in _FLOATS
            and type(rows) is _ndarray and rows.ndim == 1 and rows.dtype == np.int64
            and type(out) is _ndarray and out.dtype == x.dtype and out.ndim == 2
            and out.flags.c_contiguous and out.shape[1] == x.shape[1]
            and out.shape[0] >= rows.size and _kernels(rows.size * x.shape[1])):
        window = out[:rows.size]
        if _loaded.take_rows(x, rows, window):
            return window
    return x[rows]


def labels_in_range(target, k):
    """Every class label in ``target`` (an integer array) lies in 0..k−1: one compiled pass
    when the loops are loaded, else numpy's min and max."""
    if _loaded and _labels(target) and target.flags.c_contiguous:
        return bool(_loaded.labels_in_range(target.reshape(-1), k))
    return not target.size or bool(target.min() >= 0 and target.max() < k)


def cross_entropy_grad(e, s, target, scale, sums=False):
    """(e / s − onehot(target)) · scale, row by row, in one compiled pass: softmax
    cross-entropy's VJP from the forward pass's e = exp(z − m) and row sums s, for integer
    class labels ``target`` (checked to lie in 0..k−1 by the forward pass). The numbers of
    ``p = e / s; p[range(n), target] -= 1; p *= scale``. None when the loop does not apply.

    ``sums=True``: ``(p, Σᵢ pᵢ)``, its column sums made in the same pass (the gradient of a
    bias added before the cost), the numbers of ``np.add.reduce(p, axis=0)``; None also when
    that order is not numpy's (fewer than 2 columns, or no row)."""
    kernels = _loaded
    if (not kernels or not _rows(e) or type(s) is not _ndarray or s.dtype != e.dtype
            or s.shape != (e.shape[0], 1) or not _labels(target, e.shape[0])):
        return None
    scale = np.asarray(scale)
    if scale.ndim or scale.dtype not in _FLOATS:
        return None
    p = np.empty_like(e)
    if not sums:
        kernels.cross_entropy_grad(e, s, target, scale[()], p)
        return p
    if not _summable(e):
        return None
    column_sums = np.empty(e.shape[1], dtype=e.dtype)
    kernels.cross_entropy_grad_sums(e, s, target, scale[()], p, column_sums)
    return p, column_sums


def bias_cross_entropy(x, b, target, g):
    """Softmax cross-entropy of z = x + b (b along the rows) with integer class labels, and
    its VJP for the upstream gradient g, in three compiled passes around numpy's exp and log:
    ``(z, J, p, Σᵢ pᵢ)`` with p = ∂J/∂z · g and its column sums (b's gradient). The numbers of
    the add, `rules`' cross-entropy forward (row shift and picked logits, e = exp(z − m), its
    row sums s, J = −(Σᵢ picked_i − log s_i)/n, every sum in numpy's order) and its summing
    VJP. None when the loops do not apply; ``(None, None, None, None)`` when a label lies
    outside 0..k−1 (nothing computed)."""
    kernels = _loaded
    if (not kernels or not _rows(x) or not _summable(x) or type(b) is not _ndarray
            or b.dtype != x.dtype or b.shape != x.shape[1:] or not b.flags.c_contiguous
            or not _labels(target, x.shape[0])):
        return None
    n, k = x.shape
    dtype = x.dtype
    mean = 1.0 / n
    scale = np.asarray(g * mean)            # (`rules`: g · mean_factor(n))
    if scale.ndim or scale.dtype not in _FLOATS:
        return None
    z, e, m, picked = (np.empty_like(x), np.empty_like(x), np.empty((n, 1), dtype=dtype),
                       np.empty(n, dtype=dtype))
    if not kernels.bias_shift_pick(x, b, target, z, e, m, picked):
        return None, None, None, None
    np.exp(e, out=e)
    zero = dtype.type(0)
    s = np.empty((n, 1), dtype=dtype)
    kernels.row_sums(e, s, zero)
    log_s = np.log(s)
    p, sums = np.empty_like(e), np.empty(k, dtype=dtype)
    J = kernels.cross_entropy_value_grad_sums(e, s, log_s, picked, target, scale[()],
                                              dtype.type(mean), p, sums, np.empty(n, dtype),
                                              zero)
    return z, np.asarray(dtype.type(J)), p, sums


def _summable(a):
    """numpy's add.reduce over axis 0 of a C-contiguous n × k matrix adds row after row into
    the first (column j: ((a₀ⱼ + a₁ⱼ) + a₂ⱼ) + …) when k > 1; with one column it sums the
    contiguous column pairwise, another order."""
    return a.ndim == 2 and a.shape[0] > 0 and a.shape[1] > 1


def relu_grad(g, x):
    """relu′ applied to the gradient g, as a new array: g where x > 0, else 0 — a selection,
    so an inf or nan in g where relu is flat gives 0 (PyTorch's threshold_backward). None when
    the compiled loop does not apply: the caller's numpy rule, ``g · [x > 0]`` redone as a
    selection when g holds an inf or nan, gives the same numbers (its masked entries are −0
    for negative g where the loop writes +0, which compare equal)."""
    kernels = _kernels(g.size) if type(g) is np.ndarray else False
    if kernels and _fusable(g, x):
        out = np.empty_like(g)
        kernels.relu_grad(g.reshape(-1), x.reshape(-1), out.reshape(-1))
        return out
    return None


def relu_grad_sums(g, x):
    """``(relu_grad(g, x), its column sums)`` in one compiled pass, for a gradient that also
    feeds a bias added before the relu: the sums are ``np.add.reduce(·, axis=0)``'s numbers.
    None when `relu_grad` would not run compiled or `_summable` does not hold."""
    kernels = _kernels(g.size) if type(g) is np.ndarray else False
    if kernels and _fusable(g, x) and _summable(g):
        out = np.empty_like(g)
        sums = np.empty(g.shape[1], dtype=g.dtype)
        kernels.relu_grad_sums(g, x, out, sums)
        return out, sums
    return None


def bias_relu(x, b):
    """``(x + b, maximum(x + b, 0))`` for a C-contiguous float matrix x and a bias b along its
    rows (b of x's dtype, shape (k,)), in one compiled pass: the numbers of numpy's ``x + b``
    and ``np.maximum(·, 0)`` (which gives +0 for −0 and keeps a nan). None when the loop does
    not apply."""
    kernels = _kernels(x.size) if type(x) is np.ndarray else False
    if (kernels and x.ndim == 2 and x.flags.c_contiguous and x.dtype in _FLOATS
            and type(b) is _ndarray and b.dtype == x.dtype and b.shape == x.shape[1:]
            and b.flags.c_contiguous):
        z, a = np.empty_like(x), np.empty_like(x)
        kernels.bias_relu(x, b, z, a)
        return z, a
    return None


# -- numpy's own gemm, exp and log, called from compiled code (nn.fused) ------------------------

_UFUNC_OFFSETS = (32, 40, 48, 64)     # PyUFuncObject: functions, data, ntypes, types (64-bit)


def _ufunc_loop(ufunc, dtype):
    """(address, data) of ``ufunc``'s inner loop for ``dtype`` → ``dtype``, read from the
    ufunc object's table of loops (numpy's public C struct), or None. The struct's loop count
    and type codes must first match what the ufunc says of itself in Python (``ntypes``,
    ``types``), so no pointer is followed from a layout this does not know."""
    import ctypes
    import sys
    if (sys.implementation.name != "cpython" or ctypes.sizeof(ctypes.c_void_p) != 8
            or int(np.__version__.split(".")[0]) < 2):
        return None
    base = id(ufunc)
    ntypes = ctypes.c_int.from_address(base + _UFUNC_OFFSETS[2]).value
    if ntypes != ufunc.ntypes or not 0 < ntypes < 1024:
        return None
    functions, data, types = (ctypes.c_void_p.from_address(base + _UFUNC_OFFSETS[k]).value
                              for k in (0, 1, 3))
    if not functions or not types:
        return None
    nargs = ufunc.nargs
    codes = ctypes.string_at(types, ntypes * nargs)
    expected = bytes(np.dtype(char).num for signature in ufunc.types
                     for char in signature.replace("->", ""))
    if codes != expected:
        return None
    for k in range(ntypes):
        if all(code == dtype.num for code in codes[k * nargs:(k + 1) * nargs]):
            address = ctypes.c_void_p.from_address(functions + 8 * k).value
            extra = ctypes.c_void_p.from_address(data + 8 * k).value if data else None
            return (address, extra or 0) if address else None
    return None


def _gemm_address(dtype):
    """The address of the cblas gemm with 64-bit integers in the BLAS numpy calls, or None."""
    import ctypes
    try:
        library = ctypes.CDLL(np._core._multiarray_umath.__file__)
    except (AttributeError, OSError):
        return None
    letter = "s" if dtype == np.float32 else "d"
    for name in (f"scipy_cblas_{letter}gemm64_", f"cblas_{letter}gemm64_"):
        function = getattr(library, name, None)
        if function is not None:
            return ctypes.cast(function, ctypes.c_void_p).value
    return None


@functools.lru_cache(maxsize=4)
def native_functions(dtype):
    """(gemm, exp, exp's data, log, log's data) as integer addresses for float32 or float64:
    numpy's own BLAS gemm and ufunc loops, for compiled code to call (`_compiled.gemm`,
    `_compiled.ufunc_loop`). Each is checked here against numpy's matmul (the three layouts
    the dense step uses), exp and log, bit for bit; None when one is missing or differs, or
    the compiled loops are not loaded."""
    dtype = np.dtype(dtype)
    if not _loaded or dtype not in _FLOATS or np.dtype(np.intp).itemsize != 8:
        return None
    try:
        gemm = _gemm_address(dtype)
        exp, log = _ufunc_loop(np.exp, dtype), _ufunc_loop(np.log, dtype)
        if gemm is None or exp is None or log is None:
            return None
        found = (gemm, *exp, *log)
        rng = np.random.default_rng(0)
        a, b, g = (rng.standard_normal(shape).astype(dtype)
                   for shape in ((37, 129), (129, 23), (37, 23)))
        for trans_a, trans_b, x, y, want in ((False, False, a, b, a @ b),
                                             (True, False, a, g, a.T @ g),
                                             (False, True, g, b, g @ b.T)):
            got = np.empty_like(want)
            _loaded.gemm(gemm, trans_a, trans_b, x, y, got)
            if not np.array_equal(got, want):
                return None
        x = np.concatenate([rng.standard_normal(4099) * 30, [0.0, -0.0, 1e-30, -200.0, 88.0,
                                                             np.inf, -np.inf, np.nan]])
        x = x.astype(dtype)
        scratch = np.empty(5, np.intp)
        with np.errstate(all="ignore"):
            for address, data, ufunc, values in ((exp[0], exp[1], np.exp, x),
                                                 (log[0], log[1], np.log, np.abs(x))):
                got = np.empty_like(values)
                _loaded.ufunc_loop(address, data, values, got, scratch)
                if not np.array_equal(got, ufunc(values), equal_nan=True):
                    return None
        return found
    except Exception:       # (an unexpected BLAS or numpy build: the replay runs instead)
        return None
