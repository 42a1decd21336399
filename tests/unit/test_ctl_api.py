"""The REST API through FastAPI's TestClient on a real SQLite store: auth and project scoping,
validation, conflicts, the desired-state document, OpenAPI and metrics."""

import json
import logging

import pytest
import yaml
from fastapi.testclient import TestClient

from ctl_helpers import ADMIN, project, service_with_nodes
from ctl_store_cases import guest_status_vm
from goship_ctl.api.app import create_app
from goship_ctl.auth.ratelimit import FailureLimiter
from goship_ctl.collection import desired_state_module
from goship_ctl.reconciler.recorder import ActualStateRecorder

YAML = {"content-type": "application/yaml"}


@pytest.fixture
def service(tmp_path):
    service = service_with_nodes("sqlite:///%s" % (tmp_path / "goship.db"))
    yield service
    service.close()


@pytest.fixture
def app(service):
    return create_app(service, limiter=FailureLimiter(max_failures=20, window_s=60))


@pytest.fixture
def client(app):
    with TestClient(app) as test_client:
        yield test_client


def bearer(token):
    return {"Authorization": "Bearer " + token}


@pytest.fixture
def admin(service):
    return bearer(service.create_token(ADMIN, "admin", None)["token"])


@pytest.fixture
def alpha_token(service):
    return bearer(service.create_token(ADMIN, "alpha-ci", "alpha")["token"])


def apply(client, headers, document):
    return client.post("/api/v1/projects", content=yaml.safe_dump(document), headers=dict(headers, **YAML))


def test_every_api_route_needs_a_token(client):
    for method, path in (("GET", "/api/v1/projects"), ("POST", "/api/v1/projects"), ("GET", "/api/v1/nodes"),
                         ("GET", "/api/v1/desired-state"), ("GET", "/api/v1/events"), ("GET", "/metrics")):
        response = client.request(method, path)
        assert response.status_code == 401, path
        assert response.headers["www-authenticate"] == "Bearer"
    assert client.get("/api/v1/projects", headers={"Authorization": "Basic eDp5"}).status_code == 401
    assert client.get("/healthz").json() == {"status": "ok"}


def test_apply_yaml_and_json(client, admin):
    created = apply(client, admin, project())
    assert created.status_code == 201 and created.json()["result"] == "created"
    again = client.post("/api/v1/projects", json=project(), headers=admin)
    assert again.status_code == 200 and again.json()["result"] == "unchanged"
    listed = client.get("/api/v1/projects", headers=admin).json()
    assert [(p["name"], p["generation"], len(p["nodes"])) for p in listed] == [("alpha", 1, 2)]
    apps = client.get("/api/v1/apps", headers=admin).json()
    assert [(a["name"], a["replicas"], a["desired"]) for a in apps] == [("web", 2, 4)]


def test_invalid_document_is_422_with_paths_and_persists_nothing(client, admin):
    bad = project()
    bad["spec"]["apps"][0]["replicas"] = True
    bad["spec"]["apps"].append({"name": "web", "image": "x", "replicas": 1})
    response = apply(client, admin, bad)
    assert response.status_code == 422
    paths = [problem["path"] for problem in response.json()["error"]["problems"]]
    assert paths == ["spec.apps[0].replicas"]  # field errors first; the duplicate check runs on valid apps
    assert client.get("/api/v1/projects", headers=admin).json() == []
    assert client.get("/api/v1/events?project=alpha", headers=admin).json() == []
    bad["spec"]["apps"][0]["replicas"] = 1
    duplicate = apply(client, admin, bad).json()["error"]["problems"]
    assert duplicate == [{"path": "spec.apps", "message": "duplicate app name 'web' (apps[0] and apps[1])"}]
    assert client.get("/api/v1/projects", headers=admin).json() == []


