"""PlaybookRunner with the real ansible-runner and a real goship.core playbook on a local node.

signal.yml for a project placed on no node runs its assertion and skips guest_signal, so no
VM is needed: the run's private directory, the removal of the desired-state file, rotation,
a broken document failing the run, and cancel are checked for real.
"""

import json
import socket
import sys
import threading
import time

from goship_ctl.reconciler.runner import PlaybookRunner

SECRET = "pw-" + "x9" * 8


def document(node="u1", valid=True):
    nodes = {node: {"connection": "local", "vars": {"ansible_python_interpreter": sys.executable}}}
    if not valid:
        nodes["Not_A_Label"] = {"connection": "local"}
    return {"apiVersion": "goship/v1", "kind": "DesiredState", "nodes": nodes,
            "projects": {"alpha": {"generation": 1, "nodes": [], "vm": {"vcpus": 1, "memory_mib": 256},
                                   "apps": [{"name": "web", "image": "demo-web", "replicas": 1,
                                             "env": {"DB": {"value": SECRET, "secret": True}}}]}}}


SIGNAL_VARS = {"goship_signal_project": "alpha", "goship_signal_app": "web", "goship_signal": "TERM"}


def test_a_run_leaves_artifacts_but_no_desired_state(tmp_path):
    runner = PlaybookRunner(tmp_path / "work", keep_runs=1)
    seen = []
    first = runner.run(document(), "signal.yml", ["u1"], extravars=SIGNAL_VARS, timeout_s=120, on_event=seen.append)
    assert (first.status, first.rc) == ("successful", 0)
    assert first.hosts["u1"].result == "ok" and first.hosts["u1"].finished
    assert [e.task for e in seen if e.kind == "task"] == ["Require project and app", "Send the signal through guest_init"]
    assert [e.kind for e in seen if e.task == "Send the signal through guest_init"][-1] == "skipped"
    private = first.artifact_dir.parent.parent
    assert (private / "inventory" / "nodes.goship.yml").is_file()
    assert not (private / "state" / "desired-state.yml").exists()
    assert [path.name for path in (private / "env").iterdir()] == ["settings"], "no extravars or envvars under env/"
    assert {"command", "job_events", "rc", "status", "stdout"} <= {path.name for path in first.artifact_dir.iterdir()}
    assert set(json.loads((first.artifact_dir / "command").read_text())) == {"command", "cwd"}
    assert (tmp_path / "work" / "runs").stat().st_mode & 0o777 == 0o700
    files = [path for path in private.rglob("*") if path.is_file()]
    assert not [path for path in files if SECRET in path.read_text(errors="replace")]

    second = runner.run(document(), "signal.yml", ["u1"], extravars=SIGNAL_VARS, timeout_s=120)
    assert second.status == "successful"
    assert [path.name for path in (tmp_path / "work" / "runs").iterdir()] == [second.ident], "keep_runs=1"


def test_a_document_the_inventory_refuses_fails_the_run(tmp_path):
    result = PlaybookRunner(tmp_path / "work").run(document(valid=False), "signal.yml", ["u1"],
                                                   extravars=SIGNAL_VARS, timeout_s=120)
    assert result.status == "failed"
    assert result.hosts["u1"].result == "failed"
    assert "invalid desired state: nodes.Not_A_Label: node name must be a DNS label" in result.hosts["u1"].message


def test_cancel_stops_the_run(tmp_path):
    """The node is an ssh host on a loopback port that accepts connections and never answers."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)
        doc = document()
        doc["nodes"]["u1"] = {"connection": "ssh", "host": "127.0.0.1", "port": silent.getsockname()[1], "user": "root"}
        doc["projects"]["alpha"]["nodes"] = ["u1"]
        cancel = threading.Event()
        seen = []

        def cancel_once_running(event):
            seen.append(event)
            if event.task == "Send the signal through guest_init":
                cancel.set()

        started = time.monotonic()
        result = PlaybookRunner(tmp_path / "work").run(doc, "signal.yml", ["u1"], extravars=SIGNAL_VARS,
                                                       timeout_s=120, cancel=cancel, on_event=cancel_once_running)
    assert result.status == "canceled" and time.monotonic() - started < 8
    assert (result.hosts["u1"].result, result.hosts["u1"].message) == ("cancelled", "the run was cancelled")
    assert [e.kind for e in seen] == ["task", "ok", "task"]
