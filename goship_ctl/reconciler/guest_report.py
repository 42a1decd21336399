"""What ``goship.core.guest_status`` reports, checked before it reaches the store.

The ``status`` of each VM is guest_init's reply: the guest is untrusted by the host, so it may be
any JSON at all. Nothing in it may make the recorder fail, grow the store without bound, or put
terminal escapes into ``goship-ctl get``/``describe``: text loses its control and format
characters and is cut to a length, numbers must be integers in their column's range, names must
be DNS labels, and the apps and replicas kept are bounded. What does not fit is dropped and the
VM's message says "guest reported malformed status: ..." with the first problems found. Unknown
fields are ignored (a newer guest_init may report more).
"""

from __future__ import annotations

import itertools
import math
import re
import unicodedata
from dataclasses import dataclass, field

from goship_ctl.spec.project import MAX_REPLICAS

DNS_LABEL = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\Z")
STATE = re.compile(r"[a-z][a-z0-9_-]{0,31}\Z")
DOMAIN = re.compile(r"goship-[a-z0-9-]{1,150}\Z")
INT32_MAX = 2 ** 31 - 1
INT64_MAX = 2 ** 63 - 1
MAX_APPS = 256  # per VM
MAX_REPLICA_ROWS = 4096  # per VM, all apps together
MAX_ERROR_CHARS = 1000
MAX_MESSAGE_CHARS = 2000
MAX_PROBLEMS_SHOWN = 3
# Dropped from text: controls (C0, DEL, C1: terminal escapes), format characters (bidi overrides,
# zero-width), lone surrogates (not encodable), private use.
DROPPED_CATEGORIES = frozenset(("Cc", "Cf", "Cs", "Co"))
BLANKS = str.maketrans({"\t": " ", "\n": " ", "\r": " "})


def clean_text(value, limit: int) -> str:
    """``value`` as printable one-line text of at most ``limit`` characters ("" if not a string)."""
    if not isinstance(value, str):
        return ""
    value = value[:limit * 4].translate(BLANKS)  # cut first: a giant string is not scanned whole
    return "".join(ch for ch in value if unicodedata.category(ch) not in DROPPED_CATEGORIES)[:limit]


@dataclass
class Replica:
    app: str
    index: int
    state: str
    restarts: int = 0
    exit_code: int | None = None
    health: str | None = None
    last_error: str = ""
    cpu_seconds: float | None = None
    memory_bytes: int | None = None


@dataclass
class VmReport:
    project: str
    domain: str
    state: str  # running, shut-off or unresponsive
    observed_generation: int | None = None
    message: str = ""
    replicas: list[Replica] = field(default_factory=list)


def vm_report(node: str, vm) -> VmReport | None:
    """One entry of ``guest_status``'s ``vms``; None when it names no valid project."""
    if not isinstance(vm, dict) or not _is_label(vm.get("project")):
        return None
    project = vm["project"]
    domain = vm.get("domain")
    if not (isinstance(domain, str) and DOMAIN.match(domain)):
        domain = "goship-%s-%s" % (node, project)
    if vm.get("active") is not True:
        state = "shut-off"
    elif vm.get("reachable") is True:
        state = "running"
    else:
        state = "unresponsive"
    report = VmReport(project=project, domain=domain, state=state,
                      message=clean_text(vm.get("error"), MAX_MESSAGE_CHARS))
    if "status" in vm and vm["status"] is not None:
        problems: list[str] = []
        _read_status(vm["status"], report, problems)
        if problems:
            shown = "; ".join(problems[:MAX_PROBLEMS_SHOWN])  # made of types and checked names only
            more = " (+%d more)" % (len(problems) - MAX_PROBLEMS_SHOWN) if len(problems) > MAX_PROBLEMS_SHOWN else ""
            note = "guest reported malformed status: %s%s" % (shown, more)
            report.message = "; ".join(part for part in (note, report.message) if part)[:MAX_MESSAGE_CHARS]
    return report


