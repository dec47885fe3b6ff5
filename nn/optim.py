"""Optimisers: the document's update w = w − α ∂J/∂w, with momentum, Nesterov and Adam.

An optimiser holds "parameters": objects with ``.data`` (a numpy array, updated in place, or a
Python float for a `Value`, reassigned) and ``.grad`` (the same shape; None means "skip this
parameter this step"). `ArrayParameter` wraps a bare numpy array — the δ reference's W^(l), b^(l) —
so the same optimisers drive it.

The formulas are scikit-learn's (``sklearn/neural_network/_stochastic_optimizers.py``), step
for step, with g = ∂J/∂w:

    SGD   v = μ·v − α·g;  Δ = μ·v − α·g if nesterov else v;  w = w + Δ      (μ = 0: w = w − α g)
    Adam  t = t + 1;  m = β₁ m + (1 − β₁) g;  v = β₂ v + (1 − β₂) g²
          α_t = α · √(1 − β₂ᵗ) / (1 − β₁ᵗ);  w = w − α_t · m / (√v + ε)

Learning-rate schedules (SGD only, as in scikit-learn's solver='sgd'), driven once per epoch
by the training loop:

    constant    α stays α₀
    invscaling  iteration_ends(t): α = α₀ / (t + 1)^power_t, t = training samples seen so far
    adaptive    trigger_stopping(): α = α / 5 each time the loop reports n_iter_no_change
                epochs without improvement; "stop" once α ≤ 1e-6
"""
from __future__ import annotations

import math

import numpy as np

from autograd import kernels

SCHEDULES = ("constant", "invscaling", "adaptive")


class ArrayParameter:
    """A numpy array as a parameter: ``.data`` is the array itself (updated in place), ``.grad``
    its gradient (or None)."""

    __slots__ = ("data", "grad")

    def __init__(self, data, grad=None):
        if not isinstance(data, np.ndarray):
            raise TypeError(f"ArrayParameter holds a numpy array, got {type(data).__name__}")
        self.data = data
        self.grad = grad

    @classmethod
    def wrap(cls, arrays):
        """[ArrayParameter(a) for a in arrays]: e.g. ``ArrayParameter.wrap(net.parameters())``."""
        return [cls(a) for a in arrays]

    def zero_grad(self):
        self.grad = None

    def __repr__(self):
        return f"ArrayParameter(shape={self.data.shape}, dtype={self.data.dtype})"


