"""``goship-ctl delete project|node NAME``."""

from __future__ import annotations

import argparse

from goship_ctl.commands.common import add_client_options, run_with_backend
from goship_ctl.output import render


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "delete", help="delete a project or a node",
        description="Delete a project (its VMs are removed by the next reconcile) or a node that runs no "
                    "VMs (drain it first).")
    parser.add_argument("kind", choices=("project", "node"))
    parser.add_argument("name")
    parser.add_argument("--resource-version", type=int, default=None,
                        help="projects: fail with exit code 4 unless the project still has this resourceVersion")
    add_client_options(parser)
    parser.set_defaults(run=run, prog=parser.prog)


def run(args: argparse.Namespace) -> int:
    return run_with_backend(args, lambda backend: _delete(args, backend))


def _delete(args, backend) -> int:
    if args.kind == "project":
        outcome = backend.delete_project(args.name, args.resource_version)
    else:
        outcome = backend.delete_node(args.name)
    if args.output == "table":
        print("%s/%s deleted" % (args.kind, args.name))
    else:
        print(render(outcome, args.output))
    return 0
