"""guest_init as an ordinary process over a Unix socket, driven by the real host client."""

import json
import os
import shutil
import socket
import tempfile

import pytest
from ansible_collections.goship.core.plugins.module_utils import guest_channel as gc

from guest_init_helpers import GuestInitProcess, RawClient


@pytest.fixture
def workdir():
    path = tempfile.mkdtemp(prefix="gi-", dir="/tmp")  # short: Unix socket paths max 107 bytes
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def guest(workdir):
    with GuestInitProcess(workdir) as process:
        yield process


@pytest.fixture
def channel(guest):
    with gc.GuestChannel(guest.socket_path, timeout=5.0) as chan:
        yield chan


def test_hello(channel):
    hello = channel.hello()
    assert hello["protocol_version"] == 1
    assert hello["guest_init_version"]
    assert set(hello["ops"]) >= {"hello", "sync", "ping", "status", "shutdown"}
    assert hello["hostname"] == os.uname().nodename
    with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as boot_id:
        assert hello["boot_id"] == boot_id.read().strip()


def test_hello_with_other_protocol_version_is_refused(channel):
    with pytest.raises(gc.GuestError) as caught:
        channel.request("hello", {"protocol_version": 2})
    assert caught.value.code == "unsupported_version"


def test_ping(channel):
    assert channel.request("ping") == {}


def test_status_fields(channel, guest):
    status = channel.request("status")
    assert set(status) == {"uptime_s", "rss_kib", "kernel", "protocol_version", "hostname", "pid", "generation", "apps",
                           "converged", "cgroup", "guest", "measurement", "policy"}
    assert status["measurement"]["state"] == "unmeasured" and status["policy"]["apply"] == "allowed"
    assert status["pid"] == guest.proc.pid
    assert status["kernel"] == os.uname().release
    assert status["protocol_version"] == 1
    assert status["generation"] is None and status["apps"] == {}
    assert isinstance(status["uptime_s"], float) and status["uptime_s"] > 0
    assert 0 < status["rss_kib"] <= 25 * 1024, "guest_init RSS over budget: %d KiB" % status["rss_kib"]


def test_sync_discards_stale_partial_line(guest):
    with RawClient(guest.socket_path) as raw:
        raw.send(b'{"id": "stale", "op": "pi')  # a partial line left by an "earlier client"
        raw.send(b'\xff{"id":"s1","op":"sync"}\n{"id":2,"op":"ping"}\n')
        data = raw.read_line()
        assert data == b'\xff{"id":"s1","result":{}}'
        assert raw.read_json() == {"id": 2, "result": {}}


def test_second_client_waits_like_qemu(guest):
    with gc.GuestChannel(guest.socket_path, timeout=5.0) as first:
        with pytest.raises(gc.GuestTimeout):
            gc.GuestChannel(guest.socket_path, timeout=0.5)
        assert first.request("ping") == {}


@pytest.mark.parametrize("line, code", [
    (b"not json at all", "bad_json"),
    (b"\x80\x81\x82", "bad_json"),
    (b"[1, 2, 3]", "bad_request"),
    (b'"a string"', "bad_request"),
    (b'{"op": "ping"}', "bad_request"),
    (b'{"id": true, "op": "ping"}', "bad_request"),
    (b'{"id": [1], "op": "ping"}', "bad_request"),
    (b'{"id": 1.5, "op": "ping"}', "bad_request"),
])
def test_garbage_gets_error_with_null_id_and_serving_goes_on(guest, line, code):
    with RawClient(guest.socket_path) as raw:
        raw.send(line + b"\n")
        reply = raw.read_json()
        assert reply["id"] is None and reply["error"]["code"] == code, reply
        assert reply["error"]["message"]
        raw.send(b'{"id":7,"op":"ping"}\n')
        assert raw.read_json() == {"id": 7, "result": {}}


@pytest.mark.parametrize("request_, code, named", [
    ({"id": 1, "op": "frobnicate"}, "unknown_op", "frobnicate"),
    ({"id": 1, "op": "ping", "extra": 1}, "bad_request", "extra"),
    ({"id": 1, "op": 5}, "bad_request", "op"),
    ({"id": 1, "op": "ping", "args": [1]}, "bad_request", "args"),
    ({"id": 1, "op": "ping", "args": {"bogus": 1}}, "bad_request", "bogus"),
    ({"id": 1, "op": "hello", "args": {}}, "bad_request", "protocol_version"),
    ({"id": 1, "op": "hello", "args": {"protocol_version": "1"}}, "bad_request", "protocol_version"),
    ({"id": 1, "op": "hello", "args": {"protocol_version": True}}, "bad_request", "protocol_version"),
    ({"id": 1, "op": "shutdown", "args": {"reboot": 1}}, "bad_request", "reboot"),
])
def test_bad_requests_echo_id_and_name_the_field(guest, request_, code, named):
    with RawClient(guest.socket_path) as raw:
        raw.send(json.dumps(request_).encode() + b"\n")
        reply = raw.read_json()
        assert reply["id"] == 1 and reply["error"]["code"] == code, reply
        assert named in reply["error"]["message"]
    assert guest.proc.poll() is None


