"""The numba-compiled loops behind `autograd.kernels` (imported only through it, on first use).

Defined at module level so numba can cache the machine code on disk (``cache=True``): a fresh
process loads it instead of compiling again. ``error_model='numpy'``: a division by zero gives
inf or nan as numpy's does, not an exception (and lets the loops vectorise).

A loop reads its inputs while it writes its outputs, element by element, so an input sharing
memory with an output (a gradient that is a window of Adam's moments, say) is copied first, as
numpy's ufuncs do: the numbers of separate arrays. Arrays numba cannot write into (read-only
ones) fail to compile with a `TypingError`, before anything is written.
"""
import numba
import numpy as np
from llvmlite import ir
from numba.core import errors, types
from numba.extending import intrinsic

TypingError = errors.TypingError        # (kernels catches it)

_jit = numba.njit(cache=True, nogil=True, error_model="numpy")


@_jit
def _overlap(a, b):
    """a's and b's bytes intersect (contiguous arrays: [start, start + nbytes))."""
    a0, b0 = a.ctypes.data, b.ctypes.data
    return a0 < b0 + b.nbytes and b0 < a0 + a.nbytes


@_jit
def adam_update(w, g, m, v, b1, c1, b2, c2, epsilon, minus_lr_t, tiny, zero, decay, decayed):
    if _overlap(g, w) or _overlap(g, m) or _overlap(g, v):
        _adam_loop(w, g.copy(), m, v, b1, c1, b2, c2, epsilon, minus_lr_t, tiny, zero, decay,
                   decayed)
    else:
        _adam_loop(w, g, m, v, b1, c1, b2, c2, epsilon, minus_lr_t, tiny, zero, decay, decayed)


@_jit
def _adam_loop(w, g, m, v, b1, c1, b2, c2, epsilon, minus_lr_t, tiny, zero, decay, decayed):
    for i in range(w.size):
        wi = w[i]
        gi = g[i] + wi * decay if decayed else g[i]     # add_scaled's floats, in this pass
        mi = m[i] * b1 + gi * c1
        vi = v[i] * b2 + (gi * gi) * c2
        mi = zero if abs(mi) < tiny else mi        # subnormal moments flushed to 0 (see
        vi = zero if vi < tiny else vi              # kernels.adam_step_numpy); nan stays
        m[i] = mi
        v[i] = vi
        w[i] = wi + (mi * minus_lr_t) / (np.sqrt(vi) + epsilon)


@_jit
def add_scaled(g, w, factor):
    if _overlap(g, w):
        _add_scaled_loop(g, w.copy(), factor)
    else:
        _add_scaled_loop(g, w, factor)


@_jit
def _add_scaled_loop(g, w, factor):
    for i in range(g.size):
        g[i] = g[i] + w[i] * factor


@_jit
def relu_grad(g, x, out):
    for i in range(g.size):
        out[i] = g[i] if x[i] > 0 else 0


@_jit
def relu_grad_sums(g, x, out, sums):
    # out as relu_grad's; sums[j] = out[0, j] + out[1, j] + … row after row, the order of
    # numpy's add.reduce over axis 0 of a C-contiguous matrix with more than one column
    n, k = g.shape
    for j in range(k):
        v = g[0, j] if x[0, j] > 0 else 0
        out[0, j] = v
        sums[j] = v
    for i in range(1, n):
        for j in range(k):
            v = g[i, j] if x[i, j] > 0 else 0
            out[i, j] = v
            sums[j] = sums[j] + v


@_jit
def bias_relu(x, b, z, a):
    # z = x + b (b along the rows), a = maximum(z, 0) as numpy's: +0 for −0, nan kept
    n, k = x.shape
    for i in range(n):
        for j in range(k):
            v = x[i, j] + b[j]
            z[i, j] = v
            a[i, j] = v if v > 0 or v != v else 0


@_jit
def _shift_row(z, e, m, i):
    # (the row's first largest entry; a nan anywhere in the row wins, as numpy's max)
    top = z[i, 0]
    for j in range(1, z.shape[1]):
        v = z[i, j]
        if v > top or v != v:
            top = v
    m[i, 0] = top
    for j in range(z.shape[1]):
        e[i, j] = z[i, j] - top
    return top


@_jit
def row_shift(z, e, m):
    for i in range(z.shape[0]):
        _shift_row(z, e, m, i)


@_jit
def row_shift_pick(z, target, e, m, picked):
    # labels checked first (nothing written if one is out of range), then row_shift's pass
    # with z[i, target[i]] − m[i] kept
    if not labels_in_range(target, z.shape[1]):
        return False
    for i in range(z.shape[0]):
        top = _shift_row(z, e, m, i)
        picked[i] = z[i, target[i]] - top
    return True


