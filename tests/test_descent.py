"""`chainrule descent`: the three descents from one initial network, a PNG and a table."""
import numpy as np

from demos import cmd_descent
from demos.cli import main

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_descent_writes_png_and_table_of_three(tmp_path, capsys):
    status = main(["descent", "--epochs", "1", "--hidden", "10", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert status == 0
    png = tmp_path / "descent.png"
    assert png.read_bytes()[:8] == PNG_MAGIC and png.stat().st_size > 1000
    rows = [line.split() for line in out.splitlines()
            if line.split()[:1] in (["batch"], ["mini-batch"], ["stochastic"])]
    assert [r[0] for r in rows] == ["batch", "mini-batch", "stochastic"]
    assert [r[1] for r in rows] == ["1347", "32", "1"]


def test_all_three_descents_reduce_the_loss_from_the_same_start():
    X, y, k, _ = cmd_descent.load_data("moons", seed=0)
    Y = y.reshape(-1, 1).astype(np.float64)
    import nn
    sizes = [2, 8, 1]
    init = nn.MLP(2, [8, 1], activation="sigmoid", output_activation="sigmoid",
                  seed=0, dtype=np.float64).state_dict()
    runs = [cmd_descent.train_one(mode, lr, batch, init, sizes, X, Y, epochs=5, seed=0)
            for mode, lr, batch in (("batch", 5.0, 200), ("mini-batch", 2.0, 20),
                                    ("stochastic", 0.5, 1))]
    starts = {r["update_loss"][0] for r in runs}
    assert len(starts) == 1                             # the same initial network
    for r in runs:
        assert r["update_loss"][-1] < r["update_loss"][0], r["mode"]
        assert len(r["epoch_loss"]) == 6                # J(0) and after each of 5 epochs
    assert [r["update_index"][-1] for r in runs] == [5, 50, 1000]


def test_mini_batch_epochs_end_on_a_whole_batch():
    # 1347 digits in batches of 32 would end every epoch on a 3-row update at the full α,
    # which threw J up at each epoch's end; the short batch is left out (drop_last)
    X, y, k, _ = cmd_descent.load_data("digits", seed=0)
    Y = np.eye(k)[y]
    import nn
    sizes = [X.shape[1], 30, k]
    init = nn.MLP(sizes[0], sizes[1:], activation="sigmoid", output_activation="sigmoid",
                  seed=0, dtype=np.float64).state_dict()
    run = cmd_descent.train_one("mini-batch", 5.0, 32, init, sizes, X, Y, epochs=5, seed=0)
    assert run["updates_per_epoch"] == len(X) // 32 == 42
    assert np.all(np.diff(run["epoch_loss"]) < 0)       # J falls from each epoch to the next


def test_updates_to_reach_the_target_are_exact_under_stochastic_descent():
    """J jumps up and down under stochastic descent: sampling every k-th update missed the
    first crossing by up to 80 updates. J is evaluated after every update until it reaches."""
    X, y, k, _ = cmd_descent.load_data("moons", seed=3)
    Y = y.reshape(-1, 1).astype(np.float64)
    import nn
    sizes = [2, 8, 1]
    init = nn.MLP(2, [8, 1], activation="sigmoid", output_activation="sigmoid",
                  seed=3, dtype=np.float64).state_dict()
    every_update = cmd_descent.train_one("stochastic", 0.5, 1, init, sizes, X, Y, epochs=3,
                                         seed=3, points_per_epoch=10 ** 9)
    target = float(np.quantile(every_update["update_loss"], 0.3))
    truth = int(every_update["update_index"][np.flatnonzero(
        every_update["update_loss"] <= target)[0]])
    sampled = cmd_descent.train_one("stochastic", 0.5, 1, init, sizes, X, Y, epochs=3,
                                    seed=3, target=target)
    assert sampled["record_every"] > 1
    assert cmd_descent.reached(sampled, target)[1] == truth


def test_the_table_says_j_was_sampled_only_for_runs_that_reached_the_target():
    """A run that never reaches J ≤ target has J after every update: no footnote for it."""
    X, y, k, _ = cmd_descent.load_data("moons", seed=3)
    Y = y.reshape(-1, 1).astype(np.float64)
    import nn
    init = nn.MLP(2, [8, 1], activation="sigmoid", output_activation="sigmoid",
                  seed=3, dtype=np.float64).state_dict()
    run = lambda target: cmd_descent.train_one("stochastic", 0.5, 1, init, [2, 8, 1], X, Y,
                                               epochs=2, seed=3, target=target)
    easy, never = run(10.0), run(-1.0)
    assert cmd_descent.reached(easy, 10.0) and cmd_descent.reached(never, -1.0) is None
    assert easy["record_every"] > 1 and never["record_every"] > 1
    assert "J evaluated after every update until" in cmd_descent.format_table([easy], 10.0)
    table = cmd_descent.format_table([never], -1.0)
    assert "J evaluated" not in table and "—" in table
    assert len(never["update_loss"]) == 2 * len(X) + 1      # J after every update, and J(0)


def test_one_epoch_is_said_in_the_singular(tmp_path, capsys):
    assert main(["descent", "--data", "moons", "--epochs", "1", "--hidden", "4",
                 "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "plain SGD, 1 epoch, seed 0" in out and "1 epochs" not in out


def test_help_says_what_hidden_0_does(capsys):
    """--hidden 0 (or '') trains a network with no hidden layer, as in chainrule train."""
    import pytest
    with pytest.raises(SystemExit):
        main(["descent", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert '0 or "" for no hidden layer' in help_text


def test_a_batch_size_of_all_the_rows_or_more_is_said_to_be_full_batch(tmp_path, capsys):
    """--batch-size N ≥ the number of rows makes the mini-batch descent a full-batch one; the
    table showed the real size (200) without saying why."""
    for size, said in (("500", True), ("200", True), ("199", False)):
        assert main(["descent", "--data", "moons", "--epochs", "1", "--hidden", "4",
                     "--batch-size", size, "--out", str(tmp_path)]) == 0
        out = capsys.readouterr().out
        assert out.count("full-batch descent") == said, out
        if said:
            assert (f"\nnote: --batch-size {size} ≥ 200 rows: the mini-batch descent is "
                    f"full-batch descent (batch 200)\n") in out, out
        mini = [line.split() for line in out.splitlines() if line.startswith("mini-batch")]
        assert mini[0][1] == ("200" if said else size)
