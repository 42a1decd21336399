"""``goship-ctl serve``: the REST API (uvicorn), on 127.0.0.1 unless told otherwise.

Any other address needs TLS (``--tls-cert``/``--tls-key``) or an explicit ``--insecure-http``.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import sys

from goship_ctl.auth.principal import LOCAL_ADMIN
from goship_ctl.errors import EXIT_USAGE
from goship_ctl.store.location import data_dir, database_url

DEFAULT_PORT = 8765


def register(subparsers) -> None:
    parser = subparsers.add_parser("serve", help="run the control service's REST API",
                                   description="Serve /api/v1, /metrics and /healthz.")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="port (default: %d)" % DEFAULT_PORT)
    parser.add_argument("--tls-cert", help="PEM certificate (chain) file; enables HTTPS")
    parser.add_argument("--tls-key", help="PEM private key file for --tls-cert")
    parser.add_argument("--insecure-http", action="store_true",
                        help="allow plain HTTP on a non-loopback address (tokens travel in clear)")
    parser.add_argument("--bootstrap-token-file", metavar="PATH",
                        help="when the store has no admin token yet, create one and write it to PATH (mode 0600)")
    parser.add_argument("--data-dir", default=None,
                        help="embedded store directory (default: $GOSHIP_DATA_DIR or /var/lib/goship/ctl)")
    parser.add_argument("--database-url", default=None, help="store URL (default: $GOSHIP_DATABASE_URL or SQLite)")
    parser.add_argument("--reconcile", action="store_true",
                        help="also run the reconcile loop: ansible-runner drives the nodes on every change and "
                             "every --reconcile-period seconds")
    parser.add_argument("--reconcile-period", type=float, default=60.0, metavar="SECONDS",
                        help="how often the loop looks for out-of-date nodes (default: 60)")
    parser.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    parser.set_defaults(run=run, prog=parser.prog)


def run(args: argparse.Namespace) -> int:
    problem = _listen_problem(args)
    if problem:
        print("%s: error: %s" % (args.prog, problem), file=sys.stderr)
        return EXIT_USAGE
    # Imported here: every other command starts faster without the web stack.
    import uvicorn  # pylint: disable=import-outside-toplevel
    from goship_ctl.api.app import create_app  # pylint: disable=import-outside-toplevel
    from goship_ctl.metrics import Metrics  # pylint: disable=import-outside-toplevel
    from goship_ctl.service.control import ControlService  # pylint: disable=import-outside-toplevel

    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    service = ControlService.open(database_url(args.database_url, args.data_dir))
    metrics = Metrics(service.sessions)
    loop = _reconcile_loop(args, service, metrics) if args.reconcile else None
    try:
        if args.bootstrap_token_file:
            _bootstrap_token(service, args.bootstrap_token_file)
        if loop is not None:
            loop.start()
        uvicorn.run(create_app(service, metrics), host=args.host, port=args.port, ssl_certfile=args.tls_cert,
                    ssl_keyfile=args.tls_key, log_level=args.log_level, proxy_headers=False)
    finally:
        if loop is not None:
            loop.stop()
        service.close()
    return 0


def _reconcile_loop(args: argparse.Namespace, service, metrics):
    # pylint: disable=import-outside-toplevel
    from goship_ctl.reconciler.loop import ReconcileLoop
    from goship_ctl.reconciler.reconcile import Reconciler

    reconciler = Reconciler(service.sessions, service.trigger, data_dir(args.data_dir) / "reconcile", metrics)
    return ReconcileLoop(reconciler, service.trigger, service.sessions, period_s=args.reconcile_period)


def _listen_problem(args: argparse.Namespace) -> str | None:
    if bool(args.tls_cert) != bool(args.tls_key):
        return "give --tls-cert and --tls-key together"
    if not args.tls_cert and not args.insecure_http and not is_loopback(args.host):
        return "listening on %s needs TLS (--tls-cert/--tls-key) or --insecure-http" % args.host
    return None


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _bootstrap_token(service, path: str) -> None:
    if any(token["scope"] == "admin" for token in service.list_tokens(LOCAL_ADMIN)):
        return
    created = service.create_token(LOCAL_ADMIN, "bootstrap", None)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(created["token"] + "\n")
    logging.getLogger("goship_ctl.serve").info("no admin token existed: created token %s, written to %s",
                                               created["id"], path)
