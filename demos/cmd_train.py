"""`chainrule train`: train the document's network on the best digits at hand, and show it.

Data: MNIST if its four IDX files are in the data folder; else Fashion-MNIST from Debian's
``dataset-fashion-mnist`` package; else scikit-learn's bundled 8×8 digits — and the command says
which one it used and why. Then: a progress bar per epoch (``nn.train.fit``), the test accuracy,
a confusion matrix, the model (``model.npz``, written atomically by ``Module.save``) and its
sidecar ``model.json`` (architecture, activations, dtype, data set, class names, scaling), and
four figures: loss/accuracy curves, the confusion matrix, misclassified test images and the
first layer's weights as images. ``chainrule predict`` rebuilds the model from the two files.
"""
from __future__ import annotations

import argparse
import functools
import json
import os
import time

import numpy as np

from autograd import kernels
from demos.cli import UserError, output_folder, seed, staged_outputs
from nn import activations as nn_activations
from nn import losses as nn_losses
from nn.fileio import atomic_file

ACTIVATIONS = tuple(nn_activations.ACTIVATIONS)        # the names nn knows, in one place
COSTS = ("cross_entropy",) + tuple(c for c in nn_losses.COSTS if c != "cross_entropy")
DATASETS = ("auto", "mnist", "fashion", "digits")
MODEL_FILE = "model.npz"
SIDECAR_FORMAT = "chainrule-mlp"
FIGURES = ("curves.png", "confusion.png", "misclassified.png", "weights.png")

FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                   "Sneaker", "Bag", "Ankle boot")

# Per data set: how raw pixels became the numbers the network saw (predict does the same).
SCALING = {
    "mnist": "8-bit pixels / 255 into [0, 1], white strokes on black",
    "fashion-mnist": "8-bit pixels / 255 into [0, 1], white garments on black",
    "digits": "sklearn's 0..16 pixels / 16 into [0, 1], white strokes on black; an 8-bit "
              "image file is read as pixel / 255",
}
# Defaults that finish in seconds with a good accuracy (scikit-learn's MLPClassifier settings).
DEFAULT_EPOCHS = {"mnist": 3, "fashion-mnist": 3, "digits": 60}

DESCRIPTION = """\
Train the document's multilayer network on handwritten digits and classify the test set.

Data (--dataset auto): MNIST when its four IDX files are in --data-dir (default
$CHAINRULE_DATA/mnist, else ./data/mnist), else Fashion-MNIST when Debian's package
dataset-fashion-mnist is installed (/usr/share/datasets/fashion-mnist), else scikit-learn's
bundled 8×8 digits. Nothing is downloaded.

Defaults (scikit-learn's MLPClassifier): n_in-100-10, ReLU, softmax cross-entropy on the logits,
Adam α = 1e-3, mini-batches of 200, L2 1e-4 (sklearn convention); 3 epochs on MNIST /
Fashion-MNIST, 60 on the 8×8 digits. --cost document --activation sigmoid gives the document's
own network: J = 1/(2n) Σ‖y − h(x)‖² with sigmoid outputs.

Writes to --out: model.npz + model.json (for `chainrule predict`), curves.png,
confusion.png, misclassified.png, weights.png. Files are replaced atomically; an interrupted
run leaves the previous model and figures as they were."""


