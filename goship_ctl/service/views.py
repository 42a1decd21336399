"""Store rows as the JSON the API returns and the CLI prints.

App env values marked secret are never returned: a read shows ``{secret: true}`` only (the
DesiredState document for the nodes is the one place that carries them).
"""

from __future__ import annotations

import copy
from collections import Counter

from goship_ctl.collection import desired_state_module
from goship_ctl.service.node_info import capacity, confidential_types
from goship_ctl.store import queries
from goship_ctl.store.models import Node, Project, ReplicaState, VmState

PENDING = "pending"


def redacted_app(app_spec: dict) -> dict:
    app = copy.deepcopy(app_spec)
    for key, value in (app.get("env") or {}).items():
        if isinstance(value, dict) and value.get("secret"):
            app["env"][key] = {"secret": True}
    return app


def project_view(project: Project, vms: list[VmState], replicas: list[ReplicaState]) -> dict:
    nodes = queries.placed_nodes(project)
    return {
        "apiVersion": "goship/v1",
        "kind": "Project",
        "metadata": {"name": project.name, "resourceVersion": project.resource_version},
        "spec": {"placement": project.placement, "vm": project.vm,
                 "apps": [redacted_app(app.spec) for app in project.apps]},
        "status": {
            "generation": project.generation,
            "scheduled": project.scheduled,
            "message": project.schedule_message,
            "nodes": nodes,
            "vms": vm_rows(project, vms),
            "apps": app_rows(project, replicas),
            "createdAt": project.created_at.isoformat(),
            "updatedAt": project.updated_at.isoformat(),
        },
    }


def project_summary(project: Project) -> dict:
    return {"name": project.name, "generation": project.generation, "resourceVersion": project.resource_version,
            "nodes": queries.placed_nodes(project), "scheduled": project.scheduled,
            "message": project.schedule_message, "apps": len(project.apps),
            "vcpus": project.vm["vcpus"], "memory_mib": project.vm["memory_mib"]}


def vm_rows(project: Project, vms: list[VmState]) -> list[dict]:
    """The project's VMs: one per placed node, plus VMs the nodes still report elsewhere."""
    shared = desired_state_module()
    reported = {vm.node: vm for vm in vms if vm.project == project.name}
    placed = queries.placed_nodes(project)
    rows = []
    for node in sorted(set(placed) | set(reported)):
        vm = reported.get(node)
        rows.append({
            "project": project.name, "node": node, "domain": shared.domain_name(node, project.name),
            "desired": node in placed, "generation": project.generation,
            "state": vm.state if vm else PENDING, "observedGeneration": vm.observed_generation if vm else None,
            "message": vm.message if vm else "", "updatedAt": vm.updated_at.isoformat() if vm else None,
        })
    return rows


def orphan_vm_rows(vms: list[VmState], known_projects: set[str]) -> list[dict]:
    """VMs the nodes report for projects that no longer exist (the reconciler removes them)."""
    return [{"project": vm.project, "node": vm.node, "domain": vm.domain, "desired": False, "generation": None,
             "state": vm.state, "observedGeneration": vm.observed_generation, "message": vm.message,
             "updatedAt": vm.updated_at.isoformat()} for vm in vms if vm.project not in known_projects]


def app_rows(project: Project, replicas: list[ReplicaState]) -> list[dict]:
    """Per app: desired containers (VMs x replicas) and the reported replica states on placed nodes."""
    placed = set(queries.placed_nodes(project))
    rows = []
    for app in project.apps:
        mine = [r for r in replicas if r.project == project.name and r.app == app.name and r.node in placed]
        states = Counter(r.state for r in mine)
        rows.append({
            "project": project.name, "name": app.name, "image": app.spec.get("image"), "replicas": app.replicas,
            "desired": app.replicas * len(placed), "states": dict(sorted(states.items())),
            "restarts": sum(r.restarts for r in mine),
            "instances": [replica_view(r) for r in mine],
        })
    return rows


def replica_view(replica: ReplicaState) -> dict:
    return {"node": replica.node, "replica": replica.replica, "state": replica.state, "restarts": replica.restarts,
            "exitCode": replica.exit_code, "health": replica.health, "lastError": replica.last_error,
            "cpuSeconds": replica.cpu_seconds, "memoryBytes": replica.memory_bytes}


def node_view(node: Node, placed: list[tuple[str, dict]]) -> dict:
    """``placed``: (name, spec.vm) of the projects placed on the node (queries.placed_projects)."""
    size = capacity(node)
    return {
        "name": node.name,
        "connection": node.connection,
        "capacity": {"vcpus": size.vcpus, "memory_mib": size.memory_mib} if size else None,
        "capacitySource": "override" if node.capacity_override else ("facts" if size else None),
        "confidential": sorted(confidential_types(node)),
        "schedulable": node.schedulable,
        "status": node.status,
        "statusMessage": node.status_message,
        "lastSeenAt": node.last_seen_at.isoformat() if node.last_seen_at else None,
        "factsAt": node.facts_at.isoformat() if node.facts_at else None,
        "resourceVersion": node.resource_version,
        "allocated": {"vcpus": sum(vm["vcpus"] for _name, vm in placed),
                      "memory_mib": sum(vm["memory_mib"] for _name, vm in placed)},
        "projects": sorted(name for name, _vm in placed),
    }
