"""A functional API in the style of JAX: transform a function into its derivative.

    >>> grad(lambda x: x ** 3)(2.0)            # 3x² at 2
    12.0
    >>> grad(grad(lambda x: x ** 3))(2.0)      # 6x at 2
    12.0

Arguments may be floats (traced as `Value`), arrays (traced as `Tensor`) or nodes. When an
argument is already a node that requires a gradient — a `grad` inside another `grad` — the
gradient is built with ``create_graph=True`` and returned as a node, so it can be differentiated
again.
"""
from __future__ import annotations

import numbers

import numpy as np

from .core import MODE, Node, enable_grad, gradients
from .tensor import Tensor
from .value import Value


def _trace_input(x):
    """(node, nested): a leaf to differentiate with respect to, and whether we are nested."""
    if isinstance(x, Node):
        if x.requires_grad:
            return x, True
        return x._leaf(x.data, True, x.label), False
    if isinstance(x, numbers.Real) and not isinstance(x, bool):
        return Value(float(x)), False
    if isinstance(x, (np.ndarray, list, tuple)):
        return Tensor(x, requires_grad=True), False
    raise TypeError(f"cannot differentiate with respect to a {type(x).__name__}")


def _argnums_tuple(argnums, n_args):
    many = not isinstance(argnums, int)
    nums = tuple(argnums) if many else (argnums,)
    for i in nums:
        if not -n_args <= i < n_args:
            raise ValueError(f"argnums {i} is out of range for {n_args} argument(s)")
    return nums, many


def _scalar_output(out, who):
    if isinstance(out, Value):
        return out
    if isinstance(out, numbers.Real) and not isinstance(out, bool):
        return None             # f does not use its differentiated inputs: the gradient is 0
    if isinstance(out, Tensor):
        if out.data.size != 1:
            raise ValueError(f"{who} needs a scalar output, the function returned shape "
                             f"{out.data.shape}; use jacobian for vector outputs")
        return out
    raise TypeError(f"{who} needs the function to return a Value or Tensor, "
                    f"got {type(out).__name__}")


def value_and_grad(f, argnums=0):
    """Return a function computing (f(*args), ∂f/∂args[argnums])."""
    def wrapped(*args):
        nums, many = _argnums_tuple(argnums, len(args))
        args = list(args)
        leaves, nested = [], False
        for i in nums:
            leaf, inner = _trace_input(args[i])
            args[i] = leaf
            leaves.append(leaf)
            nested = nested or inner
        # Inside another transform (even through a closure) the gradient must stay
        # differentiable: the outer one may depend on it through nodes we cannot see here.
        nested = nested or MODE.transform_depth > 0
        MODE.transform_depth += 1
        try:
            with enable_grad():         # a transform records f even inside no_grad (as JAX)
                raw = f(*args)
        finally:
            MODE.transform_depth -= 1
        out = _scalar_output(raw, "grad")
        if out is None:                 # a plain number: f ignores these inputs (JAX: zeros)
            return raw, _zeros(leaves, nested, many)
        grads = gradients(out, leaves, create_graph=nested)
        value = out if nested else out.data
        if isinstance(value, np.ndarray) and value.ndim == 0:
            value = value[()]
        return value, (tuple(grads) if many else grads[0])
    wrapped.__name__ = f"value_and_grad({getattr(f, '__name__', 'f')})"
    return wrapped


def _zeros(leaves, nested, many):
    zeros = [leaf._zeros_like(nested) for leaf in leaves]
    return tuple(zeros) if many else zeros[0]


def grad(f, argnums=0):
    """Return a function computing ∂f/∂args[argnums] (a tuple when argnums is a tuple)."""
    vg = value_and_grad(f, argnums)

    def wrapped(*args):
        return vg(*args)[1]
    wrapped.__name__ = f"grad({getattr(f, '__name__', 'f')})"
    return wrapped


def _output_elements(out):
    """(seed-able root nodes, output shape) for a Tensor, Value or sequence of Values."""
    if isinstance(out, Tensor):
        return out, out.data.shape
    if isinstance(out, Value):
        return out, ()
    if isinstance(out, (list, tuple)) and all(isinstance(v, Value) for v in out):
        return list(out), (len(out),)
    raise TypeError(f"jacobian needs a Tensor, Value or list of Values, got {type(out).__name__}")


def jacobian(f, argnums=0):
    """Return a function computing J[i…, j…] = ∂f(x)[i…]/∂x[j…] by one backward pass per
    output entry (reverse mode). Shape: output shape + input shape."""
    def wrapped(*args):
        nums, many = _argnums_tuple(argnums, len(args))
        args = list(args)
        leaves = []
        for i in nums:
            leaf, _ = _trace_input(args[i])
            args[i] = leaf
            leaves.append(leaf)
        with enable_grad():
            out, out_shape = _output_elements(f(*args))
        rows = [[] for _ in leaves]
        for k in range(int(np.prod(out_shape, dtype=int))):
            if isinstance(out, list):
                root, seed = out[k], None
            elif isinstance(out, Tensor):
                root = out
                seed = np.zeros(out_shape, dtype=out.data.dtype)
                seed.reshape(-1)[k] = 1
            else:
                root, seed = out, None
            for j, g in enumerate(gradients(root, leaves, grad_out=seed)):
                rows[j].append(np.asarray(g.data if isinstance(g, Node) else g))
        result = [np.stack(r).reshape(out_shape + np.shape(leaf.data))
                  for r, leaf in zip(rows, leaves)]
        return tuple(result) if many else result[0]
    wrapped.__name__ = f"jacobian({getattr(f, '__name__', 'f')})"
    return wrapped


def hessian(f, argnums=0):
    """Return a function computing H = ∂²f/∂x² as the Jacobian of the gradient. With a tuple
    ``argnums`` the result is nested as JAX's: ``H[i][j] = ∂²f/∂x_i∂x_j``, each block of shape
    x_i's shape + x_j's shape."""
    if isinstance(argnums, int):
        return jacobian(grad(f, argnums), argnums)
    argnums = tuple(argnums)
    gradient = grad(f, argnums)
    rows = [jacobian(lambda *args, i=i: gradient(*args)[i], argnums)
            for i in range(len(argnums))]

    def wrapped(*args):
        return tuple(row(*args) for row in rows)
    wrapped.__name__ = f"hessian({getattr(f, '__name__', 'f')})"
    return wrapped
