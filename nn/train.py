"""One training loop for every network in `nn`: batch, mini-batch and stochastic descent.

Per batch (x_b, y_b) of n_b rows the objective is the document's

    J = cost(h(x_b), y_b) + L2 term on the weights W^(l) (convention: nn.losses)

then ∂J/∂w by backward (autograd) or by the δ recursion (nn.delta), then one optimiser update.
An epoch walks the training rows once, shuffled with ``np.random.default_rng(seed)``, in
slices of ``batch_size`` (the last may be smaller), like scikit-learn's MLP solvers.

The epoch's loss is averaged as scikit-learn's: Σ_b J_b · n_b / n_train over the batches, each
J_b taken before its update. J_b is the exact cost (scikit-learn's log loss clips each
probability to [ε, 1 − ε] first; `nn.MLPClassifier` reports that one). Early stopping, ``n_iter_no_change``, ``tol`` and the 'adaptive' schedule
follow scikit-learn's ``_fit_stochastic`` and ``_update_no_improvement_count``; the one
difference: with ``early_stopping=False`` the loop never stops before ``epochs`` (a plateau of
the training loss only drives the 'adaptive' learning rate).

Three kinds of model: `nn.MLP` (Tensor, a whole batch at once), `nn.ValueMLP` (Value, row by
row) and `nn.delta.DeltaNetwork` (plain numpy, driven through `ArrayParameter` holders).
"""
from __future__ import annotations

import math
import numbers
import os
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field

import numpy as np

from autograd import Tensor, kernels, no_grad, trace as trace_step

from . import losses
from .delta import DeltaNetwork
from .fused import FusedStep
from .module import Module, save_arrays
from .optim import Adam, ArrayParameter, Optimizer, takes_decay
from .tensor_nets import MLP, Linear
from .value_nets import MLP as ValueMLP


@dataclass
class History:
    """Per-epoch records of a `fit` (lists, one entry per epoch run).

    loss          the epoch's training objective J (with the L2 term), as scikit-learn's loss_
    accuracy      training accuracy over the epoch's batches, each taken before its update
                  (classification only, else empty)
    val_loss      validation cost, without the L2 term (only with a validation split)
    val_accuracy  validation accuracy (classification with a validation split)
    val_score     the early-stopping score: val accuracy, or R² for regression
    lr            the learning rate used during the epoch
    seconds       wall time of the epoch
    updates       optimiser steps taken so far
    replayed      optimiser steps whose gradients came from replaying the traced step
                  (`autograd.trace`: nn.MLP, with ``trace=True``) instead of a graph built anew
    fused         optimiser steps run as one compiled call with their update (`nn.fused`)
    """

    loss: list = field(default_factory=list)
    accuracy: list = field(default_factory=list)
    val_loss: list = field(default_factory=list)
    val_accuracy: list = field(default_factory=list)
    val_score: list = field(default_factory=list)
    lr: list = field(default_factory=list)
    seconds: list = field(default_factory=list)
    updates: list = field(default_factory=list)
    best_epoch: int | None = None
    replayed: int = 0
    fused: int = 0
    stopped: str | None = None          # None (ran every epoch), 'early_stopping', 'callback'

    @property
    def epochs(self):
        return len(self.loss)

    def __repr__(self):
        if not self.loss:
            return "History(epochs=0)"
        text = f"History(epochs={self.epochs}, loss {self.loss[0]:.6g} → {self.loss[-1]:.6g}"
        if self.accuracy:
            text += f", accuracy {self.accuracy[-1]:.4f}"
        if self.val_score:
            text += f", val_score {self.val_score[-1]:.4f}, best_epoch={self.best_epoch}"
        if self.stopped:
            text += f", stopped by {self.stopped}"
        return text + ")"


# ---------------------------------------------------------------------------------------------
# The three kinds of model behind one small interface.
# ---------------------------------------------------------------------------------------------

