"""The DesiredState document (docs/architecture.md) computed from the store.

Every node (drained ones too: the reconciler must remove their VMs) and every project with its
generation, its resolved placement, its VM and its apps (secrets included: the nodes need them).
The document is checked with the collection's own validator before it leaves, so the
inventory plugin can never receive something it would refuse.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from goship_ctl.collection import desired_state_module
from goship_ctl.store import queries


def compute(session: Session) -> dict:
    shared = desired_state_module()
    document = {
        "apiVersion": shared.API_VERSION,
        "kind": shared.KIND,
        "nodes": {node.name: dict(node.connection) for node in queries.nodes(session)},
        "projects": {
            project.name: {
                "generation": project.generation,
                "nodes": queries.placed_nodes(project),
                "vm": dict(project.vm),
                "apps": [dict(app.spec) for app in project.apps],
            }
            for project in queries.projects(session)
        },
    }
    return shared.validate(document)
