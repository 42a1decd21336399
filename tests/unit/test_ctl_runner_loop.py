"""What decides when a node is reconciled: drift from the store, node locks, backoff, the loop."""

import threading
import time
from datetime import timedelta

import pytest

from ctl_helpers import ADMIN, project, service_with_nodes
from ctl_store_cases import HOST_FACTS, guest_status_vm
from goship_ctl.reconciler.backoff import NodeBackoff
from goship_ctl.reconciler.drift import nodes_to_reconcile
from goship_ctl.reconciler.events import HostResult
from goship_ctl.reconciler.locks import NodeBusy, NodeLocks
from goship_ctl.reconciler.loop import ReconcileLoop
from goship_ctl.reconciler.recorder import ActualStateRecorder
from goship_ctl.reconciler.trigger import PendingNodes
from goship_ctl.store.types import utcnow

WAIT_S = 10.0


@pytest.fixture
def service(tmp_path):
    service = service_with_nodes("sqlite:///%s" % (tmp_path / "goship.db"), count=2)
    yield service
    service.close()


def drift(service, stale_after_s=300.0, now=None):
    with service.sessions() as session:
        return nodes_to_reconcile(session, stale_after_s, now)


def test_drift_follows_what_the_nodes_reported(service):
    assert drift(service) == {"node1": ["never reconciled"], "node2": ["never reconciled"]}
    recorder = ActualStateRecorder(service.sessions, PendingNodes())
    for name in ("node1", "node2"):
        recorder.node_facts(name, HOST_FACTS)
        recorder.guest_status(name, [])
    assert drift(service) == {}
    service.apply_project(ADMIN, project(placement={"nodeNames": ["node1"]}, vcpus=1))
    assert drift(service) == {"node1": ["project alpha: VM not reported yet"]}
    recorder.guest_status("node1", [guest_status_vm("node1", generation=1)])
    assert drift(service) == {}
    service.scale_app(ADMIN, "alpha", "web", 3)
    assert drift(service) == {"node1": ["project alpha: generation 1 of 2 applied"]}
    recorder.guest_status("node1", [dict(guest_status_vm("node1", generation=2), active=False)])
    assert drift(service) == {"node1": ["project alpha: VM shut-off"]}
    recorder.guest_status("node2", [guest_status_vm("node2", "old")])
    assert drift(service)["node2"] == ["project old: VM goship-node2-old to remove"]
    later = utcnow() + timedelta(seconds=301)
    assert "last report older than 300 s" in drift(service, now=later)["node2"]
    recorder.node_unreachable("node2", "ssh: connection refused")
    assert drift(service)["node2"][0] == "unreachable: ssh: connection refused"


def test_backoff_doubles_up_to_its_limit_and_resets():
    now = [100.0]
    backoff = NodeBackoff(base_s=10, max_s=35, clock=lambda: now[0])
    assert backoff.ready("n1")
    assert [backoff.failed("n1") for _attempt in range(4)] == [10, 20, 35, 35]
    assert not backoff.ready("n1") and backoff.failures("n1") == 4
    now[0] += 35
    assert backoff.ready("n1")
    backoff.failed("n1")
    backoff.succeeded("n1")
    assert backoff.ready("n1") and backoff.failures("n1") == 0


def test_node_locks_keep_a_second_run_off_a_busy_node(tmp_path):
    locks = NodeLocks(tmp_path / "locks")
    with locks.hold(["b", "a"], timeout_s=1):
        started = time.monotonic()
        with pytest.raises(NodeBusy, match="node a"):
            with locks.hold(["a", "c"], timeout_s=0.5):
                pass
        assert time.monotonic() - started >= 0.5
        with locks.hold(["c"], timeout_s=0.1):  # another node is free
            pass
    with locks.hold(["a", "b"], timeout_s=0.1):  # released at exit
        pass
    assert (tmp_path / "locks").stat().st_mode & 0o777 == 0o700


