"""The desired-state document: loading, validation messages (field paths), placement per node."""

import copy

import pytest

from inventory_helpers import fixture_document
from ansible_collections.goship.core.plugins.plugin_utils import desired_state


def problems_of(document):
    with pytest.raises(desired_state.DesiredStateError) as caught:
        desired_state.validate(document)
    return caught.value.problems


def changed(edit):
    """The fixture document after ``edit(document)``."""
    document = fixture_document()
    edit(document)
    return document


def test_fixture_document_is_valid():
    document = fixture_document()
    assert desired_state.validate(document) is document


def test_minimal_document_is_valid():
    desired_state.validate({"apiVersion": "goship/v1", "kind": "DesiredState", "nodes": {}})


@pytest.mark.parametrize("edit, expected", [
    (lambda d: d.update(apiVersion="goship/v2"), "apiVersion: must be 'goship/v1', got 'goship/v2'"),
    (lambda d: d.update(kind="Inventory"), "kind: must be 'DesiredState', got 'Inventory'"),
    (lambda d: d.update(extra=1), "extra: unknown field (known: apiVersion, kind, nodes, projects)"),
    (lambda d: d.pop("nodes"), "nodes: required (a mapping of node name to node)"),
    (lambda d: d.update(projects=[]), "projects: must be a mapping of project name to project, got list"),
    (lambda d: d["nodes"].update(Node_3={}), "nodes.Node_3: node name must be a DNS label"),
    (lambda d: d["nodes"].update({"-n": {}}), "nodes.-n: node name must be a DNS label"),
    (lambda d: d["nodes"].update({"n" * 64: {}}), "nodes.%s: node name must be a DNS label" % ("n" * 64)),
    (lambda d: d["nodes"].update(node3=None), "nodes.node3: must be a mapping, got null"),
    (lambda d: d["nodes"]["node2"].update(port=0), "nodes.node2.port: must be an integer from 1 to 65535"),
    (lambda d: d["nodes"]["node2"].update(port="22"), "nodes.node2.port: must be an integer from 1 to 65535"),
    (lambda d: d["nodes"]["node2"].update(hostname="x"), "nodes.node2.hostname: unknown field"),
    (lambda d: d["nodes"]["node2"].update(user=""), "nodes.node2.user: must be a non-empty string"),
    (lambda d: d["nodes"]["node1"].update(state_root="relative"), "nodes.node1.state_root: must be an absolute path"),
    (lambda d: d["nodes"]["node1"].update(labels=["a"]), "nodes.node1.labels: must be a mapping, got list"),
    (lambda d: d["nodes"]["node1"]["labels"].update(zone=["a"]), "nodes.node1.labels.zone: must be a string, number or boolean"),
    (lambda d: d["nodes"]["node1"]["vars"].update(goship_node="x"), "nodes.node1.vars.goship_node: is set by GoShip from the document"),
    (lambda d: d["nodes"]["node2"].update(vars={"ansible_host": "x"}), "nodes.node2.vars.ansible_host: conflicts with nodes.node2.host"),
    (lambda d: d["nodes"]["node1"]["vars"].update({"not-a-name": 1}), "nodes.node1.vars: 'not-a-name' is not a valid variable name"),
    (lambda d: d["projects"].update(Alpha={"generation": 0, "nodes": []}), "projects.Alpha: project name must be a DNS label"),
    (lambda d: d["projects"]["alpha"].pop("generation"), "projects.alpha.generation: required"),
    (lambda d: d["projects"]["alpha"].update(generation=-1), "projects.alpha.generation: must be an integer >= 0"),
    (lambda d: d["projects"]["alpha"].update(generation=True), "projects.alpha.generation: must be an integer >= 0"),
    (lambda d: d["projects"]["alpha"].update(generation="3"), "projects.alpha.generation: must be an integer >= 0"),
    (lambda d: d["projects"]["alpha"].update(replicas=2), "projects.alpha.replicas: unknown field"),
    (lambda d: d["projects"]["alpha"].pop("nodes"), "projects.alpha.nodes: required (a list of node names)"),
    (lambda d: d["projects"]["alpha"]["nodes"].append("node9"), "projects.alpha.nodes[2]: unknown node 'node9' (not in nodes)"),
    (lambda d: d["projects"]["alpha"]["nodes"].append("node1"), "projects.alpha.nodes[2]: node 'node1' is listed twice"),
    (lambda d: d["projects"]["alpha"]["vm"].update(vcpus=0), "projects.alpha.vm.vcpus: must be an integer >= 1"),
    (lambda d: d["projects"]["alpha"].update(apps={}), "projects.alpha.apps: must be a list of apps, got dict"),
    (lambda d: d["projects"]["alpha"]["apps"][1].update(replicas=-1), "projects.alpha.apps[1].replicas: must be an integer >= 0"),
    (lambda d: d["projects"]["alpha"]["apps"][1].update(replicas=1.5), "projects.alpha.apps[1].replicas: must be an integer >= 0"),
    (lambda d: d["projects"]["alpha"]["apps"][1].pop("replicas"), "projects.alpha.apps[1].replicas: must be an integer >= 0"),
    (lambda d: d["projects"]["alpha"]["apps"][1].update(name="web"), "projects.alpha.apps[1].name: duplicate app name 'web' (also projects.alpha.apps[0])"),
    (lambda d: d["projects"]["alpha"]["apps"][1].update(name="Web_1"), "projects.alpha.apps[1].name: app name must be a DNS label"),
    (lambda d: d["projects"]["alpha"]["apps"][1].pop("image"), "projects.alpha.apps[1].image: must be a non-empty string"),
    (lambda d: d["projects"]["alpha"]["apps"][0].update(ports=[80, 70000]), "projects.alpha.apps[0].ports[1]: must be an integer from 1 to 65535"),
    (lambda d: d["projects"]["alpha"]["apps"][0]["env"].update(PORT=8080), "projects.alpha.apps[0].env.PORT: must be a string (quote numbers)"),
    (lambda d: d["projects"]["alpha"]["apps"][0]["env"].update({"1X": "v"}), "projects.alpha.apps[0].env: '1X' is not a valid environment variable name"),
])
def test_problem_names_the_field(edit, expected):
    problems = problems_of(changed(edit))
    assert any(problem.startswith(expected) for problem in problems), problems


