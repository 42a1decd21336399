"""RunEventParser: ansible-runner events (shapes as ansible-runner 2.4 writes them) -> what a run
learned per node, RunEvents for listeners, and secrets masked before the event is written."""

import json

import pytest

from goship_ctl.reconciler.events import MASK, MESSAGE_CHARS, RunEventParser, mask_text, secret_values
from goship_ctl.reconciler.runner import _drop_environment, _mask_files

SECRET = "hunter2-very-secret"


def event(kind, host=None, task="", action="", res=None, uuid="t1", **data):
    event_data = dict(host=host, task=task, task_action=action, task_uuid=uuid, res=res, **data)
    return {"event": kind, "uuid": "e-" + kind, "counter": 1, "event_data": event_data}


def parser_with(nodes=("n1", "n2"), **kwargs):
    seen = []
    return RunEventParser(list(nodes), seen.append, **kwargs), seen


def test_facts_guest_states_and_a_changed_loop():
    parser, seen = parser_with()
    parser.handle(event("runner_on_start", "n1", "Read the node's facts", "goship.core.host_info"))
    parser.handle(event("runner_on_ok", "n1", "Read the node's facts", "goship.core.host_info",
                        {"changed": False, "host": {"capacity": {"vcpus_total": 2}}}))
    parser.handle(event("runner_on_ok", "n1", "List VMs", "goship.core.host_info", {"host": {"other": True}}, uuid="t2"))
    item = {"changed": True, "project_vm_current": {"project": "alpha"}, "ansible_loop_var": "project_vm_current",
            "_ansible_item_label": "goship-n1-alpha"}
    parser.handle(event("runner_item_on_ok", "n1", "Converge", "ansible.builtin.include_tasks", item, uuid="t3"))
    parser.handle(event("runner_on_ok", "n1", "Converge", "ansible.builtin.include_tasks",
                        {"changed": True, "results": [item]}, uuid="t3"))
    one_vm = {"invocation": {"module_args": {"project": "alpha", "node": "n1"}}, "vms": [{"domain": "x"}]}
    parser.handle(event("runner_on_ok", "n1", "One VM", "goship.core.guest_status", one_vm, uuid="t4"))
    every_vm = {"invocation": {"module_args": {"project": None, "node": "n1"}}, "vms": [{"domain": "goship-n1-alpha"}]}
    parser.handle(event("runner_on_ok", "n1", "Read guest_init's status", "goship.core.guest_status", every_vm, uuid="t5"))
    parser.handle(event("playbook_on_stats", ok={"n1": 5}, dark={}, failures={}, skipped={}))

    results = parser.results("successful")
    n1 = results["n1"]
    assert (n1.result, n1.changed, n1.finished) == ("ok", 1, True)
    assert n1.facts == {"capacity": {"vcpus_total": 2}}, "the first host_info result is the node's facts"
    assert n1.guest_vms == [{"domain": "goship-n1-alpha"}], "only a status of every VM replaces the node's state"
    kinds = [(e.kind, e.task, e.message, e.project) for e in seen]
    assert ("task", "Read the node's facts", "", None) == kinds[0]
    assert ("changed", "Converge", "goship-n1-alpha", "alpha") in kinds
    assert sum(1 for kind in kinds if kind[1] == "Converge") == 1, "a loop task is reported per item, not again in sum"
    assert (results["n2"].result, results["n2"].message) == ("failed", "the run did not reach this node")


def test_failed_and_unreachable_nodes():
    parser, seen = parser_with()
    parser.handle(event("runner_on_unreachable", "n2", "Install", "ansible.builtin.apt",
                        {"unreachable": True, "msg": "Failed to connect to the host via ssh: Connection refused"}))
    parser.handle(event("runner_on_failed", "n1", "Ignored", "ansible.builtin.command", {"msg": "x"}, ignore_errors=True))
    failed_item = {"failed": True, "msg": "qemu: Permission denied", "_ansible_item_label": "goship-n1-a"}
    parser.handle(event("runner_item_on_failed", "n1", "Boot", "goship.core.project_vm", failed_item, uuid="t9"))
    parser.handle(event("runner_on_failed", "n1", "Boot", "goship.core.project_vm",
                        {"msg": "One or more items failed", "results": [failed_item]}, uuid="t9"))
    parser.handle(event("playbook_on_stats", ok={"n1": 3}, dark={"n2": 1}, failures={"n1": 1}, skipped={}))

    results = parser.results("failed")
    assert results["n2"].result == "unreachable" and "Connection refused" in results["n2"].message
    assert results["n1"].result == "failed"
    assert results["n1"].message == "Boot: goship-n1-a: qemu: Permission denied"
    assert [(e.kind, e.node) for e in seen] == [("unreachable", "n2"), ("failed", "n1")]


