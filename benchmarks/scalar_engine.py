"""Scalar engine benchmark: chainrule's Value against micrograd 0.1.0, side by side in one run.

Workloads (../shared/DESIGN.md):
- scalar: micrograd's demo — MLP 2-16-16-1 on 100 two-moons points, SVM max-margin loss +
  1e-4·Σp², full-batch SGD; one step = forward + backward + update. Both engines build the same
  graph shape (wᵢ·xᵢ products summed onto b, relu), so ns per graph node compare like for like.
  micrograd runs as shipped, with the garbage collector on, and again with it off. chainrule
  runs its ValueMLP (whose neurons record Σ wᵢaᵢ + b with `autograd.weighted_sum`: the same
  entries, one call) and again the same network written with plain operators
  (``sum(w * a …, b)``, one Python operator call per node, as code written by a user).
- deep chain: x ← x·1.0001 + 0, 1,000,000 times, then backward.
- tiny graphs: ``(x·x + x).relu()`` and one neuron relu(w₁x₁ + w₂x₂ + b), built and
  differentiated over and over — what an exercise on the chain rule does. Here a pass's fixed
  cost, not the per-node one, is what counts.

Run: ``python benchmarks/scalar_engine.py [--steps 15] [--block 5] [--chain 1000000]``. Each
engine trains in runs of ``--block`` consecutive steps, as its own demo loop would (so a step
pays for collecting the garbage the previous one left, as it does for a user); runs of the
engines alternate. Figures are medians over steps; ratios are what to quote, absolute times are
context.
"""
from __future__ import annotations

import argparse
import gc
import random
import statistics
import sys
import time
import tracemalloc

import numpy as np

try:
    from micrograd import nn as mg_nn
    from micrograd.engine import Value as MicroValue
except ImportError:                      # pragma: no cover - printed as a table row
    mg_nn = MicroValue = None

sys.setrecursionlimit(max(sys.getrecursionlimit(), 1000))   # the default: no engine gets more

from autograd import Value, topo_order   # noqa: E402
from nn import ValueMLP                  # noqa: E402
from nn.data import make_moons           # noqa: E402


def moons():
    X, y = make_moons(100, noise=0.1, seed=1)
    return [[float(a) for a in row] for row in X], [float(2 * t - 1) for t in y]


# -- one training step per engine ----------------------------------------------------------

def chainrule_model():
    return ValueMLP(2, [16, 16, 1], activation="relu", output_activation="identity", seed=1337)


def svm_step(model, scores, y, k):
    """micrograd's demo step: max-margin loss + 1e-4·Σp², backward, SGD with a decaying rate."""
    losses = [(1 + -yi * si).relu() for yi, si in zip(y, scores)]
    data_loss = sum(losses) * (1.0 / len(losses))
    reg_loss = 1e-4 * sum(p * p for p in model.parameters())
    total = data_loss + reg_loss
    model.zero_grad()
    total.backward()
    lr = 1.0 - 0.9 * k / 100
    for p in model.parameters():
        p.data -= lr * p.grad
    return total


def chainrule_step(model, X, y, k):
    return svm_step(model, [model(x)[0] for x in X], y, k)


def plain_forward(model, x):
    """The same network written with plain operators, as a user would: z = Σ w·a + b by
    ``sum(w * a …, b)`` (one operator call per node), relu on the hidden layers."""
    a = [Value(v, requires_grad=False) for v in x]
    last = len(model.layers) - 1
    for l, layer in enumerate(model.layers):
        zs = [sum((w * ai for w, ai in zip(n.w, a)), n.b) for n in layer.neurons]
        a = zs if l == last else [z.relu() for z in zs]
    return a[0]


def chainrule_plain_step(model, X, y, k):
    return svm_step(model, [plain_forward(model, x) for x in X], y, k)


def micrograd_model():
    random.seed(1337)
    return mg_nn.MLP(2, [16, 16, 1])


def micrograd_step(model, X, y, k):
    return svm_step(model, [model(list(map(MicroValue, row))) for row in X], y, k)


def count_micrograd_nodes(root):
    seen, stack = {id(root)}, [root]
    while stack:
        for child in stack.pop()._prev:
            if id(child) not in seen:
                seen.add(id(child))
                stack.append(child)
    return len(seen)


def graph_bytes(build):
    """Bytes allocated and still held by one built graph (tracemalloc), and the graph."""
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    root = build()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return after - before, root


# -- the scalar workload -------------------------------------------------------------------

