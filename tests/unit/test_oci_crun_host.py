"""The crun runtime for real on this host, with an image built from busybox-static.

crun refuses this host's v1/v2 hybrid cgroup set-up, so the probe runs in a private mount
namespace (unshare -m) with cgroup2 mounted on /sys/fs/cgroup; the network namespace is
the host's, as containers share the VM's in a guest.
"""

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from goship_ctl.oci.busybox import BUSYBOX, build_busybox_image

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
PROBE_TIMEOUT_S = 120

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("crun") or not shutil.which("unshare") or not BUSYBOX.exists(),
    reason="needs root, crun, unshare and busybox-static")


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(name="report", scope="module")
def report_fixture(tmp_path_factory):
    base = tmp_path_factory.mktemp("crun")
    build_busybox_image(base / "images" / "demo")
    state = base / "state"
    script = 'mount -t cgroup2 none /sys/fs/cgroup && exec "$@"'
    argv = ["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh",
            sys.executable, str(HERE / "crun_host_probe.py"), str(REPO), str(base / "images"), str(state), str(free_port())]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=PROBE_TIMEOUT_S, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout.splitlines()[-1])
    print("crun start %.1f ms, cleanup %.1f ms" % (report["start_ms"], report["cleanup_ms"]))
    return report


def test_exact_exit_code_output_and_user(report):
    assert report["exit"] == [3, None]
    stdout, stderr = report["output"]
    assert stdout.splitlines() == ["out probe", "1000", "/www"]
    assert stderr == "err\n"


def test_signals_reach_the_container(report):
    assert report["killed"] == [None, "SIGKILL"]
    assert report["terminated"] == [143, None]
    assert "got TERM" in report["terminated_output"]


def test_replicas_share_one_rootfs_with_private_writes(report):
    assert report["isolated"] == ["replica 3", "replica 4"]
    assert len(report["rootfs_dirs"]) == 1
    assert report["lower_tmp"] == []
    assert report["exec_id"] == "0"


def test_image_default_process_serves_http(report):
    assert report["http"] == "goship busybox demo\n"
    assert report["web_exit"] == [None, "SIGKILL"]


def test_start_failure_is_an_oserror_with_crun_message(report):
    assert "/no/such/program" in report["start_error"]


def test_cleanup_leaves_nothing(report):
    assert report["bundles_left"] == []
    assert report["crun_state_left"] == []
    assert report["cgroups_left"] == []
    assert report["mounts_left"] == []
