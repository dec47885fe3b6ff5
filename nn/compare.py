"""Autograd vs the document's δ formulas vs central differences, layer by layer.

Three witnesses of the same gradients ∂J/∂W^(l), ∂J/∂b^(l), l = 1..L:

    autograd   J built from the model's nodes (cost + L2 on `model.weights()`), then the
               chain rule run by the graph core (`autograd.gradients`; no ``.grad`` is touched)
    δ          `nn.delta.backprop` on the model's arrays W^(l), b^(l): the document's residuals
               δ^(L+1) = −(y − a^(L+1)) ⊙ f′(z^(L)),  δ^(l) = (δ^(l+1) · W^(l)ᵀ) ⊙ f′(z^(l−1)),
               ∂J/∂W^(l) = a^(l)ᵀ · δ^(l+1),  ∂J/∂b^(l) = Σ_i δ^(l+1)_i   (with the 1/n folded in)
    numeric    central differences in float64, (J(p + ε) − J(p − ε)) / 2ε for each entry p of
               W^(l), b^(l); J is re-evaluated by the δ reference's forward pass (plain numpy,
               the default) or by the model itself under `no_grad` (``numeric_forward="autograd"``)

Each pair is compared by UFLDL's relative difference ‖a − d‖ / ‖a + d‖ (0 when both are 0).
A gradient too small for that measure against central differences (every entry within their
own noise, `Comparison.numeric_floor` ≈ 10 ε_mach max(|J|, 1) / ε) counts as agreeing, marked (*).
Autograd and δ sum the same terms in other orders: where those terms cancel (at a minimum) the
gradient is rounding noise, so every entry within 16·(n + width)·ε_mach of Σ|terms| (for W^(l):
|a^(l)|ᵀ·|δ^(l+1)|) counts as agreeing, marked (†). Central differences mean nothing where a
ReLU's z^(l) sits at its kink: any |z| ≤ 10 ε at a ReLU layer, and any unit whose side of 0
the ±ε evaluations change, is listed in that layer's ``kinks`` and in ``warnings``.

Default tolerances: rel(autograd, δ) ≤ 1e-12 and rel(·, numeric) ≤ 1e-6 for a float64 model.
A model in a lower precision rounds ~1e-7 away from the float64 witnesses (float32): autograd is
held to them within `Comparison.model_rounding` = 100 ε_mach of its dtype more (1.2e-5), and
the ε_mach above are the model's for autograd's sums and the precision J is re-evaluated in for
the noise floor.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from autograd import Tensor, gradients, no_grad, relative_error

from . import delta as delta_ref
from .losses import get_cost, l2_penalty
from .tensor_nets import MLP
from .value_nets import MLP as ValueMLP

NUMERIC_FORWARDS = ("delta", "autograd")
TOL_DELTA = 1e-12       # rel(autograd, δ) for a float64 model: the same formulas, up to rounding


@dataclasses.dataclass
class ParameterComparison:
    """∂J/∂p for one parameter array p (W^(l) or b^(l)) by the three witnesses.

    ``numeric`` is None when central differences were not run; otherwise it holds the entries
    listed in ``entries`` (flat indices into p; all of them unless ``max_entries`` sampled).
    """
    name: str                     # "W(1)", "b(1)", ...
    layer: int                    # l
    autograd: np.ndarray
    delta: np.ndarray
    numeric: np.ndarray | None = None
    entries: np.ndarray | None = None
    rounding: np.ndarray | float = 0.0      # per entry: the summation noise of autograd vs δ

    @property
    def shape(self):
        return self.delta.shape

    @property
    def max_abs_delta(self):
        """max |autograd − δ| over every entry."""
        return _max_abs(self.autograd - self.delta)

    @property
    def rel_delta(self):
        """‖autograd − δ‖ / ‖autograd + δ‖."""
        return relative_error(self.autograd, self.delta)

    def delta_agrees(self, tol):
        """rel(autograd, δ) ≤ tol, or every entry within ``rounding`` (their summation noise)."""
        return bool(self.rel_delta <= tol or np.all(
            np.abs(np.asarray(self.autograd, np.float64) - self.delta) <= self.rounding))

    def _sampled(self, g):
        return g.reshape(-1)[self.entries]

    @property
    def max_abs_numeric(self):
        """max |autograd − numeric| over the entries checked numerically (None if not run)."""
        if self.numeric is None:
            return None
        return _max_abs(self._sampled(self.autograd) - self.numeric)

    @property
    def rel_numeric(self):
        """‖autograd − numeric‖ / ‖autograd + numeric‖ on the checked entries (None if not run)."""
        if self.numeric is None:
            return None
        return relative_error(self._sampled(self.autograd), self.numeric)

    @property
    def rel_delta_numeric(self):
        """‖δ − numeric‖ / ‖δ + numeric‖ on the checked entries (None if not run)."""
        if self.numeric is None:
            return None
        return relative_error(self._sampled(self.delta), self.numeric)

    @property
    def max_abs_delta_numeric(self):
        """max |δ − numeric| over the entries checked numerically (None if not run)."""
        if self.numeric is None:
            return None
        return _max_abs(self._sampled(self.delta) - self.numeric)

    def numeric_agreement(self, tol, floor, tol_autograd=None):
        """{"autograd": …, "δ": …}: whether each analytic gradient matches central differences:
        relative difference ≤ tol (``tol_autograd`` for autograd, if given), or every entry
        within ``floor``, the noise of central differences themselves (a gradient that small
        cannot be told apart from 0 by them, so its relative difference means little). Both
        True when central differences were not run."""
        if self.numeric is None:
            return {"autograd": True, "δ": True}
        tol_autograd = tol if tol_autograd is None else tol_autograd
        return {"autograd": self.rel_numeric <= tol_autograd or self.max_abs_numeric <= floor,
                "δ": self.rel_delta_numeric <= tol or self.max_abs_delta_numeric <= floor}

    def numeric_agrees(self, tol, floor, tol_autograd=None):
        """Both analytic gradients match central differences (see `numeric_agreement`)."""
        return all(self.numeric_agreement(tol, floor, tol_autograd).values())

    def below_floor(self, tol, floor, tol_autograd=None):
        """True when this row passes only by the noise floor (a relative difference above its
        tolerance)."""
        tol_autograd = tol if tol_autograd is None else tol_autograd
        return (self.numeric is not None and self.numeric_agrees(tol, floor, tol_autograd)
                and not (self.rel_numeric <= tol_autograd and self.rel_delta_numeric <= tol))


@dataclasses.dataclass
class LayerComparison:
    """Layer l: z^(l) = a^(l) · W^(l) + b^(l), a^(l+1) = f_l(z^(l)).

    ``kinks`` lists (row i, unit j, z^(l)_ij) for every pre-activation of a ReLU layer with
    |z| ≤ 10 ε, where central differences straddle the kink of max(z, 0).
    """
    layer: int
    activation: str
    W: ParameterComparison
    b: ParameterComparison
    kinks: list = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class Comparison:
    """The result of `compare_gradients`; ``table()`` prints it, ``passed()`` judges it."""
    layers: list
    cost_autograd: float
    cost_delta: float
    warnings: list
    engine: str                   # "tensor" or "value"
    sizes: list                   # [n^(1), …, n^(L+1)]
    activations: list            # [f_1, …, f_L]
    cost: str
    l2: float
    l2_convention: str
    n: int                        # rows in the batch
    eps: float
    numeric_forward: str | None   # None when central differences were not run
    delta_result: object = None   # the full nn.delta.DeltaResult (a, z, δ, gradients)
    dtype: str = "float64"        # the model's

    @property
    def parameters(self):
        """[W(1), b(1), W(2), b(2), …] as `ParameterComparison`s."""
        return [p for layer in self.layers for p in (layer.W, layer.b)]

    @property
    def numeric(self):
        return self.numeric_forward is not None

    @property
    def numeric_floor(self):
        """The noise of central differences: rounding in J, 10 ε_mach max(|J|, 1), divided by ε,
        plus the O(ε²) truncation error, with the ε_mach of the precision J is re-evaluated in
        (the model's under ``numeric_forward="autograd"``). Smaller gradient differences are
        not evidence."""
        precision = self.dtype if self.numeric_forward == "autograd" else np.float64
        scale = max(abs(self.cost_delta), 1.0)
        return 10 * np.finfo(precision).eps * scale / self.eps + self.eps ** 2

    @property
    def model_rounding(self):
        """How much further than a float64 one autograd may stray from the float64 witnesses
        (δ, central differences) when the model computes in a lower precision: 0 for float64,
        else 100 ε_mach of the model's dtype (1.2e-5 in float32, where a correct gradient is
        ~1e-7 off)."""
        return _model_rounding(self.dtype)

    def tol_delta(self, tol=None):
        """The tolerance of rel(autograd, δ): ``tol`` if given, else 1e-12, or
        `model_rounding` for a model in a lower precision."""
        return max(TOL_DELTA, self.model_rounding) if tol is None else tol

    def passed(self, tol_delta=None, tol_numeric=1e-6):
        """True when every rel(autograd, δ) ≤ tol_delta (default `tol_delta()`) and, if central
        differences ran, every rel(δ, numeric) ≤ tol_numeric and rel(autograd, numeric) ≤
        tol_numeric + `model_rounding` — or, for a gradient too small for central differences
        to resolve, every entry within `numeric_floor`. NaN never passes."""
        return self._delta_ok(tol_delta) and self._numeric_ok(tol_numeric)

    def _delta_ok(self, tol=None):
        """Every gradient and J agree (J to tol relative, or to its rounding)."""
        tol = self.tol_delta(tol)
        J_noise = (16 * np.finfo(self.dtype).eps * max(abs(self.cost_delta), 1e-300)
                   * (self.n + 1))
        J_ok = abs(self.cost_autograd - self.cost_delta) <= max(
            tol * max(abs(self.cost_autograd), abs(self.cost_delta)), J_noise)
        return J_ok and all(p.delta_agrees(tol) for p in self.parameters)

    def _numeric_agreement(self, p, tol):
        return p.numeric_agreement(tol, self.numeric_floor, tol + self.model_rounding)

    def _below_floor(self, p, tol):
        return p.below_floor(tol, self.numeric_floor, tol + self.model_rounding)

    def _numeric_ok(self, tol):
        return all(all(self._numeric_agreement(p, tol).values()) for p in self.parameters)

    def _numeric_disagreeing(self, tol):
        """The witnesses ("autograd", "δ") that some parameter's central differences contradict."""
        return [who for who in ("autograd", "δ")
                if not all(self._numeric_agreement(p, tol)[who] for p in self.parameters)]

    @property
    def kinks(self):
        """Every (layer, row, unit, z) at a ReLU kink, where central differences mean nothing."""
        return [(layer.layer, *k) for layer in self.layers for k in layer.kinks]

    def status(self, tol_delta=None, tol_numeric=1e-6):
        """'PASS'; 'FAIL'; or 'INCONCLUSIVE' when autograd and δ agree and only central
        differences disagree while some z sits at a ReLU kink (where they are not meaningful)."""
        if self.passed(tol_delta, tol_numeric):
            return "PASS"
        if self._delta_ok(tol_delta) and self.kinks:
            return "INCONCLUSIVE"
        return "FAIL"

    def vacuous(self):
        """Names of the parameters whose gradient is exactly 0 by every method (a dead ReLU
        unit, say): agreeing on 0 shows nothing about the chain rule there."""
        return [p.name for p in self.parameters
                if not np.any(p.autograd) and not np.any(p.delta)
                and (p.numeric is None or not np.any(p.numeric))]

    def vacuous_entries(self):
        """{name: (zero entries, entries)} for the parameters with some — not all — entries
        exactly 0 by every method (autograd, δ, and central differences where they ran)."""
        out = {}
        for p in self.parameters:
            zero = (np.asarray(p.autograd) == 0) & (np.asarray(p.delta) == 0)
            if p.numeric is not None:
                checked = np.zeros(zero.size, dtype=bool)
                checked[p.entries] = p.numeric == 0
                zero &= checked.reshape(zero.shape) | ~np.isin(
                    np.arange(zero.size), p.entries).reshape(zero.shape)
            count = int(np.count_nonzero(zero))
            if 0 < count < zero.size:
                out[p.name] = (count, zero.size)
        return out

    def verdict(self, tol_delta=None, tol_numeric=1e-6):
        """One line: do the witnesses agree within the tolerances?"""
        parts = [f"autograd and δ {'agree' if self._delta_ok(tol_delta) else 'DISAGREE'} "
                 f"within {_g(self.tol_delta(tol_delta))}"]
        if self.numeric:
            wrong = self._numeric_disagreeing(tol_numeric)
            within = f"with central differences within {_g(tol_numeric)}"
            if self.model_rounding:         # autograd's own allowance, named
                said = {"δ": "agrees", "autograd": "agrees"} | {who: "DISAGREES" for who in wrong}
                parts.append(f"δ {said['δ']} {within}, autograd (in {self.dtype}) "
                             f"{said['autograd']} within "
                             f"{_g(tol_numeric + self.model_rounding)}")
            elif not wrong:
                parts.append(f"both agree {within}")
            elif len(wrong) == 2:
                parts.append(f"both DISAGREE {within}")
            else:
                right = "δ" if wrong == ["autograd"] else "autograd"
                parts.append(f"{wrong[0]} DISAGREES {within} ({right} agrees)")
            if all(self._below_floor(p, tol_numeric) for p in self.parameters):
                parts.append(f"every row agrees with central differences only within their "
                             f"noise floor {self.numeric_floor:.1e} (*): they resolve none of "
                             f"these gradients")
        else:
            parts.append("central differences not run")
        status = self.status(tol_delta, tol_numeric)
        if status == "INCONCLUSIVE":
            parts.append(f"{len(self.kinks)} z at a ReLU kink, where central differences are "
                         f"not meaningful: move the inputs or biases off the kink")
        zero = self.vacuous()
        if zero:
            parts.append(f"{', '.join(zero)} {'is' if len(zero) == 1 else 'are'} exactly 0 by "
                         f"every method (dead units?), which shows nothing there")
        some = self.vacuous_entries()
        if some:
            listed = ", ".join(f"{name} {k} of {total}" for name, (k, total) in some.items())
            parts.append(f"entries exactly 0 by every method (dead units?): {listed}")
        return f"verdict: {status} — " + "; ".join(parts)

    def table(self, tol_delta=None, tol_numeric=1e-6):
        """A fixed-width text table in the document's notation, one row per W(l) and b(l)."""
        arch = "-".join(str(s) for s in self.sizes)
        l2 = (f"; L2 λ = {_g(self.l2)} ({self.l2_convention})" if self.l2 else "")
        lines = [
            "autograd vs the document's δ formulas vs central differences",
            f"network {arch} (engine {self.engine}), f = {', '.join(self.activations)}; "
            f"cost {self.cost}{l2}; batch n = {self.n}; model in {self.dtype}, δ in float64",
            f"J: autograd {self.cost_autograd:.15g}, δ reference {self.cost_delta:.15g}, "
            f"|difference| {abs(self.cost_autograd - self.cost_delta):.2e}",
        ]
        if self.numeric:
            how = ("the δ reference's forward pass (numpy)" if self.numeric_forward == "delta"
                   else "the model's own forward pass under no_grad")
            lines.append(f"numeric: central differences, ε = {_g(self.eps)}, "
                         f"J re-evaluated by {how}")
        else:
            lines.append("numeric: central differences not run")
        header = (f"{'':<7}{'shape':>8}  {'max|autograd−δ|':>16}  {'rel(autograd,δ)':>16}  "
                  f"{'rel(autograd,numeric)':>22}  {'rel(δ,numeric)':>15}")
        lines += ["", header, "-" * len(header)]
        floored = rounded = False
        tol_delta = self.tol_delta(tol_delta)
        for p in self.parameters:
            shape = "×".join(str(s) for s in p.shape)
            mark = ""
            if p.rel_delta > tol_delta and p.delta_agrees(tol_delta):
                mark, rounded = " †", True
            row = (f"{p.name:<7}{shape:>8}  {p.max_abs_delta:>16.2e}  "
                   f"{f'{p.rel_delta:.2e}{mark}':>16}  ")
            if self.numeric:
                notes = [] if p.entries.size == p.delta.size else [f"{p.entries.size} sampled"]
                if self._below_floor(p, tol_numeric):
                    notes.append("*")
                    floored = True
                row += f"{p.rel_numeric:>22.2e}  {p.rel_delta_numeric:>15.2e}"
                row += f" ({', '.join(notes)})" if notes else ""
            else:
                row += f"{'—':>22}  {'—':>15}"
            lines.append(row)
        lines.append("")
        if floored:
            lines.append(f"(*) every entry within {self.numeric_floor:.1e} of central differences, "
                         f"their noise floor: too small a gradient for a relative measure")
        if rounded:
            lines.append("(†) every entry within the rounding of summing its terms in another "
                         "order (16·(n + width)·ε_mach·Σ|terms|): a gradient that cancels to ~0")
        lines += [f"warning: {w}" for w in self.warnings]
        lines.append(self.verdict(tol_delta, tol_numeric))
        return "\n".join(lines)

    def __str__(self):
        return self.table()


