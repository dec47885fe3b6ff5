"""Figures for `chainrule train` and `chainrule descent`, drawn with matplotlib's Agg canvas.

No display is ever opened: every figure is a bare ``matplotlib.figure.Figure`` (no pyplot, no
global state), and every file is written atomically — saved to a temporary file in the target
folder, then ``os.replace``d onto its name — so a reader never sees half a PNG and an interrupted
run leaves no stray files.
"""
from __future__ import annotations

import os

import numpy as np

from nn.fileio import atomic_file


def Figure(**kwargs):
    """A bare matplotlib Figure (Agg canvas when saved); matplotlib is imported on first use so
    that `chainrule` starts quickly."""
    from matplotlib.figure import Figure as _Figure
    return _Figure(**kwargs)


def save_figure(fig, path):
    """Write ``fig`` as a PNG to ``path`` atomically; returns the path."""
    path = os.fspath(path)
    with atomic_file(path) as f:
        fig.savefig(f, format="png", dpi=100)
    return path


# ---------------------------------------------------------------------------------------------
# chainrule train
# ---------------------------------------------------------------------------------------------

def training_curves(history, test_loss, test_accuracy, path, cost_name="J", l2=False):
    """Loss and accuracy per epoch: training (the epoch's mean J, with the L2 term when ``l2``,
    and the running accuracy over the epoch's batches, each scored before its update) and test
    (after the epoch: the cost without L2, and the accuracy). The
    legend says which curve includes the L2 term, so a large λ does not pass for overfitting's
    opposite."""
    epochs = np.arange(1, history.epochs + 1)
    fig = Figure(figsize=(10, 4), layout="constrained")
    ax_loss, ax_acc = fig.subplots(1, 2)
    penalty = (" + L2 term", ", without L2") if l2 else ("", "")
    ax_loss.plot(epochs, history.loss, "o-",
                 label=f"train (mean J over the epoch's batches{penalty[0]})")
    if test_loss:
        ax_loss.plot(epochs[:len(test_loss)], test_loss, "s--",
                     label=f"test (after the epoch{penalty[1]})")
    ax_loss.set(xlabel="epoch", ylabel=f"cost ({cost_name})", title="Loss per epoch")
    ax_loss.legend()
    if history.accuracy:
        ax_acc.plot(epochs, history.accuracy, "o-",
                    label="train (running, each batch before its update)")
    if test_accuracy:
        ax_acc.plot(epochs[:len(test_accuracy)], test_accuracy, "s--",
                    label="test (after the epoch)")
    ax_acc.set(xlabel="epoch", ylabel="accuracy", title="Accuracy per epoch")
    ax_acc.legend()
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.xaxis.get_major_locator().set_params(integer=True)
    return save_figure(fig, path)


def confusion_matrix(cm, class_names, path, title="Confusion matrix (test set)"):
    """cm[i, j] = test images of true class i predicted as class j."""
    k = len(class_names)
    fig = Figure(figsize=(1.0 + 0.55 * k, 0.8 + 0.5 * k), layout="constrained")
    ax = fig.subplots()
    im = ax.imshow(cm, cmap="Blues")
    fig.colorbar(im, ax=ax, shrink=0.8)
    ax.set_xticks(range(k), class_names, rotation=45, ha="right")
    ax.set_yticks(range(k), class_names)
    ax.set(xlabel="predicted", ylabel="true", title=title)
    threshold = cm.max() / 2 if cm.size else 0
    for i in range(k):
        for j in range(k):
            ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=8,
                    color="white" if cm[i, j] > threshold else "black")
    return save_figure(fig, path)


def misclassified(images, true, predicted, class_names, shape, path, limit=25):
    """A grid of up to ``limit`` misclassified test images, titled "predicted / true"."""
    wrong = np.flatnonzero(np.asarray(true) != np.asarray(predicted))[:limit]
    cols = 5
    rows = max(1, int(np.ceil(len(wrong) / cols)))
    fig = Figure(figsize=(2.0 * cols, 2.2 * rows + 0.4), layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, cols)).ravel()
    for ax in axes:
        ax.axis("off")
    for ax, i in zip(axes, wrong):
        ax.imshow(np.asarray(images[i]).reshape(shape), cmap="gray", vmin=0, vmax=1)  # as stored
        ax.set_title(f"pred {class_names[predicted[i]]}\ntrue {class_names[true[i]]}",
                     fontsize=8, color="crimson")
    fig.suptitle(f"Misclassified test images ({len(wrong)} shown of "
                 f"{int(np.sum(np.asarray(true) != np.asarray(predicted)))})")
    return save_figure(fig, path)


def first_layer_weights(W, shape, path, limit=100, hidden=True):
    """Columns of W^(1) (one per hidden unit) as images of the input's shape, on a common colour
    scale, like scikit-learn's "Visualization of MLP weights on MNIST"."""
    W = np.asarray(W)
    units = min(W.shape[1], limit)
    cols = int(np.ceil(np.sqrt(units)))
    rows = int(np.ceil(units / cols))
    vmin, vmax = W.min(), W.max()
    # at least 6.5 in wide, so the title fits over a few small units
    fig = Figure(figsize=(max(1.1 * cols, 6.5), 1.1 * rows + 0.5), layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, cols)).ravel()
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
        ax.axis("off")
    for j, ax in enumerate(axes[:units]):
        ax.imshow(W[:, j].reshape(shape), cmap="gray", vmin=0.5 * vmin, vmax=0.5 * vmax)
    what = "hidden units" if hidden else "output units\n(no hidden layer: one template per class)"
    fig.suptitle(f"First-layer weights W(1): {units} of {W.shape[1]} {what}")
    return save_figure(fig, path)


# ---------------------------------------------------------------------------------------------
# chainrule descent
# ---------------------------------------------------------------------------------------------

def descent_curves(runs, path, target=None, title="Batch, mini-batch and stochastic descent"):
    """``runs``: dicts with 'label', 'epoch_loss' (J after each epoch, J(0) first),
    'update_index' and 'update_loss' (J after those updates, update 0 first). Left: J vs
    epochs; right: J vs updates (log scale: full batch takes one update per epoch, stochastic
    n)."""
    fig = Figure(figsize=(11, 4.2), layout="constrained")
    ax_e, ax_u = fig.subplots(1, 2)
    for run in runs:
        ax_e.plot(np.arange(len(run["epoch_loss"])), run["epoch_loss"], label=run["label"])
        few = len(run["update_index"]) <= 12         # one full-batch update: still a mark
        ax_u.plot(run["update_index"][1:], run["update_loss"][1:], label=run["label"],
                  linewidth=1, marker="o" if few else None, markersize=4)
    ax_e.set(xlabel="epoch", ylabel="training cost J (whole training set)",
             title="J vs epochs")
    ax_e.xaxis.get_major_locator().set_params(integer=True)
    ax_u.set(xlabel="updates w = w − α ∂J/∂w (log scale)", ylabel="training cost J",
             title="J vs updates", xscale="log")
    for ax in (ax_e, ax_u):
        if target is not None:
            ax.axhline(target, color="gray", linestyle=":", label=f"target J = {target:g}")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    return save_figure(fig, path)
