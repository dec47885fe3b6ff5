"""nn.compare (autograd vs δ vs central differences) and the `chainrule check` command."""
import importlib.util

import numpy as np
import pytest

import demos.cli
import nn
import nn.compare
from nn.compare import compare_gradients

ROWS = ["W(1)", "b(1)", "W(2)", "b(2)"]
COLUMNS = ["max|autograd−δ|", "rel(autograd,δ)", "rel(autograd,numeric)", "rel(δ,numeric)"]


def document_network(engine="tensor", seed=0):
    """A 4-5-3 sigmoid network (three layers, as the document's) with a batch of 8 rows and
    targets in [0, 1)."""
    make = nn.MLP if engine == "tensor" else nn.ValueMLP
    model = make(4, [5, 3], "sigmoid", "sigmoid", seed=seed)
    rng = np.random.default_rng(seed)
    return model, rng.standard_normal((8, 4)), rng.uniform(0, 1, (8, 3))


def table_rows(table):
    """{row name: [the numbers in its four columns]}."""
    rows = {}
    for line in table.splitlines():
        fields = line.split()
        if fields and fields[0] in ROWS + ["W(3)", "b(3)"]:
            rows[fields[0]] = [float(f) for f in fields[2:6]]
    return rows


# -- compare_gradients ---------------------------------------------------------------------------

def test_default_network_table_lists_every_parameter_and_agrees():
    model, X, y = document_network()
    c = compare_gradients(model, X, y)
    table = c.table()
    for column in COLUMNS:
        assert column in table
    rows = table_rows(table)
    assert list(rows) == ROWS
    for name, (max_abs, rel_delta, rel_numeric, rel_delta_numeric) in rows.items():
        assert max_abs <= 1e-15 and rel_delta <= 1e-12, name
        assert rel_numeric <= 1e-6 and rel_delta_numeric <= 1e-6, name
    assert "4-5-3" in table and "cost document" in table and "batch n = 8" in table
    assert "verdict: PASS" in table and "1e-12" in table and "1e-6" in table
    assert c.passed() and c.warnings == []
    assert [p.name for p in c.parameters] == ROWS
    assert [p.shape for p in c.parameters] == [(4, 5), (5,), (5, 3), (3,)]
    assert abs(c.cost_autograd - c.cost_delta) <= 1e-15


def test_table_numbers_are_the_comparison_numbers():
    model, X, y = document_network()
    c = compare_gradients(model, X, y)
    rows = table_rows(c.table())
    for p in c.parameters:
        expected = [p.max_abs_delta, p.rel_delta, p.rel_numeric, p.rel_delta_numeric]
        np.testing.assert_allclose(rows[p.name], expected, rtol=1e-2, atol=1e-300)


def test_gradients_match_the_delta_reference_directly():
    model, X, y = document_network()
    c = compare_gradients(model, X, y, l2=0.3)
    r = nn.delta.backprop([L.W.data for L in model.layers], [L.b.data for L in model.layers],
                          X, y, "sigmoid", l2=0.3)
    for l, layer in enumerate(c.layers, start=1):
        np.testing.assert_array_equal(layer.W.delta, r.grad_W_at(l))
        np.testing.assert_allclose(layer.W.autograd, r.grad_W_at(l), rtol=1e-12, atol=1e-17)
        np.testing.assert_allclose(layer.W.numeric.reshape(layer.W.shape), r.grad_W_at(l),
                                   rtol=1e-5, atol=1e-9)


def test_value_engine_agrees_with_tensor_engine():
    tensor_model, X, y = document_network("tensor")
    value_model, _, _ = document_network("value")
    value_model.load_state_dict(tensor_model.state_dict())
    ct = compare_gradients(tensor_model, X, y, numeric=False)
    cv = compare_gradients(value_model, X, y, numeric=False)
    assert cv.engine == "value" and ct.engine == "tensor"
    for pt, pv in zip(ct.parameters, cv.parameters):
        np.testing.assert_allclose(pv.autograd, pt.autograd, rtol=1e-12, atol=1e-18)
    assert cv.passed() and "—" in cv.table() and "not run" in cv.table()


