"""Runs a dead process left ``running`` in the store: found through the node locks, their leftover
processes killed, marked interrupted; live runs and other work directories' runs left alone.
(tests/reliability/test_ctl_killed.py does the same with a real SIGKILLed `serve`.)"""

import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from ctl_helpers import ADMIN, service_with_nodes
from goship_ctl.reconciler import runs
from goship_ctl.reconciler.reconcile import Reconciler
from goship_ctl.reconciler.runner import STATE_FILE, new_ident
from goship_ctl.reconciler.trigger import PendingNodes
from goship_ctl.store.models import ReconcileRun

WAIT_S = 10


@pytest.fixture
def world(tmp_path):
    service = service_with_nodes("sqlite:///%s" % (tmp_path / "goship.db"), count=2)
    yield service, Reconciler(service.sessions, PendingNodes(), tmp_path / "reconcile")
    service.close()


def start_run(service, reconciler, nodes, owner=None, playbook="reconcile.yml"):
    ident = new_ident()
    with service.sessions.begin() as session:
        runs.started(session, ident, playbook, nodes, owner or reconciler.owner)
    return ident


def wait_for_child(pid):
    deadline = time.monotonic() + WAIT_S
    while not any(path.read_text().strip() for path in Path("/proc/%d/task" % pid).glob("*/children")):
        assert time.monotonic() < deadline, "the stand-in did not start its child"
        time.sleep(0.05)


def rows(service):
    with service.sessions() as session:
        return {(row.ident, row.node): row for row in session.scalars(select(ReconcileRun))}


def test_a_dead_runs_leftovers_are_killed_and_it_is_marked_interrupted(world):
    service, reconciler = world
    ident = start_run(service, reconciler, ["node1", "node2"])
    private = reconciler.runner.private_path(ident)
    (private / "state").mkdir(parents=True)
    (private / "state" / STATE_FILE).write_text("secrets: here\n")
    # Stands in for the orphaned ansible-playbook: its own session, the run's inventory on its command
    # line, and a child (a module process) in the same session.
    orphan = subprocess.Popen([sys.executable, "-c", "import subprocess; subprocess.run(['sleep', '300'])",
                               "-i", str(private / "inventory" / "nodes.goship.yml")], start_new_session=True)
    try:
        wait_for_child(orphan.pid)
        assert reconciler.recover() == {node: ["run %s was interrupted" % ident] for node in ("node1", "node2")}
        assert orphan.wait(WAIT_S) == -9
    finally:
        orphan.kill()
        orphan.wait(WAIT_S)
    assert not runs.leftover_sessions(str(private) + "/")
    assert not (private / "state" / STATE_FILE).exists()
    found = rows(service)
    assert [found[(ident, node)].state for node in ("node1", "node2")] == ["interrupted", "interrupted"]
    assert found[(ident, "node1")].finished_at is not None
    interrupted = [event for event in service.events(ADMIN, limit=100) if event["kind"] == "reconcile.interrupted"]
    assert sorted(event["node"] for event in interrupted) == ["node1", "node2"]
    assert interrupted[0]["data"] == {"run": ident, "playbook": "reconcile.yml", "killed": 2}
    assert reconciler.recover() == {}, "done once"


def test_live_runs_and_other_work_directories_are_left_alone(world):
    service, reconciler = world
    live = start_run(service, reconciler, ["node1"])
    elsewhere = start_run(service, reconciler, ["node2"], owner="otherhost:/var/lib/goship/ctl/reconcile")
    with reconciler.locks.hold(["node1"], 1):  # node1's run is alive: its process holds the lock
        assert reconciler.recover() == {}
    assert {key: row.state for key, row in rows(service).items()} == {(live, "node1"): "running",
                                                                      (elsewhere, "node2"): "running"}


def test_a_new_run_under_the_lock_finishes_a_dead_one_first(world):
    service, reconciler = world
    ident = start_run(service, reconciler, ["node1"], playbook="signal.yml")
    with reconciler.locks.hold(["node1"], 1):
        assert reconciler._reap(["node1", "node2"]) == [ident]  # pylint: disable=protected-access
    [row] = rows(service).values()
    assert row.state == "interrupted" and row.message.startswith("signal.yml run %s interrupted: " % ident)


def test_finished_runs_are_pruned_per_node(world, monkeypatch):
    service, reconciler = world
    monkeypatch.setattr(runs, "KEEP_FINISHED", 3)
    idents = [start_run(service, reconciler, ["node1", "node2"]) for _run in range(5)]
    with service.sessions.begin() as session:
        for ident in idents:
            runs.finished(session, ident, "node1", "ok", "x" * 5000)
    found = rows(service)
    assert {ident for ident, node in found if node == "node1"} == set(idents[2:])
    assert len([key for key in found if key[1] == "node2"]) == 5, "running rows and other nodes stay"
    assert len(found[(idents[-1], "node1")].message) == runs.MESSAGE_CHARS