@pytest.mark.parametrize("body, content_type, status", [
    (b"a: &x [1]\nb: *x\n", "application/yaml", 400),
    (b"{not json", "application/json", 400),
    (b"- a list\n", "application/yaml", 422),
])
def test_bodies_that_are_not_projects(client, admin, body, content_type, status):
    response = client.post("/api/v1/projects", content=body, headers=dict(admin, **{"content-type": content_type}))
    assert response.status_code == status
    assert client.get("/api/v1/projects", headers=admin).json() == []


def test_stale_writes_get_409(client, admin):
    version = apply(client, admin, project()).json()["project"]["metadata"]["resourceVersion"]
    scaled = client.post("/api/v1/projects/alpha/apps/web/scale", json={"replicas": 3, "resourceVersion": version},
                         headers=admin)
    assert scaled.status_code == 200
    assert scaled.json()["project"]["metadata"]["resourceVersion"] > version
    stale = apply(client, admin, project(memory_mib=1024, resourceVersion=version))
    assert stale.status_code == 409 and stale.json()["error"]["code"] == "conflict"
    assert client.post("/api/v1/projects/alpha/apps/web/scale", json={"replicas": 1, "resourceVersion": version},
                       headers=admin).status_code == 409
    assert client.delete("/api/v1/projects/alpha?resourceVersion=%d" % version, headers=admin).status_code == 409
    current = client.get("/api/v1/projects/alpha", headers=admin).json()
    assert current["spec"]["vm"]["memory_mib"] == 512 and current["spec"]["apps"][0]["replicas"] == 3
    # What GET returns can be edited and applied back (status is ignored; secrets must be given again).
    current["spec"]["apps"][0]["env"]["DB_PASSWORD"] = {"value": "new", "secret": True}
    current["spec"]["vm"]["memory_mib"] = 768
    assert apply(client, admin, current).json()["result"] == "updated"


def test_project_token_is_denied_other_projects_apps(client, admin, alpha_token):
    assert apply(client, admin, project("alpha")).status_code == 201
    assert apply(client, admin, project("beta")).status_code == 201
    assert [p["name"] for p in client.get("/api/v1/projects", headers=alpha_token).json()] == ["alpha"]
    assert {a["project"] for a in client.get("/api/v1/apps", headers=alpha_token).json()} == {"alpha"}
    assert client.get("/api/v1/projects/alpha/apps", headers=alpha_token).status_code == 200
    missing = client.get("/api/v1/projects/nosuch/apps", headers=alpha_token).json()
    for method, path, body in (("GET", "/api/v1/projects/beta", None), ("GET", "/api/v1/projects/beta/apps", None),
                               ("GET", "/api/v1/apps?project=beta", None), ("GET", "/api/v1/vms?project=beta", None),
                               ("POST", "/api/v1/projects/beta/apps/web/scale", {"replicas": 0}),
                               ("DELETE", "/api/v1/projects/beta", None)):
        response = client.request(method, path, json=body, headers=alpha_token)
        assert response.status_code == 404, path
        assert response.json()["error"]["message"] == missing["error"]["message"].replace("nosuch", "beta")
    assert apply(client, alpha_token, project("beta", memory_mib=1024)).status_code == 404
    assert client.get("/api/v1/projects/beta", headers=admin).json()["spec"]["vm"]["memory_mib"] == 512
    for path in ("/api/v1/nodes", "/api/v1/tokens", "/api/v1/desired-state", "/metrics"):
        assert client.get(path, headers=alpha_token).status_code == 403, path
    assert client.post("/api/v1/tokens", json={"name": "x"}, headers=alpha_token).status_code == 403
    assert client.post("/api/v1/nodes/node1/drain", headers=alpha_token).status_code == 403
    assert {e["project"] for e in client.get("/api/v1/events", headers=alpha_token).json()} == {"alpha"}
    scaled = client.post("/api/v1/projects/alpha/apps/web/scale", json={"replicas": 1}, headers=alpha_token)
    assert scaled.status_code == 200