def _g(x):
    """1e-06 → 1e-6: numbers as the document writes them."""
    text = f"{x:g}"
    if "e" in text:
        mantissa, exponent = text.split("e")
        text = f"{mantissa}e{int(exponent)}"
    return text


def _model_rounding(dtype):
    """0 for float64; else 100 ε_mach of ``dtype`` to two digits, as printed (1.2e-5 for
    float32; see `Comparison.model_rounding`)."""
    return 0.0 if str(dtype) == "float64" else float(f"{100 * np.finfo(dtype).eps:.1e}")


def _max_abs(d):
    d = np.asarray(d, dtype=np.float64)
    return float(np.max(np.abs(d))) if d.size else 0.0


# -- the three witnesses ---------------------------------------------------------------------

def _engine(model):
    if isinstance(model, MLP):
        return "tensor"
    if isinstance(model, ValueMLP):
        return "value"
    raise TypeError(f"compare_gradients needs an nn.MLP or nn.ValueMLP, got {type(model).__name__}")


def _activations(model):
    if isinstance(model, MLP):
        return list(model.activations)
    return [layer.activation for layer in model.layers]


def _state_arrays(model):
    """([W^(1), …, W^(L)], [b^(1), …, b^(L)]) as float64 copies."""
    state = model.state_dict()
    L = len(model.layers)
    # C order, so that p.reshape(-1) is a view the central differences can perturb in place.
    weights = [np.array(state[f"layers.{l}.W"], dtype=np.float64, order="C") for l in range(L)]
    biases = [np.array(state[f"layers.{l}.b"], dtype=np.float64, order="C") for l in range(L)]
    return weights, biases


