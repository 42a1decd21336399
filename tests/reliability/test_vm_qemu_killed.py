"""The QEMU process of a project VM is SIGKILLed. The VM is made as the project_vm role makes it
(a NoCloud seed with guest_init's initial app set, goship.core.cloud_init_seed), plus an ext4
state disk (serial goship-state) where guest_init persists the last applied spec. Running the
same project_vm state=running task again restarts the VM, and guest_init brings the apps back by
itself from the persisted spec: the host pushes nothing after the kill.

Along the way, the secret in the app set is grepped for in every artifact the run leaves:
the modules' results and --diff output, the guest's console log, `status` and `logs`.
"""

import json
import os
import signal
import subprocess
import time

import pytest

from ansible_play import run_tasks
from vm_helpers import BUSYBOX, ensure_running, guest, qemu_dir, remove, replica, sh_app, vm_args, wait_status

NODE = "relkill"
PROJECT = "phoenix"
DOMAIN = "goship-%s-%s" % (NODE, PROJECT)
SECRET = "phoenix-secret-%d" % os.getpid()
SEEDED = [sh_app("seeded", "echo token=$TOKEN; exec %s sleep 3600" % BUSYBOX,
                 env={"TOKEN": {"value": SECRET, "secret": True}})]
PUSHED = SEEDED + [{"name": "pushed", "runtime": "process", "image": "/", "command": [BUSYBOX, "sleep", "3600"]}]


def seed_task(vm_dir):
    return {"goship.core.cloud_init_seed": {"path": str(vm_dir / "seed.iso"), "instance_id": DOMAIN,
                                            "hostname": "%s-%s" % (PROJECT, NODE),
                                            "goship": {"project": PROJECT, "node": NODE, "generation": 1, "apps": SEEDED}}}


def state_disk(vm_dir):
    path = vm_dir / "state.img"
    with open(path, "wb") as disk:
        disk.truncate(64 * 1024 * 1024)
    os.chmod(path, 0o600)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-L", "goship-state", str(path)], check=True, capture_output=True, timeout=60)
    return path


def apps_running(*names):
    return lambda status: all(name in status["apps"] and replica(status, name)["state"] in ("ready", "running")
                              for name in names)


def qemu_pid():
    with open("/run/libvirt/qemu/%s.pid" % DOMAIN, encoding="ascii") as handle:
        return int(handle.read().strip())


@pytest.fixture
def vm(guest_image_dir):
    with qemu_dir("goship-rel-kill-") as state_root:
        vm_dir = state_root / "vms" / DOMAIN
        vm_dir.mkdir(parents=True)
        for directory in (state_root / "vms", vm_dir):
            directory.chmod(0o711)
        args = vm_args(state_root, guest_image_dir, PROJECT, NODE, disks=[
            {"source": str(vm_dir / "seed.iso"), "serial": "goship-seed"},
            {"source": str(state_disk(vm_dir)), "serial": "goship-state", "readonly": False}])
        (seeded,) = run_tasks([seed_task(vm_dir)], diff=True)
        assert seeded["changed"] and not seeded.get("failed"), seeded
        try:
            yield args, [seeded]
        finally:
            remove(args)


def test_qemu_killed_vm_restarts_and_guest_init_restores_the_apps(vm, libvirt_conn):
    args, artifacts = vm
    artifacts.append(ensure_running(args))
    with guest(args) as channel:  # the seed's app set, started by guest_init before the host connected
        status = wait_status(channel, apps_running("seeded"), 120, "the seeded app")
        assert status["generation"] == 1
        before_boot = channel.hello()["boot_id"]
    (pushed,) = run_tasks([{"goship.core.guest_apps": {"project": PROJECT, "node": NODE, "state_root": args["state_root"],
                                                       "generation": 2, "apps": PUSHED, "timeout": 120}}], diff=True)
    assert pushed["changed"] and not pushed.get("failed"), pushed
    artifacts.append(pushed)
    with guest(args) as channel:
        status = wait_status(channel, apps_running("seeded", "pushed"), 120, "both apps")
        assert status["generation"] == 2

    pid = qemu_pid()
    os.kill(pid, signal.SIGKILL)
    dom = libvirt_conn.lookupByName(DOMAIN)
    deadline = time.monotonic() + 60
    while dom.isActive():
        assert time.monotonic() < deadline, "libvirt still shows the domain running after its QEMU was killed"
        time.sleep(0.2)

    restarted = ensure_running(args)  # the same task, run again
    artifacts.append(restarted)
    assert restarted["changed"] is True and qemu_pid() != pid
    with guest(args) as channel:  # nothing is pushed from here on: guest_init restores the spec itself
        assert channel.hello()["boot_id"] != before_boot, "the VM did not reboot"
        status = wait_status(channel, apps_running("seeded", "pushed"), 180, "the apps after the restart")
        assert status["generation"] == 2, "guest_init restored the seed, not the persisted spec: %s" % status
        logs = channel.request("logs", {"app": "seeded", "tail": 100})["lines"]
        artifacts.append(status)
        artifacts.append(logs)
    assert any(line["text"] == "token=********" for line in logs), logs  # the app echoed it: masked in logs
    assert [d.name() for d in libvirt_conn.listAllDomains() if d.name() == DOMAIN] == [DOMAIN]

    console = (os.path.join(args["state_root"], "vms", DOMAIN, "console.log"))
    with open(console, encoding="utf-8", errors="replace") as handle:
        console_text = handle.read()
    assert "goship-init" in console_text
    leaked = [index for index, artifact in enumerate(artifacts) if SECRET in json.dumps(artifact)]
    assert not leaked, "the secret is in artifacts %s" % leaked
    assert SECRET not in console_text
    assert "********" in json.dumps(artifacts[0]), "the seed's --diff does not show the masked secret at all"
