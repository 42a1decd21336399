"""Exponential backoff per node: a node that keeps failing is retried less and less often."""

from __future__ import annotations

import time
from typing import Callable


class NodeBackoff:
    def __init__(self, base_s: float = 15.0, max_s: float = 600.0, clock: Callable[[], float] = time.monotonic):
        self.base_s = base_s
        self.max_s = max_s
        self._clock = clock
        self._failures: dict[str, int] = {}
        self._not_before: dict[str, float] = {}

    def failed(self, node: str) -> float:
        """Record a failed run; returns the delay before the node's next attempt."""
        count = self._failures.get(node, 0) + 1
        self._failures[node] = count
        delay = min(self.max_s, self.base_s * 2 ** (count - 1))
        self._not_before[node] = self._clock() + delay
        return delay

    def succeeded(self, node: str) -> None:
        self._failures.pop(node, None)
        self._not_before.pop(node, None)

    def ready(self, node: str) -> bool:
        return self._clock() >= self._not_before.get(node, float("-inf"))

    def failures(self, node: str) -> int:
        return self._failures.get(node, 0)
