"""VM names and paths cannot escape the state root: every goship.core module that builds a path
from a project or node name refuses names that are not DNS labels, before it touches anything;
so does the inventory's state-file validator. Run through ansible-playbook for real."""

import os

import pytest

from ansible_play import run_tasks
from goship_ctl.collection import desired_state_module

ESCAPES = ["../x", "..", "x/../../etc", "/etc", "a b;$(id)"]
# "alpha\n": domain_xml.NAME_PART ends in `$`, which also matches before a final newline (reported)
TRAILING_NEWLINE = "alpha\n"


def module_tasks(state_root, project, node):
    common = {"project": project, "node": node, "state_root": state_root}
    tasks = [
        {"goship.core.project_vm": dict(common, state="running", image_dir=state_root + "/images")},
        {"goship.core.project_vm": dict(common, state="absent")},
        {"goship.core.guest_apps": dict(common, generation=1, apps=[])},
        {"goship.core.guest_logs": dict(common, app="web")},
        {"goship.core.guest_signal": dict(common, app="web", signal="KILL")},
        {"goship.core.guest_status": common},
    ]
    return [dict(task, ignore_errors=True) for task in tasks]


def tree(root):
    return sorted(os.path.relpath(os.path.join(directory, name), root)
                  for directory, subdirs, files in os.walk(root) for name in subdirs + files)


def refused_by_every_module(qemu_tmp, names):
    """One playbook: each module with each bad name as the project, then as the node."""
    state_root = qemu_tmp / "root"
    state_root.mkdir()
    cases = [(bad, task) for bad in names
             for task in module_tasks(str(state_root), bad, "node1") + module_tasks(str(state_root), "alpha", bad)]
    results = run_tasks([task for bad, task in cases], timeout=900)
    assert len(results) == len(cases)
    for (bad, task), result in zip(cases, results):
        assert result.get("failed"), (task, result)
        assert repr(bad) in result["msg"] and "must be" in result["msg"], (task, result["msg"])  # names the value and the rule
    assert tree(qemu_tmp) == ["root"], "a refused task left files behind: %s" % tree(qemu_tmp)


def test_modules_refuse_names_that_could_escape_the_state_root(qemu_tmp):
    refused_by_every_module(qemu_tmp, ESCAPES)


def test_modules_refuse_a_name_with_a_trailing_newline(qemu_tmp):
    refused_by_every_module(qemu_tmp, [TRAILING_NEWLINE])


@pytest.mark.parametrize("bad", ESCAPES + [TRAILING_NEWLINE])
def test_inventory_validator_refuses_the_same_names(bad):
    shared = desired_state_module()
    for document in (
        {"apiVersion": "goship/v1", "kind": "DesiredState", "nodes": {bad: {"connection": "local"}}, "projects": {}},
        {"apiVersion": "goship/v1", "kind": "DesiredState", "nodes": {"n1": {"connection": "local"}},
         "projects": {bad: {"generation": 1, "nodes": ["n1"], "vm": {}, "apps": []}}},
    ):
        with pytest.raises(shared.DesiredStateError):
            shared.validate(document)
