"""IDX files, the download path (against a local http.server), and the bundled data sets."""

import gzip
import hashlib
import http.server
import stat
import os
import subprocess
import sys
import threading
import warnings

import numpy as np
import pytest

from nn import data
from nn.data import (DataError, load_digits, load_fashion_mnist, load_idx_folder, load_mnist,
                     make_moons, make_spiral, minmax_scale, one_hot, read_idx, standardize,
                     train_val_split, write_idx)


# ---------------------------------------------------------------------------------------------
# IDX
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("suffix", ["", ".gz"])
@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
def test_idx_round_trip(tmp_path, suffix, dtype):
    rng = np.random.default_rng(0)
    array = (rng.normal(size=(3, 4, 5)) * 50).astype(dtype)
    path = tmp_path / f"a-idx3{suffix}"
    write_idx(path, array)
    back = read_idx(path)
    assert back.dtype == np.dtype(dtype) and back.shape == (3, 4, 5)
    np.testing.assert_array_equal(back, array)
    assert os.listdir(tmp_path) == [path.name]  # no temporary file left behind
    if suffix:
        assert path.read_bytes()[:2] == b"\x1f\x8b"


def test_idx_layout_is_big_endian(tmp_path):
    path = tmp_path / "x"
    write_idx(path, np.array([1, 2], dtype=np.int32))
    assert path.read_bytes() == bytes([0, 0, 0x0C, 1, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 2])


def test_idx_zero_dimensional_and_empty(tmp_path):
    write_idx(tmp_path / "e", np.zeros((0, 28), np.uint8))
    assert read_idx(tmp_path / "e").shape == (0, 28)


@pytest.mark.parametrize("mutate, message", [
    (lambda b: b[:-1], "truncated file"),
    (lambda b: b + b"\x00", "trailing bytes"),
    (lambda b: b"\x01" + b[1:], "bad IDX magic"),
    (lambda b: b[:2] + b"\x07" + b[3:], "unknown IDX type code 0x07"),
    (lambda b: b[:6], "truncated IDX header"),
    (lambda b: b[:3], "truncated IDX header"),
])
def test_idx_errors_name_the_file(tmp_path, mutate, message):
    good = tmp_path / "good"
    write_idx(good, np.arange(12, dtype=np.uint8).reshape(3, 4))
    bad = tmp_path / "bad-file"
    bad.write_bytes(mutate(good.read_bytes()))
    with pytest.raises(DataError, match=message) as info:
        read_idx(bad)
    assert "bad-file" in str(info.value)
    assert isinstance(info.value, ValueError)


def test_idx_truncated_gzip(tmp_path):
    path = tmp_path / "t.gz"
    write_idx(path, np.arange(1000, dtype=np.int32))
    path.write_bytes(path.read_bytes()[:-20])
    with pytest.raises(DataError, match="t.gz"):
        read_idx(path)


def test_write_idx_rejects_unsupported_dtype(tmp_path):
    with pytest.raises(DataError, match="int64"):
        write_idx(tmp_path / "x", np.arange(3, dtype=np.int64))


# ---------------------------------------------------------------------------------------------
# Folders of the four standard files, and the download path
# ---------------------------------------------------------------------------------------------

def small_idx_files(folder, n_train=6, n_test=4, gz=True):
    """Write tiny MNIST-shaped files; return {file name: bytes}."""
    rng = np.random.default_rng(1)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28)).astype(np.uint8),
        "train-labels-idx1-ubyte": rng.integers(0, 10, n_train).astype(np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28)).astype(np.uint8),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test).astype(np.uint8),
    }
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for stem, array in arrays.items():
        name = stem + (".gz" if gz else "")
        write_idx(folder / name, array)
        out[name] = (folder / name).read_bytes()
    return out


