"""What the store-facing commands share: where to find the service, output format, errors.

Exit codes (goship_ctl.errors): 0 ok, 1 error, 2 usage, 3 not found, 4 conflict (stale
resourceVersion, name taken, node still in use), 5 invalid document, 6 authentication or
permission denied, 7 applied but not (fully) schedulable, 8 the API is unreachable.
"""

from __future__ import annotations

import argparse
import sys
from typing import Callable

from goship_ctl.client.connect import open_backend
from goship_ctl.errors import EXIT_OK, ControlError, Invalid
from goship_ctl.output import FORMATS, render


def add_client_options(parser: argparse.ArgumentParser, output: bool = True) -> None:
    group = parser.add_argument_group("where the control service is")
    group.add_argument("--url", default=None,
                       help="API base URL (default: $GOSHIP_URL); the token comes from $GOSHIP_TOKEN. "
                            "Without a URL the command works on the embedded store directly")
    group.add_argument("--data-dir", default=None,
                       help="embedded store directory (default: $GOSHIP_DATA_DIR or /var/lib/goship/ctl)")
    group.add_argument("--database-url", default=None,
                       help="SQLAlchemy URL of the store, e.g. postgresql+psycopg://... (default: $GOSHIP_DATABASE_URL, "
                            "else SQLite in the data directory)")
    if output:
        parser.add_argument("-o", "--output", choices=FORMATS, default="table", help="output format (default: table)")


def run_with_backend(args: argparse.Namespace, action: Callable) -> int:
    """Run ``action(backend)``; it returns an exit code. ControlErrors become their exit code."""
    try:
        backend = open_backend(args)
    except ControlError as exc:
        return fail(args, exc)
    try:
        return action(backend)
    except ControlError as exc:
        return fail(args, exc)
    finally:
        backend.close()


def fail(args: argparse.Namespace, exc: ControlError) -> int:
    """Print the error (each problem of an invalid document on its own line); its exit code."""
    if isinstance(exc, Invalid):
        print("%s: error: invalid:" % args.prog, file=sys.stderr)
        for problem in exc.problems:
            print("  %s: %s" % (problem["path"], problem["message"]), file=sys.stderr)
    else:
        print("%s: error: %s" % (args.prog, exc.message), file=sys.stderr)
    return exc.exit_code


def show(args: argparse.Namespace, data, columns=()) -> int:
    print(render(data, args.output, columns))
    return EXIT_OK