class RecordingReconciler:
    """Stands in for Reconciler in the loop's scheduling tests: records calls, results on demand."""

    def __init__(self):
        self.calls = []
        self.running = set()
        self.overlaps = []
        self.release = threading.Event()
        self.release.set()
        self.results = {}
        self.interrupted = {}
        self.changed = threading.Condition()

    def recover(self):
        return self.interrupted

    def reconcile(self, nodes, reasons, cancel):
        overlap = self.running & set(nodes)
        if overlap:
            self.overlaps.append(overlap)
        self.running |= set(nodes)
        with self.changed:
            self.calls.append((sorted(nodes), dict(reasons)))
            self.changed.notify_all()
        while not self.release.wait(0.05):
            if cancel.is_set():
                break
        self.running -= set(nodes)
        return {node: HostResult(node, self.results.get(node, "ok")) for node in nodes}

    def wait_calls(self, count):
        with self.changed:
            assert self.changed.wait_for(lambda: len(self.calls) >= count, WAIT_S), self.calls


@pytest.fixture
def loop_world(service):
    reconciler = RecordingReconciler()
    trigger = PendingNodes()
    loop = ReconcileLoop(reconciler, trigger, service.sessions, period_s=3600, backoff=NodeBackoff(base_s=60))
    yield loop, reconciler, trigger
    reconciler.release.set()
    loop.stop(WAIT_S)


def test_loop_runs_on_change_and_from_the_store(loop_world):
    loop, reconciler, trigger = loop_world
    loop.start()
    reconciler.wait_calls(1)  # the first scan finds both nodes never reconciled
    assert reconciler.calls[0] == (["node1", "node2"], {"node1": ["never reconciled"], "node2": ["never reconciled"]})
    trigger.request(["node2"], "project alpha created")
    reconciler.wait_calls(2)
    assert reconciler.calls[1] == (["node2"], {"node2": ["project alpha created"]})


def test_loop_first_runs_the_nodes_of_interrupted_runs(loop_world):
    loop, reconciler, _trigger = loop_world
    reconciler.interrupted = {"node2": ["run 20260101T000000-abcdef was interrupted"]}
    loop.start()
    reconciler.wait_calls(1)
    assert reconciler.calls[0][1]["node2"][0] == "run 20260101T000000-abcdef was interrupted"


def test_loop_never_runs_a_node_twice_at_once_and_backs_off(loop_world):
    loop, reconciler, trigger = loop_world
    reconciler.release.clear()
    reconciler.results["node1"] = "unreachable"
    loop.start()
    reconciler.wait_calls(1)
    trigger.request(["node1", "node2"], "again")
    time.sleep(1.5)
    assert len(reconciler.calls) == 1, "both nodes are still busy"
    reconciler.release.set()
    reconciler.wait_calls(2)
    assert reconciler.calls[1] == (["node2"], {"node2": ["again"]}), "node1 failed: it waits for its backoff"
    assert not reconciler.overlaps
    assert loop.backoff.failures("node1") == 1 and not loop.backoff.ready("node1")
    assert loop.backoff.failures("node2") == 0


def test_drift_of_a_node_in_a_run_waits_for_its_report(loop_world):
    """What the store says of a node while it runs is stale: no second run queued from it."""
    loop, reconciler, _trigger = loop_world
    loop.period_s = 0.1
    reconciler.release.clear()
    loop.start()
    reconciler.wait_calls(1)
    time.sleep(2.5)  # scans (one per TAKE_S at most), each finding both nodes never reconciled
    with loop._lock:  # pylint: disable=protected-access
        assert loop._wanted == {}  # pylint: disable=protected-access


def test_stop_cancels_a_running_batch(loop_world):
    loop, reconciler, _trigger = loop_world
    reconciler.release.clear()
    loop.start()
    reconciler.wait_calls(1)
    started = time.monotonic()
    loop.stop(WAIT_S)
    assert time.monotonic() - started < 5 and not reconciler.running