def test_load_idx_folder_raw_and_gz(tmp_path):
    small_idx_files(tmp_path / "raw", gz=False)
    small_idx_files(tmp_path / "gz", gz=True)
    a = load_mnist(root=tmp_path / "raw")
    b = load_mnist(root=tmp_path / "gz")
    for ds in (a, b):
        assert ds.X_train.shape == (6, 784) and ds.X_test.shape == (4, 784)
        assert ds.X_train.dtype == np.float32 and ds.y_train.dtype == np.int64
        assert 0 <= ds.X_train.min() and ds.X_train.max() <= 1
    np.testing.assert_array_equal(a.X_train, b.X_train)
    c = load_idx_folder(tmp_path / "raw", "mnist", flatten=False, scale=False, dtype=np.float64)
    assert c.X_train.shape == (6, 28, 28) and c.X_train.max() > 1


def test_missing_files_name_folder_and_files(tmp_path):
    small_idx_files(tmp_path)
    os.remove(tmp_path / "t10k-labels-idx1-ubyte.gz")
    with pytest.raises(DataError) as info:
        load_idx_folder(tmp_path, "mnist")
    assert str(tmp_path) in str(info.value) and "t10k-labels-idx1-ubyte" in str(info.value)
    with pytest.raises(DataError, match="download=True"):
        load_mnist(root=tmp_path)


class _Server:
    """A 127.0.0.1 http.server in a thread serving ``files``; ``drop`` files are cut short."""

    def __init__(self, files, drop=()):
        outer = self
        self.files, self.drop = files, set(drop)

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                name = self.path.rsplit("/", 1)[-1]
                if name not in outer.files:
                    self.send_error(404)
                    return
                body = outer.files[name]
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if name in outer.drop:
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/data/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def sha256(b):
    return hashlib.sha256(b).hexdigest()


def test_download_with_good_checksums(tmp_path):
    files = small_idx_files(tmp_path / "src")
    cache = tmp_path / "cache"
    with _Server(files) as server:
        ds = load_mnist(download=True, cache_dir=cache, base_url=server.url, progress=False,
                        checksums={name: sha256(body) for name, body in files.items()})
    assert sorted(os.listdir(cache)) == sorted(files)
    assert ds.X_train.shape == (6, 784) and ds.source == str(cache)
    # a second call finds the files without the network
    assert load_mnist(cache_dir=cache).X_test.shape == (4, 784)


def test_download_md5_table_and_env_cache(tmp_path, monkeypatch):
    files = small_idx_files(tmp_path / "src")
    monkeypatch.setenv("CHAINRULE_DATA", str(tmp_path / "env"))
    monkeypatch.setattr(data, "DEBIAN_FASHION_MNIST", str(tmp_path / "no-debian"))
    checksums = {name: ("md5", hashlib.md5(body).hexdigest()) for name, body in files.items()}
    with _Server(files) as server:
        ds = load_fashion_mnist(download=True, base_url=[server.url + "missing/", server.url],
                                checksums=checksums, progress=False)
    assert ds.name == "fashion-mnist"
    assert sorted(os.listdir(tmp_path / "env" / "fashion-mnist")) == sorted(files)


def test_checksum_mismatch_leaves_nothing(tmp_path):
    files = small_idx_files(tmp_path / "src")
    cache = tmp_path / "cache"
    wrong = {name: "0" * 64 for name in files}
    with _Server(files) as server, pytest.raises(DataError) as info:
        load_mnist(download=True, cache_dir=cache, base_url=server.url, checksums=wrong,
                   progress=False)
    message = str(info.value)
    assert "checksum mismatch" in message and "0" * 64 in message
    assert sha256(files["train-images-idx3-ubyte.gz"]) in message
    assert not cache.exists()                   # not even the folder the attempt made


def test_default_checksum_table_rejects_other_bytes(tmp_path):
    """Without ``checksums=``, the published MD5s apply: our tiny files must fail them."""
    files = small_idx_files(tmp_path / "src")
    with _Server(files) as server, pytest.raises(DataError, match="md5 checksum mismatch"):
        load_mnist(download=True, cache_dir=tmp_path / "cache", base_url=server.url,
                   progress=False)
    assert not (tmp_path / "cache").exists()


