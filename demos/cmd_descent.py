"""`chainrule descent`: the document's three gradient descents, side by side.

Full-batch, mini-batch and stochastic (batch of 1) descent train the same network from the same
initial weights on the same data, with the document's plain update w = w − α ∂J/∂w and its cost
J = 1/(2n) Σ‖y − h(x)‖². After every update the cost J of the whole training set is recorded
(with the current weights, by a plain-numpy forward pass whose time is not counted), so the
three can be compared per epoch and per update. Writes descent.png and prints a table.
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np

from demos.cli import UserError, output_folder, seed

DESCRIPTION = """\
Compare the document's three descents on one network and one data set:

  batch        one update per epoch, ∂J/∂w over the whole training set
  mini-batch   one update per --batch-size rows
  stochastic   one update per row (batch of 1)

Same initial weights (--seed), same data, plain SGD w = w − α ∂J/∂w, the document's cost
J = 1/(2n) Σ‖y − h(x)‖² with sigmoid units (one-hot targets on digits). The default learning rates differ
per descent (a batch of 1 is noisier, so it takes a ten times smaller step); the table shows
them. Each mini-batch epoch leaves out the rows that do not fill a last whole batch (other rows
each epoch, as the data are shuffled), so no update comes from a handful of rows at the full α. After each update J is evaluated on the whole training set (not timed).
When an epoch has more than 100 updates (stochastic descent), J is evaluated after every update
until it first reaches --target (so "updates to reach" is exact), then every ⌈updates per epoch /
100⌉ updates and at each epoch's end. The table gives the epochs, updates and seconds (training
only) each descent needed to bring J down to --target, and its final J."""

DATA = ("digits", "moons")
MODES = ("batch", "mini-batch", "stochastic")
DEFAULT_LR = {"batch": 5.0, "mini-batch": 5.0, "stochastic": 0.5}
DEFAULT_TARGET = {"digits": 0.15, "moons": 0.05}


def add_parser(subparsers):
    p = subparsers.add_parser(
        "descent", help="batch vs mini-batch vs stochastic gradient descent: loss curves + table",
        description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="digits", choices=DATA,
                   help="digits (default): scikit-learn's 8×8 digits, training split (1347 "
                        "rows); moons: 200 two-moons points")
    p.add_argument("--hidden", default="30", metavar="N[,N...]",
                   help="hidden layer widths, comma-separated (default 30; 0 or \"\" for no "
                        "hidden layer); all units are sigmoid")
    p.add_argument("--epochs", type=int, default=5, metavar="N",
                   help="passes over the training set, the same for each descent (default 5; "
                        "full batch makes one update per pass: try 200)")
    p.add_argument("--batch-size", type=int, default=32, metavar="N",
                   help="rows per update of the mini-batch descent (default 32)")
    p.add_argument("--lr-batch", type=float, default=DEFAULT_LR["batch"], metavar="ALPHA",
                   help=f"α of the full-batch descent (default {DEFAULT_LR['batch']:g})")
    p.add_argument("--lr-mini-batch", type=float, default=DEFAULT_LR["mini-batch"],
                   metavar="ALPHA",
                   help=f"α of the mini-batch descent (default {DEFAULT_LR['mini-batch']:g})")
    p.add_argument("--lr-stochastic", type=float, default=DEFAULT_LR["stochastic"],
                   metavar="ALPHA",
                   help=f"α of the stochastic descent (default {DEFAULT_LR['stochastic']:g})")
    p.add_argument("--target", type=float, default=None, metavar="J",
                   help="the training cost J to reach (default 0.15 on digits, where J starts "
                        "near 1.0; 0.05 on moons, where it starts near 0.14)")
    p.add_argument("--seed", type=seed, default=0,
                   help="seed of the initial weights and the shuffling, and of the points "
                        "for --data moons (default 0)")
    p.add_argument("--out", "--output", default=os.path.join("chainrule-output", "descent"),
                   metavar="DIR",
                   help="folder for descent.png (default ./chainrule-output/descent)")
    p.set_defaults(run=run)
    return p


def load_data(name, seed):
    from nn import data

    if name == "digits":
        ds = data.load_digits(dtype=np.float64)
        return ds.X_train, ds.y_train, 10, "scikit-learn digits (8×8), 1347 training rows"
    X, y = data.make_moons(n=200, noise=0.1, seed=seed)
    return X, y, 2, "two moons, 200 points (noise 0.1)"


class RecordingSGD:
    """A factory for the document's plain SGD that also records the cost J of the whole
    training set and the training time so far (the recording itself excluded) after every
    update until J first reaches ``target`` (under stochastic descent J jumps up and down, so
    sampling could miss the first crossing by any number of updates), then after every
    ``every``-th update and at the end of every epoch."""

    def __init__(self, lr, evaluate, every, updates_per_epoch, target=-float("inf")):
        self.lr, self.evaluate = lr, evaluate
        self.every, self.updates_per_epoch = every, updates_per_epoch
        self.target, self.reached = target, False
        self.updates = 0
        self.update_index, self.update_loss, self.update_seconds = [], [], []

    def __call__(self, params):
        import nn

        recorder = self

        class SGD(nn.SGD):
            def step(self):
                super().step()
                recorder.record()

        self.start = time.perf_counter()
        self.excluded = 0.0
        self.update_index.append(0)
        self.update_loss.append(self.evaluate())     # J at the initial weights
        self.update_seconds.append(0.0)
        self.excluded = time.perf_counter() - self.start
        return SGD(params, lr=self.lr)

    def record(self):
        now = time.perf_counter()
        self.updates += 1
        u = self.updates
        if self.reached and u % self.every and u % self.updates_per_epoch:
            return
        self.update_index.append(u)
        self.update_seconds.append(now - self.start - self.excluded)
        self.update_loss.append(self.evaluate())
        self.reached = self.reached or self.update_loss[-1] <= self.target
        self.excluded += time.perf_counter() - now


def train_one(mode, lr, batch, init_state, sizes, X, Y, epochs, seed, points_per_epoch=100,
              target=-float("inf")):
    """One descent from the shared initial weights; returns its record. J is evaluated after
    every update, or — when an epoch has more than ``points_per_epoch`` updates — after every
    update until J first reaches ``target``, then after every ⌈updates per epoch /
    points_per_epoch⌉-th update and at each epoch's end."""
    import nn
    from nn.delta import forward

    model = nn.MLP(sizes[0], sizes[1:], activation="sigmoid", output_activation="sigmoid",
                   dtype=np.float64)
    model.load_state_dict(init_state)
    n = len(X)
    drop_last = mode == "mini-batch" and n % batch != 0
    per_epoch = n // batch if drop_last else int(np.ceil(n / batch))

    def evaluate():                          # J = 1/(2n) Σ‖y − h(x)‖², plain numpy
        a, _ = forward([l.W.data for l in model.layers], [l.b.data for l in model.layers], X,
                       model.activations)
        return float(0.5 * np.sum((Y - a[-1]) ** 2) / n)

    every = max(1, int(np.ceil(per_epoch / points_per_epoch)))
    recorder = RecordingSGD(lr, evaluate, every, per_epoch, target)
    nn.train.fit(model, X, Y, cost="document", optimizer=recorder, batch_size=batch,
                 epochs=epochs, seed=seed, progress=False, drop_last=drop_last)
    index = np.array(recorder.update_index)
    loss = np.array(recorder.update_loss)
    return {
        "mode": mode, "batch": batch, "lr": lr, "label": f"{mode} (batch {batch}, α={lr:g})",
        "update_index": index, "update_loss": loss,
        "update_seconds": np.array(recorder.update_seconds),
        "epoch_loss": loss[index % per_epoch == 0], "updates_per_epoch": per_epoch,
        "record_every": every,
    }


