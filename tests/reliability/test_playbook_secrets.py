"""Secrets never reach what a reconcile run prints: playbooks/reconcile.yml in check mode with
--diff, from a desired state whose app carries a secret env value, its whole JSON output (what
ansible-runner stores as job events and AWX shows) grepped for the value. No VM is made (check
mode), so the guest_apps step fails to reach one; its failure is printed too and must not leak.
"""

import json
import subprocess
import sys
from pathlib import Path

import yaml

from ansible_play import ansible_env

REPO = Path(__file__).resolve().parents[2]
SECRET = "reconcile-secret-never-printed"


def test_reconcile_output_carries_no_secret(qemu_tmp, guest_image_dir):
    state = {"apiVersion": "goship/v1", "kind": "DesiredState",
             "nodes": {"relsec": {"connection": "local", "state_root": str(qemu_tmp / "node"),
                                  "vars": {"node_manage_packages": False, "node_start_libvirt": False,
                                           "goship_image_dir": str(guest_image_dir),
                                           "ansible_python_interpreter": sys.executable}}},
             "projects": {"vault": {"generation": 1, "nodes": ["relsec"], "vm": {"vcpus": 1, "memory_mib": 256},
                                    "apps": [{"name": "web", "image": "/", "runtime": "process", "replicas": 1,
                                              "command": ["/bin/busybox", "sleep", "60"],
                                              "env": {"PLAIN": "shown", "TOKEN": {"value": SECRET, "secret": True}}}]}}}
    (qemu_tmp / "state.yml").write_text(yaml.safe_dump(state))
    inventory = qemu_tmp / "nodes.goship.yml"
    inventory.write_text(yaml.safe_dump({"plugin": "goship.core.goship", "state_file": str(qemu_tmp / "state.yml")}))
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(inventory), str(REPO / "playbooks" / "reconcile.yml"),
         "--check", "--diff"],
        env=ansible_env({"ANSIBLE_INVENTORY_UNPARSED_FAILED": "true"}), capture_output=True, text=True, timeout=600,
        stdin=subprocess.DEVNULL, check=False)
    report = json.loads(proc.stdout)
    tasks = [task["task"]["name"].split(" : ", 1)[-1] for task in report["plays"][0]["tasks"]]
    assert "Push each VM's app set to guest_init and wait for it" in tasks, (tasks, proc.stderr[-2000:])
    assert "Write the VM's NoCloud seed with guest_init's initial app set" in tasks, tasks
    assert SECRET not in proc.stdout and SECRET not in proc.stderr
    assert "shown" in proc.stdout  # the app set is in the output, only the secret is not
