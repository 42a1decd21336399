"""The Project document (``apiVersion: goship/v1``, ``kind: Project``), validated with pydantic.

``vm`` and each app keep unknown fields: they pass through to the node side (virtualization
primitives, restart policies, ...), which validates them itself. Everything else is strict:
an unknown field, a boolean where a count belongs or a wrong type is an error with its path.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, ValidationError, field_validator, model_validator

from goship_ctl.collection import desired_state_module
from goship_ctl.errors import Invalid
from goship_ctl.spec.problems import from_shared_validator, from_validation_error

API_VERSION = "goship/v1"
DNS_LABEL_PATTERN = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
CONFIDENTIAL_TYPES = ("sev", "sev-es", "sev-snp", "tdx")
# Upper bounds, so a huge number is refused with its path instead of failing in the store (a
# 32-bit column on PostgreSQL) or on the node: guest_init takes at most 256 replicas of an app
# per VM and one request line of at most 1 MiB, of which the app set is the bulk.
MAX_REPLICAS = 256
MAX_VCPUS = 1024
MAX_MEMORY_MIB = 16 * 1024 * 1024
MAX_APPS_JSON_BYTES = 768 * 1024

DnsLabel = Annotated[StrictStr, Field(pattern=DNS_LABEL_PATTERN, description="a DNS label")]
Port = Annotated[StrictInt, Field(ge=1, le=65535)]
LabelValue = StrictStr | StrictInt | StrictBool


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Metadata(Strict):
    name: DnsLabel
    resourceVersion: StrictInt | None = Field(
        default=None, ge=1, description="when given, the write fails with 409 unless it matches the stored version")


class Placement(Strict):
    """Where the project's VMs go: a count, a node list, or a label selector (optionally with a count)."""

    nodes: StrictInt | None = Field(default=None, ge=0, description="number of nodes")
    nodeNames: list[DnsLabel] | None = Field(default=None, min_length=1, description="exactly these nodes")
    selector: dict[StrictStr, LabelValue] | None = Field(
        default=None, min_length=1, description="nodes whose labels match; all of them unless `nodes` limits the count")
    spreadBy: StrictStr | None = Field(default=None, min_length=1, description="node label whose values to spread over")

    @model_validator(mode="after")
    def one_kind(self):
        if self.nodeNames is not None and (self.nodes is not None or self.selector is not None):
            raise ValueError("nodeNames cannot be combined with nodes or selector")
        if self.nodeNames is None and self.nodes is None and self.selector is None:
            raise ValueError("give nodes (a count), nodeNames (a list) or selector (labels)")
        if self.nodeNames is not None and len(set(self.nodeNames)) != len(self.nodeNames):
            raise ValueError("nodeNames lists a node twice")
        return self


class BootPolicy(Strict):
    """guest_init's boot policy (goship.json ``policy``): which ops the host may use after boot.
    ``locked``: only the measured app set is accepted (a new spec needs a new, re-measured boot).
    There is no debug op, and no policy enables one (docs/confidential.md)."""

    apply: Literal["allowed", "locked"] = "locked"
    signal: StrictBool = True
    logs: StrictBool = True
    shutdown: StrictBool = True


class Confidential(Strict):
    # What goship.core.project_vm can render into <launchSecurity>; a node may report sev-es too.
    type: Literal["sev", "sev-snp", "tdx"]
    policy: StrictStr | None = Field(default=None, pattern=r"^0x[0-9a-fA-F]{1,16}$",
                                     description="the platform's guest policy as hex (SEV/SNP), e.g. 0x00030000")
    boot_policy: BootPolicy = Field(default_factory=BootPolicy,
                                    description="guest_init's boot policy, measured with the boot spec (sev-snp, tdx)")


class VmSpec(BaseModel):
    model_config = ConfigDict(extra="allow")

    vcpus: StrictInt = Field(ge=1, le=MAX_VCPUS)
    memory_mib: StrictInt = Field(ge=64, le=MAX_MEMORY_MIB)
    confidential: Confidential | None = None


