"""ansible-runner events of one run, read as GoShip needs them.

``RunEventParser.handle`` is the run's ``event_handler``: it masks every secret value of the
desired state in the event before ansible-runner writes it to ``job_events/``, turns it into a
small ``RunEvent`` for listeners (progress display, event history), and keeps per node what
the run learned: host facts (``goship.core.host_info``), the guests' state (the last
``goship.core.guest_status`` over all VMs of the node), results of other watched modules,
failures and unreachability.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

from goship_ctl.reconciler.guest_report import clean_text

HOST_INFO = "goship.core.host_info"
GUEST_STATUS = "goship.core.guest_status"
GUEST_SIGNAL = "goship.core.guest_signal"
GUEST_LOGS = "goship.core.guest_logs"
MASK = "********"
MESSAGE_CHARS = 500


@dataclass(frozen=True)
class RunEvent:
    """kind: task (a task starts on a node), ok, changed, failed, unreachable, skipped."""

    kind: str
    node: str
    task: str = ""
    message: str = ""
    project: str | None = None
    at: float = field(default_factory=time.time)


@dataclass
class HostResult:
    node: str
    result: str = "ok"  # ok, failed, unreachable, timeout, cancelled (goship_ctl.reconciler.recorder.RUN_RESULTS)
    message: str = ""
    facts: dict | None = None
    guest_vms: list | None = None
    changed: int = 0
    module_results: dict[str, list] = field(default_factory=dict)
    finished: bool = False


class RunEventParser:
    def __init__(self, nodes: list[str], on_event: Callable[[RunEvent], None] | None = None,
                 secrets: frozenset[str] = frozenset(), watch: tuple[str, ...] = ()):
        self._hosts = {node: HostResult(node) for node in nodes}
        self._on_event = on_event
        self._secrets = sorted((s for s in secrets if s), key=len, reverse=True)
        self._watch = frozenset(watch)
        self._itemized: set[tuple[str, str]] = set()  # (node, task uuid) whose items were reported one by one

    def handle(self, event: dict) -> bool:
        """ansible-runner's event_handler: True = write the (masked) event to job_events/."""
        if self._secrets:
            _mask_in_place(event, self._secrets)
        data = event.get("event_data") or {}
        host = self._hosts.get(data.get("host") or "")
        kind = event.get("event", "")
        if kind == "playbook_on_stats":
            self._stats(data)
        elif host is not None:
            self._host_event(host, kind, data)
        return True

    def results(self, status: str, why: str = "") -> dict[str, HostResult]:
        """Per node, once the run ended with ansible-runner ``status``; ``why``: the run's own error."""
        for host in self._hosts.values():
            if not host.finished and host.result == "ok":
                if status == "timeout":
                    host.result, host.message = "timeout", "the run hit its time limit"
                elif status == "canceled":
                    host.result, host.message = "cancelled", "the run was cancelled"
                elif status != "successful":
                    host.result, host.message = "failed", _clip(why or "the run failed (status %s)" % status)
                else:
                    host.result, host.message = "failed", "the run did not reach this node"
        return dict(self._hosts)

    def _host_event(self, host: HostResult, kind: str, data: dict) -> None:
        task, action, res = data.get("task", ""), data.get("task_action", ""), data.get("res") or {}
        project = _item_project(res)
        task_key = (host.node, data.get("task_uuid", ""))
        if kind.startswith("runner_item_on_"):
            self._itemized.add(task_key)
        summary_only = kind in ("runner_on_ok", "runner_on_failed") and task_key in self._itemized
        if kind == "runner_on_start":
            self._emit(RunEvent("task", host.node, task, project=project))
        elif kind in ("runner_on_ok", "runner_item_on_ok"):
            changed = bool(res.get("changed"))
            if kind == "runner_on_ok":
                host.changed += changed
                self._collect(host, action, res)
            if not summary_only:
                self._emit(RunEvent("changed" if changed else "ok", host.node, task, _label(res), project))
        elif kind in ("runner_on_failed", "runner_item_on_failed"):
            if data.get("ignore_errors"):
                return
            message = _failure_text(task, res)
            if kind == "runner_on_failed":
                host.result, host.message = "failed", message
            if not summary_only:
                self._emit(RunEvent("failed", host.node, task, message, project))
        elif kind == "runner_on_unreachable":
            host.result = "unreachable"
            host.message = _clip(str(res.get("msg") or "unreachable"))
            self._emit(RunEvent("unreachable", host.node, task, host.message))
        elif kind == "runner_on_skipped":
            self._emit(RunEvent("skipped", host.node, task, project=project))

    def _collect(self, host: HostResult, action: str, res: dict) -> None:
        if action == HOST_INFO and host.facts is None and isinstance(res.get("host"), dict):
            host.facts = res["host"]
        elif action == GUEST_STATUS and not (res.get("invocation", {}).get("module_args") or {}).get("project"):
            host.guest_vms = res.get("vms") or []
        if action in self._watch:
            host.module_results.setdefault(action, []).append(res)

    def _stats(self, data: dict) -> None:
        for node, host in self._hosts.items():
            if node in (data.get("dark") or {}):
                host.result = "unreachable"
            elif node in (data.get("failures") or {}):
                host.result = "failed"
            if any(node in (data.get(key) or {}) for key in ("processed", "ok", "dark", "failures", "skipped")):
                host.finished = True

    def _emit(self, event: RunEvent) -> None:
        if self._on_event is not None:
            self._on_event(event)