def reached(run, target):
    """(epochs, updates, seconds) to the first update with J ≤ target, or None."""
    hits = np.flatnonzero(run["update_loss"] <= target)
    if not len(hits):
        return None
    i = int(hits[0])
    u = int(run["update_index"][i])
    return u / run["updates_per_epoch"], u, float(run["update_seconds"][i])


def format_table(runs, target):
    header = ("descent", "batch", "α", "epochs", "updates", "seconds", "final J")
    rows = []
    for r in runs:
        hit = reached(r, target)
        cells = ("—", "—", "—") if hit is None else (f"{hit[0]:.2f}", str(hit[1]),
                                                      f"{hit[2]:.3f}")
        rows.append((r["mode"], str(r["batch"]), f"{r['lr']:g}", *cells,
                     f"{r['update_loss'][-1]:.4f}"))
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(header)]
    lines = [f"to reach J ≤ {target:g} (— = not reached; seconds: training time only):",
             "  ".join(h.ljust(w) if i == 0 else h.rjust(w)
                       for i, (h, w) in enumerate(zip(header, widths)))]
    lines.append("  ".join("-" * w for w in widths))
    for row in rows:
        lines.append("  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                               for i, (c, w) in enumerate(zip(row, widths))))
    for r in runs:      # (a run that never reached the target had J after every update)
        if r["record_every"] > 1 and reached(r, target) is not None:
            lines.append(f"({r['mode']}: J evaluated after every update until it reached "
                         f"{target:g}, then every {r['record_every']} updates)")
    return "\n".join(lines)


def run(args):
    import nn
    from demos.cmd_train import parse_hidden

    hidden = parse_hidden(args.hidden)
    if args.epochs < 1:
        raise UserError(f"--epochs must be at least 1, got {args.epochs}")
    if args.batch_size < 1:
        raise UserError(f"--batch-size must be at least 1, got {args.batch_size}")
    lrs = {"batch": args.lr_batch, "mini-batch": args.lr_mini_batch,
           "stochastic": args.lr_stochastic}
    for mode, lr in lrs.items():
        if not (np.isfinite(lr) and lr > 0):
            raise UserError(f"--lr-{mode} must be a finite number > 0, got {lr}")
    if args.target is None:
        args.target = DEFAULT_TARGET[args.data]
    if not np.isfinite(args.target):
        raise UserError(f"--target must be a finite number, got {args.target}")
    output_folder(args.out)

    X, y, k, description = load_data(args.data, args.seed)
    k_out = 1 if k == 2 else k                      # two moons: one sigmoid output
    Y = y.reshape(-1, 1).astype(np.float64) if k_out == 1 else np.eye(k)[y]
    sizes = [X.shape[1]] + hidden + [k_out]
    init_state = nn.MLP(sizes[0], sizes[1:], activation="sigmoid", output_activation="sigmoid",
                        seed=args.seed, dtype=np.float64).state_dict()
    batches = {"batch": len(X), "mini-batch": min(args.batch_size, len(X)), "stochastic": 1}
    print(f"data: {description}; network {'-'.join(map(str, sizes))}, sigmoid units, the "
          f"document's cost J = 1/(2n) Σ‖y − h(x)‖², plain SGD, {args.epochs} "
          f"epoch{'' if args.epochs == 1 else 's'}, "
          f"seed {args.seed}")
    if args.batch_size >= len(X):
        print(f"note: --batch-size {args.batch_size} ≥ {len(X)} rows: the mini-batch descent "
              f"is full-batch descent (batch {len(X)})")
    runs = []
    for mode in MODES:
        runs.append(train_one(mode, lrs[mode], batches[mode], init_state, sizes, X, Y,
                              args.epochs, args.seed, target=args.target))
    initial = runs[0]['update_loss'][0]
    print(f"initial J = {initial:.4f} (the same weights for all three)")
    if initial <= args.target:
        print(f"note: J starts at or below --target {args.target:g}, so every descent 'reaches' "
              f"it at once; pass a lower --target")
    print(format_table(runs, args.target))
    from demos import plots
    path = plots.descent_curves(runs, os.path.join(args.out, "descent.png"), target=args.target,
                                title=f"Batch, mini-batch and stochastic descent — {description}")
    print(f"loss curves: {os.path.abspath(path)}")
    return 0
