"""apply as a diff, driven over the socket by the real client: guest_init as a host process
with the process runtime."""

import json
import os
import shutil
import tempfile
import time

import pytest
from ansible_collections.goship.core.plugins.module_utils import guest_channel as gc

from guest_init_helpers import RawClient
from supervisor_helpers import all_ready, alive, free_port, pids, process_app, replicas, supervised, wait_status

SLEEPER = "exec sleep 300"


@pytest.fixture
def guest():
    with supervised() as pair:
        yield pair


def test_apply_starts_replicas_with_their_env(guest):
    process, channel = guest
    reply = channel.request("apply", {"generation": 1, "apps": [
        process_app("web", 'echo "app=$GOSHIP_APP replica=$GOSHIP_REPLICA port=$PORT"; ' + SLEEPER, replicas=2, ports=[18000])]})
    assert reply == {"accepted": True, "generation": 1, "changes": {
        "added": ["web"], "changed": [], "scaled": [], "removed": [], "unchanged": []}}
    status = wait_status(channel, all_ready("web"), what="2 replicas ready")
    assert status["generation"] == 1
    web = status["apps"]["web"]
    assert [r["index"] for r in web["replicas"]] == [0, 1]
    assert all(alive(pid) for pid in pids(status, "web"))
    for replica in web["replicas"]:
        assert replica["restarts"] == 0 and replica["last_error"] is None and replica["started_at"] > 0
        assert os.getpgid(replica["pid"]) == replica["pid"]  # its own process group
    wait_status(channel, lambda s: len(channel.request("logs", {"app": "web"})["lines"]) >= 4, what="log lines")
    texts = [line["text"] for line in channel.request("logs", {"app": "web"})["lines"] if line["stream"] == "stdout"]
    assert sorted(texts) == ["app=web replica=0 port=18000", "app=web replica=1 port=18001"]
    assert [line["text"] for line in channel.request("logs", {"app": "web", "replica": 1, "tail": 1})["lines"]] == [
        "app=web replica=1 port=18001"]


def test_same_spec_again_changes_nothing(guest):
    process, channel = guest
    apps = [process_app("a", SLEEPER, replicas=2), process_app("b", SLEEPER)]
    channel.request("apply", {"generation": 1, "apps": apps})
    before = wait_status(channel, all_ready("a", "b"))
    reply = channel.request("apply", {"generation": 2, "apps": apps})
    assert reply["changes"]["unchanged"] == ["a", "b"]
    time.sleep(0.3)
    after = wait_status(channel, all_ready("a", "b"))
    assert pids(after, "a") == pids(before, "a") and pids(after, "b") == pids(before, "b")
    assert after["generation"] == 2
    assert all(r["restarts"] == 0 for app in ("a", "b") for r in replicas(after, app))


def test_dry_run_reports_the_diff_and_changes_nothing(guest):
    process, channel = guest
    channel.request("apply", {"generation": 1, "apps": [process_app("a", SLEEPER), process_app("b", SLEEPER)]})
    before = wait_status(channel, all_ready("a", "b"))
    reply = channel.request("apply", {"generation": 2, "dry_run": True,
                                      "apps": [process_app("a", SLEEPER, replicas=3), process_app("c", SLEEPER)]})
    assert reply == {"accepted": False, "generation": 2, "changes": {
        "added": ["c"], "changed": [], "scaled": ["a"], "removed": ["b"], "unchanged": []}}
    time.sleep(0.3)
    after = wait_status(channel, all_ready("a", "b"))
    assert after["generation"] == 1 and sorted(after["apps"]) == ["a", "b"]
    assert pids(after, "a") == pids(before, "a") and pids(after, "b") == pids(before, "b")


