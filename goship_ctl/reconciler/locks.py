"""One playbook run per node at a time, across processes: a ``flock`` per node.

The serving process's reconcile loop and a ``goship-ctl reconcile`` / ``signal`` / ``logs`` on
the same data directory take the same lock files, so two runs never drive one node at once.
"""

from __future__ import annotations

import fcntl
import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

POLL_S = 0.2


class NodeBusy(TimeoutError):
    """Another run held a node's lock for longer than we were willing to wait."""


class NodeLocks:
    def __init__(self, directory: Path):
        self.directory = Path(directory)

    @contextmanager
    def hold(self, nodes: list[str], timeout_s: float) -> Iterator[None]:
        """Hold every node's lock (taken in name order, so two holders never deadlock)."""
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        deadline = time.monotonic() + timeout_s
        held: list[int] = []
        try:
            for node in sorted(set(nodes)):
                held.append(self._acquire(node, deadline))
            yield
        finally:
            for fd in held:
                os.close(fd)  # closing the descriptor releases its flock

    def _acquire(self, node: str, deadline: float) -> int:
        fd = os.open(self.directory / ("%s.lock" % node), os.O_RDWR | os.O_CREAT, 0o600)
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return fd
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    raise NodeBusy("node %s: another run is still working on it" % node) from None
                time.sleep(POLL_S)
