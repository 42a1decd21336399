"""``goship-ctl apply -f FILE``: apply Project documents (YAML or JSON; several per file)."""

from __future__ import annotations

import argparse
import sys

from goship_ctl.commands.common import add_client_options, fail, run_with_backend
from goship_ctl.commands.wait import add_wait_options, wait_for_projects
from goship_ctl.documents import load_yaml_documents
from goship_ctl.errors import EXIT_OK, EXIT_UNSCHEDULABLE, BadRequest
from goship_ctl.output import render


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "apply", help="create or update projects from a file",
        description="Apply every Project document in FILE ('-' reads stdin). A document that names "
                    "metadata.resourceVersion is written only if the stored project still has that version.")
    parser.add_argument("-f", "--filename", required=True, metavar="FILE", help="YAML or JSON file, or -")
    add_wait_options(parser)
    add_client_options(parser)
    parser.set_defaults(run=run, prog=parser.prog)


def run(args: argparse.Namespace) -> int:
    try:
        documents = load_yaml_documents(_read(args.filename))
    except (OSError, UnicodeDecodeError) as exc:
        return fail(args, BadRequest("cannot read %s: %s" % (args.filename, exc)))
    except BadRequest as exc:
        return fail(args, exc)
    if not documents:
        return fail(args, BadRequest("%s holds no document" % args.filename))
    return run_with_backend(args, lambda backend: _apply_all(args, backend, documents))


def _apply_all(args, backend, documents) -> int:
    outcomes = [backend.apply_project(document) for document in documents]
    if args.output == "table":
        for outcome in outcomes:
            print(summary(outcome))
    else:
        print(render(outcomes, args.output))
    if args.wait:
        return wait_for_projects(args, backend, [outcome["project"]["metadata"]["name"] for outcome in outcomes])
    if any(not outcome["project"]["status"]["scheduled"] for outcome in outcomes):
        return EXIT_UNSCHEDULABLE
    return EXIT_OK


def summary(outcome: dict) -> str:
    project = outcome["project"]
    status = project["status"]
    line = "project/%s %s (generation %d, nodes: %s)" % (
        project["metadata"]["name"], outcome["result"], status["generation"], ",".join(status["nodes"]) or "none")
    if not status["scheduled"]:
        line += "\n  unschedulable: %s" % status["message"]
    return line


def _read(filename: str) -> str:
    if filename == "-":
        return sys.stdin.read()
    with open(filename, encoding="utf-8") as handle:
        return handle.read()
