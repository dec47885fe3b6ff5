"""Module.state_dict / load_state_dict on nested models: a child with its own state_dict (a
ValueMLP's one array per layer) keeps its own keys under its name, as in PyTorch, and loading
stays all or nothing across every child."""
import numpy as np
import pytest

import nn
from autograd import Tensor
from nn.module import ModelFileError, Module, load_arrays, save_arrays


class Holder(Module):
    """A network as a child beside a Tensor layer of the holder's own."""

    def __init__(self, net, seed=0):
        self.net = net
        self.head = nn.Linear(2, 1, seed=seed)


class Pair(Module):
    """Two children: a bad entry in one must not change the other."""

    def __init__(self, seed=0):
        self.value = nn.ValueMLP(3, [4, 2], seed=seed)
        self.tensor = nn.MLP(3, [4, 2], seed=seed + 1)


class Outer(Module):
    """Two levels: a ValueMLP inside a plain Module inside this one."""

    def __init__(self, seed=0):
        self.inner = Holder(nn.ValueMLP(3, [4, 2], seed=seed), seed=seed)
        self.scale = nn.Linear(1, 1, seed=seed + 1)


class Ensemble(Module):
    """A list of networks: each its own prefix, nets.0 and nets.1."""

    def __init__(self, seed=0):
        self.nets = [nn.ValueMLP(3, [2], seed=seed), nn.ValueMLP(3, [2], seed=seed + 1)]


NESTED = {
    "value child": (lambda seed: Holder(nn.ValueMLP(3, [4, 2], seed=seed), seed),
                    ["net.layers.0.W", "net.layers.0.b", "net.layers.1.W", "net.layers.1.b",
                     "head.W", "head.b"]),
    "tensor child": (lambda seed: Holder(nn.MLP(3, [4, 2], seed=seed), seed),
                     ["net.layers.0.W", "net.layers.0.b", "net.layers.1.W", "net.layers.1.b",
                      "head.W", "head.b"]),
    "two levels": (Outer,
                   ["inner.net.layers.0.W", "inner.net.layers.0.b", "inner.net.layers.1.W",
                    "inner.net.layers.1.b", "inner.head.W", "inner.head.b", "scale.W",
                    "scale.b"]),
    "list of children": (Ensemble, ["nets.0.layers.0.W", "nets.0.layers.0.b",
                                    "nets.1.layers.0.W", "nets.1.layers.0.b"]),
}


def _snapshot(model):
    return [np.array(p.data, copy=True) for p in model.parameters()]


def _assert_unchanged(model, before):
    after = _snapshot(model)
    assert len(after) == len(before)
    for a, b in zip(after, before):
        np.testing.assert_array_equal(a, b)


def _assert_same_state(a, b):
    assert list(a) == list(b)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


@pytest.mark.parametrize("kind", NESTED)
def test_a_nested_network_saves_its_own_arrays_and_round_trips(kind, tmp_path):
    make, keys = NESTED[kind]
    model, other = make(1), make(2)
    state = model.state_dict()
    assert list(state) == keys                  # net.layers.0.W, not net.layers.0.W.0.0
    assert state[keys[0]].shape[0] == 3
    other.load_state_dict(state)
    _assert_same_state(other.state_dict(), state)
    _assert_unchanged(other, _snapshot(model))          # every parameter, number by number

    # through the file functions: Module.save/load and save_arrays/load_arrays
    model.save(tmp_path / "nested")
    _assert_same_state(make(3).load(tmp_path / "nested.npz").state_dict(), state)
    path = save_arrays(tmp_path / "arrays.npz", state)
    assert sorted(load_arrays(path)) == sorted(keys)
    fresh = make(4).load(path)
    _assert_same_state(fresh.state_dict(), state)


def test_top_level_networks_keep_their_keys_and_files_written_before_still_load(tmp_path):
    for make in (lambda s: nn.ValueMLP(2, [3, 1], seed=s), lambda s: nn.MLP(2, [3, 1], seed=s)):
        model = make(1)
        assert list(model.state_dict()) == ["layers.0.W", "layers.0.b", "layers.1.W",
                                            "layers.1.b"]
        # the file as the code before nesting wrote it: np.savez of those four arrays
        np.savez(tmp_path / "old.npz", **model.state_dict())
        _assert_same_state(make(2).load(tmp_path / "old.npz").state_dict(), model.state_dict())


def test_a_value_layer_held_by_a_module_keeps_its_per_number_names():
    # Layer names its parameters itself (W.i.j, as a Tensor W's entries) and has no state_dict
    # of its own: the holder's state follows its named_parameters, as before
    class Hold(Module):
        def __init__(self):
            self.layer = nn.Layer(2, 1, W=[[1.0], [2.0]], b=[3.0])

    model = Hold()
    assert model.state_dict() == {"layer.W.0.0": 1.0, "layer.W.1.0": 2.0, "layer.b.0": 3.0}
    model.load_state_dict({"layer.W.0.0": 5.0, "layer.W.1.0": 6.0, "layer.b.0": 7.0})
    assert [p.data for p in model.parameters()] == [5.0, 6.0, 7.0]


