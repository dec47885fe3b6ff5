"""`chainrule train` and `chainrule predict` end to end, on scikit-learn's 8×8 digits (fast)."""
import contextlib
import fcntl
import io
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import warnings

import numpy as np
import pytest
from PIL import Image

import nn
from demos import cmd_train
from demos.cli import main
from nn.data import load_digits, write_idx

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
FIGURES = ("curves.png", "confusion.png", "misclassified.png", "weights.png")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One training run shared by the tests: (exit status, stdout, output folder)."""
    out = tmp_path_factory.mktemp("train")
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        status = main(["train", "--dataset", "digits", "--epochs", "3", "--no-progress",
                       "--out", str(out)])
    return status, buffer.getvalue(), out


def run_cli(capsys, *argv):
    status = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def digit_png(path, row):
    """Write a test digit (values in [0, 1]) as an 8-bit 8×8 grayscale PNG."""
    Image.fromarray(np.round(row.reshape(8, 8) * 255).astype(np.uint8), mode="L").save(path)


def test_train_reports_data_confusion_and_writes_files(trained):
    status, out, folder = trained
    assert status == 0
    assert "data: digits (--dataset digits)" in out
    assert "test accuracy:" in out
    assert "confusion matrix" in out
    # (replayed, or fused when another test in this process has loaded numba)
    assert re.search(r"replayed those ops and VJPs for the other [1-9]\d* \(autograd.trace"
                     r"|the other [1-9]\d* ran those ops, VJPs and the optimiser's update", out)
    assert str(folder) in out
    for name in ("model.npz", "model.json") + FIGURES:
        path = folder / name
        assert path.is_file() and path.stat().st_size > 0, name
    for name in FIGURES:
        assert (folder / name).read_bytes()[:8] == PNG_MAGIC, name
    assert not [f for f in os.listdir(folder) if f.startswith(".")]   # no temporary files


def test_predict_png_prints_label_and_probability(trained, tmp_path, capsys):
    folder = trained[2]
    ds = load_digits()
    image = tmp_path / "digit.png"
    digit_png(image, ds.X_test[0])
    status, out, err = run_cli(capsys, "predict", folder / "model.npz", image)
    assert status == 0, err
    line = [l for l in out.splitlines() if l.startswith(str(image))][0]
    label, _, probability = line.split()[1:4]
    assert label in [str(d) for d in range(10)]
    assert 0.0 <= float(probability) <= 1.0


def test_predict_idx_classifies_each_image(trained, tmp_path, capsys):
    ds = load_digits()
    idx = tmp_path / "images-idx3-ubyte"
    write_idx(idx, np.round(ds.X_test[:3].reshape(3, 8, 8) * 255).astype(np.uint8))
    status, out, err = run_cli(capsys, "predict", trained[2], idx)
    assert status == 0, err
    assert all(f"{idx}[{i}]" in out for i in range(3))


def test_predict_model_of_another_architecture(trained, tmp_path, capsys):
    folder = tmp_path / "other"
    shutil.copytree(trained[2], folder)
    nn.MLP(64, [20, 10], dtype=np.float32).save(folder / "model.npz")   # sidecar says 64-100-10
    status, out, err = run_cli(capsys, "predict", folder / "model.npz", tmp_path / "x.png")
    assert status == 2
    assert len(err.strip().splitlines()) == 1
    assert "model.npz" in err and "shape" in err


def test_predict_wrong_size_image(trained, tmp_path, capsys):
    image = tmp_path / "big.png"
    Image.fromarray(np.zeros((28, 28), np.uint8), mode="L").save(image)
    status, out, err = run_cli(capsys, "predict", trained[2] / "model.npz", image)
    assert status == 2
    assert "big.png" in err and "28×28" in err and "8×8" in err
    assert len(err.strip().splitlines()) == 1


def broken_copy(trained, tmp_path, model_bytes=None, sidecar=None):
    """A copy of the trained model folder with model.npz and/or model.json replaced."""
    folder = tmp_path / "broken"
    shutil.copytree(trained[2], folder)
    if model_bytes is not None:
        (folder / "model.npz").write_bytes(model_bytes(folder / "model.npz"))
    if sidecar is not None:
        (folder / "model.json").write_text(sidecar(folder / "model.json"))
    return folder


@pytest.mark.parametrize("case, message", [
    ("truncated npz", "truncated"),
    ("text as npz", "not an .npz archive"),
    ("sidecar is a list", "a JSON list"),
    ("sidecar dtype int8", "dtype int8"),
    ("sidecar as MODEL", "not its JSON sidecar"),
    ("sidecar without dataset", "no 'dataset'"),
    ("absurd sizes", "does not match model.json"),
    ("negative image shape", "must be positive"),
    ("infinite image shape", "image_shape [inf, 8] must be a list of whole numbers"),
    ("fractional sizes", "sizes [64.7, 100, 10] must be a list of whole numbers"),
    ("class names as one string", "class_names '0123456789' must be a list of names"),
    ("one activation for two layers", "must name one per layer (2 for sizes"),
    ("dtype null", "dtype None is not float32"),
    ("nan weights", "NaN or inf weights"),
    ("text weights", "layers.0.W holds <U"),
    ("a text member", "notes.txt holds raw bytes"),
])
def test_predict_broken_model_files_are_one_line_errors(trained, tmp_path, capsys, case,
                                                        message):
    import json
    edit = {
        "truncated npz": dict(model_bytes=lambda p: p.read_bytes()[:300]),
        "text as npz": dict(model_bytes=lambda p: b"hello\n"),
        "sidecar is a list": dict(sidecar=lambda p: "[1, 2]"),
        "sidecar dtype int8": dict(sidecar=lambda p: json.dumps(
            {**json.loads(p.read_text()), "dtype": "int8"})),
        "sidecar as MODEL": {},
        "sidecar without dataset": dict(sidecar=lambda p: json.dumps(
            {k: v for k, v in json.loads(p.read_text()).items() if k != "dataset"})),
        "absurd sizes": dict(sidecar=lambda p: json.dumps(
            {**json.loads(p.read_text()), "sizes": [64, 10 ** 12, 10]})),
        "negative image shape": dict(sidecar=lambda p: json.dumps(
            {**json.loads(p.read_text()), "image_shape": [-8, -8]})),
        "infinite image shape": dict(sidecar=lambda p: json.dumps(
            {**json.loads(p.read_text()), "image_shape": [float("inf"), 8]})),
        "fractional sizes": dict(sidecar=lambda p: json.dumps(
            {**json.loads(p.read_text()), "sizes": [64.7, 100, 10]})),
        "class names as one string": dict(sidecar=lambda p: json.dumps(
            {**json.loads(p.read_text()), "class_names": "0123456789"})),
        "one activation for two layers": dict(sidecar=lambda p: json.dumps(
            {**json.loads(p.read_text()), "activations": ["relu"]})),
        "dtype null": dict(sidecar=lambda p: json.dumps(
            {**json.loads(p.read_text()), "dtype": None})),
        "nan weights": dict(model_bytes=lambda p: _nan_model(p)),
        "text weights": dict(model_bytes=lambda p: _edited_model(
            p, lambda a: a.update({"layers.0.W": a["layers.0.W"].astype(str)}))),
        "a text member": dict(model_bytes=lambda p: _edited_model(p, extra=b"hello")),
    }[case]
    folder = broken_copy(trained, tmp_path, **edit)
    image = tmp_path / "digit.png"
    digit_png(image, load_digits().X_test[0])
    model = folder / ("model.json" if case == "sidecar as MODEL" else "model.npz")
    status, out, err = run_cli(capsys, "predict", model, image)
    assert status == 2, err
    assert err.startswith("chainrule predict: error:") and message in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_predict_scales_16_bit_images_like_8_bit_ones(trained, tmp_path, capsys):
    row = load_digits().X_test[0]
    eight, sixteen = tmp_path / "d8.png", tmp_path / "d16.png"
    digit_png(eight, row)
    pixels = np.round(row.reshape(8, 8) * 255).astype(np.uint16) * 257    # v/255 = 257v/65535
    Image.fromarray(pixels).save(sixteen)
    assert Image.open(sixteen).mode in ("I;16", "I")      # "I": Pillow < 10.3's 16-bit PNG
    status, out, err = run_cli(capsys, "predict", trained[2], eight, sixteen)
    assert status == 0, err
    lines = {l.split()[0]: l.split()[1:] for l in out.splitlines() if l.startswith(str(tmp_path))}
    assert lines[str(eight)] == lines[str(sixteen)]


def test_predict_puts_transparent_pixels_on_the_background(trained, tmp_path, capsys):
    """A digit drawn only in the alpha channel (white or black paint on a transparent
    canvas) reads as the grayscale digit: on black as it is, on white with --invert."""
    row = load_digits().X_test[0]
    gray, light, dark = tmp_path / "gray.png", tmp_path / "light.png", tmp_path / "dark.png"
    digit_png(gray, row)
    alpha = np.round(row.reshape(8, 8) * 255).astype(np.uint8)
    for path, paint in ((light, 255), (dark, 0)):
        rgba = np.zeros((8, 8, 4), np.uint8)
        rgba[..., :3], rgba[..., 3] = paint, alpha
        Image.fromarray(rgba, mode="RGBA").save(path)
    outputs = {}
    for args in ((gray, light), ("--invert", dark)):
        status, out, err = run_cli(capsys, "predict", trained[2], *args)
        assert status == 0, err
        outputs.update({l.split()[0]: l.split()[1:] for l in out.splitlines()
                        if l.startswith(str(tmp_path))})
    assert outputs[str(light)] == outputs[str(gray)] == outputs[str(dark)]


def test_predict_a_decompression_bomb_is_a_one_line_error(trained, tmp_path, capsys,
                                                          monkeypatch):
    # 8×8 = 64 pixels: past twice Pillow's limit it raises, past the limit it only warns
    image = tmp_path / "huge.png"
    digit_png(image, load_digits().X_test[0])
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 20)
    status, out, err = run_cli(capsys, "predict", trained[2], image)
    assert status == 2 and "image too large to read" in err and str(image) in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 40)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        status, out, err = run_cli(capsys, "predict", trained[2], image)
    assert status == 0 and not err, err


@pytest.mark.parametrize("argv, message", [
    (("check", "--seed", "-1"), "--seed: must be a whole number"),
    (("train", "--seed", "x"), "--seed: must be a whole number"),
    (("train", "--activation", "foo"), "invalid choice"),
])
def test_argument_errors_are_one_line(capsys, argv, message):
    with pytest.raises(SystemExit) as info:
        main(list(argv))
    err = capsys.readouterr().err
    assert info.value.code == 2 and message in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("command", ["train", "descent", "gallery", "walkthrough"])
def test_out_that_is_a_file_is_a_one_line_error(tmp_path, capsys, command):
    taken = tmp_path / "taken"
    taken.write_text("mine")
    status, out, err = run_cli(capsys, command, "--out", taken)
    assert status == 2 and "a file of that name exists" in err and "--out" in err
    assert len(err.strip().splitlines()) == 1 and taken.read_text() == "mine"


@pytest.mark.parametrize("command", ["train", "descent", "gallery", "walkthrough"])
def test_output_is_another_name_for_out(command):
    # without it, argparse took train's "--output DIR" for --output-activation's abbreviation
    from demos.cli import build_parser
    args = build_parser().parse_args([command, "--output", "somewhere"])
    assert args.out == "somewhere"


@pytest.mark.parametrize("command", ["train", "descent", "gallery", "walkthrough"])
def test_an_empty_out_is_a_one_line_error_before_any_work(tmp_path, capsys, monkeypatch,
                                                          command):
    monkeypatch.chdir(tmp_path)
    status, out, err = run_cli(capsys, command, "--out", "")
    assert status == 2 and "--out '': no folder named" in err, err
    assert len(err.strip().splitlines()) == 1 and not out and not os.listdir(tmp_path)


def test_predict_truncated_idx(trained, tmp_path, capsys):
    idx = tmp_path / "cut-idx3-ubyte"
    write_idx(idx, np.zeros((4, 8, 8), np.uint8))
    idx.write_bytes(idx.read_bytes()[:-10])
    status, out, err = run_cli(capsys, "predict", trained[2] / "model.npz", idx)
    assert status == 2
    assert "cut-idx3-ubyte" in err and "truncated" in err
    assert len(err.strip().splitlines()) == 1


def test_forced_mnist_without_files(tmp_path, capsys):
    empty, out_dir = tmp_path / "empty", tmp_path / "out"
    empty.mkdir()
    status, out, err = run_cli(capsys, "train", "--dataset", "mnist", "--data-dir", empty,
                               "--out", out_dir, "--no-progress")
    assert status == 2
    assert "train-images-idx3-ubyte" in err and "t10k-labels-idx1-ubyte" in err
    assert len(err.strip().splitlines()) == 1
    assert not out_dir.exists()                          # no partial files


def _nan_model(path):
    arrays = dict(np.load(path))
    arrays["layers.0.W"][0, 0] = np.nan
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def _edited_model(path, edit=lambda arrays: None, extra=None):
    """The .npz at ``path`` with its arrays edited, and with a non-array member ``extra``."""
    import zipfile
    arrays = dict(np.load(path))
    edit(arrays)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    if extra is not None:
        with zipfile.ZipFile(buffer, "a") as archive:
            archive.writestr("notes.txt", extra)
    return buffer.getvalue()


def test_predict_reads_idx_by_content_and_refuses_empty_or_nan_files(trained, tmp_path, capsys):
    import gzip
    ds = load_digits()
    pixels = np.round(ds.X_test[:3].reshape(3, 8, 8) * 255).astype(np.uint8)
    write_idx(tmp_path / "plain.idx", pixels)
    raw = (tmp_path / "plain.idx").read_bytes()
    (tmp_path / "zipped.idx").write_bytes(gzip.compress(raw))     # gzipped, named .idx
    (tmp_path / "raw.idx.gz").write_bytes(raw)                    # raw, named .gz
    for name in ("zipped.idx", "raw.idx.gz"):
        status, out, err = run_cli(capsys, "predict", trained[2], tmp_path / name)
        assert status == 0, err
        assert len([l for l in out.splitlines() if f"{name}[" in l]) == 3
    write_idx(tmp_path / "empty.idx", np.zeros((0, 8, 8), np.uint8))
    floats = np.full((1, 8, 8), np.nan)
    write_idx(tmp_path / "nan.idx", floats)
    for name, message in (("empty.idx", "holds no images"), ("nan.idx", "NaN or inf")):
        status, out, err = run_cli(capsys, "predict", trained[2], tmp_path / name)
        assert status == 2 and message in err and len(err.strip().splitlines()) == 1, err


def test_predict_float_images_that_overflow_the_model_are_one_line(trained, tmp_path, capsys):
    write_idx(tmp_path / "huge.idx", np.full((1, 8, 8), 1e300))
    with warnings.catch_warnings():
        warnings.simplefilter("error")          # numpy's overflow warnings would be lines too
        status, out, err = run_cli(capsys, "predict", trained[2], tmp_path / "huge.idx")
    assert status == 2 and "huge.idx[0]: " in err and "not finite numbers" in err, err
    assert "pixels reach 1e+300" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_a_diverged_run_saves_nothing(tmp_path, capsys):
    status, out, err = run_cli(capsys, "train", "--dataset", "digits", "--epochs", "2",
                               "--optimizer", "sgd", "--lr", "1e30", "--no-progress",
                               "--out", tmp_path / "d")
    assert status == 2 and "training diverged" in err and "nothing was saved" in err
    assert len(err.strip().splitlines()) == 1                  # no numpy warnings before it
    assert not (tmp_path / "d").exists()


def test_a_failure_while_writing_keeps_the_previous_outputs_together(trained, tmp_path, capsys,
                                                                     monkeypatch):
    """The model, its sidecar and the figures are replaced together: a failure after the new
    model is written leaves the previous set, not a new model.npz beside an old sidecar."""
    import demos.plots
    folder = tmp_path / "run"
    shutil.copytree(trained[2], folder)
    before = {name: (folder / name).read_bytes() for name in os.listdir(folder)}

    def broken(*args, **kwargs):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(demos.plots, "misclassified", broken)
    status, out, err = run_cli(capsys, "train", "--dataset", "digits", "--epochs", "1",
                               "--hidden", "20", "--out", folder, "--no-progress")
    assert status == 2 and "No space left on device" in err
    after = {name: (folder / name).read_bytes() for name in os.listdir(folder)}
    assert after == before


def test_interrupted_training_keeps_previous_model(trained, tmp_path, capsys, monkeypatch):
    folder = tmp_path / "run"
    shutil.copytree(trained[2], folder)
    before = {name: (folder / name).read_bytes() for name in os.listdir(folder)}
    real_fit = nn.train.fit

    def interrupted_fit(*args, callback=None, **kwargs):
        def after_epoch(history):
            if callback is not None:
                callback(history)
            if history.epochs >= 1:
                raise KeyboardInterrupt
        return real_fit(*args, callback=after_epoch, **kwargs)

    monkeypatch.setattr(nn.train, "fit", interrupted_fit)
    status, out, err = run_cli(capsys, "train", "--dataset", "digits", "--epochs", "3",
                               "--hidden", "20", "--out", folder, "--no-progress")
    assert status == 130
    after = {name: (folder / name).read_bytes() for name in os.listdir(folder)}
    assert after == before                               # same files, same bytes, no temp files


def test_batch_size_outside_mini_batch_mode_is_an_error(capsys, tmp_path):
    status, out, err = run_cli(capsys, "train", "--dataset", "digits", "--batch-mode",
                               "stochastic", "--batch-size", "50", "--out", tmp_path / "o")
    assert status == 2 and "--batch-size applies to --batch-mode mini-batch only" in err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("loaded", [False, True])
def test_train_says_when_the_updates_ran_compiled(monkeypatch, capsys, tmp_path, loaded):
    from autograd import kernels
    if loaded:
        from autograd import _compiled
        monkeypatch.setattr(kernels, "_loaded", _compiled)
    else:
        monkeypatch.setattr(kernels, "_loaded", False)
    status, out, _ = run_cli(capsys, "train", "--dataset", "digits", "--epochs", "1",
                             "--no-progress", "--out", tmp_path)
    assert status == 0 and "trained 1 epoch, " in out      # one epoch, not "1 epochs"
    assert ("fused numba loops for the update, L2 and relu′" in out) == loaded


def test_the_epoch_rate_leaves_out_a_slow_first_epoch():
    """The first epoch traces the step and, on a first run, compiles the fused loops: the rate
    printed is the later epochs' (what a longer run sees), with the first named apart."""
    from demos.cmd_train import _epoch_rate
    assert _epoch_rate([1.25, 0.30, 0.34, 0.32], 2.21) == \
        "0.32 s/epoch after the first, which took 1.25 s"
    assert _epoch_rate([0.40, 0.30, 0.34], 1.04) == "0.34 s/epoch"      # not markedly slower
    assert _epoch_rate([0.9], 0.9) == "0.90 s/epoch"
    assert _epoch_rate([0.40, 0.30, 0.34], 2.54) == \
        "0.34 s/epoch, and 1.5 s besides (set-up, the test set after each epoch)"