def test_dropped_connection_leaves_no_partial_file(tmp_path):
    files = small_idx_files(tmp_path / "src")
    cache = tmp_path / "cache"
    dropped = "t10k-images-idx3-ubyte.gz"
    no_checksums = {name: None for name in files}  # only the length check can catch it
    with _Server(files, drop={dropped}) as server, pytest.raises(DataError) as info:
        data.download(list(files), cache, server.url,
                      checksums={k: v for k, v in no_checksums.items() if v}, progress=False)
    assert dropped in str(info.value)
    assert dropped not in os.listdir(cache)
    assert not [f for f in os.listdir(cache) if f.endswith(".part")]


def test_a_download_that_is_not_idx_is_never_renamed_into_place(tmp_path):
    # with no digest to check (an own mirror), a server's error page served with status 200
    # must still not land in the cache: every file is read back as IDX before the rename
    files = small_idx_files(tmp_path / "src")
    page = b"<html><body>Service unavailable</body></html>"
    served = {**files, "train-labels-idx1-ubyte.gz": page}
    cache = tmp_path / "cache"
    with _Server(served) as server, pytest.raises(DataError) as info:
        load_mnist(download=True, cache_dir=cache, base_url=server.url, progress=False,
                   checksums={name: None for name in files})
    assert "train-labels-idx1-ubyte.gz" in str(info.value)
    assert "train-labels-idx1-ubyte.gz" not in os.listdir(cache)
    assert not [f for f in os.listdir(cache) if f.startswith(".")]
    # the next download, from a good server, completes the cache
    with _Server(files) as server:
        ds = load_mnist(download=True, cache_dir=cache, base_url=server.url, progress=False,
                        checksums={name: sha256(body) for name, body in files.items()})
    assert ds.y_train.shape == (6,)


def test_checksums_for_some_files_keep_the_published_ones_for_the_rest(tmp_path):
    files = small_idx_files(tmp_path / "src")
    one = "train-images-idx3-ubyte.gz"
    with _Server(files) as server, pytest.raises(DataError, match="md5 checksum mismatch"):
        load_mnist(download=True, cache_dir=tmp_path / "cache", base_url=server.url,
                   progress=False, checksums={one: sha256(files[one])})
    assert data._checksum_table("mnist", {one: None}).get(one) is None
    assert data._checksum_table("mnist", {})["t10k-labels-idx1-ubyte.gz"][0] == "md5"


def test_a_download_that_fetches_nothing_leaves_no_cache_folder(tmp_path):
    files = small_idx_files(tmp_path / "src")
    page = b"<html><body>Service unavailable</body></html>"
    cache = tmp_path / "new" / "cache"
    with _Server({name: page for name in files}) as server, pytest.raises(DataError):
        load_mnist(download=True, cache_dir=cache, base_url=server.url, progress=False,
                   checksums={name: None for name in files})
    assert not cache.exists()
    cache.mkdir(parents=True)               # a folder that was there before is kept
    with _Server({name: page for name in files}) as server, pytest.raises(DataError):
        load_mnist(download=True, cache_dir=cache, base_url=server.url, progress=False,
                   checksums={name: None for name in files})
    assert cache.is_dir() and not list(cache.iterdir())


def test_no_download_without_permission(tmp_path):
    with pytest.raises(DataError, match="no data found"):
        load_mnist(cache_dir=tmp_path / "empty")


# ---------------------------------------------------------------------------------------------
# Bundled and toy data
# ---------------------------------------------------------------------------------------------

def test_load_digits_split():
    ds = load_digits()
    assert ds.X_train.shape == (1347, 64) and ds.X_test.shape == (450, 64)
    assert ds.X_train.dtype == np.float32 and 0 <= ds.X_train.min() and ds.X_train.max() <= 1
    assert ds.y_train.dtype == np.int64 and ds.n_classes == 10
    assert load_digits(dtype=np.float64).X_train.dtype == np.float64
    np.testing.assert_array_equal(load_digits().y_test, ds.y_test)