def test_a_shared_nested_network_is_saved_once_under_its_first_name():
    class Tied(Module):
        def __init__(self):
            self.a = nn.ValueMLP(2, [2], seed=0)
            self.b = self.a

    tied = Tied()
    assert list(tied.state_dict()) == ["a.layers.0.W", "a.layers.0.b"]
    tied.load_state_dict({"a.layers.0.W": np.eye(2), "a.layers.0.b": np.ones(2)})
    np.testing.assert_array_equal(tied.b.layers[0].W_array(), np.eye(2))


def _bad(state, key, value=None, drop=False):
    state = dict(state)
    if drop:
        del state[key]
    else:
        state[key] = value
    return state


@pytest.mark.parametrize("change, message", [
    # the bad entry in the first child, the last, or the holder's own: none may be written
    (lambda s: _bad(s, "value.layers.1.W", np.zeros((2, 4))),
     r"value\.layers\.1\.W: the model has shape \(4, 2\), the saved state has shape \(2, 4\)"),
    (lambda s: _bad(s, "tensor.layers.1.b", np.zeros(3)), r"tensor\.layers\.1\.b.*shape \(2,\)"),
    (lambda s: _bad(s, "value.layers.0.W", np.full((3, 4), "abc")),
     r"does not fit.*value\.layers\.0\.W.*abc"),
    (lambda s: _bad(s, "tensor.layers.0.W", np.full((3, 4), "abc")),
     r"does not fit.*tensor\.layers\.0\.W.*abc"),
    (lambda s: _bad(s, "value.layers.2.W", np.zeros((2, 2))), r"unexpected value\.layers\.2\.W"),
    (lambda s: _bad(s, "value.layers.0.W.0.0", 1.0), r"unexpected value\.layers\.0\.W\.0\.0"),
    (lambda s: _bad(s, "bias", np.zeros(2)), r"unexpected bias"),
    (lambda s: _bad(s, "value.layers.1.b", drop=True), r"missing value\.layers\.1\.b"),
    (lambda s: _bad(s, "tensor.layers.0.W", drop=True), r"missing tensor\.layers\.0\.W"),
    (lambda s: {k: v for k, v in s.items() if not k.startswith("value.")},
     r"missing value\.layers\.0\.W, value\.layers\.0\.b"),
])
def test_a_bad_entry_anywhere_changes_nothing_anywhere(change, message):
    model = Pair(seed=0)
    good = {k: v + 1.0 for k, v in Pair(seed=5).state_dict().items()}   # differs everywhere
    before = _snapshot(model)
    with pytest.raises(nn.ModelFileError, match=message):
        model.load_state_dict(change(good))
    _assert_unchanged(model, before)
    model.load_state_dict(good)                 # the good state itself loads
    _assert_same_state(model.state_dict(), good)


def test_a_bad_entry_two_levels_down_changes_nothing():
    model = Outer(seed=0)
    good = {k: v - 2.0 for k, v in Outer(seed=7).state_dict().items()}
    before = _snapshot(model)
    for bad, message in ((_bad(good, "inner.net.layers.1.W", np.zeros(8)),
                          r"inner\.net\.layers\.1\.W: the model has shape \(4, 2\)"),
                         (_bad(good, "inner.net.extra", 0.0), r"unexpected inner\.net\.extra"),
                         (_bad(good, "scale.b", drop=True), r"missing scale\.b")):
        with pytest.raises(nn.ModelFileError, match=message):
            model.load_state_dict(bad)
        _assert_unchanged(model, before)


def test_a_bad_model_file_for_a_nested_model_changes_nothing(tmp_path):
    model = Holder(nn.ValueMLP(3, [4, 2], seed=0))
    state = Holder(nn.ValueMLP(3, [5, 2], seed=1)).state_dict()      # another architecture
    before = _snapshot(model)
    with pytest.raises(nn.ModelFileError, match=r"net\.layers\.0\.W.*\(3, 4\).*\(3, 5\)"):
        model.load(save_arrays(tmp_path / "other.npz", state))
    _assert_unchanged(model, before)


class OwnState(Module):
    """A child with its own state_dict/load_state_dict and no check phase of its own: loading
    writes its parameter, then fails on a bad key (halfway, as a careless loader may)."""

    def __init__(self):
        self.w = Tensor(np.zeros((1, 2)), requires_grad=True)

    def state_dict(self):
        return {"weights": self.w.data.copy()}

    def load_state_dict(self, state):
        self.w.data = np.array(state["weights"], dtype=float).reshape(1, 2)
        if "bad" in state:
            raise KeyError("bad")