def test_sizes_past_numpys_index_range_are_the_memory_error(capsys, monkeypatch):
    """numpy refuses a shape past its index range with a ValueError ('Maximum allowed
    dimension exceeded'), not a MemoryError: the same one-line error, exit 2. Any other
    ValueError reaching main is a bug, and is not hidden."""
    import argparse

    import demos.cli as cli
    status, out, err = run_cli(capsys, "train", "--dataset", "digits", "--hidden",
                               "99999999999999999999", "--epochs", "1", "--no-progress")
    assert status == 2 and "not enough memory for these sizes" in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err

    def broken(args):
        raise ValueError("something else")

    class Parser:
        def parse_args(self, argv):
            return argparse.Namespace(command="train", run=broken)
    monkeypatch.setattr(cli, "build_parser", Parser)
    with pytest.raises(ValueError, match="something else"):
        cli.main([])


def _idx_folder(folder, shape, n_train=60, n_test=20):
    """Four IDX files of ``shape`` images whose class is which third of the rows is lit."""
    rng = np.random.default_rng(0)
    folder.mkdir()
    for split, n in (("train", n_train), ("t10k", n_test)):
        y = rng.integers(0, 3, n).astype(np.uint8)
        X = rng.integers(0, 40, (n,) + shape).astype(np.uint8)
        band = shape[0] // 3
        for i in range(n):
            X[i, band * y[i]:band * (y[i] + 1)] = 255
        write_idx(folder / f"{split}-images-idx3-ubyte", X)
        write_idx(folder / f"{split}-labels-idx1-ubyte", y)
    return X