class _AutogradNet:
    """nn.MLP or nn.ValueMLP: J is a node, backward fills each parameter's .grad."""

    def __init__(self, model):
        self.model = model
        self.rows = isinstance(model, ValueMLP)          # Values: one row at a time
        self.n_in, self.k = model.sizes[0], model.sizes[-1]
        self.dtype = np.dtype(np.float64) if self.rows else model.dtype
        self.output_activation = (model.layers[-1].activation if self.rows
                                  else model.activations[-1])

    def settings(self, cost, l2, l2_convention):
        return (cost or "document", 0.0 if l2 is None else l2, l2_convention or "ufldl")

    def configure(self, cost, l2, l2_convention, n_train, trace=False):
        self.cost_fn = losses.get_cost(cost)
        self.l2, self.l2_convention, self.n_train = l2, l2_convention, n_train
        self.fold_l2, self.decay = False, None
        # the step traced once per batch shape and replayed (autograd.trace): only for a
        # forward pass that is the library's own, whose ops depend on no numbers outside
        # Tensor ops; a trace it cannot replay runs on the graph (fallback)
        self.traced = (trace_step(self._cost_and_outputs, fallback=True)
                       if trace and not self.rows and _replayable(self.model) else None)

    def training_targets(self, Y):
        """Y as the batches feed it: float targets in a Tensor model's dtype, as the costs
        convert them (so a traced step finds each batch's targets in its graph as given)."""
        if self.rows or Y.dtype.kind != "f":
            return Y
        return Y.astype(self.dtype, copy=False)

    def replays(self):
        return 0 if self.traced is None else self.traced.replays

    def parameters(self):
        return self.model.parameters()

    def holders(self, optimizer):
        return self.model.parameters()

    def fold_l2_into(self, optimizer):
        """Hand the L2 term's gradient to ``optimizer``'s step (``decay``) when it takes it:
        the same numbers as writing it into each W.grad first."""
        self.fold_l2 = bool(self.l2) and not self.rows and takes_decay(optimizer)

    def _cost_and_outputs(self, x, y):
        h = self.model(x)
        return self.cost_fn(h, y), h

    def loss_and_grads(self, xb, yb):
        """(J, the batch's outputs h as an array); backward fills the parameters' .grad."""
        if self.rows:
            h = [self.model(row) for row in xb]
            J = self.cost_fn(h, yb)
            if self.l2:
                J = J + losses.l2_penalty(self.model.weights(), self.l2, self.l2_convention,
                                          n_train=self.n_train, batch=len(xb))
            J.backward()
            return float(J.data), np.array([[a.data for a in row] for row in h])
        if self.traced is not None:
            J, H = self.traced(xb, yb)
        else:
            J, h = self._cost_and_outputs(Tensor(xb), yb)
            J.backward()
            J, H = J.data, h.data
        if not self.l2:
            return float(J), H
        # the L2 term's value and its gradient 2c·W, outside the graph (nn.losses.add_l2);
        # when the optimiser can, it adds 2c·W inside its update (decay), one pass less
        weights = self.model.weights()
        if self.fold_l2 and all(type(W.grad) is np.ndarray for W in weights):
            value, factor = losses.l2_value(weights, self.l2, self.l2_convention,
                                            n_train=self.n_train, batch=len(xb))
            self.decay = (weights, factor)
            return float(J + value), H
        self.decay = None
        J = J + losses.add_l2_gradient(weights, self.l2, self.l2_convention,
                                       n_train=self.n_train, batch=len(xb))
        return float(J), H

    def outputs(self, X):
        with no_grad():
            if self.rows:
                return np.array([[a.data for a in self.model(row)] for row in X])
            return self.model(Tensor(X)).data

    def state(self):
        return self.model.state_dict()

    def load_state(self, state):
        self.model.load_state_dict(state)


