"""The document's network on `Value`s, one number at a time — for study, drawing, explaining.

Neuron j of layer l computes z_j^(l) = Σ_i a_i^(l) · W_ij^(l) + b_j^(l) and a_j^(l+1) = f(z_j^(l)).
Every layer returns a list (even of one Value), so any stack of widths works — including a
layer of a single neuron in the middle, which crashes micrograd's ``MLP(2, [16, 1, 1])``.
"""
from __future__ import annotations

import numpy as np

from autograd import Node, Value, weighted_sum

from . import activations as act
from .init import init_layer, rng_from
from .module import ModelFileError, Module, _check_state


def _as_inputs(x):
    """One example's inputs as Values (numbers become constants); a batch is an error that
    says to call the network once per row, as the document's h(x) takes one x."""
    if (x.ndim != 1 if isinstance(x, np.ndarray)
            else len(x) and isinstance(x[0], (list, tuple, np.ndarray))):
        raise ValueError(f"a Value network takes one example (a flat sequence of numbers or "
                         f"Values), got shape {np.shape(x)}; call it once per row, e.g. "
                         f"[net(row) for row in X]")
    return [xi if isinstance(xi, Value) else Value(float(xi), requires_grad=False) for xi in x]


class Neuron(Module):
    """One unit: z = Σ wᵢ aᵢ + b, a = f(z)."""

    def __init__(self, n_in, activation="relu", w=None, b=0.0, label=None):
        self.w = [Value(float(wi), label=None) for wi in (w if w is not None else [0.0] * n_in)]
        if len(self.w) != n_in:
            raise ValueError(f"Neuron: {len(self.w)} weights given for {n_in} inputs")
        self.b = Value(float(b))
        self.activation = act.activation_name(activation)
        self.label = label

    def forward(self, x, z_label=None):
        if len(x) != len(self.w):
            raise ValueError(f"Neuron expects {len(self.w)} inputs, got {len(x)}")
        z = weighted_sum(self.w, x, self.b, z_label)     # b + w₁a₁ + w₂a₂ + …, node by node
        a = act.get(self.activation)(z)
        return z, a

    def __call__(self, x):
        return self.forward(_as_inputs(x))[1]

    def __repr__(self):
        return f"Neuron({len(self.w)}, activation={self.activation!r})"


class Layer(Module):
    """n_out neurons sharing the inputs: z^(l) = a^(l) · W^(l) + b^(l), a^(l+1) = f(z^(l))."""

    def __init__(self, n_in, n_out, activation="relu", W=None, b=None, index=1):
        W = np.zeros((n_in, n_out)) if W is None else np.asarray(W, dtype=float)
        b = np.zeros(n_out) if b is None else np.asarray(b, dtype=float)
        if W.shape != (n_in, n_out) or b.shape != (n_out,):
            raise ValueError(f"Layer({n_in}, {n_out}): W has shape {W.shape}, b {b.shape}")
        self.neurons = [Neuron(n_in, activation, W[:, j], b[j]) for j in range(n_out)]
        self.activation = act.activation_name(activation)
        self.index = index
        self._label_parameters()

    def _label_parameters(self):
        l = self.index
        for j, neuron in enumerate(self.neurons):
            for i, w in enumerate(neuron.w):
                w.label = f"W({l})[{i},{j}]"
            neuron.b.label = f"b({l})[{j}]"

    @property
    def n_in(self):
        return len(self.neurons[0].w)

    @property
    def n_out(self):
        return len(self.neurons)

    def forward(self, x):
        """(z^(l), a^(l+1)) as lists of Values, labelled in the document's notation."""
        x = _as_inputs(x)
        zs, outs = [], []
        for neuron, (z_label, a_label) in zip(self.neurons, self._node_labels()):
            z, a = neuron.forward(x, z_label)
            if a is not z:
                a.label = a_label
            zs.append(z)
            outs.append(a)
        return zs, outs

    def _node_labels(self):
        """[(z(l)[j], a(l+1)[j])] for the neurons, made once per layer index."""
        cache = self.__dict__.setdefault("_labels_by_index", {})     # a dict: not a child
        l = self.index
        if l not in cache:
            cache[l] = [(f"z({l})[{j}]", f"a({l + 1})[{j}]") for j in range(len(self.neurons))]
        return cache[l]

    def __call__(self, x):
        return self.forward(x)[1]

    def W_array(self):
        return np.array([[w.data for w in n.w] for n in self.neurons]).T

    def b_array(self):
        return np.array([n.b.data for n in self.neurons])

    def weights(self):
        return [n.w[i] for i in range(self.n_in) for n in self.neurons]

    def named_parameters(self, prefix=""):
        """W row by row (W[i, j] = weight from input i to neuron j), then b: the order of the
        Tensor MLP's flattened W^(l), b^(l)."""
        for i in range(self.n_in):
            for j, n in enumerate(self.neurons):
                yield f"{prefix}W.{i}.{j}", n.w[i]
        for j, n in enumerate(self.neurons):
            yield f"{prefix}b.{j}", n.b

    def __repr__(self):
        return f"Layer({self.n_in}, {self.n_out}, activation={self.activation!r})"


