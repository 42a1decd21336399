"""The host side of the channel misbehaving, against guest_init as a host process: a second
client while the first is connected, clients that vanish mid-request (mid-line, mid-giant-line,
before reading a reply, while a large reply is being written), and a crowd of clients.
guest_init keeps serving and the next client's resync finds clean framing.
(The same through QEMU's chardev with a real VM: test_vm_apps_faults.py.)"""

import socket
import threading
import time

import pytest
from ansible_collections.goship.core.plugins.module_utils import guest_channel as gc

from guest_fuzz import FuzzClient, connect_unix
from guest_init_helpers import RawClient
from supervisor_helpers import process_app, supervised, wait_status

MAX_LINE = 1024 * 1024


@pytest.fixture
def guest():
    with supervised() as (process, channel):
        channel.close()  # free the one client slot; each test connects as it needs
        yield process
        log = process.log()
    assert "op failed" not in log and "Traceback" not in log, log[-3000:]


def connected(path, timeout=10.0):
    """A RawClient whose connect waits out a full backlog (see guest_fuzz.connect_unix)."""
    raw = RawClient.__new__(RawClient)
    raw.sock, raw.buffer = connect_unix(path, timeout), b""
    return raw


def served(guest):
    """A fresh client connects, resyncs and gets answers: framing is clean."""
    with gc.GuestChannel(guest.socket_path, timeout=5.0) as channel:
        assert channel.request("ping") == {}
        assert channel.request("status")["pid"] == guest.proc.pid
    assert guest.proc.poll() is None


def test_second_client_waits_then_is_served_when_the_first_drops_mid_request(guest):
    first = RawClient(guest.socket_path)
    first.send(b'{"id":"a","op":"ping"}\n')
    assert first.read_json() == {"id": "a", "result": {}}
    first.send(b'{"id":"half","op":"sta')  # mid-request
    outcome = {}

    def second_client():
        try:
            with gc.GuestChannel(guest.socket_path, timeout=10.0) as channel:
                outcome["ping"] = channel.request("ping")
        except gc.GuestChannelError as exc:
            outcome["error"] = exc
    thread = threading.Thread(target=second_client)
    thread.start()
    time.sleep(0.5)
    assert not outcome, "the second client was served while the first was connected: %s" % outcome
    first.close()
    thread.join(15)
    assert outcome == {"ping": {}}, outcome
    served(guest)


def test_client_gone_before_reading_its_reply(guest):
    for attempt in range(20):
        with connected(guest.socket_path) as raw:
            raw.send(b'{"id":1,"op":"status"}\n{"id":2,"op":"hello","args":{"protocol_version":1}}\n')
    served(guest)


def test_client_gone_mid_giant_line(guest):
    with RawClient(guest.socket_path, timeout=10.0) as raw:
        raw.send(b'{"id":1,"op":"ping","pad":"' + b"x" * (MAX_LINE + 4096))  # past the limit, no newline
    with RawClient(guest.socket_path, timeout=10.0) as raw:
        raw.send(b'y' * 1000 + b'"}\n')  # the tail of the dropped line: a fresh line now, so bad_json
        assert raw.read_json()["error"]["code"] == "bad_json"
    served(guest)


def test_client_gone_while_a_large_reply_is_written(guest):
    with gc.GuestChannel(guest.socket_path, timeout=5.0) as channel:
        channel.request("apply", {"generation": 1, "apps": [
            process_app("chatty", "i=0; while [ $i -lt 3000 ]; do echo line-$i-$(printf '%0200d' 0); i=$((i+1)); done; sleep 600")]})
        wait_status(channel, lambda status: status["apps"]["chatty"]["replicas"][0]["state"] == "ready", 15, "chatty up")
        time.sleep(1.0)
        assert len(channel.request("logs", {"app": "chatty", "tail": 5000})["lines"]) > 200  # ~64 KiB a reply
    logs_request = b'{"id":1,"op":"logs","args":{"app":"chatty","tail":5000}}\n'
    for attempt in range(5):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(5.0)
        sock.connect(guest.socket_path)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.sendall(b"\xff" + logs_request * 40)  # ~2.5 MiB of replies: more than the socket buffers hold
        sock.recv(100)  # the replies have started; leave with most of them unread
        sock.close()
    served(guest)
    assert "host client gone: [Errno" in guest.log(), "the replies never met the closed socket"


def test_apply_sent_by_a_client_that_vanished_still_applies_once(guest):
    with RawClient(guest.socket_path) as raw:
        raw.send(b'\xff{"id":1,"op":"apply","args":{"generation":5,"apps":[]}}\n')
    with gc.GuestChannel(guest.socket_path, timeout=5.0) as channel:
        again = channel.request("apply", {"generation": 5, "apps": []})
        assert again["changes"] == {"added": [], "changed": [], "scaled": [], "removed": [], "unchanged": []}
        assert channel.request("status")["generation"] == 5


def test_a_crowd_of_clients_each_dropping_at_a_different_point(guest):
    """40 clients at once (past the listen backlog of 8): each sends part of a request and leaves."""
    request = b'\xff{"id":"c","op":"status"}\n'
    errors = []

    def client(cut):
        try:
            with connected(guest.socket_path, timeout=20.0) as raw:
                raw.send(request[:cut])
        except OSError as exc:
            errors.append(exc)
    threads = [threading.Thread(target=client, args=(index % (len(request) + 1),)) for index in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors, errors
    served(guest)
    fuzz = FuzzClient(guest.socket_path)
    try:
        assert fuzz.exchange(b"") == []
    finally:
        fuzz.close()
