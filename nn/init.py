"""Weight initialisers; each returns (W of shape n_in × n_out, b of shape n_out) as numpy.

    normal   W, b ~ N(0, 1)                               the document's and Nielsen's network.py
    nielsen  W ~ N(0, 1/n_in), b ~ N(0, 1)                Nielsen's network2 (std 1/√n_in)
    glorot   W, b ~ U(−r, r), r = √(6/(n_in + n_out))     scikit-learn's formula (r = √(2/…) for sigmoid)
    he       W ~ N(0, 2/n_in), b = 0                      He et al. for ReLU

glorot's gain follows each layer's own activation (Glorot and Bengio's reasoning); scikit-learn
uses the hidden activation's for every layer, output included. `nn.MLPClassifier` and
`nn.MLPRegressor` draw their weights scikit-learn's way.
"""
from __future__ import annotations

import numpy as np

from .activations import activation_name

INITIALISERS = ("normal", "nielsen", "glorot", "he")


def init_layer(name, n_in, n_out, rng, activation="relu", dtype=np.float64):
    if name == "normal":
        W = rng.standard_normal((n_in, n_out))
        b = rng.standard_normal(n_out)
    elif name == "nielsen":
        W = rng.standard_normal((n_in, n_out)) / np.sqrt(n_in)
        b = rng.standard_normal(n_out)
    elif name == "glorot":
        factor = 2.0 if activation_name(activation) == "sigmoid" else 6.0
        r = np.sqrt(factor / (n_in + n_out))
        W = rng.uniform(-r, r, (n_in, n_out))
        b = rng.uniform(-r, r, n_out)
    elif name == "he":
        W = rng.standard_normal((n_in, n_out)) * np.sqrt(2.0 / n_in)
        b = np.zeros(n_out)
    else:
        raise ValueError(f"unknown initialiser {name!r}; choose one of {', '.join(INITIALISERS)}")
    return W.astype(dtype), b.astype(dtype)


def rng_from(seed):
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
