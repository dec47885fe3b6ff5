"""`chainrule predict MODEL IMAGE...`: classify image files with a model `chainrule train` saved.

The model is rebuilt from ``model.json`` (sizes, activations, dtype, class names, image shape)
and its weights loaded from ``model.npz``. Each IMAGE is a PNG/JPEG (read with Pillow, converted
to 8-bit grayscale) or an IDX file of images (every image in it is classified). Pixels are
scaled as the training data were: pixel / 255 into [0, 1], strokes bright on a dark background.
Images are never resized: one of the wrong size is an error naming both sizes.
"""
from __future__ import annotations

import argparse
import warnings

import numpy as np

from demos.cli import UserError
from demos.cmd_train import load_model, outputs

DESCRIPTION = """\
Classify images with a model written by `chainrule train` (MODEL is its model.npz, or the
folder holding it; model.json must sit beside it).

IMAGE: a PNG or JPEG (converted to grayscale) or an IDX file of images (raw or .gz, n × rows ×
cols, or one rows × cols image). Each image must have exactly the model's input size (28×28 for
MNIST / Fashion-MNIST, 8×8 for scikit-learn's digits): nothing is resized. Pixels are scaled as
the training data were: 8-bit value / 255 into [0, 1] (float IDX files are taken as they are).
The training images are light on dark; pass --invert for dark-on-light images (scanned ink on
paper): pixel → 255 − pixel. Transparent pixels are background: black, or white with --invert.

Prints one line per image: the file (and index in an IDX file), the predicted class and its
probability (softmax of the logits for a cross-entropy model; for a model trained with the
document's or the mse cost the output h_j of the winning unit, which is not a probability)."""


def add_parser(subparsers):
    p = subparsers.add_parser(
        "predict", help="classify PNG/JPEG/IDX images with a model saved by `chainrule train`",
        description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", metavar="MODEL", help="model.npz written by `chainrule train` "
                                                  "(or its folder)")
    p.add_argument("images", metavar="IMAGE", nargs="+",
                   help="PNG/JPEG image files or IDX files of images")
    p.add_argument("--invert", action="store_true",
                   help="dark-on-light images: use 255 − pixel (1 − value for float IDX)")
    p.add_argument("--top", type=int, default=1, metavar="K",
                   help="also print the K most likely classes (default 1)")
    p.set_defaults(run=run)
    return p


def _size(shape):
    return "×".join(str(s) for s in shape)


def _is_idx(path):
    """IDX files start with two zero bytes; a gzipped one with gzip's 1f 8b (a PNG or JPEG
    never does)."""
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError as error:
        raise UserError(f"{path}: cannot read ({error.strerror or error})") from None
    return head[:2] == b"\x00\x00" or (head[:2] == b"\x1f\x8b")