@pytest.mark.parametrize("engine", ["tensor", "value"])
def test_numeric_by_the_models_own_forward_pass_leaves_the_model_unchanged(engine):
    model, X, y = document_network(engine)
    before = model.state_dict()
    c = compare_gradients(model, X, y, cost="mse", l2=0.1, l2_convention="sklearn",
                          numeric_forward="autograd")
    assert c.passed(), c.table()
    assert "no_grad" in c.table()
    after = model.state_dict()
    for name in before:
        np.testing.assert_array_equal(before[name], after[name])


def test_max_entries_samples_each_big_array():
    model = nn.MLP(6, [10, 4], "tanh", "identity", seed=1)
    rng = np.random.default_rng(1)
    X, y = rng.standard_normal((5, 6)), rng.integers(0, 4, 5)
    c = compare_gradients(model, X, y, cost="cross_entropy", max_entries=7, seed=3)
    assert [p.entries.size for p in c.parameters] == [7, 7, 7, 4]
    assert c.passed(), c.table()
    assert "(7 sampled)" in c.table()


def test_relu_kink_is_warned_about_when_z_sits_exactly_at_zero():
    model = nn.MLP(2, [3, 1], "relu", "identity", seed=0)
    X = np.array([[1.0, 2.0], [0.5, -1.0], [-2.0, 1.5]])
    y = np.array([[0.3], [0.1], [-0.2]])
    # Unit 0 of layer 1: z(1)[0, 0] = 1·1 + 2·(−0.5) + 0 = 0 exactly; the other z's stay clear.
    W = model.layers[0].W.data
    W[:, 0] = [1.0, -0.5]
    model.layers[0].b.data[:] = [0.0, 0.3, -0.4]
    z = X @ W + model.layers[0].b.data
    assert z[0, 0] == 0.0 and np.all(np.abs(np.delete(z.ravel(), 0)) > 1e-3)
    c = compare_gradients(model, X, y)
    assert c.layers[0].kinks == [(0, 0, 0.0)]
    assert c.layers[1].kinks == []             # identity output: no kink to warn about
    assert len(c.warnings) == 1 and "layer 1 (relu)" in c.warnings[0]
    assert "kink" in c.warnings[0] and "row 0, unit 0" in c.warnings[0]
    assert "warning: layer 1 (relu)" in c.table()
    # autograd and δ both take relu′(0) = 0, so they still agree to rounding.
    assert all(p.rel_delta <= 1e-12 for p in c.parameters)
    # central differences straddle the kink: never a FAIL for that, at worst INCONCLUSIVE
    assert c.status() in ("PASS", "INCONCLUSIVE")
    if c.status() == "INCONCLUSIVE":
        assert "ReLU kink" in c.verdict() and not c.passed()


def test_disagreement_only_at_a_kink_is_inconclusive_not_fail():
    model = nn.MLP(2, [3, 1], "relu", "identity", seed=0)
    model.layers[0].b.data[:] = 0.0
    c = compare_gradients(model, np.array([[0.0, 0.0], [1.0, 2.0]]), np.array([[1.0], [0.0]]))
    assert c.kinks and not c._numeric_ok(1e-6)          # z = 0 exactly for the zero row
    assert c.status() == "INCONCLUSIVE" and "INCONCLUSIVE" in c.table()


def test_all_zero_gradients_are_called_vacuous():
    model = nn.MLP(1, [1, 1], "relu", "identity", seed=0)
    model.layers[0].W.data[:] = 1.0
    model.layers[0].b.data[:] = -5.0                   # the hidden unit is dead for x = 1
    c = compare_gradients(model, np.array([[1.0]]), np.array([[0.5]]))
    assert c.status() == "PASS"
    assert c.vacuous() == ["W(1)", "b(1)", "W(2)"]
    assert "exactly 0 by every method" in c.verdict()


def test_cross_entropy_needs_two_outputs():
    model = nn.MLP(3, [4, 1], "tanh", "identity", seed=0)
    with pytest.raises(ValueError, match="at least 2 outputs"):
        compare_gradients(model, np.ones((2, 3)), np.array([0, 0]), cost="cross_entropy")
    from nn.delta import backprop
    W, b = [l.W.data for l in model.layers], [l.b.data for l in model.layers]
    with pytest.raises(ValueError, match="at least 2 outputs"):
        backprop(W, b, np.ones((2, 3)), np.array([0, 0]), ["tanh", "identity"],
                 cost="cross_entropy")


