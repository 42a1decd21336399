"""Prometheus metrics: API traffic and reconcile runs are counted in this process; projects,
VMs, replicas, nodes and the guests' resource use are read from the store at each scrape."""

from __future__ import annotations

from collections import Counter as Tally

from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from sqlalchemy.orm import Session, sessionmaker

from goship_ctl.service import views
from goship_ctl.store import queries

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Metrics:
    def __init__(self, sessions: sessionmaker[Session]):
        disable_created_metrics()  # no *_created series: they double the output and nobody graphs them
        self.registry = CollectorRegistry()
        self.api_requests = Counter("goship_api_requests_total", "API requests", ["method", "route", "status"],
                                    registry=self.registry)
        self.api_latency = Histogram("goship_api_request_duration_seconds", "API request latency", ["method", "route"],
                                     registry=self.registry)
        self.auth_failures = Counter("goship_api_auth_failures_total", "Failed API authentications", ["reason"],
                                     registry=self.registry)
        self.reconcile_runs = Counter("goship_reconcile_runs_total", "Reconcile runs per node and result",
                                      ["node", "result"], registry=self.registry)
        self.reconcile_duration = Histogram("goship_reconcile_duration_seconds", "Reconcile run duration per node",
                                            ["node"], buckets=(1, 5, 10, 30, 60, 120, 300, 600, 1800),
                                            registry=self.registry)
        self.registry.register(StoreCollector(sessions))

    def render(self) -> bytes:
        return generate_latest(self.registry)


class StoreCollector:
    """State gauges computed from the store when scraped."""

    def __init__(self, sessions: sessionmaker[Session]):
        self._sessions = sessions

    def describe(self):
        return []  # no fixed description: keeps registration from calling collect() early

    def collect(self):
        with self._sessions() as session:
            yield from _collect(session)


def _collect(session: Session):
    projects = queries.projects(session)
    vms = queries.vm_states(session)
    replicas = queries.replica_states(session)
    nodes = queries.nodes(session)

    yield _gauge("goship_projects", "Projects by scheduling state", "state",
                 Tally("scheduled" if p.scheduled else "unschedulable" for p in projects), ("scheduled", "unschedulable"))
    vm_states = Tally(row["state"] for p in projects for row in views.vm_rows(p, vms))
    yield _gauge("goship_vms", "Project VMs by state (pending: placed, not reported yet)", "state", vm_states)
    replica_states = Tally(r.state for r in replicas)
    yield _gauge("goship_replicas", "App replicas (containers) by reported state", "state", replica_states)
    yield _gauge("goship_nodes", "Nodes by status", "status", Tally(n.status for n in nodes),
                 ("unknown", "ready", "unreachable"))

    desired = GaugeMetricFamily("goship_app_replicas_desired", "Containers wanted per app (VMs x replicas)",
                                labels=["project", "app"])
    for project in projects:
        for app in views.app_rows(project, replicas):
            desired.add_metric([project.name, app["name"]], app["desired"])
    yield desired

    cpu = CounterMetricFamily("goship_app_cpu_seconds", "CPU time of an app's replicas (cgroup usage, from guest_init)",
                              labels=["project", "app"])
    memory = GaugeMetricFamily("goship_app_memory_bytes", "Memory of an app's running replicas (cgroup, from guest_init)",
                               labels=["project", "app"])
    by_app: dict[tuple[str, str], list] = {}
    for replica in replicas:
        by_app.setdefault((replica.project, replica.app), []).append(replica)
    for (project, app), rows in sorted(by_app.items()):
        cpu.add_metric([project, app], sum(r.cpu_seconds or 0.0 for r in rows))
        memory.add_metric([project, app], sum(r.memory_bytes or 0 for r in rows))
    yield cpu
    yield memory


def _gauge(name: str, documentation: str, label: str, counts: Tally, always=()) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, documentation, labels=[label])
    for value in sorted(set(counts) | set(always)):
        family.add_metric([value], counts.get(value, 0))
    return family
