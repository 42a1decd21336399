"""A real VM runs crun containers from a local OCI image delivered on the images data disk.

Host: build the busybox image layout, pack it into the images disk (squashfs), attach that
read-only with serial goship-images to a scratch VM booting the GoShip image. Guest:
guest_init mounts the disk at /run/goship/images. Over the channel: apply 2 replicas of a
crun app with http readiness and tcp liveness, both become ready; the `signal` op kills
replica 0 with SIGKILL from inside the VM; it comes back (restarts == 1) and replica 1 is
untouched. The containers' own view of their cgroup shows the limits.
"""

import os
import shutil
import tempfile
import time
from pathlib import Path

import libvirt
import pytest

import vm_harness
from ansible_collections.goship.core.plugins.module_utils import images_disk
from ansible_collections.goship.core.plugins.module_utils.guest_channel import GuestChannel, wait_for_hello
from goship_ctl.oci.busybox import build_busybox_image

pytestmark = pytest.mark.integration

IMAGE = "demo-web"
MEMORY_MIB = 48
PIDS = 32
APP = {
    "name": "web", "runtime": "crun", "image": IMAGE, "replicas": 2, "ports": [8080],
    # the image's Entrypoint is `sh -c`: args replace its Cmd
    "args": ['echo "limits $(cat /sys/fs/cgroup/memory.max) $(cat /sys/fs/cgroup/pids.max)"; '
             'exec httpd -f -p "$PORT" -h /www'],
    "health": {
        "readiness": {"http": {"path": "/healthz"}, "interval_s": 0.5, "timeout_s": 5, "failure_threshold": 1},
        "liveness": {"tcp": {}, "interval_s": 2, "timeout_s": 5, "failure_threshold": 5},
        "startup_grace_s": 60,
    },
    "resources": {"memory_mib": MEMORY_MIB, "pids": PIDS, "cpu_millis": 500},
    "stop_grace_s": 2,
}
READY_TIMEOUT_S = 240.0
# QEMU runs as libvirt-qemu: the disk's directories must be traversable by others, which
# pytest's tmp_path (under /tmp/pytest-of-root, mode 0700) is not.
DISKS_PARENT = Path(__file__).resolve().parents[2] / "build" / "test-disks"
POLL_S = 0.25


@pytest.fixture(name="disks_dir")
def disks_dir_fixture():
    DISKS_PARENT.mkdir(parents=True, exist_ok=True)
    os.chmod(DISKS_PARENT, 0o755)
    path = tempfile.mkdtemp(prefix="containers-", dir=DISKS_PARENT)
    os.chmod(path, 0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def images_disk_xml(path):
    """The images disk as libvirt wants it; domain_xml.Disk has no serial field (yet)."""
    return (f"<disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='{path}'/>"
            f"<target dev='vdb' bus='virtio'/><readonly/><serial>{images_disk.DISK_SERIAL}</serial></disk>")


def replicas(channel):
    app = channel.request("status")["apps"].get("web")
    return {r["index"]: r for r in app["replicas"]} if app else {}


def wait_for(channel, condition, what, timeout=READY_TIMEOUT_S):
    deadline = time.monotonic() + timeout
    seen = None
    while time.monotonic() < deadline:
        seen = replicas(channel)
        if condition(seen):
            return seen
        time.sleep(POLL_S)
    logs = channel.request("logs", {"app": "web", "tail": 50})["lines"]
    raise AssertionError(f"timed out waiting for {what}; replicas: {seen}; logs: {logs}")


def both_ready(seen):
    return len(seen) == 2 and all(r["state"] == "ready" for r in seen.values())


def test_crun_replicas_ready_killed_and_back(guest_image_dir, state_root, accel_choice, scratch_vm, tmp_path, disks_dir):
    build_busybox_image(tmp_path / "layouts" / IMAGE)
    disk, _changed = images_disk.build_images_disk({IMAGE: str(tmp_path / "layouts" / IMAGE)}, disks_dir)
    spec = vm_harness.image_spec(guest_image_dir, state_root, vm_harness.scratch_node("ctr"), "alpha",
                                 accel_choice.virt_type, memory_mib=512, kernel_args=("goship.debug=1",))
    vm = scratch_vm(spec)
    vm.dom.attachDeviceFlags(images_disk_xml(disk), libvirt.VIR_DOMAIN_AFFECT_CONFIG)
    vm.start()
    wait_for_hello(spec.paths.channel, vm_harness.BOOT_TIMEOUT_S)

    with GuestChannel(spec.paths.channel, timeout=60) as channel:
        applied = time.monotonic()
        assert channel.request("apply", {"generation": 1, "apps": [APP]})["accepted"] is True
        seen = wait_for(channel, both_ready, "both replicas ready")
        print(f"apply -> 2 crun replicas ready: {(time.monotonic() - applied) * 1000:.0f} ms")
        assert [seen[i]["restarts"] for i in (0, 1)] == [0, 0]
        survivor_pid = seen[1]["pid"]

        killed = time.monotonic()
        result = channel.request("signal", {"app": "web", "replica": 0, "signal": "KILL"})
        assert result["signalled"], result
        seen = wait_for(channel, lambda s: s[0]["restarts"] == 1 and both_ready(s), "replica 0 back and ready")
        print(f"SIGKILL -> replica 0 ready again: {(time.monotonic() - killed) * 1000:.0f} ms")
        assert seen[0]["exit_signal"] == "SIGKILL" and seen[0]["exit_code"] is None
        assert seen[1]["pid"] == survivor_pid and seen[1]["restarts"] == 0
        assert seen[0]["memory_bytes"] and seen[0]["memory_bytes"] < MEMORY_MIB << 20

        lines = [line["text"] for line in channel.request("logs", {"app": "web", "replica": 1, "tail": 100})["lines"]]
        assert f"limits {MEMORY_MIB << 20} {PIDS}" in lines, lines
    for line in vm.console_tail(200000).splitlines():
        if "crun create + start" in line:
            print(line.strip())  # guest_init's per-start timings (goship.debug=1)
