"""``goship-ctl token create|list|revoke``: API tokens (admin, or scoped to one project)."""

from __future__ import annotations

import argparse

from goship_ctl.commands.common import add_client_options, run_with_backend, show
from goship_ctl.output import render

TOKEN_COLUMNS = (
    ("ID", lambda t: t["id"]), ("NAME", lambda t: t["name"]), ("SCOPE", lambda t: t["scope"]),
    ("PROJECT", lambda t: t["project"]), ("CREATED", lambda t: t["createdAt"]), ("LAST USED", lambda t: t["lastUsedAt"]),
)


def register(subparsers) -> None:
    token = subparsers.add_parser("token", help="manage API tokens")
    actions = token.add_subparsers(dest="action", required=True, metavar="ACTION")

    create = actions.add_parser(
        "create", help="create a token (printed once, never stored in clear)",
        description="Create an API token. An admin token may do everything; a project token sees and "
                    "changes only its project, and never nodes or tokens.")
    create.add_argument("name", help="a label for the token (a DNS label)")
    scope = create.add_mutually_exclusive_group(required=True)
    scope.add_argument("--project", help="scope the token to this project")
    scope.add_argument("--admin", action="store_true", help="an admin token")
    add_client_options(create)
    create.set_defaults(run=run_create, prog=create.prog)

    listing = actions.add_parser("list", help="list tokens (ids and scopes, never secrets)")
    add_client_options(listing)
    listing.set_defaults(run=run_list, prog=listing.prog)

    revoke = actions.add_parser("revoke", help="revoke a token by id")
    revoke.add_argument("id")
    add_client_options(revoke)
    revoke.set_defaults(run=run_revoke, prog=revoke.prog)


def run_create(args: argparse.Namespace) -> int:
    return run_with_backend(args, lambda backend: _create(args, backend))


def _create(args, backend) -> int:
    created = backend.create_token(args.name, None if args.admin else args.project)
    if args.output == "table":
        print(created["token"])
    else:
        print(render(created, args.output))
    return 0


def run_list(args: argparse.Namespace) -> int:
    return run_with_backend(args, lambda backend: show(args, backend.list_tokens(), TOKEN_COLUMNS))


def run_revoke(args: argparse.Namespace) -> int:
    return run_with_backend(args, lambda backend: _revoke(args, backend))


def _revoke(args, backend) -> int:
    outcome = backend.revoke_token(args.id)
    print("token %s revoked" % args.id if args.output == "table" else render(outcome, args.output))
    return 0