def test_no_kink_warning_for_smooth_activations_even_at_zero():
    model = nn.MLP(1, [1, 1], "tanh", "identity", seed=0)
    model.layers[0].W.data[:] = 1.0
    model.layers[0].b.data[:] = 0.0
    c = compare_gradients(model, np.zeros((1, 1)), np.ones((1, 1)))
    assert c.warnings == [] and c.passed()


def test_tiny_gradient_judged_by_the_noise_floor_of_central_differences():
    """∂J/∂b(1) ≈ 2.6e-6 here: central differences are off by ~6e-12 (their rounding noise),
    a relative difference of 1.1e-6 — not evidence of a wrong gradient, and marked (*)."""
    model = nn.MLP(6, [1, 1], "sigmoid", "sigmoid", init="normal", seed=11)
    rng = np.random.default_rng(12)
    X, y = rng.standard_normal((1, 6)), rng.uniform(0, 1, (1, 1))
    c = compare_gradients(model, X, y, l2=0.1)
    b1 = c.layers[0].b
    assert b1.rel_numeric > 1e-6 and b1.max_abs_numeric < c.numeric_floor
    assert b1.below_floor(1e-6, c.numeric_floor) and c.passed()
    assert "(*)" in c.table() and "noise floor" in c.table()


def test_disagreement_fails():
    model, X, y = document_network()
    c = compare_gradients(model, X, y)
    c.layers[1].b.autograd = c.layers[1].b.autograd + 1e-6
    assert not c.passed()
    assert c.passed(tol_delta=1.0, tol_numeric=1.0)
    assert "FAIL" in c.table() and "DISAGREE" in c.table()


def test_nan_never_passes():
    model, X, y = document_network()
    c = compare_gradients(model, X, y, numeric=False)
    c.layers[0].W.autograd = np.full((4, 5), np.nan)
    assert not c.passed()


def test_bad_arguments():
    model, X, y = document_network()
    with pytest.raises(ValueError, match="identity"):
        compare_gradients(model, X, np.zeros(8, dtype=int), cost="cross_entropy")
    with pytest.raises(ValueError, match="n_train"):
        compare_gradients(model, X, y, l2=0.1, l2_convention="nielsen")
    with pytest.raises(TypeError, match="nn.MLP"):
        compare_gradients(object(), X, y)
    with pytest.raises(ValueError, match="numeric_forward"):
        compare_gradients(model, X, y, numeric_forward="torch")
    with pytest.raises(ValueError, match="no rows"):
        compare_gradients(model, X[:0], y[:0])
    with pytest.raises(ValueError, match="eps must be"):
        compare_gradients(model, X, y, eps=0)
    with pytest.raises(ValueError, match="max_entries must be"):
        compare_gradients(model, X, y, max_entries=0)


def test_a_gradient_that_cancels_at_a_minimum_agrees_to_its_rounding():
    """At the least-squares fit ∂J/∂w is a sum of terms that cancel: autograd and δ each give
    ~1e-18 in their own order, a relative difference of ~1e-3 that is rounding, not a bug."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((20, 3))
    y = X @ [1.0, -2.0, 0.5] + 0.3 + 0.1 * rng.standard_normal(20)
    w = np.linalg.lstsq(np.c_[X, np.ones(20)], y, rcond=None)[0]
    model = nn.MLP(3, [1], "identity", "identity")
    model.load_state_dict({"layers.0.W": w[:3, None], "layers.0.b": w[3:]})
    c = compare_gradients(model, X, y[:, None])
    assert c.layers[0].W.rel_delta > 1e-12 and c.status() == "PASS"
    assert "(†)" in c.table()
    c.layers[0].W.autograd = c.layers[0].W.autograd + 1e-12      # beyond rounding: caught
    assert c.status() == "FAIL"


def test_a_kink_crossed_by_the_differences_is_found_even_when_z_is_not_tiny():
    """Unscaled inputs (0..255) move z by 255ε per ±ε on W(1): a z of 1e-4 is crossed."""
    rng = np.random.default_rng(0)
    X, y = 255 * rng.random((4, 3)), rng.random((4, 1))
    model = nn.MLP(3, [2, 1], "relu", "identity")
    state = model.state_dict()
    state["layers.0.b"][0] = 1e-4 - X[0] @ state["layers.0.W"][:, 0]
    model.load_state_dict(state)
    c = compare_gradients(model, X, y)
    assert c.status() == "INCONCLUSIVE" and (1, 0, 0) == c.kinks[0][:3]
    assert any("cross the kink" in w for w in c.warnings)


def test_delta_takes_any_target_rows_cross_entropy_accepts():
    """(softmax·Σt − t)/n: rows not summing to 1 (scaled or multi-hot) agree with autograd."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((5, 3))
    for Y in (0.9 * np.eye(3)[[0, 1, 2, 0, 1]], np.array([[1, 1, 0], [0, 1, 1], [1, 0, 1],
                                                           [1, 1, 0], [0, 1, 1]], float)):
        c = compare_gradients(nn.MLP(3, [4, 3], "tanh", "identity"), X, Y, cost="cross_entropy")
        assert c.status() == "PASS", c.table()


