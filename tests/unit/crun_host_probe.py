"""Drives the crun runtime for real on the host; run by test_oci_crun_host.py inside a private
mount namespace with cgroup2 mounted on /sys/fs/cgroup (this host's own is a v1/v2 hybrid,
which crun refuses). Prints one JSON object with what it saw.

Usage: crun_host_probe.py REPO IMAGES_DIR STATE_DIR HTTP_PORT
"""

import json
import os
import select
import signal
import subprocess
import sys
import time
import urllib.request

REPO, IMAGES_DIR, STATE_DIR, HTTP_PORT = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
sys.path.insert(0, REPO)

# pylint: disable=wrong-import-position
from guest_init import libc  # noqa: E402
from guest_init.runtimes import get_runtime  # noqa: E402
from guest_init.runtimes.base import Launch, Limits  # noqa: E402

WAIT_S = 20.0
runtime = get_runtime("crun", cgroup_root="/sys/fs/cgroup", state_dir=STATE_DIR, images_dir=IMAGES_DIR)


class Replica:
    """One started container, its output pipes and timings."""

    def __init__(self, index, args, env=None, user=None, command=None):
        self.out_r, out_w = os.pipe()
        self.err_r, err_w = os.pipe()
        argv = runtime.resolve_argv("demo", command, args)
        self.launch = Launch(app="probe", index=index, container_id="probe-%d-0123abcd" % index, image="demo",
                             argv=argv, env=dict(env or {}, GOSHIP_APP="probe", GOSHIP_REPLICA=str(index)),
                             workdir=None, user=user, limits=Limits(None, None, None),
                             cgroup="goship/probe/%d" % index, stdout_fd=out_w, stderr_fd=err_w)
        started = time.monotonic()
        self.pid = runtime.start(self.launch)
        self.start_ms = (time.monotonic() - started) * 1000
        os.close(out_w)
        os.close(err_w)

    def wait(self):
        """(exit code, signal name) of the container's init, bounded."""
        pidfd = os.pidfd_open(self.pid)
        ready = select.select([pidfd], [], [], WAIT_S)[0]
        os.close(pidfd)
        if not ready:
            os.kill(self.pid, signal.SIGKILL)
        status = os.waitpid(self.pid, 0)[1]
        if os.WIFSIGNALED(status):
            return None, signal.Signals(os.WTERMSIG(status)).name
        return os.waitstatus_to_exitcode(status), None

    def output(self):
        return os.read(self.out_r, 65536).decode(), os.read(self.err_r, 65536).decode()

    def exec_output(self, argv):
        result = subprocess.run(runtime.exec_argv(self.launch, argv), capture_output=True, text=True,
                                timeout=WAIT_S, check=False)
        return result.stdout.strip()

    def cleanup(self):
        started = time.monotonic()
        runtime.cleanup(self.launch)
        return (time.monotonic() - started) * 1000


def fetch(port):
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d/" % port, timeout=2) as response:
                return response.read().decode()
        except OSError:
            time.sleep(0.05)
    return None


def main():
    libc.set_child_subreaper()
    report = {}

    exits = Replica(0, ["echo out $GOSHIP_APP; echo err >&2; id -u; pwd; exit 3"], user="app")
    report["exit"] = exits.wait()
    report["output"] = exits.output()
    report["start_ms"] = exits.start_ms
    report["cleanup_ms"] = exits.cleanup()

    killed = Replica(1, ["sleep 60"])
    runtime.signal(killed.launch, killed.pid, signal.SIGKILL)
    report["killed"] = killed.wait()
    killed.cleanup()

    trapping = Replica(2, ["trap 'echo got TERM; exit 143' TERM; sleep 60 & wait"])
    time.sleep(0.3)  # let the shell install its trap
    runtime.signal(trapping.launch, trapping.pid, signal.SIGTERM)
    report["terminated"] = trapping.wait()
    report["terminated_output"] = trapping.output()[0]
    trapping.cleanup()

    pair = [Replica(3 + n, ["echo replica $GOSHIP_REPLICA > /tmp/mine; exec sleep 60"]) for n in range(2)]
    time.sleep(0.3)
    report["isolated"] = [replica.exec_output(["cat", "/tmp/mine"]) for replica in pair]
    report["exec_id"] = pair[0].exec_output(["id", "-u"])
    report["rootfs_dirs"] = sorted(os.listdir(os.path.join(STATE_DIR, "rootfs")))
    lower = os.path.join(STATE_DIR, "rootfs", report["rootfs_dirs"][0])
    report["lower_tmp"] = sorted(os.listdir(os.path.join(lower, "tmp")))
    for replica in pair:
        runtime.signal(replica.launch, replica.pid, signal.SIGKILL)
        replica.wait()
        replica.cleanup()

    web = Replica(5, None, env={"PORT": str(HTTP_PORT)})  # the image's own Entrypoint + Cmd: httpd
    report["http"] = fetch(HTTP_PORT)
    runtime.signal(web.launch, web.pid, signal.SIGKILL)  # httpd, the namespace's init, has no TERM handler
    report["web_exit"] = web.wait()
    web.cleanup()

    try:
        report["start_error"] = "no error: pid %d" % Replica(6, None, command=["/no/such/program"]).pid
    except OSError as exc:
        report["start_error"] = str(exc)

    report["bundles_left"] = os.listdir(os.path.join(STATE_DIR, "bundles"))
    report["crun_state_left"] = os.listdir(os.path.join(STATE_DIR, "crun"))
    report["cgroups_left"] = [name for name in os.listdir("/sys/fs/cgroup/goship")
                              if os.path.isdir(os.path.join("/sys/fs/cgroup/goship", name))]
    with open("/proc/self/mountinfo", encoding="utf-8") as mountinfo:
        report["mounts_left"] = [line for line in mountinfo if STATE_DIR in line]
    print(json.dumps(report))


main()
