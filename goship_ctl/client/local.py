"""The CLI on the embedded store: ControlService called directly, as admin (whoever can open
the data directory owns the store anyway)."""

from __future__ import annotations

import functools

from goship_ctl.auth.principal import LOCAL_ADMIN
from goship_ctl.service.control import ControlService

OPERATIONS = frozenset((
    "apply_project", "get_project", "list_projects", "scale_app", "delete_project", "list_apps", "list_vms",
    "apply_node", "list_nodes", "get_node", "set_node_schedulable", "delete_node", "record_node_facts",
    "create_token", "list_tokens", "revoke_token", "events", "desired_state",
))


class LocalBackend:
    """Every name in OPERATIONS is the ControlService method with the local admin as principal."""

    def __init__(self, service: ControlService):
        self.service = service  # foreground reconciles (goship-ctl reconcile, --wait) use its store and trigger
        self.url = None

    def __getattr__(self, name):
        if name not in OPERATIONS:
            raise AttributeError(name)
        return functools.partial(getattr(self.service, name), LOCAL_ADMIN)

    def close(self) -> None:
        self.service.close()
