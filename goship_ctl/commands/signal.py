"""``goship-ctl signal PROJECT APP``: signal an app's replicas through guest_init (restart/kill path).

guest_init's restart policy decides what happens next: a killed replica of an app with the
default policy is started again.
"""

from __future__ import annotations

import argparse
import sys

from goship_ctl.commands.common import add_client_options, run_with_backend
from goship_ctl.commands.guest_ops import add_target_options, reconciler_or_usage
from goship_ctl.errors import EXIT_ERROR, EXIT_OK, EXIT_USAGE
from goship_ctl.output import render
from goship_ctl.reconciler.events import GUEST_SIGNAL


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "signal", help="send a signal to an app's replicas through guest_init",
        description="Send a signal to one replica (--replica) or to every replica of an app, in every VM of the "
                    "project or on the nodes named, through Ansible and guest_init. No shell, no SSH into a VM.")
    add_target_options(parser)
    parser.add_argument("--signal", default="TERM", help="signal name, with or without SIG (default: TERM)")
    add_client_options(parser)
    parser.set_defaults(run=run, prog=parser.prog)


def run(args: argparse.Namespace) -> int:
    return run_with_backend(args, lambda backend: _signal(args, backend))


def _signal(args, backend) -> int:
    reconciler = reconciler_or_usage(args, backend)
    if reconciler is None:
        return EXIT_USAGE
    hosts = reconciler.signal(args.project, args.app, args.signal, args.replica, args.node or None)
    rows = [{"node": node, "result": host.result, "message": host.message,
             "signalled": [item for res in host.module_results.get(GUEST_SIGNAL, []) for item in res.get("signalled") or []]}
            for node, host in sorted(hosts.items())]
    if args.output != "table":
        print(render(rows, args.output))
    code = EXIT_OK
    for row in rows:
        if row["result"] != "ok":
            print("%s: error: node %s: %s" % (args.prog, row["node"], row["message"]), file=sys.stderr)
            code = EXIT_ERROR
        elif args.output == "table":
            targets = ", ".join("replica %d (pid %s)" % (item["replica"], item["pid"]) for item in row["signalled"])
            print("%s: SIG%s sent to %s" % (row["node"], args.signal.upper().removeprefix("SIG"),
                                            targets or "no running replica"))
    return code
