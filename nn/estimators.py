"""`MLPClassifier` and `MLPRegressor`: scikit-learn's estimators, trained by chainrule's engine.

Drop-in for ``sklearn.neural_network.MLPClassifier`` / ``MLPRegressor``: the same constructor
parameters and defaults, the same fitted attributes (``coefs_``, ``intercepts_``, ``loss_curve_``,
``n_iter_``, ``t_``, ``best_loss_``, ``classes_``, ``n_features_in_`` …), the same initialisation
(Glorot uniform drawn from ``check_random_state(random_state)``, factor 2 for 'logistic'), the
same shuffling, batches, optimisers, schedules and stopping rule, step for step. What differs is
who computes ∂J/∂w: an `nn.MLP` of `Tensor`s and its backward pass, not hand-written δ code.

Per batch of n rows the objective is (row convention, the document's notation):

    z^(l) = a^(l) · W^(l) + b^(l),  a^(l+1) = f(z^(l)),  h = output(z^(L))
    J = cost(h, y) + α/(2n) · Σ_l ‖W^(l)‖²                 (l2_convention='sklearn')

    classifier, several classes   softmax output, J = −1/n Σᵢ log softmax(zᵢ)[yᵢ]
    classifier, 2 classes or      one logistic output per label (as scikit-learn: coefs_ shapes
    multilabel                    match), J = 1/n Σᵢⱼ [softplus(zᵢⱼ) − yᵢⱼ zᵢⱼ]  (binary log loss)
    regressor                     identity output, J = 1/(2n) Σᵢ ‖yᵢ − h(xᵢ)‖²  (the document's J;
                                  scikit-learn's too: its loss_curve_ shows squared_error/2, the
                                  mean over n·k entries, J/k, and so does ours, so k outputs stop
                                  at the same epoch)

The classifier's log losses are differentiated exactly, from the logits; the value reported
(``loss_curve_``, ``loss_``, the stopping rule, what L-BFGS sees) is scikit-learn's, which clips
each probability to [ε, 1 − ε] first, so a confidently wrong row counts −log ε ≈ 36.04, not −log p.

The regressor's ``loss='poisson'``: log-link (exp output, ``out_activation_ = 'exp'``) and
scikit-learn's half Poisson deviance 1/n Σᵢⱼ [yᵢⱼ log(yᵢⱼ/ŷᵢⱼ) − yᵢⱼ + ŷᵢⱼ], differentiated
from the logits z (ŷ = exp z), so its gradient (ŷ − y)/n is the canonical one.

``sample_weight`` (fit, partial_fit), as scikit-learn ≥ 1.7: the batch's cost is the weighted
mean Σᵢ wᵢ Jᵢ / Σᵢ wᵢ and the 'sklearn' L2 term's batch size is Σᵢ wᵢ; early stopping splits
and scores with the weights.

``solver='lbfgs'``, as scikit-learn's: scipy's L-BFGS-B over the whole training set's J
(``max_iter`` iterations, ``max_fun`` evaluations, ``tol`` as gtol), no loss_curve_, no
partial_fit. With ``dtype=np.float32`` the run stays float32 (scikit-learn's turns float64
after its first step, so the two then differ by float32 rounding).

Sparse X (scipy CSR or CSC; other formats converted) is taken as scikit-learn takes it, and
densified once: the Tensor engine's matmuls are dense, so a very wide sparse X costs its dense
size in memory.

chainrule's extras (defaults keep scikit-learn's behaviour):

    cost           classifier: 'cross_entropy' (above) or 'document' (logistic outputs, the
                   document's J on one-hot targets; predict_proba normalises the outputs);
                   regressor: 'document' (default) or 'mse' (1/(n·k) Σ (y − h)²)
    l2_convention  'sklearn' (α/(2·batch)), 'ufldl' (α/2) or 'nielsen' (α/(2·n_train))
    dtype          np.float64 (default) or np.float32: X is converted once, every op keeps it
    progress       a tqdm bar over the epochs
"""
from __future__ import annotations

import math
import warnings

import numpy as np
from scipy.special import expit, xlogy
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import accuracy_score, r2_score
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils import check_random_state
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import (check_classification_targets, type_of_target,
                                      unique_labels)
from sklearn.utils.validation import (_check_sample_weight, check_is_fitted, column_or_1d,
                                      validate_data)

from autograd import Tensor, no_grad, trace
from autograd.rules import _row_max

from . import losses
from .optim import SGD, Adam
from .tensor_nets import MLP

ACTIVATIONS = ("identity", "logistic", "tanh", "relu")
SOLVERS = ("lbfgs", "sgd", "adam")
SCHEDULES = ("constant", "invscaling", "adaptive")



def _shuffled(a, random_state):
    """``sklearn.utils.shuffle(a, random_state=random_state)`` — the same draw from the same
    generator (arange, then shuffle in place) without its per-call parameter validation."""
    order = np.arange(len(a))
    random_state.shuffle(order)
    return a[order]