def test_float32_models_are_reported_as_such_and_J_counts_in_the_verdict(monkeypatch):
    rng = np.random.default_rng(0)
    model = nn.MLP(4, [5, 3], "sigmoid", "sigmoid", dtype=np.float32)
    c = compare_gradients(model, rng.random((8, 4)), rng.random((8, 3)),
                          numeric_forward="autograd")
    assert "model in float32, δ in float64" in c.table()
    assert any("below its resolution" in w for w in c.warnings)
    model, X, y = document_network()
    real = nn.compare._autograd_cost
    monkeypatch.setattr(nn.compare, "_autograd_cost", lambda *a: real(*a) + 5.0)
    assert compare_gradients(model, X, y).status() == "FAIL"     # gradients equal, J not


# -- chainrule check -----------------------------------------------------------------------------

@pytest.fixture
def cli(monkeypatch):
    """demos.cli.main, registering only the subcommands whose modules exist so far."""
    present = tuple(name for name in demos.cli.SUBCOMMANDS
                    if importlib.util.find_spec(f"demos.cmd_{name}") is not None)
    assert "check" in present
    monkeypatch.setattr(demos.cli, "SUBCOMMANDS", present)
    return demos.cli.main


def test_check_default_prints_the_table_and_exits_0(cli, capsys):
    assert cli(["check"]) == 0
    out = capsys.readouterr().out
    assert list(table_rows(out)) == ROWS
    assert "4-5-3" in out and "sigmoid" in out and "cost document" in out
    assert "verdict: PASS" in out


def test_check_with_options_exits_0(cli, capsys):
    argv = ["check", "--sizes", "3,7,2", "--activation", "tanh", "--cost", "cross_entropy",
            "--l2", "0.1", "--l2-convention", "nielsen"]
    assert cli(argv) == 0
    out = capsys.readouterr().out
    assert list(table_rows(out)) == ROWS
    assert "3-7-2" in out and "f = tanh, identity" in out and "cross_entropy" in out
    assert "λ = 0.1 (nielsen)" in out


@pytest.mark.parametrize("argv", [
    ["--engine", "value", "--sizes", "2,3,3,1", "--activation", "relu", "--seed", "2"],
    ["--sizes", "2,16,16,1", "--activation", "relu", "--no-numeric", "--batch", "20"],
    ["--cost", "mse", "--l2", "0.01", "--l2-convention", "sklearn", "--batch", "1"],
])
def test_check_variants_exit_0(cli, capsys, argv):
    assert cli(["check"] + argv) == 0, capsys.readouterr().out


def test_check_exits_1_when_the_witnesses_disagree(cli, capsys, monkeypatch):
    real = nn.compare.compare_gradients

    def broken(*args, **kwargs):
        c = real(*args, **kwargs)
        c.layers[0].W.autograd = 2 * c.layers[0].W.autograd
        return c

    monkeypatch.setattr(nn.compare, "compare_gradients", broken)
    assert cli(["check"]) == 1
    assert "verdict: FAIL" in capsys.readouterr().out


