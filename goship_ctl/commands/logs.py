"""``goship-ctl logs PROJECT APP``: the newest log lines of an app's replicas in each project VM."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime, timezone

from goship_ctl.commands.common import add_client_options, run_with_backend
from goship_ctl.commands.guest_ops import add_target_options, reconciler_or_usage
from goship_ctl.errors import EXIT_ERROR, EXIT_OK, EXIT_USAGE
from goship_ctl.output import render
from goship_ctl.reconciler.events import GUEST_LOGS


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "logs", help="an app's newest log lines, read through guest_init",
        description="Read the newest stdout/stderr lines of an app's replicas (and guest_init's notes about "
                    "their starts and exits) in every VM of the project, through Ansible and guest_init.")
    add_target_options(parser)
    parser.add_argument("--tail", type=int, default=100, metavar="N", help="lines per VM (default: 100, at most 5000)")
    add_client_options(parser)
    parser.set_defaults(run=run, prog=parser.prog)


def run(args: argparse.Namespace) -> int:
    if not 0 <= args.tail <= 5000:
        print("%s: error: --tail must be from 0 to 5000" % args.prog, file=sys.stderr)
        return EXIT_USAGE
    return run_with_backend(args, lambda backend: _logs(args, backend))


def _logs(args, backend) -> int:
    reconciler = reconciler_or_usage(args, backend)
    if reconciler is None:
        return EXIT_USAGE
    hosts = reconciler.logs(args.project, args.app, args.replica, args.tail, args.node or None)
    lines = [dict(line, node=node) for node, host in sorted(hosts.items())
             for res in host.module_results.get(GUEST_LOGS, []) for line in res.get("lines") or []]
    if args.output != "table":
        print(render(lines, args.output))
    else:
        for line in lines:
            stamp = datetime.fromtimestamp(line["ts"], timezone.utc).strftime("%H:%M:%S")
            print("%s %s/%s %s %-6s %s" % (stamp, line["node"], args.app, line["replica"], line["stream"], line["text"]))
    code = EXIT_OK
    for node, host in sorted(hosts.items()):
        if host.result != "ok":
            print("%s: error: node %s: %s" % (args.prog, node, host.message), file=sys.stderr)
            code = EXIT_ERROR
    return code
