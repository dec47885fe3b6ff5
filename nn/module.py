"""`Module`: parameters, modes, and saving — the base of every network in `nn`.

Parameters are found by looking at a module's attributes in the order they were set: a node
with ``requires_grad`` is a parameter, a `Module` (or a list of them) is a child, a list of
nodes is a list of parameters. Names are dotted paths: ``layers.0.W``.
"""
from __future__ import annotations

import os
import zipfile

import numpy as np

from autograd import Node

from .fileio import atomic_file


class ModelFileError(ValueError):
    """A saved model that cannot be loaded: wrong file, wrong architecture."""


class Module:
    training = True

    def named_parameters(self, prefix=""):
        """(dotted name, node) for every parameter, in definition order; a parameter reached
        twice (a shared submodule) is listed once, under its first name, as in PyTorch, so an
        optimiser steps it once."""
        seen = set()
        for name, value in vars(self).items():
            for path, p in _named(value, f"{prefix}{name}"):
                if id(p) not in seen:
                    seen.add(id(p))
                    yield path, p

    def parameters(self):
        return [p for _, p in self.named_parameters()]

    def modules(self):
        yield self
        for value in vars(self).values():
            for child in _children(value):
                yield from child.modules()

    def zero_grad(self):
        for p in self.parameters():
            p.zero_grad()

    def train(self, mode=True):
        for m in self.modules():
            m.training = mode
        return self

    def eval(self):
        return self.train(False)

    # -- state ---------------------------------------------------------------------------------
    def state_dict(self):
        """{name: numpy array} — a copy of every parameter's data."""
        return {name: np.array(p.data, copy=True) for name, p in self.named_parameters()}

    def load_state_dict(self, state):
        """Copy arrays into the parameters; names and shapes must match exactly. Every array is
        converted before any parameter changes, so a bad state leaves the model as it was."""
        own = dict(self.named_parameters())
        _check_state(own_shapes={k: np.shape(p.data) for k, p in own.items()}, state=state)
        try:
            new = {name: _as_data(state[name], p.data) for name, p in own.items()}
        except (TypeError, ValueError) as error:
            raise ModelFileError(f"state does not fit this model: {error}") from None
        for name, p in own.items():
            p.data = new[name]

    def save(self, path):
        """Write the parameters to an ``.npz`` file atomically (temporary file, then rename)."""
        save_arrays(path, self.state_dict())

    def load(self, path):
        self.load_state_dict(load_arrays(path))
        return self

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__}.forward")


def _named(value, path):
    # every node a module holds is a parameter, frozen (requires_grad=False) or not, as in
    # PyTorch: a frozen one is still saved and loaded; optimisers skip it (it gets no gradient)
    if isinstance(value, Node):
        yield path, value
    elif isinstance(value, Module):
        yield from value.named_parameters(prefix=path + ".")
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            yield from _named(item, f"{path}.{i}")


def _children(value):
    if isinstance(value, Module):
        return [value]
    if isinstance(value, (list, tuple)):
        return [v for v in value if isinstance(v, Module)]
    return []


def _as_data(array, like):
    if isinstance(like, float):
        return float(array)
    return np.array(array, dtype=like.dtype, copy=True).reshape(like.shape)


def _check_state(own_shapes, state):
    if not hasattr(state, "keys") or not hasattr(state, "__getitem__"):
        raise ModelFileError(f"a state is a mapping of parameter names to arrays, got "
                             f"{type(state).__name__}")
    missing = [k for k in own_shapes if k not in state]
    unexpected = [k for k in state if k not in own_shapes]
    if missing or unexpected:
        raise ModelFileError(
            "state does not fit this model: "
            + (f"missing {', '.join(missing)}" if missing else "")
            + ("; " if missing and unexpected else "")
            + (f"unexpected {', '.join(unexpected)}" if unexpected else ""))
    for name, shape in own_shapes.items():
        got = np.shape(state[name])
        if tuple(got) != tuple(shape):
            raise ModelFileError(f"parameter {name}: the model has shape {tuple(shape)}, "
                                 f"the saved state has shape {tuple(got)}")


def save_arrays(path, arrays):
    """np.savez to a temporary file beside ``path``, then rename: never a half-written file."""
    path = os.fspath(path)
    if not path.endswith(".npz"):
        path += ".npz"
    with atomic_file(path) as f:
        np.savez(f, **arrays)
    return path


def load_arrays(path):
    """Read an ``.npz`` written by `save_arrays`; pickles are refused (no code runs)."""
    path = os.fspath(path)
    if not os.path.exists(path) and not path.endswith(".npz") and os.path.exists(path + ".npz"):
        path += ".npz"                  # save("model") wrote model.npz, as np.savez does
    if not os.path.exists(path):
        raise ModelFileError(f"{path}: no such model file")
    try:
        with open(path, "rb") as f:
            magic = f.read(4)
    except OSError as error:
        raise ModelFileError(f"{path}: cannot read ({error.strerror or error})") from None
    if magic != b"PK\x03\x04":                   # an .npz is a zip archive
        raise ModelFileError(f"{path}: not a chainrule model file (not an .npz archive)")
    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except MemoryError:                 # a header declaring a vast array
        raise ModelFileError(f"{path}: declares arrays too large to load (not a chainrule "
                             f"model file, or a damaged one)") from None
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as error:
        raise ModelFileError(f"{path}: not a chainrule model file, or a truncated one "
                             f"({error})") from None
