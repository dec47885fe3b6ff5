"""Data sets for the digit networks: IDX files, MNIST, Fashion-MNIST, scikit-learn's digits, toys.

Plain numpy and the standard library (scikit-learn and tqdm are imported only by the functions
that need them); this module never imports ``autograd``.

Every loader returns a ``Dataset(X_train, y_train, X_test, y_test, name, source)``: images
flattened to rows (n × 784 for MNIST), float32 scaled to [0, 1] by default, labels int64.

Where the files come from:

- ``load_mnist(root)`` / ``load_fashion_mnist(root)`` read the four standard IDX files
  (``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``,
  ``t10k-labels-idx1-ubyte``, raw or ``.gz``) from a folder.
- Without ``root`` they look in the user cache, ``~/.cache/chainrule/<name>`` (or
  ``$CHAINRULE_DATA/<name>``, or ``cache_dir``); Fashion-MNIST also finds Debian's package
  ``dataset-fashion-mnist`` in ``/usr/share/datasets/fashion-mnist`` (gzipped files).
- Only ``download=True`` goes to the network (urllib): each file is streamed into a temporary file
  in the destination folder, its length and checksum are checked, and only then is it renamed into
  place, so an interrupted or corrupted download leaves nothing behind.
"""

import gzip
import hashlib
import http.client
import math
import os
import stat
import struct
import urllib.error
import urllib.request
import zlib
from dataclasses import dataclass

import numpy as np

from .fileio import atomic_file


class DataError(ValueError):
    """A data file is missing, truncated, malformed or fails its checksum."""


# ---------------------------------------------------------------------------------------------
# IDX files: magic 0x00 0x00 <type code> <ndim>, then ndim big-endian uint32 sizes, then the data.
# ---------------------------------------------------------------------------------------------

IDX_TYPES = {
    0x08: np.dtype(">u1"),  # unsigned byte
    0x09: np.dtype(">i1"),  # signed byte
    0x0B: np.dtype(">i2"),  # short
    0x0C: np.dtype(">i4"),  # int
    0x0D: np.dtype(">f4"),  # float
    0x0E: np.dtype(">f8"),  # double
}
_IDX_CODES = {dtype.newbyteorder("="): code for code, dtype in IDX_TYPES.items()}


def _is_gzip(path):
    return str(path).endswith(".gz")


# What a broken file or a failed transfer can raise while it is read (gzip.BadGzipFile is an
# OSError; a corrupt deflate stream is zlib.error; a bad HTTP response is HTTPException)
_READ_ERRORS = (OSError, EOFError, zlib.error, http.client.HTTPException)
IDX_MAX_NDIM = 64                   # numpy's limit


def _gzipped_content(path):
    """Whether the file starts with gzip's magic bytes 1f 8b (whatever its name says)."""
    try:
        with open(path, "rb") as f:
            return f.read(2) == b"\x1f\x8b"
    except OSError as err:
        raise DataError(f"{path}: cannot read: {err.strerror or err}") from err


def _regular_file(path):
    """A FIFO, a device or a folder is not read (it may never end, or be /dev/zero)."""
    try:
        mode = os.stat(path).st_mode
    except OSError as err:
        raise DataError(f"{path}: cannot read: {err.strerror or err}") from err
    if not stat.S_ISREG(mode):
        raise DataError(f"{path}: not a regular file")


def read_idx(path):
    """Read an IDX file, raw or gzipped (told by its first bytes, not its name), into a
    native-byte-order numpy array.

    Raises ``DataError`` naming the file for a bad magic number, an unknown type code, a truncated
    header, or a payload whose length is not exactly the product of the dimensions × item size.
    """
    path = os.fspath(path)
    _regular_file(path)
    return _parse_idx(_read_bytes(path, _gzipped_content(path), path), path)


def _read_bytes(path, gzipped, name):
    """The IDX file's bytes: its header, then no more than the payload it declares and one
    byte (a trailing byte is an error; a gzip that would expand beyond is never expanded)."""
    try:
        with (gzip.open(path, "rb") if gzipped else open(path, "rb")) as f:
            head = f.read(4)
            if len(head) < 4 or head[:2] != b"\0\0" or head[2] not in IDX_TYPES:
                return head + f.read(64)            # _parse_idx names what is wrong
            dims = f.read(4 * head[3])
            size = _payload_size(dims, head[2]) if len(dims) == 4 * head[3] else 0
            return head + dims + _read_at_most(f, size + 1)
    except _READ_ERRORS as err:
        raise DataError(f"{name}: cannot read: {err}") from err


