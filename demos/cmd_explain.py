"""`chainrule explain "EXPR" x=0.5 w=-1 b=2`: the backward pass of a formula, told step by step.

The formula is parsed by `autograd.expr` (a whitelist of numbers, names, + − × ÷ ** and a few
functions; nothing is ever evaluated as Python), built on `Value`s, differentiated, and explained.
``-o graph.svg`` also draws the graph (svg, png or pdf from the suffix). ``--forward x`` tells
forward-mode differentiation with respect to x instead: the same local derivatives, multiplied
from the inputs' end.
"""
from __future__ import annotations

import argparse
import os
import unicodedata

from demos.cli import UserError

EXAMPLE = 'chainrule explain "tanh(w*x + b)" x=0.5 w=-1 b=2 -o graph.svg --highlight w'


def add_parser(subparsers):
    p = subparsers.add_parser(
        "explain", help="explain the backward pass of a formula step by step, or forward "
                        "mode with --forward (and draw it with -o)",
        description=__doc__.split("\n\n")[0] + f"\n\nexample:\n  {EXAMPLE}",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("expression", help='a formula such as "tanh(w*x + b)" (quote it; one that '
                                      'starts with a minus sign goes after --, as in '
                                      'chainrule explain -- "-x*y" x=1 y=2)')
    p.add_argument("inputs", nargs="*", metavar="NAME=VALUE",
                   help="a value for every name in the formula, e.g. x=0.5 w=-1 b=2")
    p.add_argument("-o", "--output", metavar="FILE",
                   help="also draw the graph to FILE (.svg, .png or .pdf)")
    p.add_argument("--format", default="text", choices=("text", "markdown", "latex"),
                   help="format of the explanation (default text)")
    p.add_argument("--highlight", metavar="NAME",
                   help="in the picture, mark the paths from input NAME to the output")
    p.add_argument("--rankdir", default="LR", choices=("LR", "TB"),
                   help="picture layout: left to right (default) or top to bottom")
    p.add_argument("--forward", metavar="NAME",
                   help="tell forward-mode differentiation with respect to input NAME instead "
                        "of the backward pass (the same local derivatives, from the inputs' "
                        "end)")
    p.add_argument("--max-steps", type=int, default=200, metavar="N",
                   help="print at most N steps (default 200)")
    p.add_argument("--timeout", type=_seconds, default=60.0, metavar="SECONDS",
                   help="stop drawing the picture after SECONDS (default 60; 0: no limit)")
    p.set_defaults(run=run)


def build(expression, inputs):
    """(root, {name: leaf}) for the formula, or UserError with a one-line message."""
    from autograd.expr import ExpressionError, parse_assignments, parse_expression
    try:
        expr = parse_expression(expression)
        values = parse_assignments(inputs)
        return expr.build_with_leaves(values)
    except ExpressionError as error:
        raise UserError(str(error)) from None


def _seconds(text):
    """--timeout: a number of seconds ≥ 0; 0 means no limit (None)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text!r}")
    return value or None


def render_picture(dot, path, shown=None, timeout=60.0, timeout_option=None):
    """Render a graphviz.Digraph to ``path`` (stopped after ``timeout`` seconds; None: no
    limit); a failure becomes a one-line UserError naming ``shown`` (the file the user asked
    for, when ``path`` is its staging name), and for a render stopped at the limit the
    command's ``timeout_option`` that changes it."""
    from autograd.render import RenderError, render
    directory = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(directory, exist_ok=True)
        return render(dot, path, timeout=timeout)
    except (RenderError, ValueError) as error:
        hint = f" ({timeout_option})" if timeout_option and "within" in str(error) else ""
        raise UserError(f"cannot write {shown or path}: {error}{hint}") from None
    except OSError as error:                # the reason, not the temporary file's name
        raise UserError(f"cannot write {shown or path}: {error.strerror or error}") from None


def check_picture_path(path):
    """-o FILE: a known suffix, a renderer that makes it, and a folder that exists or can be
    made, before any work."""
    from autograd.render import FORMATS, RenderError, _choose
    from demos.cli import output_folder
    suffix = os.path.splitext(path)[1].lower().lstrip(".")
    if suffix not in FORMATS:
        raise UserError(f"-o {path}: the picture's format comes from its suffix: "
                        f"{', '.join('.' + f for f in FORMATS)}")
    try:
        _choose(None, suffix)
    except (RenderError, ValueError) as error:
        raise UserError(f"cannot write {path}: {error}") from None
    folder = os.path.dirname(path)
    if folder:
        output_folder(folder, option=f"-o {path}:")


def run(args):
    from autograd.draw import GraphTooLarge, draw
    from autograd.explain import explain
    root, leaves = build(args.expression, args.inputs)
    if root.label is None:      # too long for a node label: the title still shows the formula
        root.label = " ".join(args.expression.split())
    highlight = None
    if args.highlight is not None:
        args.highlight = unicodedata.normalize("NFKC", args.highlight)    # as the names were
        if args.highlight not in leaves:
            known = ", ".join(leaves) or "none"
            raise UserError(f"--highlight {args.highlight}: not an input of the expression "
                            f"(its inputs: {known})")
        highlight = leaves[args.highlight]
    wrt = None
    if args.forward is not None:
        name = unicodedata.normalize("NFKC", args.forward)
        if name not in leaves:
            known = ", ".join(leaves) or "none"
            raise UserError(f"--forward {args.forward}: not an input of the expression "
                            f"(its inputs: {known})")
        wrt = leaves[name]
    if args.max_steps < 1:
        raise UserError(f"--max-steps must be at least 1, got {args.max_steps}")
    if not leaves:
        raise UserError(f"{args.expression!r} has no inputs (give them as name=value), so there "
                        "is nothing to differentiate")
    root.backward()                         # before drawing: the picture shows the gradients
    dot = None
    if args.output is not None:             # the picture's path and size, before any output
        check_picture_path(args.output)
        try:
            dot = draw(root, rankdir=args.rankdir, highlight=highlight)
        except GraphTooLarge as error:
            raise UserError(str(error)) from None
    text = explain(root, format=args.format, max_steps=args.max_steps,
                   mode="reverse" if wrt is None else "forward", wrt=wrt)
    print(text.replace("(raise max_steps to see them)", "(raise --max-steps to see them)"), end="")
    if dot is not None:
        path = render_picture(dot, args.output, timeout=args.timeout,
                              timeout_option="--timeout SECONDS; 0 for no limit")
        print(f"\nwrote {path}")
    return 0
