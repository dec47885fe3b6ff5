"""The numba-compiled loops behind `autograd.kernels` (imported only through it, on first use).

Defined at module level so numba can cache the machine code on disk (``cache=True``): a fresh
process loads it instead of compiling again. ``error_model='numpy'``: a division by zero gives
inf or nan as numpy's does, not an exception (and lets the loops vectorise).
"""
import numba
import numpy as np

_jit = numba.njit(cache=True, nogil=True, error_model="numpy")


@_jit
def adam_update(w, g, m, v, b1, c1, b2, c2, epsilon, minus_lr_t):
    for i in range(w.size):
        gi = g[i]
        mi = m[i] * b1 + gi * c1
        vi = v[i] * b2 + (gi * gi) * c2
        m[i] = mi
        v[i] = vi
        w[i] = w[i] + (mi * minus_lr_t) / (np.sqrt(vi) + epsilon)


@_jit
def add_scaled(g, w, factor):
    for i in range(g.size):
        g[i] = g[i] + w[i] * factor


@_jit
def relu_grad(g, x, out):
    for i in range(g.size):
        out[i] = g[i] if x[i] > 0 else 0



@_jit
def sgd_update(w, g, v, momentum, lr, nesterov):
    for i in range(w.size):
        gi = g[i]
        vi = v[i] * momentum - gi * lr
        v[i] = vi
        w[i] = w[i] + ((vi * momentum - gi * lr) if nesterov else vi)