def test_non_square_idx_images_keep_their_shape(tmp_path, capsys):
    # 12×3 images have 36 pixels, a square number: the model must still take 12×3 images (its
    # own test file), not 6×6 ones
    X = _idx_folder(tmp_path / "data", (12, 3))
    out = tmp_path / "out"
    status, _, err = run_cli(capsys, "train", "--dataset", "mnist", "--data-dir",
                             tmp_path / "data", "--epochs", "2", "--no-progress", "--out", out)
    assert status == 0, err
    image = tmp_path / "tall.png"
    Image.fromarray(X[0], mode="L").save(image)
    status, printed, err = run_cli(capsys, "predict", out, tmp_path / "data" /
                                   "t10k-images-idx3-ubyte", image)
    assert status == 0, err
    assert "images 12×3" in printed


def test_auto_says_which_mnist_files_a_partial_folder_lacks(tmp_path, monkeypatch):
    # three of the four files: the fallback's reason names the missing one, not "no MNIST files"
    from nn import data
    _idx_folder(tmp_path / "mnist", (6, 6))
    (tmp_path / "mnist" / "t10k-labels-idx1-ubyte").unlink()
    monkeypatch.setattr(data, "DEBIAN_FASHION_MNIST", str(tmp_path / "no-fashion"))
    ds, shape, reason = cmd_train.load_dataset("auto", tmp_path / "mnist", np.float32)
    assert ds.name == "digits"
    assert "no MNIST files" not in reason
    assert "lacks t10k-labels-idx1-ubyte" in reason


