"""Run guest_init as an ordinary process over a Unix socket, the way the guest's python runs it."""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# -I -S as in the guest (no site-packages, no environment); -I also drops the cwd from sys.path
BOOT_CODE = "import sys; sys.path.insert(0, %r); import runpy; runpy.run_module('guest_init', run_name='__main__', alter_sys=True)" % str(REPO)
GUEST_INIT_ARGV = [sys.executable, "-I", "-S", "-c", BOOT_CODE]
START_TIMEOUT_S = 10.0


def wait_until(condition, timeout, interval=0.02, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError("timed out after %.1f s waiting for %s" % (timeout, what))
        time.sleep(interval)


class GuestInitProcess:
    """guest_init --socket PATH --debug as a child process; stderr (its log) goes to a file."""

    def __init__(self, directory, argv_prefix=None):
        self.directory = Path(directory)
        self.socket_path = str(self.directory / "init.sock")
        self.log_path = self.directory / "guest_init.log"
        self._argv_prefix = argv_prefix
        self.proc = None

    def argv(self):
        return GUEST_INIT_ARGV + ["--socket", self.socket_path, "--debug"]

    def start(self, wait=True):
        argv = self.argv() if self._argv_prefix is None else self._argv_prefix + self.argv()
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, cwd=str(self.directory))
        if wait:
            wait_until(lambda: os.path.exists(self.socket_path) or self.proc.poll() is not None, START_TIMEOUT_S, what="guest_init socket")
            assert self.proc.poll() is None, "guest_init exited early:\n" + self.log()
        return self

    def log(self):
        return self.log_path.read_text(errors="replace")

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()


class RawClient:
    """A bare socket to talk bytes to guest_init, for what the real client would never send."""

    def __init__(self, path, timeout=5.0):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.buffer = b""

    def send(self, data):
        self.sock.sendall(data)

    def read_line(self):
        while b"\n" not in self.buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise AssertionError("guest_init closed the connection; got %r" % self.buffer)
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return line

    def read_json(self):
        import json
        return json.loads(self.read_line())

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()
