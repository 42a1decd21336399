"""Benchmark of guest_init's supervisor on this host (process runtime, no VM).

Starts guest_init as an ordinary process (`--socket`, a tmp `--state-dir`), drives it with the
real host client, and measures:
  apply_to_ready_ms      apply of APPS x REPLICAS busybox httpd replicas (tcp readiness) until
                         every replica is ready
  guest_init_rss_kib     guest_init's RSS with those replicas running
  noop_apply_restarts    replicas whose pid or restart count changed after the same spec is
                         applied again (must be 0)
  restart_after_crash_ms median time from SIGKILL of a replica to its new process (first
                         crash of a replica: backoff starts at 0); restart_to_ready_ms until ready
Prints a table, then, last, one JSON line.

    python3 bench/guest_init.py [--apps 10] [--replicas 3] [--crashes 10]
"""

import argparse
import importlib.util
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BOOT_CODE = ("import sys; sys.path.insert(0, %r); import runpy; "
             "runpy.run_module('guest_init', run_name='__main__', alter_sys=True)" % str(REPO))
POLL_S = 0.005
TIMEOUT_S = 60.0


def load_client():
    path = REPO / "plugins" / "module_utils" / "guest_channel.py"
    spec = importlib.util.spec_from_file_location("guest_channel", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def free_port_block(count):
    """A first port such that count consecutive ports are free on 127.0.0.1 (best effort)."""
    for _attempt in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            first = probe.getsockname()[1]
        if first + count > 65535:
            continue
        try:
            for port in range(first, first + count):
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", port))
            return first
        except OSError:
            continue
    raise RuntimeError("no block of %d free ports" % count)


def apps_spec(apps, replicas, webroot):
    """APPS apps of REPLICAS busybox httpd each, on PORT (first port + replica index)."""
    first = free_port_block(apps * replicas)
    return [{
        "name": "app%02d" % number, "runtime": "process", "image": "/", "replicas": replicas,
        "command": ["sh", "-c", "exec busybox httpd -f -h %s -p 127.0.0.1:$PORT" % webroot],
        "ports": [first + number * replicas],
        "health": {"readiness": {"tcp": {}, "interval_s": 0.05}},
    } for number in range(apps)]


def wait_for(channel, condition, what):
    deadline = time.monotonic() + TIMEOUT_S
    while True:
        status = channel.request("status")
        if condition(status):
            return status
        if time.monotonic() > deadline:
            raise RuntimeError("timed out waiting for %s; status: %s" % (what, json.dumps(status)))
        time.sleep(POLL_S)


def everything_ready(status):
    return status["converged"] and all(
        replica["state"] == "ready" for app in status["apps"].values() for replica in app["replicas"])


def replica_view(status):
    return {(name, r["index"]): (r["pid"], r["restarts"]) for name, app in status["apps"].items() for r in app["replicas"]}


def run(args):
    client = load_client()
    workdir = tempfile.mkdtemp(prefix="gib-", dir="/tmp")
    webroot = os.path.join(workdir, "www")
    os.mkdir(webroot)
    socket_path = os.path.join(workdir, "init.sock")
    argv = [sys.executable, "-I", "-S", "-c", BOOT_CODE, "--socket", socket_path, "--state-dir", os.path.join(workdir, "state")]
    if args.cgroup_root:
        argv += ["--cgroup-root", args.cgroup_root]
    with open(os.path.join(workdir, "guest_init.log"), "wb") as log:
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    try:
        client.wait_for_hello(socket_path, 10.0)
        with client.GuestChannel(socket_path, timeout=10.0) as channel:
            return measure(channel, args, webroot)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
        shutil.rmtree(workdir, ignore_errors=True)


def measure(channel, args, webroot):
    apps = apps_spec(args.apps, args.replicas, webroot)
    started = time.monotonic()
    channel.request("apply", {"generation": 1, "apps": apps})
    status = wait_for(channel, everything_ready, "all replicas ready")
    apply_to_ready_ms = (time.monotonic() - started) * 1000
    rss_kib = status["rss_kib"]

    before = replica_view(status)
    reply = channel.request("apply", {"generation": 2, "apps": apps})
    time.sleep(0.5)
    after = replica_view(wait_for(channel, everything_ready, "ready after the no-op apply"))
    noop_restarts = sum(1 for key, value in before.items() if after.get(key) != value)
    assert reply["changes"]["unchanged"] == [app["name"] for app in apps], reply

    restart_ms, ready_ms = [], []
    for number in range(min(args.crashes, args.apps * args.replicas)):
        name, index = "app%02d" % (number % args.apps), number // args.apps
        old_pid = after[(name, index)][0]
        killed = time.monotonic()
        os.kill(old_pid, signal.SIGKILL)
        wait_for(channel, lambda s, n=name, i=index, p=old_pid: s["apps"][n]["replicas"][i]["pid"] not in (None, p), "restart")
        restart_ms.append((time.monotonic() - killed) * 1000)
        wait_for(channel, lambda s, n=name, i=index: s["apps"][n]["replicas"][i]["state"] == "ready", "ready again")
        ready_ms.append((time.monotonic() - killed) * 1000)
    return {
        "replicas": args.apps * args.replicas,
        "apply_to_ready_ms": round(apply_to_ready_ms, 1),
        "guest_init_rss_kib": rss_kib,
        "noop_apply_restarts": noop_restarts,
        "restart_after_crash_ms": round(statistics.median(restart_ms), 1),
        "restart_after_crash_max_ms": round(max(restart_ms), 1),
        "restart_to_ready_ms": round(statistics.median(ready_ms), 1),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--apps", type=int, default=10)
    parser.add_argument("--replicas", type=int, default=3)
    parser.add_argument("--crashes", type=int, default=10)
    parser.add_argument("--cgroup-root", help="a delegated cgroup v2 directory (default: no cgroups)")
    args = parser.parse_args()
    if shutil.which("busybox") is None:
        sys.exit("busybox is needed (Debian package busybox-static)")
    result = run(args)
    targets = {"restart_after_crash_ms": "<= 200", "noop_apply_restarts": "== 0", "guest_init_rss_kib": "<= 40960"}
    print("%-28s %12s  %s" % ("metric", "value", "target"))
    for key, value in result.items():
        print("%-28s %12s  %s" % (key, value, targets.get(key, "")))
    print(json.dumps(result, sort_keys=True))


if __name__ == "__main__":
    main()
