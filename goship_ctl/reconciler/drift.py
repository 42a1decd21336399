"""Which nodes need a reconcile, judged from the store alone.

A node needs one when what it last reported differs from what it should run (a placed VM not
reported, not running or at an older generation; a VM reported where its project is no longer
placed), when it was never reached, is unreachable, or its last report is older than
``stale_after_s``. Working from the store, not from in-memory triggers, lets a ``goship-ctl
reconcile`` in a fresh process find the nodes an earlier ``apply`` changed.

``apps_only`` picks, among nodes to reconcile, those where nothing but apps differs: the fast
path (playbooks/apps.yml) is enough for them.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from goship_ctl.store import queries
from goship_ctl.store.types import utcnow


def nodes_to_reconcile(session: Session, stale_after_s: float, now: datetime | None = None) -> dict[str, list[str]]:
    """Node -> reasons, for every node that needs a reconcile."""
    now = now or utcnow()
    reasons: dict[str, list[str]] = {}
    nodes = {node.name: node for node in queries.nodes(session)}
    for node in nodes.values():
        if node.status == "unreachable":
            reasons.setdefault(node.name, []).append("unreachable: %s" % node.status_message)
        elif node.last_seen_at is None:
            reasons.setdefault(node.name, []).append("never reconciled")
        elif (now - node.last_seen_at).total_seconds() > stale_after_s:
            reasons.setdefault(node.name, []).append("last report older than %d s" % stale_after_s)
    reported = {(vm.project, vm.node): vm for vm in queries.vm_states(session)}
    placed = set()
    for project in queries.projects(session):
        for node in queries.placed_nodes(project):
            placed.add((project.name, node))
            problem = _vm_problem(reported.get((project.name, node)), project.generation)
            if problem:
                reasons.setdefault(node, []).append("project %s: %s" % (project.name, problem))
    for (project, node), vm in reported.items():
        if (project, node) not in placed and node in nodes:
            reasons.setdefault(node, []).append("project %s: VM %s to remove" % (project, vm.domain))
    return reasons


def _vm_problem(vm, generation: int) -> str | None:
    if vm is None:
        return "VM not reported yet"
    if vm.state != "running":
        return "VM %s" % vm.state
    if vm.observed_generation != generation:
        return "generation %s of %d applied" % (vm.observed_generation, generation)
    return None


def apps_only(session: Session, nodes: list[str], stale_after_s: float, now: datetime | None = None) -> set[str]:
    """The nodes among ``nodes`` whose only difference is in the apps of VMs that run their current
    definition: reachable, recently seen, no VM to create, start or remove, and every VM that
    lags behind its project's generation has applied one at least as new as the project's last
    VM-level change (``Project.vm_generation``: such a VM went through a full reconcile since)."""
    now = now or utcnow()
    wanted = set(nodes)
    reported = {(vm.project, vm.node): vm for vm in queries.vm_states(session) if vm.node in wanted}
    behind: set[str] = set()
    blocked = {node.name for node in queries.nodes(session) if node.name in wanted and (
        node.status == "unreachable" or node.last_seen_at is None
        or (now - node.last_seen_at).total_seconds() > stale_after_s)}
    placed = set()
    for project in queries.projects(session):
        for node in wanted.intersection(queries.placed_nodes(project)):
            placed.add((project.name, node))
            vm = reported.get((project.name, node))
            if vm is None or vm.state != "running" or vm.observed_generation is None:
                blocked.add(node)
            elif vm.observed_generation < project.vm_generation:
                blocked.add(node)
            elif vm.observed_generation != project.generation:
                behind.add(node)
    blocked.update(node for (project, node) in reported if (project, node) not in placed)
    return behind - blocked