def _read_status(status, report: VmReport, problems: list[str]) -> None:
    if not isinstance(status, dict):
        problems.append("status is %s, not an object" % _kind(status))
        return
    generation = status.get("generation")
    if generation is not None:
        if _is_int(generation, 0, INT32_MAX):
            report.observed_generation = generation
        else:
            problems.append("generation: %s is not a count" % _kind(generation))
    apps = status.get("apps")
    if apps is None:
        return
    if not isinstance(apps, dict):
        problems.append("apps is %s, not an object" % _kind(apps))
        return
    if len(apps) > MAX_APPS:
        problems.append("%d apps, only the first %d kept" % (len(apps), MAX_APPS))
    for name, app in itertools.islice(apps.items(), MAX_APPS):
        replicas = app.get("replicas", []) if isinstance(app, dict) else None
        if not _is_label(name):
            problems.append("an app name is not a DNS label")
        elif not isinstance(replicas, list):
            problems.append("apps.%s: not an object with a list of replicas" % name)
        else:
            _read_replicas(name, replicas, report, problems)


def _read_replicas(app: str, replicas: list, report: VmReport, problems: list[str]) -> None:
    seen = set()
    for position, replica in enumerate(replicas):
        where = "apps.%s.replicas[%d]" % (app, position)
        if len(report.replicas) >= MAX_REPLICA_ROWS:
            problems.append("more than %d replicas, the rest ignored" % MAX_REPLICA_ROWS)
            return
        if not isinstance(replica, dict):
            problems.append("%s: %s, not an object" % (where, _kind(replica)))
            continue
        index = replica.get("index")
        if not _is_int(index, 0, MAX_REPLICAS - 1) or index in seen:
            problems.append("%s.index: not a new replica number below %d" % (where, MAX_REPLICAS))
            continue
        seen.add(index)
        state = replica.get("state")
        if not (isinstance(state, str) and STATE.match(state)):
            problems.append("%s.state: not a state name" % where)
            state = "unknown"
        row = Replica(app=app, index=index, state=state, health=_health_text(replica.get("health")),
                      last_error=clean_text(replica.get("last_error"), MAX_ERROR_CHARS))
        row.restarts = _number(replica, "restarts", 0, INT32_MAX, where, problems) or 0
        row.exit_code = _number(replica, "exit_code", -INT32_MAX - 1, INT32_MAX, where, problems)
        row.memory_bytes = _number(replica, "memory_bytes", 0, INT64_MAX, where, problems)
        cpu_usec = replica.get("cpu_usec")
        if cpu_usec is not None:
            if isinstance(cpu_usec, (int, float)) and not isinstance(cpu_usec, bool) and math.isfinite(cpu_usec) \
                    and 0 <= cpu_usec <= INT64_MAX:
                row.cpu_seconds = cpu_usec / 1e6
            else:
                problems.append("%s.cpu_usec: not a CPU time" % where)
        report.replicas.append(row)


def _number(replica: dict, key: str, low: int, high: int, where: str, problems: list[str]) -> int | None:
    value = replica.get(key)
    if value is None:
        return None
    if _is_int(value, low, high):
        return value
    problems.append("%s.%s: %s out of range" % (where, key, _kind(value)))
    return None


def _health_text(health) -> str | None:
    """guest_init reports ``{check: {status: passing|failing|unknown, ...}}`` or None (no checks)."""
    if not isinstance(health, dict) or not health:
        return None
    states = {check.get("status") for check in health.values()
              if isinstance(check, dict) and isinstance(check.get("status"), str)}
    for state in ("failing", "unknown"):
        if state in states:
            return state
    return "passing"


def _is_int(value, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def _is_label(value) -> bool:
    return isinstance(value, str) and DNS_LABEL.match(value) is not None


def _kind(value) -> str:
    """How a bad value is named in a message: its JSON type, never its (guest-chosen) content."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    return {str: "a string", list: "a list", dict: "an object", type(None): "null"}.get(type(value), "a value")
