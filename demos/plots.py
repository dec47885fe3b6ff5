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


def tile_images(images, shape, cols, gap=1, band=0):
    """Images side by side in one array: tile i at grid row i // cols, column i % cols, each
    ``shape`` (rows, columns), with ``gap`` pixels between tiles and a ``band`` of pixels above
    each row of tiles (room for the tiles' titles). Pixels outside the tiles are NaN, which the
    figures draw in the background colour. Returns (mosaic, tops): ``tops[i]`` is the (row,
    column) of tile i's top-left pixel."""
    h, w = shape
    n = len(images)
    rows = max(1, -(-n // cols))
    mosaic = np.full((rows * (band + h) + (rows - 1) * gap, cols * w + (cols - 1) * gap), np.nan)
    tops = []
    for i, image in enumerate(images):
        top = (i // cols) * (band + h + gap) + band
        left = (i % cols) * (w + gap)
        mosaic[top:top + h, left:left + w] = np.asarray(image, dtype=np.float64).reshape(shape)
        tops.append((top, left))
    return mosaic, tops


def _image_grid(mosaic, title, cmap, vmin, vmax, inches_per_pixel):
    """One Axes showing ``mosaic`` pixel for pixel at ``inches_per_pixel``, under ``title``:
    a grid of many small images costs one imshow, where an Axes per image took seconds."""
    import matplotlib
    margin = int(np.ceil(0.1 / inches_per_pixel))    # 0.1 in of background around the tiles
    mosaic = np.pad(mosaic, margin, constant_values=np.nan)
    height, width = mosaic.shape
    title_inches = 0.45
    fig_w = max(width * inches_per_pixel, 6.5)       # wide enough for the title
    fig_h = height * inches_per_pixel + title_inches
    fig = Figure(figsize=(fig_w, fig_h))
    # the Axes spans the mosaic's own aspect, centred when the title widened the figure
    ax_w = width * inches_per_pixel / fig_w
    ax = fig.add_axes(((1 - ax_w) / 2, 0, ax_w, 1 - title_inches / fig_h))
    colours = matplotlib.colormaps[cmap].with_extremes(bad="white")
    ax.imshow(mosaic, cmap=colours, vmin=vmin, vmax=vmax, interpolation="nearest",
              aspect="equal")
    ax.axis("off")
    fig.suptitle(title, y=1 - 0.08 / fig_h, va="top")
    return fig, ax, margin


def misclassified(images, true, predicted, class_names, shape, path, limit=25):
    """A grid of up to ``limit`` misclassified test images, titled "predicted / true"."""
    true, predicted = np.asarray(true), np.asarray(predicted)
    wrong = np.flatnonzero(true != predicted)
    shown = wrong[:limit]
    cols = max(1, min(5, len(shown)))
    # a tile 1.8 in on its longer side, 0.35 in above it for two 8-point title lines, 0.12 in
    # between tiles (a flat [1, n] "image" is a strip, not n × 1.8 in wide)
    scale = 1.8 / max(shape)
    band, gap = int(np.ceil(0.35 / scale)), int(np.ceil(0.12 / scale))
    mosaic, tops = tile_images([images[i] for i in shown], shape, cols, gap=gap, band=band)
    title = f"Misclassified test images ({len(shown)} shown of {len(wrong)})"
    fig, ax, margin = _image_grid(mosaic, title, "gray", 0, 1, scale)     # 0..1 as stored
    for i, (top, left) in zip(shown, tops):
        ax.text(margin + left + shape[1] / 2 - 0.5, margin + top - 0.5 - 0.05 / scale,
                f"pred {class_names[predicted[i]]}\ntrue {class_names[true[i]]}",
                ha="center", va="bottom", fontsize=8, color="crimson")
    if not len(shown):
        ax.text(0.5, 0.5, "none: every test image was classified correctly", ha="center",
                va="center", transform=ax.transAxes)
    return save_figure(fig, path)


def first_layer_weights(W, shape, path, limit=100, hidden=True):
    """Columns of W^(1) (one per hidden unit) as images of the input's shape, on a common colour
    scale (half the weights' range, clipped), like scikit-learn's "Visualization of MLP
    weights on MNIST"."""
    W = np.asarray(W)
    units = min(W.shape[1], limit)
    cols = int(np.ceil(np.sqrt(units)))
    scale = 1.0 / max(shape)                         # a tile 1 in on its longer side
    mosaic, _ = tile_images(W[:, :units].T, shape, cols, gap=int(np.ceil(0.1 / scale)))
    what = "hidden units" if hidden else "output units\n(no hidden layer: one template per class)"
    title = f"First-layer weights W(1): {units} of {W.shape[1]} {what}"
    fig, _, _ = _image_grid(mosaic, title, "gray", 0.5 * W.min(), 0.5 * W.max(), scale)
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