def _autograd_cost(model, X, y, cost, l2, l2_convention, n_train):
    """J = cost(h(X), y) + L2(model.weights()), as a node of the model's graph."""
    n = len(X)
    if isinstance(model, MLP):
        h = model(Tensor(np.asarray(X), dtype=model.dtype))
    else:
        h = [model(row) for row in np.asarray(X, dtype=np.float64)]
    J = get_cost(cost)(h, y)
    if l2:
        J = J + l2_penalty(model.weights(), l2, l2_convention, n_train=n_train, batch=n)
    return J


def _autograd_gradients(model, J):
    """[(∂J/∂W^(l), ∂J/∂b^(l)) for l = 1..L] as float64 arrays."""
    if isinstance(model, MLP):
        nodes = [p for layer in model.layers for p in (layer.W, layer.b)]
        grads = [np.array(g, dtype=np.float64) for g in gradients(J, nodes)]
        return list(zip(grads[0::2], grads[1::2]))
    out = []
    for layer in model.layers:
        # W^(l)[i, j] is the weight from input i to neuron j: row by row, as `named_parameters`.
        nodes = [node for _, node in layer.named_parameters()]
        g = np.array([float(v) for v in gradients(J, nodes)], dtype=np.float64)
        k = layer.n_in * layer.n_out
        out.append((g[:k].reshape(layer.n_in, layer.n_out), g[k:]))
    return out