@pytest.mark.parametrize("sizes", ["4,five,3", "4", "4,0,3", "", "4,,3"])
def test_check_bad_sizes_exits_2_with_one_line(cli, capsys, sizes):
    assert cli(["check", "--sizes", sizes]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("chainrule check: error: --sizes")


def test_check_cross_entropy_needs_identity_output(cli, capsys):
    assert cli(["check", "--cost", "cross_entropy", "--output-activation", "sigmoid"]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    assert cli(["check", "--cost", "cross_entropy", "--sizes", "3,4,1"]) == 2
    assert "at least 2 outputs" in capsys.readouterr().err


def test_check_help_explains_what_is_compared(cli, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli(["check", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "autograd" in out and "δ" in out and "central differences" in out


def test_dead_units_are_named_entry_by_entry(cli, capsys):
    status = cli(["check", "--activation", "relu", "--batch", "1", "--sizes", "4,6,3"])
    out = capsys.readouterr().out
    assert status == 0 and "entries exactly 0 by every method (dead units?)" in out
    assert "b(1) 1 of 6" in out


def test_sizes_beyond_memory_are_a_one_line_error(cli, capsys):
    status = cli(["check", "--sizes", "1000000,1000000"])
    err = capsys.readouterr().err
    assert status == 2 and "not enough memory" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("argv", [["--sizes", "4,99999999999999999999"],
                                  ["--batch", "99999999999999999999"],
                                  ["--sizes", "4000000000,4000000000", "--engine", "value"]])
def test_sizes_beyond_numpys_index_range_are_a_one_line_error(cli, capsys, argv):
    # numpy raises ValueError ('Maximum allowed dimension exceeded'), not MemoryError, for these
    status = cli(["check", *argv])
    err = capsys.readouterr().err
    assert status == 2 and "not enough memory" in err and len(err.strip().splitlines()) == 1


def test_the_verdict_names_the_witness_that_disagrees_with_central_differences(monkeypatch):
    model, X, y = document_network()
    c = compare_gradients(model, X, y)
    c.layers[1].b.delta = c.layers[1].b.delta * 1.01      # δ wrong, autograd right
    verdict = c.verdict()
    assert "δ DISAGREES with central differences" in verdict and "autograd agrees" in verdict
    c = compare_gradients(model, X, y)
    c.layers[1].b.autograd = c.layers[1].b.autograd * 1.01
    verdict = c.verdict()
    assert "autograd DISAGREES with central differences" in verdict and "δ agrees" in verdict
    c.layers[1].b.delta = c.layers[1].b.delta * 1.01
    assert "both DISAGREE with central differences" in c.verdict()


# -- float32 models: judged at their own precision -----------------------------------------------

def float32_network(seed=0):
    model = nn.MLP(4, [5, 3], "sigmoid", "sigmoid", dtype=np.float32, seed=seed)
    rng = np.random.default_rng(seed)
    return model, rng.standard_normal((8, 4)), rng.uniform(0, 1, (8, 3))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_float32_model_with_right_gradients_passes_at_its_precision(seed):
    """autograd rounds in float32 (~1e-7 from the float64 δ): that was a FAIL against 1e-12."""
    model, X, y = float32_network(seed)
    c = compare_gradients(model, X, y)
    assert c.status() == "PASS", c.table()
    assert c.model_rounding == 1.2e-5                 # 100 ε_mach of float32
    assert "autograd and δ agree within 1.2e-5" in c.verdict()
    assert ("δ agrees with central differences within 1e-6, autograd (in float32) agrees "
            "within 1.3e-5") in c.verdict()
    assert "(†)" not in c.table()                # not passed as 'a gradient that cancels'
    assert any("float32" in w and "1.2e-5" in w for w in c.warnings)


def test_a_float32_model_still_fails_with_a_wrong_gradient():
    model, X, y = float32_network()
    c = compare_gradients(model, X, y)
    c.layers[0].W.autograd = c.layers[0].W.autograd * 1.001     # 0.1 % off: far above float32
    assert c.status() == "FAIL" and "autograd and δ DISAGREE" in c.verdict()
    assert "autograd (in float32) DISAGREES within 1.3e-5" in c.verdict()
    c = compare_gradients(model, X, y)
    c.cost_autograd *= 1.001
    assert c.status() == "FAIL"


def test_float32_central_differences_through_the_model_are_not_a_fail():
    """In float32, ε = 1e-6 is below the forward pass's resolution: the noise floor is the
    float32 one, so the rows pass only by it, marked (*), never as a wrong gradient."""
    model, X, y = float32_network()
    c = compare_gradients(model, X, y, numeric_forward="autograd")
    assert c.numeric_floor > 0.1
    assert c.status() == "PASS", c.table()
    assert "(*)" in c.table() and "they resolve none of these gradients" in c.verdict()
    assert compare_gradients(model, X, y).numeric_floor < 1e-8     # J in float64: ε64's
