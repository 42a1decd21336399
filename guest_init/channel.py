"""The byte stream to the host: the virtio-serial port in a VM, or a Unix socket in tests.

virtio_console semantics (drivers/char/virtio_console.c): while no host client is connected,
read() returns 0 and poll() reports POLLIN|POLLHUP without end, and writes would block. So on
a 0-byte read we stop polling the port and wait for SIGIO, which the driver raises (O_ASYNC)
when the host side connects or data comes, with a slow timer as a safety net.

The guest learns of host connects and disconnects late (control messages, handled by a kernel
worker), after data that came later: a new client's request can be read while the port still
says "no host". So the host's presence only decides when to poll, never what to keep: pending
output and partial input stay across it, as qemu-ga does. Stale bytes of an earlier client
are the 0xFF resync's job (see protocol.py and docs/guest_init.md, "Channel reconnects").
"""

import os
import signal

from guest_init import log

PORT_NAME = "org.goship.init.0"
VIRTIO_PORTS = "/sys/class/virtio-ports"
READ_SIZE = 65536
MAX_PENDING_OUTPUT = 16 * 1024 * 1024
RECHECK_HOST_S = 1.0  # poll for a host connection at this pace if SIGIO never comes
DISCOVERY_FAST_S = (0.05, 10.0)  # (interval, for how long) right after boot, then:
DISCOVERY_SLOW_S = 2.0


def find_port(name=PORT_NAME, sysfs=VIRTIO_PORTS):
    """/dev/vportNpM of the port called name, or None (no udev: read sysfs ourselves)."""
    try:
        entries = sorted(os.listdir(sysfs))
    except OSError:
        return None
    for entry in entries:
        try:
            with open(os.path.join(sysfs, entry, "name"), encoding="utf-8") as port_name:
                if port_name.read().strip() == name:
                    return "/dev/" + entry
        except OSError:
            continue
    return None


class Stream:
    """A non-blocking fd feeding session.on_data, with a bounded output buffer."""

    def __init__(self, loop, session):
        self.loop = loop
        self.session = session
        self.fd = None  # the fd being polled; None while there is nothing to poll
        self._out = bytearray()

    def send(self, data):
        if not self._keeps_output():
            log.debug("no host connected: dropped %d bytes of output" % len(data))
            return
        if len(self._out) + len(data) > MAX_PENDING_OUTPUT:
            log.info("host is not reading: dropped %d bytes of output" % len(data))
            return
        idle = not self._out
        self._out += data
        if idle and self.fd is not None:
            self._flush()

    def pending_output(self):
        return len(self._out)

    def _keeps_output(self):
        return self.fd is not None

    def _read(self, fd):
        return os.read(fd, READ_SIZE)

    def _write(self, fd, data):
        return os.write(fd, data)

    def _flush(self):
        while self._out:
            try:
                written = self._write(self.fd, self._out)
            except BlockingIOError:
                self.loop.add_writer(self.fd, self._flush)
                return
            except OSError as exc:
                self.lost(exc)
                return
            del self._out[:written]
        self.loop.remove_writer(self.fd)

    def _on_readable(self):
        try:
            data = self._read(self.fd)
        except BlockingIOError:
            return
        except OSError as exc:
            self.lost(exc)
            return
        if data:
            self._on_data(data)
        else:
            self.lost(None)

    def _on_data(self, data):
        self.session.on_data(data)

    def _watch(self, fd):
        """Poll fd: for input, and for output if some is pending."""
        self.fd = fd
        self.loop.add_reader(fd, self._on_readable)
        if self._out:
            self._flush()

    def _unwatch(self):
        """Stop polling the fd; pending output stays (the caller decides)."""
        fd, self.fd = self.fd, None
        self.loop.remove_reader(fd)
        self.loop.remove_writer(fd)

    def lost(self, exc):
        """The host end went away (exc None) or the fd failed (exc)."""
        raise NotImplementedError