def _targets_for_delta(y, cost):
    y = np.asarray(y)
    if cost == "cross_entropy":
        return y if y.ndim == 2 else y.astype(np.int64)
    return y.astype(np.float64)


def _numeric_gradients(J_of, arrays, max_entries, rng, eps, sides=None):
    """Central differences of J_of() for (a sample of) the entries of each array, in place.
    ``sides()``, if given, returns the ReLU units' sides of 0 at the current arrays: a unit
    that the +ε and −ε evaluations put on different sides is straddled (returned per array as
    {(layer, row, unit)})."""
    results = []
    for p in arrays:
        flat = p.reshape(-1)
        if not np.shares_memory(flat, p):
            raise ValueError("central differences need C-contiguous arrays to perturb in place")
        if max_entries is not None and flat.size > max_entries:
            entries = np.sort(rng.choice(flat.size, size=max_entries, replace=False))
        else:
            entries = np.arange(flat.size)
        g = np.empty(entries.size, dtype=np.float64)
        straddled = set()
        for m, k in enumerate(entries):
            saved = flat[k]
            flat[k] = saved + eps
            plus = J_of()
            up = sides() if sides else None
            flat[k] = saved - eps
            minus = J_of()
            if sides:
                for layer, (s_up, s_down) in enumerate(zip(up, sides()), start=1):
                    if s_up is not None:
                        straddled.update((layer, int(i), int(j))
                                         for i, j in zip(*np.nonzero(s_up != s_down)))
            flat[k] = saved
            g[m] = (plus - minus) / (2 * eps)
        results.append((g, entries, straddled))
    return results


