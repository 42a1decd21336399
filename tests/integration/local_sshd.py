"""A throwaway OpenSSH server on 127.0.0.1 for tests that reach a node over real SSH.

Everything lives in one directory the test owns: a fresh host key, a client key pair, an
``authorized_keys`` holding only that client key, and an ``sshd_config`` of its own
(key login for root only, no passwords, no PAM). sshd runs in the foreground (``-D -e``)
and logs to ``sshd.log``; ``stop()`` ends the listener and the session processes it forked
(ControlPersist keeps them alive otherwise), each by its pid.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

SSHD = "/usr/sbin/sshd"  # sshd re-executes itself, so it must be started by absolute path
SSH_KEYGEN = "ssh-keygen"
PRIVSEP_DIR = Path("/run/sshd")  # compiled into Debian's sshd; its init script creates it
START_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 10.0
START_ATTEMPTS = 3  # a free port picked by bind(0) can be taken before sshd binds it
POLL_S = 0.05

CONFIG = """\
Port {port}
ListenAddress 127.0.0.1
HostKey {host_key}
PidFile none
AuthorizedKeysFile {authorized_keys}
AllowUsers root
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
# The key files live under /tmp (world-writable), which strict mode would refuse.
StrictModes no
PrintMotd no
Subsystem sftp /usr/lib/openssh/sftp-server
LogLevel VERBOSE
"""


def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _keygen(path: Path, comment: str) -> None:
    subprocess.run([SSH_KEYGEN, "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
                   check=True, capture_output=True, timeout=30)


def _children(pid: int) -> list[int]:
    """Direct children of ``pid``, from /proc/<pid>/task/*/children."""
    found = []
    for children in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            found.extend(int(child) for child in children.read_text().split())
        except OSError:
            continue
    return found


def _descendants(pid: int) -> list[int]:
    found, queue = [], [pid]
    while queue:
        for child in _children(queue.pop()):
            found.append(child)
            queue.append(child)
    return found


class LocalSshd:
    """``with LocalSshd(directory) as sshd:`` serves root logins with ``sshd.client_key`` on ``sshd.port``."""

    def __init__(self, directory: Path, port: int | None = None):
        """``port``: listen there (one attempt) instead of on a free port picked at start."""
        self.directory = Path(directory)
        self.fixed_port = port
        self.host_key = self.directory / "ssh_host_ed25519_key"
        self.client_key = self.directory / "client_ed25519"
        self.authorized_keys = self.directory / "authorized_keys"
        self.config = self.directory / "sshd_config"
        self.log_path = self.directory / "sshd.log"
        self.port = None
        self.proc = None

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc_info):
        self.stop()

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        _keygen(self.host_key, "goship-test-host")
        _keygen(self.client_key, "goship-test-client")
        self.authorized_keys.write_text(Path(f"{self.client_key}.pub").read_text())
        self.authorized_keys.chmod(0o600)
        PRIVSEP_DIR.mkdir(mode=0o755, exist_ok=True)
        problems = []
        for _attempt in range(1 if self.fixed_port else START_ATTEMPTS):
            self.port = self.fixed_port or free_loopback_port()
            self.config.write_text(CONFIG.format(port=self.port, host_key=self.host_key,
                                                 authorized_keys=self.authorized_keys))
            subprocess.run([SSHD, "-t", "-f", str(self.config)], check=True, capture_output=True, timeout=30)
            with open(self.log_path, "ab") as log:
                self.proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(self.config)],
                                             stdin=subprocess.DEVNULL, stdout=log, stderr=log)
            if self._wait_for_banner():
                return
            problems.append(self.log_tail())
            self.stop()
        raise RuntimeError("sshd did not start:\n" + "\n---\n".join(problems))

    def _wait_for_banner(self) -> bool:
        """True once the port answers with an SSH banner; False if sshd exited or time ran out."""
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=2) as sock:
                    if sock.recv(64).startswith(b"SSH-2.0-"):
                        return True
            except OSError:
                pass
            time.sleep(POLL_S)
        return False

    def stop(self) -> None:
        """End the listener and every session process it forked; safe to call twice."""
        if self.proc is None:
            return
        sessions = _descendants(self.proc.pid)
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=STOP_TIMEOUT_S)
        for pid in sessions:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
        self.proc = None

    def accepted_logins(self) -> int:
        """Public-key logins sshd logged so far."""
        return self.log_tail(limit=None).count("Accepted publickey for root from 127.0.0.1")

    def log_tail(self, limit: int | None = 3000) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""
        return text if limit is None else text[-limit:]
