"""Apply, scale and delete projects. Each runs inside the caller's transaction and returns the
names of the nodes whose desired state changed (for the reconciler)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from goship_ctl.errors import Conflict, Invalid, NotFound
from goship_ctl.service import events
from goship_ctl.service.scheduling import reschedule
from goship_ctl.spec.project import MAX_REPLICAS, ProjectDocument, apps_list, placement_dict, vm_dict
from goship_ctl.store import queries
from goship_ctl.store.models import App, Project

CREATED, UPDATED, UNCHANGED = "created", "updated", "unchanged"


@dataclass(frozen=True)
class Outcome:
    project: str
    result: str  # created, updated, unchanged, deleted
    changed_nodes: frozenset[str]


def check_version(project: Project, expected: int | None) -> None:
    if expected is not None and expected != project.resource_version:
        raise Conflict("project %r changed since it was read: resourceVersion is %d, the write names %d"
                       % (project.name, project.resource_version, expected))


def apply(session: Session, document: ProjectDocument, actor: str) -> Outcome:
    name = document.metadata.name
    expected = document.metadata.resourceVersion
    try:
        project = queries.project(session, name)
    except NotFound:
        if expected is not None:
            raise Conflict("project %r does not exist (it was deleted?) but the write names resourceVersion %d"
                           % (name, expected)) from None
        project = None
    placement, vm, apps = placement_dict(document), vm_dict(document), apps_list(document)
    if project is None:
        project = Project(name=name, placement=placement, vm=vm, generation=1)
        _set_apps(project, apps)
        session.add(project)
        result = CREATED
    else:
        check_version(project, expected)
        if project.placement == placement and project.vm == vm and [app.spec for app in project.apps] == apps:
            return Outcome(name, UNCHANGED, frozenset())
        vm_level_change = vm_inputs(project.vm, [app.spec for app in project.apps]) != vm_inputs(vm, apps)
        project.placement, project.vm = placement, vm
        _set_apps(project, apps)
        project.generation += 1
        if vm_level_change:
            project.vm_generation = project.generation
        result = UPDATED
    before = set(queries.placed_nodes(project)) if result == UPDATED else set()
    events.record(session, "project.%s" % result, "%s by %s (generation %d)" % (result, actor, project.generation),
                  project=name)
    reschedule(session)
    return Outcome(name, result, frozenset(before | set(queries.placed_nodes(project))))


def vm_inputs(vm: dict, apps: list[dict]) -> tuple:
    """What a project VM itself is made from: spec.vm and the OCI images its apps run (packed
    into the VM's image disk by roles/project_vm, for every app whose runtime is not
    ``process``). A change of anything else in the apps reaches a running VM through guest_init,
    except in a confidential VM: its apps are part of its measured launch (docs/confidential.md),
    so any change of them is a new VM."""
    if vm.get("confidential"):
        return vm, apps
    return vm, sorted({app["image"] for app in apps if app.get("runtime", "crun") != "process"})


def scale(session: Session, name: str, app_name: str, replicas: int, expected: int | None, actor: str) -> Outcome:
    if isinstance(replicas, bool) or not isinstance(replicas, int) or not 0 <= replicas <= MAX_REPLICAS:
        raise Invalid([{"path": "replicas", "message": "must be an integer from 0 to %d" % MAX_REPLICAS}])
    project = queries.project(session, name)
    check_version(project, expected)
    app = next((app for app in project.apps if app.name == app_name), None)
    if app is None:
        raise NotFound("app %r not found in project %r" % (app_name, name))
    if app.replicas == replicas:
        return Outcome(name, UNCHANGED, frozenset())
    events.record(session, "app.scaled", "%s scaled from %d to %d replicas by %s" % (app_name, app.replicas, replicas, actor),
                  project=name, data={"app": app_name, "from": app.replicas, "to": replicas})
    app.replicas = replicas
    app.spec = dict(app.spec, replicas=replicas)
    project.generation += 1
    session.flush()
    return Outcome(name, UPDATED, frozenset(queries.placed_nodes(project)))


def delete(session: Session, name: str, expected: int | None, actor: str) -> Outcome:
    project = queries.project(session, name)
    check_version(project, expected)
    nodes = frozenset(queries.placed_nodes(project))
    session.delete(project)
    events.record(session, "project.deleted", "deleted by %s" % actor, project=name)
    session.flush()
    reschedule(session)
    return Outcome(name, "deleted", nodes)


def _set_apps(project: Project, apps: list[dict]) -> None:
    """Update apps in place by name (rows keep their ids), add new ones, drop the rest."""
    existing = {app.name: app for app in project.apps}
    rows = []
    for position, spec in enumerate(apps):
        row = existing.get(spec["name"]) or App(name=spec["name"])
        row.position, row.replicas, row.spec = position, spec["replicas"], spec
        rows.append(row)
    project.apps = rows
