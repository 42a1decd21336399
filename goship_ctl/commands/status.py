"""``goship-ctl status``: what runs where, as the nodes last reported it.

One row per container (app replica) in each project VM, with the VM's node and state; a VM
that reported no replica still gets a row. Read from the store (``get vms`` + ``get apps``);
``goship-ctl reconcile`` or a serving control service keeps it current.
"""

from __future__ import annotations

import argparse

from goship_ctl.commands.common import add_client_options, run_with_backend, show

COLUMNS = (
    ("NODE", lambda r: r["node"]), ("VM", lambda r: r["vm"]), ("VM_STATE", lambda r: r["vmState"]),
    ("APP", lambda r: r["app"]), ("REPLICA", lambda r: r["replica"]), ("STATE", lambda r: r["state"]),
    ("RESTARTS", lambda r: r["restarts"]),
)


def register(subparsers) -> None:
    parser = subparsers.add_parser("status", help="containers per node and VM, as last reported",
                                   description="One row per app replica in every project VM: node, VM, app, "
                                               "replica, state, restarts.")
    parser.add_argument("-p", "--project", default=None, help="only this project")
    add_client_options(parser)
    parser.set_defaults(run=run, prog=parser.prog)


def run(args: argparse.Namespace) -> int:
    return run_with_backend(args, lambda backend: show(args, status_rows(backend, args.project), COLUMNS))


def status_rows(backend, project: str | None = None) -> list[dict]:
    replicas: dict[tuple[str, str], list[dict]] = {}
    for app in backend.list_apps(project):
        for instance in app["instances"]:
            replicas.setdefault((app["project"], instance["node"]), []).append(dict(instance, app=app["name"]))
    rows = []
    for vm in backend.list_vms(project):
        base = {"project": vm["project"], "node": vm["node"], "vm": vm["domain"], "vmState": vm["state"],
                "desired": vm["desired"]}
        mine = sorted(replicas.get((vm["project"], vm["node"]), []), key=lambda r: (r["app"], r["replica"]))
        for instance in mine:
            rows.append(dict(base, app=instance["app"], replica=instance["replica"], state=instance["state"],
                             restarts=instance["restarts"], health=instance["health"]))
        if not mine:
            rows.append(dict(base, app=None, replica=None, state=None, restarts=None, health=None))
    return sorted(rows, key=lambda r: (r["node"], r["vm"], r["app"] or "", -1 if r["replica"] is None else r["replica"]))
