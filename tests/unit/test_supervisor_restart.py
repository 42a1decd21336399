"""Supervision over the socket: restart backoff, give-up, health checks, logs, secrets."""

import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from supervisor_helpers import SECRET, all_ready, free_port, pids, process_app, replicas, supervised, wait_status

SLEEPER = "exec sleep 300"


@pytest.fixture
def guest():
    with supervised() as pair:
        yield pair


def start_times(channel, app):
    lines = channel.request("logs", {"app": app, "tail": 1000})["lines"]
    return [line["ts"] for line in lines if line["stream"] == "init" and line["text"].startswith("started ")]


def test_crash_loop_restarts_with_doubling_backoff(guest):
    process, channel = guest
    channel.request("apply", {"generation": 1, "apps": [process_app("crash", "exit 3")]})
    wait_status(channel, lambda s: len(start_times(channel, "crash")) >= 5, timeout=5, what="5 starts")
    starts = start_times(channel, "crash")
    gaps = [b - a for a, b in zip(starts, starts[1:])]
    assert gaps[0] < 0.1, gaps  # first restart immediate
    for gap, expected in zip(gaps[1:4], (0.2, 0.4, 0.8)):
        assert expected - 0.02 <= gap <= expected + 0.25, gaps
    replica = replicas(channel.request("status"), "crash")[0]
    assert replica["exit_code"] == 3 and replica["restarts"] >= 4 and replica["state"] in ("backoff", "ready")
    assert replica["last_error"] == "exited: exit 3"


def test_on_failure_gives_up_after_repeated_fast_failures(guest):
    process, channel = guest
    channel.request("apply", {"generation": 1, "apps": [
        process_app("flaky", "exit 1", restart="on-failure"),
        process_app("done", "exit 0", restart="on-failure"),
        process_app("once", "exit 2", restart="never")]})
    status = wait_status(channel, lambda s: replicas(s, "flaky")[0]["state"] == "failed", timeout=5, what="failed")
    flaky = replicas(status, "flaky")[0]
    assert flaky["restarts"] == 4 and flaky["exit_code"] == 1 and flaky["pid"] is None
    assert flaky["last_error"].startswith("gave up after 5 fast failures")
    done, once = replicas(status, "done")[0], replicas(status, "once")[0]
    assert (done["state"], done["restarts"], done["exit_code"]) == ("stopped", 0, 0)
    assert (once["state"], once["restarts"], once["exit_code"]) == ("failed", 0, 2)


def test_killed_replica_comes_back_fast(guest):
    process, channel = guest
    channel.request("apply", {"generation": 1, "apps": [process_app("w", SLEEPER)]})
    first = pids(wait_status(channel, all_ready("w")), "w")[0]
    os.kill(first, 9)
    status = wait_status(channel, lambda s: all_ready("w")(s) and pids(s, "w")[0] != first, timeout=1.0)
    replica = replicas(status, "w")[0]
    assert replica["restarts"] == 1 and replica["exit_signal"] == "SIGKILL" and replica["exit_code"] is None


def test_liveness_failure_restarts_and_readiness_only_reports(guest, tmp_path):
    process, channel = guest
    alive_file, ready_file = tmp_path / "alive", tmp_path / "ready"
    check = {"interval_s": 0.05, "timeout_s": 1, "failure_threshold": 2}
    channel.request("apply", {"generation": 1, "apps": [
        process_app("live", SLEEPER, health={"startup_grace_s": 0.2, "liveness": {"exec": ["test", "-f", str(alive_file)], **check}}),
        process_app("ready", SLEEPER, health={"startup_grace_s": 0.2, "readiness": {"exec": ["test", "-f", str(ready_file)], **check}})]})
    # liveness failing: restarted over and over, with the reason
    status = wait_status(channel, lambda s: replicas(s, "live")[0]["restarts"] >= 1, timeout=5, what="liveness restart")
    assert replicas(status, "live")[0]["last_error"].startswith("liveness: exec check: exit 1")
    # readiness failing: starting, then running once the grace is over, never restarted
    status = wait_status(channel, lambda s: replicas(s, "ready")[0]["state"] == "running", timeout=3)
    ready_pid = pids(status, "ready")[0]
    alive_file.touch()
    ready_file.touch()
    status = wait_status(channel, lambda s: replicas(s, "ready")[0]["state"] == "ready"
                         and replicas(s, "live")[0]["state"] == "ready"
                         and replicas(s, "live")[0]["health"]["liveness"]["status"] == "passing", timeout=5)
    live = replicas(status, "live")[0]
    restarts = live["restarts"]
    ready_file.unlink()
    status = wait_status(channel, lambda s: replicas(s, "ready")[0]["state"] == "running", timeout=3)
    ready = replicas(status, "ready")[0]
    assert ready["pid"] == ready_pid and ready["restarts"] == 0
    assert ready["health"]["readiness"]["status"] == "failing"
    assert replicas(status, "live")[0]["restarts"] == restarts and replicas(status, "live")[0]["pid"] == live["pid"]