class _DeltaNet:
    """nn.delta.DeltaNetwork: gradients from the δ recursion, set on ArrayParameter holders."""

    rows = False
    decay = None            # its own backprop adds the L2 term's gradient

    def __init__(self, model):
        self.model = model
        self.n_in, self.k = model.weights[0].shape[0], model.weights[-1].shape[1]
        self.dtype = model.weights[0].dtype
        self.output_activation = model.activations[-1]
        self._holders = None
        self._n_train_before = model.n_train

    def settings(self, cost, l2, l2_convention):
        m = self.model
        for name, given, own in (("cost", cost, m.cost), ("l2", l2, m.l2),
                                 ("l2_convention", l2_convention, m.l2_convention)):
            if given is not None and given != own:
                raise ValueError(f"{name}={given!r} was passed but the DeltaNetwork was built "
                                 f"with {name}={own!r}; pass the same or leave it out")
        return m.cost, m.l2, m.l2_convention

    def configure(self, cost, l2, l2_convention, n_train, trace=False):
        self.cost_fn = losses.get_cost(cost)         # for the validation loss
        m = self.model
        if l2 and l2_convention == "nielsen":
            if m.n_train is not None and m.n_train != n_train:
                raise ValueError(f"the DeltaNetwork has n_train={m.n_train} but the training "
                                 f"set has {n_train} rows (the 'nielsen' L2 term needs them equal)")
            m.n_train = n_train

    def restore(self):
        self.model.n_train = self._n_train_before

    def training_targets(self, Y):
        return Y

    def replays(self):
        return 0

    def parameters(self):
        return self.model.parameters()

    def holders(self, optimizer):
        if optimizer is None:
            self._holders = ArrayParameter.wrap(self.model.parameters())
        else:
            # in parameters() order, whatever the optimiser's: loss_and_grads hands the
            # gradients out by position, and W^(1), W^(2) of one shape would swap them silently
            by_array = {id(p.data): p for p in optimizer.params}
            self._holders = [by_array[id(a)] for a in self.model.parameters()]
        return self._holders

    def fold_l2_into(self, optimizer):
        pass

    def loss_and_grads(self, xb, yb):
        r = self.model.backprop(xb, yb)
        grads = [g for gW, gb in zip(r.grad_W, r.grad_b) for g in (gW, gb)]
        for p, g in zip(self._holders, grads):
            p.grad = g
        return float(r.cost), r.a[-1]

    def outputs(self, X):
        return self.model.output(X)

    def state(self):
        return {f"layers.{l}.{name}": np.array(p, copy=True)
                for l, (W, b) in enumerate(zip(self.model.weights, self.model.biases))
                for name, p in (("W", W), ("b", b))}

    def load_state(self, state):
        for l, (W, b) in enumerate(zip(self.model.weights, self.model.biases)):
            W[...] = state[f"layers.{l}.W"]     # in place: the optimiser holds these arrays
            b[...] = state[f"layers.{l}.b"]


def _replayable(model):
    """An nn.MLP whose forward pass is the library's own (no subclass overrides it): its graph
    holds the same ops for every batch of a shape, which a trace then replays."""
    cls, own = type(model), Module.__call__
    return (cls.forward is MLP.forward and cls.trace is MLP.trace and cls.__call__ is own
            and all(type(layer).forward is Linear.forward and type(layer).__call__ is own
                    for layer in model.layers))


def _adapt(model):
    if isinstance(model, (MLP, ValueMLP)):
        return _AutogradNet(model)
    if isinstance(model, DeltaNetwork):
        return _DeltaNet(model)
    raise TypeError(f"fit trains nn.MLP, nn.ValueMLP or nn.delta.DeltaNetwork, got "
                    f"{type(model).__name__}")


# ---------------------------------------------------------------------------------------------
# Checking the arguments: every error is raised before the first update.
# ---------------------------------------------------------------------------------------------

def _check_X(X, net):
    X = np.asarray(X)
    if X.dtype.kind not in "fiub":
        raise ValueError(f"X must hold numbers, got dtype {X.dtype}")
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D (n rows × {net.n_in} features), got shape {X.shape}")
    if X.shape[0] == 0:
        raise ValueError("X has no rows")
    if X.shape[1] != net.n_in:
        raise ValueError(f"X has {X.shape[1]} features per row, expected {net.n_in} (the "
                         f"model's input width n^(1)); got X of shape {X.shape}")
    if not np.all(np.isfinite(X)):
        raise ValueError(f"X contains {np.count_nonzero(~np.isfinite(X))} NaN or inf values")
    return X.astype(net.dtype, copy=False)


