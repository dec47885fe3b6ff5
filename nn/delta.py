"""The document's hand-derived backpropagation, in plain numpy: the independent witness.

This module never imports ``autograd``. It writes out the residual ("δ") formulas of the document
so that autograd's gradients can be checked against them (and both against central differences).

Notation (row-vector convention; a batch is an n × features array; layers numbered 1..L+1):

    a^(1)   = x                                   layer 1 is the input
    z^(l)   = a^(l) · W^(l) + b^(l)               W^(l): n^(l) × n^(l+1),  b^(l): (n^(l+1),)
    a^(l+1) = f_l(z^(l))                          l = 1..L,  h(x) = a^(L+1)

Costs (n rows in the batch, k outputs):

    "document"       J = 1/(2n) Σ_i ||y_i − h(x_i)||²
    "mse"            J = 1/(n·k) Σ_i Σ_j (y_ij − h_j(x_i))²
    "cross_entropy"  J = −1/n Σ_i log softmax(z^(L))_{i, y_i}     (f_L must be "identity")

Residuals. The factor 1/n of the cost (the mean over the batch) is folded into the output residual
δ^(L+1) once, so every gradient below is already "summed over the batch and divided by n":

    "document"       δ^(L+1) = −(y − a^(L+1)) ⊙ f_L′(z^(L)) / n
    "mse"            δ^(L+1) = −2 (y − a^(L+1)) ⊙ f_L′(z^(L)) / (n·k)
    "cross_entropy"  δ^(L+1) = (softmax(z^(L)) − Y) / n          (Y one-hot)

    δ^(l)      = (δ^(l+1) · W^(l)ᵀ) ⊙ f_{l−1}′(z^(l−1))          l = L, …, 2
    ∂J/∂W^(l)  = a^(l)ᵀ · δ^(l+1)                                 (the matmul sums over the batch)
    ∂J/∂b^(l)  = Σ_i δ^(l+1)_i                                     (sum of rows)

L2 on the weights only (never the biases), by convention name:

    "ufldl"    + λ/2 · Σ_l ||W^(l)||²             ∂/∂W^(l) += λ W^(l)
    "nielsen"  + λ/(2·n_train) · Σ_l ||W^(l)||²   ∂/∂W^(l) += λ/n_train · W^(l)
    "sklearn"  + α/(2·n) · Σ_l ||W^(l)||²         ∂/∂W^(l) += α/n · W^(l)

(n_train: the training-set size, passed in; n: the rows of this batch.)

Python lists are 0-based, the document is 1-based. The mapping used everywhere here:

    weights[l − 1] = W^(l),  biases[l − 1] = b^(l),  activations[l − 1] = f_l      (l = 1..L)
    a[l − 1] = a^(l)  (l = 1..L+1),  z[l − 1] = z^(l)  (l = 1..L)
    delta[l − 2] = δ^(l)  (l = 2..L+1)
"""

from dataclasses import dataclass

import numpy as np


# ---------------------------------------------------------------------------------------------
# Activations: f(z) and f′(z) side by side.
# ---------------------------------------------------------------------------------------------

def sigmoid(z):
    """f(z) = 1 / (1 + e^(−z)), evaluated without overflow: e^(−|z|) never exceeds 1."""
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1, e) / (1 + e)         # 1/(1 + e) or e/(1 + e): one division


def sigmoid_prime(z):
    """f′(z) = f(z) (1 − f(z)), computed as f(z)·f(−z): no cancellation where f saturates."""
    return sigmoid(z) * sigmoid(-z)


def tanh(z):
    """f(z) = tanh(z)."""
    return np.tanh(z)


def tanh_prime(z):
    """f′(z) = 1 − tanh(z)² = sech²(z) = 4e^(−2|z|) / (1 + e^(−2|z|))²: no cancellation, no
    overflow."""
    e = np.exp(-2 * np.abs(z))
    return 4 * e / ((1 + e) * (1 + e))


def relu(z):
    """f(z) = max(z, 0)."""
    return np.maximum(z, 0)


def relu_prime(z):
    """f′(z) = 1 if z > 0 else 0 (so relu′(0) = 0)."""
    return (z > 0).astype(z.dtype)


def identity(z):
    """f(z) = z."""
    return z


def identity_prime(z):
    """f′(z) = 1."""
    return np.ones_like(z)


