"""A node as an operator registers it (``goship-ctl node add``, ``POST /api/v1/nodes``).

Connection fields follow the DesiredState document's node entry (docs/inventory.md); capacity
and confidential capabilities may be given by hand and are otherwise taken from the node's
``host_info`` facts once the reconciler has read them.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, ValidationError

from goship_ctl.collection import desired_state_module
from goship_ctl.errors import Invalid
from goship_ctl.spec.problems import from_shared_validator, from_validation_error
from goship_ctl.spec.project import DnsLabel, LabelValue

CONNECTION_FIELDS = ("connection", "host", "port", "user", "state_root", "labels", "vars")


class Capacity(BaseModel):
    """What GoShip may allocate to project VMs on the node."""

    model_config = ConfigDict(extra="forbid")

    vcpus: StrictInt = Field(ge=1)
    memory_mib: StrictInt = Field(ge=1)


class NodeSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: DnsLabel
    connection: StrictStr = Field(default="local", min_length=1, description="ansible_connection: local or ssh")
    host: StrictStr | None = None
    port: StrictInt | None = Field(default=None, ge=1, le=65535)
    user: StrictStr | None = None
    state_root: StrictStr | None = Field(default=None, description="absolute path; default /var/lib/goship")
    labels: dict[StrictStr, LabelValue] = Field(default_factory=dict)
    vars: dict[StrictStr, Any] = Field(default_factory=dict, description="extra Ansible host vars")
    capacity: Capacity | None = Field(default=None, description="overrides the capacity from host facts")
    confidential: list[Literal["sev", "sev-es", "sev-snp", "tdx"]] | None = Field(
        default=None, description="overrides the confidential VM types from host facts")


def parse_node(document: Any) -> NodeSpec:
    if not isinstance(document, dict):
        raise Invalid([{"path": "<document>", "message": "must be a mapping, got %s" % type(document).__name__}])
    try:
        node = NodeSpec.model_validate(document)
    except ValidationError as exc:
        raise Invalid(from_validation_error(exc)) from None
    shared = desired_state_module()
    entry = connection_entry(node)
    try:
        shared.validate({"apiVersion": shared.API_VERSION, "kind": shared.KIND, "nodes": {node.name: entry}})
    except shared.DesiredStateError as exc:
        raise Invalid(from_shared_validator(exc.problems, "nodes.%s." % node.name, "")) from None
    return node


def connection_entry(node: NodeSpec) -> dict:
    """The node's entry in the DesiredState document (fields that are not set are left out)."""
    values = node.model_dump(mode="json", include=set(CONNECTION_FIELDS))
    return {key: value for key, value in values.items() if value not in (None, {}) or key == "connection"}
