"""Register, drain, uncordon and remove nodes; record their host facts."""

from __future__ import annotations

from sqlalchemy.orm import Session

from goship_ctl.errors import Conflict, NotFound
from goship_ctl.service import events
from goship_ctl.service.scheduling import Move, reschedule
from goship_ctl.spec.node import NodeSpec, connection_entry
from goship_ctl.store import queries
from goship_ctl.store.models import Node
from goship_ctl.store.types import utcnow


def changed_nodes(moves: list[Move]) -> frozenset[str]:
    return frozenset(name for move in moves for name in set(move.before) ^ set(move.after))


def apply(session: Session, spec: NodeSpec, actor: str) -> tuple[str, list[Move]]:
    """Create the node or update its connection, labels and overrides; (result, moves)."""
    connection = connection_entry(spec)
    capacity = spec.capacity.model_dump() if spec.capacity else None
    try:
        node = queries.node(session, spec.name)
    except NotFound:
        node = Node(name=spec.name, connection=connection, capacity_override=capacity,
                    confidential_override=spec.confidential, schedulable=True, status="unknown")
        session.add(node)
        result = "created"
    else:
        if (node.connection, node.capacity_override, node.confidential_override) == (
                connection, capacity, spec.confidential):
            return "unchanged", []
        node.connection, node.capacity_override, node.confidential_override = connection, capacity, spec.confidential
        result = "updated"
    events.record(session, "node.%s" % result, "%s by %s" % (result, actor), node=spec.name)
    return result, reschedule(session)


def set_schedulable(session: Session, name: str, schedulable: bool, actor: str) -> list[Move]:
    """Drain (False: every VM leaves the node) or uncordon (True) a node."""
    node = queries.node(session, name)
    if node.schedulable != schedulable:
        node.schedulable = schedulable
        kind = "uncordoned" if schedulable else "drained"
        events.record(session, "node.%s" % kind, "%s by %s" % (kind, actor), node=name)
    return reschedule(session)


def delete(session: Session, name: str, actor: str) -> None:
    node = queries.node(session, name)
    holders = sorted(placement.project.name for placement in node.placements)
    if holders:
        raise Conflict("node %r still runs VMs of project(s) %s: drain it first" % (name, ", ".join(holders)))
    session.delete(node)
    events.record(session, "node.deleted", "deleted by %s" % actor, node=name)
    session.flush()


def record_facts(session: Session, name: str, host: dict) -> list[Move]:
    """host_info's ``host`` result: capacity and confidential types follow it; the node is up."""
    node = queries.node(session, name)
    node.facts = host
    node.facts_at = node.last_seen_at = utcnow()
    if node.status != "ready":
        events.record(session, "node.ready", "host facts received", node=name)
    node.status, node.status_message = "ready", ""
    return reschedule(session)


def record_unreachable(session: Session, name: str, message: str) -> list[Move]:
    """The node did not answer: its VMs are placed elsewhere where possible."""
    node = queries.node(session, name)
    if node.status != "unreachable" or node.status_message != message:
        events.record(session, "node.unreachable", message, node=name)
    node.status, node.status_message = "unreachable", message
    return reschedule(session)