def _read_at_most(f, n):
    """Up to n bytes, a megabyte at a time: memory follows what the file holds, not n."""
    chunks, got = [], 0
    while got < n:
        block = f.read(min(1 << 20, n - got))
        if not block:
            break
        chunks.append(block)
        got += len(block)
    return b"".join(chunks)


def _payload_size(dims_bytes, code):
    """Bytes of payload the header declares (Python ints: no overflow)."""
    size = IDX_TYPES[code].itemsize
    for d in struct.unpack(f">{len(dims_bytes) // 4}I", dims_bytes):
        size *= d
    return size


def _parse_idx(data, path):
    """The array in IDX bytes ``data``; ``DataError`` naming ``path`` if they are not valid."""
    if len(data) < 4:
        raise DataError(f"{path}: truncated IDX header ({len(data)} bytes, need at least 4)")
    if data[0] != 0 or data[1] != 0:
        raise DataError(f"{path}: bad IDX magic number {data[:4].hex()} (must start with 0000)")
    code, ndim = data[2], data[3]
    if code not in IDX_TYPES:
        valid = ", ".join(f"0x{c:02X}" for c in IDX_TYPES)
        raise DataError(f"{path}: unknown IDX type code 0x{code:02X} (valid: {valid})")
    if ndim > IDX_MAX_NDIM:
        raise DataError(f"{path}: IDX header declares {ndim} dimensions (at most "
                        f"{IDX_MAX_NDIM})")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{path}: truncated IDX header ({len(data)} bytes, {ndim} dimensions "
                        f"need {header})")
    dims = struct.unpack(f">{ndim}I", data[4:header])
    dtype = IDX_TYPES[code]
    expected = _payload_size(data[4:header], code)
    actual = len(data) - header
    if actual != expected:
        raise DataError(f"{path}: IDX payload is {actual} bytes but dimensions {dims} of "
                        f"{dtype.newbyteorder('=').name} need {expected}"
                        + (" (truncated file)" if actual < expected else " (trailing bytes)"))
    array = np.frombuffer(data, dtype=dtype, offset=header).reshape(dims)
    return array.astype(dtype.newbyteorder("="))  # a writable native-order copy


def write_idx(path, array):
    """Write ``array`` as an IDX file (gzipped if ``path`` ends in .gz), atomically.

    The bytes go to a temporary file in the same folder, which is then ``os.replace``d onto
    ``path``: a reader never sees a half-written file. Supported dtypes: uint8, int8, int16,
    int32, float32, float64.
    """
    path = os.fspath(path)
    array = np.asarray(array)
    native = array.dtype.newbyteorder("=")
    if native not in _IDX_CODES:
        valid = ", ".join(d.name for d in _IDX_CODES)
        raise DataError(f"{path}: IDX cannot store dtype {array.dtype} (valid: {valid})")
    if array.ndim > 255 or any(d >= 2 ** 32 for d in array.shape):
        raise DataError(f"{path}: IDX cannot store shape {array.shape}")
    code = _IDX_CODES[native]
    payload = (bytes([0, 0, code, array.ndim])
               + struct.pack(f">{array.ndim}I", *array.shape)
               + np.ascontiguousarray(array, dtype=IDX_TYPES[code]).tobytes())
    _atomic_write(path, gzip.compress(payload, mtime=0) if _is_gzip(path) else payload)


def _atomic_write(path, data):
    with atomic_file(path) as f:
        f.write(data)


# ---------------------------------------------------------------------------------------------
# Data sets.
# ---------------------------------------------------------------------------------------------

