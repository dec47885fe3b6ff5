"""`chainrule`: the command a user runs first.

Each subcommand lives in its own module of this package, with ``add_parser(subparsers)`` and
``run(args) -> exit status``. Errors a user can fix (bad file, bad expression, unknown name)
print one line and exit with status 2, without a traceback. A reader of the output that goes
away (`chainrule train | head -3`) stops nothing: the command finishes its work quietly.
"""
from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import shutil
import signal
import sys
import tempfile

try:
    import fcntl
except ImportError:         # Windows: no flock, so no staging folder is ever judged dead
    fcntl = None

SUBCOMMANDS = ("train", "predict", "check", "explain", "descent", "walkthrough", "gallery")


class UserError(Exception):
    """A problem with the user's input: reported in one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error (``chainrule train: error: …``, exit status 2) instead of
    the usage text followed by the error; ``--help`` still shows the usage. Subcommand parsers
    are made from the same class."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def seed(text):
    """argparse type for --seed: a whole number ≥ 0 (numpy's generators take no negative seed)."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a whole number ≥ 0, got {text!r}")
    return value


def output_folder(path, option="--out"):
    """Check, before any work, that ``path`` is a folder or can be made one (it is made when the
    first file is written, so a failed run leaves nothing behind); else a UserError naming it."""
    if not path:            # os.makedirs("") fails only after the work, naming no file
        raise UserError(f"{option} '': no folder named (use . for the current folder)")
    if os.path.exists(path) and not os.path.isdir(path):
        raise UserError(f"{option} {path}: cannot create the folder (a file of that name exists)")
    parent = os.path.abspath(path)
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        raise UserError(f"{option} {path}: cannot create the folder ({parent} is a file)")
    try:                    # the one sure test (root passes os.access even for /proc)
        with tempfile.TemporaryFile(dir=parent):
            pass
    except OSError as error:
        raise UserError(f"{option} {path}: cannot write in {parent} "
                        f"({error.strerror or error})") from None
    return path


STAGING_PREFIX = ".staging-"


# A run's staging folder carries a flock held for the run's life, not a PID in its name: the
# kernel drops the lock the moment the process dies (SIGKILL included), and a lock is never
# mistaken as a PID can be (reused, or from another PID namespace sharing the folder).
def _remove_dead_staging(folder):
    """Remove the staging folders that runs killed mid-write left in ``folder``: those whose
    lock can be taken. A folder whose lock is held (a live run) or cannot be taken (a file
    system without locks) is left alone."""
    if fcntl is None:
        return
    for name in os.listdir(folder):
        if not name.startswith(STAGING_PREFIX):
            continue
        path = os.path.join(folder, name)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        except OSError:     # gone already, or not a folder: not ours to remove
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:     # held by a live run, or no locks on this file system
            pass
        else:
            shutil.rmtree(path, ignore_errors=True)
        finally:
            os.close(fd)


def _locked_staging(folder):
    """(path, fd): a new staging folder in ``folder`` and the descriptor whose flock marks it
    as in use until closed (fd None where there is no fcntl).

    Between mkdtemp and flock another run may judge the folder dead and remove it: the lock,
    once ours, is checked to be on the folder still there, else a new folder is made."""
    while True:
        staging = tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=folder)
        if fcntl is None:
            return staging, None
        try:
            fd = os.open(staging, os.O_RDONLY | os.O_DIRECTORY)
        except FileNotFoundError:
            continue
        with contextlib.suppress(OSError):      # no locks here: then nobody removes it
            fcntl.flock(fd, fcntl.LOCK_EX)
        with contextlib.suppress(FileNotFoundError):
            if os.path.samestat(os.fstat(fd), os.stat(staging)):
                return staging, fd
        os.close(fd)


