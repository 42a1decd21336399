"""The control service's reconciler end to end: real ansible-runner, real playbooks, real VMs.

Two simulated nodes: `ctl1` (connection local, converges) and `ctlbad` (ssh to a closed port on
127.0.0.1). One project on both, applied through `goship-ctl apply --wait` on the embedded
store: ctl1 boots its VM and runs 2 containers, ctlbad is marked unreachable and the project
falls back to ctl1. The same VM then serves `status`, `signal` and `logs`; the secret env value
of the app never appears in the run artifacts; deleting the project removes the VM.
"""

import json
import secrets
import socket
import sys
import time

import pytest
import yaml

from goship_ctl.cli import main
from vm_harness import remove_goship_pools
from goship_ctl.errors import EXIT_OK, EXIT_UNSCHEDULABLE
from goship_ctl.oci.busybox import build_busybox_image
from goship_ctl.service.control import ControlService
from goship_ctl.auth.principal import LOCAL_ADMIN
from goship_ctl.store.location import database_url

GOOD, BAD, PROJECT = "ctl1", "ctlbad", "beta"
DOMAIN = f"goship-{GOOD}-{PROJECT}"
CLIENT_ENV = ("GOSHIP_URL", "GOSHIP_TOKEN", "GOSHIP_DATABASE_URL")


def closed_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def world(qemu_tmp, guest_image_dir, libvirt_conn, monkeypatch):
    for name in CLIENT_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GOSHIP_DATA_DIR", str(qemu_tmp / "ctl"))
    build_busybox_image(qemu_tmp / "oci" / "demo-web")
    yield qemu_tmp
    for dom in libvirt_conn.listAllDomains():
        if dom.name().startswith((f"goship-{GOOD}-", f"goship-{BAD}-")):
            if dom.isActive():
                dom.destroy()
            dom.undefine()
    remove_goship_pools(libvirt_conn, (GOOD, BAD))


def ctl(capsys, *argv):
    code = main([str(arg) for arg in argv])
    out, err = capsys.readouterr()
    return code, out, err


def store(tmp):
    return ControlService.open(database_url(None, tmp / "ctl"))


def test_reconcile_through_the_service(world, guest_image_dir, libvirt_conn, capsys):
    tmp = world
    secret = "s3cret-" + secrets.token_hex(8)
    node_vars = ["--var", "node_manage_packages=false", "--var", f"goship_image_dir={guest_image_dir}",
                 "--var", f"goship_oci_images_dir={tmp / 'oci'}",
                 "--var", f"ansible_python_interpreter={sys.executable}"]
    assert ctl(capsys, "node", "add", GOOD, "--state-root", tmp / GOOD, "--vcpus", 1, "--memory-mib", 512,
               *node_vars)[0] == EXIT_OK
    assert ctl(capsys, "node", "add", BAD, "--connection", "ssh", "--host", "127.0.0.1", "--port", closed_port(),
               "--user", "root", "--vcpus", 1, "--memory-mib", 512)[0] == EXIT_OK
    project = {"apiVersion": "goship/v1", "kind": "Project", "metadata": {"name": PROJECT},
               "spec": {"placement": {"nodes": 2}, "vm": {"vcpus": 1, "memory_mib": 384},
                        "apps": [{"name": "web", "image": "demo-web", "replicas": 2, "ports": [8080],
                                  "env": {"GREETING": "hello", "DB_PASSWORD": {"value": secret, "secret": True}}}]}}
    (tmp / "beta.yaml").write_text(yaml.safe_dump(project))

    started = time.monotonic()
    code, out, _err = ctl(capsys, "apply", "-f", tmp / "beta.yaml", "--wait", "--timeout", 900)
    # Placed on both nodes first; ctlbad is unreachable, so the project is left with ctl1 only.
    assert code == EXIT_UNSCHEDULABLE, out
    assert f"{BAD}: unreachable:" in out and f"node {BAD}: unreachable" in out
    assert "converged: project beta generation 1: 1/1 VMs ready, 2/2 replicas up" in out
    assert time.monotonic() - started < 900

    service = store(tmp)
    try:
        nodes = {node["name"]: node for node in service.list_nodes(LOCAL_ADMIN)}
        assert nodes[BAD]["status"] == "unreachable" and "Connection refused" in nodes[BAD]["statusMessage"]
        assert nodes[GOOD]["status"] == "ready" and nodes[GOOD]["lastSeenAt"]
        view = service.get_project(LOCAL_ADMIN, PROJECT)
        assert view["status"]["nodes"] == [GOOD]
        assert [(vm["node"], vm["state"], vm["observedGeneration"]) for vm in view["status"]["vms"]] == [(GOOD, "running", 1)]
        replicas = view["status"]["apps"][0]["instances"]
        assert sorted((r["node"], r["replica"]) for r in replicas) == [(GOOD, 0), (GOOD, 1)]
        assert all(r["state"] in ("running", "ready") for r in replicas)
        kinds = {(event["node"], event["kind"]) for event in service.events(LOCAL_ADMIN, limit=1000)}
        assert {(GOOD, "reconcile.ok"), (BAD, "reconcile.unreachable"), (GOOD, "reconcile.changed"),
                (BAD, "node.unreachable")} <= kinds
    finally:
        service.close()
    assert libvirt_conn.lookupByName(DOMAIN).isActive()

    code, out, _err = ctl(capsys, "status")
    rows = [line.split() for line in out.splitlines()[1:]]
    assert code == EXIT_OK and len(rows) == 2, out
    assert [row[:5] + row[6:] for row in rows] == [[GOOD, DOMAIN, "running", "web", str(i), "0"] for i in (0, 1)]
    assert all(row[5] in ("running", "ready") for row in rows)

    code, out, _err = ctl(capsys, "signal", PROJECT, "web", "--replica", 1, "--signal", "KILL")
    assert code == EXIT_OK and f"{GOOD}: SIGKILL sent to replica 1 (pid " in out
    deadline = time.monotonic() + 120
    while True:
        code, out, _err = ctl(capsys, "logs", PROJECT, "web", "--replica", 1, "-o", "json")
        lines = json.loads(out)
        if any("killed by SIGKILL" in line["text"] for line in lines) and lines[-1]["text"].startswith("serving"):
            break
        assert time.monotonic() < deadline, lines
        time.sleep(2)
    assert all(line["node"] == GOOD and line["replica"] == 1 for line in lines)

    runs = tmp / "ctl" / "reconcile" / "runs"
    artifacts = [path for path in runs.rglob("*") if path.is_file()]
    assert any(path.parent.name == "job_events" for path in artifacts)
    assert not [path for path in artifacts if path.name == "desired-state.yml"], "the desired-state file outlived its run"
    leaked = [path for path in artifacts if secret in path.read_text(errors="replace")]
    assert not leaked, f"the secret env value is in {leaked}"
    for command in runs.rglob("command"):
        assert set(json.loads(command.read_text())) == {"command", "cwd"}, "the environment was saved"
    assert (runs.stat().st_mode & 0o777) == 0o700

    assert ctl(capsys, "delete", "project", PROJECT)[0] == EXIT_OK
    code, out, _err = ctl(capsys, "reconcile", "--node", GOOD)
    assert code == EXIT_OK and out.split("\n")[1].split()[:2] == [GOOD, "ok"], out
    assert DOMAIN not in [dom.name() for dom in libvirt_conn.listAllDomains()]
    service = store(tmp)
    try:
        assert service.list_vms(LOCAL_ADMIN) == []
    finally:
        service.close()