def test_an_output_name_taken_by_a_folder_replaces_nothing(trained, tmp_path, capsys):
    # weights.png is a folder: the renames must not stop half-way (a new model and sidecar
    # beside old figures), and the error names the target, not the staging file
    folder = tmp_path / "run"
    shutil.copytree(trained[2], folder)
    (folder / "weights.png").unlink()
    (folder / "weights.png").mkdir()
    before = {name: (folder / name).read_bytes() for name in os.listdir(folder)
              if name != "weights.png"}
    status, out, err = run_cli(capsys, "train", "--dataset", "digits", "--epochs", "1",
                               "--hidden", "20", "--out", folder, "--no-progress")
    assert status == 2
    assert str(folder / "weights.png") in err and ".staging" not in err
    after = {name: (folder / name).read_bytes() for name in os.listdir(folder)
             if name != "weights.png"}
    assert after == before and (folder / "weights.png").is_dir()


def test_float_idx_training_images_are_taken_as_they_are(tmp_path, capsys):
    # float IDX images are already numbers (predict takes them as they are): training on them
    # divided by 255 trained on near-zero inputs, and predict disagreed with the test score
    from nn.data import read_idx
    _idx_folder(tmp_path / "bytes", (6, 6), n_train=150, n_test=60)
    (tmp_path / "floats").mkdir()
    for name in os.listdir(tmp_path / "bytes"):
        array = read_idx(tmp_path / "bytes" / name)
        write_idx(tmp_path / "floats" / name,
                  array.astype(np.float32) / 255 if "images" in name else array)
    scores = []
    for data_dir in ("bytes", "floats"):
        status, out, err = run_cli(capsys, "train", "--dataset", "mnist", "--data-dir",
                                   tmp_path / data_dir, "--epochs", "20", "--no-progress",
                                   "--out", tmp_path / f"out-{data_dir}")
        assert status == 0, err
        scores.append([l for l in out.splitlines() if l.startswith("test accuracy")][0])
    assert scores[0] == scores[1]


