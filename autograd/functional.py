"""A functional API in the style of JAX: transform a function into its derivative.

    >>> grad(lambda x: x ** 3)(2.0)            # 3x² at 2
    12.0
    >>> grad(grad(lambda x: x ** 3))(2.0)      # 6x at 2
    12.0

Arguments may be floats (traced as `Value`), arrays (traced as `Tensor`) or nodes; keyword
arguments are passed to the function as they are. The derivative is returned as numbers, except
when something outside may depend on it — an argument that is already a node requiring a
gradient, a transform around this one (even through a closure), or a leaf requiring a gradient
that the function reaches by itself (a closed-over parameter) — then it is built with
``create_graph=True`` and returned as a node, so it can be differentiated again (as JAX's and
torch.func's transforms compose). Under ``no_grad`` nothing outside records it: numbers.
"""
from __future__ import annotations

import numbers

import numpy as np

from .core import MODE, Node, _count_consumers, enable_grad, gradients
from .tensor import Tensor, stack
from .value import Value


def _trace_input(x, recording):
    """(node, nested): a leaf to differentiate with respect to, and whether we are nested.
    ``recording``: grad mode is on where the transform is called."""
    if isinstance(x, Node):
        if x.requires_grad and recording:
            # A new vertex x + 0 (derivative 1), not x itself: an inner transform over an
            # outer one's variable differentiates with respect to its own copy, so a closure
            # over x stays a separate dependence (grad(x ↦ grad(y ↦ x·y²)(x)) = 4x, as
            # torch.func: the inner derivative 2x·y, then d/dx at y = x)
            return x + 0.0, True
        return x._leaf(x.data, True, x.label), False
    if isinstance(x, numbers.Real) and not isinstance(x, bool):
        return Value(float(x)), False
    if isinstance(x, (np.ndarray, list, tuple)):
        if np.asarray(x).dtype == np.bool_:         # as a bool: a mask, not a point of f
            raise TypeError("cannot differentiate with respect to an array of bools")
        return Tensor(x, requires_grad=True), False
    raise TypeError(f"cannot differentiate with respect to a {type(x).__name__}")


def _checked(who, f, argnums):
    """((i, …), many): ``argnums`` as an int (numpy's too) or a non-empty tuple of ints, and
    ``f`` a function, checked where the transform is made, naming the transform."""
    if not callable(f):
        raise TypeError(f"{who} needs a function to differentiate, got {type(f).__name__}")
    many = not isinstance(argnums, numbers.Integral)
    if many and not (isinstance(argnums, (tuple, list)) and argnums
                     and all(isinstance(i, numbers.Integral) for i in argnums)):
        raise TypeError(f"{who}: argnums must be an int or a non-empty tuple of ints, got "
                        f"{argnums!r}")
    return (tuple(int(i) for i in argnums) if many else (int(argnums),)), many


def _in_range(who, nums, n_args):
    """argnums normalised to 0…n_args−1, for a call with ``n_args`` positional arguments."""
    for i in nums:
        if not -n_args <= i < n_args:
            raise ValueError(f"{who}: argnums {i} is out of range for {n_args} argument(s)")
    return tuple(i % n_args for i in nums)


# The leaves the transforms made while the outermost one runs: a derivative that depends on one
# of them depends on a transform's own input, not on a parameter the function closes over.
_TRACED = set()


class _Scope:
    """One transform call: the outermost one starts and ends with no traced leaves held."""

    def __enter__(self):
        if MODE.transform_depth == 0:
            _TRACED.clear()

    def __exit__(self, *exc):
        if MODE.transform_depth == 0:
            _TRACED.clear()


def _trace_args(who, args, nums):
    """(args with the differentiated ones replaced by leaves, one leaf per argnum, nested).
    An argument named twice in argnums is traced once: both entries get its gradient."""
    nums = _in_range(who, nums, len(args))
    args = list(args)
    traced, nested = {}, False
    # Called under no_grad, nothing outside records a dependence on the derivative (as
    # torch.func: the outer no_grad holds outside f, not inside it): an argument node is
    # traced as a fresh leaf and the derivative comes back as numbers
    recording = MODE.grad_enabled
    for i in nums:
        if i not in traced:
            try:
                leaf, inner = _trace_input(args[i], recording)
            except (TypeError, ValueError) as error:       # (numpy's, for a ragged list)
                raise type(error)(f"{who}: argument {i}: {error}") from None
            traced[i] = args[i] = leaf
            nested = nested or inner
            _TRACED.add(leaf)
    # Inside another transform (even through a closure) the derivative must stay
    # differentiable: the outer one may depend on it through nodes we cannot see here.
    nested = recording and (nested or MODE.transform_depth > 0)
    return args, [traced[i] for i in nums], nested


