"""A libvirtd of the test's own, so that killing and restarting it disturbs nothing else on the
machine (the system libvirtd serves every other test and engineer).

It runs in a private mount namespace in which /etc/libvirt (a copy of the daemon settings, no
domains, networks or pools), /run/libvirt, /var/lib/libvirt, /var/cache/libvirt and
/var/log/libvirt are directories of the test; its own virtlogd comes along. Clients reach it
through ``qemu:///system?socket=<dir>/run/libvirt-sock``. Its QEMU processes run as the
system's would (same qemu.conf: libvirt-qemu, DAC labels), so project_vm treats it like any node.
"""

import shutil
import signal
import subprocess
import time
from pathlib import Path

PRIVATE_DIRS = {"etc": "/etc/libvirt", "run": "/run/libvirt", "lib": "/var/lib/libvirt",
                "cache": "/var/cache/libvirt", "log": "/var/log/libvirt"}
SETTINGS = ("libvirt.conf", "libvirtd.conf", "qemu.conf", "virtlogd.conf")
ANSWER_TIMEOUT_S = 60.0
READY_TIMEOUT_S = 10.0

HOLDER_SCRIPT = """set -e
%s
touch "$1/ready"
exec sleep 86400
"""


class PrivateLibvirt:
    def __init__(self, root):
        self.root = Path(root)
        self.uri = "qemu:///system?socket=%s" % (self.root / "run" / "libvirt-sock")
        self._holder = None
        self._virtlogd = None
        self.libvirtd = None

    def start(self):
        for name in PRIVATE_DIRS:
            (self.root / name).mkdir(parents=True, exist_ok=True)
        for name in SETTINGS:
            shutil.copy2(Path("/etc/libvirt") / name, self.root / "etc" / name)
        mounts = "\n".join('mount --bind "$1/%s" %s' % (name, target) for name, target in PRIVATE_DIRS.items())
        self._holder = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                                         HOLDER_SCRIPT % mounts, "holder", str(self.root)], stdin=subprocess.DEVNULL)
        self._wait((self.root / "ready").exists, READY_TIMEOUT_S, "the private mount namespace")
        self._virtlogd = self._in_namespace(["virtlogd", "-p", str(self.root / "run" / "virtlogd.pid")])
        self.start_libvirtd()
        return self

    def _in_namespace(self, argv):
        with open(self.root / "log" / ("%s.out" % argv[0]), "ab") as log:
            return subprocess.Popen(["nsenter", "-t", str(self._holder.pid), "-m", *argv],
                                    stdin=subprocess.DEVNULL, stdout=log, stderr=log)

    def start_libvirtd(self):
        """Start (or start again) the daemon; return once it answers (bounded)."""
        self.libvirtd = self._in_namespace(["libvirtd", "-p", str(self.root / "run" / "libvirtd.pid")])
        self._wait(self.answers, ANSWER_TIMEOUT_S, "the private libvirtd to answer")

    def kill_libvirtd(self):
        self.libvirtd.send_signal(signal.SIGKILL)
        self.libvirtd.wait(30)

    def answers(self):
        assert self.libvirtd.poll() is None, "the private libvirtd exited: see %s" % (self.root / "log")
        return self.virsh("list", "--all", timeout=5).returncode == 0

    def virsh(self, *args, timeout=60):
        try:
            return subprocess.run(["virsh", "-c", self.uri, *args], capture_output=True, text=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired as exc:
            return subprocess.CompletedProcess(exc.cmd, 124, "", "timed out")

    def domains(self):
        listed = self.virsh("list", "--all", "--name")
        assert listed.returncode == 0, listed.stderr
        return sorted(name for name in listed.stdout.split() if name)

    def stop(self):
        """Remove every domain it has, then end the daemons and the namespace (all started here)."""
        try:
            if self.libvirtd is not None and self.libvirtd.poll() is not None:
                self.start_libvirtd()
            for name in self.domains():
                self.virsh("destroy", name)
                self.virsh("undefine", name, "--nvram")
        finally:
            for proc in (self.libvirtd, self._virtlogd, self._holder):
                if proc is not None and proc.poll() is None:
                    proc.terminate()
                    try:
                        proc.wait(30)
                    except subprocess.TimeoutExpired:
                        proc.kill()
                        proc.wait(30)

    @staticmethod
    def _wait(condition, timeout, what):
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError("timed out after %.0f s waiting for %s" % (timeout, what))
            time.sleep(0.1)
