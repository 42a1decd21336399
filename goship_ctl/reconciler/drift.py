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
    reasons: dict[str, list[str]] = {}
    for node, reason, _apps in _differences(session, stale_after_s, now):
        reasons.setdefault(node, []).append(reason)
    return reasons


def apps_only(session: Session, nodes: list[str], stale_after_s: float, now: datetime | None = None) -> set[str]:
    """The nodes among ``nodes`` whose only differences are in the apps of VMs that run their
    current definition: every VM that lags behind its project's generation has applied one at
    least as new as the project's last VM-level change (``Project.vm_generation``: such a VM went
    through a full reconcile since), and nothing else about the node differs."""
    apps, other = set(), set()
    for node, _reason, in_apps in _differences(session, stale_after_s, now):
        (apps if in_apps else other).add(node)
    return (apps - other).intersection(nodes)


def _differences(session: Session, stale_after_s: float, now: datetime | None):
    """(node, reason, whether the apps fast path covers it), for every difference the store shows."""
    now = now or utcnow()
    nodes = {node.name: node for node in queries.nodes(session)}
    for node in nodes.values():
        if node.status == "unreachable":
            yield node.name, "unreachable: %s" % node.status_message, False
        elif node.last_seen_at is None:
            yield node.name, "never reconciled", False
        elif (now - node.last_seen_at).total_seconds() > stale_after_s:
            yield node.name, "last report older than %d s" % stale_after_s, False
    reported = {(vm.project, vm.node): vm for vm in queries.vm_states(session)}
    placed = set()
    for project in queries.projects(session):
        for node in queries.placed_nodes(project):
            placed.add((project.name, node))
            vm = reported.get((project.name, node))
            problem = _vm_problem(vm, project.generation)
            if problem:
                in_apps = (vm is not None and vm.state == "running" and vm.observed_generation is not None
                           and vm.observed_generation >= project.vm_generation)
                yield node, "project %s: %s" % (project.name, problem), in_apps
    for (project, node), vm in reported.items():
        if (project, node) not in placed and node in nodes:
            yield node, "project %s: VM %s to remove" % (project, vm.domain), False


def _vm_problem(vm, generation: int) -> str | None:
    if vm is None:
        return "VM not reported yet"
    if vm.state != "running":
        return "VM %s" % vm.state
    if vm.observed_generation != generation:
        return "generation %s of %d applied" % (vm.observed_generation, generation)
    return None