class AppSpec(BaseModel):
    model_config = ConfigDict(extra="allow")

    name: DnsLabel
    image: StrictStr = Field(min_length=1)
    replicas: StrictInt = Field(ge=0, le=MAX_REPLICAS, description="containers in every VM of the project")
    ports: list[Port] = Field(default_factory=list)
    env: dict[str, Any] = Field(
        default_factory=dict, description="name -> string, or {value: string, secret: bool}")

    @field_validator("env")
    @classmethod
    def env_entries(cls, env):
        for key, value in env.items():
            if not isinstance(key, str) or not ENV_NAME.fullmatch(key):
                raise ValueError("%r is not a valid environment variable name" % (key,))
            if not (isinstance(value, str) or _is_secret_value(value)):
                raise ValueError("%s: must be a string (quote numbers) or {value: <string>, secret: <bool>}" % key)
            if "\x00" in (value if isinstance(value, str) else value["value"]):
                raise ValueError("%s: must not contain NUL (no process environment can hold it)" % key)
        return env


class ProjectSpec(Strict):
    placement: Placement
    vm: VmSpec
    apps: list[AppSpec] = Field(default_factory=list)

    @field_validator("apps")
    @classmethod
    def unique_app_names(cls, apps):
        first = {}
        for index, app in enumerate(apps):
            if app.name in first:
                raise ValueError("duplicate app name %r (apps[%d] and apps[%d])" % (app.name, first[app.name], index))
            first[app.name] = index
        return apps


class ProjectDocument(Strict):
    apiVersion: Literal["goship/v1"]
    kind: Literal["Project"]
    metadata: Metadata
    spec: ProjectSpec
    status: dict | None = Field(default=None, description="read-only (what GET returns); ignored on apply")


def parse_project(document: Any) -> ProjectDocument:
    """A valid ProjectDocument, or Invalid listing every problem with its field path."""
    if not isinstance(document, dict):
        raise Invalid([{"path": "<document>", "message": "must be a mapping, got %s" % type(document).__name__}])
    try:
        parsed = ProjectDocument.model_validate(document)
    except ValidationError as exc:
        raise Invalid(from_validation_error(exc)) from None
    _check_against_desired_state_contract(parsed)
    _check_apps_fit_one_guest_request(parsed)
    return parsed


def placement_dict(parsed: ProjectDocument) -> dict:
    return parsed.spec.placement.model_dump(mode="json", exclude_none=True)


def vm_dict(parsed: ProjectDocument) -> dict:
    return parsed.spec.vm.model_dump(mode="json", exclude_none=True)


def apps_list(parsed: ProjectDocument) -> list[dict]:
    return [app.model_dump(mode="json", exclude_none=True) for app in parsed.spec.apps]


def _check_against_desired_state_contract(parsed: ProjectDocument) -> None:
    """What this project becomes in the DesiredState document must pass the collection's own
    validator too, so an accepted project can never make the inventory refuse the document."""
    shared = desired_state_module()
    name = parsed.metadata.name
    document = {"apiVersion": shared.API_VERSION, "kind": shared.KIND, "nodes": {},
                "projects": {name: {"generation": 1, "nodes": [], "vm": vm_dict(parsed), "apps": apps_list(parsed)}}}
    try:
        shared.validate(document)
    except shared.DesiredStateError as exc:
        raise Invalid(from_shared_validator(exc.problems, "projects.%s." % name, "spec.")) from None


def _check_apps_fit_one_guest_request(parsed: ProjectDocument) -> None:
    """The app set travels to guest_init as one `apply` line of ASCII JSON (non-ASCII text grows
    up to six-fold as \\u escapes), and guest_init refuses lines over 1 MiB: refuse it here."""
    size = len(json.dumps(apps_list(parsed), separators=(",", ":")))
    if size > MAX_APPS_JSON_BYTES:
        raise Invalid([{"path": "spec.apps", "message": "the apps take %d bytes as guest_init receives them (JSON, ASCII); "
                                                        "at most %d fit" % (size, MAX_APPS_JSON_BYTES)}])


def _is_secret_value(value) -> bool:
    return (isinstance(value, dict) and set(value) <= {"value", "secret"}
            and isinstance(value.get("value"), str) and isinstance(value.get("secret", False), bool))
