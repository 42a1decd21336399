"""The Project and node documents: what is accepted, and every refusal names its field path."""

import json
from pathlib import Path

import pytest
import yaml

from ctl_helpers import ALPHA, project
from goship_ctl.documents import MAX_DOCUMENT_BYTES, load_body, load_yaml_documents
from goship_ctl.errors import BadRequest, Invalid
from goship_ctl.spec.node import parse_node
from goship_ctl.spec.project import apps_list, parse_project, placement_dict, vm_dict


def problems(document):
    with pytest.raises(Invalid) as caught:
        parse_project(document)
    return {item["path"]: item["message"] for item in caught.value.problems}


def test_example_document_is_valid_and_keeps_pass_through_fields():
    document = project(apps=[{"name": "web", "image": "demo-web", "replicas": 2, "restart": "always"}])
    document["spec"]["vm"]["machine"] = "q35"
    parsed = parse_project(document)
    assert placement_dict(parsed) == {"nodes": 2}
    assert vm_dict(parsed) == {"vcpus": 2, "memory_mib": 512, "machine": "q35"}
    assert apps_list(parsed)[0]["restart"] == "always"


EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "alpha.yaml"


def test_issue_example_from_yaml():
    parsed = parse_project(load_yaml_documents(EXAMPLE.read_text(encoding="utf-8"))[0])
    assert parsed.metadata.name == "alpha" and parsed.spec.placement.nodes == 3


@pytest.mark.parametrize("mutate, path, fragment", [
    (lambda d: d.update(apiVersion="goship/v2"), "apiVersion", "goship/v1"),
    (lambda d: d.update(kind="Deployment"), "kind", "Project"),
    (lambda d: d["metadata"].update(name="Alpha_1"), "metadata.name", "pattern"),
    (lambda d: d["metadata"].update(labels={}), "metadata.labels", "Extra inputs"),
    (lambda d: d["spec"].update(placement={"nodes": -1}), "spec.placement.nodes", "greater than or equal to 0"),
    (lambda d: d["spec"].update(placement={"nodes": True}), "spec.placement.nodes", "valid integer"),
    (lambda d: d["spec"].update(placement={}), "spec.placement", "give nodes"),
    (lambda d: d["spec"].update(placement={"nodes": 1, "nodeNames": ["a"]}), "spec.placement", "cannot be combined"),
    (lambda d: d["spec"].update(placement={"nodeNames": ["a", "a"]}), "spec.placement", "twice"),
    (lambda d: d["spec"].update(placement={"selector": {}}), "spec.placement.selector", "at least 1"),
    (lambda d: d["spec"]["vm"].update(vcpus=0), "spec.vm.vcpus", "greater than or equal to 1"),
    (lambda d: d["spec"]["vm"].pop("memory_mib"), "spec.vm.memory_mib", "required"),
    (lambda d: d["spec"]["vm"].update(confidential={"type": "sgx"}), "spec.vm.confidential.type", "sev"),
    (lambda d: d["spec"]["apps"][0].update(replicas=-1), "spec.apps[0].replicas", "greater than or equal to 0"),
    (lambda d: d["spec"]["apps"][0].update(replicas="2"), "spec.apps[0].replicas", "valid integer"),
    (lambda d: d["spec"]["apps"][0].update(image=""), "spec.apps[0].image", "at least 1"),
    (lambda d: d["spec"]["apps"][0].update(ports=[8080, 70000]), "spec.apps[0].ports[1]", "less than or equal"),
    (lambda d: d["spec"]["apps"][0].update(env={"1BAD": "x"}), "spec.apps[0].env", "not a valid environment"),
    (lambda d: d["spec"]["apps"][0].update(env={"N": 5}), "spec.apps[0].env", "must be a string"),
    (lambda d: d["spec"]["apps"].append(dict(d["spec"]["apps"][0])), "spec.apps", "duplicate app name 'web'"),
    (lambda d: d["spec"].update(extra=1), "spec.extra", "Extra inputs"),
])
def test_bad_documents_name_the_field(mutate, path, fragment):
    document = project()
    mutate(document)
    found = problems(document)
    assert path in found, found
    assert fragment in found[path]


def test_every_problem_is_reported_at_once():
    document = project()
    document["spec"]["vm"]["vcpus"] = 0
    document["spec"]["apps"][0]["replicas"] = -3
    assert {"spec.vm.vcpus", "spec.apps[0].replicas"} <= set(problems(document))


def test_non_mapping_document():
    assert problems(["not", "a", "mapping"]) == {"<document>": "must be a mapping, got list"}


def test_status_of_a_read_document_is_ignored():
    document = project()
    document["status"] = {"generation": 9}
    assert parse_project(document).metadata.name == "alpha"


def test_resource_version_must_be_positive_integer():
    assert "metadata.resourceVersion" in problems(project(resourceVersion=0))
    assert parse_project(project(resourceVersion=3)).metadata.resourceVersion == 3


def test_yaml_aliases_are_refused():
    bomb = "a: &a [x, x]\nb: &b [*a, *a]\nc: [*b, *b]\n"
    with pytest.raises(BadRequest, match="aliases"):
        load_yaml_documents(bomb)


@pytest.mark.parametrize("raw, content_type, error", [
    (b"{", "application/json", "not valid JSON"),
    (b"a: [", "application/yaml", "not valid YAML"),
    (b"\xff", None, "not UTF-8"),
    (b"{}", "application/xml", "unsupported media type"),
    (b"a: 1\n---\nb: 2\n", "application/yaml", "expected one document, got 2"),
    (b"x" * (MAX_DOCUMENT_BYTES + 1), None, "larger than"),
])
def test_bodies_that_are_not_one_document(raw, content_type, error):
    with pytest.raises(BadRequest, match=error):
        load_body(raw, content_type)


def test_body_json_and_yaml_give_the_same_document():
    assert load_body(json.dumps(ALPHA).encode(), "application/json; charset=utf-8") == ALPHA
    assert load_body(yaml.safe_dump(ALPHA).encode(), "application/yaml") == ALPHA
    assert load_body(yaml.safe_dump(ALPHA).encode(), None) == ALPHA


def test_node_document():
    node = parse_node({"name": "node2", "connection": "ssh", "host": "192.0.2.10", "port": 22, "user": "root",
                       "labels": {"zone": "b"}, "vars": {"ansible_python_interpreter": "/usr/bin/python3"},
                       "capacity": {"vcpus": 8, "memory_mib": 16384}, "confidential": ["sev-snp"]})
    assert node.capacity.vcpus == 8 and node.confidential == ["sev-snp"]


@pytest.mark.parametrize("document, path", [
    ({"name": "n1", "port": 0}, "port"),
    ({"name": "N1"}, "name"),
    ({"name": "n1", "capacity": {"vcpus": 0, "memory_mib": 1}}, "capacity.vcpus"),
    ({"name": "n1", "confidential": ["sgx"]}, "confidential[0]"),
    # Only the collection's own validator knows these two rules: the node check reuses it.
    ({"name": "n1", "vars": {"goship_node": "x"}}, "vars.goship_node"),
    ({"name": "n1", "state_root": "relative/path"}, "state_root"),
])
def test_bad_node_documents(document, path):
    with pytest.raises(Invalid) as caught:
        parse_node(document)
    assert path in {item["path"] for item in caught.value.problems}, caught.value.problems