def test_a_later_run_removes_the_staging_folders_of_dead_runs_only(tmp_path, capsys):
    # a run killed mid-write leaves its staging folder; a live run holds a lock on its own
    out = tmp_path / "run"
    dead, live = out / ".staging-dead", out / ".staging-live"
    for folder in (dead, live):
        folder.mkdir(parents=True)
        (folder / "model.npz").write_bytes(b"half a model")
    held = os.open(live, os.O_RDONLY)
    try:
        fcntl.flock(held, fcntl.LOCK_EX)
        status, _, err = run_cli(capsys, "train", "--dataset", "digits", "--epochs", "1",
                                 "--hidden", "10", "--no-progress", "--out", out)
        assert status == 0, err
        assert not dead.exists()
        assert os.listdir(live) == ["model.npz"]
        assert (live / "model.npz").read_bytes() == b"half a model"
    finally:
        os.close(held)
    assert (out / "model.npz").is_file()


_STUCK_IN_THE_FIGURES = """
import sys, time
import demos.plots
demos.plots.misclassified = lambda *args, **kwargs: time.sleep(600)
from demos.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _python(code, *argv, unbuffered=False, **kwargs):
    """`python -c code argv…` with this checkout's packages importable; stdout is
    block-buffered as for a user unless ``unbuffered`` (python -u)."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    return subprocess.Popen([sys.executable, *["-u"] * unbuffered, "-c", code,
                             *map(str, argv)], env=dict(env, PYTHONPATH=root), **kwargs)


