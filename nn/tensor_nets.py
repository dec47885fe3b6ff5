"""The document's network on `Tensor`s, a whole batch at a time — for speed.

Row convention: a batch is n × features; z^(l) = a^(l) · W^(l) + b^(l) with W^(l) of shape
n^(l) × n^(l+1); a^(l+1) = f(z^(l)).
"""
from __future__ import annotations

import numpy as np

from autograd import Tensor

from . import activations as act
from .init import init_layer, rng_from
from .module import Module


class Linear(Module):
    """z = a · W + b."""

    def __init__(self, n_in, n_out, init="glorot", seed=0, dtype=np.float64,
                 activation="relu", index=1):
        W, b = init_layer(init, int(n_in), int(n_out), rng_from(seed), activation, dtype)
        self.W = Tensor(W, requires_grad=True, label=f"W({index})")
        self.b = Tensor(b, requires_grad=True, label=f"b({index})")
        self.index = index

    def forward(self, a):
        a = a if isinstance(a, Tensor) else Tensor(a, dtype=self.W.dtype)
        if a.shape[-1] != self.W.shape[0]:
            raise ValueError(f"Linear({self.W.shape[0]}, {self.W.shape[1]}): input has "
                             f"{a.shape[-1]} features (shape {a.shape}), expected "
                             f"{self.W.shape[0]}")
        z = a @ self.W + self.b
        z.label = f"z({self.index})"
        return z

    def __repr__(self):
        return f"Linear({self.W.shape[0]}, {self.W.shape[1]})"


class Activation(Module):
    def __init__(self, name, index=2):
        self.name = act.activation_name(name)
        self.index = index

    def forward(self, z):
        a = act.get(self.name)(z)
        if a is not z:
            a.label = f"a({self.index})"
        return a

    def __repr__(self):
        return f"Activation({self.name!r})"


class Sequential(Module):
    def __init__(self, *modules):
        self.layers = list(modules)

    def forward(self, x):
        for m in self.layers:
            x = m(x)
        return x

    def __repr__(self):
        return "Sequential(" + ", ".join(repr(m) for m in self.layers) + ")"


class MLP(Module):
    """``MLP(n_in, sizes, activation='relu', output_activation='identity')`` on Tensors.

    Parameters in the order W^(1), b^(1), W^(2), b^(2), …, named ``layers.{l-1}.W``/``.b``.
    """

    def __init__(self, n_in, sizes, activation="relu", output_activation="identity",
                 init="glorot", seed=0, dtype=np.float64):
        sizes = list(sizes)
        if not sizes or any(int(s) < 1 for s in sizes) or int(n_in) < 1:
            raise ValueError(f"MLP needs positive layer sizes, got n_in={n_in}, sizes={sizes}")
        self.activations = act.per_layer(len(sizes), activation, output_activation)
        rng = rng_from(seed)
        widths = [int(n_in)] + [int(s) for s in sizes]
        self.layers = [Linear(a, b, init, rng, dtype, name, index=l)
                       for l, (a, b, name) in enumerate(zip(widths[:-1], widths[1:],
                                                           self.activations), start=1)]
        self.sizes = widths
        self.dtype = np.dtype(dtype)

    def trace(self, x):
        """[(z^(l), a^(l+1)) for each layer], labelled in the document's notation."""
        a = x if isinstance(x, Tensor) else Tensor(x, dtype=self.dtype)
        if a.ndim != 2 or a.shape[1] != self.sizes[0]:
            raise ValueError(f"MLP expects input of shape (n, {self.sizes[0]}), got {a.shape}")
        steps = []
        for layer, name in zip(self.layers, self.activations):
            z = layer(a)
            a = act.get(name)(z)
            if a is not z:
                a.label = f"a({layer.index + 1})"
            steps.append((z, a))
        return steps

    def forward(self, x):
        return self.trace(x)[-1][1]

    def weights(self):
        return [layer.W for layer in self.layers]

    def __repr__(self):
        return (f"MLP({self.sizes[0]}, {self.sizes[1:]}, activations={self.activations}, "
                f"dtype={self.dtype})")