@contextlib.contextmanager
def staged_outputs(folder):
    """Yield a staging folder inside ``folder``; when the block ends normally, every file in it
    replaces its namesake in ``folder`` in one burst of renames with Ctrl-C held off, so the
    outputs of a run (a model, its sidecar, its figures) are all new or all as they were. A
    block that fails leaves ``folder`` as it was (and removes it if this made it); staging
    folders left by runs that were killed are removed first."""
    made = not os.path.exists(folder)
    os.makedirs(folder, exist_ok=True)
    _remove_dead_staging(folder)
    staging, lock = _locked_staging(folder)
    done = False
    try:
        yield staging
        names = sorted(os.listdir(staging))
        for name in names:
            # os.replace cannot put a file over a folder: refuse before the first rename, so
            # the burst never stops half-way, and name the target, not the staging file
            target = os.path.join(folder, name)
            if os.path.isdir(target) and not os.path.islink(target):
                raise IsADirectoryError(21, "a folder of that name is in the way, so nothing "
                                            "was replaced", target)
        held = {signal.SIGINT, signal.SIGTERM}
        mask = getattr(signal, "pthread_sigmask", None)
        previous = mask(signal.SIG_BLOCK, held) if mask else None
        try:
            for name in names:
                os.replace(os.path.join(staging, name), os.path.join(folder, name))
        finally:
            if mask:
                mask(signal.SIG_SETMASK, previous)      # a Ctrl-C held off arrives now
        done = True
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if lock is not None:
            os.close(lock)                              # after the removal: still ours
        if made and not done:
            with contextlib.suppress(OSError):
                os.rmdir(folder)


def build_parser():
    parser = _Parser(
        prog="chainrule",
        description="See and check the chain rule at work: train the document's network, "
                    "compare autograd with the hand-derived deltas, draw and explain graphs.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        module = importlib.import_module(f"demos.cmd_{name}")
        module.add_parser(sub)
    return parser


class _OutlivesItsReader:
    """sys.stdout or sys.stderr while a command runs: once the reader of the pipe has gone
    (`chainrule train | head -3`), further output goes to os.devnull instead of raising
    BrokenPipeError, so the command still finishes its work (trains, saves the model, draws
    the picture) and ends with its own status. The file descriptor itself is redirected, as
    Python's note on SIGPIPE advises, so the interpreter's final flush cannot fail either."""

    def __init__(self, stream):
        self.stream = stream

    def write(self, text):
        try:
            return self.stream.write(text)
        except BrokenPipeError:
            self._to_devnull()
            return len(text)

    def flush(self):
        try:
            self.stream.flush()
        except BrokenPipeError:
            self._to_devnull()

    def _to_devnull(self):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, self.stream.fileno())
        os.close(devnull)

    def __getattr__(self, name):            # isatty, encoding, fileno…: the stream's own
        return getattr(self.stream, name)


@contextlib.contextmanager
def _outliving_readers():
    """sys.stdout and sys.stderr as _OutlivesItsReader for the length of a command (one that
    is None, its descriptor closed at the start as in `chainrule … >&-`, stays None). What is
    still buffered at the end is flushed through them: a closed pipe is met here, quietly,
    and not by the interpreter's flush at exit."""
    saved = sys.stdout, sys.stderr
    wrapped = [s if s is None else _OutlivesItsReader(s) for s in saved]
    sys.stdout, sys.stderr = wrapped
    try:
        yield
    finally:
        sys.stdout, sys.stderr = saved
        for stream in wrapped:
            if stream is not None:
                stream.flush()


_TOO_BIG = ("Maximum allowed dimension exceeded", "array is too big")


@_outliving_readers()
def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        return int(args.run(args) or 0)
    except UserError as error:
        print(f"chainrule {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"chainrule {args.command}: interrupted", file=sys.stderr)
        return 130
    except (MemoryError, ValueError) as error:
        # sizes a user can type (--sizes 1000000,1000000) but no machine can hold; past
        # numpy's index range (--hidden 99999999999999999999) numpy says so with a ValueError
        if isinstance(error, ValueError) and not str(error).startswith(_TOO_BIG):
            raise
        print(f"chainrule {args.command}: error: not enough memory for these sizes; choose "
              f"smaller ones (see chainrule {args.command} --help)", file=sys.stderr)
        return 2
    except OSError as error:
        # the file system said no while writing (no such folder, read-only, disk full): the
        # file and the reason in one line; atomic writes have left nothing half-written
        where = f"{error.filename}: " if error.filename else ""
        print(f"chainrule {args.command}: error: {where}{error.strerror or error}",
              file=sys.stderr)
        return 2


if __name__ == "__main__":
    # Run through the package's module, so subcommands and this file share one UserError.
    from demos.cli import main as package_main
    sys.exit(package_main())