def test_failed_authentication_is_rate_limited_and_logged(service, admin, caplog):
    wrong = bearer("gsp_000000000000_" + "A" * 43)
    with TestClient(create_app(service, limiter=FailureLimiter(max_failures=5, window_s=60))) as client, \
            caplog.at_level(logging.WARNING, logger="goship_ctl.api.auth"):
        statuses = [client.get("/api/v1/projects", headers=wrong).status_code for attempt in range(5)]
        limited = client.get("/api/v1/projects", headers=admin)
    assert statuses == [401] * 5
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
    assert len(caplog.records) == 5
    assert "client=testclient reason=invalid" in caplog.records[0].getMessage()
    assert "A" * 43 not in caplog.text


def test_admin_routes_nodes_tokens_facts(client, admin):
    created = client.post("/api/v1/nodes", content="name: node9\nlabels: {zone: q}\n", headers=dict(admin, **YAML))
    assert created.status_code == 201 and created.json()["node"]["capacity"] is None
    facts = {"capacity": {"vcpus_total": 8, "memory_mib_free": 1000, "memory_mib_allocated": 24},
             "confidential": {"tdx": True}}
    recorded = client.put("/api/v1/nodes/node9/facts", json=facts, headers=admin).json()
    assert recorded["node"]["capacity"] == {"vcpus": 8, "memory_mib": 1024} and recorded["node"]["confidential"] == ["tdx"]
    bad_node = client.post("/api/v1/nodes", json={"name": "node9", "port": 0}, headers=admin)
    assert bad_node.status_code == 422 and bad_node.json()["error"]["problems"][0]["path"] == "port"
    apply(client, admin, project(placement={"selector": {"zone": "q"}}))
    drained = client.post("/api/v1/nodes/node9/drain", headers=admin).json()
    assert drained["moved"] == [{"project": "alpha", "from": ["node9"], "to": []}]
    assert drained["unschedulable"] == [{"project": "alpha", "reason": "placed on 0 of 1 nodes; node9: drained"}]
    token = client.post("/api/v1/tokens", json={"name": "ci", "project": "alpha"}, headers=admin)
    assert token.status_code == 201 and token.json()["token"].startswith("gsp_")
    assert all("token" not in t for t in client.get("/api/v1/tokens", headers=admin).json())
    assert client.delete("/api/v1/tokens/%s" % token.json()["id"], headers=admin).status_code == 200
    assert client.get("/api/v1/projects", headers=bearer(token.json()["token"])).status_code == 401


def test_desired_state_document_for_the_inventory(client, admin):
    apply(client, admin, project())
    response = client.get("/api/v1/desired-state", headers=admin)
    shared = desired_state_module()
    document = shared.validate(shared.load_json(response.text))
    assert sorted(document["nodes"]) == ["node1", "node2", "node3"]
    assert document["nodes"]["node1"] == {"connection": "local", "labels": {"zone": "z1"}}
    assert document["projects"]["alpha"]["generation"] == 1


def test_openapi_describes_the_documents(client):
    spec = client.get("/api/v1/openapi.json").json()
    apply_body = spec["paths"]["/api/v1/projects"]["post"]["requestBody"]["content"]
    assert apply_body["application/yaml"]["schema"] == {"$ref": "#/components/schemas/ProjectDocument"}
    schemas = spec["components"]["schemas"]
    assert {"ProjectDocument", "ProjectSpec", "Placement", "AppSpec", "NodeSpec"} <= set(schemas)
    assert schemas["AppSpec"]["properties"]["replicas"]["minimum"] == 0
    assert "/api/v1/nodes/{name}/drain" in spec["paths"]


