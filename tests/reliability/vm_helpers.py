"""Project VMs for the reliability tier, made the way a node makes them: goship.core modules run
by ansible-playbook (tests/integration/ansible_play.py)."""

import os
import shutil
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from ansible_collections.goship.core.plugins.module_utils import guest_channel as gc

from ansible_play import run_tasks

BOOT_TIMEOUT_S = 300  # a TCG boot takes 10-30 s; more when other VMs share the two cores
BUSYBOX = "/bin/busybox"


def vm_args(state_root, image_dir, project, node, **extra):
    return dict({"project": project, "node": node, "state_root": str(state_root), "image_dir": str(image_dir),
                 "virt_type": "qemu", "memory_mib": 256}, **extra)


def project_vm_task(args, state="running"):
    task = dict(args, state=state)
    if state == "running":
        task.update(wait_for_guest=True, guest_timeout=BOOT_TIMEOUT_S)
    return {"goship.core.project_vm": task}


def ensure_running(args):
    """Run project_vm state=running (waits for guest_init's hello); return the module result."""
    (result,) = run_tasks([project_vm_task(args)], timeout=BOOT_TIMEOUT_S + 120)
    assert not result.get("failed") and result["state"] == "running", result
    return result


def remove(args):
    (result,) = run_tasks([project_vm_task(args, "absent")], timeout=300)
    assert not result.get("failed"), result


def channel_path(args):
    return os.path.join(args["state_root"], "vms", "goship-%s-%s" % (args["node"], args["project"]), "init.sock")


def guest(args, timeout=30.0):
    return gc.GuestChannel(channel_path(args), timeout=timeout)


def sh_app(name, script, **fields):
    """A `process` runtime app running busybox sh in the guest's own root."""
    return dict({"name": name, "runtime": "process", "image": "/", "command": [BUSYBOX, "sh", "-c", script]}, **fields)


def wait_status(channel, condition, timeout, what):
    """Poll status until condition(status) holds; return that status (bounded)."""
    deadline = time.monotonic() + timeout
    status = None
    while True:
        status = channel.request("status")
        if condition(status):
            return status
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %.0f s waiting for %s; last status: %s" % (timeout, what, status))
        time.sleep(0.5)


def replica(status, app, index=0):
    return next(r for r in status["apps"][app]["replicas"] if r["index"] == index)


@contextmanager
def qemu_dir(prefix):
    """A scratch directory QEMU (libvirt's unprivileged user) can reach by path."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    path.chmod(0o711)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
