# Copyright: Contributors to the GoShip project
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Host-side client of guest_init over the VM's virtio-serial channel (protocol v1).

QEMU listens on the per-VM ``init.sock`` and forwards one client at a time to the guest's
port ``org.goship.init.0``. The stream can hold stale bytes from an earlier client in either
direction, so the client resynchronises as qemu-ga clients do: on every connect, and before
the first request after a timeout, it sends the byte 0xFF and a ``sync`` request with a
random id, then drops everything up to a 0xFF sentinel followed by the matching reply.

See docs/architecture.md ("Host <-> guest protocol, version 1") and docs/guest_init.md.
"""

from __future__ import annotations

import json
import os
import select
import socket
import time

PROTOCOL_VERSION = 1
SYNC_BYTE = b"\xff"
MAX_REPLY_BYTES = 64 * 1024 * 1024
DEFAULT_TIMEOUT = 10.0
SYNC_ATTEMPT_S = 5.0  # per connection, before reconnecting
CONNECT_RETRY_S = 0.02


class GuestChannelError(Exception):
    """The channel failed: cannot connect, connection lost, or the guest sent nonsense."""


class GuestTimeout(GuestChannelError):
    """No answer in time. The channel resyncs before its next request."""


class GuestError(GuestChannelError):
    """guest_init answered with an error reply."""

    def __init__(self, op, code, message):
        super().__init__("guest_init %s failed: %s: %s" % (op, code, message))
        self.op = op
        self.code = code
        self.message = message


class GuestChannel:
    """A connection to guest_init. Connecting syncs the stream; use as a context manager.

    Only one client can talk to a VM at a time: QEMU keeps a second connection waiting
    until the first closes, which shows here as a GuestTimeout.
    """

    def __init__(self, path, timeout=DEFAULT_TIMEOUT):
        self.path = path
        self.timeout = timeout
        self._sock = None
        self._buffer = bytearray()
        self._id_prefix = os.urandom(4).hex()
        self._next_id = 0
        self._needs_sync = True
        self._connect_and_sync()

    def _connect_and_sync(self):
        """Connect and resync, reconnecting after a silent attempt until ``timeout`` has passed.

        Guests whose guest_init predates the fix dropped the sync reply when the guest kernel
        still said "no host" (right after another client left, under load; docs/guest_init.md,
        "Channel reconnects"); and by QEMU's code (not seen here) a port's output can stay
        throttled until the next disconnect. A short attempt and a fresh connection recover both.
        """
        deadline = time.monotonic() + self.timeout
        while True:
            self._connect()
            attempt = min(SYNC_ATTEMPT_S, max(0.0, deadline - time.monotonic()))
            try:
                self.sync(attempt)
                return
            except GuestTimeout:
                self.close()
                if time.monotonic() + 0.05 >= deadline:
                    raise
            except BaseException:
                self.close()
                raise

    def _connect(self):
        deadline = time.monotonic() + self.timeout
        while True:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(self.timeout)
            try:
                sock.connect(self.path)
                break
            except BlockingIOError:
                # EAGAIN: the listen backlog is full. QEMU listens with a backlog of one and
                # re-listens only once the previous client is gone, so a client that comes right
                # after another (or while one is connected) sees this: the guest is busy, not gone.
                sock.close()
                if time.monotonic() >= deadline:
                    raise GuestTimeout("connecting to %s timed out: another client holds the channel" % self.path) from None
                time.sleep(CONNECT_RETRY_S)
            except socket.timeout:
                sock.close()
                raise GuestTimeout("connecting to %s timed out" % self.path) from None
            except OSError as exc:
                sock.close()
                raise GuestChannelError("cannot connect to %s: %s" % (self.path, exc)) from exc
        sock.setblocking(False)  # every wait goes through select() with the request's deadline
        self._sock = sock

    def close(self):
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def sync(self, timeout=None):
        """Resynchronise the stream: afterwards, the next line read is a fresh reply."""
        deadline = self._deadline(timeout)
        sync_id = "sync-" + os.urandom(8).hex()
        self._needs_sync = True
        self._send(SYNC_BYTE + _encode({"id": sync_id, "op": "sync"}), deadline, "sync")
        while True:
            self._skip_past_sentinel(deadline)
            reply = _decode(self._read_line(deadline, "sync"))
            if isinstance(reply, dict) and reply.get("id") == sync_id and "result" in reply:
                self._needs_sync = False
                return

    def request(self, op, args=None, timeout=None):
        """Send one request and return its result; raise GuestError on an error reply."""
        deadline = self._deadline(timeout)
        if self._needs_sync:
            self.sync(max(0.0, deadline - time.monotonic()))
        self._next_id += 1
        request_id = "%s-%d" % (self._id_prefix, self._next_id)
        request = {"id": request_id, "op": op}
        if args is not None:
            request["args"] = args
        self._send(_encode(request), deadline, op)
        while True:
            reply = _decode(self._read_line(deadline, op))
            if not isinstance(reply, dict) or "event" in reply or reply.get("id") != request_id:
                continue  # events, stale replies of an earlier client or request
            error = reply.get("error")
            if error is not None:
                if not isinstance(error, dict):
                    error = {"code": "unknown", "message": repr(error)}
                raise GuestError(op, error.get("code"), error.get("message"))
            if "result" not in reply:
                raise GuestChannelError("reply to %s has neither result nor error" % op)
            return reply["result"]

    def hello(self, timeout=None):
        """The protocol handshake; returns guest_init's hello result."""
        return self.request("hello", {"protocol_version": PROTOCOL_VERSION}, timeout)

    def _deadline(self, timeout):
        return time.monotonic() + (self.timeout if timeout is None else timeout)

    def _require_socket(self):
        if self._sock is None:
            raise GuestChannelError("channel to %s is closed" % self.path)
        return self._sock

    def _send(self, data, deadline, what):
        sock = self._require_socket()
        view = memoryview(data)
        while view:
            self._wait(sock, deadline, what, write=True)
            try:
                sent = sock.send(view)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError as exc:
                self.close()
                raise GuestChannelError("sending %s to %s failed: %s" % (what, self.path, exc)) from exc
            view = view[sent:]

    def _recv(self, deadline, what):
        sock = self._require_socket()
        self._wait(sock, deadline, what, write=False)
        try:
            data = sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self.close()
            raise GuestChannelError("reading from %s failed: %s" % (self.path, exc)) from exc
        if not data:
            self.close()
            raise GuestChannelError("%s closed the connection (VM stopped?)" % self.path)
        self._buffer += data

    def _wait(self, sock, deadline, what, write):
        remaining = deadline - time.monotonic()
        if remaining > 0:
            ready = select.select([], [sock], [], remaining) if write else select.select([sock], [], [], remaining)
            if ready[1 if write else 0]:
                return
        self._needs_sync = True
        raise GuestTimeout("no answer to %s from %s in time" % (what, self.path))

    def _skip_past_sentinel(self, deadline):
        while True:
            sentinel = self._buffer.find(SYNC_BYTE)
            if sentinel >= 0:
                del self._buffer[:sentinel + 1]
                return
            self._buffer.clear()
            self._recv(deadline, "sync")

    def _read_line(self, deadline, what):
        while True:
            newline = self._buffer.find(b"\n")
            if newline >= 0:
                line = bytes(self._buffer[:newline])
                del self._buffer[:newline + 1]
                return line
            if len(self._buffer) > MAX_REPLY_BYTES:
                self.close()
                raise GuestChannelError("line from %s longer than %d bytes" % (self.path, MAX_REPLY_BYTES))
            self._recv(deadline, what)


def _encode(message):
    return json.dumps(message, separators=(",", ":")).encode("ascii") + b"\n"


def _decode(line):
    """The JSON value of a line, or None for anything that is not JSON."""
    try:
        return json.loads(line.decode("utf-8"))
    except ValueError:
        return None


def wait_for_hello(path, timeout, attempt_timeout=5.0, retry_interval=0.2):
    """Wait up to timeout seconds for guest_init to answer hello on path; return its result.

    Covers a VM still starting: the socket missing or refusing (QEMU not up yet), and a
    connected but silent guest (kernel still booting: each attempt resyncs anew).
    """
    deadline = time.monotonic() + timeout
    last_error = None
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise GuestTimeout("guest_init on %s did not answer hello within %.1f s (last: %s)" % (path, timeout, last_error))
        try:
            with GuestChannel(path, min(attempt_timeout, remaining)) as channel:
                return channel.hello(max(0.1, deadline - time.monotonic()))
        except GuestError:
            raise
        except GuestChannelError as exc:
            last_error = exc
        time.sleep(max(0.0, min(retry_interval, deadline - time.monotonic())))
