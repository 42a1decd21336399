"""The ``goship-ctl`` command line.

Each top-level command lives in its own module under ``goship_ctl.commands`` and exposes
``register(subparsers)``, which adds its parser and sets ``run`` (a callable taking the
parsed arguments and returning the exit status). Adding a command = adding a module and
one entry to ``COMMANDS``.
"""

from __future__ import annotations

import argparse
import sys

from goship_ctl import __version__
from goship_ctl.commands import (apply, delete, demo, describe, get, image, logs, node, reconcile, scale, serve, signal,
                                 status, token)

COMMANDS = (serve, apply, get, describe, scale, delete, node, token, image, reconcile, status, logs, signal, demo)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="goship-ctl", description="GoShip control service and tools."
    )
    parser.add_argument("--version", action="version", version=f"goship-ctl {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except KeyboardInterrupt:
        print(f"{args.prog}: interrupted", file=sys.stderr)
        return 130
