"""A node's capacity and confidential VM types: the operator's override, else its host_info facts."""

from __future__ import annotations

from goship_ctl.scheduler.model import NodeInfo, Resources
from goship_ctl.store.models import Node

# host_info's confidential booleans -> the types a project may ask for (spec.vm.confidential.type).
CONFIDENTIAL_FACTS = {"sev": "sev", "sev_es": "sev-es", "sev_snp": "sev-snp", "tdx": "tdx"}


def capacity(node: Node) -> Resources | None:
    """What GoShip may give to project VMs on the node. From host_info: every logical CPU, and
    the memory left after the reserve (free plus what GoShip VMs already hold)."""
    if node.capacity_override:
        return Resources(node.capacity_override["vcpus"], node.capacity_override["memory_mib"])
    facts = (node.facts or {}).get("capacity")
    if not facts:
        return None
    return Resources(int(facts["vcpus_total"]), int(facts["memory_mib_free"]) + int(facts["memory_mib_allocated"]))


def confidential_types(node: Node) -> frozenset[str]:
    if node.confidential_override is not None:
        return frozenset(node.confidential_override)
    facts = (node.facts or {}).get("confidential") or {}
    return frozenset(kind for fact, kind in CONFIDENTIAL_FACTS.items() if facts.get(fact) is True)


def scheduler_view(node: Node) -> NodeInfo:
    return NodeInfo(name=node.name, labels=dict(node.connection.get("labels") or {}), capacity=capacity(node),
                    confidential=confidential_types(node), schedulable=node.schedulable,
                    healthy=node.status != "unreachable")