def test_unknown_op_and_field_through_client(channel):
    with pytest.raises(gc.GuestError) as caught:
        channel.request("no_such_op")
    assert caught.value.code == "unknown_op"
    with pytest.raises(gc.GuestError) as caught:
        channel.request("status", {"verbose": True})
    assert caught.value.code == "bad_request" and "verbose" in caught.value.message
    assert channel.request("ping") == {}


def test_line_of_exactly_max_length_is_served(guest):
    request = b'{"id":3,"op":"ping"}'
    line = request[:-1] + b" " * (1024 * 1024 - len(request)) + b"}"
    assert len(line) == 1024 * 1024
    with RawClient(guest.socket_path) as raw:
        raw.send(line + b"\n")
        assert raw.read_json() == {"id": 3, "result": {}}


def test_over_long_line_is_refused_then_serving_goes_on(guest):
    with RawClient(guest.socket_path, timeout=10.0) as raw:
        raw.send(b'{"id":1,"op":"ping","pad":"' + b"x" * (1024 * 1024) + b'"}\n')
        reply = raw.read_json()
        assert reply["id"] is None and reply["error"]["code"] == "line_too_long"
        raw.send(b'{"id":2,"op":"ping"}\n')
        assert raw.read_json() == {"id": 2, "result": {}}  # the rest of the long line made no reply
    with gc.GuestChannel(guest.socket_path, timeout=5.0) as channel:
        assert channel.request("ping") == {}


def test_disconnect_mid_line_then_new_client_resyncs(guest):
    with RawClient(guest.socket_path) as raw:
        raw.send(b'{"id":"x","op":"shut')
    with gc.GuestChannel(guest.socket_path, timeout=5.0) as channel:
        assert channel.request("ping") == {}
        assert channel.hello()["protocol_version"] == 1
    assert guest.proc.poll() is None


def test_timeout_then_next_request_resyncs(channel, guest):
    os.kill(guest.proc.pid, 19)  # SIGSTOP: the guest stops answering
    try:
        with pytest.raises(gc.GuestTimeout):
            channel.request("ping", timeout=0.3)
    finally:
        os.kill(guest.proc.pid, 18)  # SIGCONT: the late ping reply is now stale
    assert channel.request("status")["pid"] == guest.proc.pid


def test_shutdown_exits_the_process(channel, guest):
    assert channel.request("shutdown") == {"accepted": True}
    assert guest.proc.wait(5) == 0
    assert not os.path.exists(guest.socket_path)
    assert "shutdown requested (shutdown op)" in guest.log()


def test_sigterm_exits_the_process(guest):
    guest.proc.terminate()
    assert guest.proc.wait(5) == 0
    assert "shutdown requested (SIGTERM)" in guest.log()


def test_wait_for_hello_covers_a_guest_that_starts_late(workdir):
    process = GuestInitProcess(workdir)
    with socket.socket(socket.AF_UNIX) as not_listening:  # socket file exists, connect refused
        not_listening.bind(process.socket_path)
    try:
        import threading
        starter = threading.Timer(0.5, lambda: process.start(wait=False))
        starter.start()
        hello = gc.wait_for_hello(process.socket_path, 10.0)
        starter.join(5)
        assert hello["protocol_version"] == 1
    finally:
        starter.cancel()
        process.stop()


def test_wait_for_hello_gives_up_in_time(workdir):
    import time
    started = time.monotonic()
    with pytest.raises(gc.GuestTimeout):
        gc.wait_for_hello(os.path.join(workdir, "missing.sock"), 0.5)
    assert time.monotonic() - started < 2.0


def test_connect_refused_is_a_channel_error(workdir):
    path = os.path.join(workdir, "dead.sock")
    with socket.socket(socket.AF_UNIX) as not_listening:
        not_listening.bind(path)
    with pytest.raises(gc.GuestChannelError) as caught:
        gc.GuestChannel(path, timeout=1.0)
    assert not isinstance(caught.value, gc.GuestTimeout)