def _targets(y, n, k, cost):
    """(Y for the cost, class labels or None). Labels exist for classification: cross-entropy,
    integer labels or one-hot rows for k > 1 outputs, 0/1 targets for k = 1."""
    y = np.asarray(y)
    if y.dtype.kind not in "fiub":
        raise ValueError(f"y must hold numbers, got dtype {y.dtype}")
    if y.shape[0] != n:
        raise ValueError(f"y has {y.shape[0]} rows but X has {n}")
    if not np.all(np.isfinite(y)):
        raise ValueError(f"y contains {np.count_nonzero(~np.isfinite(y))} NaN or inf values")
    if y.ndim == 2 and y.shape[1] == k and k > 1 and losses.is_one_hot(y):
        labels = y.argmax(axis=1)
        return (labels if cost == "cross_entropy" else y.astype(np.float64)), labels
    if y.ndim == 1 and (cost == "cross_entropy" or k > 1):
        if not np.all(y == np.round(y)) or y.min() < 0 or y.max() > k - 1:
            raise ValueError(f"class labels y must be integers in 0..{k - 1} (k = {k} outputs), "
                             f"got values in {y.min()}..{y.max()}")
        labels = y.astype(np.int64)
        return (labels if cost == "cross_entropy" else np.eye(k)[labels]), labels
    if cost == "cross_entropy":
        if y.ndim == 2 and y.shape[1] == k and k > 1 and np.all(y >= 0) and np.allclose(
                y.sum(axis=1), 1, rtol=0, atol=1e-6):
            # rows of target probabilities (soft labels, label smoothing): accuracy is measured
            # against each row's most probable class
            return y.astype(np.float64), y.argmax(axis=1)
        raise ValueError(f"cost 'cross_entropy' needs labels (n,), one-hot rows or rows of "
                         f"probabilities (n, {k}; each ≥ 0, summing to 1), got y of shape "
                         f"{y.shape}")
    Y = y.reshape(n, 1) if (y.ndim == 1 and k == 1) else y
    if Y.shape != (n, k):
        raise ValueError(f"y must have shape ({n}, {k}) (n rows × k outputs), got {y.shape}")
    Y = Y.astype(np.float64)
    labels = Y[:, 0].astype(np.int64) if k == 1 and np.all((Y == 0) | (Y == 1)) else None
    return Y, labels


def _check_checkpoint(path):
    """Before any update: the checkpoint's folder exists and can be written to, and the path
    is not a folder (a failure after an epoch would lose it)."""
    folder = os.path.dirname(os.path.abspath(path)) or "."
    if os.path.isdir(path):
        raise ValueError(f"checkpoint {path} is a folder: give a file path (e.g. best.npz)")
    written = path if path.endswith(".npz") else path + ".npz"     # as save_arrays names it
    if os.path.exists(written) and not os.path.isfile(written):
        raise ValueError(f"checkpoint {path} would be written to {written}, which is not a "
                         f"regular file (a folder, a device) and is never replaced")
    try:                                 # the one sure test: make a file there
        os.makedirs(folder, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        raise ValueError(f"checkpoint {path}: cannot write in {folder} "
                         f"({error.strerror or error})") from None


def _check_number(name, value, low, high=math.inf, integer=False, low_open=False):
    kinds = numbers.Integral if integer else numbers.Real
    ok = isinstance(value, kinds) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (value > low if low_open else value >= low) and value <= high
    if not ok:
        bound = f"> {low}" if low_open else f">= {low}"
        raise ValueError(f"{name} must be {'an integer' if integer else 'a number'} {bound}"
                         + (f" and <= {high}" if high != math.inf else "") + f", got {value!r}")
    return value


def _batch_size(batch_size, n_train):
    if batch_size is None or batch_size == "batch":
        return n_train
    if isinstance(batch_size, str):
        raise ValueError(f"batch_size must be None, 'batch' or an integer, got {batch_size!r}")
    batch_size = _check_number("batch_size", batch_size, 1, integer=True)
    if batch_size > n_train:
        # as scikit-learn's solvers: clipped to the training rows, with a warning
        warnings.warn(f"batch_size {batch_size} is larger than the {n_train} training rows; "
                      f"using {n_train} (full-batch descent)", stacklevel=3)
        return n_train
    return batch_size


def _optimizer(optimizer, net):
    """Adam by default; an Optimizer over this model's parameters; or a factory params → Optimizer."""
    if optimizer is None:
        return Adam(net.holders(None))
    if not isinstance(optimizer, Optimizer):
        if not callable(optimizer):
            raise TypeError(f"optimizer must be an nn.optim Optimizer or a function params → "
                            f"Optimizer, got {type(optimizer).__name__}")
        optimizer = optimizer(net.holders(None))
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"the optimizer factory returned {type(optimizer).__name__}")
        return optimizer
    own = {id(p) for p in net.parameters()}
    held = {id(getattr(p, "data", None)) if isinstance(net, _DeltaNet) else id(p)
            for p in optimizer.params}
    if own != held:
        raise ValueError(f"{optimizer!r} does not hold this model's parameters (make it with "
                         "the model's parameters(), wrapped in ArrayParameter for a DeltaNetwork)")
    net.holders(optimizer)
    return optimizer


