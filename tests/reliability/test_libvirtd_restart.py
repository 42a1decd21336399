"""libvirtd is killed in the middle of a project_vm run and started again. The run fails cleanly
(a failed task with a message, not a module crash) or completes; the next run converges; there
is never more than one domain or one QEMU process for the VM.

The daemon is the test's own (private_libvirt.py): killing the system libvirtd would break every
other VM on the machine. It is started again within the test, so it is always left running
until the test removes it.
"""

import subprocess
import threading
import time

import pytest

from ansible_play import run_tasks
from private_libvirt import PrivateLibvirt
from vm_helpers import guest, project_vm_task, qemu_dir, vm_args

NODE = "relvirtd"


def qemu_processes(domain):
    out = subprocess.run(["pgrep", "-f", "-a", "guest=%s," % domain], capture_output=True, text=True, check=False).stdout
    return [line for line in out.splitlines() if "qemu-system" in line]


def module_running():
    return subprocess.run(["pgrep", "-f", "AnsiballZ_project_vm.py"], capture_output=True, check=False).returncode == 0


@pytest.fixture
def private_libvirt():
    with qemu_dir("goship-rel-virtd-") as root:
        daemon = PrivateLibvirt(root / "libvirt").start()
        try:
            yield daemon, root
        finally:
            daemon.stop()


def wait_for(condition, timeout, what):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting for %s" % what
        time.sleep(0.05)


@pytest.mark.parametrize("moment", ["module_started", "domain_running"])
def test_libvirtd_killed_during_a_project_vm_run(private_libvirt, guest_image_dir, moment):
    daemon, root = private_libvirt
    project = moment.replace("_", "-")
    domain = "goship-%s-%s" % (NODE, project)
    args = vm_args(root / "state", guest_image_dir, project, NODE, uri=daemon.uri)
    (root / "state").mkdir(mode=0o711)
    outcome = {}
    run = threading.Thread(target=lambda: outcome.update(first=run_tasks([project_vm_task(args)], timeout=900)[0]))
    run.start()
    try:
        if moment == "module_started":
            wait_for(module_running, 120, "the project_vm module to start")
        else:
            wait_for(lambda: domain in daemon.virsh("list", "--name").stdout.split(), 300, "the domain to run")
        daemon.kill_libvirtd()
        time.sleep(2.0)
    finally:
        if daemon.libvirtd.poll() is not None:
            daemon.start_libvirtd()
    run.join(900)
    first = outcome["first"]
    assert "MODULE FAILURE" not in first.get("msg", "") and "Traceback" not in str(first.get("module_stderr", "")), first
    if first.get("failed"):
        assert first["msg"], first  # a clean failure says what went wrong
        print("first run failed cleanly:", first["msg"])
    else:
        assert first["state"] == "running", first

    second = run_tasks([project_vm_task(args)], timeout=900)[0]
    assert not second.get("failed") and second["state"] == "running", second
    third = run_tasks([project_vm_task(args)], timeout=900)[0]
    assert not third.get("failed") and third["changed"] is False, third  # converged
    assert daemon.domains() == [domain]
    assert len(qemu_processes(domain)) == 1, qemu_processes(domain)
    with guest(args) as channel:
        assert channel.request("ping") == {}
