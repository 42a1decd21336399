"""Tables of the state store. Desired state (projects, apps, nodes, placements, tokens) and what the
nodes report (VM and replica states, events).

Actual-state rows name their project and node by name, without foreign keys: a VM outlives its
project's row until the reconciler has removed it and reported so.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, Boolean, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from goship_ctl.store.types import UTCDateTime, utcnow

NAME = 63  # DNS label


class Base(DeclarativeBase):
    pass


class Node(Base):
    __tablename__ = "nodes"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME), unique=True)
    connection: Mapped[dict] = mapped_column(JSON, doc="the node's DesiredState entry: connection, host, port, user, state_root, labels, vars")
    capacity_override: Mapped[dict | None] = mapped_column(JSON, doc="{vcpus, memory_mib} given by the operator")
    confidential_override: Mapped[list | None] = mapped_column(JSON)
    facts: Mapped[dict | None] = mapped_column(JSON, doc="the last host_info result")
    facts_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    schedulable: Mapped[bool] = mapped_column(Boolean, default=True, doc="false once drained")
    status: Mapped[str] = mapped_column(String(16), default="unknown", doc="unknown, ready or unreachable")
    status_message: Mapped[str] = mapped_column(Text, default="")
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resource_version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    placements: Mapped[list[Placement]] = relationship(back_populates="node")

    __mapper_args__ = {"version_id_col": resource_version}


class Project(Base):
    __tablename__ = "projects"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME), unique=True)
    placement: Mapped[dict] = mapped_column(JSON, doc="spec.placement")
    vm: Mapped[dict] = mapped_column(JSON, doc="spec.vm")
    generation: Mapped[int] = mapped_column(Integer, default=1, doc="bumps on every change of the spec")
    vm_generation: Mapped[int] = mapped_column(
        Integer, default=1, doc="the generation of the last change that a VM must be converged for (spec.vm, "
                                "the apps' images); later changes reach running VMs through apps.yml alone")
    resource_version: Mapped[int] = mapped_column(Integer, doc="bumps on every write; guards against stale writes")
    scheduled: Mapped[bool] = mapped_column(Boolean, default=False, doc="placed on as many nodes as the spec asks")
    schedule_message: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    apps: Mapped[list[App]] = relationship(
        back_populates="project", cascade="all, delete-orphan", order_by="App.position", passive_deletes=True)
    placements: Mapped[list[Placement]] = relationship(
        back_populates="project", cascade="all, delete-orphan", passive_deletes=True)

    __mapper_args__ = {"version_id_col": resource_version}


class App(Base):
    __tablename__ = "apps"
    __table_args__ = (UniqueConstraint("project_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer, doc="order in spec.apps")
    name: Mapped[str] = mapped_column(String(NAME))
    replicas: Mapped[int] = mapped_column(Integer)
    spec: Mapped[dict] = mapped_column(JSON, doc="the app as applied, including pass-through fields")

    project: Mapped[Project] = relationship(back_populates="apps")


class Placement(Base):
    """One project VM: project ``project_id`` runs on node ``node_id``."""

    __tablename__ = "placements"
    # The primary key serves lookups by project; a node's view and the recorder look up by node.
    __table_args__ = (Index("ix_placements_node_id", "node_id"),)

    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True)
    node_id: Mapped[int] = mapped_column(ForeignKey("nodes.id", ondelete="RESTRICT"), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    project: Mapped[Project] = relationship(back_populates="placements")
    node: Mapped[Node] = relationship(back_populates="placements")


class VmState(Base):
    """What the node last reported about one project VM."""

    __tablename__ = "vm_states"
    __table_args__ = (UniqueConstraint("project", "node"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project: Mapped[str] = mapped_column(String(NAME))
    node: Mapped[str] = mapped_column(String(NAME))
    domain: Mapped[str] = mapped_column(String(160))
    state: Mapped[str] = mapped_column(String(32), doc="e.g. running, shut-off, failed, unreachable")
    observed_generation: Mapped[int | None] = mapped_column(Integer)
    message: Mapped[str] = mapped_column(Text, default="")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class ReplicaState(Base):
    """What guest_init last reported about one container (app replica) in one VM."""

    __tablename__ = "replica_states"
    __table_args__ = (UniqueConstraint("project", "node", "app", "replica"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project: Mapped[str] = mapped_column(String(NAME))
    node: Mapped[str] = mapped_column(String(NAME))
    app: Mapped[str] = mapped_column(String(NAME))
    replica: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(32))
    restarts: Mapped[int] = mapped_column(Integer, default=0)
    exit_code: Mapped[int | None] = mapped_column(Integer)
    health: Mapped[str | None] = mapped_column(String(32))
    last_error: Mapped[str] = mapped_column(Text, default="")
    cpu_seconds: Mapped[float | None] = mapped_column(Float)
    memory_bytes: Mapped[int | None] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class ReconcileRun(Base):
    """One playbook run on one node: written ``running`` when it starts, its result when it ends.

    A row still ``running`` whose owner (``host:work dir``) no longer holds the node's lock belongs
    to a process that died mid-run; the reconciler marks it ``interrupted`` (reconciler/runs.py).
    """

    __tablename__ = "reconcile_runs"
    __table_args__ = (Index("ix_reconcile_runs_state", "state"), Index("ix_reconcile_runs_node_id", "node", "id"))

    id: Mapped[int] = mapped_column(primary_key=True)
    ident: Mapped[str] = mapped_column(String(64), doc="ansible-runner's ident: the run's private directory name")
    node: Mapped[str] = mapped_column(String(NAME))
    playbook: Mapped[str] = mapped_column(String(64))
    owner: Mapped[str] = mapped_column(Text, doc="host name and reconcile work directory of the running process")
    pid: Mapped[int] = mapped_column(Integer, doc="the control service process that ran it")
    state: Mapped[str] = mapped_column(String(16), doc="running, then ok, failed, unreachable, cancelled, timeout or interrupted")
    message: Mapped[str] = mapped_column(Text, default="")
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Event(Base):
    __tablename__ = "events"
    __table_args__ = (Index("ix_events_project_id", "project", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    kind: Mapped[str] = mapped_column(String(64), doc="dotted, e.g. project.applied, node.drained")
    project: Mapped[str | None] = mapped_column(String(NAME))
    node: Mapped[str | None] = mapped_column(String(NAME))
    message: Mapped[str] = mapped_column(Text)
    data: Mapped[dict] = mapped_column(JSON, default=dict)


class Token(Base):
    """An API token: ``gsp_<token_id>_<secret>``; only a SHA-256 of the secret is kept."""

    __tablename__ = "tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_id: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(NAME))
    project: Mapped[str | None] = mapped_column(String(NAME), doc="None: an admin token")
    secret_sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