@pytest.mark.parametrize("test_size, random_state", [(0.25, 0), (0.25, 7), (0.1, 123),
                                                      (0.5, np.int64(3))])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_load_digits_is_scikit_learns_split_of_scikit_learns_digits(test_size, random_state,
                                                                     dtype):
    from sklearn.datasets import load_digits as sk_load_digits
    from sklearn.model_selection import train_test_split
    digits = sk_load_digits()
    expected = train_test_split((digits.data / 16.0).astype(dtype), digits.target,
                                test_size=test_size, random_state=random_state)
    ds = load_digits(dtype=dtype, test_size=test_size, random_state=random_state)
    for got, want in zip((ds.X_train, ds.X_test, ds.y_train, ds.y_test), expected):
        assert got.dtype == want.dtype or got.dtype == np.int64
        np.testing.assert_array_equal(got, want)


def test_load_digits_without_the_bundled_file_asks_scikit_learn(monkeypatch):
    fast = load_digits()
    monkeypatch.setattr(data, "_bundled_digits", lambda: None)
    slow = load_digits()
    for a, b in zip((fast.X_train, fast.X_test, fast.y_train, fast.y_test),
                    (slow.X_train, slow.X_test, slow.y_train, slow.y_test)):
        np.testing.assert_array_equal(a, b)


def test_load_digits_does_not_import_scikit_learn():
    code = ("import sys; from nn.data import load_digits; ds = load_digits(); "
            "print(len(ds.X_train), 'sklearn' in sys.modules)")
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=repo)
    assert run.stdout.split() == ["1347", "False"]


def test_moons_and_spiral():
    X, y = make_moons(101, noise=0.1, seed=3)
    assert X.shape == (101, 2) and y.shape == (101,) and set(y) == {0, 1}
    X2, y2 = make_moons(101, noise=0.1, seed=3)
    np.testing.assert_array_equal(X, X2)
    np.testing.assert_array_equal(y, y2)
    assert not np.array_equal(X, make_moons(101, noise=0.1, seed=4)[0])
    Xs, ys = make_spiral(50, 4, noise=0.1, seed=0)
    assert Xs.shape == (200, 2) and np.bincount(ys).tolist() == [50] * 4
    np.testing.assert_array_equal(Xs, make_spiral(50, 4, noise=0.1, seed=0)[0])


def test_helpers():
    Y = one_hot(np.array([0, 2, 1]), 3)
    np.testing.assert_array_equal(Y, np.eye(3)[[0, 2, 1]])
    with pytest.raises(ValueError, match="0..2"):
        one_hot(np.array([3]), 3)
    X = np.array([[1.0, 5.0], [3.0, 5.0]])
    Xs, mean, std = standardize(X)
    np.testing.assert_allclose(Xs, [[-1, 0], [1, 0]])
    Xm, lo, hi = minmax_scale(X)
    np.testing.assert_allclose(Xm, [[0, 0], [1, 0]])
    X_tr, X_val, y_tr, y_val = train_val_split(np.arange(20)[:, None], np.arange(20), 0.25, seed=0)
    assert len(X_val) == 5 and len(X_tr) == 15
    assert sorted(np.concatenate([y_tr, y_val]).tolist()) == list(range(20))
    np.testing.assert_array_equal(X_val[:, 0], y_val)


def test_best_digits_falls_back(tmp_path, monkeypatch):
    small_idx_files(tmp_path / "mnist")
    assert data.best_digits(tmp_path / "mnist").name == "mnist"
    monkeypatch.setattr(data, "DEBIAN_FASHION_MNIST", str(tmp_path / "none"))
    ds = data.best_digits(tmp_path / "nothing")
    assert ds.name == "digits" and "sklearn" in ds.source


DEBIAN_FILES = all(
    os.path.exists(os.path.join(data.DEBIAN_FASHION_MNIST, stem + ".gz"))
    for stem in data.IDX_FILES.values())


@pytest.mark.skipif(not DEBIAN_FILES, reason="Debian's dataset-fashion-mnist is not installed "
                    "(CI installs it: apt-get install dataset-fashion-mnist)")
