"""The host client against a scripted fake guest: stale bytes, events, stale replies, timeouts."""

import json
import os
import shutil
import socket
import tempfile
import threading

import pytest
from ansible_collections.goship.core.plugins.module_utils import guest_channel as gc


class FakeGuest:
    """Listens like QEMU's chardev; script(conn) plays the guest side of one connection."""

    def __init__(self, path, script):
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(path)
        self.listener.listen(1)
        self.listener.settimeout(5.0)
        self.script = script
        self.error = None
        self.seen = []
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        try:
            conn = self.listener.accept()[0]
            conn.settimeout(5.0)
            with conn:
                self.script(Conn(conn, self.seen))
        except Exception as exc:  # reported by finish()
            self.error = exc

    def finish(self):
        self.thread.join(5.0)
        self.listener.close()
        assert not self.thread.is_alive()
        if self.error is not None:
            raise self.error


class Conn:
    def __init__(self, sock, seen):
        self.sock = sock
        self.buffer = b""
        self.seen = seen

    def read(self):
        """The next request as a dict, with "_after_ff" telling whether 0xFF came before it."""
        while b"\n" not in self.buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("client closed")
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        after_ff = b"\xff" in line
        request = json.loads(line.rpartition(b"\xff")[2])
        request["_after_ff"] = after_ff
        self.seen.append(request)
        return request

    def send(self, data):
        self.sock.sendall(data)


def line(message):
    return json.dumps(message).encode() + b"\n"


def answer_sync(conn, noise=b""):
    request = conn.read()
    assert request["op"] == "sync" and request["_after_ff"]
    conn.send(noise + b"\xff" + line({"id": request["id"], "result": {}}))


@pytest.fixture
def path():
    directory = tempfile.mkdtemp(prefix="gc-", dir="/tmp")
    yield os.path.join(directory, "init.sock")
    shutil.rmtree(directory, ignore_errors=True)


def test_skips_stale_bytes_events_and_stale_replies(path):
    def script(conn):
        conn.send(b'{"id":"old","result":{}}\n{"event":"x","data":{}}\npartial junk')
        request = conn.read()
        stale_sync = b"\xff" + line({"id": "sync-earlier-client", "result": {}})
        conn.send(b"more junk" + stale_sync + b"\xff" + line({"id": request["id"], "result": {}}))
        request = conn.read()
        conn.send(line({"event": "app_exited", "data": {}}) + line({"id": "stale-1", "result": {"wrong": 1}})
                  + b"not json\n" + line({"id": request["id"], "result": {"pong": True}}))
    guest = FakeGuest(path, script)
    with gc.GuestChannel(path, timeout=5.0) as channel:
        assert channel.request("ping") == {"pong": True}
    guest.finish()
    assert [r["op"] for r in guest.seen] == ["sync", "ping"]
    assert guest.seen[0]["id"].startswith("sync-") and "args" not in guest.seen[1]


def test_error_reply_raises_guest_error(path):
    def script(conn):
        answer_sync(conn)
        request = conn.read()
        assert request["args"] == {"protocol_version": 1}
        conn.send(line({"id": request["id"], "error": {"code": "unsupported_version", "message": "speaks 2"}}))
    guest = FakeGuest(path, script)
    with gc.GuestChannel(path, timeout=5.0) as channel:
        with pytest.raises(gc.GuestError) as caught:
            channel.hello()
    guest.finish()
    assert (caught.value.op, caught.value.code, caught.value.message) == ("hello", "unsupported_version", "speaks 2")


def test_after_a_timeout_the_next_request_resyncs_first(path):
    def script(conn):
        answer_sync(conn)
        first = conn.read()  # never answered in time
        second_sync = conn.read()
        assert second_sync["op"] == "sync" and second_sync["_after_ff"]
        conn.send(line({"id": first["id"], "result": {"late": True}}) + b"\xff" + line({"id": second_sync["id"], "result": {}}))
        request = conn.read()
        conn.send(line({"id": request["id"], "result": {"n": 2}}))
    guest = FakeGuest(path, script)
    with gc.GuestChannel(path, timeout=5.0) as channel:
        with pytest.raises(gc.GuestTimeout):
            channel.request("status", timeout=0.2)
        assert channel.request("status") == {"n": 2}
    guest.finish()
    assert [r["op"] for r in guest.seen] == ["sync", "status", "sync", "status"]


def test_guest_closing_is_a_channel_error_not_a_timeout(path):
    def script(conn):
        answer_sync(conn)
        conn.read()
    guest = FakeGuest(path, script)
    with gc.GuestChannel(path, timeout=5.0) as channel:
        with pytest.raises(gc.GuestChannelError) as caught:
            channel.request("ping")
        assert not isinstance(caught.value, gc.GuestTimeout)
        with pytest.raises(gc.GuestChannelError):
            channel.request("ping")  # closed for good
    guest.finish()


def test_reply_without_result_or_error(path):
    def script(conn):
        answer_sync(conn)
        request = conn.read()
        conn.send(line({"id": request["id"]}))
    guest = FakeGuest(path, script)
    with gc.GuestChannel(path, timeout=5.0) as channel:
        with pytest.raises(gc.GuestChannelError):
            channel.request("ping")
    guest.finish()


def test_silent_guest_times_out_on_connect(path):
    def script(conn):
        conn.read()  # reads the sync, never answers
        with pytest.raises(EOFError):
            conn.read()  # until the client gives up
    guest = FakeGuest(path, script)
    with pytest.raises(gc.GuestTimeout):
        gc.GuestChannel(path, timeout=0.3)
    guest.finish()