def read_images(path, shape, invert):
    """[(label for the line, pixels as a float row in [0, 1])] for one IMAGE argument."""
    from nn.data import DataError, read_idx

    rows, cols = shape
    if _is_idx(path):
        try:
            array = read_idx(path)
        except DataError as error:
            raise UserError(str(error)) from None
        if array.ndim == 2:
            array = array[None]
        if array.ndim == 3 and not len(array):
            raise UserError(f"{path}: the IDX file holds no images")
        if array.ndim != 3 or tuple(array.shape[1:]) != (rows, cols):
            got = _size(array.shape[1:]) if array.ndim == 3 else f"shape {array.shape}"
            raise UserError(f"{path}: IDX images are {got} but the model takes "
                            f"{_size(shape)} images")
        if array.dtype == np.uint8:
            X = array.reshape(len(array), -1) / 255.0
        elif array.dtype.kind == "f":
            X = array.reshape(len(array), -1).astype(np.float64)
            if not np.all(np.isfinite(X)):
                raise UserError(f"{path}: the IDX images hold NaN or inf values")
        else:
            raise UserError(f"{path}: IDX images of type {array.dtype} are not supported "
                            f"(unsigned bytes or floats)")
        if invert:
            X = 1.0 - X
        return [(f"{path}[{i}]", x) for i, x in enumerate(X)]
    from PIL import Image, UnidentifiedImageError
    try:
        # a picture far larger than the model's input is refused below by its size: Pillow's
        # warning about it is noise, and its error (at twice the limit) is the same refusal
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(path)
        with image:
            width, height = image.size
            if (height, width) != (rows, cols):
                raise UserError(f"{path}: image is {width}×{height} pixels but the model takes "
                                f"{cols}×{rows} images (resize it first; nothing is resized "
                                f"here)")
            # 16-bit grayscale: value / 65535 into [0, 1]; Pillow < 10.3 opens a 16-bit PNG as
            # "I" (a PNG has no 32-bit pixels)
            if image.mode.startswith("I;16") or (image.mode == "I" and image.format == "PNG"):
                pixels = np.asarray(image, dtype=np.float64) * (255.0 / 65535.0)
            elif image.mode in ("I", "F"):
                raise UserError(f"{path}: {'32-bit integer' if image.mode == 'I' else 'float'} "
                                f"pixels have no fixed range to scale into [0, 1]; save the "
                                f"image with 8- or 16-bit pixels")
            else:                                 # 8-bit grayscale, as the training pixels
                if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
                    # a transparent pixel is background: dark, or light for --invert's
                    # dark-on-light pictures (dropping alpha blanked alpha-only strokes)
                    background = Image.new("RGBA", image.size, (255,) * 4 if invert
                                           else (0, 0, 0, 255))
                    image = Image.alpha_composite(background, image.convert("RGBA"))
                pixels = np.asarray(image.convert("L"), dtype=np.float64)
    except Image.DecompressionBombError as error:
        raise UserError(f"{path}: image too large to read ({error}); the model takes "
                        f"{cols}×{rows} images") from None
    except UnidentifiedImageError:
        raise UserError(f"{path}: not a PNG/JPEG image Pillow can read, nor an IDX file") \
            from None
    except OSError as error:
        raise UserError(f"{path}: cannot read image ({error})") from None
    if invert:
        pixels = 255.0 - pixels
    return [(path, pixels.reshape(-1) / 255.0)]


def probabilities(H, cost):
    """Softmax of the logits for a cross-entropy model; else the outputs h themselves."""
    if cost == "cross_entropy":
        z = H - H.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)
    return H


def run(args):
    if args.top < 1:
        raise UserError(f"--top must be at least 1, got {args.top}")
    model, meta = load_model(args.model)
    shape = [int(s) for s in meta["image_shape"]]
    if len(shape) != 2:
        raise UserError(f"{args.model}: the model's input is not an image (shape {shape})")
    items = []
    for path in args.images:                 # every file is checked before anything is printed
        items.extend(read_images(path, shape, args.invert))
    names = meta["class_names"]
    # overflow is reported once, below, in one line (not as numpy's warnings first)
    with np.errstate(over="ignore", invalid="ignore"):
        X = np.stack([x for _, x in items]).astype(model.dtype)
        P = probabilities(outputs(model, X), meta.get("cost"))
    overflowed = np.flatnonzero(~np.isfinite(P).all(axis=1))
    if overflowed.size:         # name the image and its pixels: the usual cause, not the weights
        name, x = items[overflowed[0]]
        raise UserError(f"{name}: {args.model}'s outputs on it are not finite numbers (the "
                        f"network overflows; this image's pixels reach "
                        f"{np.max(np.abs(x)):.3g}, the training pixels were in [0, 1])")
    what = "probability" if meta.get("cost") == "cross_entropy" else "output h"
    print(f"model: {'-'.join(map(str, meta['sizes']))} trained on {meta['dataset']}; images "
          f"{_size(shape)}, pixel / 255 into [0, 1]"
          + (", inverted (255 − pixel)" if args.invert else "")
          + f"; {what} of the predicted class")
    width = max(len(label) for label, _ in items)
    for (label, _), p in zip(items, P):
        order = np.argsort(-p, kind="stable")[:min(args.top, len(p))]
        best = order[0]
        line = f"{label.ljust(width)}  {names[best]}  {what} {p[best]:.3f}"
        if args.top > 1:
            line += "   (" + ", ".join(f"{names[j]}: {p[j]:.3f}" for j in order) + ")"
        print(line)
    return 0
