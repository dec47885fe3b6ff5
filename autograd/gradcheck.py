"""Numerical checks: central differences and UFLDL's relative-error test.

    ∂f/∂xᵢ ≈ (f(x + ε eᵢ) − f(x − ε eᵢ)) / 2ε          error O(ε²) + rounding noise
    relative error = ‖a − n‖ / ‖a + n‖                 (0 when both are 0)

Each difference is only so exact (its ``allowance``, entry by entry): its rounding noise,
about u·(|f(x + εeᵢ)| + |f(x − εeᵢ)|)/2ε (u = 2⁻⁵², times NOISE_FACTOR = 8 for rounding
inside f), plus its O(ε²) truncation, estimated from the difference at 2ε (Richardson). The
verdict, per input:

    PASS          relative error ≤ tol; or ≤ NOISE_RTOL (10⁻³) with every entry within its
                  allowance (f = 10⁻³x + 100: a correct slope the differences cannot resolve
                  to tol); and in both cases every entry agrees to ENTRY_RTOL (10⁻⁴) relative
                  beyond its allowance — one norm can hide a wrong small entry
    INCONCLUSIVE  every entry within its allowance but the relative error larger: the
                  differences are too noisy to tell (scale f, change eps, or check at another point)
    FAIL          otherwise

``gradcheck(..., fast=True)`` is PyTorch's fast mode: for each input xᵢ one random direction vᵢ,
and for an output y of any shape one random weighting u, reduce the check to one number,

    uᵀ·(∂y/∂xᵢ)·vᵢ  by autograd (one backward pass: ⟨∂⟨u, y⟩/∂xᵢ, vᵢ⟩)
    ≈ (g(xᵢ + εvᵢ) − g(xᵢ − εvᵢ)) / 2ε,   g = ⟨u, y⟩      (four evaluations of f per input)

instead of four evaluations per entry: a network's 80,000 weights cost what one entry does. A
wrong entry of the Jacobian changes that number unless vᵢ and u happen to be orthogonal to the
error, which random normal draws are with probability 0; an error that only shows in a few
entries is diluted among the others, so the per-entry check (the default) is the stricter one.

``gradgradcheck`` checks second derivatives the same way: the gradient's own derivative, by
autograd through ``create_graph=True``, against central differences of the first-order gradient.
"""
from __future__ import annotations

import dataclasses
import numbers
import warnings

import numpy as np

from .core import Node, enable_grad, gradients, no_grad
from .tensor import Tensor
from .value import Value


def _as_float64(x):
    data = x.data if isinstance(x, Node) else x
    if isinstance(x, Value) or (isinstance(data, numbers.Real) and not isinstance(data, bool)
                                and np.ndim(data) == 0 and not isinstance(x, Tensor)):
        return float(data), True
    return np.array(data, dtype=np.float64), False


def _node(data, scalar):
    return Value(data) if scalar else Tensor(data, requires_grad=True)


def _scalar(out):
    if isinstance(out, Node):
        data = out.data
    else:
        data = out
    if np.size(data) != 1:
        raise ValueError(f"gradcheck needs a scalar-valued function, got shape {np.shape(data)}")
    return float(np.asarray(data).reshape(()))


ENTRY_RTOL = 1e-4          # each entry: |a − n| ≤ 1e-4·(|a| + |n|) + its allowance
NOISE_RTOL = 1e-3          # the most relative error rounding noise may excuse
NOISE_FACTOR = 8           # rounding in f itself: a few ulps of |f| (sums, cancellations)
# why a central difference can be nan or inf where the derivative rules give a number
NO_QUOTIENT = ("f is not finite at or within ε of the point (outside its domain, e.g. log or "
               "sqrt at 0, or overflowing), so there is no difference quotient to check against")


def numerical_grad(f, *inputs, eps=1e-6):
    """Central-difference gradient of scalar ``f`` at ``inputs`` (computed in float64)."""
    _check_step(eps)
    return _central_differences(f, [_as_float64(x) for x in inputs], eps)[0]


