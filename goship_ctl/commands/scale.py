"""``goship-ctl scale PROJECT APP REPLICAS``: containers per project VM for one app."""

from __future__ import annotations

import argparse

from goship_ctl.commands.apply import summary
from goship_ctl.commands.common import add_client_options, run_with_backend
from goship_ctl.commands.wait import add_wait_options, wait_for_projects
from goship_ctl.output import render


def register(subparsers) -> None:
    parser = subparsers.add_parser("scale", help="set an app's replicas",
                                   description="Set how many containers of APP run in every VM of PROJECT.")
    parser.add_argument("project")
    parser.add_argument("app")
    parser.add_argument("replicas", type=_count)
    parser.add_argument("--resource-version", type=int, default=None,
                        help="fail with exit code 4 unless the project still has this resourceVersion")
    add_wait_options(parser)
    add_client_options(parser)
    parser.set_defaults(run=run, prog=parser.prog)


def run(args: argparse.Namespace) -> int:
    return run_with_backend(args, lambda backend: _scale(args, backend))


def _scale(args, backend) -> int:
    outcome = backend.scale_app(args.project, args.app, args.replicas, args.resource_version)
    print(summary(outcome) if args.output == "table" else render(outcome, args.output))
    if args.wait:
        return wait_for_projects(args, backend, [args.project])
    return 0


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("replicas must be >= 0")
    return value
