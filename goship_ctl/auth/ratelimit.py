"""Failed authentication is limited per client address: after ``max_failures`` within
``window_s`` seconds, that client gets 429 until the window has passed, even with a good token."""

from __future__ import annotations

import threading
import time
from collections import deque

MAX_TRACKED_CLIENTS = 10000


class FailureLimiter:
    def __init__(self, max_failures: int = 10, window_s: float = 60.0, clock=time.monotonic):
        self.max_failures = max_failures
        self.window_s = window_s
        self._clock = clock
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def retry_after(self, client: str) -> int:
        """Seconds until ``client`` may try again; 0 when it may now."""
        with self._lock:
            recent = self._pruned(client)
            if len(recent) < self.max_failures:
                return 0
            return max(1, int(recent[0] + self.window_s - self._clock() + 0.999))

    def record_failure(self, client: str) -> int:
        """Count a failure; returns the failures of ``client`` within the window."""
        with self._lock:
            if client not in self._failures and len(self._failures) >= MAX_TRACKED_CLIENTS:
                for known in list(self._failures):
                    self._pruned(known)
            recent = self._pruned(client)
            recent.append(self._clock())
            self._failures[client] = recent
            return len(recent)

    def _pruned(self, client: str) -> deque[float]:
        """``client``'s failures within the window; a client with none left is forgotten."""
        recent = self._failures.get(client, deque())
        horizon = self._clock() - self.window_s
        while recent and recent[0] <= horizon:
            recent.popleft()
        if not recent:
            self._failures.pop(client, None)
        return recent