def scalar_workload(steps, block):
    """Per-step times of each engine. Each engine trains in runs of ``block`` consecutive
    steps, as in its own demo loop: a step's graph becomes garbage when the next one starts,
    and whatever that costs (micrograd's collector freeing its reference cycles) lands in the
    steps that follow, as it does for a user. Runs of different engines alternate, so machine
    noise hits all alike, and the collector is emptied between runs, so no engine pays for
    another's garbage."""
    X, y = moons()
    engines = {"chainrule": (chainrule_model(), chainrule_step),
               "chainrule plain ops": (chainrule_model(), chainrule_plain_step)}
    if mg_nn is not None:
        engines["micrograd (gc on)"] = (micrograd_model(), micrograd_step)
        engines["micrograd (gc off)"] = (micrograd_model(), micrograd_step)
    times = {name: [] for name in engines}
    for first in range(0, steps, block):
        for name, (model, step) in engines.items():
            gc_off = name.endswith("(gc off)")
            gc.collect()
            if gc_off:
                gc.disable()
            for k in range(first, min(first + block, steps)):
                t0 = time.perf_counter()
                step(model, X, y, k)
                times[name].append(time.perf_counter() - t0)
            if gc_off:
                gc.enable()
    nodes = {"chainrule": len(topo_order(chainrule_step(chainrule_model(), X, y, 0))),
             "chainrule plain ops": len(topo_order(
                 chainrule_plain_step(chainrule_model(), X, y, 0)))}
    loss = chainrule_step(engines["chainrule"][0], X, y, steps)
    if mg_nn is not None:
        n = count_micrograd_nodes(micrograd_step(micrograd_model(), X, y, 0))
        nodes["micrograd (gc on)"] = nodes["micrograd (gc off)"] = n
    # bytes per node: the forward graph alone, before backward
    model = chainrule_model()
    cr_bytes, root = graph_bytes(lambda: sum((model(x)[0] for x in X), Value(0.0)))
    byte_rows = {"chainrule": cr_bytes / len(topo_order(root))}
    if mg_nn is not None:
        mg = micrograd_model()
        mg_bytes, mroot = graph_bytes(
            lambda: sum(mg(list(map(MicroValue, x))) for x in X))
        byte_rows["micrograd"] = mg_bytes / count_micrograd_nodes(mroot)
    return times, nodes, byte_rows, loss.data


# -- tiny graphs ---------------------------------------------------------------------------

def _tiny_expression(V):
    def run():
        x = V(2.0)
        y = (x * x + x).relu()
        y.backward()
        return x.grad
    return run


def _tiny_neuron(V):
    def run():
        w1, w2, b = V(0.5), V(-1.5), V(0.25)
        y = (w1 * 2.0 + w2 * -0.75 + b).relu()
        y.backward()
        return w1.grad + w2.grad + b.grad
    return run


def tiny_graphs(calls, rounds=5):
    """µs per forward + backward of each tiny graph, per engine: the median over ``rounds``
    alternating runs of ``calls`` calls each."""
    rows = []
    for label, make in (("(x·x + x).relu()", _tiny_expression),
                        ("relu(w₁x₁ + w₂x₂ + b)", _tiny_neuron)):
        engines = {"chainrule": make(Value)}
        if MicroValue is not None:
            engines["micrograd"] = make(MicroValue)
        answers = {name: run() for name, run in engines.items()}
        if len(set(answers.values())) != 1:
            raise AssertionError(f"{label}: the engines disagree: {answers}")
        per_call = {name: [] for name in engines}
        for _ in range(rounds):
            for name, run in engines.items():
                t0 = time.perf_counter()
                for _ in range(calls):
                    run()
                per_call[name].append((time.perf_counter() - t0) / calls * 1e6)
        rows.append((label, {k: statistics.median(v) for k, v in per_call.items()}))
    return rows


# -- the deep chain ------------------------------------------------------------------------

def chain_forward(V, n):
    x = V(1.0)
    leaf = x
    for _ in range(n):
        x = x * 1.0001 + 0
    return leaf, x