@_jit
def argmax_hits(h, labels):
    # rows whose numpy argmax (the first largest entry; the first nan if any) is their label
    n, k = h.shape
    hits = 0
    for i in range(n):
        best, top = 0, h[i, 0]
        if top == top:
            for j in range(1, k):
                v = h[i, j]
                if v != v:
                    best = j
                    break
                if v > top:
                    best, top = j, v
        if best == labels[i]:
            hits += 1
    return hits


@_jit
def take_rows(x, rows, out):
    # out[i] = x[rows[i]] row by row; False (nothing written) for a row outside x
    n = x.shape[0]
    for i in range(rows.size):
        if rows[i] < 0 or rows[i] >= n:
            return False
    k = x.shape[1]
    for i in range(rows.size):
        r = rows[i]
        for j in range(k):
            out[i, j] = x[r, j]
    return True


@_jit
def labels_in_range(target, k):
    for i in range(target.size):
        t = target[i]
        if t < 0 or t >= k:
            return False
    return True


@_jit
def _cross_entropy_grad_row(e, s, target, scale, p, i):
    si = s[i, 0]
    for j in range(e.shape[1]):
        p[i, j] = e[i, j] / si
    t = target[i]
    p[i, t] = p[i, t] - 1
    for j in range(e.shape[1]):
        p[i, j] = p[i, j] * scale


@_jit
def cross_entropy_grad(e, s, target, scale, p):
    for i in range(e.shape[0]):
        _cross_entropy_grad_row(e, s, target, scale, p, i)


@_jit
def cross_entropy_grad_sums(e, s, target, scale, p, sums):
    # cross_entropy_grad, and p's column sums in relu_grad_sums's order
    for i in range(e.shape[0]):
        _cross_entropy_grad_row(e, s, target, scale, p, i)
        for j in range(e.shape[1]):
            sums[j] = p[i, j] if i == 0 else sums[j] + p[i, j]


@_jit
def bias_shift_pick(x, b, target, z, e, m, picked):
    # row_shift_pick's pass on z = x + b (b along the rows), z written too
    n, k = x.shape
    if not labels_in_range(target, k):
        return False
    for i in range(n):
        for j in range(k):
            z[i, j] = x[i, j] + b[j]
        top = _shift_row(z, e, m, i)
        picked[i] = z[i, target[i]] - top
    return True


@_jit
def _pairwise_block(a, lo, n, zero):
    # numpy's pairwise_sum of a[lo:lo + n] (contiguous), n ≤ 128: below 8 entries one by one,
    # else in eight interleaved partial sums
    if n < 8:
        total = zero
        for i in range(n):
            total += a[lo + i]
        return total
    r0, r1, r2, r3 = a[lo], a[lo + 1], a[lo + 2], a[lo + 3]
    r4, r5, r6, r7 = a[lo + 4], a[lo + 5], a[lo + 6], a[lo + 7]
    i = 8
    while i < n - n % 8:
        r0 += a[lo + i]
        r1 += a[lo + i + 1]
        r2 += a[lo + i + 2]
        r3 += a[lo + i + 3]
        r4 += a[lo + i + 4]
        r5 += a[lo + i + 5]
        r6 += a[lo + i + 6]
        r7 += a[lo + i + 7]
        i += 8
    total = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        total += a[lo + i]
        i += 1
    return total


@_jit
def _pairwise(a, lo, n, zero):
    # numpy's pairwise_sum: above 128 entries, the sum of the two halves (cut at a multiple of
    # 8), each summed the same way. Walked with a stack of halves, not by recursion (numba's
    # on-disk cache does not keep recursive functions safely)
    if n <= 128:
        return _pairwise_block(a, lo, n, zero)
    half = n // 2
    half -= half % 8
    if n - half <= 128:                     # (one cut: both halves are blocks)
        return _pairwise_block(a, lo, half, zero) + _pairwise_block(a, lo + half, n - half,
                                                                    zero)
    starts = np.empty(64, np.int64)
    sizes = np.empty(64, np.int64)
    lefts = np.empty(64, a.dtype)
    right_pending = np.zeros(64, np.bool_)   # the left half is summed, the right is next
    top = 0
    starts[0], sizes[0] = lo, n
    while True:
        size = sizes[top]
        if size > 128:
            half = size // 2
            half -= half % 8
            right_pending[top] = False
            starts[top + 1], sizes[top + 1] = starts[top], half
            top += 1
            continue
        value = _pairwise_block(a, starts[top], size, zero)
        while True:                         # hand the sum up to the halves waiting for it
            top -= 1
            if top < 0:
                return value
            if not right_pending[top]:
                lefts[top] = value
                right_pending[top] = True
                half = sizes[top] // 2
                half -= half % 8
                starts[top + 1], sizes[top + 1] = starts[top] + half, sizes[top] - half
                top += 1
                break
            value = lefts[top] + value