ACTIVATIONS = {
    "sigmoid": (sigmoid, sigmoid_prime),
    "tanh": (tanh, tanh_prime),
    "relu": (relu, relu_prime),
    "identity": (identity, identity_prime),
}

COSTS = ("document", "mse", "cross_entropy")

L2_CONVENTIONS = ("ufldl", "nielsen", "sklearn")


def softmax(z):
    """softmax(z)_j = e^(z_j) / Σ_m e^(z_m), row by row, shifted by the row maximum."""
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def log_softmax(z):
    """log softmax(z)_j = z_j − log Σ_m e^(z_m), computed as z_j − max − log Σ e^(z_m − max)."""
    shifted = z - z.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


# ---------------------------------------------------------------------------------------------
# Checking the arguments, with errors that name the problem and the shapes.
# ---------------------------------------------------------------------------------------------

def _check_name(name, valid, what):
    if name not in valid:
        raise ValueError(f"unknown {what} {name!r}; valid {what}s are: {', '.join(valid)}")


def resolve_activations(activations, L):
    """Return the list [f_1, …, f_L] of activation names.

    ``activations`` is one name (every layer), a sequence of L names (one per layer, f_l for
    z^(l)), or a pair (hidden, output): ``hidden`` for f_1..f_{L−1} and ``output`` for f_L.
    (When L = 2 the two readings coincide.)
    """
    if isinstance(activations, str):
        names = [activations] * L
    else:
        names = list(activations)
        if len(names) == L:
            pass
        elif len(names) == 2:
            names = [names[0]] * (L - 1) + [names[1]]
        else:
            raise ValueError(
                f"activations must be one name, {L} names (one per layer f_1..f_{L}) or a pair "
                f"(hidden, output); got {len(names)} names: {names!r}")
    for name in names:
        _check_name(name, tuple(ACTIVATIONS), "activation")
    return names


def _working_dtype(x):
    x = np.asarray(x)
    return x.dtype if np.issubdtype(x.dtype, np.floating) else np.dtype(np.float64)


def _check_parameters(weights, biases, dtype):
    """Return W^(1..L), b^(1..L) as arrays of ``dtype`` after checking their shapes chain up."""
    if len(weights) != len(biases):
        raise ValueError(f"got {len(weights)} weight matrices but {len(biases)} bias vectors")
    if len(weights) == 0:
        raise ValueError("a network needs at least one layer (one W^(1) and one b^(1))")
    W_list, b_list = [], []
    for l, (W, b) in enumerate(zip(weights, biases), start=1):
        W = np.asarray(W, dtype=dtype)
        b = np.asarray(b, dtype=dtype)
        if W.ndim != 2:
            raise ValueError(f"W^({l}) must be 2-D (n^({l}) × n^({l + 1})), got shape {W.shape}")
        if b.shape != (W.shape[1],):
            raise ValueError(
                f"b^({l}) must have shape ({W.shape[1]},) to match W^({l}) of shape {W.shape}, "
                f"got {b.shape}")
        if W_list and W.shape[0] != W_list[-1].shape[1]:
            raise ValueError(
                f"W^({l}) has shape {W.shape} but W^({l - 1}) has shape {W_list[-1].shape}: "
                f"n^({l}) must be {W_list[-1].shape[1]}")
        W_list.append(W)
        b_list.append(b)
    return W_list, b_list


def _check_x(x, W1, dtype):
    x = np.asarray(x, dtype=dtype)
    if x.ndim == 1:
        x = x[None, :]  # one sample, as a 1 × n^(1) row
    if x.ndim != 2 or x.shape[1] != W1.shape[0]:
        raise ValueError(
            f"x must be n × {W1.shape[0]} to match W^(1) of shape {W1.shape}, got shape {x.shape}")
    return x


