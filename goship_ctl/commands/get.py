"""``goship-ctl get projects|apps|nodes|vms``: list resources."""

from __future__ import annotations

import argparse

from goship_ctl.commands.common import add_client_options, run_with_backend, show

PROJECT_COLUMNS = (
    ("NAME", lambda p: p["name"]), ("GENERATION", lambda p: p["generation"]), ("NODES", lambda p: p["nodes"]),
    ("APPS", lambda p: p["apps"]), ("VM", lambda p: "%d vCPU %d MiB" % (p["vcpus"], p["memory_mib"])),
    ("SCHEDULED", lambda p: p["scheduled"]), ("MESSAGE", lambda p: p["message"] or None),
)
APP_COLUMNS = (
    ("PROJECT", lambda a: a["project"]), ("APP", lambda a: a["name"]), ("IMAGE", lambda a: a["image"]),
    ("REPLICAS", lambda a: a["replicas"]), ("DESIRED", lambda a: a["desired"]),
    ("STATES", lambda a: a["states"] or None), ("RESTARTS", lambda a: a["restarts"]),
)
NODE_COLUMNS = (
    ("NAME", lambda n: n["name"]), ("STATUS", lambda n: n["status"]),
    ("SCHEDULABLE", lambda n: n["schedulable"]),
    ("VCPUS", lambda n: "%d/%d" % (n["allocated"]["vcpus"], n["capacity"]["vcpus"]) if n["capacity"] else None),
    ("MEMORY_MIB", lambda n: "%d/%d" % (n["allocated"]["memory_mib"], n["capacity"]["memory_mib"])
     if n["capacity"] else None),
    ("LABELS", lambda n: n["connection"].get("labels")), ("PROJECTS", lambda n: n["projects"]),
)
VM_COLUMNS = (
    ("PROJECT", lambda v: v["project"]), ("NODE", lambda v: v["node"]), ("DOMAIN", lambda v: v["domain"]),
    ("STATE", lambda v: v["state"]), ("DESIRED", lambda v: v["desired"]),
    ("GENERATION", lambda v: "%s/%s" % (v["observedGeneration"] if v["observedGeneration"] is not None else "-",
                                        v["generation"] if v["generation"] is not None else "-")),
    ("MESSAGE", lambda v: v["message"] or None),
)
KINDS = ("projects", "apps", "nodes", "vms")


def register(subparsers) -> None:
    parser = subparsers.add_parser("get", help="list projects, apps, nodes or VMs",
                                   description="List resources. Apps and VMs can be limited to one project.")
    parser.add_argument("kind", choices=KINDS)
    parser.add_argument("-p", "--project", default=None, help="only this project (apps, vms)")
    add_client_options(parser)
    parser.set_defaults(run=run, prog=parser.prog)


def run(args: argparse.Namespace) -> int:
    return run_with_backend(args, lambda backend: _get(args, backend))


def _get(args, backend) -> int:
    if args.kind == "projects":
        return show(args, backend.list_projects(), PROJECT_COLUMNS)
    if args.kind == "apps":
        return show(args, backend.list_apps(args.project), APP_COLUMNS)
    if args.kind == "vms":
        return show(args, backend.list_vms(args.project), VM_COLUMNS)
    return show(args, backend.list_nodes(), NODE_COLUMNS)
