"""One compiled call per batch: fit's traced step and the optimiser's update, for a dense chain.

When the step `fit` traced (`autograd.trace`) is a chain of dense layers with relu between them
under softmax cross-entropy with class labels (`trace._dense_chain` reads that off the plan),
and the optimiser is `nn.optim.Adam` or `nn.optim.SGD`, each batch runs as one call of
`_compiled.dense_cross_entropy_step`: the rows gathered, the forward pass, the cost, the
backward pass and every parameter's update, with no Python between them. The calls inside are
the replay's own — numpy's BLAS gemm, numpy's exp and log loops (by their addresses,
`kernels.native_functions`), the loops the replay runs — in the replay's order, so the numbers
are the replay's. That is checked, not assumed: the first batch of each size runs both ways
and must agree bit for bit in J, the outputs and every gradient, or that size keeps the replay.

Why: between the replay's ~20 calls per batch the interpreter runs, and after the large
matmuls each of those calls starts from cold caches; in one call an epoch takes ~12–18% less
time on the Fashion-MNIST benchmark (benchmarks/train_digits.py, engines chainrule and replay).
"""
from __future__ import annotations

import numpy as np

from autograd import kernels

from . import losses
from .optim import SGD, Adam


class FusedStep:
    """The fused step of one `fit` (see the module docstring); ``steps`` counts its calls."""

    def __init__(self, net, optimizer, labels):
        self.net, self.optimizer = net, optimizer
        # the labels as int64 for the compiled call (one machine code for every label dtype:
        # uint8 or big-endian labels from an IDX file give the same classes)
        self.labels, self.labels_int64 = labels, np.ascontiguousarray(labels, np.int64)
        self.entries = {}        # batch size → _Entry, or False (that size keeps the replay)
        self.checked = set()     # the sizes whose entry was checked this epoch
        self.steps = 0
        self.last = None         # the entry of the last fused step (its gradients)

    @classmethod
    def applies(cls, net, optimizer, X, Y, targets_are_labels, batch):
        """A FusedStep for this fit, or None when it cannot apply (another model, cost,
        optimiser or layout; or a batch's input under `kernels.LARGE` entries while numba is
        not loaded: a small network's fit does not pay its import)."""
        if (type(optimizer) not in (Adam, SGD) or getattr(net, "traced", None) is None
                or not targets_are_labels or X.ndim != 2
                or not kernels.compiled(min(batch, len(X)) * X.shape[1])
                or not X.flags.c_contiguous or X.dtype != net.dtype
                or Y.ndim != 1 or Y.dtype.kind not in "iu"
                or kernels.native_functions(X.dtype) is None):
            return None
        return cls(net, optimizer, Y)

    def epoch_begins(self):
        """Before each epoch: the next batch of each size checks that its entry still holds
        (`_Entry.current`) and reads the optimiser's settings again; between epochs a callback
        may have changed either, within one nothing does."""
        self.checked.clear()

    def __call__(self, X, rows, labels):
        """Train on rows ``rows`` of (X, labels): (J with its L2 term, correct predictions),
        or None when this batch must take the replay (a size not yet traced, or refused)."""
        n = rows.size
        self.last = None         # (until this step is done here: else the replay's .grad)
        if labels is not self.labels:
            return None
        entry = self.entries.get(n)
        if entry is False:
            return None
        if entry is None or n not in self.checked:
            if entry is None or not entry.current():
                entry = self._make(n, X, rows, labels)
                if entry is None:
                    return None
            entry.read_settings()
            self.checked.add(n)
        optimizer, net = self.optimizer, self.net
        dtype = entry.dtype
        if entry.adam:
            t = optimizer.t + 1
            lr_t = optimizer._bias_corrected_lr(t)
            rate = dtype.type(-lr_t)
        else:
            rate = dtype.type(optimizer._lr)
        value = None
        if net.l2:
            value, factor = losses.l2_value(entry.weights, net.l2, net.l2_convention,
                                            n_train=net.n_train, batch=n)
            decay = dtype.type(factor)
        else:
            decay = entry.zero
        status, J, hits = entry.run(X, rows, self.labels_int64, entry.rule, rate, decay,
                                    value is not None, entry.hyper)
        if status:
            return None      # (nothing updated: the replay raises the graph's error)
        if entry.adam:
            optimizer.t, optimizer.lr_t = t, lr_t
            optimizer.steps[:] = [t] * len(optimizer.steps)
        self.steps += 1
        self.last = entry
        J = np.asarray(dtype.type(J))
        return float(J if value is None else J + value), int(hits)

    def finish(self):
        """Leave in each parameter's .grad the last fused step's gradient, as the replay
        would have (a copy: the buffers are the step's own)."""
        entry, self.last = self.last, None
        if entry is not None:
            for p, g in zip(entry.params, entry.grads):
                p.grad = g.copy()

    def _make(self, n, X, rows, labels):
        """Build the entry for batches of n rows once the replay has a plan for them, and
        check it against the replay on this batch; None until then, False kept if refused."""
        net, optimizer = self.net, self.optimizer
        key = ((n, X.shape[1]), X.dtype, (n,), labels.dtype)
        plan = net.traced.plans.get(key)
        if plan is None or plan.refits is None or not plan.ready() or not plan.current():
            return None
        entry = _Entry.build(plan, optimizer, net, n, X)
        if entry is None or not entry.matches_replay(net, X, rows, labels, self.labels_int64):
            self.entries[n] = False
            return None
        self.entries[n] = entry
        return entry