def _targets(y, n, k, cost, dtype):
    """Return Y as an n × k array of ``dtype``; integer labels (n,) become one-hot rows, and
    for one sample (n = 1) a target row of length k > 1 is that sample's row."""
    y = np.asarray(y)
    if n == 1 and k > 1 and y.ndim == 1 and y.shape[0] == k:
        y = y[None, :]
    if y.ndim == 1 and (cost == "cross_entropy" or (k > 1 and np.issubdtype(y.dtype, np.integer))):
        if y.shape[0] != n:
            raise ValueError(f"y has {y.shape[0]} labels but x has {n} rows")
        if not np.issubdtype(y.dtype, np.integer):
            if not np.all(y == np.round(y)):
                raise ValueError("class labels y must be integers")
            y = y.astype(np.int64)
        if y.size and (y.min() < 0 or y.max() >= k):
            raise ValueError(f"labels must lie in 0..{k - 1} (k = {k} outputs), got values in "
                             f"{y.min()}..{y.max()}")
        return np.eye(k, dtype=dtype)[y]  # one-hot rows: Y_ij = 1 if y_i = j
    if y.ndim == 1 and k == 1:
        y = y[:, None]
    if y.shape != (n, k):
        raise ValueError(f"y must have shape ({n}, {k}) (n rows × k outputs), got {y.shape}")
    return y.astype(dtype, copy=False)


# ---------------------------------------------------------------------------------------------
# Forward pass and the δ recursion.
# ---------------------------------------------------------------------------------------------

def forward(weights, biases, x, activations):
    """Run z^(l) = a^(l) · W^(l) + b^(l), a^(l+1) = f_l(z^(l)) for l = 1..L.

    Returns ``(a, z)``: ``a[l − 1] = a^(l)`` for l = 1..L+1 (``a[0]`` is x, ``a[-1]`` is h(x)) and
    ``z[l − 1] = z^(l)`` for l = 1..L. The dtype of x is kept (float32 stays float32).
    """
    dtype = _working_dtype(x)
    W_list, b_list = _check_parameters(weights, biases, dtype)
    names = resolve_activations(activations, len(W_list))
    a = [_check_x(x, W_list[0], dtype)]
    z = []
    for W, b, name in zip(W_list, b_list, names):
        f, _ = ACTIVATIONS[name]
        z.append(a[-1] @ W + b)
        a.append(f(z[-1]))
    return a, z


@dataclass(eq=False)                # lists of arrays: compare them with numpy, not ==
class DeltaResult:
    """Everything the δ recursion computed for one batch.

    Index mapping (lists are 0-based, the document is 1-based):

        a[l − 1]      = a^(l)        l = 1..L+1   (a[0] = x, a[-1] = h(x))
        z[l − 1]      = z^(l)        l = 1..L
        delta[l − 2]  = δ^(l)        l = 2..L+1   (delta[-1] is the output residual)
        grad_W[l − 1] = ∂J/∂W^(l)    l = 1..L
        grad_b[l − 1] = ∂J/∂b^(l)    l = 1..L

    Use ``a_at(l)``, ``z_at(l)``, ``delta_at(l)``, ``grad_W_at(l)``, ``grad_b_at(l)`` to index by l.
    ``cost`` is J including the L2 term.
    """

    a: list
    z: list
    delta: list
    grad_W: list
    grad_b: list
    cost: float

    @property
    def L(self):
        """L: the number of weight layers (the output is layer L + 1)."""
        return len(self.z)

    def _at(self, items, l, first, name):
        if isinstance(l, bool) or not isinstance(l, (int, np.integer)):
            raise TypeError(f"{name}: the layer number l is a whole number, got {l!r}")
        last = first + len(items) - 1
        if not first <= l <= last:
            raise IndexError(f"{name} is defined for l = {first}..{last}, got l = {l}")
        return items[l - first]

    def a_at(self, l):
        """a^(l), l = 1..L+1."""
        return self._at(self.a, l, 1, "a^(l)")

    def z_at(self, l):
        """z^(l), l = 1..L."""
        return self._at(self.z, l, 1, "z^(l)")

    def delta_at(self, l):
        """δ^(l), l = 2..L+1."""
        return self._at(self.delta, l, 2, "δ^(l)")

    def grad_W_at(self, l):
        """∂J/∂W^(l), l = 1..L."""
        return self._at(self.grad_W, l, 1, "∂J/∂W^(l)")

    def grad_b_at(self, l):
        """∂J/∂b^(l), l = 1..L."""
        return self._at(self.grad_b, l, 1, "∂J/∂b^(l)")


def _l2_factor(l2, l2_convention, n, n_train):
    """Return c such that the penalty is c/2 · Σ||W||² and its gradient is c · W."""
    _check_name(l2_convention, L2_CONVENTIONS, "l2 convention")
    if l2_convention == "ufldl":
        return l2
    if l2_convention == "nielsen":
        if n_train is None or n_train <= 0:
            raise ValueError("the 'nielsen' l2 convention needs n_train, the training-set size "
                             "(> 0)")
        return l2 / n_train
    return l2 / n  # "sklearn": α / (rows in this batch)