@pytest.mark.parametrize("method, path, body, status, code", [
    ("GET", "/nope", None, 404, "not_found"),
    ("GET", "/api/v1/nope", None, 404, "not_found"),
    ("DELETE", "/healthz", None, 405, "method_not_allowed"),
    ("PUT", "/api/v1/projects", None, 405, "method_not_allowed"),
    ("POST", "/api/v1/projects/alpha/apps/web/scale", b"{bad", 400, "bad_request"),
    ("POST", "/api/v1/tokens", b"[1,", 400, "bad_request"),
    ("POST", "/api/v1/projects/alpha/apps/web/scale", b'{"replicas": "x"}', 422, "invalid"),
    ("POST", "/api/v1/tokens", b'{"name": "x", "extra": 1}', 422, "invalid"),
    ("GET", "/api/v1/events?after=x", None, 422, "invalid"),
    ("GET", "/api/v1/projects/nope", None, 404, "not_found"),
])
def test_every_error_has_the_documented_shape(client, admin, method, path, body, status, code):
    response = client.request(method, path, content=body, headers=dict(admin, **{"content-type": "application/json"}))
    assert response.status_code == status, response.text
    error = response.json()
    assert list(error) == ["error"] and error["error"]["code"] == code and error["error"]["message"]
    assert set(error["error"]) <= {"code", "message", "problems"}
    if status == 405:
        assert response.headers["allow"]
    if code == "invalid":
        assert error["error"]["problems"][0]["path"]


def test_an_internal_error_has_the_documented_shape_and_no_detail(service, monkeypatch):
    def broken():
        raise RuntimeError("secret detail")
    monkeypatch.setattr(service, "ping", broken)
    with TestClient(create_app(service), raise_server_exceptions=False) as client:
        response = client.get("/healthz")
    assert response.status_code == 500
    assert response.json() == {"error": {"code": "internal", "message": "internal error"}}


def test_openapi_documents_the_error_shape_only(client):
    spec = client.get("/api/v1/openapi.json").json()
    schemas = spec["components"]["schemas"]
    assert "HTTPValidationError" not in schemas and "ValidationError" not in schemas
    assert "detail" not in json.dumps(spec["paths"])
    assert set(schemas["Error"]["required"]) == {"error"}
    error_ref = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            errors = {status: response for status, response in operation["responses"].items() if status[0] in "45"}
            assert "4XX" in errors, (method, path)
            assert all(response["content"] == error_ref for response in errors.values()), (method, path)
    assert spec["paths"]["/api/v1/projects"]["post"]["responses"]["422"]["description"] == "invalid document; nothing stored"


def test_metrics(client, admin, service, app):
    apply(client, admin, project())
    placed = client.get("/api/v1/projects/alpha", headers=admin).json()["status"]["nodes"]
    recorder = ActualStateRecorder(service.sessions, service.trigger, app.state.metrics)
    recorder.guest_status(placed[0], [guest_status_vm(placed[0])])
    recorder.run_finished(placed[0], "ok", 12.5)
    client.get("/api/v1/projects", headers=bearer("wrong"))
    text = client.get("/metrics", headers=admin).text
    expected = [
        'goship_projects{state="scheduled"} 1.0',
        'goship_vms{state="running"} 1.0', 'goship_vms{state="pending"} 1.0',
        'goship_replicas{state="ready"} 2.0',
        'goship_nodes{status="unknown"} 3.0',
        'goship_app_replicas_desired{app="web",project="alpha"} 4.0',
        'goship_app_cpu_seconds_total{app="web",project="alpha"} 3.0',
        'goship_app_memory_bytes{app="web",project="alpha"} 8.388608e+06',
        'goship_reconcile_runs_total{node="%s",result="ok"} 1.0' % placed[0],
        'goship_reconcile_duration_seconds_count{node="%s"} 1.0' % placed[0],
        'goship_api_requests_total{method="POST",route="/api/v1/projects",status="201"} 1.0',
        'goship_api_auth_failures_total{reason="invalid"} 1.0',
    ]
    for line in expected:
        assert line in text, line
    assert json.dumps(text).count("goship_api_request_duration_seconds_bucket") > 0