@_jit
def row_sums(e, s, zero):
    # s[i, 0] = e[i].sum() as numpy's add.reduce over the last axis: 0 + the row's pairwise sum
    n, k = e.shape
    flat = e.reshape(-1)
    for i in range(n):
        s[i, 0] = zero + (_pairwise_block(flat, i * k, k, zero) if k <= 128
                          else _pairwise(flat, i * k, k, zero))


@_jit
def cross_entropy_value_grad_sums(e, s, log_s, picked, target, scale, mean, p, sums, terms,
                                  zero):
    # −(Σᵢ picked_i − log s_i) · mean, the sum in numpy's order; then cross_entropy_grad_sums
    n = e.shape[0]
    for i in range(n):
        terms[i] = picked[i] - log_s[i, 0]
    total = zero + _pairwise(terms, 0, n, zero)
    cross_entropy_grad_sums(e, s, target, scale, p, sums)
    return (-total) * mean


@_jit
def sgd_update(w, g, v, momentum, lr, nesterov, tiny, zero, decay, decayed):
    if _overlap(g, w) or _overlap(g, v):
        _sgd_loop(w, g.copy(), v, momentum, lr, nesterov, tiny, zero, decay, decayed)
    else:
        _sgd_loop(w, g, v, momentum, lr, nesterov, tiny, zero, decay, decayed)


@_jit
def _sgd_loop(w, g, v, momentum, lr, nesterov, tiny, zero, decay, decayed):
    for i in range(w.size):
        wi = w[i]
        gi = g[i] + wi * decay if decayed else g[i]     # add_scaled's floats, in this pass
        vi = v[i] * momentum - gi * lr
        vi = zero if abs(vi) < tiny else vi        # as Adam's moments (kernels)
        v[i] = vi
        w[i] = wi + ((vi * momentum - gi * lr) if nesterov else vi)


@_jit
def back_substitute(code, pa, pb, da, db, g, reached, first_op, constant):
    for i in range(g.size - 1, -1, -1):
        if reached[i] == 0 or code[i] < first_op:
            continue
        gi = g[i]
        j = pa[i]
        if code[j] != constant:
            g[j] = _summed(g[j], reached[j], gi * da[i])
            reached[j] = 1
        j = pb[i]
        if j >= 0 and code[j] != constant:
            g[j] = _summed(g[j], reached[j], gi * db[i])
            reached[j] = 1


@_jit
def _summed(previous, reached, contribution):
    # The first contribution as it is (0 + (−0.0) would be +0.0). Numbers in, a number out: a
    # jitted helper handed the arrays themselves increfs and decrefs them at every call, which
    # made this loop ~15× slower.
    return previous + contribution if reached else contribution


# -- one training step of a dense chain in one call (nn.fused) --------------------------------
# numpy's own BLAS gemm and its ufunc loops for exp and log are called through their addresses
# (found and checked by `kernels.native_functions`), passed in as integers so the machine code
# holds no address and stays cacheable.

_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112


@intrinsic
def _call_gemm(typingctx, fn, order, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c,
               ldc):
    # cblas_?gemm with 64-bit integers (ILP64): (int, int, int, i64 ×3, T, T*, i64, T*, i64, T,
    # T*, i64); the arrays as their addresses
    sig = types.void(fn, order, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)

    def codegen(context, builder, signature, args):
        i32, i64, ptr = ir.IntType(32), ir.IntType(64), ir.IntType(8).as_pointer()
        real = context.get_value_type(signature.args[7])
        fnty = ir.FunctionType(ir.VoidType(), [i32, i32, i32, i64, i64, i64, real, ptr, i64,
                                               ptr, i64, real, ptr, i64])
        (address, order, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc) = args
        builder.call(builder.inttoptr(address, fnty.as_pointer()),
                     [builder.trunc(order, i32), builder.trunc(ta, i32), builder.trunc(tb, i32),
                      m, n, k, alpha, builder.inttoptr(a, ptr), lda, builder.inttoptr(b, ptr),
                      ldb, beta, builder.inttoptr(c, ptr), ldc])
        return context.get_dummy_value()
    return sig, codegen


@intrinsic
def _call_ufunc_loop(typingctx, fn, args, dimensions, steps, data):
    # a numpy ufunc inner loop: void (char **args, npy_intp *dimensions, npy_intp *steps, void *)
    sig = types.void(fn, args, dimensions, steps, data)

    def codegen(context, builder, signature, values):
        ptr = ir.IntType(8).as_pointer()
        fnty = ir.FunctionType(ir.VoidType(), [ptr, ptr, ptr, ptr])
        builder.call(builder.inttoptr(values[0], fnty.as_pointer()),
                     [builder.inttoptr(v, ptr) for v in values[1:]])
        return context.get_dummy_value()
    return sig, codegen


