"""Fused elementwise kernels: numba-compiled loops when numba is installed, numpy otherwise.

A numpy expression over arrays makes one pass over memory per operation: Adam's update is
eleven passes and L2's gradient three, each reading and writing whole arrays. A compiled loop
makes one pass and keeps every intermediate in a register — the difference between ~140 µs and
~35 µs per step for a 784 × 100 float32 weight matrix on the benchmark machine.

Each kernel computes the same floats as its numpy fallback, bit for bit: the same operations in
the same order in the array's dtype, every scalar rounded to that dtype first (as numpy does
with a Python float), and no fused multiply-add (numba contracts nothing unless asked for
fastmath). ``tests/test_kernels.py`` checks this on both paths.

Numba is imported on the first call of a kernel, not with chainrule (its import takes ~0.3 s),
and compiled code is cached on disk next to this file (or in numba's user cache). Set the
environment variable ``CHAINRULE_KERNELS=numpy`` to use the numpy fallbacks.
"""
from __future__ import annotations

import os

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
    return _loaded


def compiled():
    """True when the kernels run compiled (numba), False when they fall back to numpy."""
    return bool(_loaded if _loaded is not None else _load())


def _flat(a, dtype):
    """a as a flat view when it is a C-contiguous array of ``dtype``, else None."""
    if type(a) is np.ndarray and a.dtype == dtype and a.flags.c_contiguous:
        return a.reshape(-1)
    return None


def adam_update(w, g, m, v, beta_1, beta_2, epsilon, lr_t, scratch=None):
    """One Adam step in place, scikit-learn's arithmetic in w's dtype:

        m ← β₁m + (1−β₁)g,   v ← β₂v + (1−β₂)g²,   w ← w + (−α_t m) / (√v + ε).

    ``w, m, v`` are arrays of one shape and dtype, updated in place; ``g`` has their shape.
    ``scratch`` (two arrays like w) spares the numpy fallback its temporaries.
    """
    kernels = _loaded if _loaded is not None else _load()
    dtype = w.dtype
    if kernels:
        flat = [_flat(a, dtype) for a in (w, g, m, v)]
        if all(f is not None for f in flat) and g.shape == w.shape == m.shape == v.shape:
            t = dtype.type
            kernels.adam_update(*flat, t(beta_1), t(1 - beta_1), t(beta_2), t(1 - beta_2),
                                t(epsilon), t(-lr_t))
            return
    t1, t2 = scratch if scratch is not None else (np.empty_like(w), np.empty_like(w))
    w += adam_step_numpy(m, v, g, t1, t2, beta_1, beta_2, epsilon, lr_t)


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
    np.sqrt(v, out=t1)
    t1 += epsilon
    np.multiply(m, -lr_t, out=t2)
    t2 /= t1
    return t2


def add_scaled(g, w, factor):
    """g ← g + w·factor in place (g and w of one shape and dtype), ``factor`` rounded to their
    dtype: the floats of ``g += w * factor`` without the temporary."""
    kernels = _loaded if _loaded is not None else _load()
    if kernels:
        flat_g, flat_w = _flat(g, g.dtype), _flat(w, g.dtype)
        if flat_g is not None and flat_w is not None and g.shape == w.shape:
            kernels.add_scaled(flat_g, flat_w, g.dtype.type(factor))
            return
    g += w * np.asarray(factor, dtype=g.dtype)