class _Entry:
    """The buffers and arguments of the fused step for one batch size."""

    @classmethod
    def build(cls, plan, optimizer, net, n, X):
        layers = plan.dense_chain
        if layers is None or n < 2:
            return None
        position = {id(p): i for i, p in enumerate(optimizer.params)}
        Ws = [plan.params[w] for w, _ in layers]
        bs = [plan.params[b] for _, b in layers]
        if any(id(p) not in position for p in Ws + bs):
            return None
        weights = net.model.weights()
        if net.l2 and ({id(w) for w in weights} != {id(w) for w in Ws} or not net.fold_l2):
            return None
        dtype = X.dtype
        for p in Ws + bs:
            d = p.data
            if (type(d) is not np.ndarray or d.dtype != dtype or not d.flags.c_contiguous
                    or not d.flags.writeable):
                return None
        entry = cls()
        entry.adam = type(optimizer) is Adam
        if entry.adam:      # (as Adam's _common_step: one flat buffer each, no step skipped)
            state = optimizer._flats
            if state is None or any(s != optimizer.t for s in optimizer.steps):
                return None
            moments = [state[position[id(p)]] for p in Ws + bs]
        else:
            state = list(optimizer.velocities)
            moments = []
            for p in Ws + bs:
                v = state[position[id(p)]]
                if (type(v) is not np.ndarray or v.dtype != dtype or v.shape != p.data.shape
                        or not v.flags.c_contiguous or not v.flags.writeable):
                    return None
                moments.append((v.reshape(-1), v.reshape(-1)))     # (no second moment)
        entry.plan, entry.optimizer, entry.state, entry.dtype = plan, optimizer, state, dtype
        entry.params = Ws + bs
        entry.arrays = [p.data for p in entry.params]
        entry.W_arrays = tuple(entry.arrays[:len(Ws)])
        entry.b_arrays = tuple(entry.arrays[len(Ws):])
        entry.weights = weights
        entry.zero = dtype.type(0)
        sizes = [W.data.shape[1] for W in Ws]
        k = sizes[-1]

        def matrices(count):
            return tuple(np.empty((n, size), dtype) for size in count)
        none = np.empty((0, 0), dtype)
        entry.xb, entry.yb = np.empty((n, X.shape[1]), dtype), np.empty(n, np.int64)
        entry.us, entry.zs, entry.gzs = matrices(sizes), matrices(sizes), matrices(sizes)
        entry.acts = matrices(sizes[:-1]) + (none,)
        entry.gas = matrices(sizes[:-1]) + (none,)
        entry.gWs = tuple(np.empty_like(W.data) for W in Ws)
        entry.gbs = tuple(np.empty_like(b.data) for b in bs)
        entry.grads = entry.gWs + entry.gbs
        entry.cost = (np.empty((n, k), dtype), np.empty((n, 1), dtype), np.empty(n, dtype),
                      np.empty((n, 1), dtype), np.empty((n, 1), dtype), np.empty(n, dtype))
        mean = 1.0 / n
        entry.scale = np.asarray(np.ones((), dtype) * mean)[()]      # (the seed · mean)
        entry.mean = dtype.type(mean)
        entry.native = kernels.native_functions(dtype)
        entry.scratch = np.empty(5, np.intp)
        layers = len(Ws)
        entry.moments = tuple(tuple(pair[which] for pair in group)
                              for group in (moments[:layers], moments[layers:])
                              for which in (0, 1))
        return entry

    def current(self):
        """The parameters still hold the arrays the entry was built on, and the optimiser its
        state (Adam: its buffers and one step count for all; SGD: its velocity arrays, which
        its numpy path replaces): a callback can change either between epochs."""
        optimizer = self.optimizer
        if not self.plan.current():
            return False
        for p, a in zip(self.params, self.arrays):
            if p.data is not a:
                return False
        if not self.adam:
            return all(v is mine for v, mine in zip(optimizer.velocities, self.state))
        t = optimizer.t
        return optimizer._flats is self.state and all(s == t for s in optimizer.steps)

    def read_settings(self):
        """The update's rule and constants from the optimiser as it is now: Adam's β₁, 1−β₁,
        β₂, 1−β₂, ε and the flush's threshold, or SGD's μ, threshold and Nesterov flag, in
        the dtype (`kernels.adam_update`'s and `kernels.sgd_update`'s arguments)."""
        optimizer, dtype, zero = self.optimizer, self.dtype, self.zero
        if self.adam:
            self.rule = 1
            self.hyper = kernels.adam_constants(dtype, optimizer.beta_1, optimizer.beta_2,
                                                optimizer.epsilon)[:6]
        else:
            self.rule = 2
            self.hyper = (dtype.type(optimizer.momentum), dtype.type(np.finfo(dtype).tiny),
                          dtype.type(optimizer.nesterov), zero, zero, zero)

    def run(self, X, rows, labels, update, rate, decay, decayed, hyper):
        from autograd import _compiled
        return _compiled.dense_cross_entropy_step(
            X, rows, labels, self.xb, self.yb, self.W_arrays, self.b_arrays, self.us, self.zs,
            self.acts, self.gzs, self.gas, self.gWs, self.gbs, *self.cost, self.scale,
            self.mean, self.zero, self.native, self.scratch, update, *self.moments, hyper,
            rate, decay, decayed)

    def matches_replay(self, net, X, rows, labels, labels_int64):
        """Run this batch through the replay and through the fused step without its update:
        True when J, the outputs and every gradient agree bit for bit. The parameters and
        their .grad are left as they were."""
        xb, yb = X[rows], labels[rows]
        params = self.params
        before = [p._grad for p in params]
        try:
            for p in params:
                p._grad = None
            J, H = net.traced(xb, yb)
            grads = [p._grad for p in params]
        finally:
            for p, g in zip(params, before):
                p._grad = g
        zero = self.zero
        status, J_fused, _ = self.run(X, rows, labels_int64, 0, zero, zero, False, (zero,) * 6)
        if status:
            return False
        same = (np.asarray(J).dtype == self.dtype
                and np.array_equal(np.asarray(self.dtype.type(J_fused)), J)
                and np.array_equal(self.zs[-1], H))
        return same and all(type(g) is np.ndarray and np.array_equal(g, mine)
                            for g, mine in zip(grads, self.grads))


def warm(dtypes=(np.float32, np.float64)):
    """Compile (or load from numba's cache) the loops a dense network's `fit` runs, for each
    dtype: a 784-16-10 network for one epoch on random numbers. `make` runs this once after
    installing, so the first `chainrule train` does not spend ~15 s compiling. Returns the
    number of fused steps run (0 when numba is missing)."""
    from .tensor_nets import MLP
    from .train import fit
    rng = np.random.default_rng(0)
    steps = 0
    for dtype in dtypes:
        X, y = rng.random((400, 784)).astype(dtype), rng.integers(0, 10, 400)
        model = MLP(784, [16, 10], activation="relu", dtype=dtype, seed=0)
        history = fit(model, X, y, cost="cross_entropy", l2=1e-4, l2_convention="sklearn",
                      batch_size=100, epochs=1, progress=False)
        steps += history.fused
    return steps


def main():
    """`make`'s warm-up after installing (see `warm`)."""
    import time
    start = time.perf_counter()
    done = warm()
    print(f"chainrule: compiled loops ready ({done} fused steps run, "
          f"{time.perf_counter() - start:.1f} s)")