def backprop(weights, biases, x, y, activations, cost="document", l2=0.0, l2_convention="ufldl",
             n_train=None):
    """J and its gradients by the document's δ recursion (see the module docstring for the math).

    ``weights[l − 1] = W^(l)``, ``biases[l − 1] = b^(l)``; x is n × n^(1) (a single 1-D row is
    read as n = 1); y is n × k, or integer labels (n,) which become one-hot rows (required form
    for "cross_entropy" is either labels (n,) or one-hot (n, k)). Returns a ``DeltaResult``.
    """
    _check_name(cost, COSTS, "cost")
    _check_name(l2_convention, L2_CONVENTIONS, "l2 convention")
    a, z = forward(weights, biases, x, activations)
    dtype = a[0].dtype
    W_list, _ = _check_parameters(weights, biases, dtype)
    names = resolve_activations(activations, len(W_list))
    L = len(W_list)
    n, k = a[-1].shape
    if n == 0:
        raise ValueError("x has no rows: J is a mean over the batch, so an empty batch has no "
                         "cost and no gradient")
    Y = _targets(y, n, k, cost, dtype)
    h = a[-1]

    # Output residual δ^(L+1); the batch mean's 1/n is folded in here, once.
    if cost == "document":
        J = 0.5 * float(np.sum((Y - h) ** 2)) / n
        delta_out = -(Y - h) * ACTIVATIONS[names[-1]][1](z[-1]) / n
    elif cost == "mse":
        J = float(np.sum((Y - h) ** 2)) / (n * k)
        delta_out = -2 * (Y - h) * ACTIVATIONS[names[-1]][1](z[-1]) / (n * k)
    else:
        if names[-1] != "identity":
            raise ValueError(
                f"cost 'cross_entropy' takes logits: the last activation f_{L} must be 'identity', "
                f"got {names[-1]!r}")
        if k < 2:
            raise ValueError("cost 'cross_entropy' needs at least 2 outputs: softmax over one "
                             "logit is always 1, so J and every gradient would be 0")
        J = -float(np.sum(Y * log_softmax(z[-1]))) / n
        # ∂J/∂z = (softmax(z)·Σⱼ tⱼ − t)/n: softmax − t for target rows summing to 1 (one-hot,
        # soft labels), and right for any other rows the cost accepts too
        delta_out = (softmax(z[-1]) * Y.sum(axis=1, keepdims=True) - Y) / n

    # Hidden residuals δ^(l) = (δ^(l+1) · W^(l)ᵀ) ⊙ f_{l−1}′(z^(l−1)), l = L..2.
    delta = [delta_out]
    for l in range(L, 1, -1):
        f_prime = ACTIVATIONS[names[l - 2]][1]
        delta.insert(0, (delta[0] @ W_list[l - 1].T) * f_prime(z[l - 2]))

    # ∂J/∂W^(l) = a^(l)ᵀ · δ^(l+1), ∂J/∂b^(l) = Σ_i δ^(l+1)_i; delta[l − 1] is δ^(l+1).
    grad_W = [a[l - 1].T @ delta[l - 1] for l in range(1, L + 1)]
    grad_b = [delta[l - 1].sum(axis=0) for l in range(1, L + 1)]

    if l2:
        c = _l2_factor(l2, l2_convention, n, n_train)
        J += 0.5 * c * sum(float(np.sum(W * W)) for W in W_list)
        grad_W = [g + c * W for g, W in zip(grad_W, W_list)]

    return DeltaResult(a=a, z=z, delta=delta, grad_W=grad_W, grad_b=grad_b, cost=J)


# ---------------------------------------------------------------------------------------------
# A small network object a training loop can drive.
# ---------------------------------------------------------------------------------------------

