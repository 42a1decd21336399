"""Lookups shared by the service layer, the desired-state document and the metrics."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload, selectinload

from goship_ctl.errors import NotFound
from goship_ctl.store.models import Node, Placement, Project, ReplicaState, VmState


def projects(session: Session, name: str | None = None) -> list[Project]:
    """Projects (oldest first, the scheduler's priority order) with apps and placements loaded
    (of a placement's node, only its name: a node row carries its facts)."""
    query = select(Project).options(
        selectinload(Project.apps),
        selectinload(Project.placements).selectinload(Placement.node).load_only(Node.name)).order_by(Project.id)
    if name is not None:
        query = query.where(Project.name == name)
    return list(session.scalars(query))


def project(session: Session, name: str) -> Project:
    """One project, with apps and placed node names in one joined query (the API reads this on
    every project request; ``projects`` loads many with one query per relationship instead)."""
    query = select(Project).where(Project.name == name).options(
        joinedload(Project.apps), joinedload(Project.placements).joinedload(Placement.node).load_only(Node.name))
    found = session.scalars(query).unique().one_or_none()
    if found is None:
        raise NotFound("project %r not found" % name)
    return found


def nodes(session: Session) -> list[Node]:
    return list(session.scalars(select(Node).order_by(Node.name)))


def node(session: Session, name: str) -> Node:
    found = session.scalars(select(Node).where(Node.name == name)).one_or_none()
    if found is None:
        raise NotFound("node %r not found" % name)
    return found


def placed_projects(session: Session, node_ids: list[int] | None = None) -> dict[int, list[tuple[str, dict]]]:
    """Node id -> (name, spec.vm) of each project placed there (all nodes when ``node_ids`` is None).

    One query and no ORM objects: a node's view needs no more, and it is the API's hottest read.
    """
    query = select(Placement.node_id, Project.name, Project.vm).join(Project, Placement.project_id == Project.id)
    if node_ids is not None:
        query = query.where(Placement.node_id.in_(node_ids))
    placed: dict[int, list[tuple[str, dict]]] = {}
    for node_id, name, vm in session.execute(query):
        placed.setdefault(node_id, []).append((name, vm))
    return placed


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
