"""Write what a reconcile run learned into the store: host facts, unreachable nodes, VM and
replica states from ``goship.core.guest_status``, and the run itself (event + metrics).

Each method is one transaction; changes that affect placement (facts, unreachability) run the
scheduler and ask for a reconcile of the nodes that gained or lost VMs.
"""

from __future__ import annotations

import logging

from sqlalchemy import delete
from sqlalchemy.orm import Session, sessionmaker

from goship_ctl.metrics import Metrics
from goship_ctl.reconciler import runs
from goship_ctl.reconciler.guest_report import VmReport, vm_report
from goship_ctl.reconciler.trigger import ReconcileTrigger
from goship_ctl.service import events, nodes
from goship_ctl.store import queries
from goship_ctl.store.models import ReconcileRun, ReplicaState, VmState
from goship_ctl.store.types import utcnow

LOG = logging.getLogger("goship_ctl.reconciler.recorder")
RUN_RESULTS = ("ok", "failed", "unreachable", "cancelled", "timeout")


class ActualStateRecorder:
    def __init__(self, sessions: sessionmaker[Session], trigger: ReconcileTrigger, metrics: Metrics | None = None):
        self._sessions = sessions
        self._trigger = trigger
        self._metrics = metrics

    def node_facts(self, node: str, host: dict) -> None:
        """``host`` as returned by ``goship.core.host_info``."""
        with self._sessions.begin() as session:
            moves = nodes.record_facts(session, node, host)
        self._trigger.request(nodes.changed_nodes(moves), "placement changed after facts from %s" % node)

    def node_unreachable(self, node: str, message: str) -> None:
        with self._sessions.begin() as session:
            moves = nodes.record_unreachable(session, node, message)
        self._trigger.request(nodes.changed_nodes(moves), "node %s unreachable" % node)

    def guest_status(self, node: str, vms: list) -> None:
        """``vms`` as returned by ``goship.core.guest_status`` on ``node``, for every GoShip VM there:
        replaces what the store knew about that node's VMs and replicas. Each guest's own report
        is checked first (guest_report.py): a malformed one is bounded and noted, never a failure."""
        reports = {}
        for vm in vms if isinstance(vms, list) else []:
            report = vm_report(node, vm)
            if report is None:
                LOG.warning("node %s: a guest_status entry names no valid project; ignored", node)
            else:
                reports.setdefault(report.project, report)  # one VM per project and node
        with self._sessions.begin() as session:
            queries.node(session, node)
            session.execute(delete(ReplicaState).where(ReplicaState.node == node))
            session.execute(delete(VmState).where(VmState.node == node))
            for report in reports.values():
                _record_vm(session, node, report)
            row = queries.node(session, node)
            row.last_seen_at = utcnow()

    def run_finished(self, node: str, result: str, duration_s: float, message: str = "", ident: str | None = None) -> None:
        """A reconcile ended on ``node``; ``ident``: its row in ``reconcile_runs`` gets the result too."""
        if result not in RUN_RESULTS:
            raise ValueError("result must be one of %s, got %r" % (", ".join(RUN_RESULTS), result))
        if self._metrics is not None:
            self._metrics.reconcile_runs.labels(node=node, result=result).inc()
            self._metrics.reconcile_duration.labels(node=node).observe(duration_s)
        message = message or "reconcile %s in %.1f s" % (result, duration_s)
        with self._sessions.begin() as session:
            events.record(session, "reconcile.%s" % result, message, node=node, data={"duration_s": round(duration_s, 3)})
            if ident is not None:
                runs.finished(session, ident, node, result, message)

    def run_interrupted(self, run: ReconcileRun, killed: int) -> None:
        """``run`` (a ``reconcile_runs`` row) was left ``running`` by a process that died."""
        if self._metrics is not None:
            self._metrics.reconcile_runs.labels(node=run.node, result="interrupted").inc()
        message = ("%s run %s interrupted: control service process %d ended before the run did; "
                   "%d leftover ansible process(es) killed" % (run.playbook, run.ident, run.pid, killed))
        with self._sessions.begin() as session:
            events.record(session, "reconcile.interrupted", message, node=run.node,
                          data={"run": run.ident, "playbook": run.playbook, "killed": killed})
            runs.finished(session, run.ident, run.node, "interrupted", message)


def _record_vm(session: Session, node: str, report: VmReport) -> None:
    session.add(VmState(project=report.project, node=node, domain=report.domain, state=report.state,
                        observed_generation=report.observed_generation, message=report.message))
    for replica in report.replicas:
        session.add(ReplicaState(
            project=report.project, node=node, app=replica.app, replica=replica.index, state=replica.state,
            restarts=replica.restarts, exit_code=replica.exit_code, health=replica.health,
            last_error=replica.last_error, cpu_seconds=replica.cpu_seconds, memory_bytes=replica.memory_bytes))
