"""playbooks/reconcile.yml end to end: 2 simulated nodes, real VMs, real crun containers.

One project on both nodes with app `web` at 2 replicas gives 2 VMs and 4 containers; a second
run changes nothing; 3 replicas give 6 without restarting a VM or touching the running
replicas; removing the project removes both VMs and their state; a domain GoShip did not
make stays untouched throughout.
"""

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import yaml

from ansible_play import ansible_env
from vm_harness import remove_goship_pools
from goship_ctl.oci.busybox import build_busybox_image

REPO = Path(__file__).resolve().parents[2]
NODES = ("rcn1", "rcn2")
PROJECT = "alpha"
FOREIGN = "goship-rcn1-notours"


def desired_state(tmp, replicas, generation, projects=True):
    nodes = {}
    for node in NODES:
        nodes[node] = {
            "connection": "local",
            "state_root": str(tmp / node),
            "vars": {"node_manage_packages": False, "goship_image_dir": str(tmp / "image"),
                     "goship_oci_images_dir": str(tmp / "oci"), "ansible_python_interpreter": sys.executable},
        }
    doc = {"apiVersion": "goship/v1", "kind": "DesiredState", "nodes": nodes, "projects": {}}
    if projects:
        doc["projects"][PROJECT] = {
            "generation": generation, "nodes": list(NODES), "vm": {"vcpus": 1, "memory_mib": 384},
            "apps": [{"name": "web", "image": "demo-web", "replicas": replicas, "ports": [8080],
                      "health": {"readiness": {"http": {"path": "/healthz"}, "interval_s": 1}}}],
        }
    return doc


def reconcile(tmp, doc, playbook="reconcile.yml", extra=()):
    """Run a playbook against the desired state ``doc``; return its json report."""
    (tmp / "state.yml").write_text(yaml.safe_dump(doc))
    inventory = tmp / "nodes.goship.yml"
    inventory.write_text(yaml.safe_dump({"plugin": "goship.core.goship", "state_file": str(tmp / "state.yml")}))
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(inventory), str(REPO / "playbooks" / playbook), *extra],
        env=ansible_env({"ANSIBLE_INVENTORY_UNPARSED_FAILED": "true", "ANSIBLE_FORKS": "2"}),
        capture_output=True, text=True, timeout=1800, stdin=subprocess.DEVNULL, check=False)
    report = json.loads(proc.stdout) if proc.stdout.startswith("{") else None
    assert report, f"reconcile did not run (rc {proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    failures = [f"{host}: {task['task']['name']}: {item.get('msg')}"
                for play in report["plays"] for task in play["tasks"]
                for host, result in task["hosts"].items() if result.get("failed")
                for item in ([r for r in result["results"] if r.get("failed")] if "results" in result else [result])]
    assert proc.returncode == 0, f"reconcile failed (rc {proc.returncode}):\n" + "\n".join(failures or [proc.stderr[-3000:]])
    return report


def guest_replicas(tmp, node):
    """{index: (state, pid)} of app web in the node's VM, and the guest's boot id."""
    from ansible_collections.goship.core.plugins.module_utils.guest_channel import GuestChannel
    sock = tmp / node / "vms" / f"goship-{node}-{PROJECT}" / "init.sock"
    with GuestChannel(str(sock), timeout=30) as guest:
        status = guest.request("status")
        boot = guest.request("hello", {"protocol_version": 1})["boot_id"]
    web = status["apps"]["web"]
    return {r["index"]: (r["state"], r["pid"]) for r in web["replicas"]}, boot


@pytest.fixture
def tmp(qemu_tmp, guest_image, libvirt_conn):
    tmp_path = qemu_tmp
    image_dir, _manifest = guest_image
    (tmp_path / "image").symlink_to(image_dir)
    build_busybox_image(tmp_path / "oci" / "demo-web")
    libvirt_conn.defineXML(f"<domain type='qemu'><name>{FOREIGN}</name><uuid>{uuid.uuid4()}</uuid>"
                           "<memory unit='MiB'>64</memory><os><type arch='x86_64'>hvm</type></os></domain>")
    yield tmp_path
    for dom in libvirt_conn.listAllDomains():
        if dom.name().startswith(("goship-rcn1-", "goship-rcn2-")):
            if dom.isActive():
                dom.destroy()
            dom.undefine()
    remove_goship_pools(libvirt_conn, NODES)


def test_reconcile_two_nodes(tmp, libvirt_conn):
    stats = reconcile(tmp, desired_state(tmp, replicas=2, generation=1))["stats"]
    assert all(stats[node]["failures"] == 0 for node in NODES)
    before = {}
    for node in NODES:
        replicas, boot = guest_replicas(tmp, node)
        assert sorted(replicas) == [0, 1] and all(state in ("running", "ready") for state, pid in replicas.values()), replicas
        before[node] = (replicas, boot)

    again = reconcile(tmp, desired_state(tmp, replicas=2, generation=1))["stats"]
    assert {node: again[node]["changed"] for node in NODES} == {node: 0 for node in NODES}, again

    reconcile(tmp, desired_state(tmp, replicas=3, generation=2))
    for node in NODES:
        replicas, boot = guest_replicas(tmp, node)
        assert boot == before[node][1], f"{node}: the VM restarted"
        assert sorted(replicas) == [0, 1, 2], replicas
        assert all(replicas[i][1] == before[node][0][i][1] for i in (0, 1)), f"{node}: running replicas were replaced"

    status = reconcile(tmp, desired_state(tmp, replicas=3, generation=2), playbook="status.yml")
    shown = [item["msg"] for task in status["plays"][0]["tasks"] for result in task["hosts"].values()
             for item in result.get("results", []) if "msg" in item]
    assert len(shown) == 2 and all("web=[" in line and line.count("running") + line.count("ready") == 3 for line in shown), shown

    reconcile(tmp, desired_state(tmp, replicas=3, generation=2), playbook="signal.yml",
              extra=("--limit", NODES[0], "-e", "goship_signal_project=alpha", "-e", "goship_signal_app=web",
                     "-e", "goship_signal_replica=1", "-e", "goship_signal=KILL"))
    deadline = time.monotonic() + 120
    while True:
        replicas, boot = guest_replicas(tmp, NODES[0])
        if replicas[1][1] != before[NODES[0]][0][1][1] and replicas[1][0] in ("running", "ready"):
            break
        assert time.monotonic() < deadline, f"replica 1 did not come back after KILL: {replicas}"
        time.sleep(1)
    assert guest_replicas(tmp, NODES[1])[0][1] == before[NODES[1]][0][1], "the other node's replica was signalled"

    reconcile(tmp, desired_state(tmp, replicas=3, generation=3, projects=False))
    names = [dom.name() for dom in libvirt_conn.listAllDomains()]
    assert not [name for name in names if name.endswith(f"-{PROJECT}") and name.startswith("goship-rcn")], names
    assert not any(os.path.exists(tmp / node / "vms" / f"goship-{node}-{PROJECT}") for node in NODES)
    foreign = libvirt_conn.lookupByName(FOREIGN)
    assert foreign.maxMemory() == 65536 and not foreign.isActive()
