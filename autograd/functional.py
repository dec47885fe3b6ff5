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


def _function(who, f):
    if not callable(f):
        raise TypeError(f"{who} needs a function to differentiate, got {type(f).__name__}")


def _checked(who, f, argnums):
    """((i, …), many): ``argnums`` as an int (numpy's too) or a non-empty tuple of ints, and
    ``f`` a function, checked where the transform is made, naming the transform."""
    _function(who, f)
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


def _output_elements(out, escaped=False, who="jacobian"):
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
            raise TypeError(_ESCAPED.format(who=who))
        hint = " (join Tensors with autograd.stack)" if isinstance(out[k], Tensor) else ""
        raise TypeError(f"{who} needs a Tensor, Value or list of Values, got a "
                        f"{type(out).__name__} whose item {k} is a {type(out[k]).__name__}{hint}")
    if escaped and isinstance(out, (numbers.Real, np.ndarray)):
        raise TypeError(_ESCAPED.format(who=who))
    raise TypeError(f"{who} needs a Tensor, Value or list of Values, got {type(out).__name__}")


def jacobian(f, argnums=0):
    """Return a function computing J[i…, j…] = ∂f(x)[i…]/∂x[j…] by one backward pass per
    output entry (reverse mode). Shape: output shape + input shape. Nested (see the module
    docstring), J is a node: a Tensor, or a Value (scalar in and out) or list of Values."""
    return _transform("jacobian", _jacobian, f, argnums)


def _jacobian(who, f, nums, many, args, kwargs):
    args, leaves, nested = _trace_args(who, args, nums)
    raw, escaped = _call_traced(f, args, kwargs)
    result = _blocks(raw, escaped, leaves, nested, who)
    return tuple(result) if many else result[0]


def _blocks(raw, escaped, leaves, nested, who="jacobian"):
    """[∂raw/∂leaf for each leaf]: the Jacobian blocks of one traced output."""
    out, out_shape = _output_elements(raw, escaped, who)
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
    return tuple(tuple(_blocks(g, escaped, leaves, nested, who)) for g in grads)


def vjp(f, *primals):
    """Return ``(f(*primals), vjp_fn)``, as ``jax.vjp`` and ``torch.func.vjp``:
    ``vjp_fn(u)`` is the tuple of vector-Jacobian products

        uᵀ·∂f/∂x_i = Σ_k u_k ∂f_k/∂x_i        (one per primal x_i, of x_i's shape)

    for a cotangent u of f's output shape (a Tensor's shape, () for a Value, (n,) for a list of
    n Values). f is recorded once, here; each call of vjp_fn is one reverse pass over that
    graph seeded with u, so it may be called with many u without calling f again.

    Numbers come back as the other transforms return them (a float for a float primal); nested
    (see the module docstring), or for a cotangent that is a node requiring a gradient (uᵀJ
    depends on u), they are nodes built with ``create_graph=True``."""
    _function("vjp", f)
    with _Scope():
        out, leaves, nested = _record("vjp", f, primals)

    def vjp_fn(cotangent):
        u, on_node = _cotangent(cotangent, out)
        create_graph = nested or on_node
        if create_graph and MODE.transform_depth:
            _TRACED.update(leaves)          # vjp's own inputs, not parameters f closes over
        return tuple(_pullback(out, leaves, u, create_graph))
    vjp_fn.__name__ = f"vjp_fn({getattr(f, '__name__', 'f')})"
    return _numbers(out, nested), vjp_fn


def jvp(f, primals, tangents):
    """Return ``(f(*primals), J·v)``, as ``jax.jvp`` and ``torch.func.jvp``: the forward-mode
    derivative of f at x = primals in the direction v = tangents,

        J·v = Σ_i ∂f/∂x_i · v_i        (of f's output shape),

    each v_i of x_i's shape (real numbers, or a node of x_i's kind).

    chainrule only runs reverse mode, which gives u ↦ uᵀJ. J·v comes out of it by the transpose
    trick (as ``torch.autograd.functional.jvp``): uᵀJ is linear in u, so for every u

        s(u) = Σ_i ⟨uᵀJ_i, v_i⟩ = Σ_i uᵀ (J_i v_i) = uᵀ (J v),    hence    ∂s/∂u = J v.

    So f is recorded once; its reverse pass is seeded with a leaf u of the output's shape that
    requires a gradient, with ``create_graph=True``, so each uᵀJ_i is a graph over u; s(u) is
    formed from them, and a second reverse pass, from s to u, gives J v. (u's value does not
    matter, s being linear: it is 0.) The cost: one forward pass and two reverse ones, where
    JAX's forward mode needs one pass carrying the tangents along.

    Nested (see the module docstring), or for a tangent that is a node requiring a gradient,
    f(x) and J v are nodes; else numbers, a float for a Value output."""
    _function("jvp", f)
    for name, given in (("primals", primals), ("tangents", tangents)):
        if not isinstance(given, (tuple, list)):
            raise TypeError(f"jvp: {name} must be a tuple with one entry per argument of f, "
                            f"got {type(given).__name__}")
    if len(primals) != len(tangents):
        raise ValueError(f"jvp: {len(primals)} primal(s) but {len(tangents)} tangent(s)")
    with _Scope():
        out, leaves, nested = _record("jvp", f, primals)
        vs = [_direction(v, x, "jvp", f"tangent {i}", f"primal {i}")
              for i, (v, x) in enumerate(zip(tangents, leaves))]
        nested = nested or any(on_node for _, on_node in vs)
        u = ([Value(0.0) for _ in out] if isinstance(out, list) else Value(0.0)
             if isinstance(out, Value) else Tensor(np.zeros_like(out.data), requires_grad=True))
        us = u if isinstance(u, list) else [u]
        with enable_grad():                 # s is recorded even under no_grad
            terms = [(uJ * v if isinstance(uJ, Value) else (uJ * v).sum())
                     for uJ, (v, _) in zip(_pullback(out, leaves, u, True), vs)
                     if uJ.requires_grad]   # (else a constant 0: f does not use x_i)
        Jv = gradients(sum(terms[1:], terms[0]), us, create_graph=nested) if terms else \
            [w._zeros_like(nested) for w in us]
    return _numbers(out, nested), (Jv if isinstance(out, list) else Jv[0])