def test_debian_fashion_mnist(tmp_path, monkeypatch):
    monkeypatch.setenv("CHAINRULE_DATA", str(tmp_path))  # an empty cache: must find Debian's copy
    ds = load_fashion_mnist()
    assert ds.X_train.shape == (60000, 784) and ds.X_test.shape == (10000, 784)
    assert ds.y_train.shape == (60000,) and ds.y_test.shape == (10000,)
    assert ds.y_train.min() == 0 and ds.y_train.max() == 9 and ds.y_test.max() == 9
    assert ds.X_train.dtype == np.float32 and ds.X_train.max() <= 1
    assert ds.source == data.DEBIAN_FASHION_MNIST
    best = data.best_digits(tmp_path / "no-mnist")
    assert best.name == "fashion-mnist"


def test_split_scale_and_one_hot_edge_cases():
    X, y = data.make_moons(7)
    with pytest.raises(ValueError, match="training rows"):
        data.train_val_split(X, y, 0.95)                 # would leave no training row
    ints = np.array([[1], [2], [3]])
    np.testing.assert_allclose(data.standardize(ints)[0].ravel(), [-1.2247449, 0, 1.2247449])
    np.testing.assert_allclose(data.minmax_scale(ints)[0].ravel(), [0.0, 0.5, 1.0])
    assert data.standardize(ints.astype(np.float32))[0].dtype == np.float32
    np.testing.assert_array_equal(data.one_hot(np.array([True, False]), 2), [[0, 1], [1, 0]])
    np.testing.assert_array_equal(data.one_hot(np.array([0.0, 1.0]), 2), [[1, 0], [0, 1]])
    assert data.one_hot([], 3).shape == (0, 3)
    with pytest.raises(ValueError, match="whole numbers"):
        data.one_hot([0.5], 2)
    with pytest.raises(ValueError, match="noise"):
        data.make_moons(noise=-1)
    with pytest.raises(ValueError, match="n_classes"):
        data.make_spiral(n_classes=0)


def test_a_corrupt_gzip_is_a_data_error_and_the_next_mirror_is_tried(tmp_path):
    good = gzip.compress(b"\0\0\x08\x01\0\0\x10\0" + bytes(4096 * [7]))
    bad = bytearray(good)
    bad[10] ^= 0x55                                    # a corrupt deflate stream: zlib.error
    (tmp_path / "bad.idx").write_bytes(bytes(bad))
    with pytest.raises(DataError, match="bad.idx: cannot read"):
        read_idx(tmp_path / "bad.idx")
    files = small_idx_files(tmp_path / "src")
    name = "train-images-idx3-ubyte.gz"
    broken = bytearray(files[name])
    broken[12] ^= 0x55
    cache = tmp_path / "cache"
    with _Server({**files, name: bytes(broken)}) as first, _Server(files) as second:
        ds = load_mnist(download=True, cache_dir=cache, base_url=[first.url, second.url],
                        progress=False, checksums={n: None for n in files})
    assert ds.X_train.shape == (6, 784)


def test_idx_reading_is_bounded_by_the_header(tmp_path):
    """Non-regular files are refused; no more than the declared payload (+1 byte) is read, so
    a small gzip that would expand to gigabytes is a trailing-bytes error at once; dimensions
    whose product overflows int64 are an error naming the file."""
    with pytest.raises(DataError, match="not a regular file"):
        read_idx("/dev/zero")
    bomb = tmp_path / "bomb.idx.gz"
    with gzip.open(bomb, "wb") as f:                   # declares 1 byte, holds 64 MB
        f.write(b"\0\0\x08\x01\0\0\0\x01")
        f.write(bytes(64 << 20))
    with pytest.raises(DataError, match="trailing bytes"):
        read_idx(bomb)
    huge = tmp_path / "huge.idx"
    huge.write_bytes(b"\0\0\x08\x03" + b"\x80\0\0\0" * 2 + b"\0\0\0\x04" + bytes(8))
    with pytest.raises(DataError, match="huge.idx: IDX payload"):
        read_idx(huge)
    many = tmp_path / "many.idx"
    many.write_bytes(b"\0\0\x08\x41" + b"\0\0\0\x01" * 65 + b"\x07")
    with pytest.raises(DataError, match="65 dimensions"):
        read_idx(many)


