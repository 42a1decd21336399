"""The event history: what changed and what the nodes reported, newest last."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from goship_ctl.auth.principal import Principal
from goship_ctl.store.models import Event

MAX_PAGE = 1000


def record(session: Session, kind: str, message: str, project: str | None = None, node: str | None = None,
           data: dict | None = None) -> Event:
    event = Event(kind=kind, message=message, project=project, node=node, data=data or {})
    session.add(event)
    return event


def listing(session: Session, principal: Principal, project: str | None = None, node: str | None = None,
            after: int = 0, limit: int = 100) -> list[dict]:
    """Events with id > ``after``, oldest first. A project token sees only its project's events."""
    query = select(Event).where(Event.id > after).order_by(Event.id).limit(max(1, min(limit, MAX_PAGE)))
    if not principal.is_admin:
        query = query.where(Event.project == principal.project)
    if project is not None:
        principal.require_project(project)
        query = query.where(Event.project == project)
    if node is not None:
        principal.require_admin("events of a node")
        query = query.where(Event.node == node)
    return [view(event) for event in session.scalars(query)]


def view(event: Event) -> dict:
    return {"id": event.id, "at": event.at.isoformat(), "kind": event.kind, "project": event.project,
            "node": event.node, "message": event.message, "data": event.data}
