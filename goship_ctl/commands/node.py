"""``goship-ctl node add|list|drain|uncordon|facts``."""

from __future__ import annotations

import argparse

from goship_ctl.commands.common import add_client_options, fail, run_with_backend, show
from goship_ctl.commands.get import NODE_COLUMNS
from goship_ctl.documents import load_yaml_documents
from goship_ctl.errors import BadRequest
from goship_ctl.output import render
from goship_ctl.spec.project import CONFIDENTIAL_TYPES


def register(subparsers) -> None:
    node = subparsers.add_parser("node", help="manage nodes")
    actions = node.add_subparsers(dest="action", required=True, metavar="ACTION")

    add = actions.add_parser(
        "add", help="add a node, or replace an existing node's settings",
        description="Register a node (an Ansible host with libvirt). Running it again for the same name "
                    "replaces every setting given here, so repeat all options.")
    add.add_argument("name")
    add.add_argument("--connection", default="local", help="ansible_connection (default: local)")
    add.add_argument("--host", help="ansible_host (ssh nodes)")
    add.add_argument("--port", type=int, help="ansible_port")
    add.add_argument("--user", help="ansible_user")
    add.add_argument("--state-root", help="GoShip state directory on the node (default: /var/lib/goship)")
    add.add_argument("--label", action="append", default=[], metavar="KEY=VALUE", help="node label (repeatable)")
    add.add_argument("--var", action="append", default=[], metavar="KEY=VALUE", help="extra host var (repeatable)")
    add.add_argument("--vcpus", type=int, help="capacity override: vCPUs for project VMs (with --memory-mib)")
    add.add_argument("--memory-mib", type=int, help="capacity override: MiB for project VMs (with --vcpus)")
    add.add_argument("--confidential", action="append", choices=CONFIDENTIAL_TYPES, default=None,
                     help="override: confidential VM types the node supports (repeatable)")
    add_client_options(add)
    add.set_defaults(run=run_add, prog=add.prog)

    listing = actions.add_parser("list", help="list nodes")
    add_client_options(listing)
    listing.set_defaults(run=run_list, prog=listing.prog)

    for name, schedulable, text in (("drain", False, "move every project VM off the node and place nothing new there"),
                                    ("uncordon", True, "let the scheduler place VMs on the node again")):
        action = actions.add_parser(name, help=text, description=text[0].upper() + text[1:] + ".")
        action.add_argument("name")
        add_client_options(action)
        action.set_defaults(run=run_schedulable, schedulable=schedulable, prog=action.prog)

    facts = actions.add_parser(
        "facts", help="record a node's host facts",
        description="Record the result of goship.core.host_info for a node (its 'host' value, or the whole "
                    "module result) from a YAML/JSON file; capacity and confidential types follow from it.")
    facts.add_argument("name")
    facts.add_argument("-f", "--filename", required=True, metavar="FILE")
    add_client_options(facts)
    facts.set_defaults(run=run_facts, prog=facts.prog)


def run_add(args: argparse.Namespace) -> int:
    try:
        document = node_document(args)
    except BadRequest as exc:
        return fail(args, exc)
    return run_with_backend(args, lambda backend: _print_outcome(args, backend.apply_node(document)))


def node_document(args: argparse.Namespace) -> dict:
    document = {"name": args.name, "connection": args.connection, "labels": _pairs(args.label, "--label"),
                "vars": _pairs(args.var, "--var")}
    for field in ("host", "port", "user", "state_root"):
        if getattr(args, field) is not None:
            document[field] = getattr(args, field)
    if (args.vcpus is None) != (args.memory_mib is None):
        raise BadRequest("give --vcpus and --memory-mib together")
    if args.vcpus is not None:
        document["capacity"] = {"vcpus": args.vcpus, "memory_mib": args.memory_mib}
    if args.confidential is not None:
        document["confidential"] = sorted(set(args.confidential))
    return document


def run_list(args: argparse.Namespace) -> int:
    return run_with_backend(args, lambda backend: show(args, backend.list_nodes(), NODE_COLUMNS))


def run_schedulable(args: argparse.Namespace) -> int:
    return run_with_backend(
        args, lambda backend: _print_outcome(args, backend.set_node_schedulable(args.name, args.schedulable)))


def run_facts(args: argparse.Namespace) -> int:
    try:
        with open(args.filename, encoding="utf-8") as handle:
            documents = load_yaml_documents(handle.read())
    except OSError as exc:
        return fail(args, BadRequest("cannot read %s: %s" % (args.filename, exc)))
    except BadRequest as exc:
        return fail(args, exc)
    if len(documents) != 1 or not isinstance(documents[0], dict):
        return fail(args, BadRequest("%s must hold one mapping" % args.filename))
    host = documents[0].get("host", documents[0])
    return run_with_backend(args, lambda backend: _print_outcome(args, backend.record_node_facts(args.name, host)))


def _print_outcome(args, outcome: dict) -> int:
    if args.output != "table":
        print(render(outcome, args.output))
        return 0
    print(render([outcome["node"]], "table", NODE_COLUMNS))
    for move in outcome.get("moved", []):
        print("moved project %s: %s -> %s" % (move["project"], ",".join(move["from"]) or "-", ",".join(move["to"]) or "-"))
    for item in outcome.get("unschedulable", []):
        print("unschedulable project %s: %s" % (item["project"], item["reason"]))
    return 0


def _pairs(items: list[str], option: str) -> dict:
    pairs = {}
    for item in items:
        key, separator, value = item.partition("=")
        if not separator or not key:
            raise BadRequest("%s wants KEY=VALUE, got %r" % (option, item))
        pairs[key] = value
    return pairs
