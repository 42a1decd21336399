"""The control service is SIGKILLed in the middle of applies: after a restart on the same store
every project is either fully there, exactly as sent, or absent; the SQLite file passes its
integrity check; and the service goes on accepting writes. (Killed mid-reconcile: not yet, the
reconciler is being written.)"""

import sqlite3
import threading
import time

import httpx
import pytest

from ctl_helpers import node, project
from ctl_server import CtlServer

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