def test_http_and_tcp_checks(guest, tmp_path):
    process, channel = guest
    (tmp_path / "index.html").write_text("ok")
    port = free_port()
    server = "exec busybox httpd -f -p 127.0.0.1:$PORT -h %s" % tmp_path
    fast = {"interval_s": 0.05}
    channel.request("apply", {"generation": 1, "apps": [
        process_app("web", server, ports=[port], replicas=2, health={
            "readiness": {"http": {"path": "/index.html"}, **fast}, "liveness": {"tcp": {}, **fast}, "startup_grace_s": 0.1}),
        process_app("missing", server, ports=[free_port()], health={"readiness": {"http": {"path": "/nope"}, **fast}})]})
    status = wait_status(channel, lambda s: all(r["state"] == "ready" and r["health"]["liveness"]["status"] == "passing"
                                                for r in replicas(s, "web"))
                         and replicas(s, "missing")[0]["health"]["readiness"]["failures"] >= 2, timeout=5)
    assert replicas(status, "missing")[0]["health"]["readiness"]["last_error"] == "http /nope: status 404"
    assert replicas(status, "missing")[0]["state"] == "starting"


def test_secret_env_is_never_echoed(guest, tmp_path):
    process, channel = guest
    seen = tmp_path / "seen"
    channel.request("apply", {"generation": 1, "apps": [process_app(
        "leaky", 'echo "token=$TOKEN"; echo "err $TOKEN" >&2; printf %%s "$TOKEN" > %s; %s' % (seen, SLEEPER),
        env={"TOKEN": {"value": SECRET, "secret": True}, "PLAIN": "visible"})]})
    wait_status(channel, all_ready("leaky"))
    wait_status(channel, lambda s: seen.exists() and seen.read_text() == SECRET, what="the app got its secret")
    status = wait_status(channel, lambda s: len(channel.request("logs", {"app": "leaky"})["lines"]) >= 3)
    lines = channel.request("logs", {"app": "leaky"})["lines"]
    assert {line["text"] for line in lines if line["stream"] != "init"} == {"token=********", "err ********"}
    channel.request("signal", {"app": "leaky", "signal": "TERM"})
    wait_status(channel, lambda s: replicas(s, "leaky")[0]["restarts"] == 1)
    everything = json.dumps([channel.request("status"), channel.request("logs", {"app": "leaky"}), status])
    assert SECRET not in everything
    assert SECRET not in process.log()


def test_log_buffer_is_bounded(guest):
    process, channel = guest
    channel.request("apply", {"generation": 1, "apps": [process_app(
        "chatty", "i=0; while [ $i -lt 5000 ]; do echo line $i of output; i=$((i+1)); done; " + SLEEPER)]})
    wait_status(channel, lambda s: channel.request("logs", {"app": "chatty", "tail": 1})["lines"][-1]["text"] == "line 4999 of output",
                timeout=10)
    lines = channel.request("logs", {"app": "chatty", "tail": 5000})["lines"]
    assert 500 < len(lines) < 5000
    assert sum(len(line["text"]) + 32 for line in lines) <= 64 * 1024
    assert [line["text"] for line in lines[-2:]] == ["line 4998 of output", "line 4999 of output"]


def test_start_failure_is_reported_and_retried(guest):
    process, channel = guest
    channel.request("apply", {"generation": 1, "apps": [
        {"name": "typo", "runtime": "process", "image": "/", "command": ["/nonexistent/server"], "restart": "on-failure"}]})
    status = wait_status(channel, lambda s: replicas(s, "typo") and replicas(s, "typo")[0]["state"] == "failed", timeout=5)
    replica = replicas(status, "typo")[0]
    assert replica["pid"] is None and replica["restarts"] == 4
    assert "start failed: exec /nonexistent/server: No such file or directory" in replica["last_error"]


def test_user_workdir_and_root_directory(guest, tmp_path, request):
    process, channel = guest
    out = Path(tempfile.mkdtemp(prefix="gs-who-", dir="/tmp"))  # reachable for uid 65534, unlike tmp_path
    os.chmod(out, 0o777)
    request.addfinalizer(lambda: shutil.rmtree(out, ignore_errors=True))
    channel.request("apply", {"generation": 1, "apps": [
        process_app("who", 'echo "$(id -u):$(id -g) $(pwd)" > %s/who; %s' % (out, SLEEPER), user="65534:65533", workdir="/tmp"),
        {"name": "jailed", "runtime": "process", "image": str(tmp_path), "command": ["/bin/nothing-here"], "restart": "never"}]})
    wait_status(channel, lambda s: (out / "who").exists() and (out / "who").read_text().strip(), what="who file")
    assert (out / "who").read_text().strip() == "65534:65533 /tmp"
    status = wait_status(channel, lambda s: replicas(s, "jailed")[0]["state"] == "failed")
    assert "exec /bin/nothing-here" in replicas(status, "jailed")[0]["last_error"]  # looked up inside the new root
