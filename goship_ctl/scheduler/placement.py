"""Place every project on its nodes: within capacity, spread, and stable.

Two passes over the projects, oldest first:

1. **keep**: every current VM stays where it is while its node still matches the rule, is
   schedulable and healthy, and has room (VMs kept by older projects count first). Other
   projects' new VMs never displace a running one.
2. **fill**: projects short of their target get new nodes, chosen by (fewest VMs of this
   project on the same ``spreadBy`` label value, fewest VMs on the node, most free memory,
   most free vCPUs, name).

The result for unchanged inputs is the current placement (a fixed point), so running the
scheduler after any change moves nothing that need not move.
"""

from __future__ import annotations

from typing import Sequence

from goship_ctl.scheduler.eligibility import capacity_problem, matches, selector_text, static_problem
from goship_ctl.scheduler.model import Decision, NodeInfo, Request, Resources

NOTHING = Resources(0, 0)


class _Ledger:
    """Resources and VM count used on each node so far."""

    def __init__(self, nodes: Sequence[NodeInfo]):
        self.labels = {node.name: node.labels for node in nodes}
        self.used = {node.name: NOTHING for node in nodes}
        self.vms = {node.name: 0 for node in nodes}

    def add(self, node: str, demand: Resources) -> None:
        self.used[node] += demand
        self.vms[node] += 1

    def problem(self, node: NodeInfo, request: Request) -> str | None:
        return static_problem(node, request) or capacity_problem(node, self.used[node.name], request.demand)


def schedule(requests: Sequence[Request], nodes: Sequence[NodeInfo]) -> dict[str, Decision]:
    """project name -> Decision, for ``requests`` in priority order (oldest project first)."""
    by_name = {node.name: node for node in nodes}
    ordered_nodes = sorted(nodes, key=lambda node: node.name)
    ledger = _Ledger(nodes)
    kept = {request.project: _keep(request, by_name, ordered_nodes, ledger) for request in requests}
    placed = {request.project: _fill(request, kept[request.project], ordered_nodes, ledger) for request in requests}
    # Reasons are judged on the final ledger, so a re-run with the same inputs gives the same text.
    return {request.project: _decide(request, placed[request.project], ordered_nodes, ledger) for request in requests}


def wanted(request: Request, nodes: Sequence[NodeInfo]) -> int:
    rule = request.rule
    if rule.count is not None:
        return rule.count
    if rule.node_names is not None:
        return len(rule.node_names)
    return sum(1 for node in nodes if matches(node, request))


def _keep(request: Request, by_name, ordered_nodes, ledger: _Ledger) -> list[str]:
    target = wanted(request, ordered_nodes)
    keep = []
    for name in sorted(set(request.current)):
        node = by_name.get(name)
        if len(keep) == target or node is None or not matches(node, request) or ledger.problem(node, request):
            continue
        keep.append(name)
        ledger.add(name, request.demand)
    return keep


def _fill(request: Request, kept: list[str], ordered_nodes, ledger: _Ledger) -> list[str]:
    target = wanted(request, ordered_nodes)
    chosen = list(kept)
    candidates = [node for node in ordered_nodes if node.name not in chosen and matches(node, request)
                  and not ledger.problem(node, request)]
    while len(chosen) < target and candidates:
        best = min(candidates, key=lambda node: _rank(node, chosen, request, ledger))
        candidates.remove(best)
        chosen.append(best.name)
        ledger.add(best.name, request.demand)
    return chosen


def _decide(request: Request, chosen: list[str], ordered_nodes, ledger: _Ledger) -> Decision:
    target = wanted(request, ordered_nodes)
    reason = None
    if len(chosen) < target or (target == 0 and _selector_only(request)):
        rejected = {node.name: ledger.problem(node, request) for node in ordered_nodes
                    if node.name not in chosen and matches(node, request)}
        rejected = {name: problem for name, problem in rejected.items() if problem}
        if request.rule.node_names is not None:
            known = {node.name for node in ordered_nodes}
            rejected.update((name, "no such node") for name in request.rule.node_names if name not in known)
        reason = _reason(request, len(chosen), target, rejected, ordered_nodes)
    return Decision(nodes=tuple(sorted(chosen)), wanted=target, reason=reason)


def _rank(node: NodeInfo, chosen: list[str], request: Request, ledger: _Ledger):
    spread = 0
    key = request.rule.spread_by
    if key:
        value = node.labels.get(key)
        spread = sum(1 for name in chosen if ledger.labels[name].get(key) == value)
    used = ledger.used[node.name]
    return (spread, ledger.vms[node.name], -(node.capacity.memory_mib - used.memory_mib),
            -(node.capacity.vcpus - used.vcpus), node.name)


def _selector_only(request: Request) -> bool:
    return request.rule.selector is not None and request.rule.count is None


def _reason(request: Request, placed: int, target: int, rejected: dict, nodes) -> str:
    rule = request.rule
    if target == 0:
        return "no node matches selector %s" % selector_text(rule.selector)
    head = "placed on %d of %d nodes" % (placed, target)
    if rejected:
        return "%s; %s" % (head, "; ".join("%s: %s" % (name, rejected[name]) for name in sorted(rejected)))
    matching = sum(1 for node in nodes if matches(node, request))
    if rule.selector is not None:
        return "%s; only %d node(s) match selector %s" % (head, matching, selector_text(rule.selector))
    return "%s; only %d node(s) exist" % (head, matching)