def compare_gradients(model, X, y, cost="document", l2=0.0, l2_convention="ufldl", n_train=None,
                      numeric=True, eps=1e-6, max_entries=None, seed=0,
                      numeric_forward="delta"):
    """Compare ∂J/∂W^(l), ∂J/∂b^(l) from autograd, the δ reference and central differences.

    ``model`` is an `nn.MLP` (Tensor) or `nn.ValueMLP` (Value); X is n × n^(1); y is n × k
    targets ("document", "mse") or class labels / one-hot rows ("cross_entropy", which needs an
    identity output layer: z^(L) are the logits). L2 acts on the weights only, by
    ``l2_convention`` ("ufldl", "nielsen" with ``n_train``, "sklearn"). Central differences
    (``numeric=True``) perturb each entry of W^(l), b^(l) by ±``eps`` in float64 and re-evaluate
    J by ``numeric_forward``: "delta" (the δ reference's numpy forward pass) or "autograd" (the
    model's own forward pass under `no_grad`). ``max_entries`` samples that many entries per
    array (chosen with ``seed``) for big layers. The model is left as it was.
    """
    engine = _engine(model)
    if not (isinstance(eps, (int, float, np.floating)) and np.isfinite(eps) and eps > 0):
        raise ValueError(f"eps must be a finite number > 0, got {eps!r}")
    if max_entries is not None and (isinstance(max_entries, bool) or not isinstance(
            max_entries, (int, np.integer)) or max_entries < 1):
        raise ValueError(f"max_entries must be a whole number >= 1 (or None for all), got "
                         f"{max_entries!r}")
    if numeric_forward not in NUMERIC_FORWARDS:
        raise ValueError(f"unknown numeric_forward {numeric_forward!r}; choose one of "
                         f"{', '.join(NUMERIC_FORWARDS)}")
    names = _activations(model)
    if cost == "cross_entropy" and names[-1] != "identity":
        raise ValueError(f"cost 'cross_entropy' takes logits: the output activation f_{len(names)} "
                         f"must be 'identity', got {names[-1]!r}")
    if cost == "cross_entropy" and int(model.sizes[-1]) < 2:
        raise ValueError("cost 'cross_entropy' needs at least 2 outputs: softmax over one logit "
                         "is always 1, so J and every gradient would be 0")
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2:
        raise ValueError(f"X must be n × n^(1), got shape {X.shape}")
    n = X.shape[0]
    if n == 0:
        raise ValueError("X has no rows: a cost over an empty batch is not defined")
    warnings = []
    dtype = str(model.dtype) if engine == "tensor" else "float64"
    if dtype != "float64":
        warnings.append(f"the model computes in {dtype}: autograd is held to the float64 "
                        f"witnesses at its precision, within {_g(_model_rounding(dtype))} "
                        f"more (100 ε_mach), not {_g(TOL_DELTA)}")
        if numeric and numeric_forward == "autograd":
            warnings.append(f"central differences through the model's own {dtype} forward pass "
                            f"with ε = {_g(eps)} are below its resolution: "
                            f"numeric_forward='delta' differentiates in float64")

    # (1) autograd
    J_node = _autograd_cost(model, X, y, cost, l2, l2_convention, n_train)
    grads_autograd = _autograd_gradients(model, J_node)
    cost_autograd = float(np.asarray(J_node.data).reshape(()))

    # (2) the δ reference, on the same arrays
    weights, biases = _state_arrays(model)
    y_delta = _targets_for_delta(y, cost)
    kwargs = dict(cost=cost, l2=l2, l2_convention=l2_convention, n_train=n_train)
    result = delta_ref.backprop(weights, biases, X, y_delta, names, **kwargs)

    layers = []
    for l in range(1, len(weights) + 1):
        gW, gb = grads_autograd[l - 1]
        W = ParameterComparison(f"W({l})", l, gW, result.grad_W_at(l))
        b = ParameterComparison(f"b({l})", l, gb, result.grad_b_at(l))
        # rounding of autograd vs δ: each sums the same terms a_kiδ_kj in its own order
        a_l, d_l = np.abs(result.a_at(l)), np.abs(result.delta[l - 1])
        u = 16 * (n + max(model.sizes)) * np.finfo(dtype).eps      # autograd's precision
        W.rounding = u * (a_l.T @ d_l + np.abs(result.grad_W_at(l)))     # (+ the L2 term's)
        b.rounding = u * (d_l.sum(axis=0) + np.abs(result.grad_b_at(l)))
        layer = LayerComparison(l, names[l - 1], W, b)
        if names[l - 1] == "relu":
            z = result.z_at(l)
            rows, units = np.nonzero(np.abs(z) <= 10 * eps)
            layer.kinks = [(int(i), int(j), float(z[i, j])) for i, j in zip(rows, units)]
            if layer.kinks:
                i, j, zij = layer.kinks[0]
                warnings.append(
                    f"layer {l} (relu): {len(layer.kinks)} pre-activation(s) z({l}) within "
                    f"10ε = {_g(10 * eps)} of the kink at 0 (first: row {i}, unit {j}, "
                    f"z = {zij:.3g}); central differences are not meaningful there")
        layers.append(layer)

    # (3) central differences in float64
    if numeric:
        arrays = [p for pair in zip(weights, biases) for p in pair]
        if numeric_forward == "delta":
            def J_of():
                return delta_ref.backprop(weights, biases, X, y_delta, names, **kwargs).cost
        else:
            def J_of():
                model.load_state_dict({f"layers.{l}.{kind}": arrays[2 * l + (kind == "b")]
                                       for l in range(len(weights)) for kind in ("W", "b")})
                with no_grad():
                    return float(np.asarray(_autograd_cost(
                        model, X, y, cost, l2, l2_convention, n_train).data).reshape(()))
        relu = [name == "relu" for name in names]

        def sides():
            _, zs = delta_ref.forward(weights, biases, X, names)
            return [zl > 0 if r else None for zl, r in zip(zs, relu)]
        saved_state = model.state_dict()
        try:
            found = _numeric_gradients(J_of, arrays, max_entries, np.random.default_rng(seed), eps,
                                       sides if any(relu) else None)
        finally:
            if numeric_forward == "autograd":
                model.load_state_dict(saved_state)
        for p, (g, entries, _) in zip([p for layer in layers for p in (layer.W, layer.b)],
                                      found):
            p.numeric, p.entries = g, entries
        straddled = set().union(*(s for _, _, s in found)) if found else set()
        z = result.z
        for layer in layers:
            known = {(i, j) for i, j, _ in layer.kinks}
            new = sorted((i, j) for l, i, j in straddled if l == layer.layer
                         and (i, j) not in known)
            if new:
                layer.kinks += [(i, j, float(z[layer.layer - 1][i, j])) for i, j in new]
                i, j = new[0]
                warnings.append(
                    f"layer {layer.layer} (relu): {len(new)} pre-activation(s) z({layer.layer}) "
                    f"cross the kink at 0 between the ±ε evaluations (first: row {i}, unit {j}, "
                    f"z = {z[layer.layer - 1][i, j]:.3g}); central differences are not "
                    f"meaningful there")

    return Comparison(
        layers=layers, cost_autograd=cost_autograd, cost_delta=float(result.cost),
        warnings=warnings, engine=engine, sizes=[int(s) for s in model.sizes],
        activations=names, cost=cost, l2=float(l2), l2_convention=l2_convention, n=n, eps=eps,
        numeric_forward=numeric_forward if numeric else None, delta_result=result, dtype=dtype)
