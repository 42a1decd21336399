"""The reconciler's CLI side without VMs: status rows, convergence, progress output, and the
commands that need the embedded store refusing an API URL."""

import io

import pytest

from ctl_helpers import ADMIN, project, service_with_nodes
from ctl_store_cases import guest_status_vm
from goship_ctl.cli import main
from goship_ctl.commands.progress import RunProgress
from goship_ctl.errors import EXIT_OK, EXIT_USAGE
from goship_ctl.reconciler.convergence import project_progress
from goship_ctl.reconciler.events import RunEvent
from goship_ctl.reconciler.recorder import ActualStateRecorder
from goship_ctl.reconciler.trigger import PendingNodes

CLIENT_ENV = ("GOSHIP_URL", "GOSHIP_TOKEN", "GOSHIP_CA_CERT", "GOSHIP_DATABASE_URL")


@pytest.fixture
def data_dir(monkeypatch, tmp_path):
    for name in CLIENT_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GOSHIP_DATA_DIR", str(tmp_path / "ctl"))
    return tmp_path / "ctl"


@pytest.fixture
def reported(data_dir):
    """alpha on node1 and node2; node1 reported both replicas, node2 nothing yet."""
    service = service_with_nodes("sqlite:///%s" % (data_dir / "goship.db"), count=2)
    service.apply_project(ADMIN, project(vcpus=1))
    ActualStateRecorder(service.sessions, PendingNodes()).guest_status(
        "node1", [guest_status_vm("node1", states=("running", "starting"))])
    yield service
    service.close()


def ctl(capsys, *argv):
    code = main([str(arg) for arg in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_status_lists_every_replica_and_vms_without_reports(reported, capsys):
    code, out, _err = ctl(capsys, "status")
    assert code == EXIT_OK
    assert [line.split() for line in out.splitlines()] == [
        ["NODE", "VM", "VM_STATE", "APP", "REPLICA", "STATE", "RESTARTS"],
        ["node1", "goship-node1-alpha", "running", "web", "0", "running", "0"],
        ["node1", "goship-node1-alpha", "running", "web", "1", "starting", "1"],
        ["node2", "goship-node2-alpha", "pending", "-", "-", "-", "-"],
    ]
    assert ctl(capsys, "status", "-p", "nope")[0] == 3


def test_convergence_of_a_project(reported):
    progress = project_progress(reported.get_project(ADMIN, "alpha"))
    assert (progress.done, progress.vms_ready, progress.vms_desired, progress.replicas_up,
            progress.replicas_desired) == (False, 1, 2, 1, 4)
    assert progress.summary() == "project alpha generation 1: 1/2 VMs ready, 1/4 replicas up"
    recorder = ActualStateRecorder(reported.sessions, PendingNodes())
    recorder.guest_status("node1", [guest_status_vm("node1", states=("running", "ready"))])
    recorder.guest_status("node2", [guest_status_vm("node2", states=("ready", "ready")), guest_status_vm("node2", "old")])
    assert project_progress(reported.get_project(ADMIN, "alpha")).done
    recorder.guest_status("node1", [guest_status_vm("node1", generation=0, states=("ready", "ready"))])
    assert not project_progress(reported.get_project(ADMIN, "alpha")).done, "an older generation is not converged"


def test_reconcile_with_nothing_to_do_and_unknown_nodes(data_dir, capsys):
    assert ctl(capsys, "reconcile")[:2] == (EXIT_OK, "nothing to do: every node is up to date\n")
    code, _out, err = ctl(capsys, "reconcile", "--node", "ghost")
    assert code == EXIT_USAGE and "no such node: ghost" in err


@pytest.mark.parametrize("argv", [("reconcile",), ("logs", "alpha", "web"), ("signal", "alpha", "web", "--signal", "KILL")])
def test_commands_that_run_ansible_refuse_an_api_url(data_dir, capsys, argv):
    code, out, err = ctl(capsys, *argv, "--url", "http://127.0.0.1:9")
    assert code == EXIT_USAGE and "without --url" in out + err


def test_logs_tail_is_bounded(data_dir, capsys):
    code, _out, err = ctl(capsys, "logs", "alpha", "web", "--tail", 5001)
    assert code == EXIT_USAGE and "--tail must be from 0 to 5000" in err


def test_plain_progress_prints_one_line_per_change():
    stream = io.StringIO()
    with RunProgress(stream, live=False) as progress:
        progress(RunEvent("task", "node1", "Boot the VM"))
        progress(RunEvent("ok", "node1", "Boot the VM"))
        progress(RunEvent("changed", "node1", "Push apps", "goship-node1-alpha"))
        progress(RunEvent("unreachable", "node2", "Install", "ssh: Connection refused"))
        progress.done("node1", "ok")
    lines = [line.split(None, 1)[1] for line in stream.getvalue().splitlines()]
    assert lines == ["node1: changed: Push apps [goship-node1-alpha]", "node2: unreachable: ssh: Connection refused"]


def test_live_progress_redraws_a_line_per_node():
    stream = io.StringIO()
    with RunProgress(stream, live=True) as progress:
        progress(RunEvent("task", "node1", "Define and run the project VM until guest_init answers"))
        progress(RunEvent("task", "node2", "Read the node's facts"))
        progress(RunEvent("changed", "node1", "Define and run the project VM until guest_init answers"))
        progress.note("a line of its own")
        progress.done("node1", "ok")
        progress.done("node2", "unreachable")
    text = stream.getvalue()
    assert "\x1b[2F" in text and "a line of its own\n" in text
    last = text.rsplit("\x1b[2F", 1)[1].replace("\x1b[2K", "").splitlines()
    assert [line.split()[:6] for line in last] == [
        ["node1", "done", "0", "ok", "1", "changed"], ["node2", "unreachable", "0", "ok", "0", "changed"]]
