"""Dependency closure of the image's packages, from ``apt-cache depends --recurse`` output.

apt-cache prints every reachable package once, then its dependency lines::

    libpython3.11-stdlib
     |Depends: media-types        <- "|": this alternative or the next line's
      Depends: mime-support
      Depends: libc6
    crun
      Depends: libsystemd0
        libelogind0               <- deeper indent: a package providing the name above
    linux-image-6.1.0-57-amd64
      Depends: <linux-initramfs-tool>   <- <name>: virtual, only providers are real

``--recurse`` follows every alternative and every provider; ``select_closure`` instead
takes one: an alternative already chosen, else the first real package (or a virtual's
first provider), skipping groups that name a package the guest must not depend on.
"""

from __future__ import annotations

from dataclasses import dataclass, field

DEPENDENCY_KINDS = ("Depends", "PreDepends")


@dataclass(frozen=True)
class Alternative:
    name: str
    virtual: bool = False
    providers: tuple[str, ...] = ()


@dataclass
class DependencyGraph:
    """Packages apt-cache knows, each with its dependency groups (lists of alternatives)."""

    packages: dict[str, list[list[Alternative]]] = field(default_factory=dict)
    virtual: set[str] = field(default_factory=set)


class UnknownPackage(Exception):
    def __init__(self, name: str, virtual: bool = False):
        self.name = name
        self.virtual = virtual
        kind = "a virtual package" if virtual else "not found in the configured apt sources"
        super().__init__(f"package {name!r} is {kind}")


class Unsatisfiable(Exception):
    def __init__(self, package: str, group: list[Alternative]):
        self.package = package
        names = " | ".join(alt.name for alt in group)
        super().__init__(f"dependency of {package!r} cannot be satisfied: {names}")


def _package_name(token: str) -> tuple[str, bool]:
    """``<name>`` -> (name, virtual); drops a ``:any``/``:amd64`` qualifier."""
    virtual = token.startswith("<") and token.endswith(">")
    name = token[1:-1] if virtual else token
    return name.split(":", 1)[0], virtual


def parse_depends(text: str) -> DependencyGraph:
    graph = DependencyGraph()
    groups: list[list[Alternative]] | None = None
    open_group: list[Alternative] | None = None  # the group a "|" line left open
    last: tuple[list[Alternative], int] | None = None  # where provider lines attach
    for raw in text.splitlines():
        if not raw.strip():
            continue
        if not raw.startswith(" "):
            name, virtual = _package_name(raw.strip())
            if virtual:
                graph.virtual.add(name)
                groups = None
            else:
                groups = graph.packages.setdefault(name, [])
            open_group, last = None, None
            continue
        if groups is None:
            continue
        if raw.startswith("    "):
            if last is not None:
                group, index = last
                provider = _package_name(raw.strip())[0]
                alt = group[index]
                group[index] = Alternative(alt.name, alt.virtual, alt.providers + (provider,))
            continue
        kind, dummy, target = raw.strip().lstrip("|").partition(": ")
        if kind not in DEPENDENCY_KINDS:
            open_group, last = None, None
            continue
        name, virtual = _package_name(target.strip())
        group = open_group if open_group is not None else []
        if open_group is None:
            groups.append(group)
        group.append(Alternative(name, virtual))
        last = (group, len(group) - 1)
        open_group = group if raw.startswith(" |") else None
    return graph


def select_closure(graph: DependencyGraph, roots: list[str],
                   unfollowed: frozenset[str] = frozenset()) -> list[str]:
    """Concrete packages needed by ``roots``, in discovery order."""
    for root in roots:
        if root not in graph.packages:
            raise UnknownPackage(root, virtual=root in graph.virtual)
    chosen: dict[str, None] = {}
    queue = list(roots)
    while queue:
        name = queue.pop(0)
        if name in chosen:
            continue
        chosen[name] = None
        for group in graph.packages[name]:
            candidates = [n for alt in group for n in (alt.name, *alt.providers)]
            if any(n in unfollowed for n in candidates):
                continue
            if any(n in chosen or n in queue for n in candidates):
                continue
            queue.append(_pick(graph, name, group))
    return list(chosen)


def _pick(graph: DependencyGraph, package: str, group: list[Alternative]) -> str:
    for alt in group:
        if not alt.virtual and alt.name in graph.packages:
            return alt.name
        for provider in alt.providers:
            if provider in graph.packages:
                return provider
    raise Unsatisfiable(package, group)