def test_every_problem_is_reported_at_once():
    def edit(document):
        document["projects"]["alpha"]["generation"] = -1
        document["projects"]["alpha"]["apps"][1]["replicas"] = "two"
        document["nodes"]["node2"]["port"] = 0
    problems = problems_of(changed(edit))
    assert problems == [
        "nodes.node2.port: must be an integer from 1 to 65535",
        "projects.alpha.generation: must be an integer >= 0",
        "projects.alpha.apps[1].replicas: must be an integer >= 0",
    ]
    error = desired_state.DesiredStateError(problems)
    assert str(error).startswith("invalid desired state: nodes.node2.port: ")


def test_document_must_be_a_mapping():
    assert problems_of(["nodes"]) == ["<document>: must be a mapping, got list"]


def test_dns_label_rejects_trailing_newline():
    assert problems_of(changed(lambda d: d["nodes"].update({"node3\n": {}})))


def test_load_yaml_and_json_errors_are_desired_state_errors():
    with pytest.raises(desired_state.DesiredStateError, match=r"<document>: not valid YAML"):
        desired_state.load_yaml("nodes: [unclosed")
    with pytest.raises(desired_state.DesiredStateError, match=r"<document>: not valid JSON"):
        desired_state.load_json("{'single': 'quotes'}")


def test_project_vms_by_node_sorted_by_project_and_leaves_the_document_alone():
    document = fixture_document()
    original = copy.deepcopy(document)
    placement = desired_state.project_vms_by_node(document)
    assert [vm["project"] for vm in placement["node2"]] == ["alpha", "beta-two"]
    assert [vm["domain"] for vm in placement["node2"]] == ["goship-node2-alpha", "goship-node2-beta-two"]
    assert placement["node1"] == [{
        "project": "alpha", "domain": "goship-node1-alpha", "generation": 3,
        "vm": {"vcpus": 2, "memory_mib": 512}, "apps": document["projects"]["alpha"]["apps"],
    }]
    assert placement["node2"][1] == {"project": "beta-two", "domain": "goship-node2-beta-two",
                                     "generation": 0, "vm": {}, "apps": []}
    assert document == original


def test_node_without_projects_has_empty_placement():
    document = changed(lambda d: d["nodes"].update(node3={}))
    assert desired_state.project_vms_by_node(desired_state.validate(document))["node3"] == []
    assert desired_state.node_state_root(document["nodes"]["node3"]) == "/var/lib/goship"
