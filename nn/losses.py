"""Costs and L2 regularisation, for Tensor batches and for lists of Value outputs alike.

With h = a^(L+1) the network's output for a batch of n rows and k outputs:

    document       J = 1/(2n) Σᵢ ‖yᵢ − h(xᵢ)‖²             the document's cost
    mse            1/(n·k) Σᵢⱼ (yᵢⱼ − hᵢⱼ)²
    cross_entropy  −1/n Σᵢ log softmax(z^(L))ᵢ,yᵢ          from logits, stable

L2 on the weights W only (never the biases), by convention:

    ufldl    λ/2 · Σ W²
    nielsen  λ/(2·n_train) · Σ W²     n_train = size of the training set
    sklearn  α/(2·batch) · Σ W²       batch = rows in this batch
"""
from __future__ import annotations

import numpy as np

from autograd import Tensor, Value, kernels
from autograd.rules import mean_factor

COSTS = ("document", "mse", "cross_entropy")
L2_CONVENTIONS = ("ufldl", "nielsen", "sklearn")


def _check_rows(h, y, name):
    if isinstance(h, Tensor):
        return
    if len(h) != len(y):
        raise ValueError(f"{name}: {len(h)} outputs for {len(y)} targets")


def _as_target(y, like):
    if isinstance(y, Tensor):
        return y
    return Tensor(np.asarray(y), dtype=like.dtype)


def _squared_errors(h, y, name):
    """(Σ over the batch of (y − h)², the number of rows n, the number of entries n·k), for a
    Tensor n × k or a list of Value lists."""
    _check_rows(h, y, name)
    if isinstance(h, Tensor):
        y = _as_target(y, h)
        if y.shape != h.shape and h.ndim + y.ndim == 3 and h.size == y.size and \
                h.shape[0] == y.shape[0]:
            y = y.reshape(h.shape)          # one output: a target column (n,) or (n, 1) alike
        _check_same_shape(h, y, name)
        d = h - y
        return (d * d).sum(), h.shape[0], h.size
    rows = [_row(yi) for yi in y]
    for i, (hi, yi) in enumerate(zip(h, rows)):
        if len(hi) != len(yi):
            raise ValueError(f"{name}: row {i} has {len(hi)} outputs and {len(yi)} targets")
    total = sum(((hj - yj) * (hj - yj) for hi, yi in zip(h, rows) for hj, yj in zip(hi, yi)),
                Value(0.0, requires_grad=False))
    return total, len(h), sum(len(hi) for hi in h)


def document_cost(h, y):
    """J = 1/(2n) Σᵢ ‖yᵢ − h(xᵢ)‖² for a batch (Tensor n × k, or a list of Value lists)."""
    total, n, _ = _squared_errors(h, y, "document_cost")
    return total * (0.5 * mean_factor(n))


def mse(h, y):
    """1/(n·k) Σ (y − h)²."""
    total, _, entries = _squared_errors(h, y, "mse")
    return total * mean_factor(entries)


def softmax_cross_entropy(z, y):
    """−1/n Σᵢ Σⱼ tᵢⱼ log softmax(zᵢ)ⱼ from logits z. The targets y are class indices (n,) or
    one-hot rows (tᵢ one-hot: −1/n Σᵢ log softmax(zᵢ)[yᵢ]), or rows of target probabilities
    tᵢ (n × k: soft labels, label smoothing)."""
    _check_rows(z, y, "softmax_cross_entropy")
    if not isinstance(z, Tensor) and not len(z):    # the mean of nothing, as the Tensor's
        return Value(float("nan"), requires_grad=False)
    k = z.shape[1] if isinstance(z, Tensor) else len(z[0])
    target = _cross_entropy_targets(y, k)
    if isinstance(z, Tensor):
        # one op (Tensor.softmax_cross_entropy): the value of
        # -(z.log_softmax(axis=1)[range(n), labels].sum()) / n, the gradient (softmax − onehot)/n
        return z.softmax_cross_entropy(target)
    if target.ndim == 1:
        target = _class_indices(target, k)      # (the Tensor op checks labels itself)
    total = Value(0.0, requires_grad=False)
    for i, zi in enumerate(z):
        shift = max(v.data for v in zi)          # a constant: log-sum-exp without overflow
        lse = sum(((v - shift).exp() for v in zi), Value(0.0, requires_grad=False)).log() + shift
        if target.ndim == 1:
            total = total + (lse - zi[target[i]])
        else:                                    # Σⱼ tᵢⱼ (lse − zᵢⱼ), over the tᵢⱼ ≠ 0
            for t, v in zip(target[i].tolist(), zi):
                if t:
                    total = total + (lse - v) * t
    return total * (1.0 / len(z))


def is_one_hot(Y):
    """Every row of the n × k array Y is one 1 among zeros."""
    return bool(np.all((Y == 0) | (Y == 1)) and np.all(Y.sum(axis=1) == 1))