def test_writes_go_through_symlinks_and_never_replace_special_files(tmp_path):
    real = tmp_path / "real.idx"
    link = tmp_path / "link.idx"
    write_idx(real, np.zeros(3, np.uint8))
    link.symlink_to(real)
    write_idx(link, np.ones(3, np.uint8))
    assert link.is_symlink() and read_idx(real).tolist() == [1, 1, 1]
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(OSError, match="not a regular file"):
        write_idx(fifo, np.zeros(3, np.uint8))
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)


def test_loading_refuses_int_dtypes_with_scaling_and_unequal_image_sizes(tmp_path):
    folder = tmp_path / "d"
    folder.mkdir()
    write_idx(folder / "train-images-idx3-ubyte", np.zeros((5, 4, 4), np.uint8))
    write_idx(folder / "train-labels-idx1-ubyte", np.zeros(5, np.uint8))
    write_idx(folder / "t10k-images-idx3-ubyte", np.zeros((3, 3, 5), np.uint8))
    write_idx(folder / "t10k-labels-idx1-ubyte", np.zeros(3, np.uint8))
    with pytest.raises(DataError, match="training images are 4×4 but test images 3×5"):
        load_mnist(root=folder)
    with pytest.raises(DataError, match="dtype uint8 cannot hold pixels / 255"):
        load_mnist(root=folder, dtype=np.uint8)
    os.remove(folder / "t10k-labels-idx1-ubyte")
    with pytest.raises(DataError, match="has only some of the files: it lacks "
                                        "t10k-labels-idx1-ubyte"):
        load_mnist(root=folder)


def test_scaling_helpers_take_lists_and_extreme_float32():
    from nn.data import make_moons, minmax_scale, standardize, train_val_split
    X = np.array([[1.0, 2.0], [3.0, 2.0]])
    assert standardize(X, mean=[0, 0], std=[1.0, 0.0])[0].tolist() == X.tolist()
    assert minmax_scale(X, lo=[0, 0], hi=[4, 4])[0].tolist() == [[0.25, 0.5], [0.75, 0.5]]
    wide = np.array([[-3e38, 1], [3e38, 2]], np.float32)
    assert minmax_scale(wide)[0].tolist() == [[0.0, 0.0], [1.0, 1.0]]
    assert len(train_val_split(np.arange(10), np.arange(10), fraction=0.25)[1]) == 3
    assert make_moons(10, noise=np.int64(0))[0].shape == (10, 2)


@pytest.mark.parametrize("images", [(0, 4, 4), (5, 0, 4)])
def test_loading_refuses_images_without_pixels(tmp_path, images):
    write_idx(tmp_path / "train-images-idx3-ubyte", np.zeros(images, np.uint8))
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(images[0], np.uint8))
    write_idx(tmp_path / "t10k-images-idx3-ubyte", np.zeros((3, 4, 4), np.uint8))
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.zeros(3, np.uint8))
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte: the train images \(.*\) "
                                        r"hold no pixels"):
        load_mnist(root=tmp_path)


@pytest.mark.parametrize("labels", [np.array([0, 1, -1], np.int8),
                                    np.array([0, 1, 0.5], np.float32),
                                    np.array([0, 1, np.nan])])
def test_loading_refuses_labels_that_are_not_class_indices(tmp_path, labels):
    write_idx(tmp_path / "train-images-idx3-ubyte", np.zeros((3, 4, 4), np.uint8))
    write_idx(tmp_path / "train-labels-idx1-ubyte", labels)
    write_idx(tmp_path / "t10k-images-idx3-ubyte", np.zeros((3, 4, 4), np.uint8))
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.zeros(3, np.uint8))
    with pytest.raises(DataError, match="train-labels-idx1-ubyte: the train labels must be "
                                        "whole numbers ≥ 0"):
        load_mnist(root=tmp_path)


