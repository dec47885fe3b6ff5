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
    permissions of any new file under the umask."""
    path = os.fspath(path)
    folder, name = os.path.split(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    tmp = os.path.join(folder, f".{name}.{secrets.token_hex(6)}{suffix}")
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))   # claim the name
    try:
        with open(tmp, mode, encoding=encoding) as f:       # f.name: the temporary path
            yield f
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