class MLP(Module):
    """``MLP(n_in, sizes, activation='relu', output_activation='identity')`` on Values.

    The same constructor and parameter order as `nn.MLP` on Tensors; `state_dict` holds one
    W^(l) (n^(l) × n^(l+1)) and b^(l) per layer, so weights copy between the two — also when
    it is a child of another `Module`, whose state holds them as ``net.layers.0.W``.
    """

    def __init__(self, n_in, sizes, activation="relu", output_activation="identity",
                 init="glorot", seed=0):
        sizes = list(sizes)
        if not sizes or any(int(s) < 1 for s in sizes) or int(n_in) < 1:
            raise ValueError(f"MLP needs positive layer sizes, got n_in={n_in}, sizes={sizes}")
        names = act.per_layer(len(sizes), activation, output_activation)
        rng = rng_from(seed)
        widths = [int(n_in)] + [int(s) for s in sizes]
        self.layers = []
        for l, (a, b, name) in enumerate(zip(widths[:-1], widths[1:], names), start=1):
            W, bias = init_layer(init, a, b, rng, name)
            self.layers.append(Layer(a, b, name, W, bias, index=l))
        self.sizes = widths

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return x

    def trace(self, x):
        """[(z^(l), a^(l+1)) for each layer]: the document's quantities as lists of Values."""
        steps = []
        for layer in self.layers:
            z, x = layer.forward(x)
            steps.append((z, x))
        return steps

    def weights(self):
        return [w for layer in self.layers for w in layer.weights()]

    def state_dict(self):
        state = {}
        for l, layer in enumerate(self.layers):
            state[f"layers.{l}.W"] = layer.W_array()
            state[f"layers.{l}.b"] = layer.b_array()
        return state

    def _prepare_load(self, state, prefix=""):
        """`load_state_dict`'s check phase for this state_dict's per-layer W and b arrays:
        names and shapes checked and every array converted before anything is written; the
        returned function writes them into the Values."""
        shapes = {}
        for l, layer in enumerate(self.layers):
            shapes[f"layers.{l}.W"] = (layer.n_in, layer.n_out)
            shapes[f"layers.{l}.b"] = (layer.n_out,)
        state = self._arrays_from_numbers(state)
        _check_state(shapes, state, prefix)
        arrays = {}
        for name in shapes:
            try:
                given = state[name]
                arrays[name] = np.asarray(given.data if isinstance(given, Node) else given,
                                          dtype=float)
            except (TypeError, ValueError) as error:
                raise ModelFileError(f"state does not fit this model: parameter "
                                     f"{prefix}{name}: {error}") from None

        def apply():
            for l, layer in enumerate(self.layers):
                W, b = arrays[f"layers.{l}.W"], arrays[f"layers.{l}.b"]
                for j, n in enumerate(layer.neurons):
                    for i, w in enumerate(n.w):
                        w.data = float(W[i, j])
                    n.b.data = float(b[j])
        return apply

    def _arrays_from_numbers(self, state):
        """``state`` with one key per number (``layers.0.W.i.j``, ``layers.0.b.j``: the names
        of `named_parameters`, as a `Module` holding this network saved it before it kept its
        own state) made into this state_dict's arrays; any other state as it is."""
        numbers = [name for name, _ in self.named_parameters()]
        if not hasattr(state, "keys") or set(state.keys()) != set(numbers):
            return state
        arrays = {}
        for l, layer in enumerate(self.layers):
            arrays[f"layers.{l}.W"] = [[state[f"layers.{l}.W.{i}.{j}"] for j in range(layer.n_out)]
                                       for i in range(layer.n_in)]
            arrays[f"layers.{l}.b"] = [state[f"layers.{l}.b.{j}"] for j in range(layer.n_out)]
        return arrays

    def __repr__(self):
        inner = ", ".join(repr(layer) for layer in self.layers)
        return f"MLP({self.sizes[0]}, {self.sizes[1:]}: {inner})"
