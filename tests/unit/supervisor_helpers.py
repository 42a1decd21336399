"""guest_init with its supervisor on the host: the process runtime, a tmp state dir and,
where the host allows, a delegated cgroup v2 sub-tree."""

import os
import shutil
import socket
import tempfile
import time
from contextlib import contextmanager

from ansible_collections.goship.core.plugins.module_utils import guest_channel as gc

from guest_init_helpers import GuestInitProcess, wait_until

BUSYBOX = shutil.which("busybox")
SECRET = "s3cr3t-value-%d" % os.getpid()


class SupervisedGuestInit(GuestInitProcess):
    def __init__(self, directory, cgroup_root=None, config=None):
        super().__init__(directory)
        self.state_dir = os.path.join(directory, "state")
        self.cgroup_root = cgroup_root
        self.config = config

    def argv(self):
        argv = super().argv() + ["--state-dir", self.state_dir, "--images-dir", os.path.join(str(self.directory), "images")]
        if self.cgroup_root:
            argv += ["--cgroup-root", self.cgroup_root]
        if self.config:
            argv += ["--config", self.config]
        return argv

    def channel(self, timeout=5.0):
        return gc.GuestChannel(self.socket_path, timeout=timeout)


@contextmanager
def supervised(cgroup_root=None, config=None, directory=None):
    """A running guest_init and a connected client; everything is stopped and removed after."""
    workdir = directory or tempfile.mkdtemp(prefix="gs-", dir="/tmp")  # short: socket paths <= 107 bytes
    process = SupervisedGuestInit(workdir, cgroup_root=cgroup_root, config=config).start()
    try:
        with process.channel() as channel:
            yield process, channel
    finally:
        process.stop()
        if directory is None:
            shutil.rmtree(workdir, ignore_errors=True)


def process_app(name, script, **fields):
    """An app of the process runtime running `sh -c script` in the host's root."""
    return {"name": name, "runtime": "process", "image": "/", "command": ["sh", "-c", script], **fields}


def replicas(status, app):
    return status["apps"][app]["replicas"] if app in status["apps"] else []


def wait_status(channel, condition, timeout=10.0, what="status"):
    """Poll status until condition(status) is truthy; return that status."""
    found = {}

    def check():
        found["status"] = channel.request("status")
        return condition(found["status"])
    try:
        wait_until(check, timeout, interval=0.02, what=what)
    except AssertionError as exc:
        raise AssertionError("%s; last status: %s" % (exc, found.get("status"))) from None
    return found["status"]


def all_ready(*apps):
    def condition(status):
        return status["converged"] and all(
            app in status["apps"] and all(r["state"] == "ready" for r in status["apps"][app]["replicas"]) for app in apps)
    return condition


def pids(status, app):
    return [r["pid"] for r in replicas(status, app)]


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid, encoding="ascii") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- cgroups on the host --------------------------------------------------------------
def cgroup2_mount():
    """The host's cgroup v2 mount point, or None."""
    with open("/proc/self/mountinfo", encoding="utf-8") as mountinfo:
        for line in mountinfo:
            left, right = line.split(" - ", 1)
            if right.split()[0] == "cgroup2":
                return left.split()[4]
    return None


def cgroup_controllers(path):
    try:
        with open(os.path.join(path, "cgroup.controllers"), encoding="ascii") as handle:
            return handle.read().split()
    except OSError:
        return []


@contextmanager
def delegated_cgroup():
    """A fresh directory in the host's cgroup v2 tree, handed to guest_init as --cgroup-root."""
    mount = cgroup2_mount()
    if mount is None or not os.access(mount, os.W_OK):
        yield None
        return
    root = os.path.join(mount, "goship-test-%d-%d" % (os.getpid(), time.monotonic_ns() % 1000000))
    os.mkdir(root)
    wanted = [name for name in ("cpu", "memory", "pids") if name in cgroup_controllers(mount)]
    try:
        if wanted:
            with open(os.path.join(mount, "cgroup.subtree_control"), "w", encoding="ascii") as control:
                control.write(" ".join("+" + name for name in wanted))
    except OSError:
        pass
    try:
        yield root
    finally:
        remove_cgroup_tree(root)


def remove_cgroup_tree(root):
    for directory, _subdirs, _files in os.walk(root, topdown=False):
        kill = os.path.join(directory, "cgroup.kill")
        if os.path.exists(kill):
            with open(kill, "w", encoding="ascii") as handle:
                handle.write("1")
        deadline = time.monotonic() + 5.0
        while True:
            try:
                os.rmdir(directory)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)