def _numbers(out, nested):
    """f's output as vjp and jvp return it: the node(s) when nested, else numbers of the
    caller's own (a float, a list of floats, a copy of the array: a VJP may read it)."""
    if nested:
        return out
    if isinstance(out, list):
        return [v.data for v in out]
    return np.array(out.data) if isinstance(out, Tensor) else out.data


def _record(who, f, primals):
    """(f's output: a Tensor, Value or list of Values; one leaf per primal; nested), f called
    once on leaves traced from the primals."""
    args, leaves, nested = _trace_args(who, primals, tuple(range(len(primals))))
    raw, escaped = _call_traced(f, args, {})
    out, _ = _output_elements(raw, escaped, who)
    nested = nested or any(_reaches_other_leaves(root, leaves)
                           for root in (out if isinstance(out, list) else [out]))
    return out, leaves, nested


def _pullback(out, leaves, u, create_graph):
    """[uᵀ·∂out/∂x for x in leaves] by one reverse pass seeded with u. A list of Values is first
    folded into the one scalar Σ_k u_k·out_k, whose gradient that is."""
    if not isinstance(out, list):
        return gradients(out, leaves, grad_out=u, create_graph=create_graph)
    if not out:
        return [leaf._zeros_like(create_graph) for leaf in leaves]
    with enable_grad():
        root = sum((o * w for o, w in zip(out[1:], u[1:])), out[0] * u[0])
    return gradients(root, leaves, create_graph=create_graph)


def _cotangent(u, out):
    """(u as a seed for out, is it a node requiring a gradient): for a list of n Values, a
    list of n numbers or Values, or an array of shape (n,)."""
    if not isinstance(out, list):
        return _direction(u, out, "vjp", "the cotangent", "the output")
    if isinstance(u, Node):
        raise TypeError(f"vjp: the cotangent is a {type(u).__name__}, the output a list of "
                        f"Values: give real numbers of shape ({len(out)},), or a list of Values")
    if isinstance(u, (list, tuple)) and any(isinstance(w, Node) for w in u):
        if len(u) != len(out):
            raise ValueError(f"vjp: the cotangent has shape ({len(u)},), the output has shape "
                             f"({len(out)},)")
        seeds = [_direction(w, Value(0.0), "vjp", f"item {k} of the cotangent",
                            "the output item") for k, w in enumerate(u)]
        return [w for w, _ in seeds], any(on_node for _, on_node in seeds)
    seed, _ = _direction(u, Tensor(np.zeros(len(out))), "vjp", "the cotangent", "the output")
    return [float(w) for w in seed], False


def _direction(v, like, who, name, of):
    """(v as a seed for a node shaped as ``like``, is it a node requiring a gradient): v, a
    tangent or cotangent, must be real numbers of like's shape, or a node of like's kind.
    A node requiring a gradient is kept where grad mode is on (what is built from it may be
    differentiated by a transform outside); else its numbers are taken. ``name`` and ``of``
    word the errors: 'the cotangent' and 'the output', 'tangent 1' and 'primal 1'."""
    kind, shape = type(like), np.shape(like.data)
    if isinstance(v, Node):
        if not isinstance(v, kind):
            raise TypeError(f"{who}: {name} is a {type(v).__name__}, {of} a {kind.__name__}: "
                            f"give real numbers of shape {shape}, or a {kind.__name__}")
        given = v.data
    else:
        given = v
    try:
        data = np.asarray(given)
    except ValueError as error:                     # (numpy's, for a ragged list)
        raise ValueError(f"{who}: {name}: {error}") from None
    if data.dtype.kind not in "iuf":
        got = (f"an array of {'bools' if data.dtype == np.bool_ else data.dtype} of shape "
               f"{data.shape}" if isinstance(given, (np.ndarray, list, tuple)) else
               f"a {type(v).__name__}")
        raise TypeError(f"{who}: {name} must be real numbers of {of}'s shape {shape}, "
                        f"got {got}")
    if data.shape != shape:
        raise ValueError(f"{who}: {name} has shape {data.shape}, {of} has shape {shape}")
    if isinstance(v, Node) and v.requires_grad and MODE.grad_enabled:
        return v, True
    dtype = np.asarray(like.data).dtype
    return (float(data) if kind is Value else data.astype(dtype)), False