def _progress_bar(progress, total):
    if progress is None:
        progress = bool(getattr(sys.stderr, "isatty", lambda: False)())
    if progress not in (True, False):
        raise ValueError(f"progress must be None, True or False, got {progress!r}")
    if not progress:
        return None
    from tqdm import tqdm
    return tqdm(total=total, unit="batch", file=sys.stderr)


# ---------------------------------------------------------------------------------------------
# Scores.
# ---------------------------------------------------------------------------------------------

def _predicted_labels(H):
    return H.argmax(axis=1) if H.shape[1] > 1 else (H[:, 0] >= 0.5).astype(np.int64)


def _r2(H, Y):
    """1 − SS_res/SS_tot per output, averaged (scikit-learn's r2_score, uniform average)."""
    ss_res = ((Y - H) ** 2).sum(axis=0)
    ss_tot = ((Y - Y.mean(axis=0)) ** 2).sum(axis=0)
    safe = np.where(ss_tot > 0, ss_tot, 1.0)
    r2 = np.where(ss_tot > 0, 1 - ss_res / safe, np.where(ss_res == 0, 1.0, 0.0))
    return float(r2.mean())


def _cost_value(cost_fn, H, Y):
    with no_grad():
        return float(cost_fn(Tensor(H), Y).data)


def predict(model, X):
    """Class labels argmax_j h_j(x) for k > 1 outputs; h(x) as a 1-D array for k = 1."""
    net = _adapt(model)
    H = net.outputs(_check_X(X, net))
    return H.argmax(axis=1) if H.shape[1] > 1 else H[:, 0]


def accuracy(model, X, y):
    """Fraction of rows whose predicted class is y (labels or one-hot rows); for k = 1 output
    the class is h(x) ≥ 0.5."""
    net = _adapt(model)
    X = _check_X(X, net)
    y = np.asarray(y)
    labels = y.argmax(axis=1) if (y.ndim == 2 and y.shape[1] > 1) else y.reshape(len(y))
    if len(labels) != len(X):
        raise ValueError(f"y has {len(labels)} rows but X has {len(X)}")
    return float(np.mean(_predicted_labels(net.outputs(X)) == labels))


# ---------------------------------------------------------------------------------------------
# The loop.
# ---------------------------------------------------------------------------------------------