def _stochastic_solver(estimator):
    """partial_fit exists for 'sgd' and 'adam' only (scikit-learn's available_if test)."""
    if estimator.solver == "lbfgs":
        raise AttributeError("partial_fit is only available for stochastic optimizers. lbfgs "
                             "is not stochastic.")
    return True


class _BaseMLP(BaseEstimator):
    """The shared machinery; see the module docstring."""

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True           # CSR/CSC X, densified once (`_dense`)
        return tags

    _default_cost = None
    _costs = ()

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam",
                 alpha=0.0001, batch_size="auto", learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000,
                 cost=None, l2_convention="sklearn", dtype=np.float64, progress=False):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun                  # L-BFGS only: accepted for scikit-learn's API
        self.cost = cost
        self.l2_convention = l2_convention
        self.dtype = dtype
        self.progress = progress

    # -- parameters ---------------------------------------------------------------------------
    def _check_params(self):
        _choice("solver", self.solver, SOLVERS)
        _choice("activation", self.activation, ACTIVATIONS)
        _choice("learning_rate", self.learning_rate, SCHEDULES)
        _choice("cost", self._cost(), self._costs)
        _choice("l2_convention", self.l2_convention, losses.L2_CONVENTIONS)
        sizes = self.hidden_layer_sizes
        sizes = list(sizes) if hasattr(sizes, "__iter__") else [sizes]
        if any(not _is_int(s) or s <= 0 for s in sizes):
            raise ValueError(f"hidden_layer_sizes must be positive integers, got {sizes}")
        if not _is_int(self.max_iter) or self.max_iter < 1:
            raise ValueError(f"max_iter must be an integer >= 1, got {self.max_iter!r}")
        if not ((_is_int(self.n_iter_no_change) and self.n_iter_no_change >= 1)
                or self.n_iter_no_change == np.inf):     # inf: never stop early (scikit-learn)
            raise ValueError(f"n_iter_no_change must be an integer >= 1 or np.inf, got "
                             f"{self.n_iter_no_change!r}")
        if not _is_int(self.max_fun) or self.max_fun < 1:
            raise ValueError(f"max_fun must be an integer >= 1, got {self.max_fun!r}")
        for name in ("alpha", "tol"):
            if not _is_real(getattr(self, name)) or getattr(self, name) < 0:
                raise ValueError(f"{name} must be a number >= 0, got {getattr(self, name)!r}")
        for name in ("learning_rate_init", "epsilon"):
            if not _is_real(getattr(self, name)) or getattr(self, name) <= 0:
                raise ValueError(f"{name} must be a number > 0, got {getattr(self, name)!r}")
        if not (_is_real(self.momentum) and 0 <= self.momentum <= 1):
            raise ValueError(f"momentum must lie in [0, 1], got {self.momentum!r}")
        for name in ("beta_1", "beta_2"):
            if not (_is_real(getattr(self, name)) and 0 <= getattr(self, name) < 1):
                raise ValueError(f"{name} must lie in [0, 1), got {getattr(self, name)!r}")
        # scikit-learn's range is [0, 1); a fraction is used (and must be > 0) only for
        # early stopping
        if not (_is_real(self.validation_fraction) and 0 <= self.validation_fraction < 1
                and (self.validation_fraction > 0 or not self.early_stopping)):
            raise ValueError(f"validation_fraction must lie in (0, 1) with early_stopping "
                             f"([0, 1) without), got {self.validation_fraction!r}")
        for name in ("shuffle", "nesterovs_momentum", "early_stopping", "warm_start"):
            if not isinstance(getattr(self, name), (bool, np.bool_)):    # 1 is not True here
                raise ValueError(f"{name} must be True or False, got {getattr(self, name)!r}")
        if self.batch_size != "auto" and (not _is_int(self.batch_size) or self.batch_size < 1):
            raise ValueError(f"batch_size must be 'auto' or a positive integer, got "
                             f"{self.batch_size!r}")
        dtype = np.dtype(self.dtype)
        if dtype not in (np.float32, np.float64):
            raise ValueError(f"dtype must be np.float32 or np.float64, got {dtype}")
        return sizes, dtype

    def _cost(self):
        return self._default_cost if self.cost is None else self.cost

    # -- fitting ------------------------------------------------------------------------------
    def fit(self, X, y, sample_weight=None):
        """Train on (X, y) for up to ``max_iter`` epochs; returns self. ``sample_weight``
        weighs each row's cost (module docstring)."""
        return self._fit(X, y, incremental=False, sample_weight=sample_weight)

    def _fit(self, X, y, incremental, classes=None, sample_weight=None):
        sizes, dtype = self._check_params()
        if self.early_stopping and incremental:
            raise ValueError("partial_fit does not support early_stopping=True")
        fitted = hasattr(self, "_model")
        first_pass = not fitted or (not self.warm_start and not incremental)
        X, y = validate_data(self, X, y, multi_output=True, dtype=dtype, reset=first_pass,
                             y_numeric=not isinstance(self, ClassifierMixin),
                             accept_sparse=("csr", "csc"))
        X = _dense(X)
        if y.ndim == 2 and y.shape[1] == 1:         # a column: one target, as scikit-learn
            y = column_or_1d(y, warn=True)          # (with its DataConversionWarning)
        if sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, X, dtype=dtype)
            if not sample_weight.any():     # scikit-learn ≥ 1.9's check says so; older pass it
                raise ValueError("Sample weights must contain at least one non-zero number.")
        Y = self._encode_targets(y, first_pass, incremental, classes, dtype)
        n_features = X.shape[1]
        self._random_state = check_random_state(self.random_state)
        if first_pass:
            self._initialize(n_features, sizes, Y.shape[1], dtype)
        elif self._model.sizes[1:-1] != sizes:
            raise ValueError(f"hidden_layer_sizes {sizes} differ from the fitted network's "
                             f"{self._model.sizes[1:-1]}; refit without warm_start")
        else:
            self._apply_settings(dtype, incremental)
        if self.solver == "lbfgs":
            self._fit_lbfgs(X, Y, sample_weight)
        else:
            if not incremental or not hasattr(self, "_optimizer"):
                self._optimizer = self._make_optimizer()
            self._fit_stochastic(X, Y, y, incremental, sample_weight)
        if not all(np.isfinite(p.data).all() for p in self._model.parameters()):
            raise ValueError("Solver produced non-finite parameter weights. The input data may "
                             "contain large values and need to be preprocessed.")
        return self

    def _initialize(self, n_features, sizes, n_outputs, dtype):
        """scikit-learn's ``_initialize``: Glorot-uniform W^(l), b^(l) from ``_random_state``."""
        self.n_iter_ = 0
        self.t_ = 0
        self.n_outputs_ = n_outputs
        widths = [n_features] + sizes + [n_outputs]
        self.n_layers_ = len(widths)
        self.out_activation_ = self._out_activation()
        hidden, output = self._activation_names()
        self._model = MLP(n_features, widths[1:], activation=hidden, output_activation=output,
                          dtype=dtype)
        factor = 2.0 if self.activation == "logistic" else 6.0
        for layer, fan_in, fan_out in zip(self._model.layers, widths[:-1], widths[1:]):
            bound = np.sqrt(factor / (fan_in + fan_out))
            layer.W.data = self._random_state.uniform(-bound, bound, (fan_in, fan_out)).astype(
                dtype)
            layer.b.data = self._random_state.uniform(-bound, bound, fan_out).astype(dtype)
        # early stopping's best weights start as the initial ones (scikit-learn's _best_coefs):
        # when no epoch scores (every validation score nan) those are restored
        self._best_state = self._model.state_dict()
        if hasattr(self, "_optimizer"):
            del self._optimizer
        if self.solver == "lbfgs":          # as scikit-learn: no curve, no stopping state
            for name in ("loss_curve_", "best_loss_", "validation_scores_",
                         "best_validation_score_"):
                self.__dict__.pop(name, None)
            return
        self.loss_curve_ = []
        self._no_improvement_count = 0
        if self.early_stopping:
            self.validation_scores_ = []
            self.best_validation_score_ = -np.inf
            self.best_loss_ = None
        else:
            self.best_loss_ = np.inf
            self.validation_scores_ = None
            self.best_validation_score_ = None

    def _activation_names(self):
        """(hidden, output) activations of the network for the current settings."""
        hidden = "sigmoid" if self.activation == "logistic" else self.activation
        # The log losses take logits z (softmax or σ is applied inside the cost and by
        # predict_proba); only the document's J = 1/(2n) Σ (y − h)² needs h = σ(z) as the output.
        output = ("sigmoid" if self.out_activation_ == "logistic" and self._cost() == "document"
                  else "identity")
        return hidden, output

    def _apply_settings(self, dtype, incremental):
        """warm_start / partial_fit: the current activation and cost act on the fitted weights
        (as scikit-learn reads ``activation`` at every forward pass); a new dtype converts them
        for ``fit``, while ``partial_fit``, which keeps the optimiser's moments, refuses it."""
        model = self._model
        if model.dtype != dtype:
            if incremental:
                raise ValueError(f"dtype {dtype} differs from the fitted network's "
                                 f"{model.dtype}; partial_fit keeps the network's dtype (fit "
                                 f"again, with warm_start=True to keep the weights)")
            for p in model.parameters():
                p.data = p.data.astype(dtype)
            model.dtype = dtype
        self.out_activation_ = self._out_activation()
        hidden, output = self._activation_names()
        model.activations = [hidden] * (len(model.layers) - 1) + [output]

    def _make_optimizer(self):
        params = self._model.parameters()
        if self.solver == "sgd":
            return SGD(params, lr=self.learning_rate_init, momentum=self.momentum,
                       nesterov=self.nesterovs_momentum, schedule=self.learning_rate,
                       power_t=self.power_t)
        return Adam(params, lr=self.learning_rate_init, beta_1=self.beta_1, beta_2=self.beta_2,
                    epsilon=self.epsilon)

    def _backward_fn(self, n_train, fold_l2=False):
        """``step(x, Yb, n, wb)``: the batch's J through the model from the inputs x (an
        array) and the targets Yb (n rows, weights wb or None), and its backward pass; returns
        (J's value, decay). The L2 term's value and gradient are added after the backward pass
        (`nn.losses.add_l2`: the same numbers as recording it); with weights its 'sklearn'
        batch size is Σ wb. With ``fold_l2`` its gradient is left to the optimiser's step:
        decay = (weights, 2c) for ``optimizer.step(decay=...)`` (else None), the same numbers.
        Without weights the step is traced once per batch shape and replayed
        (`autograd.trace`: the same numbers), unless the cost holds a constant made from the
        targets' numbers (Poisson's)."""
        cost = self._batch_cost()
        model = self._model
        alpha, convention = float(self.alpha), self.l2_convention
        weights = model.weights()
        shown = self._shown_cost_factor()
        shown_value = self._shown_value()

        def cost_and_outputs(x, Yb):
            h = model(x)
            return cost(h, Yb, x.shape[0]), h
        traced = trace(cost_and_outputs, fallback=True) if self._cost() != "poisson" else None

        def step(x, Yb, n, wb=None):
            if wb is not None and not wb.sum():           # scikit-learn's np.average says so
                raise ValueError("Weights sum to zero, can't be normalized: a batch whose "
                                 "sample weights are all 0")
            if wb is None and traced is not None:
                J, h = traced(x, Yb)
            else:
                h = model(Tensor(x))
                J = cost(h, Yb, n) if wb is None else self._weighted_cost(h, Yb, wb)
                J.backward()
                J, h = J.data, h.data
            value = J if shown == 1 else J * shown
            if shown_value is not None:
                value = shown_value(h, Yb, n, wb, value)
            if alpha == 0:
                return value, None
            batch = n if wb is None else float(wb.sum())
            if fold_l2 and all(type(W.grad) is np.ndarray for W in weights):
                l2, factor = losses.l2_value(weights, alpha, convention, n_train=n_train,
                                             batch=batch)
                return value + l2, (weights, factor)
            return value + losses.add_l2_gradient(weights, alpha, convention, n_train=n_train,
                                                  batch=batch), None
        return step

    def _weighted_cost(self, h, Yb, wb):
        """Σᵢ wᵢ Jᵢ / Σᵢ wᵢ: the batch's cost with row i's term Jᵢ weighted (scikit-learn's
        sample_weight); its gradient is each row's times wᵢ/Σw."""
        share = wb / wb.sum()
        if self._cost() == "cross_entropy" and self.out_activation_ == "softmax":
            # target rows scaled by n·wᵢ/Σw: −1/n Σᵢ tᵢ·log softmax(zᵢ) is the weighted mean
            return h.softmax_cross_entropy(Yb * (share * len(wb))[:, None])
        if self._cost() == "cross_entropy":                 # binary log loss from logits
            terms = h.softplus() - h * Yb
        elif self._cost() == "mse":
            terms = (h - Yb) ** 2 * (1.0 / Yb.shape[1])
        elif self._cost() == "poisson":
            terms = _poisson_terms(h, Yb) + _poisson_constant(Yb)
        else:                                               # the document's ½‖yᵢ − hᵢ‖²
            terms = (h - Yb) ** 2 * 0.5
        return (terms * share[:, None]).sum()

    def _shown_cost_factor(self):
        """loss_curve_ shows the cost times this (1: the cost differentiated)."""
        return 1

    def _class_indices(self, Y):
        """The class index of each one-hot row of Y when the batch cost takes those in its
        place (softmax cross-entropy), else None."""
        return None

    def _shown_value(self):
        """None, or ``shown(z, Yb, n, wb, J)``: the batch's loss as scikit-learn computes it
        from J's node z (the value reported and handed to L-BFGS; gradients are J's)."""
        return None

    def _fit_lbfgs(self, X, Y, sample_weight):
        """scikit-learn's ``_fit_lbfgs``: scipy's L-BFGS-B on the whole set's J (cost + L2)
        over the parameters packed as scikit-learn packs them (every W^(l), then every b^(l)),
        with J and ∂J/∂w from chainrule's backward pass."""
        from scipy.optimize import minimize
        from sklearn.utils.optimize import _check_optimize_result
        model = self._model
        params = [layer.W for layer in model.layers] + [layer.b for layer in model.layers]
        bounds = np.cumsum([0] + [p.data.size for p in params])
        backward = self._backward_fn(X.shape[0])

        def loss_and_grad(packed):
            for p, lo, hi in zip(params, bounds[:-1], bounds[1:]):
                p.data = packed[lo:hi].reshape(p.data.shape).astype(model.dtype)
                p.grad = None
            J, _ = backward(X, Y, X.shape[0], sample_weight)
            grad = np.concatenate([np.zeros(p.data.size) if p.grad is None else
                                   np.asarray(p.grad, dtype=np.float64).ravel() for p in params])
            return float(J), grad

        start = np.concatenate([p.data.ravel() for p in params]).astype(np.float64)
        result = minimize(loss_and_grad, start, method="L-BFGS-B", jac=True,
                          options={"maxfun": self.max_fun, "maxiter": self.max_iter,
                                   "gtol": self.tol})
        self.n_iter_ = _check_optimize_result("lbfgs", result, self.max_iter)
        self.loss_ = np.float64(result.fun)
        for p, lo, hi in zip(params, bounds[:-1], bounds[1:]):
            p.data = result.x[lo:hi].reshape(p.data.shape).astype(model.dtype)
            p.grad = None

    def _fit_stochastic(self, X, Y, y_raw, incremental, sample_weight=None):
        """scikit-learn's ``_fit_stochastic``, epoch for epoch, with chainrule's backward."""
        model, optimizer = self._model, self._optimizer
        X_val = y_val = w_val = None
        w = sample_weight
        if self.early_stopping:
            stratify = y_raw if (isinstance(self, ClassifierMixin) and self.n_outputs_ == 1
                                 and self._task != "multilabel") else None
            parts = train_test_split(X, Y, y_raw, *([] if w is None else [w]),
                                     random_state=self._random_state,
                                     test_size=self.validation_fraction, stratify=stratify)
            X, X_val, Y, _, _, y_val = parts[:6]
            if w is not None:
                w, w_val = parts[6:]
            if X_val.shape[0] < 2:
                raise ValueError("The validation set is too small. Increase "
                                 "'validation_fraction' or the size of your dataset.")
        n = X.shape[0]
        batch = min(200, n) if self.batch_size == "auto" else int(self.batch_size)
        if batch > n:
            warnings.warn("Got `batch_size` less than 1 or larger than sample size. It is "
                          "going to be clipped")
            batch = n
        backward = self._backward_fn(n, fold_l2=True)       # its optimiser is SGD or Adam
        # one-hot rows as their class indices where the cost takes either: the same gradient,
        # bit for bit, from softmax cross-entropy's compiled label loops
        labels = self._class_indices(Y) if w is None else None
        targets = Y if labels is None else labels
        sample_idx = np.arange(n)
        bar = None
        if self.progress:
            from tqdm import tqdm
            bar = tqdm(total=1 if incremental else self.max_iter, unit="epoch")
        self.n_iter_ = 0
        try:
            for _ in range(self.max_iter):
                if self.shuffle:
                    sample_idx = _shuffled(sample_idx, self._random_state)
                accumulated = 0.0
                for lo in range(0, n, batch):           # gen_batches
                    rows = sample_idx[lo:lo + batch] if self.shuffle else slice(lo, lo + batch)
                    xb, Yb = X[rows], targets[rows]
                    m = xb.shape[0]
                    optimizer.zero_grad()
                    J, decay = backward(xb, Yb, m, None if w is None else w[rows])
                    optimizer.step(decay=decay)
                    accumulated += float(J) * m
                self.n_iter_ += 1
                self.t_ += n
                self.loss_ = np.float64(accumulated / n)     # numpy's float, as scikit-learn's
                self.loss_curve_.append(self.loss_)
                if self.verbose:
                    print("Iteration %d, loss = %.8f" % (self.n_iter_, self.loss_))
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{self.loss_:.4g}")
                self._update_no_improvement_count(X_val, y_val, w_val)
                optimizer.iteration_ends(self.t_)
                if self._no_improvement_count > self.n_iter_no_change:
                    what = ("Validation score" if self.early_stopping else "Training loss")
                    msg = (f"{what} did not improve more than tol={self.tol:f} for "
                           f"{self.n_iter_no_change} consecutive epochs.")
                    if optimizer.trigger_stopping(msg, self.verbose):
                        break
                    self._no_improvement_count = 0
                if incremental:
                    break
                if self.n_iter_ == self.max_iter:
                    warnings.warn(f"Stochastic Optimizer: Maximum iterations ({self.max_iter}) "
                                  "reached and the optimization hasn't converged yet.",
                                  ConvergenceWarning)
        except KeyboardInterrupt:
            warnings.warn("Training interrupted by user.")
        finally:
            if bar is not None:
                bar.close()
        if self.early_stopping and self._best_state is not None:
            model.load_state_dict(self._best_state)

    def _update_no_improvement_count(self, X_val, y_val, w_val=None):
        if self.early_stopping:
            score = self._score(X_val, y_val, w_val)
            self.validation_scores_.append(score)
            if self.verbose:
                print("Validation score: %f" % score)
            if score < self.best_validation_score_ + self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if score > self.best_validation_score_:
                self.best_validation_score_ = score
                self._best_state = self._model.state_dict()
        else:
            if self.loss_curve_[-1] > self.best_loss_ - self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if self.loss_curve_[-1] < self.best_loss_:
                self.best_loss_ = self.loss_curve_[-1]

    # -- prediction ---------------------------------------------------------------------------
    def _forward(self, X):
        """h(X) = a^(L+1) (logits turned into probabilities for the classifier)."""
        check_is_fitted(self, "_model")
        X = _dense(validate_data(self, X, dtype=self._model.dtype, reset=False,
                                 accept_sparse=("csr", "csc")))
        with no_grad():
            return self._model(Tensor(X)).data

    # -- fitted attributes as scikit-learn names them --------------------------------------------
    @property
    def coefs_(self):
        """[W^(1), …, W^(L)], W^(l) of shape n^(l) × n^(l+1) (the live arrays)."""
        check_is_fitted(self, "_model")
        return [layer.W.data for layer in self._model.layers]

    @coefs_.setter
    def coefs_(self, arrays):
        _set_arrays(self, arrays, "W")

    @property
    def intercepts_(self):
        """[b^(1), …, b^(L)], b^(l) of shape n^(l+1)."""
        check_is_fitted(self, "_model")
        return [layer.b.data for layer in self._model.layers]

    @intercepts_.setter
    def intercepts_(self, arrays):
        _set_arrays(self, arrays, "b")