def _item_project(res: dict) -> str | None:
    item = res.get(res.get("ansible_loop_var") or "item")
    return item.get("project") if isinstance(item, dict) else None


def _label(res: dict) -> str:
    label = res.get("_ansible_item_label")
    return "" if label is None else _clip(str(label))


def _failure_text(task: str, res: dict) -> str:
    message = res.get("msg") or res.get("stderr") or res.get("reason") or "failed"
    failed_items = [r for r in res.get("results", []) if isinstance(r, dict) and r.get("failed")]
    if failed_items:
        message = "%s: %s" % (failed_items[0].get("_ansible_item_label", "item"), failed_items[0].get("msg", message))
    return _clip("%s: %s" % (task, message))


def _clip(text: str) -> str:
    """One line of printable text, at most MESSAGE_CHARS: a failure can quote what a guest said."""
    text = clean_text(text, MESSAGE_CHARS + 1)
    return text if len(text) <= MESSAGE_CHARS else text[:MESSAGE_CHARS - 3] + "..."


def _mask_in_place(value, secrets: list[str]):
    """Replace every occurrence of a secret in the strings of a JSON value (dicts and lists in place)."""
    if isinstance(value, dict):
        for key, item in value.items():
            value[key] = _mask_in_place(item, secrets)
        return value
    if isinstance(value, list):
        for index, item in enumerate(value):
            value[index] = _mask_in_place(item, secrets)
        return value
    if isinstance(value, str):
        for secret in secrets:
            if secret in value:
                value = value.replace(secret, MASK)
        return value
    return value


def run_error(output: str) -> str:
    """The reason a run failed before reaching its hosts, from its output: the inventory's complaint,
    else Ansible's last error line."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    for line in lines:
        if "goship inventory:" in line:
            return line[line.index("goship inventory:"):]
    errors = [line for line in lines if line.startswith(("[ERROR]", "ERROR!"))]
    return errors[-1] if errors else ""


def mask_text(text: str, secrets: frozenset[str]) -> str:
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text


def secret_values(document: dict) -> frozenset[str]:
    """Every env value marked ``secret: true`` in a DesiredState document."""
    return frozenset(
        value["value"]
        for project in (document.get("projects") or {}).values()
        for app in project.get("apps") or []
        for value in (app.get("env") or {}).values()
        if isinstance(value, dict) and value.get("secret") and isinstance(value.get("value"), str))