def _check_step(eps, tol=None):
    # eps = 0 divided by zero, and a nan eps or tol made every entry a "non-finite f" FAIL
    if isinstance(eps, bool) or not isinstance(eps, numbers.Real) or not (0 < eps < np.inf):
        raise ValueError(f"eps must be a finite number > 0, got {eps!r}")
    if tol is not None and (isinstance(tol, bool) or not isinstance(tol, numbers.Real)
                            or not (0 <= tol < np.inf)):
        raise ValueError(f"tol must be a finite number >= 0, got {tol!r}")


def _central_differences(f, points, eps):
    """(gradients, allowance): per input the central differences D(ε) and, entry by entry,
    how far they may be from the true slope: their rounding noise NOISE_FACTOR·u·(|f₊| +
    |f₋|)/2ε plus their O(ε²) truncation, estimated as |D(2ε) − D(ε)| / 3 (Richardson: the
    error of D(2ε) is four times D(ε)'s)."""

    def evaluate(values):
        with no_grad():
            return _scalar(f(*[_node(v, s) for v, (_, s) in zip(values, points)]))

    values = [v for v, _ in points]
    unit = NOISE_FACTOR * np.finfo(np.float64).eps / (2 * eps)

    def slope_and_allowance(set_value, saved):
        ends = []
        for step in (eps, 2 * eps):
            set_value(saved + step)
            plus = evaluate(values)
            set_value(saved - step)
            minus = evaluate(values)
            ends.append((plus, minus, (plus - minus) / (2 * step)))
        set_value(saved)
        (plus, minus, d1), (_, _, d2) = ends
        truncation = abs(d2 - d1) / 3 if np.isfinite(d2 - d1) else 0.0
        return d1, unit * abs(plus) + unit * abs(minus) + truncation    # no overflow at 1e308

    result, allowance = [], []
    for i, (value, scalar) in enumerate(points):
        if scalar:
            def set_scalar(v, i=i):
                values[i] = v
            d, e = slope_and_allowance(set_scalar, value)
            result.append(d)
            allowance.append(e)
            continue
        g, e = np.zeros_like(value), np.zeros_like(value)
        flat = value.reshape(-1)
        for k in range(flat.size):
            def set_entry(v, k=k):
                flat[k] = v
            g.reshape(-1)[k], e.reshape(-1)[k] = slope_and_allowance(set_entry, flat[k])
        result.append(g)
        allowance.append(e)
    return result, allowance


def relative_error(analytic, numeric):
    """‖a − n‖ / ‖a + n‖, UFLDL's measure; 0 when both are exactly 0."""
    a = np.asarray(analytic, dtype=np.float64)
    n = np.asarray(numeric, dtype=np.float64)
    # scaled by the largest entry: the norms square their entries, which overflow to inf
    # beyond 1e154 (a nan ratio) and underflow to 0 below 1e-162 (a ratio of 0 for 3e-200 vs 1e-200)
    scale = max(float(np.max(np.abs(a), initial=0)), float(np.max(np.abs(n), initial=0)))
    if 0 < scale < np.inf:
        a, n = a / scale, n / scale
    denominator = np.linalg.norm(a + n)
    numerator = np.linalg.norm(a - n)
    if denominator == 0:
        return 0.0 if numerator == 0 else float("inf")
    return float(numerator / denominator)


@dataclasses.dataclass
class InputCheck:
    """One input's verdict, ``status``: 'PASS', 'INCONCLUSIVE' or 'FAIL' (module docstring);
    ``worst`` is the entry farthest outside its allowance (its index, analytic and numeric
    values), or None."""
    index: int
    analytic: object
    numeric: object
    relative_error: float
    noise: object = 0.0
    tolerance: float = 1e-6
    worst: tuple = None

    def __post_init__(self):
        a = np.asarray(self.analytic, dtype=np.float64)
        n = np.asarray(self.numeric, dtype=np.float64)
        noise = np.broadcast_to(np.asarray(self.noise, dtype=np.float64), n.shape)
        diff = np.abs(a - n)
        beyond = np.where(np.isnan(diff), np.inf, diff - noise)      # outside the allowance
        excess = np.where(np.isnan(diff), np.inf, beyond - ENTRY_RTOL * (np.abs(a) + np.abs(n)))
        entries_ok = bool(n.size == 0 or excess.max() <= 0)
        # only noise excuses a relative error above tol: ENTRY_RTOL's slack does not (with it a
        # slope wrong by 5e-5 everywhere passed at tol 1e-6)
        within = bool(n.size == 0 or beyond.max() <= 0)
        rel = self.relative_error
        if (entries_ok and rel <= self.tolerance) or (within and rel <= NOISE_RTOL):
            self.status = "PASS"
        elif within:
            self.status = "INCONCLUSIVE"
        else:
            self.status = "FAIL"
            worst = excess if not entries_ok else beyond
            k = np.unravel_index(int(np.argmax(worst)), n.shape) if n.shape else ()
            self.worst = (tuple(int(i) for i in k), float(a[k]), float(n[k]))

    @property
    def passed(self):
        return self.status == "PASS"