def test_loading_refuses_a_label_that_makes_more_classes_than_images(tmp_path):
    """k = max label + 1: a label of 200000 among 8 images is a damaged file, named as such
    before a 200001-output network is built."""
    write_idx(tmp_path / "train-images-idx3-ubyte", np.zeros((5, 4, 4), np.uint8))
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.array([0, 1, 2, 1, 0], np.int32))
    write_idx(tmp_path / "t10k-images-idx3-ubyte", np.zeros((3, 4, 4), np.uint8))
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.array([0, 200000, 1], np.int32))
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte: a test label of 200000 would "
                                        r"make 200001 classes for 8 images"):
        load_mnist(root=tmp_path)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.array([0, 7, 1], np.int32))
    assert load_mnist(root=tmp_path).n_classes == 8         # as many classes as images: fine


@pytest.mark.parametrize("rows, dtype", [(1001, np.float64), (100001, np.float32)])
def test_standardize_makes_a_constant_column_zero(rows, dtype):
    X = np.full((rows, 2), 0.1, dtype)              # a mean of 0.1s is not exactly 0.1
    X[:, 1] = np.arange(rows)
    Xs, mean, std = standardize(X)
    assert np.all(Xs[:, 0] == 0) and mean[0] == dtype(0.1) and std[0] == 1
    np.testing.assert_allclose(Xs[:, 1].std(), 1, rtol=1e-5)


def test_standardize_extreme_float32_without_overflow():
    X = np.array([[3e38, 1], [3e38, 2], [-3e38, 3]], np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")             # no overflow on the way
        Xs, mean, std = standardize(X)
    assert Xs.dtype == np.float32 and np.all(np.isfinite(Xs))
    np.testing.assert_allclose(Xs[:, 0], [2 ** -0.5, 2 ** -0.5, -2 ** 0.5], rtol=1e-6)
    np.testing.assert_allclose(mean[0], 1e38, rtol=1e-6)


def test_checksums_that_could_never_be_checked_are_refused_before_any_download(tmp_path):
    files = small_idx_files(tmp_path / "src")
    cache = tmp_path / "cache"
    raw_names = {name[:-3]: sha256(body) for name, body in files.items()}   # no .gz
    sha1 = {name: hashlib.sha1(body).hexdigest() for name, body in files.items()}
    typo = {name: sha256(body)[:-1] for name, body in files.items()}
    unknown = {"train-images-idx3-ubyte.gz": ("sha999", "ab")}
    with _Server(files) as server:
        for checksums, message in ((raw_names, "not one of the files"), (typo, "63 hex digits"),
                                   (unknown, "sha999")):
            with pytest.raises(DataError, match=message):
                load_mnist(download=True, cache_dir=cache, base_url=server.url,
                           progress=False, checksums=checksums)
            assert not os.path.exists(cache) or os.listdir(cache) == []
        # a SHA-1 of 40 digits is checked as SHA-1 (it was taken for an MD5 and always failed)
        ds = load_mnist(download=True, cache_dir=cache, base_url=server.url, progress=False,
                        checksums=sha1)
    assert ds.y_train.shape == (6,)


def test_one_hot_refuses_infinite_labels():
    with pytest.raises(ValueError, match="whole numbers"):
        one_hot(np.array([0.0, np.inf]), 3)         # was cast to -9223372036854775808


def test_scaling_and_splitting_no_rows_say_so():
    empty = np.zeros((0, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("error")             # not numpy's "Mean of empty slice"
        with pytest.raises(ValueError, match="standardize: X has no rows"):
            standardize(empty)
    with pytest.raises(ValueError, match="minmax_scale: X has no rows"):
        minmax_scale(empty)                        # not "zero-size array to reduction"
    assert standardize(empty, np.zeros(3), np.ones(3))[0].shape == (0, 3)   # given μ, σ
    assert minmax_scale(empty, np.zeros(3), np.ones(3))[0].shape == (0, 3)
    with pytest.raises(ValueError, match="X has 0 rows: a split needs at least 2"):
        train_val_split(empty, np.zeros(0))        # said "leaves -1 training rows"
