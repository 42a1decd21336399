"""goship.core.guest_apps against a real booted VM: check mode pushes nothing, changed tells the
truth, a second push is a no-op, secrets stay out of the output."""

import json

import libvirt
import pytest

from ansible_play import run_tasks

NODE = "testga"
PROJECT = "beta"
SECRET = "s3cret-value-never-shown"


@pytest.fixture
def running_vm(guest_image, qemu_tmp):
    args = {"project": PROJECT, "node": NODE, "state_root": str(qemu_tmp), "image_dir": str(guest_image[0]),
            "virt_type": "qemu", "memory_mib": 256}
    (started,) = run_tasks([{"goship.core.project_vm": dict(args, state="running", wait_for_guest=True)}], timeout=900)
    assert started["state"] == "running", started
    yield args
    run_tasks([{"goship.core.project_vm": dict(args, state="absent")}])
    conn = libvirt.open("qemu:///system")
    try:
        assert f"goship-{NODE}-{PROJECT}" not in [d.name() for d in conn.listAllDomains()]
    finally:
        conn.close()


def apps_task(vm, replicas, generation):
    app = {"name": "sleeper", "runtime": "process", "image": "/", "command": ["/bin/busybox", "sleep", "3600"],
           "replicas": replicas, "env": {"TOKEN": {"value": SECRET, "secret": True}}}
    return {"goship.core.guest_apps": {"project": PROJECT, "node": NODE, "state_root": vm["state_root"],
                                       "generation": generation, "apps": [app], "timeout": 300}}


def test_check_mode_then_apply_then_noop(running_vm):
    (check,) = run_tasks([apps_task(running_vm, 2, 1)], check=True, diff=True)
    assert check["changed"] is True and check["changes"]["added"] == ["sleeper"], check
    assert check["status"]["apps"] == {}, "check mode pushed the app set"
    assert SECRET not in json.dumps(check)

    applied, again = run_tasks([apps_task(running_vm, 2, 1), apps_task(running_vm, 2, 1)])
    assert applied["changed"] is True and applied["apps"]["sleeper"] == {"desired": 2, "running": 2, "ready": 2}, applied
    assert again["changed"] is False, again["changes"]
    assert SECRET not in json.dumps([applied, again])

    (scaled,) = run_tasks([apps_task(running_vm, 3, 2)])
    assert scaled["changed"] and scaled["changes"]["scaled"] == ["sleeper"] and scaled["apps"]["sleeper"]["running"] == 3
