"""``Reconciler``: runs the goship.core playbooks for nodes of the store and records what they report.

- ``reconcile(nodes)``: ``playbooks/reconcile.yml`` (``apps.yml`` where only apps differ); host
  facts, guest states, unreachable nodes and the run's result go into the store through
  ``ActualStateRecorder``;
- ``refresh(nodes)``: ``playbooks/status.yml`` (read-only), guest states only;
- ``signal(...)`` and ``logs(...)``: ``playbooks/signal.yml`` / ``logs.yml``, the operator's
  paths to guest_init. The control service never talks to a VM itself.

Every run holds the nodes' locks (one run per node at a time, across processes), is a row per
node in ``reconcile_runs`` from its start to its result, streams its events to subscribers
(``subscribe``) and records changed and failed tasks in the event history. ``recover()`` finds the
runs of a process that died mid-run (runs.py), kills what is left of them and marks them interrupted.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from sqlalchemy.orm import Session, sessionmaker

from goship_ctl import desired_state
from goship_ctl.errors import NotFound
from goship_ctl.metrics import Metrics
from goship_ctl.reconciler import drift, runs
from goship_ctl.reconciler.events import GUEST_LOGS, GUEST_SIGNAL, HostResult, RunEvent, secret_values
from goship_ctl.reconciler.locks import NodeBusy, NodeLocks
from goship_ctl.reconciler.recorder import ActualStateRecorder
from goship_ctl.reconciler.runner import DEFAULT_KEEP_RUNS, PlaybookRunner, RunResult, new_ident
from goship_ctl.reconciler.trigger import ReconcileTrigger
from goship_ctl.service import events

LOG = logging.getLogger("goship_ctl.reconciler")
# Unreachable nodes are in the history already (node.unreachable, reconcile.unreachable).
HISTORY_KINDS = {"changed": "reconcile.changed", "failed": "reconcile.task_failed"}
RECONCILE_PLAYBOOK = "reconcile.yml"
APPS_PLAYBOOK = "apps.yml"


@dataclass(frozen=True)
class Limits:
    reconcile_timeout_s: float = 1800.0
    operation_timeout_s: float = 180.0  # status, signal, logs
    lock_timeout_s: float = 900.0
    apps_only_fresh_s: float = 300.0  # the apps fast path trusts node reports no older than this


class Reconciler:
    def __init__(self, sessions: sessionmaker[Session], trigger: ReconcileTrigger, work_dir: Path,
                 metrics: Metrics | None = None, limits: Limits = Limits(), keep_runs: int = DEFAULT_KEEP_RUNS):
        self._sessions = sessions
        self.recorder = ActualStateRecorder(sessions, trigger, metrics)
        self.runner = PlaybookRunner(Path(work_dir), keep_runs)
        self.locks = NodeLocks(Path(work_dir) / "locks")
        self.owner = runs.owner(Path(work_dir))
        self.limits = limits
        self.apps_fast_path = True
        self._subscribers: list[Callable[[RunEvent], None]] = []
        self._subscribers_lock = threading.Lock()

    def subscribe(self, callback: Callable[[RunEvent], None]) -> Callable[[], None]:
        """Call ``callback`` with every RunEvent of every run from now on; returns the unsubscribe."""
        with self._subscribers_lock:
            self._subscribers.append(callback)

        def unsubscribe():
            with self._subscribers_lock:
                if callback in self._subscribers:
                    self._subscribers.remove(callback)
        return unsubscribe

    def document(self) -> dict:
        with self._sessions() as session:
            return desired_state.compute(session)

    # -- runs -------------------------------------------------------------------------------
    def reconcile(self, nodes: list[str], reasons: dict[str, list[str]] | None = None,
                  cancel: threading.Event | None = None) -> dict[str, HostResult]:
        """Converge ``nodes`` (unknown names are skipped) and record the outcome.

        ``reconcile.yml`` does everything; nodes where nothing but the apps of VMs at their
        current definition differs (``drift.apps_only``) get ``apps.yml`` instead, and
        ``reconcile.yml`` right after it if that run failed (``apps_fast_path`` False: never).
        """
        document = self.document()
        nodes = sorted(node for node in set(nodes) if node in document["nodes"])
        if not nodes:
            return {}
        with self.locks.hold(nodes, self.limits.lock_timeout_s):
            self._reap(nodes)
            document = self.document()  # what is current once the nodes are ours
            fast = self._apps_only(nodes)
            hosts = self._converge(document, APPS_PLAYBOOK, fast, reasons, cancel) if fast else {}
            full = [node for node in nodes if node not in fast or hosts[node].result == "failed"]
            if full:
                hosts.update(self._converge(document, RECONCILE_PLAYBOOK, full, reasons, cancel))
        return hosts

    def refresh(self, nodes: list[str]) -> dict[str, HostResult]:
        """Read every guest's state (status.yml) and record it; changes nothing on the nodes."""
        result = self._operation("status.yml", nodes)
        for node, host in result.hosts.items():
            if host.result == "unreachable":
                self.recorder.node_unreachable(node, host.message)
            elif host.guest_vms is not None:
                self.recorder.guest_status(node, host.guest_vms)
        return result.hosts

    def signal(self, project: str, app: str, signal: str, replica: int | None = None,
               nodes: list[str] | None = None) -> dict[str, HostResult]:
        """Send ``signal`` to the app's replicas through guest_init (signal.yml) on the project's nodes."""
        extravars = {"goship_signal_project": project, "goship_signal_app": app, "goship_signal": signal}
        if replica is not None:
            extravars["goship_signal_replica"] = replica
        result = self._operation("signal.yml", self.project_nodes(project, nodes), extravars, (GUEST_SIGNAL,))
        with self._sessions.begin() as session:
            for node, host in result.hosts.items():
                signalled = [item for res in host.module_results.get(GUEST_SIGNAL, []) for item in res.get("signalled") or []]
                events.record(session, "app.signalled" if host.result == "ok" else "app.signal_failed",
                              "%s/%s: SIG%s to %s" % (project, app, signal.upper().removeprefix("SIG"),
                                                      "replica %d" % replica if replica is not None else "all replicas")
                              + ("" if host.result == "ok" else ": " + host.message),
                              project=project, node=node, data={"signalled": signalled})
        return result.hosts

    def logs(self, project: str, app: str, replica: int | None = None, tail: int = 100,
             nodes: list[str] | None = None) -> dict[str, HostResult]:
        """The app's newest log lines in each VM of the project (logs.yml)."""
        extravars = {"goship_logs_project": project, "goship_logs_app": app, "goship_logs_tail": tail}
        if replica is not None:
            extravars["goship_logs_replica"] = replica
        return self._operation("logs.yml", self.project_nodes(project, nodes), extravars, (GUEST_LOGS,)).hosts

    def project_nodes(self, project: str, only: list[str] | None = None) -> list[str]:
        """The nodes the project is placed on (all, or those of ``only``)."""
        placed = (self.document()["projects"].get(project) or {}).get("nodes")
        if placed is None:
            raise NotFound("project %r not found" % project)
        chosen = [node for node in placed if not only or node in only]
        if not chosen:
            raise NotFound("project %r has no VM on %s" % (project, ", ".join(only) if only else "any node"))
        return chosen

    def recover(self) -> dict[str, list[str]]:
        """Finish the runs of this work directory that a dead process left ``running`` (runs.py):
        node -> reasons, for a new reconcile of their nodes. Nodes a live run holds are left alone."""
        with self._sessions() as session:
            nodes = sorted({row.node for row in runs.running(session, self.owner)})
        reasons = {}
        for node in nodes:
            try:
                with self.locks.hold([node], 0):
                    idents = self._reap([node])
            except NodeBusy:
                continue
            if idents:
                reasons[node] = ["run %s was interrupted" % ident for ident in idents]
        return reasons

    # -- internals --------------------------------------------------------------------------
    def _apps_only(self, nodes: list[str]) -> list[str]:
        if not self.apps_fast_path:
            return []
        with self._sessions() as session:
            return sorted(drift.apps_only(session, nodes, self.limits.apps_only_fresh_s))

    def _converge(self, document: dict, playbook: str, nodes: list[str], reasons: dict[str, list[str]] | None,
                  cancel: threading.Event | None) -> dict[str, HostResult]:
        """One run of ``playbook`` on ``nodes``, whose locks the caller holds; results recorded."""
        ident = new_ident()
        what = "reconcile" if playbook == RECONCILE_PLAYBOOK else "reconcile (apps only)"
        with self._sessions.begin() as session:
            runs.started(session, ident, playbook, nodes, self.owner)
            for node in nodes:
                why = (reasons or {}).get(node) or ["requested"]
                events.record(session, "reconcile.started", "%s started: %s" % (what, "; ".join(why)[:400]),
                              node=node, data={"reasons": why[:20], "run": ident, "playbook": playbook})
        result = self._run(document, playbook, nodes, ident, timeout_s=self.limits.reconcile_timeout_s, cancel=cancel)
        # Recorded while the locks are held: a row left running after they are released is a dead run's.
        for node, host in result.hosts.items():
            self._record(node, host, result)
        return result.hosts

    def _operation(self, playbook: str, nodes: list[str], extravars: dict | None = None,
                   watch: tuple[str, ...] = ()) -> RunResult:
        document = self.document()
        nodes = sorted(node for node in set(nodes) if node in document["nodes"])
        if not nodes:
            return RunResult(ident="", status="successful", rc=0, duration_s=0.0, artifact_dir=Path())
        with self.locks.hold(nodes, self.limits.lock_timeout_s):
            self._reap(nodes)
            ident = new_ident()
            with self._sessions.begin() as session:
                runs.started(session, ident, playbook, nodes, self.owner)
            result = self._run(document, playbook, nodes, ident, extravars=extravars, watch=watch,
                               timeout_s=self.limits.operation_timeout_s)
            with self._sessions.begin() as session:
                for node, host in result.hosts.items():
                    runs.finished(session, ident, node, host.result, host.message)
        return result

    def _run(self, document: dict, playbook: str, nodes: list[str], ident: str, **options) -> RunResult:
        """The run, its rows finished as failed if it could not even run to an end."""
        try:
            return self.runner.run(document, playbook, nodes, ident=ident, on_event=self._on_event, **options)
        except Exception as exc:
            with self._sessions.begin() as session:
                for node in nodes:
                    runs.finished(session, ident, node, "failed", "the run broke off: %s" % exc)
            raise

    def _reap(self, nodes: list[str]) -> list[str]:
        """With the nodes' locks held, their ``running`` rows are dead runs': kill what is left of
        those runs, tidy their directories, mark them interrupted. Returns their idents."""
        with self._sessions() as session:
            stale = runs.running(session, self.owner, nodes)
        idents = sorted({run.ident for run in stale})
        if not idents:
            return []
        secrets = secret_values(self.document())
        for ident in idents:
            killed = runs.kill_sessions(runs.leftover_sessions("%s/" % self.runner.private_path(ident)))
            self.runner.tidy(ident, secrets)
            for run in stale:
                if run.ident == ident:
                    LOG.warning("node %s: run %s was interrupted (process %d ended); %d leftover process(es) killed",
                                run.node, ident, run.pid, killed)
                    self.recorder.run_interrupted(run, killed)
        return idents

    def _record(self, node: str, host: HostResult, result: RunResult) -> None:
        try:
            if host.facts is not None:
                self.recorder.node_facts(node, host.facts)
            if host.guest_vms is not None:
                self.recorder.guest_status(node, host.guest_vms)
            if host.result == "unreachable":
                self.recorder.node_unreachable(node, host.message)
        except NotFound:
            LOG.info("node %s was deleted during its reconcile; its results are dropped", node)
        message = "reconcile %s in %.1f s (%d changed)%s" % (
            host.result, result.duration_s, host.changed, ": " + host.message if host.message else "")
        self.recorder.run_finished(node, host.result, result.duration_s, message, ident=result.ident)

    def _on_event(self, event: RunEvent) -> None:
        kind = HISTORY_KINDS.get(event.kind)
        if kind is not None:
            if event.kind == "changed":
                text = event.task + (" [%s]" % event.message if event.message else "")
            else:
                text = event.message or event.task
            try:
                with self._sessions.begin() as session:
                    events.record(session, kind, text[:1000], project=event.project, node=event.node,
                                  data={"task": event.task})
            except Exception:  # pylint: disable=broad-except
                LOG.exception("cannot record a run event in the history")
        with self._subscribers_lock:
            subscribers = list(self._subscribers)
        for callback in subscribers:
            callback(event)
