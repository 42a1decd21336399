"""A corpus of invalid Project documents sent to the REST API (FastAPI TestClient on a real SQLite
store): each is refused with 400 or 422 and a message naming the offending field, and the
store is byte-for-byte what it was (every row of every table, events included). Also: hostile
values that are valid are stored verbatim, and the CLI and the inventory's state-file loader
refuse YAML bombs in bounded time."""

import copy
import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient

from ctl_helpers import ADMIN, project, service_with_nodes
from goship_ctl.api.app import create_app
from goship_ctl.auth.ratelimit import FailureLimiter
from goship_ctl.collection import desired_state_module

YAML_TYPE = {"content-type": "application/yaml"}
JSON_TYPE = {"content-type": "application/json"}
GOSHIP_CTL = str(Path(sys.executable).parent / "goship-ctl")


@pytest.fixture
def database(tmp_path):
    return tmp_path / "goship.db"


@pytest.fixture
def service(database):
    service = service_with_nodes("sqlite:///%s" % database)
    yield service
    service.close()


@pytest.fixture
def client(service):
    with TestClient(create_app(service, limiter=FailureLimiter(max_failures=1000, window_s=60))) as test_client:
        yield test_client


@pytest.fixture
def admin(service, client):
    headers = {"Authorization": "Bearer " + service.create_token(ADMIN, "admin", None)["token"]}
    assert client.post("/api/v1/projects", json=project("existing"), headers=headers).status_code == 201
    return headers