class DeltaNetwork:
    """A multilayer network whose gradients come from the δ recursion (``backprop``).

    ``parameters()`` returns the arrays W^(1), b^(1), W^(2), b^(2), … in that order, and
    ``loss_and_grads(x, y)`` returns J and the gradients in the same order, so any optimiser that
    updates arrays in place (w −= α ∂J/∂w) can drive it.
    """

    def __init__(self, weights, biases, activations, cost="document", l2=0.0,
                 l2_convention="ufldl", n_train=None):
        _check_name(cost, COSTS, "cost")
        _check_name(l2_convention, L2_CONVENTIONS, "l2 convention")
        self.weights = [np.asarray(W) for W in weights]
        self.biases = [np.asarray(b) for b in biases]
        dtype = self.weights[0].dtype if self.weights else np.float64
        if not np.issubdtype(dtype, np.floating):
            raise TypeError(f"the weights must be floats (gradient steps are fractions), got "
                            f"{dtype}")
        _check_parameters(self.weights, self.biases, dtype)
        if any(0 in W.shape for W in self.weights):
            raise ValueError(f"every layer needs at least one unit, got weight shapes "
                             f"{[W.shape for W in self.weights]}")
        if not (isinstance(l2, (int, float, np.floating, np.integer)) and l2 >= 0):
            raise ValueError(f"l2 must be a number >= 0, got {l2!r}")
        if l2 and l2_convention == "nielsen" and n_train is not None and n_train < 1:
            raise ValueError(f"the 'nielsen' L2 term divides by n_train, got {n_train!r}")
        self.activations = resolve_activations(activations, len(self.weights))
        self.cost = cost
        self.l2 = l2
        self.l2_convention = l2_convention
        self.n_train = n_train

    @classmethod
    def init(cls, sizes, activations, cost="document", seed=0, dtype=np.float64, **kwargs):
        """A network of layer widths ``sizes = [n^(1), …, n^(L+1)]`` with Glorot-uniform W^(l).

        W^(l) ~ U(−r, r), r = sqrt(6 / (n^(l) + n^(l+1))) (sqrt(2 / …) for sigmoid, as
        scikit-learn does); b^(l) drawn from the same range.
        """
        if len(sizes) < 2:
            raise ValueError(f"sizes needs at least two widths [n^(1), n^(2)], got {sizes!r}")
        if not np.issubdtype(np.dtype(dtype), np.floating):
            raise TypeError(f"dtype must be a float type, got {np.dtype(dtype)}")
        names = resolve_activations(activations, len(sizes) - 1)
        rng = np.random.default_rng(seed)
        weights, biases = [], []
        for l in range(len(sizes) - 1):
            factor = 2.0 if names[l] == "sigmoid" else 6.0
            r = np.sqrt(factor / (sizes[l] + sizes[l + 1]))
            weights.append(rng.uniform(-r, r, (sizes[l], sizes[l + 1])).astype(dtype))
            biases.append(rng.uniform(-r, r, sizes[l + 1]).astype(dtype))
        return cls(weights, biases, names, cost=cost, **kwargs)

    def parameters(self):
        """[W^(1), b^(1), W^(2), b^(2), …]: the arrays themselves, for in-place updates."""
        return [p for W, b in zip(self.weights, self.biases) for p in (W, b)]

    def backprop(self, x, y):
        """The full ``DeltaResult`` for one batch."""
        return backprop(self.weights, self.biases, x, y, self.activations, cost=self.cost,
                        l2=self.l2, l2_convention=self.l2_convention, n_train=self.n_train)

    def loss_and_grads(self, x, y):
        """(J, [∂J/∂W^(1), ∂J/∂b^(1), ∂J/∂W^(2), …]) in the order of ``parameters()``."""
        r = self.backprop(x, y)
        grads = [g for gW, gb in zip(r.grad_W, r.grad_b) for g in (gW, gb)]
        return r.cost, grads

    def output(self, x):
        """h(x) = a^(L+1)."""
        a, _ = forward(self.weights, self.biases, x, self.activations)
        return a[-1]

    def predict(self, x):
        """Class labels argmax_j h_j(x) when k > 1; h(x) as a 1-D array when k = 1."""
        h = self.output(x)
        return h.argmax(axis=1) if h.shape[1] > 1 else h[:, 0]

    def __repr__(self):
        sizes = [self.weights[0].shape[0]] + [W.shape[1] for W in self.weights]
        text = (f"DeltaNetwork(sizes={sizes}, activations={self.activations}, cost={self.cost!r}")
        if self.l2:
            text += f", l2={self.l2}, l2_convention={self.l2_convention!r}"
            if self.l2_convention == "nielsen":
                text += f", n_train={self.n_train}"
        return text + ")"
