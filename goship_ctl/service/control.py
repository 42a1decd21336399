"""ControlService: every use case as one transaction, checked against the caller's Principal.

The REST API calls it for each request; the CLI calls it directly when no server is
configured. After a commit that changed what nodes should run, it asks the reconcile trigger
to visit those nodes.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.orm.exc import StaleDataError

from goship_ctl import desired_state
from goship_ctl.auth.principal import Principal
from goship_ctl.errors import Conflict
from goship_ctl.reconciler.trigger import PendingNodes, ReconcileTrigger
from goship_ctl.service import events, nodes, projects, tokens, views
from goship_ctl.service.scheduling import Move
from goship_ctl.spec.node import parse_node
from goship_ctl.spec.project import parse_project
from goship_ctl.store import queries
from goship_ctl.store.engine import open_engine, session_factory
from goship_ctl.store.models import Node


class ControlService:
    def __init__(self, sessions: sessionmaker[Session], trigger: ReconcileTrigger | None = None):
        self.sessions = sessions
        self.trigger = trigger if trigger is not None else PendingNodes()

    @classmethod
    def open(cls, url: str, trigger: ReconcileTrigger | None = None) -> ControlService:
        """The service on the store at ``url`` (migrated to the newest schema first)."""
        return cls(session_factory(open_engine(url)), trigger)

    def ping(self) -> None:
        """Raise unless the store answers a query."""
        with self.sessions() as session:
            session.execute(text("SELECT 1"))

    def close(self) -> None:
        self.sessions.kw["bind"].dispose()

    @contextmanager
    def _transaction(self) -> Iterator[Session]:
        """One transaction; a concurrent write to the same rows surfaces as 409 Conflict."""
        try:
            with self.sessions.begin() as session:
                yield session
        except StaleDataError as exc:
            raise Conflict("changed by someone else during this write; read it again and retry") from exc
        except IntegrityError as exc:
            raise Conflict("conflicts with a concurrent write: %s" % exc.orig) from exc

    # -- projects --------------------------------------------------------------------------
    def apply_project(self, principal: Principal, document: Any) -> dict:
        parsed = parse_project(document)
        principal.require_project(parsed.metadata.name)
        with self._transaction() as session:
            outcome = projects.apply(session, parsed, principal.token_name)
            view = self._project_view(session, outcome.project)
        self.trigger.request(outcome.changed_nodes, "project %s %s" % (outcome.project, outcome.result))
        return {"result": outcome.result, "project": view}

    def get_project(self, principal: Principal, name: str) -> dict:
        principal.require_project(name)
        with self.sessions() as session:
            return self._project_view(session, name)

    def list_projects(self, principal: Principal) -> list[dict]:
        with self.sessions() as session:
            return [views.project_summary(p) for p in queries.projects(session) if principal.may_see(p.name)]

    def scale_app(self, principal: Principal, project: str, app: str, replicas: int,
                  resource_version: int | None = None) -> dict:
        principal.require_project(project)
        with self._transaction() as session:
            outcome = projects.scale(session, project, app, replicas, resource_version, principal.token_name)
            view = self._project_view(session, project)
        self.trigger.request(outcome.changed_nodes, "app %s/%s scaled to %d" % (project, app, replicas))
        return {"result": outcome.result, "project": view}

    def delete_project(self, principal: Principal, name: str, resource_version: int | None = None) -> dict:
        principal.require_project(name)
        with self._transaction() as session:
            outcome = projects.delete(session, name, resource_version, principal.token_name)
        self.trigger.request(outcome.changed_nodes, "project %s deleted" % name)
        return {"result": outcome.result, "project": name, "nodes": sorted(outcome.changed_nodes)}

    def list_apps(self, principal: Principal, project: str | None = None) -> list[dict]:
        if project is not None:
            principal.require_project(project)
        with self.sessions() as session:
            rows = [] if project is None else [queries.project(session, project)]
            replicas = queries.replica_states(session, project)
            return [app for p in rows or queries.projects(session) if principal.may_see(p.name)
                    for app in views.app_rows(p, replicas)]

    def list_vms(self, principal: Principal, project: str | None = None) -> list[dict]:
        if project is not None:
            principal.require_project(project)
        with self.sessions() as session:
            rows = [queries.project(session, project)] if project is not None else queries.projects(session)
            vms = queries.vm_states(session, project)
            listed = [vm for p in rows if principal.may_see(p.name) for vm in views.vm_rows(p, vms)]
            if project is None and principal.is_admin:
                listed += views.orphan_vm_rows(vms, {p.name for p in rows})
            return listed

    @staticmethod
    def _node_view(session: Session, node: Node) -> dict:
        return views.node_view(node, queries.placed_projects(session, [node.id]).get(node.id, []))

    @staticmethod
    def _project_view(session: Session, name: str) -> dict:
        return views.project_view(queries.project(session, name), queries.vm_states(session, name),
                                  queries.replica_states(session, name))

    # -- nodes (admin) ---------------------------------------------------------------------
    def apply_node(self, principal: Principal, document: Any) -> dict:
        principal.require_admin("nodes")
        spec = parse_node(document)
        with self._transaction() as session:
            result, moves = nodes.apply(session, spec, principal.token_name)
            view = self._node_view(session, queries.node(session, spec.name))
        self._request(moves, "node %s %s" % (spec.name, result))
        return {"result": result, "node": view, **_moves_view(moves)}

    def list_nodes(self, principal: Principal) -> list[dict]:
        principal.require_admin("nodes")
        with self.sessions() as session:
            placed = queries.placed_projects(session)
            return [views.node_view(node, placed.get(node.id, [])) for node in queries.nodes(session)]

    def get_node(self, principal: Principal, name: str) -> dict:
        principal.require_admin("nodes")
        with self.sessions() as session:
            return self._node_view(session, queries.node(session, name))

    def set_node_schedulable(self, principal: Principal, name: str, schedulable: bool) -> dict:
        """Drain (schedulable False) or uncordon a node; says which projects moved."""
        principal.require_admin("nodes")
        with self._transaction() as session:
            moves = nodes.set_schedulable(session, name, schedulable, principal.token_name)
            view = self._node_view(session, queries.node(session, name))
        self._request(moves, "node %s %s" % (name, "uncordoned" if schedulable else "drained"))
        return {"node": view, **_moves_view(moves)}

    def delete_node(self, principal: Principal, name: str) -> dict:
        principal.require_admin("nodes")
        with self._transaction() as session:
            nodes.delete(session, name, principal.token_name)
        return {"result": "deleted", "node": name}

    def record_node_facts(self, principal: Principal, name: str, host: dict) -> dict:
        """host_info's ``host`` result for a node (normally written by the reconciler)."""
        principal.require_admin("nodes")
        with self._transaction() as session:
            moves = nodes.record_facts(session, name, host)
            view = self._node_view(session, queries.node(session, name))
        self._request(moves, "facts from node %s" % name)
        return {"node": view, **_moves_view(moves)}

    def _request(self, moves: list[Move], reason: str) -> None:
        self.trigger.request(nodes.changed_nodes(moves), reason)

    # -- tokens (admin) --------------------------------------------------------------------
    def create_token(self, principal: Principal, name: str, project: str | None) -> dict:
        principal.require_admin("tokens")
        with self._transaction() as session:
            return tokens.create(session, name, project, principal.token_name)

    def list_tokens(self, principal: Principal) -> list[dict]:
        principal.require_admin("tokens")
        with self.sessions() as session:
            return tokens.listing(session)

    def revoke_token(self, principal: Principal, token_id: str) -> dict:
        principal.require_admin("tokens")
        with self._transaction() as session:
            tokens.revoke(session, token_id, principal.token_name)
        return {"result": "revoked", "id": token_id}

    def authenticate(self, plaintext: str) -> Principal | None:
        with self.sessions() as session:
            found = tokens.authenticate(session, plaintext)
        if found is None:
            return None
        principal, due = found
        if due:  # at most once a minute per token: a write transaction
            with self._transaction() as session:
                tokens.mark_used(session, plaintext)
        return principal

    # -- desired state and events ----------------------------------------------------------
    def desired_state(self, principal: Principal) -> dict:
        principal.require_admin("the desired-state document")
        with self.sessions() as session:
            return desired_state.compute(session)

    def events(self, principal: Principal, project: str | None = None, node: str | None = None,
               after: int = 0, limit: int = 100) -> list[dict]:
        with self.sessions() as session:
            return events.listing(session, principal, project, node, after, limit)


def _moves_view(moves: list[Move]) -> dict:
    return {
        "moved": [{"project": m.project, "from": list(m.before), "to": list(m.after)} for m in moves if m.before != m.after],
        "unschedulable": [{"project": m.project, "reason": m.reason} for m in moves if m.reason],
    }