@dataclass
class Dataset:
    """A train/test split: X_* are n × features, y_* integer labels; ``source`` says where from."""

    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    name: str
    source: str

    @property
    def n_classes(self):
        """k: the number of classes (max label + 1; 0 for no labels at all)."""
        labels = [y.max() for y in (self.y_train, self.y_test) if len(y)]
        return int(max(labels)) + 1 if labels else 0

    def __repr__(self):
        return (f"Dataset(name={self.name!r}, X_train={self.X_train.shape} {self.X_train.dtype}, "
                f"X_test={self.X_test.shape}, source={self.source!r})")


IDX_FILES = {
    "X_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "X_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}

DEBIAN_FASHION_MNIST = "/usr/share/datasets/fashion-mnist"

BASE_URLS = {
    "mnist": (
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
    ),
    "fashion-mnist": (
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    ),
}

# Published checksums of the upstream .gz files, as (algorithm, hex digest). The MNIST MD5s are
# the ones torchvision and most loaders use; the Fashion-MNIST MD5s are from the data set's README
# (shipped in Debian's package as /usr/share/doc/dataset-fashion-mnist/README.md.gz). No SHA-256
# is published for either, so none is invented here: pass ``checksums=`` to check against your own
# (a file with no known checksum is checked for length only and verified on first download by you).
# Debian recompresses its .gz files, so their bytes (and MD5s) differ from these; local files are
# never checksummed, only checked as IDX.
CHECKSUMS = {
    "mnist": {
        "train-images-idx3-ubyte.gz": ("md5", "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
        "train-labels-idx1-ubyte.gz": ("md5", "d53e105ee54ea40749a09fcbcd1e9432"),
        "t10k-images-idx3-ubyte.gz": ("md5", "9fb629c4189551a2d022fa330f9573f3"),
        "t10k-labels-idx1-ubyte.gz": ("md5", "ec29112dd5afa0611ce80d1b7f02629c"),
    },
    "fashion-mnist": {
        "train-images-idx3-ubyte.gz": ("md5", "8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
        "train-labels-idx1-ubyte.gz": ("md5", "25c81989df183df01b3e8a0aad5dffbe"),
        "t10k-images-idx3-ubyte.gz": ("md5", "bef4ecab320f06d8554ea6380940ec79"),
        "t10k-labels-idx1-ubyte.gz": ("md5", "bb300cfdad3c16e7a12a480ee83cd310"),
    },
}


def default_cache_dir(name):
    """``$CHAINRULE_DATA/<name>`` if that variable is set, else ``~/.cache/chainrule/<name>``."""
    root = os.environ.get("CHAINRULE_DATA") or os.path.join(
        os.path.expanduser("~"), ".cache", "chainrule")
    return os.path.join(root, name)


def _find_idx(folder, stem):
    """The path of ``stem`` in ``folder``: raw, .gz, or spelt '.idx' as some mirrors do."""
    dotted = stem.replace("-idx", ".idx")
    for candidate in (stem, stem + ".gz", dotted, dotted + ".gz"):
        path = os.path.join(folder, candidate)
        if os.path.isfile(path):
            return path
    return None


def _missing(folder):
    return [stem for stem in IDX_FILES.values() if _find_idx(folder, stem) is None]


def load_idx_folder(folder, name, flatten=True, scale=True, dtype=np.float32, source=None):
    """Read the four standard IDX files from ``folder`` into a ``Dataset``.

    Images become rows of ``dtype`` (n × 784 when ``flatten``); with ``scale`` 8-bit pixels are
    divided by 255 and float images (already numbers) are taken as they are. Labels become
    int64. A folder without the files raises ``DataError`` naming what is missing.
    """
    folder = os.fspath(folder)
    dtype = np.dtype(dtype)
    if scale and dtype.kind != "f":
        raise DataError(f"{name}: dtype {dtype} cannot hold pixels / 255; use a float dtype, or "
                        f"scale=False for the raw 0..255 values")
    missing = _missing(folder)
    if missing:
        raise DataError(f"{name}: folder {folder} lacks {', '.join(missing)} (raw or .gz)")
    arrays = {key: read_idx(_find_idx(folder, stem)) for key, stem in IDX_FILES.items()}
    for split in ("train", "test"):
        X, y = arrays[f"X_{split}"], arrays[f"y_{split}"]
        if X.ndim != 3 or y.ndim != 1 or X.shape[0] != y.shape[0]:
            raise DataError(f"{name}: {folder}: {split} images {X.shape} and labels {y.shape} "
                            f"do not match (need n × rows × cols images and n labels)")
        if not X.size:      # nothing to train or test on (and no pixels to reshape by)
            path = _find_idx(folder, IDX_FILES[f"X_{split}"])
            raise DataError(f"{name}: {path}: the {split} images {X.shape} hold no pixels")
        # class indices: astype(int64) would turn 0.5 into 0 and nan into a huge negative
        whole = y.dtype.kind != "f" or np.all(np.isfinite(y) & (y == np.round(y)))
        if not whole or (y.size and y.min() < 0):
            path = _find_idx(folder, IDX_FILES[f"y_{split}"])
            raise DataError(f"{name}: {path}: the {split} labels must be whole numbers ≥ 0 "
                            f"(class indices), got values in {y.min()}..{y.max()}")
        # k = max label + 1 outputs: more classes than images is a damaged file, not a task
        # (a label of 200000 would build a 200001-output network)
        images = len(arrays["y_train"]) + len(arrays["y_test"])
        if y.size and y.max() >= images:
            path = _find_idx(folder, IDX_FILES[f"y_{split}"])
            raise DataError(f"{name}: {path}: a {split} label of {y.max()} would make "
                            f"{int(y.max()) + 1} classes for {images} images (class indices run "
                            f"0..k−1)")
    if arrays["X_train"].shape[1:] != arrays["X_test"].shape[1:]:
        raise DataError(f"{name}: {folder}: training images are "
                        f"{'×'.join(map(str, arrays['X_train'].shape[1:]))} but test images "
                        f"{'×'.join(map(str, arrays['X_test'].shape[1:]))}")
    for key in ("X_train", "X_test"):
        kind = arrays[key].dtype
        if scale and kind != np.uint8 and kind.kind != "f":    # as `chainrule predict` reads
            raise DataError(f"{name}: {_find_idx(folder, IDX_FILES[key])}: images of type "
                            f"{kind} have no fixed range to scale into [0, 1] (unsigned bytes or "
                            f"floats; scale=False reads them raw)")
    out = {}
    for key, array in arrays.items():
        if key.startswith("X"):
            array = array.reshape(array.shape[0], -1) if flatten else array
            bytes_ = array.dtype == np.uint8
            array = array.astype(dtype)
            if scale and bytes_:
                array /= 255  # 0..255 pixels into [0, 1]; float images are numbers already
        else:
            array = array.astype(np.int64)
        out[key] = array
    return Dataset(**out, name=name, source=source or folder)


def _checksum_table(name, checksums):
    """The published digests of ``name``'s files, updated by ``checksums``: ``{file: hex or
    (algorithm, hex)}`` replaces a file's digest, ``{file: None}`` checks that file by length
    and content only. Files not named keep the published digest. A bare hex string's algorithm
    is told by its length (MD5 32, SHA-1 40, SHA-256 64, SHA-512 128 digits)."""
    table = dict(CHECKSUMS.get(name, {}))
    files = [stem + ".gz" for stem in IDX_FILES.values()]
    for fname, value in (checksums or {}).items():
        # a digest under another name, or of a kind told wrongly, would never be checked (or
        # fail every download as an "md5 mismatch"): say so before fetching anything
        if fname not in files:
            raise DataError(f"{name}: checksums names {fname!r}, not one of the files "
                            f"downloaded ({', '.join(files)})")
        if value is None:
            table.pop(fname, None)
            continue
        if isinstance(value, str):
            if len(value) not in _DIGEST_LENGTHS:
                raise DataError(f"{name}: the checksum of {fname} has {len(value)} hex digits, "
                                f"not an MD5 (32), SHA-1 (40), SHA-256 (64) or SHA-512 (128); "
                                f"pass (algorithm, hex)")
            value = (_DIGEST_LENGTHS[len(value)], value)
        try:
            hashlib.new(value[0])
        except (ValueError, TypeError):
            raise DataError(f"{name}: the checksum of {fname} uses {value[0]!r}, which hashlib "
                            f"does not know") from None
        table[fname] = value
    return table


_DIGEST_LENGTHS = {32: "md5", 40: "sha1", 64: "sha256", 128: "sha512"}


def _check_idx_download(path, fname):
    """A downloaded ``*.gz`` must gunzip to a whole IDX file before it is renamed into place (a
    server's error page or a cut-off body with no Content-Length is caught here)."""
    _parse_idx(_read_bytes(path, _gzipped_content(path), fname), fname)


def download(files, folder, base_urls, checksums=None, progress=True, timeout=60,
             validate=None):
    """Fetch each of ``files`` from the first of ``base_urls`` that serves it into ``folder``.

    Each file streams into a temporary file in ``folder``; the byte count is checked against the
    server's Content-Length and the digest against ``checksums[fname] = (algorithm, hex)``
    (when known), then ``validate(temporary path, fname)`` (if given) may raise ``DataError``;
    only then is it renamed into place. On any failure the temporary file is
    removed and, when every URL has failed, ``DataError`` says why (for a checksum mismatch:
    the file, the expected and the actual digest). Returns the list of paths.
    """
    os.makedirs(folder, exist_ok=True)
    checksums = checksums or {}
    paths = []
    for fname in files:
        target = os.path.join(folder, fname)
        errors = []
        for base in ([base_urls] if isinstance(base_urls, str) else base_urls):
            url = base.rstrip("/") + "/" + fname
            try:
                _fetch(url, target, checksums.get(fname), progress, timeout, validate)
                break
            except (*_READ_ERRORS, DataError) as err:   # URLError is an OSError
                errors.append(f"{url}: {err}")
        else:
            raise DataError(f"could not download {fname}: " + "; ".join(errors))
        paths.append(target)
    return paths


def _fetch(url, target, checksum, progress, timeout, validate=None):
    from tqdm import tqdm

    algorithm, expected = checksum if checksum else ("sha256", None)
    digest = hashlib.new(algorithm)
    fname = os.path.basename(target)
    with atomic_file(target, suffix=".part") as out, \
            urllib.request.urlopen(url, timeout=timeout) as response:
        length = response.headers.get("Content-Length")
        length = int(length) if length is not None else None
        received = 0
        with tqdm(total=length, unit="B", unit_scale=True, desc=fname,
                  disable=not progress, leave=False) as bar:
            while True:
                block = response.read(1 << 16)
                if not block:
                    break
                out.write(block)
                digest.update(block)
                received += len(block)
                bar.update(len(block))
        if length is not None and received != length:
            raise DataError(f"{fname}: connection closed after {received} of {length} bytes")
        actual = digest.hexdigest()
        if expected is not None and actual != expected.lower():
            raise DataError(f"{fname}: {algorithm} checksum mismatch: expected {expected}, "
                            f"got {actual}")
        if validate is not None:
            out.flush()
            validate(out.name, fname)


def _load_named(name, root, download_, cache_dir, base_url, checksums, progress, extra_folders,
                flatten, scale, dtype):
    folders = [os.fspath(root)] if root is not None else (
        [os.fspath(cache_dir) if cache_dir is not None else default_cache_dir(name)]
        + list(extra_folders))
    for folder in folders:
        if os.path.isdir(folder) and not _missing(folder):
            return load_idx_folder(folder, name, flatten, scale, dtype)
    if not download_:
        partial = [(f, _missing(f)) for f in folders
                   if os.path.isdir(f) and len(_missing(f)) < len(IDX_FILES)]
        if partial:
            folder, missing = partial[0]
            raise DataError(f"{name}: {folder} has only some of the files: it lacks "
                            f"{', '.join(missing)} (raw or .gz). Pass download=True to fetch "
                            f"them.")
        raise DataError(
            f"{name}: no data found; looked in {', '.join(folders)} for "
            f"{', '.join(IDX_FILES.values())} (raw or .gz). Pass download=True to fetch them.")
    dest = os.fspath(cache_dir if cache_dir is not None else
                     root if root is not None else default_cache_dir(name))
    made = not os.path.isdir(dest)
    os.makedirs(dest, exist_ok=True)
    try:
        wanted = [stem + ".gz" for stem in _missing(dest)]
        download(wanted, dest, base_url or BASE_URLS[name], _checksum_table(name, checksums),
                 progress, validate=_check_idx_download)
    except BaseException:
        if made and not os.listdir(dest):       # nothing fetched: no trace of the attempt
            os.rmdir(dest)
        raise
    return load_idx_folder(dest, name, flatten, scale, dtype, source=dest)


def load_mnist(root=None, download=False, cache_dir=None, base_url=None, checksums=None,
               progress=True, flatten=True, scale=True, dtype=np.float32):
    """MNIST (60000 train / 10000 test handwritten digits, 28 × 28) as a ``Dataset``.

    Looks in ``root`` if given, else in ``cache_dir`` (default ``default_cache_dir("mnist")``).
    With ``download=True`` missing files are fetched into ``cache_dir`` (or ``root``, or the
    default cache) from ``base_url`` (a URL or list; default ``BASE_URLS["mnist"]``), checked
    against the published ``CHECKSUMS["mnist"]`` as updated by ``checksums`` (``{file: hex or
    (algorithm, hex)}``; ``{file: None}`` drops that file's digest), and read back as IDX before
    being renamed into place, so a bad download leaves nothing behind.
    """
    return _load_named("mnist", root, download, cache_dir, base_url, checksums, progress, (),
                       flatten, scale, dtype)


def load_fashion_mnist(root=None, download=False, cache_dir=None, base_url=None, checksums=None,
                       progress=True, flatten=True, scale=True, dtype=np.float32):
    """Fashion-MNIST (60000 / 10000 clothing images, 28 × 28) as a ``Dataset``.

    As ``load_mnist``; without ``root`` it also finds Debian's package ``dataset-fashion-mnist``
    (``/usr/share/datasets/fashion-mnist/*-ubyte.gz``) after looking in the cache.
    """
    return _load_named("fashion-mnist", root, download, cache_dir, base_url, checksums, progress,
                       (DEBIAN_FASHION_MNIST,), flatten, scale, dtype)


def load_digits(dtype=np.float32, test_size=0.25, random_state=0):
    """scikit-learn's bundled 8 × 8 digits (1797 images), X / 16 in [0, 1], split by
    ``train_test_split(test_size=0.25, random_state=0)``: 1347 train, 450 test.

    The file is read from scikit-learn's package folder without importing scikit-learn,
    whose import (~1–2.5 s) was most of a digits run's start-up; the split is
    ShuffleSplit's: ``p = RandomState(random_state).permutation(n)``, test rows ``p[:⌈n·t⌉]``,
    training rows the rest in order. Where either does not apply (the file is elsewhere,
    another kind of ``test_size`` or ``random_state``), scikit-learn's own functions run;
    tests/test_data.py checks that both give the same arrays."""
    plain = (isinstance(test_size, float) and 0 < test_size < 1
             and isinstance(random_state, (int, np.integer))
             and not isinstance(random_state, bool))
    bundled = _bundled_digits() if plain else None
    if bundled is None:
        from sklearn.datasets import load_digits as sk_load_digits
        from sklearn.model_selection import train_test_split

        digits = sk_load_digits()
        X = (digits.data / 16.0).astype(dtype)
        y = digits.target.astype(np.int64)
        X_train, X_test, y_train, y_test = train_test_split(
            X, y, test_size=test_size, random_state=random_state)
    else:
        pixels, y = bundled
        X = (pixels / 16.0).astype(dtype)
        n_test = math.ceil(test_size * len(X))
        order = np.random.RandomState(random_state).permutation(len(X))
        test, train = order[:n_test], order[n_test:]
        X_train, X_test, y_train, y_test = X[train], X[test], y[train], y[test]
    return Dataset(X_train, y_train, X_test, y_test, name="digits",
                   source="sklearn.datasets.load_digits")


def _bundled_digits():
    """(pixels (1797, 64) float64, labels int64) from the digits.csv.gz that scikit-learn ships
    (rows of 64 pixel values 0–16 and the label), or None if it is not there as expected."""
    import importlib.util
    try:
        spec = importlib.util.find_spec("sklearn")      # finds the folder; runs no sklearn code
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    path = os.path.join(list(spec.submodule_search_locations)[0], "datasets", "data",
                        "digits.csv.gz")
    try:
        table = np.loadtxt(path, delimiter=",")
    except (OSError, ValueError):
        return None
    if table.shape != (1797, 65):
        return None
    return table[:, :-1], table[:, -1].astype(np.int64)


def best_digits(data_dir=None, dtype=np.float32):
    """The best digit data at hand, without touching the network.

    MNIST if its files are in ``data_dir`` (default ``$CHAINRULE_DATA/mnist`` if set, else
    ``./data/mnist``); else Fashion-MNIST if Debian's package is installed; else scikit-learn's
    8 × 8 digits. ``.name`` and ``.source`` of the result say which was used.
    """
    if data_dir is None:
        env = os.environ.get("CHAINRULE_DATA")
        data_dir = os.path.join(env, "mnist") if env else os.path.join("data", "mnist")
    if os.path.isdir(data_dir) and not _missing(data_dir):
        return load_mnist(root=data_dir, dtype=dtype)
    if os.path.isdir(DEBIAN_FASHION_MNIST) and not _missing(DEBIAN_FASHION_MNIST):
        return load_fashion_mnist(root=DEBIAN_FASHION_MNIST, dtype=dtype)
    return load_digits(dtype=dtype)


# ---------------------------------------------------------------------------------------------
# Toy data sets and small helpers.
# ---------------------------------------------------------------------------------------------

def make_moons(n=100, noise=0.1, seed=0):
    """Two interleaving half circles (as scikit-learn's make_moons): X (n, 2) float64, y (n,) int64.

    Outer moon (label 0): (cos t, sin t); inner moon (label 1): (1 − cos t, 1/2 − sin t);
    t evenly spaced in [0, π]; Gaussian noise of standard deviation ``noise``; rows shuffled.
    """
    if not (isinstance(noise, (int, float, np.floating, np.integer))
            and not isinstance(noise, bool) and noise >= 0):
        raise ValueError(f"noise must be a number >= 0 (a standard deviation), got {noise!r}")
    rng = np.random.default_rng(seed)
    n_outer = n // 2
    n_inner = n - n_outer
    t_outer = np.linspace(0, np.pi, n_outer)
    t_inner = np.linspace(0, np.pi, n_inner)
    X = np.concatenate([
        np.stack([np.cos(t_outer), np.sin(t_outer)], axis=1),
        np.stack([1 - np.cos(t_inner), 0.5 - np.sin(t_inner)], axis=1),
    ])
    y = np.concatenate([np.zeros(n_outer, np.int64), np.ones(n_inner, np.int64)])
    X = X + noise * rng.standard_normal(X.shape)
    order = rng.permutation(n)
    return X[order], y[order]


def make_spiral(n_per_class=100, n_classes=3, noise=0.2, seed=0):
    """``n_classes`` interleaved spiral arms (the CS231n toy): X (n_per_class·n_classes, 2), y.

    Arm j: radius r evenly in [0, 1], angle t = 4j + 4r + noise·N(0, 1); point (r sin t, r cos t).
    """
    if int(n_classes) < 1 or int(n_per_class) < 1:
        raise ValueError(f"make_spiral needs n_classes >= 1 and n_per_class >= 1, got "
                         f"{n_classes} and {n_per_class}")
    if not (isinstance(noise, (int, float, np.floating, np.integer))
            and not isinstance(noise, bool) and noise >= 0):
        raise ValueError(f"noise must be a number >= 0, got {noise!r}")
    rng = np.random.default_rng(seed)
    r = np.linspace(0.0, 1.0, n_per_class)
    X, y = [], []
    for j in range(n_classes):
        t = 4 * j + 4 * r + noise * rng.standard_normal(n_per_class)
        X.append(np.stack([r * np.sin(t), r * np.cos(t)], axis=1))
        y.append(np.full(n_per_class, j, dtype=np.int64))
    return np.concatenate(X), np.concatenate(y)


def one_hot(y, n_classes, dtype=np.float64):
    """Y_ij = 1 if y_i = j else 0, for integer labels y_i in 0..n_classes−1 (booleans count as
    0 and 1; whole floats are accepted)."""
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"labels must be 1-D, got shape {y.shape}")
    # ±inf equals its own rounding, but casts to an arbitrary integer
    whole = y.dtype.kind == "f" and np.all(np.isfinite(y) & (y == np.round(y)))
    if y.dtype.kind == "b" or whole:
        y = y.astype(np.int64)          # a bool array would index as a mask, not as 0/1
    if y.dtype.kind not in "iu":
        raise ValueError(f"labels must be whole numbers, got dtype {y.dtype}")
    if y.size and (y.min() < 0 or y.max() >= n_classes):
        raise ValueError(f"labels must lie in 0..{n_classes - 1}, got values in "
                         f"{y.min()}..{y.max()}")
    Y = np.zeros((y.shape[0], n_classes), dtype=dtype)
    Y[np.arange(y.shape[0]), y] = 1
    return Y


def standardize(X, mean=None, std=None):
    """(X − μ) / σ per column; returns (X_std, μ, σ). Pass the training μ, σ for other splits.
    A constant column (σ = 0) is divided by 1: it becomes 0."""
    X = _floats(X, "standardize", mean is None or std is None)
    # a constant column's mean is rounded (0.1 × 1001 rows / 1001 ≠ 0.1), and so its σ is a
    # tiny number, not 0: dividing by it would turn the column into ±1 rather than 0
    constant = len(X) > 0 and X.max(axis=0) == X.min(axis=0)
    # μ, σ and X − μ in float64: float32 columns near ±3e38 would overflow the sums and the
    # differences (as in minmax_scale); μ and σ come back in X's dtype
    if mean is None:
        mean = np.where(constant, X[0] if len(X) else 0, X.mean(axis=0, dtype=np.float64))
    mean = np.asarray(mean, dtype=X.dtype)
    if std is None:
        std = np.where(constant, 0, X.std(axis=0, dtype=np.float64))
    std = np.asarray(std, dtype=X.dtype)
    std = np.where(std == 0, 1, std)
    scaled = (X - mean.astype(np.float64)) / std.astype(np.float64)
    return scaled.astype(X.dtype, copy=False), mean, std


def minmax_scale(X, lo=None, hi=None):
    """(X − min) / (max − min) per column into [0, 1]; returns (X_scaled, min, max).
    Pass the training min, max for other splits. A constant column is divided by 1."""
    X = _floats(X, "minmax_scale", lo is None or hi is None)
    lo = X.min(axis=0) if lo is None else np.asarray(lo, dtype=X.dtype)
    hi = X.max(axis=0) if hi is None else np.asarray(hi, dtype=X.dtype)
    # the span in float64: max − min of float32 columns near ±3e38 would overflow
    span = hi.astype(np.float64) - lo
    span = np.where(span == 0, 1, span)
    return ((X - lo.astype(np.float64)) / span).astype(X.dtype, copy=False), lo, hi


def _floats(X, name, needs_rows):
    """X as a float array (float32/float64 kept; integers and booleans become float64); when
    the column statistics are taken from X (``needs_rows``), it must have a row."""
    X = np.asarray(X)
    if needs_rows and len(X) == 0:
        raise ValueError(f"{name}: X has no rows to take the column statistics from (pass "
                         f"those of the training set)")
    return X if X.dtype.kind == "f" else X.astype(np.float64)


def train_val_split(X, y, fraction=0.1, seed=0):
    """Shuffle with ``seed``, hold out ``fraction`` of the rows: (X_train, X_val, y_train, y_val)."""
    X, y = np.asarray(X), np.asarray(y)
    if len(X) != len(y):
        raise ValueError(f"X has {len(X)} rows but y has {len(y)}")
    if len(X) < 2:
        raise ValueError(f"X has {len(X)} rows: a split needs at least 2 (1 training and 1 "
                         f"validation row)")
    if not 0 < fraction < 1:
        raise ValueError(f"fraction must lie strictly between 0 and 1, got {fraction}")
    order = np.random.default_rng(seed).permutation(len(X))
    n_val = max(1, math.ceil(fraction * len(X)))      # as scikit-learn's train_test_split
    if n_val >= len(X):
        raise ValueError(f"fraction={fraction} of {len(X)} rows leaves {len(X) - n_val} "
                         f"training rows: need at least 1 (and 1 validation row)")
    val, train = order[:n_val], order[n_val:]
    return X[train], X[val], y[train], y[val]