def fit(model, X, y, *, cost=None, l2=None, l2_convention=None, optimizer=None, batch_size=None,
        epochs=10, shuffle=True, seed=0, validation_fraction=None, early_stopping=False,
        n_iter_no_change=10, tol=1e-4, progress=None, callback=None, checkpoint=None,
        drop_last=False, trace=True, fuse=True):
    """Train ``model`` on (X, y) and return a `History`.

    cost           'document' (default), 'mse' or 'cross_entropy' (logits: identity output)
    l2, l2_convention   λ (default 0) and 'ufldl' (default), 'nielsen' or 'sklearn'; a
                   DeltaNetwork's own settings are used when these are left out
    optimizer      None (Adam, scikit-learn's defaults), an Optimizer over the model's
                   parameters, or a factory ``params → Optimizer`` (e.g. functools.partial(SGD, lr=0.1))
    batch_size     None or 'batch' = full batch, an int = mini-batch, 1 = stochastic
    drop_last      skip each epoch's last batch when it is smaller than batch_size (as PyTorch's
                   DataLoader; with shuffling other rows are left out each epoch), so no update
                   comes from a handful of rows
    validation_fraction  hold out this fraction (a seeded split; 0.1 when early_stopping)
    early_stopping stop when the validation score (accuracy, or R²) has not improved by ``tol``
                   for more than ``n_iter_no_change`` epochs; the best weights are restored
    progress       a tqdm bar (None: only when stderr is a terminal)
    callback       ``callback(history)`` after each epoch; a true result stops training
    checkpoint     path: after each epoch the last (or, with early stopping, the best) weights
                   are written atomically, so an interrupted run leaves the last saved model
    trace          an nn.MLP's step (forward, cost, backward) is traced on its first batch of
                   each shape and replayed after (`autograd.trace`): the same ops and VJPs in
                   the same order, so the same numbers, without a graph built per batch
                   (History.replayed counts those steps); False builds the graph every step
    fuse           with ``trace``: when the traced step is a chain of dense layers (relu
                   between them) under cross-entropy with class labels and the optimiser is
                   Adam or SGD, each batch runs as one compiled call, forward to update
                   (`nn.fused`; checked against the replay bit for bit on the first batch of
                   each size; History.fused counts those steps); False keeps the replay
    """
    net = _adapt(model)
    cost, l2, l2_convention = net.settings(cost, l2, l2_convention)
    if cost not in losses.COSTS:
        raise ValueError(f"unknown cost {cost!r}; choose one of {', '.join(losses.COSTS)}")
    if l2_convention not in losses.L2_CONVENTIONS:
        raise ValueError(f"unknown l2_convention {l2_convention!r}; choose one of "
                         f"{', '.join(losses.L2_CONVENTIONS)}")
    _check_number("l2", l2, 0)
    if cost == "cross_entropy":
        if net.k < 2:
            raise ValueError(f"cost 'cross_entropy' needs at least 2 outputs, the model has {net.k}")
        if net.output_activation != "identity":
            raise ValueError(f"cost 'cross_entropy' takes logits: the output activation must be "
                             f"'identity', got {net.output_activation!r}")
    X = _check_X(X, net)
    Y, labels = _targets(y, len(X), net.k, cost)
    _check_number("epochs", epochs, 1, integer=True)
    _check_number("n_iter_no_change", n_iter_no_change, 1, integer=True)
    _check_number("tol", tol, 0)
    if callback is not None and not callable(callback):
        raise TypeError(f"callback must be callable, got {type(callback).__name__}")
    for name, flag in (("shuffle", shuffle), ("early_stopping", early_stopping),
                       ("drop_last", drop_last), ("trace", trace)):
        # a string such as "False" is true: it would shuffle, or hold out rows and stop early
        if not isinstance(flag, (bool, np.bool_)):
            raise TypeError(f"{name} must be True or False, got {flag!r}")
    if checkpoint is not None and not isinstance(checkpoint, (str, os.PathLike)):
        raise TypeError(f"checkpoint must be a path, got {type(checkpoint).__name__}")
    if checkpoint is not None:
        _check_checkpoint(os.fspath(checkpoint))

    try:
        rng = np.random.default_rng(seed)
    except (TypeError, ValueError) as error:
        raise ValueError(f"seed must be None, an integer >= 0 or a numpy Generator, got "
                         f"{seed!r} ({error})") from None
    n = len(X)
    train = np.arange(n)
    val = None
    if validation_fraction is not None or early_stopping:
        fraction = 0.1 if validation_fraction is None else validation_fraction
        _check_number("validation_fraction", fraction, 0, 1, low_open=True)
        order = rng.permutation(n)
        n_val = math.ceil(fraction * n)              # as train_test_split rounds the test part
        if n_val < 2 or n - n_val < 1:
            raise ValueError(f"validation_fraction={fraction} of {n} rows leaves {n_val} "
                             f"validation and {n - n_val} training rows (need >= 2 and >= 1)")
        train, val = np.sort(order[n_val:]), np.sort(order[:n_val])
    n_train = len(train)
    batch = _batch_size(batch_size, n_train)
    net.configure(cost, l2, l2_convention, n_train, trace=trace)
    try:
        optimizer = _optimizer(optimizer, net)
        net.fold_l2_into(optimizer)
        per_epoch = n_train // batch if drop_last else math.ceil(n_train / batch)
        bar = _progress_bar(progress, epochs * per_epoch)
        history = History()
        try:
            _loop(net, optimizer, X, Y, labels, train, val, batch, epochs, shuffle, rng,
                  early_stopping, n_iter_no_change, tol, bar, callback, checkpoint, history,
                  drop_last, fuse and trace)
        finally:
            history.replayed = net.replays()
            if bar is not None:
                bar.close()
    finally:
        if isinstance(net, _DeltaNet):
            net.restore()
    return history