def _positive(name, value):
    if not (isinstance(value, (int, float, np.floating, np.integer)) and not isinstance(value, bool)
            and math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


def _in_unit_interval(name, value, closed=False):
    if not (isinstance(value, (int, float, np.floating, np.integer)) and not isinstance(value, bool)
            and (0 <= value <= 1 if closed else 0 <= value < 1)):
        raise ValueError(f"{name} must lie in [0, 1{']' if closed else ')'}, got {value!r}")
    return float(value)


def _gradient(p):
    """p's gradient this step, or None to skip p: a `Value`'s ``.grad`` reads 0.0 when it has
    none (micrograd's convention), so its ``has_grad`` decides."""
    if getattr(p, "has_grad", True) is False:
        return None
    return p.grad


def _check_grad_shape(i, p, g):
    """A gradient must have its parameter's shape: numpy would broadcast a smaller one."""
    if not isinstance(p.data, float) and np.shape(g) != p.data.shape:
        raise ValueError(f"parameter {i}: gradient of shape {np.shape(g)} for a parameter of "
                         f"shape {p.data.shape}")


def _check_writeable(i, p):
    """An array parameter is updated in place: a read-only one (np.broadcast_to's view, a
    read-only memory map) is refused before anything changes."""
    data = p.data
    if type(data) is np.ndarray and not data.flags.writeable:
        raise ValueError(f"parameter {i}: its array is read-only, so it cannot be updated in "
                         f"place (give the optimiser a writeable copy)")


def _check_distinct(params):
    """A parameter listed twice would be stepped twice per step (Adam with two sets of
    moments): refused, as PyTorch warns it will be. Two holders of one array count as one."""
    first = {}
    for i, p in enumerate(params):
        keys = [id(p)] + ([id(p.data)] if isinstance(p.data, np.ndarray) else [])
        for key in keys:
            if key in first:
                raise ValueError(f"parameters {first[key]} and {i} are the same parameter: "
                                 f"each must be listed once (a shared one would be updated "
                                 f"twice per step)")
        for key in keys:
            first[key] = i


def _array_size(params):
    """How many numbers the array parameters hold (the work of one update)."""
    return sum(p.data.size for p in params if isinstance(p.data, np.ndarray))


def _zeros_like(p):
    return 0.0 if isinstance(p.data, float) else np.zeros_like(p.data)


def _add_to(p, update):
    """w = w + Δ: in place for arrays (so views such as the δ reference's W^(l) follow), a new
    float for a Value."""
    if isinstance(p.data, float):
        p.data = float(p.data + update)
    else:
        p.data += update


def _add_scratch_to(w, update):
    """w = w + Δ in place, Δ in a scratch array (overwritten): w + Δ into the scratch, then copied
    into w — the same floats as ``w += Δ``. Measured on the 2-core benchmark machine: ``w += Δ``
    on W^(1) right after the BLAS threads read it (the forward X·W) takes ~3× as long as this
    read pass plus write-only pass (~100 µs against ~35 µs per step); elsewhere it costs one
    extra pass over the (cache-hot) scratch."""
    np.add(w, update, out=update)
    np.copyto(w, update)


def _decay_factors(params, decay):
    """``decay=(parameters, d)`` as one d (or None) per parameter of ``params``, checked."""
    if decay is None:
        return None
    try:
        decayed, factor = decay
        decayed = list(decayed)
    except (TypeError, ValueError):
        raise TypeError(f"decay must be a pair (parameters, factor), got "
                        f"{type(decay).__name__}") from None
    if not (isinstance(factor, (int, float, np.floating, np.integer))
            and not isinstance(factor, bool) and math.isfinite(factor)):
        raise ValueError(f"decay's factor must be a finite number, got {factor!r}")
    index = {id(p): i for i, p in enumerate(params)}
    factors = [None] * len(params)
    for p in decayed:
        i = index.get(id(p))
        if i is None:
            raise ValueError(f"decay names a parameter this optimiser does not hold: {p!r}")
        factors[i] = float(factor)
    return factors


def _decayed(g, w, factor):
    """g + factor·w, a new gradient (g is left as it is): `kernels.add_scaled`'s floats."""
    if isinstance(w, float):
        return g + w * factor
    return kernels.decayed(g, w, factor)


def takes_decay(optimizer):
    """True when ``optimizer.step`` is one of this module's, which take ``decay``; a subclass
    may override ``step()`` without it."""
    return type(optimizer).step in (Optimizer.step, SGD.step, Adam.step)


class Optimizer:
    """The shared part: the parameter list, ``lr``, ``zero_grad`` and the schedule hooks.

    ``step(decay=(params, d))`` adds d·w to the gradient of each of those parameters for this
    update: an L2 term c·Σ w²'s gradient (d = 2c), or PyTorch's coupled ``weight_decay``.
    Their ``.grad`` is left as it is; `SGD` and `Adam` add it inside their compiled pass,
    saving a pass over w and its gradient. The numbers are those of adding d·w to ``.grad``
    (`kernels.add_scaled`) and stepping.
    """

    def __init__(self, params, lr):
        self.params = list(params)
        if not self.params:
            raise ValueError(f"{type(self).__name__} got an empty parameter list")
        for i, p in enumerate(self.params):
            if not (hasattr(p, "data") and hasattr(p, "grad")):
                raise TypeError(f"parameter {i} ({type(p).__name__}) has no .data/.grad; wrap "
                                "a numpy array in nn.optim.ArrayParameter")
        _check_distinct(self.params)
        self.lr_init = _positive("lr", lr)
        self._lr = self.lr_init
        self._size = _array_size(self.params)     # decides whether compiled kernels pay

    @property
    def lr(self):
        """α, the current learning rate (settable)."""
        return self._lr

    @lr.setter
    def lr(self, value):
        self._lr = _positive("lr", value)

    def zero_grad(self):
        for p in self.params:
            p.grad = None

    def step(self, decay=None):
        """One update w = w + Δ of every parameter whose ``.grad`` is not None (``decay``: see
        the class)."""
        factors = _decay_factors(self.params, decay)
        for i, p in enumerate(self.params):
            g = _gradient(p)
            if g is not None:
                _check_grad_shape(i, p, g)
                if factors and factors[i] is not None:
                    g = _decayed(g, p.data, factors[i])
                _add_to(p, self._update(i, g))

    def _update(self, i, g):
        raise NotImplementedError

    # -- hooks the training loop calls once per epoch (scikit-learn's names) ------------------
    def iteration_ends(self, time_step):
        """End of an epoch; ``time_step`` = training samples seen so far."""

    def trigger_stopping(self, msg=None, verbose=False):
        """The loop saw n_iter_no_change epochs without improvement: True means "stop"."""
        if verbose and msg:
            print(msg + " Stopping.")
        return True


class SGD(Optimizer):
    """``SGD(params, lr=0.001, momentum=0.0, nesterov=False, schedule='constant', power_t=0.5)``.

    v = μ·v − α·g;  Δ = μ·v − α·g (Nesterov) or v;  w = w + Δ.  With μ = 0 this is the
    document's w = w − α ∂J/∂w. A velocity below the smallest normal float is set to 0, as
    `Adam`'s moments are (so a gradient that stays 0 does not leave it stuck subnormal).
    """

    def __init__(self, params, lr=0.001, momentum=0.0, nesterov=False, schedule="constant",
                 power_t=0.5):
        super().__init__(params, lr)
        self.momentum = _in_unit_interval("momentum", momentum, closed=True)   # scikit-learn's
        self.nesterov = bool(nesterov)
        if schedule not in SCHEDULES:
            raise ValueError(f"unknown schedule {schedule!r}; choose one of "
                             f"{', '.join(SCHEDULES)}")
        self.schedule = schedule
        if not (isinstance(power_t, (int, float, np.floating, np.integer))
                and not isinstance(power_t, bool) and math.isfinite(power_t) and power_t >= 0):
            raise ValueError(f"power_t must be a finite number >= 0, got {power_t!r}")
        self.power_t = float(power_t)
        self.velocities = [_zeros_like(p) for p in self.params]

    def step(self, decay=None):
        """One update of every parameter whose ``.grad`` is not None: an array in one fused
        pass when `autograd.kernels` can (the same floats), else the formula in numpy. Every
        gradient's shape and every array's writeability is checked before any parameter
        moves. ``decay``: see `Optimizer`."""
        params = self.params
        factors = _decay_factors(params, decay) or [None] * len(params)
        grads = [_gradient(p) for p in params]
        for i, g in enumerate(grads):   # all checked first, as Adam's: a bad one moves none
            if g is not None:
                _check_grad_shape(i, params[i], g)
                _check_writeable(i, params[i])
        for i, p in enumerate(params):
            g, factor = grads[i], factors[i]
            if g is None:
                continue
            if not (isinstance(p.data, np.ndarray)
                    and kernels.sgd_update(p.data, g, self.velocities[i], self._lr,
                                           self.momentum, self.nesterov, work=self._size,
                                           decay=factor)):
                _add_to(p, self._update(i, g if factor is None
                                        else _decayed(g, p.data, factor)))

    def _update(self, i, g):
        mu, lr = self.momentum, self._lr
        v = mu * self.velocities[i] - lr * g
        if type(v) is np.ndarray:       # as the compiled loop: no velocity stuck subnormal
            kernels.flush_subnormal(v, np.empty_like(v))
        self.velocities[i] = v
        return mu * v - lr * g if self.nesterov else v

    def iteration_ends(self, time_step):
        """invscaling: α = α₀ / (t + 1)^power_t, t = samples seen (scikit-learn's t_)."""
        if self.schedule == "invscaling":
            self._lr = self.lr_init / (time_step + 1) ** self.power_t

    def trigger_stopping(self, msg=None, verbose=False):
        """adaptive: α = α / 5 and go on (False), or stop (True) once α ≤ 1e-6; other
        schedules: stop."""
        if self.schedule != "adaptive":
            return super().trigger_stopping(msg, verbose)
        if self._lr <= 1e-6:
            if verbose and msg:
                print(msg + " Learning rate too small. Stopping.")
            return True
        self._lr /= 5.0
        if verbose and msg:
            print(msg + f" Setting learning rate to {self._lr:f}")
        return False

    def __repr__(self):
        text = f"SGD(lr={self._lr:g}, momentum={self.momentum:g}"
        if self.nesterov:
            text += ", nesterov=True"
        if self.schedule != "constant":
            text += f", schedule={self.schedule!r}"
            if self.schedule == "invscaling":
                text += f", lr_init={self.lr_init:g}, power_t={self.power_t:g}"
        return text + f", params={len(self.params)})"


class Adam(Optimizer):
    """``Adam(params, lr=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-8)``, scikit-learn's defaults.

    t = t + 1;  m = β₁ m + (1 − β₁) g;  v = β₂ v + (1 − β₂) g²;
    α_t = α √(1 − β₂ᵗ) / (1 − β₁ᵗ);  w = w − α_t m / (√v + ε).
    ``lr`` is α; ``lr_t`` is the bias-corrected α_t of the latest step.

    The moments of the array parameters of one dtype live side by side in one flat buffer
    (``ms[i]``, ``vs[i]`` are views of it): when every one of them has a gradient, a step
    copies the gradients in and runs each of the formula's eleven array operations once over
    the whole buffer, not once per parameter — the same floats (the same operations in the
    same order, scikit-learn's, element by element), half the numpy calls for two layers.
    When `autograd.kernels` runs compiled (numba installed) each parameter's update is instead
    one fused pass over w, g, m and v — again the same floats, ~4× less memory traffic. On
    every path a gradient is first rounded to its parameter's dtype (a float64 gradient of a
    float32 parameter: float32 arithmetic), and every gradient's shape is checked before any
    parameter moves.

    One departure from scikit-learn: a moment that falls below the dtype's smallest normal
    number is set to 0 (`autograd.kernels`' flush). A gradient that stays exactly 0 (the
    weights of an always-blank pixel, without L2) would otherwise leave m stuck among the
    subnormal floats, whose arithmetic is slow: Fashion-MNIST without L2 ran 27% slower per
    epoch from the third on. The flush moves a step by at most α_t·(smallest normal)/ε.

    t counts steps; a parameter skipped (``.grad`` None) does not advance its own count
    (``steps[i]``), so its bias correction after it is unfrozen is that of its own first
    steps, as in PyTorch. When nothing is ever skipped every count is t.
    """

    def __init__(self, params, lr=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-8):
        super().__init__(params, lr)
        self.beta_1 = _in_unit_interval("beta_1", beta_1)
        self.beta_2 = _in_unit_interval("beta_2", beta_2)
        self.epsilon = _positive("epsilon", epsilon)
        self.t = 0
        self.lr_t = self._lr
        n = len(self.params)
        self.steps = [0] * n
        self.ms, self.vs = [0.0] * n, [0.0] * n
        self._scratch = [None] * n
        self._groups = []
        by_dtype = {}
        for i, p in enumerate(self.params):
            if isinstance(p.data, np.ndarray):
                if p.data.dtype.kind in "biu":      # m/(√v + ε) has no integer rounding
                    raise TypeError(f"Adam updates floating-point parameters; parameter {i} "
                                    f"holds {p.data.dtype} (convert it with .astype(float))")
                by_dtype.setdefault(p.data.dtype, []).append(i)
        for dtype, indices in by_dtype.items():
            self._groups.append(_Packed([self.params[i].data.shape for i in indices], dtype,
                                        indices))
        self._link_views()

    def _link_views(self):
        """ms[i], vs[i] and the scratch of a packed parameter: views of its group's buffers."""
        for group in self._groups:
            for k, i in enumerate(group.indices):
                self.ms[i], self.vs[i] = group.m_views[k], group.v_views[k]
                self._scratch[i] = (group.t1_views[k], group.t2_views[k])
        # flat views of every moment, for the common compiled step (None: a Value among them)
        packed = all(isinstance(m, np.ndarray) for m in self.ms)
        self._flats = [(m.reshape(-1), v.reshape(-1)) for m, v in
                       zip(self.ms, self.vs)] if packed else None

    def __getstate__(self):
        # Views would be pickled (and deep-copied) as separate arrays, cut off from the flat
        # buffers the packed step works on: keep the buffers, rebuild the views on load.
        state = dict(self.__dict__)
        packed = {i for group in self._groups for i in group.indices}
        for name in ("ms", "vs", "_scratch"):
            state[name] = [None if i in packed else x for i, x in enumerate(state[name])]
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        if "_size" not in state:        # pickled before the compiled kernels (no _size yet)
            self._size = _array_size(self.params)
        self._link_views()

    def _bias_corrected_lr(self, t):
        return self._lr * math.sqrt(1 - self.beta_2 ** t) / (1 - self.beta_1 ** t)

    def step(self, decay=None):
        """One update of every parameter whose ``.grad`` is not None (``decay``: see
        `Optimizer`)."""
        factors = _decay_factors(self.params, decay)
        if self._common_step(factors):
            return
        params = self.params
        factors = factors or [None] * len(params)
        grads = [_gradient(p) for p in params]
        for i, g in enumerate(grads):   # all checked first: a bad one leaves every one as it was
            if g is not None:
                _check_grad_shape(i, params[i], g)
                _check_writeable(i, params[i])
        self.t += 1
        self.lr_t = self._bias_corrected_lr(self.t)
        # compiled kernels update each parameter in one pass: packing would only add copies
        if kernels.compiled(self._size):
            done = ()
        else:
            grads = [g if f is None or g is None else _decayed(g, p.data, f)
                     for p, g, f in zip(params, grads, factors)]
            factors = [None] * len(params)
            done = self._packed_steps(grads)
        steps, b1, b2, epsilon = self.steps, self.beta_1, self.beta_2, self.epsilon
        for i, p in enumerate(params):
            g = grads[i]
            if g is None or i in done:
                continue
            steps[i] += 1
            lr_t = self.lr_t if steps[i] == self.t else self._bias_corrected_lr(steps[i])
            if isinstance(p.data, np.ndarray):
                kernels.adam_update(p.data, g, self.ms[i], self.vs[i], b1, b2, epsilon, lr_t,
                                    self._scratch[i], work=self._size, decay=factors[i])
            else:
                _add_to(p, self._update(i, g if factors[i] is None
                                        else _decayed(g, p.data, factors[i]), lr_t))

    def _common_step(self, factors=None):
        """The usual step, compiled, without the general path's per-call checks: every
        parameter an array (C-contiguous, writeable) with a gradient of its shape and dtype
        (C-contiguous), never skipped, its moments of that dtype. Then each update is
        `kernels.adam_update`'s loop on flat views, the same floats. All is checked before
        anything moves; False (nothing done) when any of it does not hold, and the general
        path steps, or says what is wrong."""
        flats = self._flats
        if flats is None or not kernels.compiled(self._size):
            return False
        t, steps, todo = self.t, self.steps, []
        for i, p in enumerate(self.params):
            w, g = p.data, p.grad
            m, v = flats[i]
            if (type(w) is not np.ndarray or type(g) is not np.ndarray or steps[i] != t
                    or g.shape != w.shape or g.dtype != w.dtype or w.dtype != m.dtype
                    or w.size != m.size):
                return False
            flags = w.flags
            if not (flags.c_contiguous and flags.writeable and g.flags.c_contiguous):
                return False
            todo.append((w.reshape(-1), g.reshape(-1), m, v))
        self.t = t = t + 1
        self.lr_t = lr_t = self._bias_corrected_lr(t)
        constants = {}
        for i, (w, g, m, v) in enumerate(todo):
            dtype = w.dtype
            if dtype not in constants:
                constants[dtype] = (kernels.adam_constants(dtype, self.beta_1, self.beta_2,
                                                           self.epsilon), dtype.type(-lr_t))
            factor = factors[i] if factors else None
            kernels.adam_update_flat(w, g, m, v, *constants[dtype],
                                     None if factor is None else dtype.type(factor))
            steps[i] = t
        return True

    def _packed_steps(self, grads):
        """The numpy path's packed updates: each group whose parameters all have a gradient
        and have never been skipped, at once over its flat buffers. Returns their indices."""
        steps, done = self.steps, set()
        for group in self._groups:
            mine = [grads[i] for i in group.indices]
            if any(g is None for g in mine) or any(steps[i] != self.t - 1
                                                   for i in group.indices):
                continue        # skipped now or before: one parameter at a time
            self._packed_step(group, mine)
            for i in group.indices:
                steps[i] = self.t
            done.update(group.indices)
        return done

    def _packed_step(self, group, grads):
        """The update of every parameter of the group at once, over the flat buffers. Each
        gradient is first rounded to the group's dtype (copied into t2), unless a lone one
        already has it and shares no memory with the buffers the update writes."""
        b1, b2 = self.beta_1, self.beta_2
        m, v, t1, t2 = group.m, group.v, group.t1, group.t2
        g = grads[0] if len(grads) == 1 else None
        if (type(g) is np.ndarray and g.dtype == m.dtype and not np.may_share_memory(g, m)
                and not np.may_share_memory(g, v) and not np.may_share_memory(g, t1)):
            g = g.reshape(-1)
        else:
            for view, grad in zip(group.t2_views, grads):
                np.copyto(view, grad)
            g = t2
        kernels.adam_step_numpy(m, v, g, t1, t2, b1, b2, self.epsilon, self.lr_t)
        params = self.params
        for i, update in zip(group.indices, group.t2_views):
            _add_scratch_to(params[i].data, update)

    def _update(self, i, g, lr_t):
        """The step of a `Value` parameter (plain floats; arrays go through kernels)."""
        b1, b2 = self.beta_1, self.beta_2
        m = b1 * self.ms[i] + (1 - b1) * g
        v = b2 * self.vs[i] + (1 - b2) * (g * g)
        self.ms[i], self.vs[i] = m, v
        return -lr_t * m / (math.sqrt(v) + self.epsilon)

    def __repr__(self):
        return (f"Adam(lr={self._lr:g}, beta_1={self.beta_1:g}, beta_2={self.beta_2:g}, "
                f"epsilon={self.epsilon:g}, t={self.t}, params={len(self.params)})")


class _Packed:
    """Adam's state for same-dtype array parameters: m, v and two scratch arrays, each one flat
    buffer; ``*_views[k]`` is parameter k's part, in its shape."""

    def __init__(self, shapes, dtype, indices, m=None, v=None):
        self.indices = list(indices)
        self.shapes = [tuple(shape) for shape in shapes]
        sizes = [int(np.prod(shape)) for shape in self.shapes]
        bounds = np.cumsum([0] + sizes)
        for name, flat in (("m", m), ("v", v), ("t1", None), ("t2", None)):
            if flat is None:
                flat = np.zeros(int(bounds[-1]), dtype=dtype)
            setattr(self, name, flat)
            setattr(self, name + "_views", [flat[a:b].reshape(shape) for a, b, shape
                                             in zip(bounds[:-1], bounds[1:], self.shapes)])

    def __reduce__(self):
        # the flat moments only: views of them are rebuilt (pickled views would be copies)
        return (_Packed, (self.shapes, self.m.dtype, self.indices, self.m, self.v))