def _call_traced(f, args, kwargs):
    """f(*args, **kwargs) recorded (a transform records f even inside no_grad, as JAX), with
    the conversions of traced values to plain numbers counted (`MODE.escapes`)."""
    escapes = MODE.escapes
    MODE.transform_depth += 1
    try:
        with enable_grad():
            out = f(*args, **kwargs)
    finally:
        MODE.transform_depth -= 1
    return out, MODE.escapes != escapes


def _reaches_other_leaves(out, leaves):
    """Does ``out`` depend on a leaf requiring a gradient that is not one of ``leaves`` (a
    parameter the function closes over)? Then its derivative must stay a node — unless grad
    mode is off where the transform was called: nothing there records it."""
    if not (MODE.grad_enabled and isinstance(out, Node) and out.requires_grad):
        return False
    own = set(leaves)
    return any(not node._parents and node not in own and node not in _TRACED
               for node in _count_consumers(out))


_ESCAPED = ("{who}: the function returned a plain number made from a traced value "
            "(float(), int(), .item() or .numpy() on it), which cuts the graph: its derivative "
            "would silently be 0. Return the Value or Tensor itself")


def _scalar_output(out, who, escaped=False):
    if isinstance(out, Value):
        return out
    if escaped and isinstance(out, (numbers.Real, np.ndarray)):
        raise TypeError(_ESCAPED.format(who=who))
    if isinstance(out, numbers.Real) and not isinstance(out, bool):
        return None             # f does not use its differentiated inputs: the gradient is 0
    if isinstance(out, Tensor):
        if out.data.size != 1:
            raise ValueError(f"{who} needs a scalar output, the function returned shape "
                             f"{out.data.shape}; use jacobian for vector outputs")
        return out
    raise TypeError(f"{who} needs the function to return a Value or Tensor, "
                    f"got {type(out).__name__}")


def _transform(who, run, f, argnums):
    """The function ``who(f, argnums)`` returns: f and argnums are checked now; each call is
    ``run(who, f, nums, many, args, kwargs)`` in one `_Scope`."""
    nums, many = _checked(who, f, argnums)

    def wrapped(*args, **kwargs):
        with _Scope():
            return run(who, f, nums, many, args, kwargs)
    wrapped.__name__ = f"{who}({getattr(f, '__name__', 'f')})"
    return wrapped


def value_and_grad(f, argnums=0):
    """Return a function computing (f(*args), ∂f/∂args[argnums])."""
    return _transform("value_and_grad", _value_and_grad, f, argnums)


def _value_and_grad(who, f, nums, many, args, kwargs):
    args, leaves, nested = _trace_args(who, args, nums)
    raw, escaped = _call_traced(f, args, kwargs)
    out = _scalar_output(raw, who, escaped)
    if out is None:                     # a plain number: f ignores these inputs (JAX: zeros)
        return raw, _zeros(leaves, nested, many)
    nested = nested or _reaches_other_leaves(out, leaves)
    grads = gradients(out, leaves, create_graph=nested)
    value = out if nested else out.data
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value[()]
    return value, (tuple(grads) if many else grads[0])


def _zeros(leaves, nested, many):
    zeros = [leaf._zeros_like(nested) for leaf in leaves]
    return tuple(zeros) if many else zeros[0]


def grad(f, argnums=0):
    """Return a function computing ∂f/∂args[argnums] (a tuple when argnums is a tuple)."""
    return _transform("grad", _grad, f, argnums)


def _grad(*call):
    return _value_and_grad(*call)[1]


