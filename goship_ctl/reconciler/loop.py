"""The reconcile loop of a serving control service: on change and periodically.

It collects nodes from the trigger (``PendingNodes``: apply, scale, drain, facts, ...) and,
every ``period_s``, from the store (``drift.nodes_to_reconcile``: changed, unreachable or
stale nodes). Ready nodes (not running, not backing off) go in one batch to a worker thread;
at most ``max_parallel`` batches run at once and a node is never in two of them. A node whose
run fails, times out or is unreachable waits ``NodeBackoff`` before its next attempt. At start it
first asks the reconciler to ``recover`` the runs a dead process left unfinished, and runs their
nodes again. ``stop`` cancels running batches and joins them.
"""

from __future__ import annotations

import logging
import threading
import time

from sqlalchemy.orm import Session, sessionmaker

from goship_ctl.reconciler.backoff import NodeBackoff
from goship_ctl.reconciler.drift import nodes_to_reconcile
from goship_ctl.reconciler.reconcile import Reconciler
from goship_ctl.reconciler.trigger import PendingNodes

LOG = logging.getLogger("goship_ctl.reconciler.loop")
TAKE_S = 1.0
STOP_JOIN_S = 60.0
MAX_REASONS = 20


class ReconcileLoop:
    def __init__(self, reconciler: Reconciler, trigger: PendingNodes, sessions: sessionmaker[Session], *,
                 period_s: float = 60.0, stale_after_s: float = 300.0, max_parallel: int = 2,
                 backoff: NodeBackoff | None = None):
        self._reconciler = reconciler
        self._trigger = trigger
        self._sessions = sessions
        self.period_s = period_s
        self.stale_after_s = stale_after_s
        self.max_parallel = max_parallel
        self.backoff = backoff or NodeBackoff()
        self._wanted: dict[str, list[str]] = {}
        self._busy: set[str] = set()
        self._workers: dict[threading.Thread, threading.Event] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._main, name="goship-reconcile-loop", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = STOP_JOIN_S) -> None:
        self._stopping.set()
        with self._lock:
            workers = dict(self._workers)
        for cancel in workers.values():
            cancel.set()
        deadline = time.monotonic() + timeout_s
        for thread in [self._thread, *workers]:
            if thread is not None:
                thread.join(max(0.0, deadline - time.monotonic()))

    def _main(self) -> None:
        try:
            self._want(self._reconciler.recover())  # runs a dead process left behind: done again
        except Exception:  # pylint: disable=broad-except
            LOG.exception("cannot look for interrupted runs")
        next_scan = 0.0
        while not self._stopping.is_set():
            self._want(self._trigger.take(TAKE_S))
            if time.monotonic() >= next_scan:
                next_scan = time.monotonic() + self.period_s
                try:
                    with self._sessions() as session:
                        drifted = nodes_to_reconcile(session, self.stale_after_s)
                    with self._lock:  # a node in a run is judged again once its run has reported
                        busy = set(self._busy)
                    self._want({node: why for node, why in drifted.items() if node not in busy})
                except Exception:  # pylint: disable=broad-except
                    LOG.exception("cannot read which nodes need a reconcile")
            self._dispatch()

    def _want(self, reasons: dict[str, list[str]]) -> None:
        with self._lock:
            for node, why in reasons.items():
                known = self._wanted.setdefault(node, [])
                known.extend(reason for reason in why if reason not in known)
                del known[:-MAX_REASONS]

    def _dispatch(self) -> None:
        with self._lock:
            self._workers = {thread: cancel for thread, cancel in self._workers.items() if thread.is_alive()}
            if len(self._workers) >= self.max_parallel:
                return
            ready = {node: why for node, why in self._wanted.items()
                     if node not in self._busy and self.backoff.ready(node)}
            if not ready:
                return
            for node in ready:
                del self._wanted[node]
            self._busy |= set(ready)
            cancel = threading.Event()
            thread = threading.Thread(target=self._run_batch, args=(ready, cancel), name="goship-reconcile", daemon=True)
            self._workers[thread] = cancel
        thread.start()

    def _run_batch(self, reasons: dict[str, list[str]], cancel: threading.Event) -> None:
        try:
            results = self._reconciler.reconcile(list(reasons), reasons, cancel)
            for node in reasons:
                host = results.get(node)
                if host is None or host.result == "ok":
                    self.backoff.succeeded(node)
                else:
                    delay = self.backoff.failed(node)
                    LOG.warning("node %s: reconcile %s (%s); next attempt in %.0f s", node, host.result, host.message, delay)
        except Exception:  # pylint: disable=broad-except
            LOG.exception("reconcile of %s failed", ", ".join(sorted(reasons)))
            for node in reasons:
                self.backoff.failed(node)
        finally:
            with self._lock:
                self._busy -= set(reasons)