def _loop(net, optimizer, X, Y, labels, train, val, batch, epochs, shuffle, rng, early_stopping,
          n_iter_no_change, tol, bar, callback, checkpoint, history, drop_last=False, fuse=True):
    # no copy of the data when all of it is for training
    X_train, Y_train = (X, Y) if val is None else (X[train], Y[train])
    Y_train = net.training_targets(Y_train)
    labels_train = None if labels is None else (labels if val is None else labels[train])
    targets_are_labels = labels is not None and labels is Y     # cross-entropy's class indices
    n_train = len(train)
    n_seen = n_train - n_train % batch if drop_last else n_train    # rows used per epoch
    classify = labels is not None
    # each batch's rows are copied into this one array (kernels.take_rows), not a new one
    batch_rows = (np.empty((min(batch, n_train), X_train.shape[1]), X_train.dtype)
                  if X_train.ndim == 2 else None)
    # a dense chain under cross-entropy, Adam or SGD: each batch in one compiled call (nn.fused)
    fused = (FusedStep.applies(net, optimizer, X_train, Y_train, targets_are_labels,
                                batch) if fuse and not net.rows else None)
    best_loss, best_score, no_improvement = math.inf, -math.inf, 0
    best_state = net.state()
    t = 0                       # training samples seen (scikit-learn's t_)
    updates = 0
    try:
        for epoch in range(1, epochs + 1):
            start = time.perf_counter()
            lr = optimizer.lr
            order = rng.permutation(n_train) if shuffle else np.arange(n_train)
            accumulated, correct = 0.0, 0
            if fused is not None:
                fused.epoch_begins()
            for lo in range(0, n_seen, batch):        # scikit-learn's gen_batches
                rows = order[lo:lo + batch]
                done = None if fused is None else fused(X_train, rows, Y_train)
                if done is not None:            # the whole step in one compiled call
                    J, hits = done
                    accumulated += J * len(rows)
                    correct += hits
                else:
                    optimizer.zero_grad()
                    yb = Y_train[rows]
                    xb = (X_train[rows] if batch_rows is None
                          else kernels.take_rows(X_train, rows, batch_rows))
                    J, H = net.loss_and_grads(xb, yb)
                    if net.decay is None:
                        optimizer.step()
                    else:
                        optimizer.step(decay=net.decay)
                    accumulated += J * len(rows)
                    if classify:
                        seen = yb if targets_are_labels else labels_train[rows]
                        hits = kernels.argmax_hits(H, seen)
                        correct += (int(np.count_nonzero(_predicted_labels(H) == seen))
                                    if hits is None else hits)
                updates += 1
                if bar is not None:
                    bar.update(1)
            t += n_seen
            history.loss.append(accumulated / n_seen)
            history.lr.append(lr)
            history.updates.append(updates)
            if classify:
                # the running accuracy over the epoch's batches, as each was seen before its
                # update (as PyTorch loops report it): no second pass over the training set
                history.accuracy.append(correct / n_seen)

            improved = False
            if val is not None:
                H = net.outputs(X[val])
                history.val_loss.append(_cost_value(net.cost_fn, H, Y[val]))
                if classify:
                    history.val_accuracy.append(
                        float(np.mean(_predicted_labels(H) == labels[val])))
                score = history.val_accuracy[-1] if classify else _r2(H, _as_matrix(Y[val], net.k))
                history.val_score.append(score)
            if early_stopping:      # scikit-learn's _update_no_improvement_count
                no_improvement = no_improvement + 1 if score < best_score + tol else 0
                if score > best_score:
                    best_score, best_state, improved = score, net.state(), True
            else:
                loss = history.loss[-1]
                no_improvement = no_improvement + 1 if loss > best_loss - tol else 0
                if loss < best_loss:
                    best_loss, improved = loss, True
            if improved:
                history.best_epoch = epoch
            optimizer.iteration_ends(t)
            stop = False
            if no_improvement > n_iter_no_change:
                stop = optimizer.trigger_stopping() and early_stopping
                if not stop:
                    no_improvement = 0
            history.seconds.append(time.perf_counter() - start)

            if fused is not None:
                fused.finish()      # (each .grad as the replay leaves it, for the callback)
            if checkpoint is not None and (improved or not early_stopping):
                save_arrays(checkpoint, best_state if early_stopping else net.state())
            if bar is not None:
                bar.set_description(f"epoch {epoch}/{epochs}")
                shown = {"loss": f"{history.loss[-1]:.4g}"}
                if history.accuracy:
                    shown["acc"] = f"{history.accuracy[-1]:.3f}"
                if history.val_score:
                    shown["val"] = f"{history.val_score[-1]:.3f}"
                bar.set_postfix(shown)
            if callback is not None and callback(history):
                history.stopped = "callback"
            if stop:
                history.stopped = "early_stopping"
            if history.stopped:
                break
    finally:
        if fused is not None:
            fused.finish()
            history.fused = fused.steps
    if early_stopping:
        net.load_state(best_state)


def _as_matrix(Y, k):
    """Targets as n × k (cross-entropy's labels become one-hot rows)."""
    return np.eye(k)[Y] if Y.ndim == 1 else Y