@dataclasses.dataclass
class GradcheckReport:
    """Per-input comparison of autograd against central differences (``fast``: of uᵀJv along
    one random direction per input, module docstring)."""
    inputs: list
    tolerance: float
    fast: bool = False
    name: str = "gradcheck"

    @property
    def passed(self):
        return all(c.passed for c in self.inputs)

    def __bool__(self):
        return self.passed

    @property
    def status(self):
        """'PASS', 'INCONCLUSIVE' (no input failed, some too noisy to tell) or 'FAIL'."""
        states = {c.status for c in self.inputs}
        return "FAIL" if "FAIL" in states else "INCONCLUSIVE" if "INCONCLUSIVE" in states \
            else "PASS"

    def __str__(self):
        how = ", fast: uᵀJv along one random direction per input" if self.fast else ""
        lines = [f"{self.name} (tolerance {self.tolerance:g}{how}): {self.status}",
                 "input  relative error ‖a−n‖/‖a+n‖"]
        for c in self.inputs:
            mark = {"PASS": "ok"}.get(c.status, c.status)
            line = f"{c.index:>5}  {c.relative_error:.3e}  {mark}"
            if c.worst is not None:
                k, a, n = c.worst
                where = "uᵀJv" if self.fast else f"entry {k}"
                line += f"  ({where}: autograd {a:.6g}, numeric {n:.6g})"
                if not np.isfinite(n):
                    line += f" — {NO_QUOTIENT}"
            elif c.status == "INCONCLUSIVE":
                # the allowance is rounding noise plus O(ε²) truncation (10⁴x³ at 0: all
                # truncation, which scaling f does not shrink)
                line += ("  (the differences' own error, rounding noise plus O(ε²) truncation, "
                         "is as large as the gradient: scale f, change eps, or check at another "
                         "point)")
            elif c.relative_error > self.tolerance:
                line += ("  (within the differences' own error: rounding noise plus O(ε²) "
                         "truncation)")
            lines.append(line)
        return "\n".join(lines)


def gradcheck(f, *inputs, tol=1e-6, eps=1e-6, fast=False, seed=0):
    """Compare autograd's gradient of scalar ``f`` with central differences, per input (see the
    module docstring for the test). Inputs are checked in float64, as differences need: a
    float32 input is converted, with a warning that its float32 arithmetic is not what is
    checked.

    ``fast=True``: one random direction per input (and a random weighting of a non-scalar
    output), uᵀJv against one directional difference (module docstring); ``seed`` draws them."""
    _check_step(eps, tol)
    _check_flag("fast", fast)
    rng = _rng(seed)
    _warn_narrow("gradcheck", inputs)
    points = [_as_float64(x) for x in inputs]
    leaves = [_node(v if s else v.copy(), s) for v, s in points]
    with enable_grad():                 # checks record their graph even inside no_grad
        out = f(*leaves)
    if not isinstance(out, Node):
        raise TypeError(f"gradcheck needs f to return a Value or Tensor, got {type(out).__name__}")
    if fast:
        return _fast_check(f, points, leaves, out, tol, eps, rng)
    if np.size(out.data) != 1:
        raise ValueError(f"gradcheck needs a scalar-valued function, got shape "
                         f"{np.shape(out.data)} (fast=True checks any shape, through uᵀJv for "
                         f"random u and v)")
    analytic = gradients(out, leaves)
    numeric, noise = _central_differences(f, points, eps)
    checks = [InputCheck(i, a, n, relative_error(a, n), e, tol)
              for i, (a, n, e) in enumerate(zip(analytic, numeric, noise))]
    return GradcheckReport(checks, tol)


