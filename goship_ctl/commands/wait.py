"""``--wait`` for apply and scale, and the foreground reconciler the embedded commands share.

Embedded store (no ``--url``): nobody else runs Ansible for this store, so the command does it
itself: it reconciles the out-of-date nodes until they settle (``settle``), with live progress,
then reads the guests' state (``status.yml``) until every project is converged or time is up.

API (``--url``): the server's reconcile loop does the work; the command polls the project and
prints its new events until it converges or time is up.
"""

from __future__ import annotations

import argparse
import threading
import time
from contextlib import contextmanager
from typing import Iterator

from goship_ctl.commands.progress import RunProgress
from goship_ctl.errors import EXIT_NOT_CONVERGED, EXIT_OK, EXIT_UNSCHEDULABLE
from goship_ctl.reconciler.convergence import project_progress
from goship_ctl.store.location import data_dir

DEFAULT_WAIT_S = 1200.0
POLL_S = 2.0


def add_wait_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--wait", action="store_true",
                        help="wait until the project runs as asked, showing progress (embedded store: run the "
                             "reconcile here; with --url: follow the server's)")
    parser.add_argument("--timeout", type=float, default=DEFAULT_WAIT_S, metavar="SECONDS",
                        help="how long --wait waits at most (default: %d)" % DEFAULT_WAIT_S)


def embedded_reconciler(args: argparse.Namespace, backend):
    """The Reconciler on the embedded store's data directory; None when the CLI talks to an API."""
    service = getattr(backend, "service", None)
    if service is None:
        return None
    from goship_ctl.reconciler.reconcile import Reconciler  # pylint: disable=import-outside-toplevel
    return Reconciler(service.sessions, service.trigger, data_dir(args.data_dir) / "reconcile")


def wait_for_projects(args: argparse.Namespace, backend, projects: list[str]) -> int:
    """Exit code: 0 converged, 7 converged as far as schedulable, 9 not converged in time."""
    deadline = time.monotonic() + args.timeout
    reconciler = embedded_reconciler(args, backend)
    if reconciler is None:
        _follow_api(backend, projects, deadline)
    else:
        _drive_embedded(backend, reconciler, projects, deadline)
    return report(backend, projects)


def report(backend, projects: list[str]) -> int:
    code = EXIT_OK
    for name in projects:
        progress = project_progress(backend.get_project(name))
        print(("converged: " if progress.done else "not converged: ") + progress.summary())
        if not progress.done:
            code = EXIT_NOT_CONVERGED
        elif not progress.scheduled and code == EXIT_OK:
            code = EXIT_UNSCHEDULABLE
    return code


def run_foreground(reconciler, service, deadline: float, first: dict[str, list[str]] | None = None):
    """Settle the out-of-date nodes (or ``first``) with live progress; node -> HostResult."""
    from goship_ctl.reconciler.settle import out_of_date, settle  # pylint: disable=import-outside-toplevel
    with cancel_at(deadline) as cancel, RunProgress() as progress:
        unsubscribe = reconciler.subscribe(progress)
        try:
            wanted = first if first is not None else out_of_date(service.sessions, service.trigger)
            if not wanted:
                progress.note("every node is up to date")
            results = settle(reconciler, service.trigger, service.sessions, wanted, cancel=cancel)
        finally:
            unsubscribe()
        for node, host in sorted(results.items()):
            progress.done(node, host.result)
    for node, host in sorted(results.items()):
        if host.result != "ok":
            print("node %s: %s: %s" % (node, host.result, host.message))
    return results


@contextmanager
def cancel_at(deadline: float) -> Iterator[threading.Event]:
    """An event that is set at ``deadline`` (time.monotonic): the runs' cancel flag."""
    cancel = threading.Event()
    timer = threading.Timer(max(0.0, deadline - time.monotonic()), cancel.set)
    timer.daemon = True
    timer.start()
    try:
        yield cancel
    finally:
        timer.cancel()


def _drive_embedded(backend, reconciler, projects: list[str], deadline: float) -> None:
    results = run_foreground(reconciler, backend.service, deadline)
    failed = {node for node, host in results.items() if host.result != "ok"}
    while time.monotonic() < deadline:
        pending = [name for name in projects if not project_progress(backend.get_project(name)).done]
        nodes = sorted({node for name in pending for node in backend.get_project(name)["status"]["nodes"]})
        if not nodes or failed & set(nodes):
            return  # converged, nothing placed, or a node of theirs failed: waiting longer cannot help
        reconciler.refresh(nodes)
        time.sleep(POLL_S)


def _follow_api(backend, projects: list[str], deadline: float) -> None:
    last_event = {name: _last_event_id(backend, name) for name in projects}
    while time.monotonic() < deadline:
        pending = []
        for name in projects:
            for event in backend.events(project=name, after=last_event[name]):
                last_event[name] = event["id"]
                print("%s %s %s: %s" % (event["at"][11:19], event["node"] or name, event["kind"], event["message"]))
            progress = project_progress(backend.get_project(name))
            if not progress.done:
                pending.append(progress)
        if not pending:
            return
        time.sleep(POLL_S)


def _last_event_id(backend, project: str) -> int:
    newest, after = 0, 0
    while True:
        page = backend.events(project=project, after=after, limit=1000)
        if not page:
            return newest
        newest = after = page[-1]["id"]
