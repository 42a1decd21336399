"""Lookups shared by the service layer, the desired-state document and the metrics."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from goship_ctl.errors import NotFound
from goship_ctl.store.models import Node, Placement, Project, ReplicaState, VmState


def projects(session: Session, name: str | None = None) -> list[Project]:
    """Projects (oldest first, the scheduler's priority order) with apps and placements loaded."""
    query = select(Project).options(
        selectinload(Project.apps), selectinload(Project.placements).selectinload(Placement.node)).order_by(Project.id)
    if name is not None:
        query = query.where(Project.name == name)
    return list(session.scalars(query))


def project(session: Session, name: str) -> Project:
    found = projects(session, name)
    if not found:
        raise NotFound("project %r not found" % name)
    return found[0]


def nodes(session: Session) -> list[Node]:
    return list(session.scalars(select(Node).order_by(Node.name)))


def node(session: Session, name: str) -> Node:
    """The node with its placements' projects loaded (its view sums their sizes).

    ``populate_existing``: in a write transaction the session may hold the node with a
    placements list from before the write; eager loading alone would keep that stale list.
    """
    query = (select(Node).where(Node.name == name)
             .options(selectinload(Node.placements).selectinload(Placement.project))
             .execution_options(populate_existing=True))
    found = session.scalars(query).one_or_none()
    if found is None:
        raise NotFound("node %r not found" % name)
    return found


def placed_nodes(project_row: Project) -> list[str]:
    return sorted(placement.node.name for placement in project_row.placements)


def vm_states(session: Session, project_name: str | None = None) -> list[VmState]:
    query = select(VmState).order_by(VmState.project, VmState.node)
    if project_name is not None:
        query = query.where(VmState.project == project_name)
    return list(session.scalars(query))


def replica_states(session: Session, project_name: str | None = None) -> list[ReplicaState]:
    query = select(ReplicaState).order_by(ReplicaState.project, ReplicaState.app, ReplicaState.node, ReplicaState.replica)
    if project_name is not None:
        query = query.where(ReplicaState.project == project_name)
    return list(session.scalars(query))
