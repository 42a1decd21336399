"""``goship-ctl describe project|node NAME``: everything about one resource, with recent events."""

from __future__ import annotations

import argparse

from goship_ctl.commands.common import add_client_options, run_with_backend
from goship_ctl.output import render

RECENT_EVENTS = 20
EVENT_PAGE = 1000


def register(subparsers) -> None:
    parser = subparsers.add_parser("describe", help="show one project or node in full",
                                   description="Show a project (spec with secrets redacted, status, VMs, "
                                               "apps, recent events) or a node.")
    parser.add_argument("kind", choices=("project", "node"))
    parser.add_argument("name")
    add_client_options(parser, output=False)
    parser.add_argument("-o", "--output", choices=("yaml", "json"), default="yaml", help="output format (default: yaml)")
    parser.set_defaults(run=run, prog=parser.prog)


def run(args: argparse.Namespace) -> int:
    return run_with_backend(args, lambda backend: _describe(args, backend))


def _describe(args, backend) -> int:
    if args.kind == "project":
        data = backend.get_project(args.name)
        data["events"] = recent_events(backend, project=args.name)
    else:
        data = backend.get_node(args.name)
        data["events"] = recent_events(backend, node=args.name)
    print(render(data, args.output))
    return 0


def recent_events(backend, **which) -> list[str]:
    """The last RECENT_EVENTS events as ``time kind: message`` lines."""
    events, after = [], 0
    while True:
        page = backend.events(after=after, limit=EVENT_PAGE, **which)
        events.extend(page)
        if len(page) < EVENT_PAGE:
            break
        after = page[-1]["id"]
    return ["%s %s: %s" % (event["at"], event["kind"], event["message"]) for event in events[-RECENT_EVENTS:]]