def add_parser(subparsers):
    p = subparsers.add_parser(
        "train", help="train the network on MNIST / Fashion-MNIST / 8×8 digits and plot it",
        description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    g = p.add_argument_group("data")
    g.add_argument("--dataset", default="auto", choices=DATASETS,
                   help="auto (default): the best available, as above; or force one")
    g.add_argument("--data-dir", default=None, metavar="DIR",
                   help="folder holding MNIST's IDX files (raw or .gz) (default "
                        "$CHAINRULE_DATA/mnist if set, else ./data/mnist)")
    g.add_argument("--limit", type=int, default=None, metavar="N",
                   help="train on the first N training images only (quick runs)")
    g = p.add_argument_group("network")
    g.add_argument("--hidden", default="100", metavar="N[,N...]",
                   help="hidden layer widths, comma-separated (default 100; 0 or \"\" for "
                        "no hidden layer: softmax regression)")
    g.add_argument("--activation", default="relu", choices=ACTIVATIONS,
                   help="f of the hidden layers (default relu)")
    g.add_argument("--output-activation", default=None, choices=ACTIVATIONS,
                   help="f of the output layer (default: identity for cross_entropy, which "
                        "takes logits; sigmoid for document and mse, as in the document)")
    g.add_argument("--dtype", default="float32", choices=("float32", "float64"),
                   help="floating-point type of weights and data (default float32)")
    g.add_argument("--engine", default="tensor", choices=("tensor", "delta"),
                   help="tensor: autograd's Tensor graph (default); delta: the document's "
                        "hand-derived δ formulas in plain numpy, driven by the same loop")
    g = p.add_argument_group("training")
    g.add_argument("--cost", default="cross_entropy", choices=COSTS,
                   help="cross_entropy (default): softmax cross-entropy; document: "
                        "J = 1/(2n) Σ‖y − h(x)‖²; mse: 1/(n·k) Σ(y − h)²")
    g.add_argument("--optimizer", default="adam", choices=("adam", "sgd"),
                   help="adam (default) or sgd: w = w − α ∂J/∂w (with --momentum)")
    g.add_argument("--lr", type=float, default=None, metavar="ALPHA",
                   help="learning rate α (default 1e-3 for adam, 0.1 for sgd)")
    g.add_argument("--momentum", type=float, default=0.0, metavar="MU",
                   help="momentum μ for sgd (default 0: the document's plain update)")
    g.add_argument("--batch-mode", default="mini-batch",
                   choices=("batch", "mini-batch", "stochastic"),
                   help="batch: the whole training set per update; mini-batch (default): "
                        "--batch-size rows; stochastic: one row per update")
    g.add_argument("--batch-size", type=int, default=None, metavar="N",
                   help="rows per mini-batch (default 200; only with --batch-mode mini-batch)")
    g.add_argument("--epochs", type=int, default=None, metavar="N",
                   help="passes over the training set (default 3 on MNIST / Fashion-MNIST, "
                        "60 on the 8×8 digits)")
    g.add_argument("--l2", type=float, default=1e-4, metavar="LAMBDA",
                   help="L2 weight decay λ on the weights W(l), never the biases (default 1e-4)")
    g.add_argument("--l2-convention", default="sklearn", choices=("ufldl", "nielsen", "sklearn"),
                   help="ufldl: λ/2·ΣW²; nielsen: λ/(2·n_train)·ΣW²; sklearn (default): "
                        "λ/(2·batch)·ΣW²")
    g.add_argument("--seed", type=seed, default=0,
                   help="seed for the initial weights and the shuffling (default 0)")
    g = p.add_argument_group("output")
    g.add_argument("--out", "--output", default=os.path.join("chainrule-output", "train"),
                   metavar="DIR",
                   help="folder for the model and the figures (default ./chainrule-output/train)")
    g.add_argument("--no-progress", action="store_true",
                   help="no progress bar (by default one is shown when stderr is a terminal)")
    p.set_defaults(run=run)
    return p


# ---------------------------------------------------------------------------------------------
# Arguments and data.
# ---------------------------------------------------------------------------------------------

def parse_hidden(text):
    """'100' → [100]; '128,64' → [128, 64]; '' or '0' → [] (no hidden layer)."""
    text = str(text).strip()
    if text in ("", "0"):
        return []
    try:
        sizes = [int(s) for s in text.split(",")]
    except ValueError:
        raise UserError(f"--hidden must be comma-separated whole numbers like 100 or 128,64, "
                        f"got {text!r}") from None
    if any(s < 1 for s in sizes):
        raise UserError(f"--hidden widths must be at least 1, got {text!r}")
    return sizes


def check_args(args):
    """Every argument error before any data is read or any file is written."""
    hidden = parse_hidden(args.hidden)
    output_activation = args.output_activation or (
        "identity" if args.cost == "cross_entropy" else "sigmoid")
    if args.cost == "cross_entropy" and output_activation != "identity":
        raise UserError(f"--cost cross_entropy takes logits: --output-activation must be "
                        f"identity, got {output_activation}")
    lr = args.lr if args.lr is not None else (1e-3 if args.optimizer == "adam" else 0.1)
    if not (np.isfinite(lr) and lr > 0):
        raise UserError(f"--lr must be a finite number > 0, got {lr}")
    if not 0 <= args.momentum < 1:
        raise UserError(f"--momentum must lie in [0, 1), got {args.momentum}")
    if args.momentum and args.optimizer != "sgd":
        raise UserError("--momentum applies to --optimizer sgd only")
    if args.batch_size is not None and args.batch_mode != "mini-batch":
        raise UserError(f"--batch-size applies to --batch-mode mini-batch only ({args.batch_mode} "
                        f"descent uses {'every row' if args.batch_mode == 'batch' else 'one row'}"
                        f" per update)")
    if args.batch_size is None:
        args.batch_size = 200
    if args.batch_size < 1:
        raise UserError(f"--batch-size must be at least 1, got {args.batch_size}")
    if args.epochs is not None and args.epochs < 1:
        raise UserError(f"--epochs must be at least 1, got {args.epochs}")
    if args.limit is not None and args.limit < 1:
        raise UserError(f"--limit must be at least 1, got {args.limit}")
    if not (np.isfinite(args.l2) and args.l2 >= 0):
        raise UserError(f"--l2 must be a finite number ≥ 0, got {args.l2}")
    return hidden, output_activation, lr


def mnist_dir(data_dir=None):
    if data_dir is not None:
        return os.fspath(data_dir)
    env = os.environ.get("CHAINRULE_DATA")
    return os.path.join(env, "mnist") if env else os.path.join("data", "mnist")


def _flattened(ds):
    """(ds with n × features rows, its images' [rows, cols]): the IDX loaders are asked for
    unflattened images so that the shape survives (36 pixels may be 12×3, not 6×6)."""
    from nn import data

    if ds.X_train.ndim == 2:                    # the 8×8 digits come flat
        return ds, image_shape(ds.X_train.shape[1])
    flat = data.Dataset(ds.X_train.reshape(len(ds.X_train), -1), ds.y_train,
                        ds.X_test.reshape(len(ds.X_test), -1), ds.y_test, ds.name, ds.source)
    return flat, list(ds.X_train.shape[1:])


def load_dataset(choice, data_dir, dtype):
    """(Dataset, its images' [rows, cols], reason): the data set asked for (or the best at
    hand) and why it was chosen."""
    from nn import data

    folder = mnist_dir(data_dir)
    debian = data.DEBIAN_FASHION_MNIST
    missing = data._missing(folder) if os.path.isdir(folder) else None
    have_mnist = missing == []
    # a folder with some of the files: say which are missing, not that there are none
    no_mnist = (f"no MNIST files in {folder}" if missing is None or len(missing) == len(
        data.IDX_FILES) else f"MNIST folder {folder} lacks {', '.join(missing)}")
    have_fashion = os.path.isdir(debian) and not data._missing(debian)
    try:
        if choice == "mnist" or (choice == "auto" and have_mnist):
            reason = ("MNIST files found in " + folder if choice == "auto"
                      else "--dataset mnist")
            ds = data.load_idx_folder(folder, "mnist", flatten=False, dtype=dtype)
        elif choice == "fashion":
            ds = data.load_fashion_mnist(flatten=False, dtype=dtype, progress=False)
            reason = "--dataset fashion"
        elif choice == "auto" and have_fashion:
            ds = data.load_idx_folder(debian, "fashion-mnist", flatten=False, dtype=dtype)
            reason = f"{no_mnist}; Debian's dataset-fashion-mnist is installed"
        else:
            ds = data.load_digits(dtype=dtype)
            reason = "--dataset digits" if choice == "digits" else (
                f"{no_mnist} and no Fashion-MNIST in {debian}")
    except data.DataError as error:
        raise UserError(str(error)) from None
    return (*_flattened(ds), reason)


def class_names(name, k):
    if name == "fashion-mnist" and k == len(FASHION_CLASSES):
        return list(FASHION_CLASSES)
    return [str(c) for c in range(k)]


def image_shape(n_features):
    side = int(round(np.sqrt(n_features)))
    return [side, side] if side * side == n_features else [1, n_features]


# ---------------------------------------------------------------------------------------------
# The model file and its sidecar (shared with `chainrule predict`).
# ---------------------------------------------------------------------------------------------

SIDECAR_KEYS = ("sizes", "activations", "dtype", "cost", "dataset", "class_names",
                "image_shape")


def write_json(path, obj):
    """json.dump to a temporary file beside ``path``, then os.replace."""
    with atomic_file(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2)
        f.write("\n")


def sidecar_path(model_path):
    model_path = os.fspath(model_path)
    stem = model_path[:-4] if model_path.endswith(".npz") else model_path
    return stem + ".json"


def _whole_numbers(meta, key):
    """meta[key] as a list of ints: 64.7 or "64" is a damaged sidecar, not 64."""
    values = meta[key]
    if not isinstance(values, list) or not all(isinstance(v, int) and not isinstance(v, bool)
                                               for v in values):
        raise ValueError(f"{key} {values!r} must be a list of whole numbers")
    return values


def load_model(model_path):
    """(nn.MLP with the saved weights, sidecar dict) or UserError in one line."""
    import nn

    model_path = os.fspath(model_path)
    if os.path.isdir(model_path):
        model_path = os.path.join(model_path, MODEL_FILE)
    if model_path.endswith(".json"):
        raise UserError(f"{model_path}: MODEL is the .npz file `chainrule train` wrote (or its "
                        f"folder), not its JSON sidecar")
    if not os.path.isfile(model_path):
        raise UserError(f"{model_path}: no such model file (write one with `chainrule train`)")
    meta_path = sidecar_path(model_path)
    try:
        with open(meta_path, encoding="utf-8") as f:
            meta = json.load(f)
    except FileNotFoundError:
        raise UserError(f"{meta_path}: missing (the sidecar `chainrule train` writes next to "
                        f"{os.path.basename(model_path)})") from None
    except (OSError, ValueError) as error:
        raise UserError(f"{meta_path}: not a readable JSON sidecar ({error})") from None
    try:
        if not isinstance(meta, dict):
            raise ValueError(f"a JSON {type(meta).__name__}, expected an object")
        if meta.get("format") != SIDECAR_FORMAT:
            raise ValueError(f"format is {meta.get('format')!r}, expected {SIDECAR_FORMAT!r}")
        missing = [key for key in SIDECAR_KEYS if key not in meta]
        if missing:
            raise ValueError(f"no {', '.join(repr(key) for key in missing)}")
        sizes, shape = _whole_numbers(meta, "sizes"), _whole_numbers(meta, "image_shape")
        if len(sizes) < 2 or min(sizes) < 1 or min(shape, default=0) < 1:
            raise ValueError(f"sizes {sizes} and image shape {shape} must be positive")
        # np.dtype(None) is float64, and MLP gives a short list's last layer identity
        dtype = np.dtype(meta["dtype"]) if isinstance(meta["dtype"], str) else None
        if dtype not in (np.float32, np.float64):
            raise ValueError(f"dtype {dtype} is not float32 or float64")
        activations = meta["activations"]
        if not isinstance(activations, list) or len(activations) != len(sizes) - 1:
            raise ValueError(f"activations {activations!r} must name one per layer "
                             f"({len(sizes) - 1} for sizes {sizes})")
        names = meta["class_names"]
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise ValueError(f"class_names {names!r} must be a list of names")
        if len(names) != sizes[-1] or int(np.prod(shape)) != sizes[0]:
            raise ValueError(f"{len(names)} class names and image shape {shape} do not fit "
                             f"sizes {sizes}")
        if not isinstance(meta["dataset"], str) or meta["cost"] not in ("document", "mse",
                                                                         "cross_entropy"):
            raise ValueError(f"dataset {meta['dataset']!r} or cost {meta['cost']!r} unknown")
    except (KeyError, TypeError, ValueError) as error:
        raise UserError(f"{meta_path}: not a chainrule model sidecar ({error})") from None
    from nn.module import load_arrays
    try:
        arrays = load_arrays(model_path)
    except nn.ModelFileError as error:               # the file itself: unreadable, truncated
        raise UserError(str(error)) from None
    # the arrays' shapes before the network is built: sizes that disagree (or are absurd) are
    # an error naming both files, not a MemoryError
    for l, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        for name, want in (("W", (fan_in, fan_out)), ("b", (fan_out,))):
            got = getattr(arrays.get(f"layers.{l}.{name}"), "shape", None)
            if got != want:
                raise UserError(f"{model_path}: does not match {os.path.basename(meta_path)} "
                                f"(layers.{l}.{name} has shape {got}, sizes {sizes} need "
                                f"{want})")
    if not all(np.all(np.isfinite(a)) for a in arrays.values()):
        raise UserError(f"{model_path}: holds NaN or inf weights (a run that diverged?)")
    try:
        model = nn.MLP(sizes[0], sizes[1:], activation=list(meta["activations"]), dtype=dtype)
        model.load_state_dict(arrays)
    except nn.ModelFileError as error:
        raise UserError(f"{model_path}: does not match {os.path.basename(meta_path)} "
                        f"({error})") from None
    except (TypeError, ValueError) as error:          # activations the sidecar names
        raise UserError(f"{meta_path}: not a chainrule model sidecar ({error})") from None
    return model.eval(), meta


def save_model(model, meta, folder):
    """model.npz (Module.save) and model.json, each replaced atomically."""
    model_path = os.path.join(folder, MODEL_FILE)
    model.save(model_path)
    write_json(sidecar_path(model_path), meta)
    return model_path


# ---------------------------------------------------------------------------------------------
# Training.
# ---------------------------------------------------------------------------------------------


def _epoch_rate(epoch_seconds, total):
    """'0.32 s/epoch', or, when the first epoch took markedly longer (it traces the step and,
    on a first run, compiles the fused loops), '0.32 s/epoch after the first, which took
    1.25 s': the rate a longer run would see. Time spent outside the epochs (loading numba's
    compiled loops before the first, the test set's evaluation after each) is named apart
    when it is more than half a second."""
    later = float(np.median(epoch_seconds[1:] or epoch_seconds))
    if len(epoch_seconds) >= 2 and epoch_seconds[0] > 1.5 * later:
        text = f"{later:.2f} s/epoch after the first, which took {epoch_seconds[0]:.2f} s"
    else:
        text = f"{float(np.median(epoch_seconds)):.2f} s/epoch"
    besides = total - sum(epoch_seconds)
    if besides > 0.5:
        text += f", and {besides:.1f} s besides (set-up, the test set after each epoch)"
    return text


def _weights(network, engine):
    """W^(1), …, W^(L) as arrays, for either engine."""
    if engine == "delta":
        return list(network.weights)
    return [layer.W.data for layer in network.layers]


def build_network(engine, sizes, activations, cost, l2, l2_convention, seed, dtype):
    import nn

    if engine == "delta":
        from nn.delta import DeltaNetwork
        return DeltaNetwork.init(sizes, activations, cost=cost, seed=seed, dtype=dtype, l2=l2,
                                 l2_convention=l2_convention)
    return nn.MLP(sizes[0], sizes[1:], activation=activations, seed=seed, dtype=dtype)


def as_mlp(network, dtype):
    """The trained network as an nn.MLP (a DeltaNetwork's arrays copied into one), for saving."""
    import nn
    from nn.delta import DeltaNetwork

    if not isinstance(network, DeltaNetwork):
        return network
    sizes = [network.weights[0].shape[0]] + [W.shape[1] for W in network.weights]
    mlp = nn.MLP(sizes[0], sizes[1:], activation=list(network.activations), dtype=dtype)
    mlp.load_state_dict({f"layers.{l}.{name}": p
                         for l, (W, b) in enumerate(zip(network.weights, network.biases))
                         for name, p in (("W", W), ("b", b))})
    return mlp


def outputs(network, X):
    """h(x) for a batch, whichever engine."""
    from autograd import Tensor, no_grad
    from nn.delta import DeltaNetwork

    if isinstance(network, DeltaNetwork):
        return network.output(X)
    with no_grad():
        return network(Tensor(X, dtype=network.dtype)).data


def test_cost(cost, H, y, k):
    """The cost of outputs H on labels y, without the L2 term (plain numpy)."""
    if cost == "cross_entropy":
        z = H - H.max(axis=1, keepdims=True)
        log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        return float(-log_p[np.arange(len(y)), y].mean())
    Y = np.eye(k)[y]
    if cost == "document":
        return float(0.5 * ((Y - H) ** 2).sum(axis=1).mean())
    return float(((Y - H) ** 2).mean())


def confusion(y_true, y_pred, k):
    cm = np.zeros((k, k), dtype=np.int64)
    np.add.at(cm, (y_true, y_pred), 1)
    return cm


def format_confusion(cm, names):
    """The confusion matrix as text: rows true class, columns predicted class."""
    k = len(names)
    short = [str(c) for c in range(k)]
    rows = names if list(names) == short else [f"{i} {n}" for i, n in enumerate(names)]
    width = max(5, len(str(cm.max())) + 1)
    label_width = max(len(r) for r in rows)
    lines = ["confusion matrix (rows: true class, columns: predicted class)",
             " " * label_width + "".join(s.rjust(width) for s in short) + "  recall"]
    for i in range(k):
        total = cm[i].sum()
        recall = f"{cm[i, i] / total:7.3f}" if total else "      —"
        lines.append(rows[i].ljust(label_width)
                     + "".join(str(v).rjust(width) for v in cm[i]) + " " + recall)
    return "\n".join(lines)


def run(args):
    import nn

    hidden, output_activation, lr = check_args(args)
    output_folder(args.out)
    dtype = np.dtype(args.dtype)
    ds, shape, reason = load_dataset(args.dataset, args.data_dir, dtype)
    X_train, y_train = ds.X_train, ds.y_train
    if args.limit is not None:
        X_train, y_train = X_train[:args.limit], y_train[:args.limit]
    k = ds.n_classes
    names = class_names(ds.name, k)
    n_train = len(X_train)
    epochs = args.epochs or DEFAULT_EPOCHS.get(ds.name, 10)
    batch = {"batch": n_train, "stochastic": 1}.get(args.batch_mode,
                                                     min(args.batch_size, n_train))
    sizes = [ds.X_train.shape[1]] + hidden + [k]
    activations = [args.activation] * len(hidden) + [output_activation]

    print(f"data: {ds.name} ({reason}), from {ds.source}")
    print(f"      {n_train} training and {len(ds.X_test)} test images of "
          f"{'×'.join(map(str, shape))} pixels, {k} classes; {SCALING.get(ds.name, '')}")
    network = build_network(args.engine, sizes, activations, args.cost, args.l2,
                            args.l2_convention, args.seed, dtype)
    if args.optimizer == "adam":
        optimizer = functools.partial(nn.Adam, lr=lr)
        opt_text = f"Adam(α={lr:g})"
    else:
        optimizer = functools.partial(nn.SGD, lr=lr, momentum=args.momentum)
        opt_text = f"SGD(α={lr:g}" + (f", μ={args.momentum:g})" if args.momentum else ")")
    print(f"network: {'-'.join(map(str, sizes))}, activations {', '.join(activations)}, "
          f"{dtype.name}, engine {args.engine}")
    print(f"training: cost {args.cost}, {opt_text}, {args.batch_mode} descent "
          f"(batch {batch}), L2 {args.l2:g} ({args.l2_convention}), {epochs} epochs, "
          f"seed {args.seed}")

    test_loss, test_acc = [], []

    def after_epoch(history):            # the test set's cost and accuracy after each epoch
        H = outputs(network, ds.X_test)
        test_loss.append(test_cost(args.cost, H, ds.y_test, k))
        test_acc.append(float(np.mean(H.argmax(axis=1) == ds.y_test)))

    fit_args = {} if args.engine == "delta" else {
        "cost": args.cost, "l2": args.l2, "l2_convention": args.l2_convention}
    start = time.perf_counter()
    try:
        # overflow is reported once, below, as a diverged run (not as numpy warnings)
        with np.errstate(over="ignore", invalid="ignore"):
            history = nn.train.fit(network, X_train, y_train, optimizer=optimizer,
                                   batch_size=batch, epochs=epochs, seed=args.seed,
                                   callback=after_epoch,
                                   progress=False if args.no_progress else None, **fit_args)
    except ValueError as error:
        raise UserError(str(error)) from None
    seconds = time.perf_counter() - start
    bad = [e for e, value in enumerate(history.loss, start=1) if not np.isfinite(value)]
    if bad or not all(np.all(np.isfinite(W)) for W in _weights(network, args.engine)):
        when = f"the loss became {history.loss[bad[0] - 1]} in epoch {bad[0]}" if bad else \
            "the weights overflowed"
        raise UserError(f"training diverged: {when}; nothing was saved (try a smaller --lr)")

    H = outputs(network, ds.X_test)
    predicted = H.argmax(axis=1)
    accuracy = float(np.mean(predicted == ds.y_test))
    cm = confusion(ds.y_test, predicted, k)
    fused = "; fused numba loops for the update, L2 and relu′" if kernels.in_use() else ""
    epochs_done = f"{history.epochs} epoch" + ("" if history.epochs == 1 else "s")
    print(f"trained {epochs_done}, {history.updates[-1]} updates in {seconds:.1f} s "
          f"({_epoch_rate(history.seconds, seconds)}{fused}); final training "
          f"loss {history.loss[-1]:.4f}, training accuracy {history.accuracy[-1]:.4f}")
    if history.fused:
        print(f"autograd built the graph and ran its backward pass for the first batch of each "
              f"shape; the other {history.fused} ran those ops, VJPs and the optimiser's update "
              f"as one compiled call per batch (nn.fused: checked against the replayed step "
              f"bit for bit, the same numbers)")
    elif history.replayed:
        print(f"autograd built the graph and ran its backward pass for the first batch of each "
              f"shape, then replayed those ops and VJPs for the other {history.replayed} "
              f"(autograd.trace: the same numbers, no graph built per batch)")
    print(f"test accuracy: {accuracy:.4f} ({int(np.sum(predicted == ds.y_test))} of "
          f"{len(ds.y_test)})")
    print(format_confusion(cm, names))

    meta = {
        "format": SIDECAR_FORMAT, "version": 1,
        "sizes": sizes, "activations": activations, "dtype": dtype.name,
        "cost": args.cost, "outputs": "logits (softmax gives probabilities)"
        if args.cost == "cross_entropy" else f"{output_activation} outputs h(x)",
        "dataset": ds.name, "source": ds.source, "class_names": names, "image_shape": shape,
        "scaling": SCALING.get(ds.name, "as the training data"),
        "engine": args.engine, "optimizer": opt_text, "batch_size": batch, "epochs":
        history.epochs, "l2": args.l2, "l2_convention": args.l2_convention, "seed": args.seed,
        "n_train": n_train, "test_accuracy": accuracy,
    }
    out = args.out
    from demos import plots
    W1 = _weights(network, args.engine)[0]
    # the model, its sidecar and the figures replace the previous run's together
    with staged_outputs(out) as staging:
        save_model(as_mlp(network, dtype), meta, staging)
        written = [
            plots.training_curves(history, test_loss, test_acc,
                                  os.path.join(staging, FIGURES[0]), cost_name=args.cost,
                                  l2=bool(args.l2)),
            plots.confusion_matrix(cm, names, os.path.join(staging, FIGURES[1]),
                                   title=f"Confusion matrix, {ds.name} test set "
                                         f"(accuracy {accuracy:.3f})"),
            plots.misclassified(ds.X_test, ds.y_test, predicted, names, shape,
                                os.path.join(staging, FIGURES[2])),
            plots.first_layer_weights(W1, shape, os.path.join(staging, FIGURES[3]),
                                      hidden=len(sizes) > 2),
        ]
    model_path = os.path.join(out, MODEL_FILE)
    print(f"model: {model_path} (+ {os.path.basename(sidecar_path(model_path))}); "
          f"try: chainrule predict {model_path} IMAGE.png")
    print(f"figures in {os.path.abspath(out)}: {', '.join(os.path.basename(p) for p in written)}")
    return 0
