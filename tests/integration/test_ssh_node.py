"""playbooks/reconcile.yml on a node reached over real SSH (issue 7).

The test starts its own sshd on a free 127.0.0.1 port (tests/integration/local_sshd.py: fresh
host key, a client key it authorizes, root by key only) and describes this machine as node
``sshn1`` with ``connection: ssh``. The same reconcile as for local nodes then boots the
project VM with app ``web`` at 2 replicas, a second run changes nothing, and an empty desired
state removes the VM. sshd's log proves that the runs went through it.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ansible_collections.goship.core.plugins.module_utils.guest_channel import GuestChannel
from ansible_play import ansible_env
from goship_ctl.oci.busybox import build_busybox_image
from local_sshd import LocalSshd

REPO = Path(__file__).resolve().parents[2]
NODE = "sshn1"
PROJECT = "beta"
DOMAIN = f"goship-{NODE}-{PROJECT}"
PLAYBOOK_TIMEOUT_S = 1200
CHANNEL_TIMEOUT_S = 30


def desired_state(tmp, sshd, with_project=True):
    node = {
        "connection": "ssh", "host": "127.0.0.1", "port": sshd.port, "user": "root",
        "state_root": str(tmp / NODE),
        "vars": {
            "node_manage_packages": False,
            "goship_image_dir": str(tmp / "image"),
            "goship_oci_images_dir": str(tmp / "oci"),
            "ansible_ssh_private_key_file": str(sshd.client_key),
            "ansible_ssh_common_args": "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null",
            # The node is this machine: the venv's python has libvirt-python and the rest.
            "ansible_python_interpreter": sys.executable,
        },
    }
    doc = {"apiVersion": "goship/v1", "kind": "DesiredState", "nodes": {NODE: node}, "projects": {}}
    if with_project:
        doc["projects"][PROJECT] = {
            "generation": 1, "nodes": [NODE], "vm": {"vcpus": 1, "memory_mib": 384},
            "apps": [{"name": "web", "image": "demo-web", "replicas": 2, "ports": [8080]}],
        }
    return doc


def reconcile(tmp, doc):
    """Run playbooks/reconcile.yml against ``doc``; return ansible's json report."""
    (tmp / "state.yml").write_text(yaml.safe_dump(doc))
    inventory = tmp / "nodes.goship.yml"
    inventory.write_text(yaml.safe_dump({"plugin": "goship.core.goship", "state_file": str(tmp / "state.yml")}))
    env = ansible_env({"ANSIBLE_INVENTORY_UNPARSED_FAILED": "true",
                       # ssh multiplexing sockets of this test only, not in ~/.ansible/cp
                       "ANSIBLE_SSH_CONTROL_PATH_DIR": str(tmp / "cp")})
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(inventory), str(REPO / "playbooks" / "reconcile.yml")],
        env=env, capture_output=True, text=True, timeout=PLAYBOOK_TIMEOUT_S, stdin=subprocess.DEVNULL, check=False)
    report = json.loads(proc.stdout) if proc.stdout.startswith("{") else None
    assert report, f"reconcile did not run (rc {proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    failures = [f"{task['task']['name']}: {result.get('msg')}" for play in report["plays"]
                for task in play["tasks"] for result in task["hosts"].values()
                if result.get("failed") or result.get("unreachable")]
    assert proc.returncode == 0, f"reconcile failed (rc {proc.returncode}):\n" + "\n".join(failures or [proc.stderr[-3000:]])
    return report


def replica_states(tmp):
    with GuestChannel(str(tmp / NODE / "vms" / DOMAIN / "init.sock"), timeout=CHANNEL_TIMEOUT_S) as guest:
        web = guest.request("status")["apps"]["web"]
    return {replica["index"]: replica["state"] for replica in web["replicas"]}


@pytest.fixture
def tmp(qemu_tmp, guest_image, libvirt_conn):
    (qemu_tmp / "image").symlink_to(guest_image[0])
    build_busybox_image(qemu_tmp / "oci" / "demo-web")
    yield qemu_tmp
    for dom in libvirt_conn.listAllDomains():
        if dom.name().startswith(f"goship-{NODE}-"):
            if dom.isActive():
                dom.destroy()
            dom.undefine()
    for pool in libvirt_conn.listAllStoragePools():
        if pool.name() == f"goship-{NODE}":  # the node role's pool; its directory goes with qemu_tmp
            if pool.isActive():
                pool.destroy()
            pool.undefine()


@pytest.fixture
def sshd(tmp):
    with LocalSshd(tmp / "sshd") as server:
        yield server


def test_reconcile_over_ssh(tmp, sshd, libvirt_conn):
    report = reconcile(tmp, desired_state(tmp, sshd))
    assert report["stats"][NODE]["failures"] == 0 and report["stats"][NODE]["unreachable"] == 0
    assert sshd.accepted_logins() >= 1, f"ansible did not log in through the test's sshd:\n{sshd.log_tail()}"
    assert libvirt_conn.lookupByName(DOMAIN).isActive()
    states = replica_states(tmp)
    assert sorted(states) == [0, 1] and set(states.values()) <= {"running", "ready"}, states

    again = reconcile(tmp, desired_state(tmp, sshd))["stats"][NODE]
    assert again["changed"] == 0 and again["failures"] == 0, again

    reconcile(tmp, desired_state(tmp, sshd, with_project=False))
    assert DOMAIN not in [dom.name() for dom in libvirt_conn.listAllDomains()]
    assert not (tmp / NODE / "vms" / DOMAIN).exists()