def test_failure_text_quoting_a_guest_is_one_printable_line():
    parser, seen = parser_with(nodes=("n1",))
    said = "guest_init: bad_request: apps[0]: \x1b]0;owned\x07\x1b[2Jbad\u202e\nline two" + "x" * 2000
    parser.handle(event("runner_on_failed", "n1", "Push apps", "goship.core.guest_apps", {"msg": said}))
    message = parser.results("failed")["n1"].message
    assert message.startswith("Push apps: guest_init: bad_request: apps[0]: ]0;owned[2Jbad line two")
    assert len(message) == MESSAGE_CHARS and message.endswith("...") and seen[0].message == message


@pytest.mark.parametrize("status, result", [("timeout", "timeout"), ("canceled", "cancelled"), ("failed", "failed")])
def test_nodes_a_stopped_run_did_not_finish(status, result):
    parser, _seen = parser_with(("n1",))
    parser.handle(event("runner_on_ok", "n1", "Facts", "goship.core.host_info", {"host": {}}))
    assert parser.results(status)["n1"].result == result


def test_watched_module_results_are_kept():
    parser, _seen = parser_with(("n1",), watch=("goship.core.guest_signal",))
    parser.handle(event("runner_on_ok", "n1", "Signal", "goship.core.guest_signal",
                        {"changed": True, "signalled": [{"replica": 1, "pid": 42}]}))
    parser.handle(event("runner_on_ok", "n1", "Other", "goship.core.guest_logs", {"lines": []}, uuid="t2"))
    assert parser.results("successful")["n1"].module_results == {
        "goship.core.guest_signal": [{"changed": True, "signalled": [{"replica": 1, "pid": 42}]}]}


def test_secrets_are_masked_in_the_event_ansible_runner_writes():
    document = {"projects": {"alpha": {"apps": [
        {"name": "web", "env": {"PLAIN": "visible", "DB": {"value": SECRET, "secret": True},
                                "NOT_SECRET": {"value": "shown", "secret": False}}}]}}}
    secrets = secret_values(document)
    assert secrets == {SECRET}
    parser, seen = parser_with(("n1",), secrets=secrets)
    item = {"changed": True, "item": {"project": "alpha", "apps": [{"env": {"DB": {"value": SECRET}}}]},
            "_ansible_item_label": "label with %s inside" % SECRET, "stdout_lines": ["x" + SECRET + "y"]}
    raw = event("runner_item_on_ok", "n1", "Push apps", "goship.core.guest_apps", item)
    assert parser.handle(raw) is True
    written = json.dumps(raw)
    assert SECRET not in written and written.count(MASK) == 3
    assert SECRET not in repr(seen)


def test_saved_output_is_masked_and_the_environment_dropped(tmp_path):
    stdout = tmp_path / "stdout"
    stdout.write_text("ok: [n1] => %s\n" % SECRET)
    _mask_files((stdout, tmp_path / "missing"), frozenset({SECRET}))
    assert stdout.read_text() == "ok: [n1] => %s\n" % MASK
    command = tmp_path / "command"
    command.write_text(json.dumps({"command": ["ansible-playbook"], "cwd": "/x", "env": {"GOSHIP_TOKEN": "gsp_x"}}))
    _drop_environment(command)
    assert json.loads(command.read_text()) == {"command": ["ansible-playbook"], "cwd": "/x"}
    assert mask_text("a%sb" % SECRET, frozenset({SECRET, ""})) == "a%sb" % MASK