def test_scale_up_then_down_removes_highest_indices(guest):
    process, channel = guest
    channel.request("apply", {"generation": 1, "apps": [process_app("w", SLEEPER, replicas=2)]})
    first = pids(wait_status(channel, all_ready("w")), "w")
    assert channel.request("apply", {"generation": 2, "apps": [process_app("w", SLEEPER, replicas=4)]})["changes"]["scaled"] == ["w"]
    status = wait_status(channel, lambda s: all_ready("w")(s) and len(replicas(s, "w")) == 4)
    assert pids(status, "w")[:2] == first
    channel.request("apply", {"generation": 3, "apps": [process_app("w", SLEEPER, replicas=1, stop_grace_s=2)]})
    status = wait_status(channel, lambda s: all_ready("w")(s) and len(replicas(s, "w")) == 1)
    assert [r["index"] for r in replicas(status, "w")] == [0] and pids(status, "w") == first[:1]
    assert not alive(first[1])


def test_changed_app_is_replaced_one_replica_at_a_time_and_others_untouched(guest):
    process, channel = guest
    log = os.path.join(str(process.directory), "events")
    port = free_port()
    # the replica logs its start before it listens, and its stop; ready = its port accepts
    script = ('echo "start $GOSHIP_REPLICA $V" >> {log}; busybox httpd -f -p 127.0.0.1:$PORT -h / & server=$!; '
              'trap "kill $server; echo stop $GOSHIP_REPLICA $V >> {log}; exit 0" TERM; wait').format(log=log)

    def apps(version):
        return [process_app("web", script, replicas=3, env={"V": version}, stop_grace_s=5, ports=[port],
                            health={"readiness": {"tcp": {}, "interval_s": 0.05}}),
                process_app("db", SLEEPER)]
    channel.request("apply", {"generation": 1, "apps": apps("v1")})
    before = wait_status(channel, all_ready("web", "db"))
    reply = channel.request("apply", {"generation": 2, "apps": apps("v2")})
    assert reply["changes"]["changed"] == ["web"] and reply["changes"]["unchanged"] == ["db"]
    after = wait_status(channel, lambda s: all_ready("web", "db")(s) and all(
        r["spec_hash"] == s["apps"]["web"]["spec_hash"] for r in replicas(s, "web")), what="rollout done")
    assert pids(after, "db") == pids(before, "db")
    assert not set(pids(after, "web")) & set(pids(before, "web"))
    with open(log, encoding="ascii") as events:
        lines = [line.split() for line in events.read().splitlines()]
    # v1 started (any order), then per index: v1 stops before v2 of that index starts, index by index
    rollout = [line for line in lines if not (line[0] == "start" and line[2] == "v1")]
    assert rollout == [["stop", "0", "v1"], ["start", "0", "v2"], ["stop", "1", "v1"], ["start", "1", "v2"],
                       ["stop", "2", "v1"], ["start", "2", "v2"]], rollout


def test_removed_app_gets_sigterm_then_sigkill_after_the_grace(guest):
    process, channel = guest
    stubborn = process_app("stubborn", 'trap "" TERM; while :; do sleep 0.05; done', stop_grace_s=0.5)
    polite = process_app("polite", SLEEPER, stop_grace_s=5)
    channel.request("apply", {"generation": 1, "apps": [stubborn, polite]})
    status = wait_status(channel, all_ready("stubborn", "polite"))
    stubborn_pid, polite_pid = pids(status, "stubborn")[0], pids(status, "polite")[0]
    started = time.monotonic()
    reply = channel.request("apply", {"generation": 2, "apps": []})
    assert sorted(reply["changes"]["removed"]) == ["polite", "stubborn"]
    status = wait_status(channel, lambda s: "polite" not in s["apps"], timeout=3)
    assert not alive(polite_pid)
    wait_status(channel, lambda s: s["apps"] == {}, timeout=3)
    elapsed = time.monotonic() - started
    assert not alive(stubborn_pid)
    assert 0.45 <= elapsed < 2.0, elapsed
    assert "stubborn-0-" in process.log() and "SIGKILL" in process.log()