def deep_chain(n):
    rows = []
    for name, V in (("chainrule", Value), ("micrograd", MicroValue)):
        if V is None:
            continue
        gc.collect()
        t0 = time.perf_counter()
        leaf, root = chain_forward(V, n)
        t1 = time.perf_counter()
        try:
            root.backward()
            backward = f"{time.perf_counter() - t1:.2f} s"
            grad_ok = abs(leaf.grad / 1.0001 ** n - 1) < 1e-6
            outcome = "ok" if grad_ok else f"wrong grad {leaf.grad}"
        except RecursionError:
            backward, outcome = "-", "RecursionError"
        forward = t1 - t0
        del leaf, root
        gc.collect()
        tracemalloc.start()
        leaf, root = chain_forward(V, n)
        graph_bytes_ = tracemalloc.get_traced_memory()[0]
        if outcome == "ok":
            root.backward()
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        del leaf, root
        # per op node (2 per step); the constants 1.0001 and 0 are nodes too in both engines
        rows.append((name, forward, backward, outcome, peak / 2 ** 20,
                     graph_bytes_ / (2 * n)))
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=15)
    parser.add_argument("--block", type=int, default=5,
                        help="consecutive steps per engine before switching engines")
    parser.add_argument("--chain", type=int, default=1_000_000)
    parser.add_argument("--tiny", type=int, default=20_000,
                        help="calls per run of each tiny graph")
    args = parser.parse_args(argv)
    print(f"Python {sys.version.split()[0]}, numpy {np.__version__}, gc thresholds "
          f"{gc.get_threshold()}, recursion limit {sys.getrecursionlimit()}")
    print(f"\nScalar workload: micrograd's demo (MLP 2-16-16-1, 100 moons, SVM loss + L2), "
          f"median of {args.steps} steps, in runs of {args.block} per engine")
    times, nodes, byte_rows, loss = scalar_workload(args.steps, args.block)
    base = statistics.median(times["chainrule"])
    base_ns = base / nodes["chainrule"] * 1e9
    print(f"{'engine':<20}{'step (ms)':>11}{'nodes':>9}{'ns/node':>9}"
          f"{'÷ chainrule (per node)':>24}")
    for name, ts in times.items():
        med = statistics.median(ts)
        ns = med / nodes[name] * 1e9
        print(f"{name:<20}{med * 1e3:>11.1f}{nodes[name]:>9}{ns:>9.0f}{ns / base_ns:>23.2f}×")
    if mg_nn is not None:
        plain_ns = statistics.median(times["chainrule plain ops"]) / nodes["chainrule plain ops"]
        for peer in ("micrograd (gc on)", "micrograd (gc off)"):
            peer_ns = statistics.median(times[peer]) / nodes[peer]
            print(f"{peer} ÷ chainrule: {peer_ns / (base / nodes['chainrule']):.2f}× "
                  f"(ValueMLP), {peer_ns / plain_ns:.2f}× (plain operators)")
        print("targets: ≥ 15× micrograd as shipped (gc on), ≥ 3× micrograd with gc off")
    print(f"(final chainrule loss {loss:.4f})")
    print("\nbytes per forward-graph node: " + ", ".join(
        f"{k} {v:.0f}" for k, v in byte_rows.items()))
    if "micrograd" in byte_rows:
        print(f"chainrule / micrograd bytes per node: "
              f"{byte_rows['chainrule'] / byte_rows['micrograd']:.2f}")
    print(f"\nTiny graphs: build + backward, µs per call (median of 5 alternating runs of "
          f"{args.tiny:,} calls)")
    print(f"{'graph':<24}{'chainrule':>11}{'micrograd':>11}{'÷ micrograd':>13}")
    for label, us in tiny_graphs(args.tiny):
        mg = us.get("micrograd")
        print(f"{label:<24}{us['chainrule']:>11.2f}" + (
            f"{mg:>11.2f}{us['chainrule'] / mg:>12.2f}×" if mg is not None else f"{'—':>11}"))
    print(f"\nDeep chain: x ← x·1.0001 + 0, {args.chain:,} times, then backward "
          f"(2 nodes per step)")
    print(f"{'engine':<12}{'forward':>10}{'backward':>10}  {'outcome':<16}{'peak MiB':>10}"
          f"{'graph bytes/op node':>21}")
    rows = deep_chain(args.chain)
    for name, fwd, bwd, outcome, mib, per_node in rows:
        print(f"{name:<12}{fwd:>8.2f} s{bwd:>10}  {outcome:<16}{mib:>10.0f}{per_node:>21.0f}")
    if len(rows) == 2:
        print(f"chainrule / micrograd graph bytes per node: {rows[0][5] / rows[1][5]:.2f} "
              f"(target ≤ 0.33); peak includes chainrule's backward, micrograd's forward only")


if __name__ == "__main__":
    main()
