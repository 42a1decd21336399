"""Write what a reconcile run learned into the store: host facts, unreachable nodes, VM and
replica states from ``goship.core.guest_status``, and the run itself (event + metrics).

Each method is one transaction; changes that affect placement (facts, unreachability) run the
scheduler and ask for a reconcile of the nodes that gained or lost VMs.
"""

from __future__ import annotations

from sqlalchemy import delete
from sqlalchemy.orm import Session, sessionmaker

from goship_ctl.metrics import Metrics
from goship_ctl.reconciler.trigger import ReconcileTrigger
from goship_ctl.service import events, nodes
from goship_ctl.store import queries
from goship_ctl.store.models import ReplicaState, VmState
from goship_ctl.store.types import utcnow

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

    def guest_status(self, node: str, vms: list[dict]) -> None:
        """``vms`` as returned by ``goship.core.guest_status`` on ``node``, for every GoShip VM there:
        replaces what the store knew about that node's VMs and replicas."""
        with self._sessions.begin() as session:
            queries.node(session, node)
            session.execute(delete(ReplicaState).where(ReplicaState.node == node))
            session.execute(delete(VmState).where(VmState.node == node))
            for vm in vms:
                self._record_vm(session, node, vm)
            row = queries.node(session, node)
            row.last_seen_at = utcnow()

    def run_finished(self, node: str, result: str, duration_s: float, message: str = "") -> None:
        if result not in RUN_RESULTS:
            raise ValueError("result must be one of %s, got %r" % (", ".join(RUN_RESULTS), result))
        if self._metrics is not None:
            self._metrics.reconcile_runs.labels(node=node, result=result).inc()
            self._metrics.reconcile_duration.labels(node=node).observe(duration_s)
        with self._sessions.begin() as session:
            events.record(session, "reconcile.%s" % result, message or "reconcile %s in %.1f s" % (result, duration_s),
                          node=node, data={"duration_s": round(duration_s, 3)})

    @staticmethod
    def _record_vm(session: Session, node: str, vm: dict) -> None:
        status = vm.get("status") or {}
        if not vm.get("active"):
            state = "shut-off"
        elif vm.get("reachable"):
            state = "running"
        else:
            state = "unresponsive"
        session.add(VmState(project=vm["project"], node=node, domain=vm["domain"], state=state,
                            observed_generation=status.get("generation"), message=vm.get("error") or ""))
        for app, app_status in (status.get("apps") or {}).items():
            for replica in app_status.get("replicas") or []:
                cpu_usec = replica.get("cpu_usec")
                session.add(ReplicaState(
                    project=vm["project"], node=node, app=app, replica=replica["index"], state=replica["state"],
                    restarts=replica.get("restarts") or 0, exit_code=replica.get("exit_code"),
                    health=_health_text(replica.get("health")), last_error=replica.get("last_error") or "",
                    cpu_seconds=cpu_usec / 1e6 if cpu_usec is not None else None,
                    memory_bytes=replica.get("memory_bytes")))


def _health_text(health) -> str | None:
    """guest_init reports ``{check: {status: passing|failing|unknown, ...}}`` or None (no checks)."""
    if not isinstance(health, dict) or not health:
        return None
    states = {check.get("status") for check in health.values() if isinstance(check, dict)}
    for state in ("failing", "unknown"):
        if state in states:
            return state
    return "passing"
