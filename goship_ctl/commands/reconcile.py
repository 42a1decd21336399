"""``goship-ctl reconcile``: run playbooks/reconcile.yml now, in this process, on the embedded store.

Without ``--node``/``--all`` it picks the nodes that are out of date: desired state changed,
never reached, unreachable, or last report older than ``--stale-after``. ``--wait`` keeps going
while the runs change placement (first facts, unreachable nodes) and shows live progress.
"""

from __future__ import annotations

import argparse
import sys
import time

from goship_ctl.commands.common import add_client_options, run_with_backend
from goship_ctl.commands.wait import cancel_at, embedded_reconciler, run_foreground
from goship_ctl.errors import EXIT_NOT_CONVERGED, EXIT_OK, EXIT_USAGE
from goship_ctl.output import render

DEFAULT_STALE_S = 300.0
DEFAULT_TIMEOUT_S = 1800.0
RESULT_COLUMNS = (("NODE", lambda r: r["node"]), ("RESULT", lambda r: r["result"]),
                  ("CHANGED", lambda r: r["changed"]), ("MESSAGE", lambda r: r["message"] or None))


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "reconcile", help="bring nodes to the desired state now",
        description="Run playbooks/reconcile.yml through ansible-runner for the nodes that are out of date "
                    "(or the ones named) and record what they report. Works on the embedded store; a "
                    "serving control service reconciles on its own.")
    parser.add_argument("--node", action="append", default=[], metavar="NAME", help="only this node (repeatable)")
    parser.add_argument("--all", action="store_true", help="every node, out of date or not")
    parser.add_argument("--stale-after", type=float, default=DEFAULT_STALE_S, metavar="SECONDS",
                        help="a node whose last report is older counts as out of date (default: %d)" % DEFAULT_STALE_S)
    parser.add_argument("--wait", action="store_true",
                        help="show live progress and go on while the runs change placement, until the nodes settle")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S, metavar="SECONDS",
                        help="cancel the runs after this long (default: %d)" % DEFAULT_TIMEOUT_S)
    add_client_options(parser)
    parser.set_defaults(run=run, prog=parser.prog)


def run(args: argparse.Namespace) -> int:
    return run_with_backend(args, lambda backend: _reconcile(args, backend))


def _reconcile(args, backend) -> int:
    # pylint: disable=import-outside-toplevel
    from goship_ctl.reconciler.settle import out_of_date

    reconciler = embedded_reconciler(args, backend)
    if reconciler is None:
        print("%s: error: reconcile runs Ansible on the control service's own store: run it there without "
              "--url (a serving control service reconciles on its own)" % args.prog, file=sys.stderr)
        return EXIT_USAGE
    service = backend.service
    known = [node["name"] for node in backend.list_nodes()]
    unknown = sorted(set(args.node) - set(known))
    if unknown:
        print("%s: error: no such node: %s" % (args.prog, ", ".join(unknown)), file=sys.stderr)
        return EXIT_USAGE
    if args.node or args.all:
        wanted = {node: ["requested by goship-ctl reconcile"] for node in (args.node or known)}
        reconciler.apps_fast_path = False  # asked for by name: everything, not just the apps
    else:
        wanted = out_of_date(service.sessions, service.trigger, args.stale_after)
        for node, why in reconciler.recover().items():  # runs a killed process left unfinished
            wanted.setdefault(node, []).extend(why)
    deadline = time.monotonic() + args.timeout
    if args.wait:
        results = run_foreground(reconciler, service, deadline, wanted)
    elif wanted:
        with cancel_at(deadline) as cancel:
            results = reconciler.reconcile(list(wanted), wanted, cancel)
    else:
        results = {}
    rows = [{"node": node, "result": host.result, "changed": host.changed, "message": host.message}
            for node, host in sorted(results.items())]
    if args.output != "table":
        print(render(rows, args.output))
    elif rows:
        print(render(rows, "table", RESULT_COLUMNS))
    else:
        print("nothing to do: every node is up to date")
    return EXIT_OK if all(row["result"] == "ok" for row in rows) else EXIT_NOT_CONVERGED
