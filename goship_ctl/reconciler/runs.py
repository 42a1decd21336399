"""Playbook runs in the store, and what is left of a run whose process died.

Every run writes one ``reconcile_runs`` row per node, ``running`` until its result is recorded.
A live run holds its nodes' locks (locks.py) from before its rows are written until after they are
finished, so a ``running`` row of this host and work directory (``owner``) whose node lock can be
taken belongs to a process that died mid-run (SIGKILL, out of memory, a crash of the host).

ansible-runner starts ansible-playbook in a session of its own (pexpect, a pty) with SIGHUP
ignored, so a dead control service leaves ansible-playbook, its workers and their module processes
running: nobody enforces the time limit or records the result, and a new run could drive the same
node at the same time. They are found by the run's private directory on their command line (the
inventory path) and their whole session is killed.
"""

from __future__ import annotations

import os
import signal
import socket
import time
from pathlib import Path

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from goship_ctl.store.models import ReconcileRun
from goship_ctl.store.types import utcnow

KEEP_FINISHED = 100  # finished rows kept per node
MESSAGE_CHARS = 2000
KILL_WAIT_S = 10.0
KILL_POLL_S = 0.1


def owner(work_dir: Path) -> str:
    """Which lock directory guards a run: this host and the reconciler's work directory."""
    return "%s:%s" % (socket.gethostname(), Path(work_dir).resolve())


def started(session: Session, ident: str, playbook: str, nodes: list[str], run_owner: str) -> None:
    for node in nodes:
        session.add(ReconcileRun(ident=ident, node=node, playbook=playbook, owner=run_owner, pid=os.getpid(),
                                 state="running", message=""))


def finished(session: Session, ident: str, node: str, state: str, message: str) -> None:
    """Record the run's result on ``node`` and drop that node's oldest finished rows."""
    row = session.scalars(select(ReconcileRun).where(ReconcileRun.ident == ident, ReconcileRun.node == node)).one_or_none()
    if row is None:
        return
    row.state, row.message, row.finished_at = state, message[:MESSAGE_CHARS], utcnow()
    old = select(ReconcileRun.id).where(ReconcileRun.node == node, ReconcileRun.state != "running") \
        .order_by(ReconcileRun.id.desc()).offset(KEEP_FINISHED)
    session.execute(delete(ReconcileRun).where(ReconcileRun.id.in_(list(session.scalars(old)))))


def running(session: Session, run_owner: str, nodes: list[str] | None = None) -> list[ReconcileRun]:
    query = select(ReconcileRun).where(ReconcileRun.state == "running", ReconcileRun.owner == run_owner)
    if nodes is not None:
        query = query.where(ReconcileRun.node.in_(nodes))
    return list(session.scalars(query.order_by(ReconcileRun.id)))


def leftover_sessions(marker: str) -> set[int]:
    """Sessions of live processes whose command line contains ``marker``, except our own session."""
    needle = marker.encode()
    found = set()
    for pid, session_id in _sessions().items():
        try:
            cmdline = Path("/proc/%d/cmdline" % pid).read_bytes()
        except OSError:
            continue
        if needle in cmdline:
            found.add(session_id)
    found.discard(os.getsid(0))
    return found


def kill_sessions(session_ids: set[int]) -> int:
    """SIGKILL every process of these sessions until none is left (bounded); returns how many were killed."""
    killed: set[int] = set()
    deadline = time.monotonic() + KILL_WAIT_S
    while session_ids:
        alive = [pid for pid, sid in _sessions().items() if sid in session_ids]
        if not alive or time.monotonic() > deadline:
            break
        for pid in alive:
            try:
                os.kill(pid, signal.SIGKILL)
                killed.add(pid)
            except ProcessLookupError:
                continue
        time.sleep(KILL_POLL_S)
    return len(killed)


def _sessions() -> dict[int, int]:
    """pid -> session id of every process that is not a zombie."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()  # the command name may hold spaces and parentheses
        if fields[0] not in ("Z", "X"):
            found[int(entry.name)] = int(fields[3])
    return found
