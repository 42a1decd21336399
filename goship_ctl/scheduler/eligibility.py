"""Whether one node can take one project's VM, and if not, the constraint that fails."""

from __future__ import annotations

from typing import Mapping

from goship_ctl.scheduler.model import NodeInfo, Request, Resources


def selector_text(selector: Mapping[str, object]) -> str:
    return ",".join("%s=%s" % (key, selector[key]) for key in sorted(selector))


def matches(node: NodeInfo, request: Request) -> bool:
    """The node is one the rule names or selects (ignoring whether it can take the VM now)."""
    rule = request.rule
    if rule.node_names is not None and node.name not in rule.node_names:
        return False
    if rule.selector is not None:
        return all(_label_equal(node.labels.get(key), value) for key, value in rule.selector.items())
    return True


def static_problem(node: NodeInfo, request: Request) -> str | None:
    """Why the node can never take this VM as things stand, regardless of other projects."""
    if not node.schedulable:
        return "drained"
    if not node.healthy:
        return "unreachable"
    if node.capacity is None:
        return "capacity unknown (no host facts yet)"
    if request.confidential and request.confidential not in node.confidential:
        supported = ", ".join(sorted(node.confidential)) or "none"
        return "no confidential VM type %s (supports: %s)" % (request.confidential, supported)
    return None


def capacity_problem(node: NodeInfo, used: Resources, demand: Resources) -> str | None:
    """Why the VM does not fit next to ``used``, or None when it fits."""
    capacity = node.capacity
    if used.vcpus + demand.vcpus > capacity.vcpus:
        return "not enough vCPUs (needs %d, %d of %d free)" % (
            demand.vcpus, max(0, capacity.vcpus - used.vcpus), capacity.vcpus)
    if used.memory_mib + demand.memory_mib > capacity.memory_mib:
        return "not enough memory (needs %d MiB, %d of %d MiB free)" % (
            demand.memory_mib, max(0, capacity.memory_mib - used.memory_mib), capacity.memory_mib)
    return None


def _label_equal(actual, wanted) -> bool:
    """Label values compare as text (``zone: 1`` selects a node labelled ``zone: "1"``)."""
    return actual is not None and _label_text(actual) == _label_text(wanted)


def _label_text(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
