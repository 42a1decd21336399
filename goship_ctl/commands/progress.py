"""Progress of playbook runs for the CLI, fed by the reconciler's ``RunEvent``s.

On a terminal: a live table, one line per node (current task, counts, elapsed), redrawn on
every event and once a second. Elsewhere (CI, pipes): one plain line per changed, failed or
unreachable task, so logs stay readable.
"""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass

from goship_ctl.reconciler.events import RunEvent

TICK_S = 1.0
TASK_CHARS = 60


@dataclass
class NodeLine:
    node: str
    started: float
    task: str = "starting"
    state: str = "running"
    ok: int = 0
    changed: int = 0
    ended: float | None = None

    def text(self, now: float) -> str:
        task = self.task if len(self.task) <= TASK_CHARS else self.task[:TASK_CHARS - 3] + "..."
        return "%-12s %-11s %3d ok %3d changed %5.0fs  %s" % (
            self.node, self.state, self.ok, self.changed, (self.ended or now) - self.started, task)


class RunProgress:
    def __init__(self, stream=None, live: bool | None = None):
        self.stream = stream or sys.stdout
        self.live = self.stream.isatty() if live is None else live
        self._nodes: dict[str, NodeLine] = {}
        self._drawn = 0
        self._lock = threading.Lock()
        self._started = time.monotonic()
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None

    def __enter__(self) -> RunProgress:
        if self.live:
            self._ticker = threading.Thread(target=self._tick, name="goship-progress", daemon=True)
            self._ticker.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join(2 * TICK_S)
        with self._lock:
            if self.live:
                self._redraw()

    def __call__(self, event: RunEvent) -> None:
        with self._lock:
            now = time.monotonic()
            line = self._nodes.get(event.node)
            if line is None or line.ended is not None:  # first event, or the node's next run
                line = self._nodes[event.node] = NodeLine(event.node, now)
            if event.kind == "task":
                line.task = event.task
            elif event.kind in ("ok", "changed"):
                setattr(line, event.kind, getattr(line, event.kind) + 1)
            elif event.kind in ("failed", "unreachable"):
                line.state, line.task = event.kind, event.message or event.task
            if self.live:
                self._redraw()
            elif event.kind in ("changed", "failed", "unreachable"):
                detail = " [%s]" % event.message if event.message and event.kind == "changed" else ""
                text = event.message if event.kind != "changed" else event.task + detail
                self._print("%7.1fs %s: %s: %s" % (now - self._started, event.node, event.kind, text))

    def done(self, node: str, result: str) -> None:
        """The run ended for ``node`` with ``result`` (ok, failed, unreachable, timeout, cancelled)."""
        with self._lock:
            line = self._nodes.setdefault(node, NodeLine(node, time.monotonic()))
            line.state = "done" if result == "ok" else result
            line.task, line.ended = "", time.monotonic()
            if self.live:
                self._redraw()

    def note(self, text: str) -> None:
        """A line of its own (above the live table)."""
        with self._lock:
            if self.live and self._drawn:
                self.stream.write("\x1b[%dF\x1b[J" % self._drawn)
                self._drawn = 0
            self._print(text)
            if self.live:
                self._redraw()

    def _tick(self) -> None:
        while not self._stop.wait(TICK_S):
            with self._lock:
                if self._nodes:
                    self._redraw()

    def _redraw(self) -> None:
        now = time.monotonic()
        lines = [line.text(now) for _name, line in sorted(self._nodes.items())]
        if self._drawn:
            self.stream.write("\x1b[%dF" % self._drawn)
        for text in lines:
            self.stream.write("\x1b[2K" + text + "\n")
        self._drawn = len(lines)
        self.stream.flush()

    def _print(self, text: str) -> None:
        self.stream.write(text + "\n")
        self.stream.flush()
