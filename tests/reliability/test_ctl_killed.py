"""The control service is SIGKILLed in the middle of applies: after a restart on the same store
every project is either fully there, exactly as sent, or absent; the SQLite file passes its
integrity check; and the service goes on accepting writes.

Killed in the middle of a reconcile (`serve --reconcile`, a simulated local node booting one VM):
the run's ansible-playbook outlives the service; the restarted service kills it, records the run
as interrupted, reconciles the node again, and the node converges with one domain and one QEMU.
"""

import sqlite3
import threading
import time

import httpx
import pytest

from ctl_helpers import node, project
from ctl_server import CtlServer
from reconcile_world import (events, leftover_ansible, node_vars, one_vm_project, qemu_processes, run_rows,
                             simulated_nodes, wait_for)

PROJECTS = 24
APPS_PER_PROJECT = 12


def document(index):
    apps = [{"name": "app%d" % app, "image": "img-%d-%d" % (index, app), "replicas": app % 4,
             "env": {"K%d" % key: "v%d" % key for key in range(20)}} for app in range(APPS_PER_PROJECT)]
    return project("p%d" % index, placement={"nodes": 1}, vcpus=1, memory_mib=64, apps=apps)


def send_all(server, results):
    def send(index):
        try:
            results[index] = server.request("POST", "/api/v1/projects", json=document(index)).status_code
        except httpx.HTTPError as exc:
            results[index] = type(exc).__name__
    threads = [threading.Thread(target=send, args=(index,)) for index in range(PROJECTS)]
    for thread in threads:
        thread.start()
    return threads


@pytest.mark.parametrize("kill_after_s", [0.4, 0.7, 1.0])
def test_killed_mid_apply_leaves_each_project_whole_or_absent(tmp_path, kill_after_s):
    server = CtlServer(tmp_path).start()
    try:
        assert server.request("POST", "/api/v1/nodes", json=node("node1", vcpus=64, memory_mib=65536)).status_code == 201
        results = {}
        threads = send_all(server, results)
        time.sleep(kill_after_s)
        server.proc.kill()
        server.proc.wait(10)
        for thread in threads:
            thread.join(60)
    finally:
        server.stop()
    with sqlite3.connect(server.data_dir / "goship.db") as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []

    restarted = CtlServer(tmp_path)
    restarted.port, restarted.url = server.port, server.url
    restarted.start()
    try:
        present = 0
        for index in range(PROJECTS):
            response = restarted.request("GET", "/api/v1/projects/p%d" % index)
            if results.get(index) in (200, 201):
                assert response.status_code == 200, "p%d was acknowledged, then lost" % index
            if response.status_code == 404:
                continue
            present += 1
            stored = response.json()["spec"]["apps"]
            sent = [dict(app, ports=[]) for app in document(index)["spec"]["apps"]]
            assert stored == sent, "p%d is only partly there" % index
        events = restarted.request("GET", "/api/v1/events?limit=1000").json()
        assert sum(e["kind"] == "project.created" for e in events) == present, events
        assert restarted.request("POST", "/api/v1/projects", json=document(99)).status_code == 201
    finally:
        restarted.stop()
    acknowledged = sum(status in (200, 201) for status in results.values())
    print("killed after %.1f s: %d of %d projects acknowledged, %d stored" % (kill_after_s, acknowledged, PROJECTS, present))


NODE, PROJECT = "killn1", "kappa"
DOMAIN = "goship-%s-%s" % (NODE, PROJECT)
SERVE_RECONCILE = ("--reconcile", "--reconcile-period", "5")


@pytest.fixture
def reconcile_tmp(qemu_tmp, libvirt_conn):
    with simulated_nodes(qemu_tmp, libvirt_conn, [NODE]) as tmp:
        yield tmp


def test_killed_mid_reconcile_the_run_is_interrupted_and_resumed(reconcile_tmp, guest_image_dir, libvirt_conn):
    """SIGKILL while reconcile.yml boots the project's VM; a restart on the same store finishes the run."""
    tmp = reconcile_tmp
    server = CtlServer(tmp, SERVE_RECONCILE).start()
    started = time.monotonic()
    try:
        assert server.request("POST", "/api/v1/nodes", json=node(
            NODE, vcpus=1, memory_mib=512, state_root=str(tmp / NODE), vars=node_vars(tmp, guest_image_dir))).status_code == 201
        assert server.request("POST", "/api/v1/projects", json=one_vm_project(PROJECT)).status_code == 201
        wait_for("the domain to be defined", lambda: DOMAIN in [dom.name() for dom in libvirt_conn.listAllDomains()])
        server.proc.kill()
        server.proc.wait(10)
        killed_at = time.monotonic()
    finally:
        server.stop()
    (tmp / "serve.log").rename(tmp / "serve-killed.log")
    [killed_run] = [row for row in run_rows(server.data_dir) if row["state"] == "running"]
    assert killed_run["node"] == NODE and killed_run["playbook"] == "reconcile.yml"
    assert killed_run["pid"] == server.proc.pid
    # ansible-runner's pexpect child ignores SIGHUP: the dead service's playbook goes on by itself.
    assert leftover_ansible(server.data_dir, killed_run["ident"]), "the killed run's ansible-playbook outlived the service"
    state_file = server.data_dir / "reconcile" / "runs" / killed_run["ident"] / "state" / "desired-state.yml"
    assert state_file.exists(), "the killed run left its desired-state file (secrets) behind"

    restarted = CtlServer(tmp, SERVE_RECONCILE).start()
    restarted_at = time.monotonic()
    try:
        interrupted = wait_for("the run to be marked interrupted", lambda: [
            event for event in events(restarted, NODE) if event["kind"] == "reconcile.interrupted"], timeout_s=60)
        assert not leftover_ansible(server.data_dir, killed_run["ident"])
        assert interrupted[0]["data"]["run"] == killed_run["ident"] and interrupted[0]["data"]["killed"] >= 1
        assert "control service process %d ended before the run did" % killed_run["pid"] in interrupted[0]["message"]

        def converged():
            vms = restarted.request("GET", "/api/v1/projects/%s/vms" % PROJECT).json()
            return [vm for vm in vms if vm.get("state") == "running" and vm.get("observedGeneration") == 1]
        wait_for("the project's VM to be reported running at generation 1", converged)
        print("killed %.0f s into the first run; restarted %.0f s later; VM running %.0f s after the restart"
              % (killed_at - started, restarted_at - killed_at, time.monotonic() - restarted_at))
        kinds = [(event["kind"], event["data"]) for event in events(restarted, NODE)]
        resumed = [data for kind, data in kinds if kind == "reconcile.started" and data["run"] != killed_run["ident"]]
        assert "run %s was interrupted" % killed_run["ident"] in resumed[0]["reasons"], resumed
        assert "reconcile.ok" in [kind for kind, _data in kinds], kinds
        rows = {row["ident"]: row for row in run_rows(server.data_dir)}
        assert rows[killed_run["ident"]]["state"] == "interrupted" and rows[killed_run["ident"]]["finished_at"]
        assert not [row for row in rows.values() if row["state"] == "running" and row["pid"] != restarted.proc.pid]
        assert [dom.name() for dom in libvirt_conn.listAllDomains() if dom.name().startswith("goship-%s-" % NODE)] == [DOMAIN]
        assert len(qemu_processes(DOMAIN)) == 1
        assert not state_file.exists()
    finally:
        restarted.stop()
