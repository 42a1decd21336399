"""Talking garbage to guest_init and proving it still serves: a raw client that sends any bytes,
then resyncs (0xFF + sync) and pings, and returns every reply that came back in between."""

import json
import secrets
import socket
import time

ERROR_CODES = {"bad_json", "line_too_long", "bad_request", "unknown_op", "unsupported_version", "not_ready"}
SYNC = b"\xff"


def connect_unix(path, timeout=10.0):
    """A connected socket, retrying while the listener's backlog is full: connect() says EAGAIN
    then (guest_init and QEMU serve one client at a time; the others queue in a short backlog)."""
    deadline = time.monotonic() + timeout
    while True:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        try:
            sock.connect(path)
            return sock
        except BlockingIOError:
            sock.close()
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)


class FuzzClient:
    """One connection; ``exchange(payload)`` sends payload, then proves the guest is alive."""

    def __init__(self, path, timeout=10.0):
        self.sock = connect_unix(path, timeout)
        self.timeout = timeout

    def close(self):
        self.sock.close()

    def send(self, data):
        self.sock.sendall(data)

    def exchange(self, payload):
        """Send payload, then 0xFF + sync + ping; return the replies to payload (parsed lines).

        Fails if the sync and ping replies do not come back in time."""
        marker = "fz-" + secrets.token_hex(6)
        self.sock.sendall(payload)
        self.sock.sendall(SYNC + b'{"id":"%s-s","op":"sync"}\n{"id":"%s-p","op":"ping"}\n' % (marker.encode(), marker.encode()))
        sync_reply = SYNC + b'{"id":"%s-s","result":{}}\n' % marker.encode()
        ping_reply = b'{"id":"%s-p","result":{}}\n' % marker.encode()
        received = bytearray()
        deadline = time.monotonic() + self.timeout
        while not received.endswith(sync_reply + ping_reply):
            if time.monotonic() > deadline:
                raise AssertionError("no sync+ping reply within %.0f s; got %r" % (self.timeout, bytes(received[-400:])))
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise AssertionError("guest_init closed the connection; got %r" % bytes(received[-400:]))
            received += chunk
        before = bytes(received[:-len(sync_reply + ping_reply)])
        return [parse_reply(line) for line in before.replace(SYNC, b"").split(b"\n") if line]


def parse_reply(line):
    reply = json.loads(line)
    assert isinstance(reply, dict), line
    return reply


def check_reply(reply):
    """A well-formed reply or event; error replies carry a known code and a message (never `internal`)."""
    if "event" in reply:
        assert set(reply) == {"event", "data"}, reply
        return
    assert set(reply) in ({"id", "result"}, {"id", "error"}), reply
    assert reply["id"] is None or isinstance(reply["id"], (str, int)), reply
    if "error" in reply:
        assert reply["error"]["code"] in ERROR_CODES, reply
        assert isinstance(reply["error"]["message"], str) and reply["error"]["message"], reply