def store_snapshot(database):
    """Every row of every table, in a stable order."""
    with sqlite3.connect(database) as conn:
        tables = [row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name")]
        return {table: sorted(map(repr, conn.execute("SELECT * FROM %s" % table))) for table in tables}


def mutated(change, name="alpha"):
    document = project(name)
    change(document)
    return document


def app_field(field, value):
    return lambda document: document["spec"]["apps"][0].__setitem__(field, value)


def vm_field(field, value):
    return lambda document: document["spec"]["vm"].__setitem__(field, value)


def env(name, value):
    return lambda document: document["spec"]["apps"][0]["env"].__setitem__(name, value)


def existing_changed(change):
    """An update of the project that exists: a refused update must leave it as it was."""
    return mutated(change, "existing")


def billion_laughs(levels=9):
    lines = ['a0: &a0 ["lol"]'] + ["a%d: &a%d [%s]" % (i, i, ", ".join(["*a%d" % (i - 1)] * 9)) for i in range(1, levels)]
    return "\n".join(lines) + "\n"


# (case id, body (dict -> JSON, str -> YAML), status, text the message must contain)
CORPUS = [
    # names
    ("name-uppercase", mutated(lambda d: d["metadata"].__setitem__("name", "Alpha")), 422, "metadata.name"),
    ("name-dotdot", mutated(lambda d: d["metadata"].__setitem__("name", "../x")), 422, "metadata.name"),
    ("name-slash", mutated(lambda d: d["metadata"].__setitem__("name", "a/b")), 422, "metadata.name"),
    ("name-shell", mutated(lambda d: d["metadata"].__setitem__("name", "a;rm -rf /")), 422, "metadata.name"),
    ("name-subst", mutated(lambda d: d["metadata"].__setitem__("name", "$(id)")), 422, "metadata.name"),
    ("name-newline", mutated(lambda d: d["metadata"].__setitem__("name", "alpha\n")), 422, "metadata.name"),
    ("name-nul", mutated(lambda d: d["metadata"].__setitem__("name", "al\x00pha")), 422, "metadata.name"),
    ("name-64", mutated(lambda d: d["metadata"].__setitem__("name", "a" * 64)), 422, "metadata.name"),
    ("name-empty", mutated(lambda d: d["metadata"].__setitem__("name", "")), 422, "metadata.name"),
    ("name-dash-end", mutated(lambda d: d["metadata"].__setitem__("name", "alpha-")), 422, "metadata.name"),
    ("name-homoglyph", mutated(lambda d: d["metadata"].__setitem__("name", "\u0430lpha")), 422, "metadata.name"),
    ("name-number", mutated(lambda d: d["metadata"].__setitem__("name", 12)), 422, "metadata.name"),
    ("app-name-dotdot", mutated(app_field("name", "../../etc")), 422, "spec.apps[0].name"),
    ("app-name-xml", mutated(app_field("name", "<x/>")), 422, "spec.apps[0].name"),
    ("node-name-dotdot", mutated(lambda d: d["spec"].__setitem__("placement", {"nodeNames": ["../n"]})), 422,
     "spec.placement.nodeNames[0]"),
    # counts
    ("replicas-negative", mutated(app_field("replicas", -1)), 422, "spec.apps[0].replicas"),
    ("replicas-bool", mutated(app_field("replicas", True)), 422, "spec.apps[0].replicas"),
    ("replicas-float", mutated(app_field("replicas", 1.5)), 422, "spec.apps[0].replicas"),
    ("replicas-string", mutated(app_field("replicas", "2")), 422, "spec.apps[0].replicas"),
    ("replicas-huge", mutated(app_field("replicas", 10 ** 30)), 422, "spec.apps[0].replicas"),
    ("replicas-int64", mutated(app_field("replicas", 2 ** 63)), 422, "spec.apps[0].replicas"),
    ("replicas-over-guest-limit", mutated(app_field("replicas", 257)), 422, "spec.apps[0].replicas"),
    ("vcpus-zero", mutated(vm_field("vcpus", 0)), 422, "spec.vm.vcpus"),
    ("vcpus-huge", mutated(vm_field("vcpus", 10 ** 20)), 422, "spec.vm.vcpus"),
    ("memory-small", mutated(vm_field("memory_mib", 1)), 422, "spec.vm.memory_mib"),
    ("memory-huge", mutated(vm_field("memory_mib", 2 ** 64)), 422, "spec.vm.memory_mib"),
    ("placement-negative", mutated(lambda d: d["spec"].__setitem__("placement", {"nodes": -1})), 422, "spec.placement.nodes"),
    ("port-zero", mutated(app_field("ports", [0])), 422, "spec.apps[0].ports[0]"),
    ("port-huge", mutated(app_field("ports", [70000])), 422, "spec.apps[0].ports[0]"),
    ("resource-version-zero", mutated(lambda d: d["metadata"].__setitem__("resourceVersion", 0)), 422, "metadata.resourceVersion"),
    # env and apps
    ("env-name-equals", mutated(env("A=B", "x")), 422, "spec.apps[0].env"),
    ("env-name-newline", mutated(env("A\nB", "x")), 422, "spec.apps[0].env"),
    ("env-name-space", mutated(env("A B", "x")), 422, "spec.apps[0].env"),
    ("env-value-number", mutated(env("A", 5)), 422, "spec.apps[0].env"),
    ("env-value-nul", mutated(env("A", "x\x00y")), 422, "spec.apps[0].env"),
    ("env-secret-not-bool", mutated(env("A", {"value": "x", "secret": "yes"})), 422, "spec.apps[0].env"),
    ("env-secret-extra-key", mutated(env("A", {"value": "x", "secret": True, "file": "/etc/shadow"})), 422, "spec.apps[0].env"),
    ("env-too-big-for-the-guest", mutated(env("BIG", "\u00e9" * 200000)), 422, "spec.apps"),
    ("duplicate-apps", mutated(lambda d: d["spec"]["apps"].append(copy.deepcopy(d["spec"]["apps"][0]))), 422, "duplicate app name"),
    ("image-empty", mutated(app_field("image", "")), 422, "spec.apps[0].image"),
    ("apps-not-a-list", mutated(lambda d: d["spec"].__setitem__("apps", {"web": {}})), 422, "spec.apps"),
    # document shape
    ("unknown-top-field", mutated(lambda d: d.__setitem__("extra", 1)), 422, "extra"),
    ("unknown-spec-field", mutated(lambda d: d["spec"].__setitem__("privileged", True)), 422, "spec.privileged"),
    ("wrong-kind", mutated(lambda d: d.__setitem__("kind", "DesiredState")), 422, "kind"),
    ("wrong-api-version", mutated(lambda d: d.__setitem__("apiVersion", "goship/v0")), 422, "apiVersion"),
    ("a-list", [project()], 422, "<document>"),
    ("update-with-bad-vm", existing_changed(vm_field("vcpus", -2)), 422, "spec.vm.vcpus"),
    ("update-with-dup-apps", existing_changed(lambda d: d["spec"]["apps"].append({"name": "web", "image": "x", "replicas": 1})),
     422, "duplicate app name"),
    # bodies that are not one sane document
    ("yaml-billion-laughs", billion_laughs(), 400, "aliases are not allowed"),
    ("yaml-self-alias", "a: &a [*a]\n", 400, "aliases are not allowed"),
    ("yaml-merge-key", "base: &b {vcpus: 1}\nvm: {<<: *b}\n", 400, "aliases are not allowed"),
    ("yaml-python-tag", "!!python/object/apply:os.system [\"touch /tmp/goship-pwned\"]\n", 400, "constructor"),
    ("yaml-two-documents", yaml.safe_dump(project()) + "---\n" + yaml.safe_dump(project("beta")), 400, "one document"),
    ("yaml-deep", "a: " + "[" * 10000 + "]" * 10000 + "\n", 400, "nested deeper"),
    ("json-deep", b"[" * 100000 + b"]" * 100000, 400, "nested deeper"),
    ("json-deep-inside-vm", json.dumps(project()).replace('"vcpus"', '"x": %s, "vcpus"' % ("[" * 500 + "]" * 500)).encode(),
     400, "nested deeper"),
    ("over-1-mib", b'{"pad": "' + b"x" * (1 << 20) + b'"}', 400, "larger than"),
    ("not-utf8", b"\xff\xfe{}", 400, "UTF-8"),
    ("not-json", b"{nope", 400, "JSON"),
]


@pytest.mark.parametrize("case, body, status, named", CORPUS, ids=[case[0] for case in CORPUS])
def test_invalid_document_is_refused_naming_the_field_and_nothing_is_persisted(client, admin, database, case, body, status,
                                                                               named):
    before = store_snapshot(database)
    if isinstance(body, (dict, list)):
        response = client.post("/api/v1/projects", json=body, headers=admin)
    elif isinstance(body, str):
        response = client.post("/api/v1/projects", content=body.encode(), headers=dict(admin, **YAML_TYPE))
    else:
        response = client.post("/api/v1/projects", content=body, headers=dict(admin, **JSON_TYPE))
    assert response.status_code == status, (case, response.status_code, response.text[:500])
    error = response.json()["error"]
    assert named in error["message"], (case, error)
    if status == 422:
        assert any(named in problem["path"] or named in problem["message"] for problem in error["problems"]), error
    assert store_snapshot(database) == before, "%s changed the store" % case
    assert not Path("/tmp/goship-pwned").exists()


HOSTILE_BUT_VALID = {
    "SHELL_SUBST": "$(touch /tmp/goship-pwned)", "BACKTICKS": "`id`", "QUOTES": "'\"; DROP TABLE projects; --",
    "NEWLINES": "a\nb\r\nc", "YAML_LOOKING": "!!python/object:os.system", "JINJA": "{{ lookup('pipe', 'id') }}",
    "UNICODE": "\u202e\u00e9\U0001f600", "PERCENT": "%s%n%x",
}


def test_hostile_values_that_are_valid_are_stored_verbatim(client, admin):
    document = project("hostile", apps=[{"name": "web", "image": "demo-web;rm -rf /", "replicas": 1, "env": HOSTILE_BUT_VALID}])
    assert client.post("/api/v1/projects", json=document, headers=admin).status_code == 201
    stored = client.get("/api/v1/projects/hostile", headers=admin).json()["spec"]["apps"][0]
    assert stored["env"] == HOSTILE_BUT_VALID and stored["image"] == "demo-web;rm -rf /"
    desired = client.get("/api/v1/desired-state", headers=admin).json()
    assert desired["projects"]["hostile"]["apps"][0]["env"] == HOSTILE_BUT_VALID
    assert not Path("/tmp/goship-pwned").exists()


def test_scale_refuses_what_apply_refuses(client, admin, database):
    before = store_snapshot(database)
    for replicas in (-1, 257, 2 ** 63, True, "3", None):
        response = client.post("/api/v1/projects/existing/apps/web/scale", json={"replicas": replicas}, headers=admin)
        assert response.status_code == 422, (replicas, response.text)
        assert "replicas" in json.dumps(response.json())
    assert store_snapshot(database) == before


def test_cli_apply_refuses_a_yaml_bomb_quickly(tmp_path):
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(billion_laughs() + yaml.safe_dump(project()))
    started = time.monotonic()
    proc = subprocess.run([GOSHIP_CTL, "apply", "-f", str(bomb), "--data-dir", str(tmp_path / "ctl")],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 5, (proc.returncode, proc.stdout, proc.stderr)  # invalid input
    assert "aliases are not allowed" in proc.stderr, proc.stderr
    assert time.monotonic() - started < 30


@pytest.mark.parametrize("text, message", [
    ("apiVersion: goship/v1\nkind: DesiredState\nprojects: {}\nnodes:\n  n1:\n    vars:\n"
     + "".join("      " + line + "\n" for line in billion_laughs().splitlines()), "expands to more than"),
    ("apiVersion: goship/v1\nkind: DesiredState\nprojects: {}\nnodes: {n1: {vars: {loop: &l [*l]}}}\n", "expands to more than"),
    ("a: " + "[" * 20000 + "]" * 20000 + "\n", "nested too deeply"),
])
def test_inventory_state_file_loader_bounds_yaml_bombs(text, message):
    """The inventory's state file may use anchors (it is the operator's own file), but a bomb is refused."""
    shared = desired_state_module()
    started = time.monotonic()
    with pytest.raises(shared.DesiredStateError) as caught:
        shared.load_yaml(text)
    assert message in str(caught.value)
    assert time.monotonic() - started < 10


def test_inventory_state_file_with_ordinary_anchors_still_loads():
    shared = desired_state_module()
    text = ("apiVersion: goship/v1\nkind: DesiredState\nprojects: {}\n"
            "nodes:\n  n1: {connection: local, vars: &common {node_manage_packages: false}}\n  n2: {connection: local, vars: *common}\n")
    document = shared.validate(shared.load_yaml(text))
    assert document["nodes"]["n2"]["vars"] == {"node_manage_packages": False}
