"""cgroup v2 on the host: replicas in their own cgroup under a delegated sub-tree, stats, and
limits where the host lets a cgroup v2 sub-tree have the cpu, memory and pids controllers.

On a hybrid (cgroup v1 + v2) host those controllers stay bound to v1 and the limit tests skip
with the reason; the VM always has a pure cgroup v2 (guest_init mounts it).
"""

import os
import time

import pytest

from supervisor_helpers import (all_ready, alive, cgroup2_mount, cgroup_controllers, delegated_cgroup, pids,
                                process_app, replicas, supervised, wait_status)

SLEEPER = "exec sleep 300"


def controllers_or_skip(*names):
    mount = cgroup2_mount()
    if mount is None or not os.access(mount, os.W_OK):
        pytest.skip("no writable cgroup v2 mount on this host")
    missing = [name for name in names if name not in cgroup_controllers(mount)]
    if missing:
        pytest.skip("the host's cgroup v2 at %s lacks the %s controller(s) (bound to cgroup v1 here): "
                    "limits are covered by tests/integration/test_supervisor_vm.py" % (mount, ",".join(missing)))


@pytest.fixture
def cgroup_root():
    controllers_or_skip()
    with delegated_cgroup() as root:
        yield root


def cgroup_of(pid):
    with open("/proc/%d/cgroup" % pid, encoding="ascii") as handle:
        return [line.split(":", 2)[2].strip() for line in handle if line.startswith("0::")][0]


def test_replicas_live_in_their_own_cgroup_with_cpu_stats(cgroup_root):
    relative_root = "/" + os.path.relpath(cgroup_root, cgroup2_mount())
    with supervised(cgroup_root=cgroup_root) as (process, channel):
        channel.request("apply", {"generation": 1, "apps": [
            process_app("busy", "while :; do :; done", replicas=2), process_app("idle", SLEEPER)]})
        status = wait_status(channel, all_ready("busy", "idle"))
        assert status["cgroup"]["root"] == cgroup_root
        for app in ("busy", "idle"):
            for replica in replicas(status, app):
                assert cgroup_of(replica["pid"]) == "%s/goship/%s/%d" % (relative_root, app, replica["index"])
        time.sleep(0.3)
        status = wait_status(channel, lambda s: all(r["cpu_usec"] and r["cpu_usec"] > 50000 for r in replicas(s, "busy")), timeout=3)
        assert replicas(status, "idle")[0]["cpu_usec"] < replicas(status, "busy")[0]["cpu_usec"]
        channel.request("apply", {"generation": 2, "apps": [process_app("idle", SLEEPER)]})
        wait_status(channel, lambda s: "busy" not in s["apps"], timeout=3)
        assert not os.path.exists(os.path.join(cgroup_root, "goship", "busy"))


def test_a_process_escaping_the_group_is_killed_with_its_replica(cgroup_root):
    with supervised(cgroup_root=cgroup_root) as (process, channel):
        channel.request("apply", {"generation": 1, "apps": [
            process_app("daemon", "setsid sleep 300 & echo $! > %s/escapee; %s" % (process.directory, SLEEPER), stop_grace_s=1)]})
        wait_status(channel, all_ready("daemon"))
        escapee_file = os.path.join(str(process.directory), "escapee")
        wait_status(channel, lambda s: os.path.exists(escapee_file) and open(escapee_file, encoding="ascii").read().strip())
        with open(escapee_file, encoding="ascii") as handle:
            escapee = int(handle.read())
        assert alive(escapee) and os.getpgid(escapee) == escapee
        channel.request("apply", {"generation": 2, "apps": []})
        wait_status(channel, lambda s: s["apps"] == {} and not alive(escapee), timeout=3, what="escapee killed")


def test_memory_limit_oom_kill_is_recorded(cgroup_root):
    controllers_or_skip("memory")
    with supervised(cgroup_root=cgroup_root) as (process, channel):
        channel.request("apply", {"generation": 1, "apps": [process_app(
            "hog", "exec busybox dd if=/dev/zero of=/dev/null bs=64M count=1", resources={"memory_mib": 16}, restart="never")]})
        status = wait_status(channel, lambda s: replicas(s, "hog") and replicas(s, "hog")[0]["state"] == "failed", timeout=5)
        hog = replicas(status, "hog")[0]
        assert hog["oom_killed"] is True and hog["exit_signal"] == "SIGKILL"
        assert "OOM" in hog["last_error"]


def test_pids_and_cpu_limits_are_written(cgroup_root):
    controllers_or_skip("pids", "cpu")
    with supervised(cgroup_root=cgroup_root) as (process, channel):
        channel.request("apply", {"generation": 1, "apps": [process_app(
            "limited", SLEEPER, resources={"pids": 8, "cpu_millis": 250})]})
        status = wait_status(channel, all_ready("limited"))
        leaf = os.path.join(cgroup_root, "goship", "limited", "0")
        with open(os.path.join(leaf, "pids.max"), encoding="ascii") as handle:
            assert handle.read().strip() == "8"
        with open(os.path.join(leaf, "cpu.max"), encoding="ascii") as handle:
            assert handle.read().split() == ["25000", "100000"]
        assert pids(status, "limited")
