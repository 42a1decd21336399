"""What ``goship-ctl logs`` and ``signal`` share: they reach guest_init only through Ansible
(playbooks/logs.yml, signal.yml run by the embedded store's reconciler), never over a VM socket."""

from __future__ import annotations

import argparse
import sys

from goship_ctl.commands.wait import embedded_reconciler


def add_target_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("project")
    parser.add_argument("app")
    parser.add_argument("--replica", type=int, default=None, help="replica index (default: every replica)")
    parser.add_argument("--node", action="append", default=[], metavar="NAME",
                        help="only the project's VM on this node (repeatable; default: every node of the project)")


def reconciler_or_usage(args: argparse.Namespace, backend):
    """The embedded reconciler, or None after printing why the command needs it."""
    reconciler = embedded_reconciler(args, backend)
    if reconciler is None:
        print("%s: error: this command runs Ansible on the control service's host: run it there without --url"
              % args.prog, file=sys.stderr)
    return reconciler
