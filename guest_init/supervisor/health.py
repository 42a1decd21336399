"""Health checks run from the event loop: exec (a process in the replica's context), tcp
(connect) and http (GET, status 200-399), each bounded by its timeout, never blocking.

Replicas share the VM's network namespace, so tcp and http checks go to 127.0.0.1.
"""

import errno
import os
import signal

from guest_init.reaper import describe_status

HOST = "127.0.0.1"
FIRST_PROBE_S = 0.05
MAX_HTTP_REPLY = 4096


class HealthCheck:
    """Probes one check at its interval; on_result(ok, detail) after each probe."""

    def __init__(self, loop, reaper, check, port, exec_argv, on_result):
        """exec_argv(argv) -> argv running argv in the replica's context (the runtime's)."""
        self._loop = loop
        self._reaper = reaper
        self._check = check
        self._port = check.port or port
        self._exec_argv = exec_argv
        self._on_result = on_result
        self._timer = None
        self._probe = None
        self.failures = 0  # consecutive
        self.passing = None  # None until the first probe finished
        self.last_error = None

    def start(self):
        self._timer = self._loop.call_later(FIRST_PROBE_S, self._run)

    def stop(self):
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._probe is not None:
            self._probe.abandon()
            self._probe = None

    def status(self):
        state = "unknown" if self.passing is None else ("passing" if self.passing else "failing")
        return {"status": state, "failures": self.failures, "last_error": self.last_error}

    def _run(self):
        self._timer = None
        kind = self._check.kind
        if kind == "exec":
            probe = ExecProbe(self._loop, self._reaper, self._exec_argv(list(self._check.argv)), self._done)
        else:
            probe = SocketProbe(self._loop, self._port, self._check.path if kind == "http" else None, self._done)
        self._probe = probe
        probe.deadline = self._loop.call_later(self._check.timeout_s, probe.timed_out)
        probe.start()

    def _done(self, probe, ok, detail):
        if probe is not self._probe:
            return
        self._probe = None
        probe.deadline.cancel()
        self.passing = ok
        self.failures = 0 if ok else self.failures + 1
        self.last_error = None if ok else detail
        self._timer = self._loop.call_later(self._check.interval_s, self._run)
        self._on_result(ok, detail)


class ExecProbe:
    def __init__(self, loop, reaper, argv, done):
        self._loop = loop
        self._reaper = reaper
        self._argv = argv
        self._done = done
        self._pid = None
        self.deadline = None

    def start(self):
        null = os.open("/dev/null", os.O_RDWR)
        try:
            actions = [(os.POSIX_SPAWN_DUP2, null, fd) for fd in (0, 1, 2)]
            defaults = (signal.SIGPIPE, signal.SIGINT, signal.SIGTERM, signal.SIGCHLD, signal.SIGIO, signal.SIGXFSZ)
            self._pid = os.posix_spawnp(self._argv[0], self._argv, {"PATH": os.environ.get("PATH", os.defpath)},
                                        file_actions=actions, setsigdef=defaults, setsigmask=(), setpgroup=0)
        except OSError as exc:
            self._loop.call_soon(lambda: self._done(self, False, "exec %s: %s" % (self._argv[0], exc.strerror)))
            return
        finally:
            os.close(null)
        self._reaper.watch(self._pid, self._exited)

    def _exited(self, pid, status):
        self._pid = None
        ok = os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
        self._done(self, ok, "exec check: %s" % describe_status(status))

    def timed_out(self):
        self.abandon()
        self._done(self, False, "exec check timed out")

    def abandon(self):
        """Kill a probe still running; the reaper still collects it."""
        if self._pid is not None:
            try:
                os.killpg(self._pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self._reaper.watch(self._pid, _ignore_exit)
            self._pid = None


def _ignore_exit(pid, status):
    """An abandoned probe's exit: nobody waits for it any more."""


class SocketProbe:
    """tcp: connected is success. http: a status line 200-399 is success."""

    def __init__(self, loop, port, http_path, done):
        self._loop = loop
        self._port = port
        self._path = http_path
        self._done = done
        self._sock = None
        self._reply = b""
        self.deadline = None

    def start(self):
        import socket  # only apps with tcp/http checks pay for it
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setblocking(False)
        code = self._sock.connect_ex((HOST, self._port))
        if code not in (0, errno.EINPROGRESS):
            self._finish(False, "connect to port %d: %s" % (self._port, os.strerror(code)))
            return
        self._loop.add_writer(self._sock.fileno(), self._connected)

    def _connected(self):
        self._loop.remove_writer(self._sock.fileno())
        import socket
        code = self._sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if code != 0:
            self._finish(False, "connect to port %d: %s" % (self._port, os.strerror(code)))
        elif self._path is None:
            self._finish(True, "port %d accepts connections" % self._port)
        else:
            request = "GET %s HTTP/1.0\r\nHost: %s:%d\r\nUser-Agent: goship-init\r\n\r\n" % (self._path, HOST, self._port)
            try:
                self._sock.send(request.encode("ascii"))  # a few bytes: fits a fresh socket's buffer
            except OSError as exc:
                self._finish(False, "http request: %s" % exc.strerror)
                return
            self._loop.add_reader(self._sock.fileno(), self._readable)

    def _readable(self):
        try:
            chunk = self._sock.recv(MAX_HTTP_REPLY)
        except BlockingIOError:
            return
        except OSError as exc:
            self._finish(False, "http reply: %s" % exc.strerror)
            return
        self._reply += chunk
        if b"\r\n" in self._reply or b"\n" in self._reply or not chunk or len(self._reply) >= MAX_HTTP_REPLY:
            line = self._reply.split(b"\n", 1)[0].decode("latin-1").strip()
            parts = line.split()
            if len(parts) >= 2 and parts[0].startswith("HTTP/") and parts[1].isdigit():
                code = int(parts[1])
                self._finish(200 <= code < 400, "http %s: status %d" % (self._path, code))
            else:
                self._finish(False, "http %s: no HTTP status line" % self._path)

    def timed_out(self):
        self.abandon()
        self._done(self, False, "%s check timed out" % ("tcp" if self._path is None else "http"))

    def _finish(self, ok, detail):
        self.abandon()
        self._loop.call_soon(lambda: self._done(self, ok, detail))

    def abandon(self):
        if self._sock is not None:
            self._loop.remove_reader(self._sock.fileno())
            self._loop.remove_writer(self._sock.fileno())
            self._sock.close()
            self._sock = None
