"""The standard tensor workload and the digits comparison, side by side in one run.

Tensor workload (docs: DESIGN.md): Fashion-MNIST 784-100-10, ReLU, softmax cross-entropy, Adam
lr 1e-3, batch 200, L2 α = 1e-4 in scikit-learn's convention α/(2·batch)·Σ W², 10 epochs,
float32, X in [0, 1]. Engines:

    chainrule   nn.MLP (Tensor engine) trained by nn.train.fit (shuffled with the seed; its
                step traced on the first batch, then each batch's step and Adam's update run
                as one compiled call, `nn.fused`, checked against the replay bit for bit)
    replay      the same with fit(fuse=False): the traced step replayed op by op from Python
                (`autograd.trace`), then Adam's update; the same numbers
    estimator   nn.estimators.MLPClassifier (the same engine, its scikit-learn-exact loop)
    delta       the δ reference nn.delta.DeltaNetwork driven by the same loop and optimiser
    torch       PyTorch CPU, 2 threads: a hand-written loop over index-permutation batches
    torch-fused the same with Adam(fused=True), PyTorch's fastest CPU Adam (not its default;
                shown for fairness, the targets use the default)
    torch-loader the torch loop fed by ``DataLoader(TensorDataset(X, y), batch_size=200,
                shuffle=True)``, as most PyTorch scripts feed batches (context, not a target:
                the targets use the faster index-permutation loop above)
    sklearn     sklearn.neural_network.MLPClassifier(max_iter=10, tol=0, n_iter_no_change=100)
    floor       the five matmuls per batch alone, float32, over the same batch shapes
    lean        the same step hand-written for this one network in numpy: buffers allocated once,
                elementwise work in place, no graph, chainrule's fused Adam kernel — what a
                hand-written step reaches (a reference)

Every (engine, repetition) runs in a fresh subprocess (``--worker ENGINE --seed S``) that prints
one JSON line; the parent interleaves them, rotating the engine order each repetition. Peak
memory is the worker's own peak RSS, ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` (it includes
the interpreter, the imports — torch's are large — and the data set, which every worker loads).

Seconds per epoch: the median over epochs and repetitions where the engine reports each epoch
(chainrule, delta, torch, floor), else the fit time / epochs, median over repetitions (estimator,
sklearn).

``--profile`` adds a cProfile of one chainrule run and the replayed step split into phases
(gather, the traced step's forward + cost + backward, L2's value, Adam with L2's gradient,
bookkeeping), timed with a clock between them.

Run:  PYTHONPATH=. .venv/bin/python benchmarks/train_digits.py [--epochs 10] [--repeats 3]
      [--quick] [--profile]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
import warnings

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
ALPHA, LR, BATCH, HIDDEN = 1e-4, 1e-3, 200, 100
ENGINES = ("chainrule", "replay", "estimator", "delta", "torch", "torch-fused", "torch-loader",
           "sklearn", "floor", "lean")
TARGETS = {"torch": 0.6, "sklearn": 0.6, "floor": 2.5}
ACCURACY_TARGET = 0.872


def _fashion():
    from nn.data import load_fashion_mnist
    d = load_fashion_mnist(dtype=np.float32, progress=False)   # X / 255 in [0, 1]
    return d.X_train, d.y_train, d.X_test, d.y_test


def _glorot(seed, dtype=np.float32):
    """W^(1), b^(1), W^(2), b^(2) as scikit-learn draws them (Glorot uniform)."""
    rng = np.random.RandomState(seed)
    out = []
    for fan_in, fan_out in ((784, HIDDEN), (HIDDEN, 10)):
        r = np.sqrt(6.0 / (fan_in + fan_out))
        out += [rng.uniform(-r, r, (fan_in, fan_out)).astype(dtype),
                rng.uniform(-r, r, fan_out).astype(dtype)]
    return out


def _rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0   # Linux: KiB


# -- workers: each returns {"epoch_seconds": [...], "accuracy": float} --------------------------

def work_chainrule(seed, epochs, profile=False, fuse=True):
    import nn
    from nn.train import fit
    X, y, Xt, yt = _fashion()
    model = nn.MLP(784, [HIDDEN, 10], activation="relu", dtype=np.float32, seed=seed)
    for p, w in zip(model.parameters(), _glorot(seed)):
        p.data = w
    run = lambda: fit(model, X, y, cost="cross_entropy", l2=ALPHA, l2_convention="sklearn",
                      batch_size=BATCH, epochs=epochs, shuffle=True, seed=seed, progress=False,
                      fuse=fuse)
    if profile:
        import cProfile
        import pstats
        prof = cProfile.Profile()
        history = prof.runcall(run)
        stats = pstats.Stats(prof, stream=sys.stderr).sort_stats("tottime")
        stats.print_stats(30)
    else:
        history = run()
    dtypes = sorted({str(p.data.dtype) for p in model.parameters()})
    return {"epoch_seconds": history.seconds, "accuracy": nn.accuracy(model, Xt, yt),
            "param_dtypes": dtypes}


def work_replay(seed, epochs, profile=False):
    """chainrule's fit with ``fuse=False``: the traced step replayed op by op from Python, then
    Adam's update (what `fit` ran before nn.fused; the same numbers)."""
    return work_chainrule(seed, epochs, profile, fuse=False)


