"""Writing files so that nothing a user saved is ever left half-written.

Every file chainrule saves (models, IDX files, downloads, figures, JSON) goes through
`atomic_file`: the bytes go to a temporary file in the target's folder, which is renamed onto the
target only once it is complete. A crash, a Ctrl-C or an error leaves the old file (or none),
never a partial one. Plain numpy and the standard library: `nn.data` uses it too.
"""
from __future__ import annotations

import contextlib
import os
import secrets


@contextlib.contextmanager
def atomic_file(path, mode="wb", suffix=".tmp", encoding=None):
    """Yield a file open on a temporary name beside ``path`` (its ``name``); rename it onto
    ``path`` when the block ends normally, remove it when the block raises. The file gets the
    permissions of any new file under the umask. A symbolic link is written through (its
    target is replaced); a target that exists and is not a regular file (a folder, a FIFO, a
    device such as /dev/null) is refused, never replaced."""
    path = os.path.realpath(os.fspath(path))
    if os.path.exists(path) and not os.path.isfile(path):
        raise IsADirectoryError(21, "not a regular file, so not replaced", path) \
            if os.path.isdir(path) else OSError(22, "not a regular file, so not replaced", path)
    folder, name = os.path.split(path)
    os.makedirs(folder, exist_ok=True)
    tmp = os.path.join(folder, f".{name}.{secrets.token_hex(6)}{suffix}")
    try:
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))   # claim the name
    except OSError as error:            # name the file asked for, not the temporary one
        raise type(error)(error.errno, error.strerror, path) from None
    try:
        with open(tmp, mode, encoding=encoding) as f:       # f.name: the temporary path
            yield f
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
