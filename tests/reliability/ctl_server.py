"""A real `goship-ctl serve` on 127.0.0.1 with its own SQLite store and bootstrap admin token."""

import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

GOSHIP_CTL = str(Path(sys.executable).parent / "goship-ctl")
START_TIMEOUT_S = 30.0


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class CtlServer:
    """``serve`` as a child process; its log (stderr and stdout) goes to ``log_path``."""

    def __init__(self, directory, extra_args=()):
        self.directory = Path(directory)
        self.data_dir = self.directory / "ctl"
        self.token_file = self.directory / "admin.token"
        self.log_path = self.directory / "serve.log"
        self.port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self.extra_args = list(extra_args)
        self.proc = None

    def start(self):
        argv = [GOSHIP_CTL, "serve", "--port", str(self.port), "--data-dir", str(self.data_dir),
                "--bootstrap-token-file", str(self.token_file), *self.extra_args]
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            assert self.proc.poll() is None, "goship-ctl serve exited:\n" + self.log()
            try:
                if httpx.get(self.url + "/healthz", timeout=1.0).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "goship-ctl serve did not answer in %.0f s:\n%s" % (START_TIMEOUT_S, self.log())
            time.sleep(0.1)
        return self

    @property
    def admin_token(self):
        return self.token_file.read_text().strip()

    def headers(self, token=None):
        return {"Authorization": "Bearer " + (token or self.admin_token)}

    def request(self, method, path, token=None, headers=None, **kwargs):
        """With the admin token unless ``token`` or ``headers`` (``{}``: no token) say otherwise."""
        headers = self.headers(token) if headers is None else headers
        return httpx.request(method, self.url + path, headers=headers, timeout=30.0, **kwargs)

    def log(self):
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