class MLPClassifier(ClassifierMixin, _BaseMLP):
    """scikit-learn's MLPClassifier trained by chainrule (see the module docstring).

    Several classes: a softmax output and cross-entropy. Two classes (or multilabel indicator
    targets): one logistic output per label, as scikit-learn, so ``coefs_`` have its shapes and
    ``predict_proba`` returns (n, 2) columns [1 − p, p].
    """

    _default_cost = "cross_entropy"
    loss = "log_loss"       # scikit-learn's attribute (not a parameter of the classifier)
    _costs = ("cross_entropy", "document")

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam",
                 alpha=0.0001, batch_size="auto", learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000,
                 cost="cross_entropy", l2_convention="sklearn", dtype=np.float64,
                 progress=False):
        super().__init__(
            hidden_layer_sizes=hidden_layer_sizes, activation=activation, solver=solver,
            alpha=alpha, batch_size=batch_size, learning_rate=learning_rate,
            learning_rate_init=learning_rate_init, power_t=power_t, max_iter=max_iter,
            shuffle=shuffle, random_state=random_state, tol=tol, verbose=verbose,
            warm_start=warm_start, momentum=momentum, nesterovs_momentum=nesterovs_momentum,
            early_stopping=early_stopping, validation_fraction=validation_fraction,
            beta_1=beta_1, beta_2=beta_2, epsilon=epsilon, n_iter_no_change=n_iter_no_change,
            max_fun=max_fun, cost=cost, l2_convention=l2_convention, dtype=dtype, progress=progress)

    def _encode_targets(self, y, first_pass, incremental, classes, dtype):
        check_classification_targets(y)           # "Unknown label type: …", as scikit-learn
        if not first_pass and incremental and classes is not None and not np.array_equal(
                self.classes_, unique_labels(classes)):
            raise ValueError(f"`classes={list(classes)!r}` is not the same as on last call to "
                             f"partial_fit, was: {self.classes_!r}")
        if first_pass:
            self._label_binarizer = LabelBinarizer()
            # multilabel indicator targets: their columns are the labels, whatever classes
            # says (scikit-learn's partial_fit fits on y then too)
            multilabel = type_of_target(y).startswith("multilabel")
            self._label_binarizer.fit(y if classes is None or multilabel else classes)
            self.classes_ = self._label_binarizer.classes_
            # one class: scikit-learn trains its one logistic output towards 0 (the binarizer's
            # column for a lone class) and predicts that class; so does this
            self._task = self._label_binarizer.y_type_
        if not first_pass or classes is not None:       # y's labels must be among classes_
            seen = unique_labels(y)
            if (self.warm_start and not incremental and not first_pass
                    and set(seen) != set(self.classes_)):
                raise ValueError(f"warm_start can only be used where `y` has the same classes "
                                 f"as in the previous call to fit. Previously got "
                                 f"{self.classes_}, `y` has {seen}")
            if self._task != "multilabel" and len(np.setdiff1d(seen, self.classes_,
                                                               assume_unique=True)):
                raise ValueError(f"`y` has classes not in `self.classes_`. `self.classes_` has "
                                 f"{self.classes_}. 'y' has {seen}.")
        return self._label_binarizer.transform(y).astype(dtype)

    def _out_activation(self):
        if self._task == "multiclass" and self._cost() == "cross_entropy":
            return "softmax"
        return "logistic"

    def _batch_cost(self):
        if self._cost() == "document":
            return lambda h, Yb, n: losses.document_cost(h, Yb)
        if self.out_activation_ == "softmax":
            # −1/n Σᵢ Σⱼ Yᵢⱼ log softmax(zᵢ)ⱼ with one-hot Y, in one op (the value of
            # (z.log_softmax(axis=1) * Yb).sum() * (-1/n); the gradient (softmax(z) − Y)/n)
            return lambda z, Yb, n: z.softmax_cross_entropy(Yb)
        # binary log loss from the logit z: −[y log σ(z) + (1 − y) log(1 − σ(z))]
        #   = softplus(z) − y·z   (finite for any z)
        return lambda z, Yb, n: (z.softplus() - z * Yb).sum() * (1.0 / n)

    def _class_indices(self, Y):
        """Softmax cross-entropy's one-hot Y as class indices y (Y[i, y_i] = 1): its gradient
        (softmax(z) − Y)/n is the same floats either way, and integer labels take the compiled
        loops (`autograd.kernels`); J's value may differ in its last bit (a sum of n picked
        logs, not of n·k products)."""
        if self.out_activation_ != "softmax" or self._cost() != "cross_entropy":
            return None
        return Y.argmax(axis=1)

    def _shown_value(self):
        """scikit-learn's log loss of a batch: it clips each probability to [ε, 1 − ε] before
        the log (ε the dtype's eps), so a term −log p is at most −log ε, and takes log(1 − p)
        of a rounded p. Ours, J from the logits z, is exact; its gradient is the unclipped
        loss's, as scikit-learn's, so only the value differs, and only where a term is large:
        softmax rows with −log p_y > −log ε, logistic terms beyond about (−log ε)/2 (where
        log(1 − p) of a rounded p departs from the exact softplus). Cheap bounds on the terms
        decide whether scikit-learn's formula must be evaluated at all."""
        if self._cost() != "cross_entropy":
            return None
        eps = np.finfo(self._model.dtype).eps
        softmax = self.out_activation_ == "softmax"
        if softmax:                 # −log p_y ≤ max_j z_j − z_y + log k, row by row
            c, reach = -math.log(eps), math.log(self.n_outputs_)
        else:                       # −log p ≤ |z| + log 2 for either label
            c, reach = -math.log(eps) / 2, math.log(2)

        def shown(z, Y, n, w, J):
            if w is None and J * n <= c:        # the terms are >= 0 and sum to n·J
                return J
            if softmax and Y.ndim == 1:         # class indices (`_class_indices`)
                worst = (_row_max(z)[:, 0] - z[np.arange(len(Y)), Y]).max(initial=0)
                if worst + reach <= c:
                    return J
                Y = np.eye(z.shape[1], dtype=z.dtype)[Y]
            if softmax:
                worst = (_row_max(z)[:, 0] - np.einsum("ij,ij->i", z, Y)).max(initial=0)
            else:
                worst = max(z.max(), -z.min())
            if worst + reach <= c:
                return J
            if softmax:
                p = np.exp(z - z.max(axis=1, keepdims=True))
                p = np.clip(p / p.sum(axis=1, keepdims=True), eps, 1 - eps)
                terms = xlogy(Y, p)
            else:
                p = np.clip(expit(z), eps, 1 - eps)
                terms = xlogy(Y, p) + xlogy(1 - Y, 1 - p)
            return -np.average(terms, weights=w, axis=0).sum()
        return shown

    @available_if(_stochastic_solver)
    def partial_fit(self, X, y, sample_weight=None, classes=None):
        """One epoch over (X, y); ``classes`` (all labels) is required on the first call."""
        if not hasattr(self, "_model") or not hasattr(self, "classes_"):
            if classes is None:
                raise ValueError("classes must be passed on the first call to partial_fit.")
        return self._fit(X, y, incremental=True, classes=classes, sample_weight=sample_weight)

    def _probabilities(self, X):
        h = self._forward(X)
        if self.out_activation_ == "softmax":
            e = np.exp(h - h.max(axis=1, keepdims=True))
            return e / e.sum(axis=1, keepdims=True)
        return h if self._cost() == "document" else _sigmoid(h)

    def predict(self, X):
        """Class labels (from ``classes_``) of the rows of X."""
        p = self._probabilities(X)
        if self.n_outputs_ == 1:
            p = p.ravel()
        return self._label_binarizer.inverse_transform(p)

    def predict_proba(self, X):
        """(n, n_classes) probabilities; rows sum to 1 (except for multilabel targets)."""
        p = self._probabilities(X)
        if self.n_outputs_ == 1:
            p = p.ravel()
            return np.vstack([1 - p, p]).T
        if self._task == "multiclass" and self.out_activation_ != "softmax":
            p = p / np.maximum(p.sum(axis=1, keepdims=True), np.finfo(p.dtype).tiny)
        return p

    def predict_log_proba(self, X):
        return np.log(self.predict_proba(X))

    def _score(self, X, y, sample_weight=None):
        return accuracy_score(y, self.predict(X), sample_weight=sample_weight)


