"""The supervisor in a real VM (guest_init as PID 1, pure cgroup v2): limits the host cannot
show (see tests/unit/test_supervisor_cgroups.py), an OOM kill recorded, stats, a kill and the
restart. Process runtime on the guest's own root; the guest has busybox (no applet links)."""

import time

import pytest

import vm_harness
from ansible_collections.goship.core.plugins.module_utils.guest_channel import GuestChannel, wait_for_hello

pytestmark = pytest.mark.integration

WAIT_S = 60.0


def busybox_app(name, script, **fields):
    return {"name": name, "runtime": "process", "image": "/", "command": ["busybox", "sh", "-c", script], **fields}


def wait_status(channel, condition, what):
    deadline = time.monotonic() + WAIT_S
    while True:
        status = channel.request("status")
        if condition(status):
            return status
        assert time.monotonic() < deadline, "timed out waiting for %s: %s" % (what, status)
        time.sleep(0.2)


def test_limits_oom_stats_and_restart_in_a_vm(guest_image, state_root, accel_choice, scratch_vm):
    image_dir = guest_image[0]
    spec = vm_harness.image_spec(image_dir, state_root, vm_harness.scratch_node("sup"), "alpha", accel_choice.virt_type)
    vm = scratch_vm(spec)
    vm.start()
    wait_for_hello(spec.paths.channel, vm_harness.BOOT_TIMEOUT_S)
    with GuestChannel(spec.paths.channel, timeout=30) as channel:
        assert channel.request("status")["cgroup"]["controllers"] == ["cpu", "memory", "pids"]
        channel.request("apply", {"generation": 1, "apps": [
            busybox_app("hog", "exec busybox dd if=/dev/zero of=/dev/null bs=64M count=1",
                        resources={"memory_mib": 16}, restart="never"),
            busybox_app("forker", "for i in 1 2 3 4 5 6 7 8; do busybox sleep 30 & done; wait",
                        resources={"pids": 4}, restart="never"),
            busybox_app("web", "exec busybox httpd -f -h / -p 127.0.0.1:$PORT", replicas=2, ports=[8080],
                        resources={"cpu_millis": 500, "memory_mib": 64},
                        health={"readiness": {"tcp": {}, "interval_s": 0.2}}),
        ]})
        status = wait_status(channel, lambda s: s["apps"]["hog"]["replicas"][0]["state"] == "failed"
                             and all(r["state"] == "ready" for r in s["apps"]["web"]["replicas"]), "OOM and ready")
        hog = status["apps"]["hog"]["replicas"][0]
        assert hog["oom_killed"] is True and hog["exit_signal"] == "SIGKILL", hog
        web = status["apps"]["web"]["replicas"]
        assert all(r["memory_bytes"] and r["memory_bytes"] < 64 * 1024 * 1024 and r["cpu_usec"] is not None for r in web), web
        forker_errors = [line["text"] for line in channel.request("logs", {"app": "forker"})["lines"] if line["stream"] == "stderr"]
        assert any("fork" in text for text in forker_errors), forker_errors

        first = web[0]["pid"]
        channel.request("signal", {"app": "web", "replica": 0, "signal": "KILL"})
        status = wait_status(channel, lambda s: s["apps"]["web"]["replicas"][0]["pid"] not in (None, first)
                             and s["apps"]["web"]["replicas"][0]["state"] == "ready", "web-0 back")
        assert status["apps"]["web"]["replicas"][0]["restarts"] == 1
        assert status["apps"]["web"]["replicas"][1]["pid"] == web[1]["pid"]
        assert channel.request("shutdown", {"reboot": False}) == {"accepted": True}
    assert vm.wait_shut_off()
