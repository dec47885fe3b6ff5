"""Tensor engine benchmark: per-op overhead over the raw numpy call, beside PyTorch's own.

For each op and size, in one run with interleaved repetitions (medians):

    numpy      the raw numpy call on arrays
    chainrule  the same op on Tensors that require grad (so the graph is recorded)
    torch      the same op on torch tensors that require grad (torch==2.13.0 CPU, 2 threads)

overhead = op time − raw numpy time. The target: chainrule's small-array overhead ≤ 0.4× PyTorch's,
and large-array ops within 5% of raw numpy.

The three are timed in a rotating order (each takes each slot equally often): whatever runs
first after the previous op measured ~20% slow at 1000×1000. Each sample times 20,000 calls of
a small op and 20 of a large one; NaN ratios (no PyTorch overhead to compare) are left out.

Run: ``python benchmarks/tensor_engine.py [--repeats 9]``.
"""
from __future__ import annotations

import argparse
import statistics
import timeit

import numpy as np

from autograd import Tensor

try:
    import torch
    torch.set_num_threads(2)
except ImportError:                      # pragma: no cover - printed in the table
    torch = None

OPS = {
    "a + b": (lambda a, b: a + b, lambda a, b: a + b),
    "a * b": (lambda a, b: a * b, lambda a, b: a * b),
    "a @ b": (lambda a, b: a @ b, lambda a, b: a @ b),
    "tanh(a)": (np.tanh, lambda a, b: a.tanh()),
    "exp(a)": (np.exp, lambda a, b: a.exp()),
    "relu(a)": (lambda a: np.maximum(a, 0), lambda a, b: a.relu()),
    "sum(a)": (lambda a: a.sum(), lambda a, b: a.sum()),
}


def _time(fn, number):
    return timeit.timeit(fn, number=number) / number


def measure(size, repeats):
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((size, size)), rng.standard_normal((size, size))
    ta, tb = Tensor(a, requires_grad=True), Tensor(b, requires_grad=True)
    if torch is not None:
        pa = torch.tensor(a, requires_grad=True)
        pb = torch.tensor(b, requires_grad=True)
    number = 20000 if size <= 10 else 20
    rows = []
    for name, (raw, op) in OPS.items():
        two = raw.__code__.co_argcount == 2 if hasattr(raw, "__code__") else False
        raw_call = (lambda: raw(a, b)) if two else (lambda: raw(a))
        samples = {"numpy": [], "chainrule": [], "torch": []}
        calls = [("numpy", raw_call), ("chainrule", lambda: op(ta, tb))]
        if torch is not None:
            calls.append(("torch", lambda: op(pa, pb)))
        for rep in range(repeats):
            k = rep % len(calls)
            for engine, call in calls[k:] + calls[:k]:     # each engine in each slot in turn
                samples[engine].append(_time(call, number))
        rows.append((name, {k: statistics.median(v) if v else float("nan")
                            for k, v in samples.items()}))
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=9)
    args = parser.parse_args(argv)
    print(f"numpy {np.__version__}, torch {torch.__version__ if torch else 'not installed'} "
          f"({torch.get_num_threads() if torch else '-'} threads)")
    for size in (3, 1000):
        rows = measure(size, args.repeats)
        unit, scale = ("µs", 1e6) if size <= 10 else ("ms", 1e3)
        print(f"\n{size}×{size} float64, median of {args.repeats} ({unit} per op)")
        print(f"{'op':<10}{'numpy':>9}{'chainrule':>11}{'torch':>9}{'ovh cr':>9}{'ovh torch':>11}"
              f"{'cr/torch ovh':>14}{'cr/numpy':>10}")
        ratios, slowdowns = [], []
        for name, t in rows:
            ovh_cr = t["chainrule"] - t["numpy"]
            ovh_torch = t["torch"] - t["numpy"]
            ratio = ovh_cr / ovh_torch if ovh_torch > 0 else float("nan")
            ratios.append(ratio)
            slowdowns.append(t["chainrule"] / t["numpy"])
            print(f"{name:<10}{t['numpy'] * scale:>9.2f}{t['chainrule'] * scale:>11.2f}"
                  f"{t['torch'] * scale:>9.2f}{ovh_cr * scale:>9.2f}{ovh_torch * scale:>11.2f}"
                  f"{ratio:>13.2f}×{t['chainrule'] / t['numpy']:>9.3f}×")
        if size <= 10:
            finite = [r for r in ratios if r == r]
            print(f"median overhead ratio chainrule/torch: {statistics.median(finite):.2f}× "
                  f"(target ≤ 0.4×)")
        else:
            print(f"median time chainrule/numpy: {statistics.median(slowdowns):.3f}× "
                  f"(target ≤ 1.05×)")


if __name__ == "__main__":
    main()