class VirtioPort(Stream):
    """The guest end of the virtio-serial port named PORT_NAME."""

    def __init__(self, loop, session, name=PORT_NAME):
        super().__init__(loop, session)
        self.name = name
        self.path = None
        self._port_fd = None
        self._waiting_for_host = False
        self._host_connected = False  # as far as we know: only data proves it
        self._recheck = None
        self._discovery_started = None
        self._said_missing = False
        loop.add_signal(signal.SIGIO, self._on_sigio)

    def start(self):
        """Find and open the port, retrying until it shows up (the module may still be loading)."""
        import time
        if self._discovery_started is None:
            self._discovery_started = time.monotonic()
        path = find_port(self.name)
        if path is not None:
            try:
                self._open(path)
                return
            except OSError as exc:
                log.info("cannot open %s: %s" % (path, exc))
        fast_interval, fast_for = DISCOVERY_FAST_S
        if time.monotonic() - self._discovery_started < fast_for:
            self.loop.call_later(fast_interval, self.start)
            return
        if not self._said_missing:
            log.info("virtio port %s not found yet; still looking every %.0f s" % (self.name, DISCOVERY_SLOW_S))
            self._said_missing = True
        self.loop.call_later(DISCOVERY_SLOW_S, self.start)

    def _open(self, path):
        import fcntl
        fd = os.open(path, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
        fcntl.fcntl(fd, fcntl.F_SETOWN, os.getpid())
        fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | os.O_ASYNC)
        self.path = path
        self._port_fd = fd
        self._discovery_started = None
        self._said_missing = False
        log.info("opened %s (%s)" % (path, self.name))
        self._watch(fd)

    def _keeps_output(self):
        """While the port is open: "no host" may be stale (see the module docstring)."""
        return self._port_fd is not None

    def lost(self, exc):
        self._unwatch()
        if exc is None:
            # no host, as far as the port knows: input and output are kept (module docstring)
            if self._host_connected:
                log.debug("host client left %s (%d bytes of output kept)" % (self.path, len(self._out)))
            self._host_connected = False
            self._waiting_for_host = True
            self._recheck = self.loop.call_later(RECHECK_HOST_S, self._resume)
            return
        log.info("%s failed: %s; reopening in %.0f s" % (self.path, exc, DISCOVERY_SLOW_S))
        self._out.clear()
        self.session.on_disconnect()
        os.close(self._port_fd)
        self._port_fd = None
        self.loop.call_later(DISCOVERY_SLOW_S, self.start)

    def _on_data(self, data):
        if not self._host_connected:
            log.debug("host client on %s" % self.path)
            self._host_connected = True
        self.session.on_data(data)

    def _on_sigio(self, signum):
        if self._waiting_for_host:
            self._recheck.cancel()
            self._resume()

    def _resume(self):
        """Poll the port again: a read either brings data or says the host is still away;
        pending output goes as soon as the port takes it."""
        self._waiting_for_host = False
        self._watch(self._port_fd)


class SocketServer(Stream):
    """Test stand-in for the port: a listening Unix socket serving one client at a time,
    as QEMU's chardev does; the others wait in the backlog."""

    def __init__(self, loop, session, path):
        super().__init__(loop, session)
        import socket
        self.path = path
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        # bound and listening under a temporary name, then renamed: a client that sees the
        # path never meets a socket that is not listening yet (ECONNREFUSED)
        pending = path + ".new"
        try:
            os.unlink(pending)
        except FileNotFoundError:
            pass
        self._listener.bind(pending)
        os.chmod(pending, 0o600)
        self._listener.listen(8)
        os.rename(pending, path)
        self._listener.setblocking(False)
        self._client = None
        loop.add_reader(self._listener.fileno(), self._accept)
        log.info("listening on %s" % path)

    def _accept(self):
        try:
            client = self._listener.accept()[0]
        except BlockingIOError:
            return
        client.setblocking(False)
        self._client = client
        self.loop.remove_reader(self._listener.fileno())
        log.debug("host client connected")
        self._watch(client.fileno())

    def lost(self, exc):
        self._unwatch()
        self._out.clear()
        self._client.close()
        self._client = None
        self.session.on_disconnect()
        log.debug("host client gone%s" % ("" if exc is None else ": %s" % exc))
        self.loop.add_reader(self._listener.fileno(), self._accept)

    def close(self):
        self._listener.close()
        try:
            os.unlink(self.path)
        except OSError:
            pass
