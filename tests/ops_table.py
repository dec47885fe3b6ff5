"""One table of elementwise ops that drives the tests of `Value` and `Tensor` alike (STYLE.md
habit 9).

Each row holds: the op's name, how to apply it to nodes (the same lambda serves a Value, a Tensor
and a plain number mixed in), a float64 numpy reference, the reference derivative, and the
domain hypothesis draws inputs from. Domains stay inside the op's mathematical domain, away from
kinks (relu, abs, leaky_relu) and away from points where a derivative vanishes, because there
the *relative* error of central differences (‖a − n‖ / ‖a + n‖) is meaningless.

Binary rows say which operands are nodes: ``nodes=(True, False)`` is ``node ⊕ number`` and
``(False, True)`` the reflected ``number ⊕ node``.
"""
from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

#: Shared hypothesis settings: no deadline (timings vary), no example database in the repo.
SETTINGS = settings(deadline=None, max_examples=50, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


def real(lo, hi, away=(), gap=1e-2, keep=None):
    """Finite normal floats in [lo, hi], at least ``gap`` from every point in ``away``, and
    satisfying ``keep`` (a predicate) if given."""
    strategy = st.floats(lo, hi, allow_nan=False, allow_infinity=False, allow_subnormal=False)
    if away:
        strategy = strategy.filter(lambda x: all(abs(x - p) >= gap for p in away))
    if keep is not None:
        strategy = strategy.filter(keep)
    return strategy


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


@dataclasses.dataclass(frozen=True)
class Unary:
    name: str
    apply: Callable            # node -> node
    ref: Callable              # float64 ndarray -> ndarray
    dref: Callable             # f′, float64 ndarray -> ndarray
    domain: st.SearchStrategy  # floats inside the domain

    def __str__(self):
        return self.name


@dataclasses.dataclass(frozen=True)
class Binary:
    name: str
    apply: Callable            # (a, b) -> node; one of a, b may be a plain number
    ref: Callable              # (a, b) -> a ⊕ b
    dref: Callable             # (a, b) -> (∂/∂a, ∂/∂b)
    domain_a: st.SearchStrategy
    domain_b: st.SearchStrategy
    nodes: tuple = (True, True)   # which operands are nodes (False: a Python number)

    def __str__(self):
        return self.name


def _ones(x):
    return np.ones_like(np.asarray(x, dtype=np.float64))


UNARY = [
    Unary("neg", lambda x: -x, lambda x: -x, lambda x: -_ones(x), real(-10, 10)),
    Unary("exp", lambda x: x.exp(), np.exp, np.exp, real(-10, 10)),
    Unary("log", lambda x: x.log(), np.log, lambda x: 1.0 / x, real(1e-2, 100)),
    Unary("sqrt", lambda x: x.sqrt(), np.sqrt, lambda x: 0.5 / np.sqrt(x), real(1e-2, 100)),
    Unary("tanh", lambda x: x.tanh(), np.tanh, lambda x: 1.0 / np.cosh(x) ** 2, real(-3, 3)),
    Unary("sigmoid", lambda x: x.sigmoid(), _sigmoid,
          lambda x: _sigmoid(x) * (1.0 - _sigmoid(x)), real(-6, 6)),
    Unary("relu", lambda x: x.relu(), lambda x: np.maximum(x, 0.0),
          lambda x: (np.asarray(x) > 0).astype(np.float64), real(-10, 10, away=(0,))),
    Unary("leaky_relu", lambda x: x.leaky_relu(0.1), lambda x: np.where(x > 0, x, 0.1 * x),
          lambda x: np.where(np.asarray(x) > 0, 1.0, 0.1), real(-10, 10, away=(0,))),
    Unary("leaky_relu_default", lambda x: x.leaky_relu(), lambda x: np.where(x > 0, x, 0.01 * x),
          lambda x: np.where(np.asarray(x) > 0, 1.0, 0.01), real(-10, 10, away=(0,))),
    Unary("softplus", lambda x: x.softplus(), lambda x: np.log1p(np.exp(x)), _sigmoid,
          real(-10, 10)),
    Unary("abs", lambda x: abs(x), np.abs, np.sign, real(-10, 10, away=(0,))),
    Unary("abs_method", lambda x: x.abs(), np.abs, np.sign, real(-10, 10, away=(0,))),
    Unary("sin", lambda x: x.sin(), np.sin, np.cos,
          real(-10, 10, keep=lambda x: abs(np.cos(x)) > 1e-2)),
    Unary("cos", lambda x: x.cos(), np.cos, lambda x: -np.sin(x),
          real(-10, 10, keep=lambda x: abs(np.sin(x)) > 1e-2)),
]


def _binary_family(name, apply, ref, dref, domain_a, domain_b, number_a=None, number_b=None):
    """The node ⊕ node row plus node ⊕ number and number ⊕ node rows of one operator."""
    return [
        Binary(name, apply, ref, dref, domain_a, domain_b, (True, True)),
        Binary(f"{name}_number", apply, ref, dref, domain_a, number_b or domain_b, (True, False)),
        Binary(f"r{name}_number", apply, ref, dref, number_a or domain_a, domain_b, (False, True)),
    ]


_ANY = real(-10, 10)
_NONZERO = real(-10, 10, away=(0,), gap=1e-1)
_POSITIVE_BASE = real(0.2, 5, away=(1,), gap=5e-2)       # ln a not ~0: ∂(aᵇ)/∂b = aᵇ ln a
_EXPONENT = real(-3, 3, away=(0,))                       # b not ~0: ∂(aᵇ)/∂a = b aᵇ⁻¹

BINARY = (
    _binary_family("add", lambda a, b: a + b, lambda a, b: a + b,
                   lambda a, b: (_ones(a), _ones(b)), _ANY, _ANY)
    + _binary_family("sub", lambda a, b: a - b, lambda a, b: a - b,
                     lambda a, b: (_ones(a), -_ones(b)), _ANY, _ANY)
    + _binary_family("mul", lambda a, b: a * b, lambda a, b: a * b,
                     lambda a, b: (b * _ones(a), a * _ones(b)), _NONZERO, _NONZERO)
    + _binary_family("div", lambda a, b: a / b, lambda a, b: a / b,
                     lambda a, b: (1.0 / b * _ones(a), -a / b ** 2), _NONZERO, _NONZERO)
    + _binary_family("pow", lambda a, b: a ** b, lambda a, b: np.power(a, b),
                     lambda a, b: (b * np.power(a, b - 1), np.power(a, b) * np.log(a)),
                     _POSITIVE_BASE, _EXPONENT)
    + [
        # node ** integer: negative bases allowed
        Binary("pow_int_number", lambda a, b: a ** b, lambda a, b: np.power(a, float(b)),
               lambda a, b: (b * np.power(a, float(b) - 1), None),
               real(-5, 5, away=(0,), gap=0.2), st.sampled_from([-2, -1, 1, 2, 3, 4]),
               (True, False)),
        Binary("square", lambda a, b: a ** 2, lambda a, b: a ** 2,
               lambda a, b: (2 * a, None), _NONZERO, st.just(2), (True, False)),
        Binary("cube", lambda a, b: a ** 3, lambda a, b: a ** 3,
               lambda a, b: (3 * a ** 2, None), _NONZERO, st.just(3), (True, False)),
        Binary("reciprocal", lambda a, b: a ** -1, lambda a, b: 1.0 / a,
               lambda a, b: (-1.0 / a ** 2, None), _NONZERO, st.just(-1), (True, False)),
    ]
)

ALL_OPS = UNARY + BINARY
