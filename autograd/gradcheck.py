"""Numerical checks: central differences and UFLDL's relative-error test.

    ∂f/∂xᵢ ≈ (f(x + ε eᵢ) − f(x − ε eᵢ)) / 2ε          error O(ε²)
    relative error = ‖a − n‖ / ‖a + n‖                 (0 when both are 0)
"""
from __future__ import annotations

import dataclasses
import numbers

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


def numerical_grad(f, *inputs, eps=1e-6):
    """Central-difference gradient of scalar ``f`` at ``inputs`` (computed in float64)."""
    points = [_as_float64(x) for x in inputs]

    def evaluate(values):
        with no_grad():
            return _scalar(f(*[_node(v, s) for v, (_, s) in zip(values, points)]))

    values = [v for v, _ in points]
    result = []
    for i, (value, scalar) in enumerate(points):
        if scalar:
            up, down = list(values), list(values)
            up[i], down[i] = value + eps, value - eps
            result.append((evaluate(up) - evaluate(down)) / (2 * eps))
            continue
        g = np.zeros_like(value)
        flat = value.reshape(-1)
        for k in range(flat.size):
            saved = flat[k]
            flat[k] = saved + eps
            plus = evaluate(values)
            flat[k] = saved - eps
            minus = evaluate(values)
            flat[k] = saved
            g.reshape(-1)[k] = (plus - minus) / (2 * eps)
        result.append(g)
    return result


def relative_error(analytic, numeric):
    """‖a − n‖ / ‖a + n‖, UFLDL's measure; 0 when both are exactly 0."""
    a = np.asarray(analytic, dtype=np.float64)
    n = np.asarray(numeric, dtype=np.float64)
    denominator = np.linalg.norm(a + n)
    numerator = np.linalg.norm(a - n)
    if denominator == 0:
        return 0.0 if numerator == 0 else float("inf")
    return float(numerator / denominator)


@dataclasses.dataclass
class InputCheck:
    index: int
    analytic: object
    numeric: object
    relative_error: float


@dataclasses.dataclass
class GradcheckReport:
    """Per-input comparison of autograd against central differences."""
    inputs: list
    tolerance: float

    @property
    def passed(self):
        return all(c.relative_error <= self.tolerance for c in self.inputs)

    def __bool__(self):
        return self.passed

    def __str__(self):
        lines = [f"gradcheck (tolerance {self.tolerance:g}): "
                 f"{'PASS' if self.passed else 'FAIL'}",
                 "input  relative error ‖a−n‖/‖a+n‖"]
        for c in self.inputs:
            mark = "ok" if c.relative_error <= self.tolerance else "FAIL"
            lines.append(f"{c.index:>5}  {c.relative_error:.3e}  {mark}")
        return "\n".join(lines)


def gradcheck(f, *inputs, tol=1e-6, eps=1e-6):
    """Compare autograd's gradient of scalar ``f`` with central differences, per input."""
    points = [_as_float64(x) for x in inputs]
    leaves = [_node(v if s else v.copy(), s) for v, s in points]
    with enable_grad():                 # checks record their graph even inside no_grad
        out = f(*leaves)
    if not isinstance(out, Node):
        raise TypeError(f"gradcheck needs f to return a Value or Tensor, got {type(out).__name__}")
    _scalar(out)
    analytic = gradients(out, leaves)
    numeric = numerical_grad(f, *[v for v, _ in points], eps=eps)
    checks = [InputCheck(i, a, n, relative_error(a, n))
              for i, (a, n) in enumerate(zip(analytic, numeric))]
    return GradcheckReport(checks, tol)