def work_phases(seed, epochs, profile=False):
    """nn.fit's replayed step for nn.MLP (``fit(fuse=False)``) written out with a clock between
    the phases: µs per step of each (epochs after the first; the same calls as fit, so the same
    work). "step" is forward, cost and backward: fit's traced step, replayed (autograd.trace).
    fit itself runs all of it as one compiled call (nn.fused), which no clock can split."""
    import nn
    from autograd import trace
    from nn import losses
    from nn.optim import Adam
    X, y, _, _ = _fashion()
    model = nn.MLP(784, [HIDDEN, 10], activation="relu", dtype=np.float32, seed=seed)
    for p, w in zip(model.parameters(), _glorot(seed)):
        p.data = w
    optimizer, weights = Adam(model.parameters(), lr=LR), model.weights()

    def cost_and_outputs(x, labels):
        h = model(x)
        return losses.softmax_cross_entropy(h, labels), h
    step = trace(cost_and_outputs)
    rng, clock, n = np.random.default_rng(seed), time.perf_counter, len(X)
    names = ("gather", "step", "L2", "Adam", "bookkeeping")
    spent = dict.fromkeys(names, 0.0)
    for epoch in range(max(epochs, 2)):
        order = rng.permutation(n)
        for lo in range(0, n, BATCH):
            t0 = clock()
            rows = order[lo:lo + BATCH]
            xb, yb = X[rows], y[rows]
            t1 = clock()
            optimizer.zero_grad()
            J, H = step(xb, yb)
            t2 = clock()
            l2, factor = losses.l2_value(weights, ALPHA, "sklearn", batch=len(rows))
            value = J + l2
            t3 = clock()
            optimizer.step(decay=(weights, factor))     # L2's gradient added in Adam's pass
            t4 = clock()
            float(value), int(np.count_nonzero(H.argmax(axis=1) == yb))
            t5 = clock()
            if epoch:
                for name, a, b in zip(names, (t0, t1, t2, t3, t4), (t1, t2, t3, t4, t5)):
                    spent[name] += b - a
    steps = (max(epochs, 2) - 1) * -(-n // BATCH)
    return {"epoch_seconds": [sum(spent.values()) / steps * -(-n // BATCH)], "accuracy": None,
            "us_per_step": {k: v / steps * 1e6 for k, v in spent.items()}}


def work_estimator(seed, epochs, profile=False):
    from sklearn.exceptions import ConvergenceWarning
    from nn.estimators import MLPClassifier
    X, y, Xt, yt = _fashion()
    est = MLPClassifier(hidden_layer_sizes=(HIDDEN,), max_iter=epochs, batch_size=BATCH,
                        alpha=ALPHA, random_state=seed, tol=0, n_iter_no_change=100,
                        dtype=np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        start = time.perf_counter()
        est.fit(X, y)
        seconds = time.perf_counter() - start
    return {"fit_seconds": seconds, "epoch_seconds": [seconds / est.n_iter_],
            "accuracy": float(est.score(Xt, yt))}


def work_delta(seed, epochs, profile=False):
    from nn.delta import DeltaNetwork
    from nn.train import accuracy, fit
    X, y, Xt, yt = _fashion()
    W1, b1, W2, b2 = _glorot(seed)
    net = DeltaNetwork([W1, W2], [b1, b2], ["relu", "identity"], cost="cross_entropy", l2=ALPHA,
                       l2_convention="sklearn")
    history = fit(net, X, y, batch_size=BATCH, epochs=epochs, shuffle=True, seed=seed,
                  progress=False)
    return {"epoch_seconds": history.seconds, "accuracy": accuracy(net, Xt, yt)}


def work_torch(seed, epochs, profile=False, fused=False, loader=False):
    import torch
    torch.set_num_threads(2)
    torch.manual_seed(seed)
    X, y, Xt, yt = _fashion()
    X, y = torch.from_numpy(X), torch.from_numpy(y)
    model = torch.nn.Sequential(torch.nn.Linear(784, HIDDEN), torch.nn.ReLU(),
                                torch.nn.Linear(HIDDEN, 10))
    W1, b1, W2, b2 = _glorot(seed)
    with torch.no_grad():     # same Glorot start as the others (nn.Linear stores Wᵀ)
        for layer, W, b in ((model[0], W1, b1), (model[2], W2, b2)):
            layer.weight.copy_(torch.from_numpy(W.T.copy()))
            layer.bias.copy_(torch.from_numpy(b))
    # scikit-learn's L2 term α/(2·batch)·Σ W² on the batch-mean loss has gradient α/batch · W:
    # that is torch's coupled weight_decay (added to the gradient before Adam's moments), so
    # weight_decay = α / batch on the weights only (a param group), 0 on the biases.
    decay = [model[0].weight, model[2].weight]
    no_decay = [model[0].bias, model[2].bias]
    optimizer = torch.optim.Adam([{"params": decay, "weight_decay": ALPHA / BATCH},
                                  {"params": no_decay, "weight_decay": 0.0}],
                                 lr=LR, betas=(0.9, 0.999), eps=1e-8, fused=fused)
    loss_fn = torch.nn.CrossEntropyLoss()
    generator = torch.Generator().manual_seed(seed)
    n = X.shape[0]

    def index_batches():
        order = torch.randperm(n, generator=generator)
        for lo in range(0, n, BATCH):
            rows = order[lo:lo + BATCH]
            yield X[rows], y[rows]

    if loader:
        from torch.utils.data import DataLoader, TensorDataset
        batches = DataLoader(TensorDataset(X, y), batch_size=BATCH, shuffle=True,
                             generator=generator)
    seconds = []
    for _ in range(epochs):
        start = time.perf_counter()
        for xb, yb in (batches if loader else index_batches()):
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(xb), yb)
            loss.backward()
            optimizer.step()
        seconds.append(time.perf_counter() - start)
    with torch.no_grad():
        acc = float((model(torch.from_numpy(Xt)).argmax(1).numpy() == yt).mean())
    return {"epoch_seconds": seconds, "accuracy": acc}


def work_torch_fused(seed, epochs, profile=False):
    """PyTorch with ``torch.optim.Adam(fused=True)`` (one fused kernel per step on CPU): not
    the default a user gets, so the targets use the default; shown to be fair to the peer."""
    return work_torch(seed, epochs, profile, fused=True)


def work_torch_loader(seed, epochs, profile=False):
    """PyTorch's default Adam fed by a shuffling ``DataLoader`` (num_workers=0, its default):
    the batches most PyTorch scripts see; it collates each batch from 200 single rows."""
    return work_torch(seed, epochs, profile, loader=True)


def work_sklearn(seed, epochs, profile=False):
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier
    X, y, Xt, yt = _fashion()
    est = MLPClassifier(hidden_layer_sizes=(HIDDEN,), max_iter=epochs, batch_size=BATCH,
                        alpha=ALPHA, random_state=seed, tol=0, n_iter_no_change=100)
    with warnings.catch_warnings():       # max_iter=10 is reached on purpose
        warnings.simplefilter("ignore", ConvergenceWarning)
        start = time.perf_counter()
        est.fit(X, y)       # float32 in and kept (its Adam step is float64, rounded back)
        seconds = time.perf_counter() - start
    return {"fit_seconds": seconds, "epoch_seconds": [seconds / est.n_iter_],
            "accuracy": float(est.score(Xt, yt))}


def work_floor(seed, epochs, profile=False):
    """X_b·W1, a·W2 forward; a2ᵀ·δ, δ·W2ᵀ, Xᵀ·δ1 backward — nothing else, float32. As DESIGN
    defines it the floor leaves out gathering the shuffled rows X[rows] (~0.03 s/epoch here),
    which every engine does: a floor with it would be ~25% higher."""
    X, _, _, _ = _fashion()
    rng = np.random.default_rng(seed)
    X = X[rng.permutation(len(X))]        # shuffled once, outside the timing
    W1, _, W2, _ = _glorot(seed)
    n = X.shape[0]
    seconds = []
    for _ in range(epochs):
        start = time.perf_counter()
        for lo in range(0, n, BATCH):
            xb = X[lo:lo + BATCH]
            a = xb @ W1
            d2 = a @ W2
            gW2 = a.T @ d2
            d1 = d2 @ W2.T
            gW1 = xb.T @ d1
        seconds.append(time.perf_counter() - start)
    assert gW1.dtype == gW2.dtype == np.float32
    return {"epoch_seconds": seconds, "accuracy": None}


def work_lean(seed, epochs, profile=False):
    """What numpy alone reaches: the same network, loss, L2 and Adam written by hand for this one
    shape — every buffer allocated once, every elementwise step in place, no graph, no checks.
    A reference for the targets, not a peer: chainrule's loop is a general engine. Adam is
    chainrule's fused kernel (`autograd.kernels`, compiled by numba when installed), the one
    step numpy alone cannot do in one pass; the L2 gradient c·W is added inside it (decay),
    as chainrule's fit does."""
    from autograd import kernels
    X, y, Xt, yt = _fashion()
    params = _glorot(seed)
    W1, b1, W2, b2 = params
    n, c = X.shape[0], ALPHA / BATCH                  # L2 gradient c·W (α/(2·batch)·Σ W²)
    moments = [(np.zeros_like(p), np.zeros_like(p)) for p in params]
    scratch = [(np.empty_like(p), np.empty_like(p)) for p in params]
    rng, t, seconds = np.random.default_rng(seed), 0, []
    for _ in range(epochs):
        start = time.perf_counter()
        order = rng.permutation(n)
        for lo in range(0, n, BATCH):
            rows = order[lo:lo + BATCH]
            xb, yb = X[rows], y[rows]
            m = len(rows)
            a = xb @ W1
            a += b1
            np.maximum(a, 0, out=a)                   # a(2) = relu(z(1)), in place
            p = a @ W2
            p += b2
            p -= p.max(axis=1, keepdims=True)
            np.exp(p, out=p)
            p /= p.sum(axis=1, keepdims=True)         # softmax
            p[np.arange(m), yb] -= 1
            p *= 1.0 / m                              # δ(3) = (softmax − onehot)/n
            gW2 = a.T @ p
            gb2 = p.sum(axis=0)
            d = p @ W2.T
            d *= a > 0                                # δ(2)
            gW1 = xb.T @ d
            gb1 = d.sum(axis=0)
            t += 1
            lr_t = LR * np.sqrt(1 - 0.999 ** t) / (1 - 0.9 ** t)
            for w, g, (mo, ve), s, d in zip(params, (gW1, gb1, gW2, gb2), moments, scratch,
                                            (c, None, c, None)):
                kernels.adam_update(w, g, mo, ve, 0.9, 0.999, 1e-8, lr_t, s, decay=d)
        seconds.append(time.perf_counter() - start)
    h = np.maximum(Xt @ W1 + b1, 0) @ W2 + b2
    return {"epoch_seconds": seconds, "accuracy": float((h.argmax(axis=1) == yt).mean())}


def work_digits(seed, epochs, profile=False):
    """sklearn's load_digits, test_size=0.25, random_state=0; MLPClassifier defaults."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    from sklearn.neural_network import MLPClassifier as SkMLP
    from nn.estimators import MLPClassifier
    X, y = load_digits(return_X_y=True)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.25, random_state=0)
    out = {}
    order = [("chainrule", MLPClassifier), ("sklearn", SkMLP)]
    for name, cls in (order if seed % 2 == 0 else order[::-1]):
        start = time.perf_counter()
        est = cls(random_state=0).fit(Xtr, ytr)
        out[name] = {"fit_seconds": time.perf_counter() - start,
                     "accuracy": float(est.score(Xte, yte)), "n_iter": est.n_iter_}
    return out


WORKERS = {"chainrule": work_chainrule, "replay": work_replay, "estimator": work_estimator,
           "delta": work_delta, "torch": work_torch, "torch-fused": work_torch_fused,
           "torch-loader": work_torch_loader, "sklearn": work_sklearn,
           "floor": work_floor, "lean": work_lean,
           "digits": work_digits, "phases": work_phases}


def run_worker(engine, seed, epochs, profile):
    result = WORKERS[engine](seed, epochs, profile)
    result["peak_rss_mb"] = _rss_mb()
    print(json.dumps(result))


# -- the parent ------------------------------------------------------------------------------

def spawn(engine, seed, epochs, profile=False):
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", engine, "--seed", str(seed),
           "--epochs", str(epochs)] + (["--profile"] if profile else [])
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.setdefault("OPENBLAS_NUM_THREADS", "2")      # numpy's BLAS as torch: 2 threads
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    if done.returncode != 0:
        raise RuntimeError(f"worker {engine} failed:\n{done.stderr}")
    if profile:
        sys.stderr.write(done.stderr)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="2 epochs, 1 repetition")
    parser.add_argument("--profile", action="store_true",
                        help="cProfile one chainrule run (printed to stderr)")
    parser.add_argument("--engines", default=",".join(ENGINES))
    parser.add_argument("--no-digits", action="store_true")
    parser.add_argument("--worker", choices=sorted(WORKERS))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.worker:
        run_worker(args.worker, args.seed, args.epochs, args.profile)
        return
    if args.quick:
        args.epochs, args.repeats = 2, 1
    engines = [e for e in args.engines.split(",") if e]
    results = {e: [] for e in engines}
    digits = []
    print(f"tensor workload: Fashion-MNIST 784-{HIDDEN}-10, ReLU, softmax CE, Adam lr {LR}, "
          f"batch {BATCH}, L2 {ALPHA} (α/(2·batch)), {args.epochs} epochs, float32; "
          f"{args.repeats} repetitions, engine order rotated", flush=True)
    args.load_before = os.getloadavg()
    for rep in range(args.repeats):
        order = engines[rep % len(engines):] + engines[:rep % len(engines)]
        for engine in order:
            r = spawn(engine, rep, args.epochs)
            results[engine].append(r)
            acc = "—" if r["accuracy"] is None else f"{r['accuracy']:.4f}"
            print(f"  rep {rep} {engine:<10} {statistics.median(r['epoch_seconds']):.3f} s/epoch "
                  f"acc {acc} rss {r['peak_rss_mb']:.0f} MB", flush=True)
        if not args.no_digits:
            digits.append(spawn("digits", rep, args.epochs))
    if args.profile:
        spawn("chainrule", 0, min(args.epochs, 2), profile=True)
        phases = spawn("phases", 0, min(args.epochs, 3))["us_per_step"]
        print("\nthe replayed step by phase (fit(fuse=False); µs per batch of 200; the epochs "
              "after the first):")
        print("  " + "  ".join(f"{k} {v:.0f}" for k, v in phases.items())
              + f"  total {sum(phases.values()):.0f}", flush=True)
    report(results, digits, args)


def report(results, digits, args):
    rows, spreads = {}, {}
    for engine, runs in results.items():
        if not runs:
            continue
        per_epoch = statistics.median([s for r in runs for s in r["epoch_seconds"]])
        accs = [r["accuracy"] for r in runs if r["accuracy"] is not None]
        rows[engine] = (per_epoch, statistics.median(accs) if accs else None,
                        max(r["peak_rss_mb"] for r in runs))
        medians = [statistics.median(r["epoch_seconds"]) for r in runs]
        spreads[engine] = (min(medians), max(medians))
    print()
    print(f"{'engine':<12}{'s/epoch':>9}{'min–max over reps':>20}{'test acc':>10}"
          f"{'peak RSS MB':>13}")
    noisy = []
    for engine, (sec, acc, rss) in rows.items():
        acc_text = "—" if acc is None else f"{acc:.4f}"
        lo, hi = spreads[engine]
        if hi > 1.25 * lo:
            noisy.append(engine)
        print(f"{engine:<12}{sec:>9.3f}{f'{lo:.3f}–{hi:.3f}':>20}{acc_text:>10}{rss:>13.0f}")
    load = getattr(args, "load_before", None)
    print(f"load average (1 min) before {load[0]:.2f}, after {os.getloadavg()[0]:.2f} "
          f"on {os.cpu_count()} cores" if load else "")
    print("s/epoch: median over every epoch of every repetition; scikit-learn and the estimator "
          "report only a whole fit, so theirs is fit time / epochs (setup included)")
    if noisy:
        print(f"WARNING: repetitions differ by more than 25% for {', '.join(noisy)}: the "
              f"machine was busy; rerun before quoting ratios")
    if "chainrule" in rows:
        mine = rows["chainrule"][0]
        print()
        print(f"{'ratio (chainrule / peer)':<28}{'measured':>9}{'target':>9}")
        for peer, target in TARGETS.items():
            if peer in rows:
                ratio = mine / rows[peer][0]
                ok = "ok" if ratio <= target else "MISSED"
                print(f"chainrule / {peer:<16}{ratio:>9.2f}{'≤ ' + str(target):>9}  {ok}")
        if "torch-fused" in rows:
            print(f"chainrule / torch with fused Adam {mine / rows['torch-fused'][0]:>10.2f}"
                  f"   (PyTorch's fastest CPU Adam; not its default)")
        if "torch-loader" in rows:
            print(f"chainrule / torch with a DataLoader {mine / rows['torch-loader'][0]:>8.2f}"
                  f"   (how most PyTorch scripts feed batches; not a target)")
        if "torch" in rows:
            paired = [statistics.median(a["epoch_seconds"]) / statistics.median(b["epoch_seconds"])
                      for a, b in zip(results["chainrule"], results["torch"])]
            print(f"chainrule / torch, rep by rep {statistics.median(paired):>7.2f}   (median; "
                  f"{min(paired):.2f}–{max(paired):.2f} over the repetitions)")
        if "replay" in rows:
            print(f"chainrule / replay {'':<9}{mine / rows['replay'][0]:>9.2f}   (fit(fuse=False): "
                  f"the step replayed op by op from Python)")
        for name in ("replay", "estimator", "delta"):
            if name in rows and "floor" in rows:
                print(f"{name} / floor {'':<14}{rows[name][0] / rows['floor'][0]:>9.2f}")
        if "lean" in rows:
            print("what numpy alone reaches (lean, hand-written, no graph):  "
                  + "  ".join(f"/ {peer} {rows['lean'][0] / rows[peer][0]:.2f}"
                              for peer in TARGETS if peer in rows))
        acc = rows["chainrule"][1]
        print(f"accuracy {acc:.4f} (target ≥ {ACCURACY_TARGET}) "
              f"{'ok' if acc >= ACCURACY_TARGET else 'MISSED'}")
        if "torch" in rows:
            rss, trss = rows["chainrule"][2], rows["torch"][2]
            print(f"peak RSS {rss:.0f} MB vs PyTorch {trss:.0f} MB (target ≤) "
                  f"{'ok' if rss <= trss else 'MISSED'}")
    if digits:
        print()
        print("digits (load_digits, test_size=0.25, random_state=0; MLPClassifier defaults, "
              "random_state=0)")
        print(f"{'':<11}{'test acc':>10}{'fit s':>8}{'n_iter_':>9}")
        for name in ("chainrule", "sklearn"):
            acc = digits[0][name]["accuracy"]
            sec = statistics.median(d[name]["fit_seconds"] for d in digits)
            print(f"{name:<11}{acc:>10.4f}{sec:>8.2f}{digits[0][name]['n_iter']:>9}")
        c = statistics.median(d["chainrule"]["fit_seconds"] for d in digits)
        s = statistics.median(d["sklearn"]["fit_seconds"] for d in digits)
        acc = digits[0]["chainrule"]["accuracy"]
        print(f"targets: accuracy ≥ 0.973: {'ok' if acc >= 0.973 else 'MISSED'}; "
              f"fit time ≤ sklearn's: {c / s:.2f}× {'ok' if c <= s else 'MISSED'}")


if __name__ == "__main__":
    main()
