"""Faults inside and around one real project VM (goship.core.project_vm, QEMU TCG): an app in a
crash loop (backoff, give-up under on-failure, status says why, its neighbours untouched), the
host side's file modes, and the channel through QEMU's chardev connected twice and dropped
mid-request."""

import os
import stat
import threading
import time

import pytest
from ansible_collections.goship.core.plugins.module_utils import guest_channel as gc

from guest_fuzz import connect_unix
from vm_helpers import BUSYBOX, channel_path, ensure_running, guest, qemu_dir, remove, replica, sh_app, vm_args, wait_status

NODE = "relapps"
PROJECT = "crashy"


@pytest.fixture(scope="module")
def vm(guest_image_dir):
    with qemu_dir("goship-rel-apps-") as state_root:
        args = vm_args(state_root, guest_image_dir, PROJECT, NODE)
        try:
            ensure_running(args)
            yield args
        finally:
            remove(args)


def test_crash_loop_backoff_give_up_and_the_neighbours(vm):
    apps = [
        {"name": "steady", "runtime": "process", "image": "/", "command": [BUSYBOX, "sleep", "3600"]},
        sh_app("gives-up", "echo boom >&2; exit 3", restart="on-failure"),
        sh_app("loops", "exit 1", restart="always"),
        {"name": "missing", "runtime": "process", "image": "/", "command": ["/no/such/binary"], "restart": "on-failure"},
    ]
    with guest(vm) as channel:
        accepted = channel.request("apply", {"generation": 1, "apps": apps})
        assert accepted["accepted"] and sorted(accepted["changes"]["added"]) == sorted(app["name"] for app in apps)
        steady = replica(wait_status(channel, lambda s: replica(s, "steady")["state"] == "ready", 60, "steady ready"), "steady")

        given_up = wait_status(channel, lambda s: replica(s, "gives-up")["state"] == "failed"
                               and replica(s, "missing")["state"] == "failed", 120, "on-failure apps given up")
        gave_up = replica(given_up, "gives-up")
        assert gave_up["exit_code"] == 3 and gave_up["restarts"] == 4, gave_up
        assert gave_up["last_error"].startswith("gave up after 5 fast failures") and "3" in gave_up["last_error"], gave_up
        missing = replica(given_up, "missing")
        assert "/no/such/binary" in missing["last_error"], missing  # the exec failure, not just "failed"

        time.sleep(8)  # let the always-restarting app run through a few backoff steps
        final = channel.request("status")
        loops = replica(final, "loops")
        assert loops["state"] in ("backoff", "starting", "ready") and loops["exit_code"] == 1, loops
        assert 4 <= loops["restarts"] <= 9, "not paced by the backoff: %s" % loops  # 0.2 s doubling: ~25 s for 8
        assert "exited" in loops["last_error"], loops

        starts = [line["ts"] for line in channel.request("logs", {"app": "loops", "tail": 200})["lines"]
                  if line["stream"] == "init" and line["text"].startswith("started")]
        gaps = [later - earlier for earlier, later in zip(starts, starts[1:])]
        assert len(gaps) >= 4, starts
        for k in range(2, len(gaps)):  # 0.2, 0.4, 0.8, ... after the immediate first restart
            assert gaps[k] >= 0.9 * 0.2 * 2 ** (k - 1), "backoff did not double: gaps %s" % gaps

        logs = channel.request("logs", {"app": "gives-up", "tail": 100})["lines"]
        assert sum(line["text"] == "boom" and line["stream"] == "stderr" for line in logs) == 5, logs

        now_steady = replica(final, "steady")
        assert (now_steady["pid"], now_steady["restarts"], now_steady["state"]) == (steady["pid"], 0, "ready"), now_steady
        assert final["apps"]["steady"]["converged"] is True


def test_host_side_files_are_private(vm):
    directory = os.path.dirname(channel_path(vm))
    sock = os.stat(channel_path(vm))
    assert stat.S_ISSOCK(sock.st_mode) and (sock.st_uid, sock.st_gid, stat.S_IMODE(sock.st_mode)) == (0, 0, 0o600)
    assert stat.S_IMODE(os.stat(directory).st_mode) == 0o711 and os.stat(directory).st_uid == 0
    modes = {name: stat.S_IMODE(os.lstat(os.path.join(directory, name)).st_mode) for name in os.listdir(directory)}
    assert {"init.sock", "console.log"} <= set(modes)
    assert all(not mode & 0o077 for mode in modes.values()), {name: oct(mode) for name, mode in modes.items()}
    with pytest.raises(PermissionError):  # not listable by others: only root and QEMU (by name) get in
        _listdir_as_nobody(directory)


def _listdir_as_nobody(directory):
    """os.listdir(directory) in a child running as nobody; raises OSError like the child did."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        try:
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            os.listdir(directory)
            os.write(write, b"listed")
        except OSError as exc:
            os.write(write, str(exc.errno).encode())
        finally:
            os._exit(0)
    os.close(write)
    answer = os.read(read, 64)
    os.close(read)
    os.waitpid(pid, 0)
    if answer != b"listed":
        raise OSError(int(answer), os.strerror(int(answer)))


def test_qemu_chardev_connected_twice_and_dropped_mid_request(vm):
    path = channel_path(vm)
    for attempt in range(10):  # back-to-back clients: each must wait out the previous one, not fail
        with guest(vm, timeout=30.0) as channel:
            assert channel.request("ping") == {}
    first = connect_unix(path, 30.0)
    first.sendall(b'\xff{"id":"a","op":"sync"}\n')
    assert first.recv(4096).startswith(b'\xff{"id":"a","result":{}}')
    first.sendall(b'{"id":"half","op":"stat')  # mid-request
    outcome = {}

    def second_client():
        try:
            with gc.GuestChannel(path, timeout=30.0) as channel:
                outcome["status"] = channel.request("status")["generation"]
        except gc.GuestChannelError as exc:
            outcome["error"] = repr(exc)
    thread = threading.Thread(target=second_client)
    thread.start()
    time.sleep(2.0)
    assert not outcome, "QEMU served a second client while the first was connected: %s" % outcome
    with pytest.raises(gc.GuestTimeout):  # a third finds QEMU's backlog (one) full: busy, not gone
        gc.GuestChannel(path, timeout=1.0)
    first.close()  # leaves a partial line in the guest's stream
    thread.join(60)
    assert "status" in outcome, outcome

    for attempt in range(3):  # gone right after a request, its reply unread
        with connect_unix(path, 30.0) as quitter:
            quitter.sendall(b'\xff{"id":1,"op":"logs","args":{"app":"gives-up","tail":100}}\n{"id":2,"op":"status"}\n')
    with guest(vm) as channel:
        assert channel.request("ping") == {}
        assert channel.hello()["protocol_version"] == 1
