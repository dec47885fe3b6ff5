"""`chainrule`: the command a user runs first.

Each subcommand lives in its own module of this package, with ``add_parser(subparsers)`` and
``run(args) -> exit status``. Errors a user can fix (bad file, bad expression, unknown name)
print one line and exit with status 2, without a traceback.
"""
from __future__ import annotations

import argparse
import importlib
import sys

SUBCOMMANDS = ("train", "predict", "check", "explain", "descent", "walkthrough", "gallery")


class UserError(Exception):
    """A problem with the user's input: reported in one line, exit status 2."""


def build_parser():
    parser = argparse.ArgumentParser(
        prog="chainrule",
        description="See and check the chain rule at work: train the document's network, "
                    "compare autograd with the hand-derived deltas, draw and explain graphs.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        module = importlib.import_module(f"demos.cmd_{name}")
        module.add_parser(sub)
    return parser


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


if __name__ == "__main__":
    # Run through the package's module, so subcommands and this file share one UserError.
    from demos.cli import main as package_main
    sys.exit(package_main())
