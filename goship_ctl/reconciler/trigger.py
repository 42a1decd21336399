"""Nodes whose desired state changed and that a reconcile should visit next."""

from __future__ import annotations

import threading
from typing import Iterable, Protocol


class ReconcileTrigger(Protocol):
    def request(self, nodes: Iterable[str], reason: str) -> None:
        """Ask for a reconcile of ``nodes`` soon; returns at once."""


class PendingNodes:
    """A thread-safe set of nodes to reconcile, with the reasons asked for, for one consumer."""

    def __init__(self):
        self._pending: dict[str, list[str]] = {}
        self._changed = threading.Condition()

    def request(self, nodes: Iterable[str], reason: str) -> None:
        with self._changed:
            for node in nodes:
                self._pending.setdefault(node, []).append(reason)
            if self._pending:
                self._changed.notify_all()

    def take(self, timeout_s: float) -> dict[str, list[str]]:
        """Node -> reasons requested since the last take; waits at most ``timeout_s`` for one."""
        with self._changed:
            self._changed.wait_for(lambda: self._pending, timeout=timeout_s)
            taken, self._pending = self._pending, {}
            return taken
