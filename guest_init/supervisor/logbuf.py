"""Bounded in-memory log of one replica slot: its stdout and stderr lines, newest kept.

Secret env values of the app are masked when a line is completed, so they are never stored.
A line longer than MAX_LINE is cut into pieces (masking cannot see across the cut).
"""

import collections
import os
import time

MAX_LINE = 4096
SECRET_MASK = "********"


class LogBuffer:
    def __init__(self, max_bytes):
        self._max_bytes = max_bytes
        self._bytes = 0
        self._lines = collections.deque()  # (ts, stream, text)
        self._partial = {}
        self.secrets = ()

    def feed(self, stream, data):
        """Add raw bytes read from a replica's pipe."""
        pending = self._partial.get(stream, b"") + data
        *complete, rest = pending.split(b"\n")
        for line in complete:
            self._add(stream, line)
        while len(rest) > MAX_LINE:
            self._add(stream, rest[:MAX_LINE])
            rest = rest[MAX_LINE:]
        self._partial[stream] = rest

    def close_stream(self, stream):
        """The pipe reached EOF: keep what is left of an unterminated line."""
        rest = self._partial.pop(stream, b"")
        if rest:
            self._add(stream, rest)

    def note(self, text):
        """A line from guest_init itself about this replica (start, exit), stream "init"."""
        self._store("init", text)

    def _add(self, stream, raw):
        text = raw.decode("utf-8", "replace")
        for secret in self.secrets:
            text = text.replace(secret, SECRET_MASK)
        self._store(stream, text)

    def _store(self, stream, text):
        self._lines.append((time.time(), stream, text))
        self._bytes += len(text) + 32
        while self._bytes > self._max_bytes and self._lines:
            self._bytes -= len(self._lines.popleft()[2]) + 32

    def tail(self, count):
        if count <= 0:
            return []
        return list(self._lines)[-count:]


class OutputPipe:
    """A pipe from a replica's stdout or stderr into its LogBuffer; closes itself at EOF."""

    READ_SIZE = 65536

    def __init__(self, loop, buffer, stream):
        self._loop = loop
        self._buffer = buffer
        self._stream = stream
        self.read_fd, self.write_fd = os.pipe()
        os.set_blocking(self.read_fd, False)
        loop.add_reader(self.read_fd, self._readable)

    def close_write_end(self):
        """After the start: the replica holds its own copy."""
        if self.write_fd is not None:
            os.close(self.write_fd)
            self.write_fd = None

    def close(self):
        self.close_write_end()
        if self.read_fd is not None:
            self._loop.remove_reader(self.read_fd)
            os.close(self.read_fd)
            self.read_fd = None

    def _readable(self):
        try:
            data = os.read(self.read_fd, self.READ_SIZE)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if data:
            self._buffer.feed(self._stream, data)
        else:
            self._buffer.close_stream(self._stream)
            self.close()
