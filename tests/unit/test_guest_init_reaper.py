"""The reaper: orphans re-parented to guest_init (child subreaper) are reaped; owners get statuses."""

import json
import os
import shutil
import subprocess
import sys
import tempfile

import pytest
from ansible_collections.goship.core.plugins.module_utils import guest_channel as gc

from guest_init_helpers import REPO, GuestInitProcess, wait_until

# Becomes guest_init by exec after forking child C; C forks grandchild G, waits until guest_init
# (same pid as this launcher) serves its socket, i.e. is a subreaper, then exits: G is orphaned.
# G reports its parent before and after, then exits 0 and must be reaped by guest_init.
ORPHAN_LAUNCHER = r'''
import os, sys, time
socket_path, report = sys.argv[1], sys.argv[2]
guest_init_argv = sys.argv[3:]
if os.fork() == 0:
    child = os.getpid()
    if os.fork() == 0:
        deadline = time.monotonic() + 10
        while os.getppid() == child and time.monotonic() < deadline:
            time.sleep(0.01)
        with open(report + ".tmp", "w") as out:
            out.write('{"pid": %d, "parent": %d}' % (os.getpid(), os.getppid()))
        os.rename(report + ".tmp", report)
        time.sleep(0.2)
        os._exit(0)
    deadline = time.monotonic() + 10
    while not os.path.exists(socket_path) and time.monotonic() < deadline:
        time.sleep(0.01)
    os._exit(0)
os.execv(guest_init_argv[0], guest_init_argv)
'''


@pytest.fixture
def workdir():
    path = tempfile.mkdtemp(prefix="gi-", dir="/tmp")
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_orphaned_grandchild_is_reaped_by_the_subreaper(workdir):
    report = os.path.join(workdir, "grandchild.json")
    launcher = [sys.executable, "-c", ORPHAN_LAUNCHER, os.path.join(workdir, "init.sock"), report]
    guest = GuestInitProcess(workdir, argv_prefix=launcher)
    with guest:
        wait_until(lambda: os.path.exists(report), 10.0, what="grandchild report")
        with open(report, encoding="ascii") as data:
            grandchild = json.load(data)
        assert grandchild["parent"] == guest.proc.pid, "orphan was not re-parented to guest_init"
        wait_until(lambda: "reaped pid %d (exit 0)" % grandchild["pid"] in guest.log(), 10.0, what="reap log line")
        assert not os.path.exists("/proc/%d" % grandchild["pid"]), "grandchild left as a zombie"
        with gc.GuestChannel(guest.socket_path, 5.0) as channel:
            assert channel.request("ping") == {}


# Runs in its own process: the reaper waits for *any* child, which must not be pytest's.
OWNER_SCRIPT = r'''
import json, os, sys
sys.path.insert(0, sys.argv[1])
from guest_init.loop import EventLoop
from guest_init.reaper import Reaper
from guest_init import pid1
loop = EventLoop()
reaper = Reaper(loop)
results = {}
def done(pid, status):
    results[pid] = os.waitstatus_to_exitcode(status)
    if len(results) == 2:
        loop.stop()
for argv in (["/bin/sh", "-c", "exit 3"], ["/bin/sh", "-c", "kill -TERM $$"]):
    reaper.watch(pid1.spawn(argv), done)
loop.call_later(10, loop.stop)
loop.run()
print(json.dumps(sorted(results.values())))
'''


def test_owner_gets_exit_status_of_its_child():
    out = subprocess.run([sys.executable, "-I", "-S", "-c", OWNER_SCRIPT, str(REPO)],
                         capture_output=True, text=True, timeout=20, check=True).stdout
    assert json.loads(out) == [-15, 3]