def test_a_run_killed_while_writing_figures_is_cleaned_up_by_the_next(tmp_path, capsys):
    out = tmp_path / "run"
    train = ("train", "--dataset", "digits", "--epochs", "1", "--hidden", "10",
             "--no-progress", "--out", out)
    child = _python(_STUCK_IN_THE_FIGURES, *train, stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while not list(out.glob(".staging-*/model.npz")):    # the model saved, then stuck
            assert child.poll() is None, child.stderr.read().decode()
            assert time.monotonic() < deadline, "the child never reached the figures"
            time.sleep(0.05)
        staging = list(out.glob(".staging-*"))
        status, _, err = run_cli(capsys, *train)                # while the child still runs
        assert status == 0, err
        assert list(out.glob(".staging-*")) == staging and (staging[0] / "model.npz").is_file()
    finally:
        child.kill()
        child.wait()
        child.stderr.close()
    assert child.returncode == -signal.SIGKILL and list(out.glob(".staging-*")) == staging
    status, _, err = run_cli(capsys, *train)
    assert status == 0, err
    assert not list(out.glob(".staging-*"))


def closed_pipe():
    """A line-buffered text stream on a pipe whose reader has gone: its first line fails."""
    reader, writer = os.pipe()
    os.close(reader)
    return open(writer, "w", buffering=1)


_TRAINS_ONCE_THE_GATE_OPENS = """
import os, sys, time
import nn.train
fit = nn.train.fit
def gated(*args, **kwargs):
    while not os.path.exists(sys.argv[1]):
        time.sleep(0.01)
    return fit(*args, **kwargs)
nn.train.fit = gated
from demos.cli import main
sys.exit(main(sys.argv[2:]))
"""


@pytest.mark.parametrize("unbuffered", [False, True])
def test_a_reader_that_goes_away_costs_nothing(tmp_path, unbuffered):
    # `chainrule train | head -1`: the run trains on quietly and saves everything; the child
    # trains only once the pipe is closed, so its later lines surely meet a closed pipe
    gate, out = tmp_path / "gate", tmp_path / "run"
    child = _python(_TRAINS_ONCE_THE_GATE_OPENS, gate, "train", "--dataset", "digits",
                    "--epochs", "1", "--hidden", "10", "--no-progress", "--out", out,
                    unbuffered=unbuffered, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        if unbuffered:                  # a block-buffered child writes nothing before exit
            assert child.stdout.readline().startswith(b"data: digits")
        child.stdout.close()
        gate.touch()
        _, err = child.communicate(timeout=300)
    finally:
        child.kill()
        child.wait()
    assert child.returncode == 0 and err == b"", err.decode()
    _, meta = cmd_train.load_model(out)
    assert meta["dataset"] == "digits" and set(FIGURES) <= set(os.listdir(out))


@pytest.mark.parametrize("command", ["predict", "explain", "walkthrough"])
def test_every_command_finishes_its_work_when_stdout_is_a_closed_pipe(trained, tmp_path,
                                                                      capsys, command):
    argv = {"predict": ("predict", trained[2], tmp_path / "digits-idx3-ubyte"),
            "explain": ("explain", "tanh(w*x + b)", "x=0.5", "w=-1", "b=2",
                        "-o", tmp_path / "graph.svg"),
            "walkthrough": ("walkthrough", "--out", tmp_path)}[command]
    write_idx(tmp_path / "digits-idx3-ubyte", np.zeros((3, 8, 8), np.uint8))
    with closed_pipe() as stdout, contextlib.redirect_stdout(stdout):
        status = main([str(a) for a in argv])
    assert status == 0 and capsys.readouterr().err == ""
    if command == "explain":
        assert (tmp_path / "graph.svg").stat().st_size > 0
    if command == "walkthrough":
        assert any(name.endswith(".svg") for name in os.listdir(tmp_path))


def test_an_error_message_without_a_reader_or_a_stream_is_no_crash(tmp_path, monkeypatch):
    # `chainrule train --out FILE 2>&1 | true`: the one-line error meets a closed pipe;
    # `chainrule explain … >&-`: Python's sys.stdout is None
    (tmp_path / "taken").write_text("mine")
    with closed_pipe() as stderr, contextlib.redirect_stderr(stderr):
        assert main(["train", "--out", str(tmp_path / "taken")]) == 2
    monkeypatch.setattr(sys, "stdout", None)
    assert main(["explain", "x*y", "x=2", "y=3"]) == 0


@pytest.mark.parametrize("argv, message", [
    (("train", "--lr", "inf"), "--lr must be a finite number > 0, got inf"),
    (("train", "--l2", "inf"), "--l2 must be a finite number ≥ 0, got inf"),
    (("descent", "--lr-batch", "inf"), "--lr-batch must be a finite number > 0, got inf"),
    (("descent", "--target", "nan"), "--target must be a finite number, got nan"),
])
def test_an_infinite_rate_or_target_is_refused_as_not_finite(tmp_path, capsys, argv, message):
    status, out, err = run_cli(capsys, *argv, "--out", tmp_path / "out")
    assert status == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()