@_jit
def gemm(fn, trans_a, trans_b, a, b, c):
    # c = op(a) @ op(b), every array C-contiguous: op(a) is a or aᵀ (trans_a), as numpy's matmul
    # hands a C-contiguous matrix or the transpose of one to BLAS
    m, n = c.shape
    k = a.shape[0] if trans_a else a.shape[1]
    one, zero = c.dtype.type(1), c.dtype.type(0)
    _call_gemm(fn, _ROW_MAJOR, _TRANS if trans_a else _NO_TRANS,
               _TRANS if trans_b else _NO_TRANS, m, n, k, one, a.ctypes.data, a.shape[1],
               b.ctypes.data, b.shape[1], zero, c.ctypes.data, c.shape[1])


@_jit
def ufunc_loop(fn, data, x, out, scratch):
    # out = ufunc(x) over contiguous arrays of one dtype, by numpy's own inner loop; scratch: 5
    # intp for its argument pointers, length and strides
    scratch[0], scratch[1] = x.ctypes.data, out.ctypes.data
    scratch[2], scratch[3], scratch[4] = x.size, x.itemsize, out.itemsize
    base = scratch.ctypes.data
    _call_ufunc_loop(fn, base, base + 2 * scratch.itemsize, base + 3 * scratch.itemsize, data)


@_jit
def dense_cross_entropy_step(X, rows, labels, xb, yb, Ws, bs, us, zs, acts, gzs, gas, gWs, gbs,
                             e, top, picked, s, log_s, terms, scale, mean, zero, native, scratch,
                             update, mWs, vWs, mbs, vbs, hyper, rate, decay, decayed):
    """One step of a chain of dense layers (relu between them) under softmax cross-entropy with
    class labels: the batch's rows gathered, forward, cost, backward and every W and b updated.
    The same calls as the traced step's replay, in one call: numpy's gemm, exp and log
    (``native``: gemm, exp, exp's data, log, log's data), the loops above for the rest.

    ``update``: 0 none, 1 Adam (mWs, vWs, mbs, vbs its moments; hyper = β₁, 1−β₁, β₂, 1−β₂, ε,
    the flush's threshold; rate = −α_t), 2 SGD (mWs, mbs the velocities; hyper = μ, the
    threshold, whether Nesterov (1 or 0), …; rate = α); ``decay``, ``decayed``: the L2
    gradient's factor on the weights. Returns (status, J, hits): status 0 done, 1 a row outside
    X, 2 a label outside 0..k−1 (then nothing is updated)."""
    n = rows.size
    if not take_rows(X, rows, xb):
        return 1, zero, 0
    for i in range(n):
        yb[i] = labels[rows[i]]
    layers = len(Ws)
    gemm_fn = native[0]
    J = zero
    previous = xb
    for l in range(layers):
        gemm(gemm_fn, False, False, previous, Ws[l], us[l])
        if l < layers - 1:
            bias_relu(us[l], bs[l], zs[l], acts[l])
            previous = acts[l]
            continue
        if not bias_shift_pick(us[l], bs[l], yb, zs[l], e, top, picked):
            return 2, zero, 0
        ufunc_loop(native[1], native[2], e, e, scratch)
        row_sums(e, s, zero)
        ufunc_loop(native[3], native[4], s, log_s, scratch)
        J = cross_entropy_value_grad_sums(e, s, log_s, picked, yb, scale, mean, gzs[l], gbs[l],
                                          terms, zero)
    for l in range(layers - 1, -1, -1):
        gemm(gemm_fn, True, False, xb if l == 0 else acts[l - 1], gzs[l], gWs[l])
        if l > 0:
            gemm(gemm_fn, False, True, gzs[l], Ws[l], gas[l - 1])
            relu_grad_sums(gas[l - 1], zs[l - 1], gzs[l - 1], gbs[l - 1])
    hits = argmax_hits(zs[layers - 1], yb)
    if update == 1:
        b1, c1, b2, c2, epsilon, tiny = hyper[0], hyper[1], hyper[2], hyper[3], hyper[4], hyper[5]
        for l in range(layers):
            adam_update(Ws[l].reshape(-1), gWs[l].reshape(-1), mWs[l], vWs[l], b1, c1, b2, c2,
                        epsilon, rate, tiny, zero, decay, decayed)
            adam_update(bs[l], gbs[l], mbs[l], vbs[l], b1, c1, b2, c2, epsilon, rate, tiny, zero,
                        zero, False)
    elif update == 2:
        momentum, tiny, nesterov = hyper[0], hyper[1], hyper[2] != 0
        for l in range(layers):
            sgd_update(Ws[l].reshape(-1), gWs[l].reshape(-1), mWs[l], momentum, rate, nesterov,
                       tiny, zero, decay, decayed)
            sgd_update(bs[l], gbs[l], mbs[l], momentum, rate, nesterov, tiny, zero, zero, False)
    return 0, J, hits
