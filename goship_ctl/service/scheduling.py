"""Run the scheduler over the store and write its decisions back (placements, project status)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from goship_ctl.scheduler.model import PlacementRule, Request, Resources
from goship_ctl.scheduler.placement import schedule
from goship_ctl.service import events
from goship_ctl.service.node_info import scheduler_view
from goship_ctl.store import queries
from goship_ctl.store.engine import lock_scheduler
from goship_ctl.store.models import Placement, Project


@dataclass(frozen=True)
class Move:
    project: str
    before: tuple[str, ...]
    after: tuple[str, ...]
    reason: str | None


def request_for(project: Project) -> Request:
    confidential = (project.vm.get("confidential") or {}).get("type")
    return Request(project=project.name, rule=PlacementRule.from_spec(project.placement),
                   demand=Resources(project.vm["vcpus"], project.vm["memory_mib"]),
                   confidential=confidential, current=tuple(queries.placed_nodes(project)))


def reschedule(session: Session) -> list[Move]:
    """Place every project again (stable: unchanged inputs move nothing); returns the projects
    whose placement or schedulability changed. Call inside the transaction that made the change."""
    lock_scheduler(session)
    session.flush()
    node_rows = {node.name: node for node in queries.nodes(session)}
    project_rows = queries.projects(session)
    decisions = schedule([request_for(project) for project in project_rows],
                         [scheduler_view(node) for node in node_rows.values()])
    moves = []
    for project in project_rows:
        decision = decisions[project.name]
        before = tuple(queries.placed_nodes(project))
        reason = decision.reason or ""
        if before == decision.nodes and project.scheduled == decision.scheduled and project.schedule_message == reason:
            continue
        project.placements = [placement for placement in project.placements if placement.node.name in decision.nodes]
        for name in decision.nodes:
            if name not in before:
                project.placements.append(Placement(node=node_rows[name]))
        project.scheduled = decision.scheduled
        project.schedule_message = reason
        moves.append(Move(project.name, before, decision.nodes, decision.reason))
        _record(session, moves[-1])
    session.flush()
    return moves


def _record(session: Session, move: Move) -> None:
    if move.before != move.after:
        events.record(session, "project.placed", "placed on %s (was %s)" % (
            ", ".join(move.after) or "no node", ", ".join(move.before) or "no node"),
            project=move.project, data={"before": list(move.before), "after": list(move.after)})
    if move.reason:
        events.record(session, "project.unschedulable", move.reason, project=move.project)