class MLPRegressor(RegressorMixin, _BaseMLP):
    """scikit-learn's MLPRegressor trained by chainrule: identity output, the document's J."""

    _default_cost = "document"
    _costs = ("document", "mse", "poisson")
    _task = "regression"

    # scikit-learn ≥ 1.7's order: loss first, then hidden_layer_sizes and activation
    def __init__(self, loss="squared_error", hidden_layer_sizes=(100,), activation="relu", *,
                 solver="adam", alpha=0.0001, batch_size="auto", learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000,
                 cost="document", l2_convention="sklearn", dtype=np.float64, progress=False):
        super().__init__(
            hidden_layer_sizes=hidden_layer_sizes, activation=activation, solver=solver,
            alpha=alpha, batch_size=batch_size, learning_rate=learning_rate,
            learning_rate_init=learning_rate_init, power_t=power_t, max_iter=max_iter,
            shuffle=shuffle, random_state=random_state, tol=tol, verbose=verbose,
            warm_start=warm_start, momentum=momentum, nesterovs_momentum=nesterovs_momentum,
            early_stopping=early_stopping, validation_fraction=validation_fraction,
            beta_1=beta_1, beta_2=beta_2, epsilon=epsilon, n_iter_no_change=n_iter_no_change,
            max_fun=max_fun, cost=cost, l2_convention=l2_convention, dtype=dtype, progress=progress)
        self.loss = loss

    def _check_params(self):
        _choice("loss", self.loss, ("squared_error", "poisson"))
        return super()._check_params()

    def _cost(self):
        # loss='poisson' (scikit-learn's parameter) takes the Poisson deviance whatever the cost
        return "poisson" if self.loss == "poisson" else super()._cost()

    def _encode_targets(self, y, first_pass, incremental, classes, dtype):
        Y = np.asarray(y, dtype=dtype)
        if self._cost() == "poisson" and np.any(Y < 0):
            raise ValueError("Some value(s) of y are negative which is not allowed for Poisson "
                             "regression.")
        Y = Y.reshape(-1, 1) if Y.ndim == 1 else Y
        if not first_pass and Y.shape[1] != self.n_outputs_:
            raise ValueError(f"y has {Y.shape[1]} outputs, the fitted network has "
                             f"{self.n_outputs_}")
        return Y

    def _out_activation(self):
        return "exp" if self._cost() == "poisson" else "identity"

    def _batch_cost(self):
        if self._cost() == "poisson":
            return lambda z, Yb, n: (_poisson_terms(z, Yb).sum() * (1.0 / n)
                                     + float(_poisson_constant(Yb).sum()) / n)
        cost = losses.get_cost(self._cost())
        return lambda h, Yb, n: cost(h, Yb)

    def _shown_cost_factor(self):
        # scikit-learn differentiates the document's J = 1/(2n) Σᵢ ‖yᵢ − h(xᵢ)‖² but reports
        # its squared_error / 2, the mean over all n·k entries: J / k. loss_curve_, best_loss_
        # and the stopping rule use the reported number, so k outputs need the factor 1/k.
        return 1.0 / self.n_outputs_ if self._cost() == "document" else 1

    @available_if(_stochastic_solver)
    def partial_fit(self, X, y, sample_weight=None):
        """One epoch over (X, y)."""
        return self._fit(X, y, incremental=True, sample_weight=sample_weight)

    def predict(self, X):
        """h(X): shape (n,) for one output, (n, k) for several (exp(z) for loss='poisson')."""
        h = self._forward(X)
        if self.out_activation_ == "exp":
            h = np.exp(h)
        return h.ravel() if self.n_outputs_ == 1 else h

    def _score(self, X, y, sample_weight=None):
        h = self.predict(X)
        if not np.isfinite(h).all():    # diverged: scikit-learn's validation score is nan
            return np.nan
        return r2_score(y, h, sample_weight=sample_weight)