def _cross_entropy_targets(y, k):
    """Class indices (intp) for labels or one-hot rows; float rows for any other n × k targets."""
    y = _raw(y)
    if isinstance(y, np.ndarray) and y.ndim == 1 and y.dtype.kind in "iu":
        return y                        # integer labels as they are: the op checks their range
    y = np.asarray(y)
    if y.ndim == 2:
        if y.shape[1] != k:
            raise ValueError(f"target rows have {y.shape[1]} columns, the output has {k}")
        if y.dtype.kind not in "fiub" or not np.all(np.isfinite(y)):
            raise ValueError("target rows must hold finite numbers")
        if not is_one_hot(y):           # (float rows as they are: the op casts them)
            return y if y.dtype.kind == "f" else y.astype(np.float64)
    return _class_indices(y, k)


def _raw(y):
    return y.data if isinstance(y, Tensor) else y


def _row(yi):
    return yi if isinstance(yi, (list, tuple, np.ndarray)) else [yi]


def _check_same_shape(h, y, name):
    if h.shape != y.shape:
        raise ValueError(f"{name}: output shape {h.shape} and target shape {y.shape} differ")


def _class_indices(y, k):
    y = np.asarray(_raw(y))
    if y.ndim == 2:
        if y.shape[1] != k:
            raise ValueError(f"one-hot targets have {y.shape[1]} columns, the output has {k}")
        y = y.argmax(axis=1)
    if y.ndim != 1:
        raise ValueError(f"class labels must be a vector, got shape {y.shape}")
    whole = y.dtype.kind in "iu" or (y.size and np.all(y == np.round(y)))
    if y.size and (y.min() < 0 or y.max() >= k or not whole):
        raise ValueError(f"class labels must be integers in 0..{k - 1}, got range "
                         f"{y.min()}..{y.max()}")
    return y.astype(np.intp)


def get_cost(name):
    costs = {"document": document_cost, "mse": mse, "cross_entropy": softmax_cross_entropy}
    if name not in costs:
        raise ValueError(f"unknown cost {name!r}; choose one of {', '.join(COSTS)}")
    return costs[name]


def l2_factor(lam, convention, n_train=None, batch=None):
    """The c in c · Σ W² for each convention (see the module docstring)."""
    if convention == "ufldl":
        return lam / 2.0
    if convention == "nielsen":
        if not n_train:
            raise ValueError("the 'nielsen' L2 convention needs n_train, the training-set size")
        return lam / (2.0 * n_train)
    if convention == "sklearn":
        if not batch:
            raise ValueError("the 'sklearn' L2 convention needs batch, the rows in this batch")
        return lam / (2.0 * batch)
    raise ValueError(f"unknown L2 convention {convention!r}; choose one of "
                     f"{', '.join(L2_CONVENTIONS)}")


def l2_penalty(weights, lam, convention="ufldl", n_train=None, batch=None):
    """c · Σ W² over the weight nodes (Tensors or Values), c from `l2_factor`."""
    c = l2_factor(lam, convention, n_train, batch)
    if all(isinstance(w, Tensor) for w in weights):
        total = None
        for W in weights:
            s = W.sum_squares()
            total = s if total is None else total + s
        return total * c
    return sum((w * w for w in weights), Value(0.0, requires_grad=False)) * c


def add_l2(J, weights, lam, convention="ufldl", n_train=None, batch=None):
    """After ``J.backward()``: the value of J + c · Σ W² (a 0-d array) with ∂(c · Σ W²)/∂W = 2c·W
    added to each W.grad — the numbers ``(J + l2_penalty(weights, ...)).backward()`` gives,
    without recording the penalty in the graph. Its gradient is known in closed form, so it
    costs one multiply and one add per weight matrix (PyTorch's ``weight_decay`` adds it to the
    gradient the same way) instead of four graph ops and two new arrays per matrix.

    ``weights`` are Tensor leaves whose ``.grad`` this backward pass made (each owns its array,
    so it is updated in place); a weight the pass did not reach gets 2c·W as its gradient.
    The arithmetic is the graph's, in the weights' dtype: Σ W² as a dot product of the flat
    array with itself, the sums in order, times c; the gradient's factor is 2·c.
    """
    if not weights:
        return J.data
    return J.data + add_l2_gradient(weights, lam, convention, n_train, batch)


def add_l2_gradient(weights, lam, convention="ufldl", n_train=None, batch=None):
    """`add_l2` without J: adds 2c·W to each W.grad and returns the value c · Σ W²."""
    value, factor = l2_value(weights, lam, convention, n_train, batch)
    for W in weights:
        data, g = W.data, W.grad
        # 2·c rounded to W's dtype: the number rounding c and doubling it gives (doubling
        # is exact), in one scalar op
        decay = data.dtype.type(factor)
        if g is None:
            W.grad = data * decay
        elif type(g) is np.ndarray:
            kernels.add_scaled(g, data, decay)      # W.grad += W·decay, one pass
        else:           # a number (a 0-d leaf's accumulated gradient): nothing to write into
            W.grad = g + data * decay
    return value


def l2_value(weights, lam, convention="ufldl", n_train=None, batch=None):
    """(c · Σ W², 2c): the L2 term's value over the weights (`add_l2`'s arithmetic) and the
    factor of its gradient 2c·W, which an optimiser can add inside its own update
    (``step(decay=(weights, 2c))``, `nn.optim.Optimizer`) instead of writing it into W.grad."""
    c = l2_factor(lam, convention, n_train, batch)
    total = None
    for W in weights:
        flat = W.data.reshape(-1)
        s = np.dot(flat, flat)
        total = s if total is None else total + s
    return total * total.dtype.type(c), 2 * c
