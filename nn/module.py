"""`Module`: parameters, modes, and saving — the base of every network in `nn`.

Parameters are found by looking at a module's attributes in the order they were set: a node
with ``requires_grad`` is a parameter, a `Module` (or a list of them) is a child, a list of
nodes is a list of parameters. Names are dotted paths: ``layers.0.W``. `state_dict` uses the
same names, except under a child that keeps its own state (as `nn.ValueMLP`, one array per
layer): that child's own keys, its name as prefix (``net.layers.0.W``), as PyTorch does.
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
        """{name: numpy array} — a copy of every parameter's data, under the names of
        `named_parameters`. A child that keeps its own state (it overrides ``state_dict``,
        ``load_state_dict`` or ``_prepare_load``, as `nn.ValueMLP` saves one W and b array per
        layer) contributes its own ``state_dict`` with its dotted name as prefix, as in PyTorch:
        ``net.layers.0.W``, not one key per number."""
        state = {}
        for path, item in self._state_entries():
            if isinstance(item, Module):
                state.update((f"{path}.{k}", v) for k, v in item.state_dict().items())
            else:
                state[path] = np.array(item.data, copy=True)
        return state

    def load_state_dict(self, state):
        """Copy arrays into the parameters; names and shapes must match exactly (a child that
        keeps its own state gets the entries under its prefix). All or nothing: every key of
        every child is checked and every array converted before any parameter changes, so a bad
        state leaves the whole model as it was."""
        self._prepare_load(state)()

    def _prepare_load(self, state, prefix=""):
        """The check phase of `load_state_dict`: check ``state`` against this module and
        convert every array, raising ModelFileError (naming the key, with ``prefix``, this
        module's name inside the one being loaded) without changing anything; return the apply
        phase, a function of no arguments that writes the converted arrays."""
        _check_mapping(state)
        params, children = {}, {}
        for path, item in self._state_entries():
            (children if isinstance(item, Module) else params)[path] = item
        # each key goes to the child whose prefix it carries, or is one of our own parameters
        by_child, own = {path: {} for path in children}, {}
        for key in state:
            owner = isinstance(key, str) and next(
                (c for c in children if key.startswith(c + ".")), None)
            if owner:
                by_child[owner][key[len(owner) + 1:]] = state[key]
            else:
                own[key] = state[key]
        _check_state({k: np.shape(p.data) for k, p in params.items()}, own, prefix)
        new = {}
        for name, p in params.items():
            try:
                new[name] = _as_data(own[name], p.data)
            except (TypeError, ValueError) as error:
                raise ModelFileError(f"state does not fit this model: parameter "
                                     f"{prefix}{name}: {error}") from None
        applies, foreign = [], []
        for path, child in children.items():
            if _overrides(child, "_prepare_load"):
                applies.append(child._prepare_load(by_child[path], f"{prefix}{path}."))
            else:           # its own load_state_dict: no check phase, so undone if need be
                foreign.append((f"{prefix}{path}", child, by_child[path]))

        def apply():
            _load_or_restore(foreign)       # the only step that can fail: first
            for name, p in params.items():
                p.data = new[name]
            for child_apply in applies:
                child_apply()
        return apply

    def _state_entries(self, prefix=""):
        """(dotted name, item) for what `state_dict` saves, in definition order: a parameter
        node, or a child that keeps its own state (see `state_dict`). A node or child reached
        twice is listed once, under its first name, as in `named_parameters`."""
        if _overrides(self, "named_parameters"):     # its own names (a Value Layer's W.i.j)
            yield from self.named_parameters(prefix)
            return
        seen = set()
        for name, value in vars(self).items():
            for path, item in _entries(value, f"{prefix}{name}"):
                if id(item) not in seen:
                    seen.add(id(item))
                    if isinstance(item, Module):     # its parameters are saved with it
                        seen.update(id(p) for p in item.parameters())
                    yield path, item

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


def _entries(value, path):
    # as _named, but a child that keeps its own state is one entry, not walked into
    if isinstance(value, Node):
        yield path, value
    elif isinstance(value, Module):
        if _keeps_own_state(value):
            yield path, value
        else:
            yield from value._state_entries(prefix=path + ".")
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            yield from _entries(item, f"{path}.{i}")


def _overrides(module, method):
    return getattr(type(module), method) is not getattr(Module, method)


def _keeps_own_state(module):
    return any(_overrides(module, m) for m in ("state_dict", "load_state_dict", "_prepare_load"))


def _load_or_restore(loads):
    """Call each child's own load_state_dict on its part of the state; if one fails, put back
    every one of them (the failing one too: it may have stopped halfway) from a state_dict
    taken before, and raise ModelFileError naming the child."""
    if not loads:
        return
    saved = [child.state_dict() for _, child, _ in loads]
    tried = []
    try:
        for path, child, state in loads:
            tried.append(child)
            try:
                child.load_state_dict(state)
            except Exception as error:
                raise ModelFileError(f"state does not fit this model: in {path}: "
                                     f"{error}") from error
    except BaseException:
        for child, before in zip(tried, saved):
            child.load_state_dict(before)
        raise


def _children(value):
    if isinstance(value, Module):
        return [value]
    if isinstance(value, (list, tuple)):
        return [v for v in value if isinstance(v, Module)]
    return []


def _as_data(array, like):
    if isinstance(array, Node):     # another model's parameter (named_parameters), as PyTorch
        array = array.data
    if isinstance(like, float):
        return float(array)
    return np.array(array, dtype=like.dtype, copy=True).reshape(like.shape)


def _check_mapping(state):
    if not hasattr(state, "keys") or not hasattr(state, "__getitem__"):
        raise ModelFileError(f"a state is a mapping of parameter names to arrays, got "
                             f"{type(state).__name__}")


def _check_state(own_shapes, state, prefix=""):
    """Names and shapes of ``state`` against ``own_shapes``; errors name each key with
    ``prefix`` (the module's name inside the model being loaded)."""
    _check_mapping(state)
    missing = [f"{prefix}{k}" for k in own_shapes if k not in state]
    unexpected = [f"{prefix}{k}" for k in state if k not in own_shapes]
    if missing or unexpected:
        raise ModelFileError(
            "state does not fit this model: "
            + (f"missing {', '.join(missing)}" if missing else "")
            + ("; " if missing and unexpected else "")
            + (f"unexpected {', '.join(unexpected)}" if unexpected else ""))
    for name, shape in own_shapes.items():
        got = np.shape(state[name])
        if tuple(got) != tuple(shape):
            raise ModelFileError(f"parameter {prefix}{name}: the model has shape {tuple(shape)}, "
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
            arrays = {k: data[k] for k in data.files}
    except MemoryError:                 # a header declaring a vast array
        raise ModelFileError(f"{path}: declares arrays too large to load (not a chainrule "
                             f"model file, or a damaged one)") from None
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as error:
        raise ModelFileError(f"{path}: not a chainrule model file, or a truncated one "
                             f"({error})") from None
    # weights are real numbers: text ('0.12' would convert), raw members, complex numbers
    # (whose imaginary part a conversion drops) or dates are no model's
    for key, a in arrays.items():
        if not isinstance(a, np.ndarray) or a.dtype.kind not in "fiu":
            kind = a.dtype if isinstance(a, np.ndarray) else "raw bytes"
            raise ModelFileError(f"{path}: {key} holds {kind}, not real numbers (not a "
                                 f"chainrule model file)")
    return arrays