# -- helpers ---------------------------------------------------------------------------------

def _dense(X):
    """A scipy sparse matrix as a dense array (scikit-learn's MLP takes CSR/CSC input; the
    Tensor engine's matmuls are dense, so the rows are densified once, n × features)."""
    return X.toarray() if hasattr(X, "toarray") else X


def _poisson_terms(z, Y):
    """exp(z) − y·z: the Poisson deviance's terms that depend on the logits z (log-link)."""
    return z.exp() - z * Y


def _poisson_constant(Y):
    """y·log y − y: the rest of scikit-learn's half Poisson deviance y·log(y/ŷ) − y + ŷ."""
    return xlogy(Y, Y) - Y


def _sigmoid(z):
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1 / (1 + e), e / (1 + e))


def _set_arrays(est, arrays, name):
    check_is_fitted(est, "_model")
    layers = est._model.layers
    arrays = list(arrays)
    if len(arrays) != len(layers):
        raise ValueError(f"expected {len(layers)} arrays, got {len(arrays)}")
    for layer, array in zip(layers, arrays):
        node = getattr(layer, name)
        array = np.asarray(array)
        if array.shape != node.data.shape:
            raise ValueError(f"{name} of layer {layer.index}: shape {array.shape}, the network "
                             f"has {node.data.shape}")
        node.data = np.array(array, dtype=node.data.dtype, copy=True)


def _choice(name, value, valid):
    if not isinstance(value, str) or value not in valid:
        raise ValueError(f"{name}={value!r} is not supported; choose one of {', '.join(valid)}")


def _is_int(value):
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _is_real(value):
    return (isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
            and math.isfinite(value))
