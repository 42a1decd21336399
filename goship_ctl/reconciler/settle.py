"""Reconcile in the foreground until the nodes settle (``goship-ctl reconcile``, ``apply --wait``).

A run can change placement (first host facts give a node capacity; an unreachable node loses its
VMs), and the trigger then names more nodes. ``settle`` runs rounds until neither the trigger
nor the store (``drift``) names a node that has not already failed in this call, or
``max_rounds`` is reached. A failing node is tried once per call: the loop of a serving
control service is the one that retries with backoff.
"""

from __future__ import annotations

import threading

from sqlalchemy.orm import Session, sessionmaker

from goship_ctl.reconciler.drift import nodes_to_reconcile
from goship_ctl.reconciler.events import HostResult
from goship_ctl.reconciler.reconcile import Reconciler
from goship_ctl.reconciler.trigger import PendingNodes

MAX_ROUNDS = 4
NEVER_STALE = float("inf")


def settle(reconciler: Reconciler, trigger: PendingNodes, sessions: sessionmaker[Session],
           first: dict[str, list[str]], *, max_rounds: int = MAX_ROUNDS,
           cancel: threading.Event | None = None) -> dict[str, HostResult]:
    """Reconcile ``first`` (node -> reasons), then what those runs changed; node -> last result."""
    results: dict[str, HostResult] = {}
    wanted = dict(first)
    for _round in range(max_rounds):
        if not wanted or (cancel is not None and cancel.is_set()):
            break
        results.update(reconciler.reconcile(list(wanted), wanted, cancel))
        failed = {node for node, host in results.items() if host.result != "ok"}
        wanted = out_of_date(sessions, trigger)
        wanted = {node: why for node, why in wanted.items() if node not in failed}
    return results


def out_of_date(sessions: sessionmaker[Session], trigger: PendingNodes,
                stale_after_s: float = NEVER_STALE) -> dict[str, list[str]]:
    """Nodes the trigger asked for, merged with the nodes the store finds out of date."""
    wanted = trigger.take(0)
    with sessions() as session:
        for node, why in nodes_to_reconcile(session, stale_after_s).items():
            wanted.setdefault(node, []).extend(why)
    return wanted
