"""Which nodes the fast path (playbooks/apps.yml) may serve: only those where nothing but the
apps of VMs already at their current definition differs (drift.apps_only), which needs each
project's last VM-level change (Project.vm_generation, set by apply)."""

from datetime import timedelta
from pathlib import Path

import pytest

from ctl_helpers import ADMIN, project, service_with_nodes
from ctl_store_cases import HOST_FACTS, guest_status_vm
from goship_ctl.reconciler.drift import apps_only
from goship_ctl.reconciler.events import HostResult
from goship_ctl.reconciler.reconcile import Reconciler
from goship_ctl.reconciler.recorder import ActualStateRecorder
from goship_ctl.reconciler.runner import RunResult
from goship_ctl.reconciler.trigger import PendingNodes
from goship_ctl.service.projects import vm_inputs
from goship_ctl.store import queries
from goship_ctl.store.types import utcnow

NODES = ["node1", "node2"]
WEB = {"name": "web", "image": "demo-web", "replicas": 2, "ports": [8080]}


@pytest.fixture
def world(tmp_path):
    """Two nodes that reported; project alpha on node1, its VM running generation 1."""
    service = service_with_nodes("sqlite:///%s" % (tmp_path / "goship.db"), count=2)
    recorder = ActualStateRecorder(service.sessions, PendingNodes())
    for name in NODES:
        recorder.node_facts(name, HOST_FACTS)
        recorder.guest_status(name, [])
    service.apply_project(ADMIN, project(placement={"nodeNames": ["node1"]}, vcpus=1, apps=[WEB]))
    recorder.guest_status("node1", [guest_status_vm("node1", generation=1)])
    yield service, recorder
    service.close()


def fast(service, now=None):
    with service.sessions() as session:
        return apps_only(session, NODES, 300.0, now)


def generations(service):
    with service.sessions() as session:
        alpha = queries.project(session, "alpha")
        return alpha.generation, alpha.vm_generation


def apply_apps(service, apps, vcpus=1):
    service.apply_project(ADMIN, project(placement={"nodeNames": ["node1"]}, vcpus=vcpus, apps=apps))


def test_scale_and_env_changes_take_the_fast_path(world):
    service, recorder = world
    assert fast(service) == set()  # nothing differs: a requested run is a full one
    service.scale_app(ADMIN, "alpha", "web", 3)
    assert generations(service) == (2, 1) and fast(service) == {"node1"}
    apply_apps(service, [dict(WEB, replicas=3, env={"VERSION": "2"})])
    assert generations(service) == (3, 1) and fast(service) == {"node1"}
    recorder.guest_status("node1", [guest_status_vm("node1", generation=3)])
    assert fast(service) == set()


def test_vm_level_changes_need_the_full_reconcile(world):
    service, recorder = world
    apply_apps(service, [WEB], vcpus=2)
    assert generations(service) == (2, 2) and fast(service) == set()
    recorder.guest_status("node1", [guest_status_vm("node1", generation=2)])
    apply_apps(service, [WEB, dict(WEB, name="api", image="other-image")])
    assert generations(service) == (3, 3) and fast(service) == set()
    recorder.guest_status("node1", [guest_status_vm("node1", generation=3)])
    apply_apps(service, [WEB, dict(WEB, name="api", image="other-image", replicas=1),
                         {"name": "job", "image": "tool", "replicas": 1, "runtime": "process",
                          "command": ["/bin/sleep", "60"]}])
    assert generations(service) == (4, 3) and fast(service) == {"node1"}, "process apps need no image disk"


def test_anything_else_wrong_with_the_node_needs_the_full_reconcile(world):
    service, recorder = world
    service.scale_app(ADMIN, "alpha", "web", 3)
    assert fast(service, now=utcnow() + timedelta(seconds=301)) == set(), "stale report"
    recorder.guest_status("node1", [dict(guest_status_vm("node1", generation=1), active=False)])
    assert fast(service) == set(), "VM not running"
    recorder.guest_status("node1", [guest_status_vm("node1", generation=1), guest_status_vm("node1", "old")])
    assert fast(service) == set(), "a VM to remove"
    recorder.guest_status("node1", [guest_status_vm("node1", generation=1)])
    assert fast(service) == {"node1"}
    recorder.node_unreachable("node1", "ssh: connection refused")
    assert fast(service) == set(), "unreachable"


class FakeRunner:
    """Stands in for PlaybookRunner: records (playbook, nodes) and answers ``results[playbook]``."""

    def __init__(self, results=None):
        self.calls = []
        self.results = results or {}

    def run(self, document, playbook, nodes, *, ident, **options):  # pylint: disable=unused-argument
        self.calls.append((playbook, list(nodes)))
        hosts = {node: HostResult(node, result=self.results.get(playbook, "ok"), finished=True) for node in nodes}
        return RunResult(ident=ident, status="successful", rc=0, duration_s=0.1, artifact_dir=Path(), hosts=hosts)


def reconciler_for(service, tmp_path, results=None):
    reconciler = Reconciler(service.sessions, PendingNodes(), tmp_path / "reconcile")
    reconciler.runner = FakeRunner(results)
    return reconciler


def test_the_reconciler_runs_apps_yml_where_only_apps_differ(world, tmp_path):
    service, _recorder = world
    service.scale_app(ADMIN, "alpha", "web", 3)
    reconciler = reconciler_for(service, tmp_path)
    assert set(reconciler.reconcile(NODES)) == set(NODES)
    assert reconciler.runner.calls == [("apps.yml", ["node1"]), ("reconcile.yml", ["node2"])]


def test_a_failed_fast_run_is_followed_by_the_full_reconcile(world, tmp_path):
    service, _recorder = world
    service.scale_app(ADMIN, "alpha", "web", 3)
    reconciler = reconciler_for(service, tmp_path, {"apps.yml": "failed"})
    assert reconciler.reconcile(["node1"])["node1"].result == "ok"
    assert reconciler.runner.calls == [("apps.yml", ["node1"]), ("reconcile.yml", ["node1"])]


def test_without_the_fast_path_everything_is_a_full_reconcile(world, tmp_path):
    service, _recorder = world
    service.scale_app(ADMIN, "alpha", "web", 3)
    reconciler = reconciler_for(service, tmp_path)
    reconciler.apps_fast_path = False
    reconciler.reconcile(NODES)
    assert reconciler.runner.calls == [("reconcile.yml", NODES)]


def test_the_apps_of_a_confidential_vm_are_part_of_its_measured_launch():
    plain = {"vcpus": 1, "memory_mib": 512}
    measured = dict(plain, confidential={"type": "sev-snp"})
    scaled = [dict(WEB, replicas=3)]
    assert vm_inputs(plain, [WEB]) == vm_inputs(plain, scaled), "a scale reaches a plain VM through guest_init"
    assert vm_inputs(measured, [WEB]) != vm_inputs(measured, scaled), "a measured VM is launched anew"