def _output_elements(out, escaped=False):
    """(seed-able root nodes, output shape) for a Tensor, Value or sequence of Values."""
    if isinstance(out, Tensor):
        return out, out.data.shape
    if isinstance(out, Value):
        return out, ()
    if isinstance(out, (list, tuple)):
        k = next((k for k, v in enumerate(out) if not isinstance(v, Value)), None)
        if k is None:
            return list(out), (len(out),)
        if escaped and isinstance(out[k], numbers.Real):
            raise TypeError(_ESCAPED.format(who="jacobian"))
        hint = " (join Tensors with autograd.stack)" if isinstance(out[k], Tensor) else ""
        raise TypeError(f"jacobian needs a Tensor, Value or list of Values, got a "
                        f"{type(out).__name__} whose item {k} is a {type(out[k]).__name__}{hint}")
    if escaped and isinstance(out, (numbers.Real, np.ndarray)):
        raise TypeError(_ESCAPED.format(who="jacobian"))
    raise TypeError(f"jacobian needs a Tensor, Value or list of Values, got {type(out).__name__}")


def jacobian(f, argnums=0):
    """Return a function computing J[i…, j…] = ∂f(x)[i…]/∂x[j…] by one backward pass per
    output entry (reverse mode). Shape: output shape + input shape. Nested (see the module
    docstring), J is a node: a Tensor, or a Value (scalar in and out) or list of Values."""
    return _transform("jacobian", _jacobian, f, argnums)


def _jacobian(who, f, nums, many, args, kwargs):
    args, leaves, nested = _trace_args(who, args, nums)
    raw, escaped = _call_traced(f, args, kwargs)
    result = _blocks(raw, escaped, leaves, nested)
    return tuple(result) if many else result[0]


def _blocks(raw, escaped, leaves, nested):
    """[∂raw/∂leaf for each leaf]: the Jacobian blocks of one traced output."""
    out, out_shape = _output_elements(raw, escaped)
    nested = nested or any(_reaches_other_leaves(root, leaves)
                           for root in (out if isinstance(out, list) else [out]))
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
        for j, g in enumerate(gradients(root, leaves, grad_out=seed, create_graph=nested)):
            rows[j].append(g)
    return [_assemble(r, out_shape, leaf, nested) for r, leaf in zip(rows, leaves)]


def _assemble(row, out_shape, leaf, nested):
    """The Jacobian block of one input from its per-output-entry gradients."""
    shape = tuple(out_shape) + np.shape(leaf.data)
    if not nested:
        if not row:                                     # an empty output
            return np.zeros(shape, dtype=np.asarray(leaf.data).dtype)
        if shape == () and isinstance(leaf, Value):     # scalar in, scalar out: a float, as grad's
            g = row[0]
            return float(g.data if isinstance(g, Node) else g)
        return np.stack([np.asarray(g.data if isinstance(g, Node) else g) for g in row]
                        ).reshape(shape)
    if isinstance(leaf, Value):                         # scalar input: one Value per entry
        return row[0] if out_shape == () else list(row)
    if not row:
        return Tensor(np.zeros(shape, dtype=leaf.data.dtype))
    return stack(row).reshape(shape)


def hessian(f, argnums=0):
    """Return a function computing H = ∂²f/∂x² as the Jacobian of the gradient. With a tuple
    ``argnums`` the result is nested as JAX's: ``H[i][j] = ∂²f/∂x_i∂x_j``, each block of shape
    x_i's shape + x_j's shape."""
    # grad and jacobian, with their errors named hessian's
    gradient = _transform("hessian", _grad, f, argnums)
    many = not isinstance(argnums, numbers.Integral)
    wrapped = _transform("hessian", _gradient_jacobians if many else _jacobian, gradient, argnums)
    wrapped.__name__ = f"hessian({getattr(f, '__name__', 'f')})"
    return wrapped


def _gradient_jacobians(who, gradient, nums, many, args, kwargs):
    """H[i][j] = ∂(∂f/∂x_i)/∂x_j: f traced and its gradient recorded once, every row of
    blocks taken from that one graph."""
    args, leaves, nested = _trace_args(who, args, nums)
    grads, escaped = _call_traced(gradient, args, kwargs)
    return tuple(tuple(_blocks(g, escaped, leaves, nested)) for g in grads)