def test_a_child_with_only_its_own_load_state_dict_is_put_back_when_loading_fails():
    class Mixed(Module):
        def __init__(self):
            self.own = OwnState()
            self.net = nn.ValueMLP(2, [2], seed=0)

    model = Mixed()
    assert list(model.state_dict()) == ["own.weights", "net.layers.0.W", "net.layers.0.b"]
    good = {"own.weights": np.ones((1, 2)), "net.layers.0.W": np.eye(2),
            "net.layers.0.b": np.ones(2)}
    before = _snapshot(model)
    # its own loader fails after writing: put back, and the other child never written
    with pytest.raises(nn.ModelFileError, match=r"in own: 'bad'"):
        model.load_state_dict(dict(good, **{"own.bad": 0}))
    _assert_unchanged(model, before)
    # another child's entry is bad: found before the own loader runs
    with pytest.raises(nn.ModelFileError, match=r"net\.layers\.0\.b"):
        model.load_state_dict(_bad(good, "net.layers.0.b", np.ones(3)))
    _assert_unchanged(model, before)
    model.load_state_dict(good)
    _assert_same_state(model.state_dict(), good)


def test_a_checkpoint_of_a_value_network_loads_into_a_holder_under_its_name(tmp_path):
    # fit trains a network on its own; its checkpoint (the network's keys) is the nested
    # child's part of the holder's state
    X, y = np.random.default_rng(0).random((8, 3)), np.arange(8) % 2
    net = nn.ValueMLP(3, [4, 2], seed=0)
    nn.fit(net, X, y, cost="cross_entropy", epochs=2, progress=False,
           checkpoint=tmp_path / "ck.npz")
    saved = load_arrays(tmp_path / "ck.npz")
    assert sorted(saved) == ["layers.0.W", "layers.0.b", "layers.1.W", "layers.1.b"]
    holder = Holder(nn.ValueMLP(3, [4, 2], seed=9))
    holder.load_state_dict({**{f"net.{k}": v for k, v in saved.items()},
                            "head.W": holder.head.W.data, "head.b": holder.head.b.data})
    _assert_same_state({k[4:]: v for k, v in holder.state_dict().items()
                        if k.startswith("net.")}, net.state_dict())


def test_a_holder_file_written_before_nesting_still_loads(tmp_path):
    # before, a nested ValueMLP was saved as its parameters, one key per number under the
    # names of named_parameters (net.layers.0.W.i.j, net.layers.0.b.j)
    model = Holder(nn.ValueMLP(3, [4, 2], seed=1), seed=1)
    np.savez(tmp_path / "old.npz",
             **{name: np.array(p.data) for name, p in model.named_parameters()})
    fresh = Holder(nn.ValueMLP(3, [4, 2], seed=2), seed=2)
    _assert_same_state(fresh.load(tmp_path / "old.npz").state_dict(), model.state_dict())
    # a bad number in such a file is named, and changes nothing
    old = load_arrays(tmp_path / "old.npz")
    old["net.layers.1.W.3.1"] = np.array("x")
    before = _snapshot(fresh)
    with pytest.raises(ModelFileError, match=r"net\.layers\.1\.W"):
        fresh.load_state_dict(old)
    _assert_unchanged(fresh, before)


@pytest.mark.parametrize("change, kind", [
    (lambda W: W.astype(str), "<U"), (lambda W: W.astype(complex), "complex128"),
    (lambda W: W.astype("datetime64[s]"), "datetime64")])
def test_a_model_file_of_text_complex_or_dates_is_refused_not_converted(tmp_path, change, kind):
    """'0.12' as text would convert to a float, a complex weight would lose its imaginary
    part: neither is a weight a chainrule model saved, so loading names the entry and stops."""
    model = nn.MLP(3, [2], seed=0)
    before = [p.data.copy() for p in model.parameters()]
    state = model.state_dict()
    state["layers.0.W"] = change(state["layers.0.W"])
    np.savez(tmp_path / "odd.npz", **state)
    with pytest.raises(ModelFileError, match=rf"odd\.npz: layers\.0\.W holds {kind}"):
        model.load(tmp_path / "odd.npz")
    assert all(np.array_equal(p.data, b) for p, b in zip(model.parameters(), before))


def test_another_models_parameters_load_as_a_state():
    """``load_state_dict(dict(other.named_parameters()))`` copies the numbers, as PyTorch's:
    parameters requiring a gradient were refused with numpy's 'would leave the graph' error."""
    source = nn.MLP(3, [4, 2], seed=1)
    X = np.random.default_rng(0).random((5, 3))
    for target in (nn.MLP(3, [4, 2], seed=2), nn.ValueMLP(3, [4, 2], seed=2)):
        target.load_state_dict(dict(source.named_parameters()))
        out = target(X).data if isinstance(target, nn.MLP) else \
            np.array([[v.data for v in target(x)] for x in X])
        np.testing.assert_allclose(out, source(X).data, rtol=1e-12)
    target = nn.MLP(3, [4, 2], seed=2)
    target.load_state_dict(dict(source.named_parameters()))
    target.layers[0].W.data[0, 0] = 99.0                   # a copy, not the source's array
    assert source.layers[0].W.data[0, 0] != 99.0
