"""What the scheduler sees: nodes, project requests, decisions."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping


@dataclass(frozen=True)
class Resources:
    vcpus: int
    memory_mib: int

    def __add__(self, other: Resources) -> Resources:
        return Resources(self.vcpus + other.vcpus, self.memory_mib + other.memory_mib)


@dataclass(frozen=True)
class NodeInfo:
    name: str
    labels: Mapping[str, object] = field(default_factory=dict)
    capacity: Resources | None = None  # None: not known yet (no host facts, no override)
    confidential: frozenset[str] = frozenset()  # sev, sev-es, sev-snp, tdx
    schedulable: bool = True  # False once drained
    healthy: bool = True  # False while the node is unreachable


@dataclass(frozen=True)
class PlacementRule:
    """spec.placement: ``count`` alone, ``node_names`` alone, or ``selector`` with an optional count."""

    count: int | None = None
    node_names: tuple[str, ...] | None = None
    selector: Mapping[str, object] | None = None
    spread_by: str | None = None

    @classmethod
    def from_spec(cls, placement: Mapping) -> PlacementRule:
        names = placement.get("nodeNames")
        return cls(count=placement.get("nodes"), node_names=tuple(names) if names is not None else None,
                   selector=placement.get("selector"), spread_by=placement.get("spreadBy"))


@dataclass(frozen=True)
class Request:
    project: str
    rule: PlacementRule
    demand: Resources
    confidential: str | None = None
    current: tuple[str, ...] = ()


@dataclass(frozen=True)
class Decision:
    """Where a project runs. ``reason`` is None when the rule is fully met; otherwise it says which
    constraint failed on which nodes, and ``nodes`` holds the part that could be placed."""

    nodes: tuple[str, ...]
    wanted: int
    reason: str | None = None

    @property
    def scheduled(self) -> bool:
        return self.reason is None