def test_invalid_spec_names_the_field_and_changes_nothing(guest):
    process, channel = guest
    channel.request("apply", {"generation": 1, "apps": [process_app("ok", SLEEPER)]})
    before = wait_status(channel, all_ready("ok"))
    bad_apps = [
        ([process_app("ok", SLEEPER), process_app("bad", SLEEPER, replicas=-1)], "apps[1].replicas"),
        ([process_app("Bad_Name", SLEEPER)], "apps[0].name"),
        ([process_app("ok", SLEEPER, health={"liveness": {"tcp": {}}})], "apps[0].health.liveness.tcp.port"),
        ([process_app("ok", SLEEPER, colour="red")], "apps[0].colour"),
        ([process_app("ok", SLEEPER, depends_on=["nope"])], "apps[0].depends_on[0]"),
    ]
    for apps, field in bad_apps:
        with pytest.raises(gc.GuestError) as caught:
            channel.request("apply", {"generation": 2, "apps": apps})
        assert caught.value.code == "bad_request" and caught.value.message.startswith(field + ":"), caught.value.message
    with pytest.raises(gc.GuestError) as caught:
        channel.request("apply", {"generation": 0, "apps": []})
    assert "older" in caught.value.message
    after = channel.request("status")
    assert after["generation"] == 1 and pids(after, "ok") == pids(before, "ok") and list(after["apps"]) == ["ok"]


def test_garbage_on_the_channel_while_apps_run(guest):
    process, channel = guest
    channel.request("apply", {"generation": 1, "apps": [process_app("w", SLEEPER, replicas=2)]})
    before = wait_status(channel, all_ready("w"))
    channel.close()
    with RawClient(process.socket_path) as raw:
        raw.send(b"\x00\x01 not json\n{\"id\": 1, \"op\": \"apply\", \"args\": {\"generation\": \"x\"}}\n" + b"x" * 2000 + b"\xff")
        assert raw.read_json()["error"]["code"] == "bad_json"
        assert raw.read_json()["error"]["code"] == "bad_request"
        raw.send(b'{"id": 2, "op": "apply", "args": {"generation": 3, "apps": [{"name": 7}]}}\n')
        reply = raw.read_json()
        assert reply["error"]["code"] == "bad_request" and "apps[0].name" in reply["error"]["message"]
    with process.channel() as again:
        after = again.request("status")
    assert pids(after, "w") == pids(before, "w") and after["generation"] == 1


def test_signal_op_kills_one_replica_and_it_comes_back(guest):
    process, channel = guest
    channel.request("apply", {"generation": 1, "apps": [process_app("w", SLEEPER, replicas=2)]})
    before = wait_status(channel, all_ready("w"))
    reply = channel.request("signal", {"app": "w", "replica": 1, "signal": "KILL"})
    assert reply == {"signal": "SIGKILL", "signalled": [{"replica": 1, "pid": pids(before, "w")[1]}]}
    after = wait_status(channel, lambda s: all_ready("w")(s) and replicas(s, "w")[1]["restarts"] == 1)
    replica = replicas(after, "w")[1]
    assert replica["exit_signal"] == "SIGKILL" and replica["pid"] != pids(before, "w")[1]
    assert pids(after, "w")[0] == pids(before, "w")[0]
    with pytest.raises(gc.GuestError) as caught:
        channel.request("signal", {"app": "w", "signal": "NOPE"})
    assert caught.value.message.startswith("signal:")


def test_spec_is_persisted_and_reapplied_after_a_restart():
    workdir = tempfile.mkdtemp(prefix="gs-", dir="/tmp")
    try:
        with supervised(directory=workdir) as (process, channel):
            channel.request("apply", {"generation": 4, "apps": [process_app("w", SLEEPER, replicas=2)]})
            first = pids(wait_status(channel, all_ready("w")), "w")
            spec_file = os.path.join(process.state_dir, "spec.json")
            assert os.stat(spec_file).st_mode & 0o777 == 0o600
            with open(spec_file, encoding="utf-8") as handle:
                assert json.load(handle)["generation"] == 4
        assert not any(alive(pid) for pid in first)  # stopped with guest_init
        with supervised(directory=workdir) as (process, channel):
            status = wait_status(channel, all_ready("w"))
            assert status["generation"] == 4 and len(replicas(status, "w")) == 2
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
