"""Activation functions f by name, for Value and Tensor nodes alike.

    sigmoid  f(z) = 1/(1 + e^−z)          f′ = f(1 − f)
    tanh     f(z) = tanh z                f′ = 1 − f²
    relu     f(z) = max(z, 0)             f′ = [z > 0]
    identity f(z) = z                     f′ = 1
"""
from __future__ import annotations

ACTIVATIONS = {
    "sigmoid": lambda z: z.sigmoid(),
    "tanh": lambda z: z.tanh(),
    "relu": lambda z: z.relu(),
    "identity": lambda z: z,
}
# scikit-learn's names
ALIASES = {"logistic": "sigmoid", "linear": "identity"}


def activation_name(name):
    if not isinstance(name, str):
        raise TypeError(f"activation must be a name, got {type(name).__name__}")
    name = ALIASES.get(name, name)
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; choose one of "
                         f"{', '.join(sorted(ACTIVATIONS))}")
    return name


def get(name):
    f = ACTIVATIONS.get(name)           # the common case, without the checks
    return f if f is not None else ACTIVATIONS[activation_name(name)]


def per_layer(n_layers, activation, output_activation):
    """One activation name per layer: hidden layers get ``activation`` — one name, or a list
    of one per hidden layer — and the last one ``output_activation``. A list of one name per
    layer (the output's last) is taken as it is, unless ``output_activation`` names another
    output."""
    if isinstance(activation, (list, tuple)):
        names = [activation_name(a) for a in activation]
        output = activation_name(output_activation)
        if len(names) == n_layers - 1:
            return names + [output]
        if len(names) != n_layers:
            raise ValueError(f"{len(names)} activations given for {n_layers} layers (give one "
                             f"per hidden layer, {n_layers - 1}, or one per layer)")
        if output not in (names[-1], "identity"):
            raise ValueError(f"the activation list ends with {names[-1]!r} for the output "
                             f"layer, but output_activation is {output!r}: give one of them")
        return names
    return [activation_name(activation)] * (n_layers - 1) + [activation_name(output_activation)]