def _fast_check(f, points, leaves, out, tol, eps, rng):
    """Fast mode (module docstring): per input i, uᵀJᵢvᵢ by autograd against the central
    difference of t ↦ ⟨u, f(…, xᵢ + t·vᵢ, …)⟩ at t = 0."""
    u = rng.standard_normal(np.shape(out.data))
    weighted = (out * float(u)) if isinstance(out, Value) else (out * u).sum()
    directions = [rng.standard_normal(np.shape(v)) for v, _ in points]
    analytic = [float(np.sum(np.asarray(g, dtype=np.float64) * d))
                for g, d in zip(gradients(weighted, leaves), directions)]

    def along(i):
        def g(t):
            moved = [_node(v + t.data * d if k == i else v, s) for k, ((v, s), d)
                     in enumerate(zip(points, directions))]
            y = f(*moved)
            return float(np.sum(np.asarray(y.data if isinstance(y, Node) else y,
                                           dtype=np.float64) * u))
        return g

    checks = []
    for i, a in enumerate(analytic):
        (n,), (e,) = _central_differences(along(i), [(0.0, True)], eps)
        checks.append(InputCheck(i, a, n, relative_error(a, n), e, tol))
    return GradcheckReport(checks, tol, fast=True)


def gradgradcheck(f, *inputs, tol=1e-6, eps=1e-6, fast=False, seed=0):
    """Check second derivatives: `gradcheck` of

        h(x₁, …, x_k) = Σᵢ ⟨uᵢ, ∂f/∂xᵢ⟩        (random uᵢ of xᵢ's shape, drawn with ``seed``)

    whose gradient ∂h/∂xⱼ = Σᵢ uᵢᵀ ∂²f/∂xᵢ∂xⱼ, a Hessian-vector product, autograd forms through
    ``create_graph=True`` (the derivative rules' own derivatives) and the central differences
    from first-order gradients at x ± ε (as PyTorch's gradgradcheck, with random grad_outputs).
    ``f`` is scalar-valued; ``fast`` as in `gradcheck`."""
    _check_step(eps, tol)
    if not callable(f):
        raise TypeError(f"gradgradcheck needs a function, got {type(f).__name__}")
    rng = _rng(seed)
    _warn_narrow("gradgradcheck", inputs)
    inputs = [_as_float64(x)[0] for x in inputs]    # (so gradcheck does not warn again)
    weights = [rng.standard_normal(np.shape(x)) for x in inputs]

    def h(*xs):
        with enable_grad():             # the gradient is recorded even where h is evaluated
            out = f(*xs)                # under no_grad (the central differences)
            if not isinstance(out, Node):
                raise TypeError(f"gradgradcheck needs f to return a Value or Tensor, got "
                                f"{type(out).__name__}")
            if np.size(out.data) != 1:
                raise ValueError(f"gradgradcheck needs a scalar-valued function, got shape "
                                 f"{np.shape(out.data)}")
            total = None
            # (with create_graph every gradient is a node, a constant one where f ignores x)
            for g, u in zip(gradients(out, list(xs), create_graph=True), weights):
                term = g * float(u) if isinstance(g, Value) else (g * u).sum()
                total = term if total is None else total + term
            return total
    report = gradcheck(h, *inputs, tol=tol, eps=eps, fast=fast, seed=rng)
    report.name = "gradgradcheck"
    return report


def _warn_narrow(who, inputs):
    """Warn, naming ``who`` and pointing at its caller, that float32/float16 inputs are checked
    in float64."""
    narrow = [i for i, x in enumerate(inputs)
              if np.asarray(x.data if isinstance(x, Node) else x).dtype in (np.float16,
                                                                           np.float32)]
    if narrow:
        warnings.warn(f"{who}: input(s) {narrow} are float32 or float16; they are checked in "
                      f"float64 (central differences need it), so the narrower arithmetic "
                      f"itself is not what is checked", UserWarning, stacklevel=3)


def _rng(seed):
    try:
        return np.random.default_rng(seed)
    except (TypeError, ValueError) as error:
        raise ValueError(f"seed must be None, an integer >= 0 or a numpy Generator, got "
                         f"{seed!r} ({error})") from None


def _check_flag(name, flag):
    if not isinstance(flag, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {flag!r}")
