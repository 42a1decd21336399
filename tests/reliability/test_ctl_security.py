"""Security of the control service, against a real `goship-ctl serve` on 127.0.0.1: token scoping,
admin-only routes, tokens hashed at rest (the SQLite file and its WAL read raw), failed
authentication limited and logged without the token, secrets kept out of reads, events and the
log, the store's file modes, and loopback-only listening unless told otherwise."""

import os
import sqlite3
import stat
import subprocess
import time

import pytest

from ctl_helpers import node, project
from ctl_server import GOSHIP_CTL, CtlServer

SECRET = "s3cr3t-%d-never-shown" % os.getpid()


def with_secret(name):
    return project(name, apps=[{"name": "web", "image": "demo-web", "replicas": 1,
                                "env": {"PLAIN": "visible", "DB_PASSWORD": {"value": SECRET, "secret": True}}}])


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    server = CtlServer(tmp_path_factory.mktemp("ctl-security")).start()
    for index in (1, 2):
        assert server.request("POST", "/api/v1/nodes", json=node("node%d" % index)).status_code in (200, 201)
    for name in ("alpha", "beta"):
        assert server.request("POST", "/api/v1/projects", json=with_secret(name)).status_code == 201
    yield server
    server.stop()


@pytest.fixture(scope="module")
def alpha_token(server):
    created = server.request("POST", "/api/v1/tokens", json={"name": "alpha-ci", "project": "alpha"})
    assert created.status_code == 201
    return created.json()["token"]


# -- scoping ----------------------------------------------------------------------------
OTHER_PROJECT = [
    ("GET", "/api/v1/projects/beta", None), ("DELETE", "/api/v1/projects/beta", None),
    ("GET", "/api/v1/projects/beta/apps", None), ("GET", "/api/v1/projects/beta/vms", None),
    ("POST", "/api/v1/projects/beta/apps/web/scale", {"replicas": 5}),
    ("POST", "/api/v1/projects", with_secret("beta")),
]
ADMIN_ONLY = [
    ("GET", "/api/v1/nodes", None), ("POST", "/api/v1/nodes", node("node9")), ("GET", "/api/v1/nodes/node1", None),
    ("DELETE", "/api/v1/nodes/node2", None), ("POST", "/api/v1/nodes/node1/drain", None),
    ("POST", "/api/v1/nodes/node1/uncordon", None), ("PUT", "/api/v1/nodes/node1/facts", {"capacity": {"vcpus_total": 1}}),
    ("GET", "/api/v1/tokens", None), ("POST", "/api/v1/tokens", {"name": "mine"}),
    ("POST", "/api/v1/tokens", {"name": "betas", "project": "beta"}), ("DELETE", "/api/v1/tokens/000000000000", None),
    ("GET", "/api/v1/desired-state", None), ("GET", "/metrics", None),
]


def state_of(server):
    """What an admin sees of everything a project token might try to touch (lastUsedAt aside)."""
    seen = {path: server.request("GET", path).json() for path in ("/api/v1/projects/beta", "/api/v1/nodes")}
    seen["tokens"] = [dict(token, lastUsedAt=None) for token in server.request("GET", "/api/v1/tokens").json()]
    return seen


def test_project_token_cannot_read_or_change_another_project_nodes_or_tokens(server, alpha_token):
    before = state_of(server)
    for method, path, body in OTHER_PROJECT:
        response = server.request(method, path, token=alpha_token, json=body)
        assert response.status_code == 404, (method, path, response.status_code, response.text)
        missing = server.request(method, path.replace("beta", "nosuch"), token=alpha_token,
                                 json=with_secret("nosuch") if method == "POST" and body and "spec" in body else body)
        assert response.text == missing.text.replace("nosuch", "beta"), "beta is told apart from a project that does not exist"
    for method, path, body in ADMIN_ONLY:
        response = server.request(method, path, token=alpha_token, json=body)
        assert response.status_code == 403, (method, path, response.status_code, response.text)
    listed = server.request("GET", "/api/v1/projects", token=alpha_token).json()
    assert [p["name"] for p in listed] == ["alpha"]
    assert {e["project"] for e in server.request("GET", "/api/v1/events", token=alpha_token).json()} == {"alpha"}
    for path in ("/api/v1/events?project=beta", "/api/v1/apps?project=beta", "/api/v1/vms?project=beta"):
        response = server.request("GET", path, token=alpha_token)
        missing = server.request("GET", path.replace("beta", "nosuch"), token=alpha_token)
        assert (response.status_code, response.text) == (missing.status_code, missing.text.replace("nosuch", "beta")), path
        assert response.status_code == 404 or response.json() == [], (path, response.text)
    assert state_of(server) == before
    assert server.request("POST", "/api/v1/projects/alpha/apps/web/scale", token=alpha_token,
                          json={"replicas": 1}).status_code == 200  # its own project: allowed


def test_every_route_but_health_and_openapi_needs_a_token(server):
    routes = OTHER_PROJECT + ADMIN_ONLY + [("GET", "/api/v1/projects", None), ("GET", "/api/v1/events", None)]
    for method, path, body in routes[:8]:  # stay under the failure limit (10 per minute and address)
        response = server.request(method, path, headers={}, json=body)
        assert response.status_code == 401, (method, path, response.status_code)
    assert server.request("GET", "/healthz", headers={}).json() == {"status": "ok"}
    assert server.request("GET", "/api/v1/openapi.json", headers={}).status_code == 200


def test_revoked_token_is_refused(server):
    created = server.request("POST", "/api/v1/tokens", json={"name": "short-lived", "project": "alpha"}).json()
    assert server.request("GET", "/api/v1/projects", token=created["token"]).status_code == 200
    assert server.request("DELETE", "/api/v1/tokens/%s" % created["id"]).status_code == 200
    assert server.request("GET", "/api/v1/projects", token=created["token"]).status_code == 401


# -- at rest ------------------------------------------------------------------------------
def raw_store_bytes(server):
    return b"".join(path.read_bytes() for path in server.data_dir.iterdir() if path.name.startswith("goship.db"))


def test_tokens_are_hashed_at_rest(server, alpha_token):
    # gsp_<id>_<secret>: the secret is base64url, so it may itself contain "_"
    admin_secret = server.admin_token.split("_", 2)[2]
    alpha_secret = alpha_token.split("_", 2)[2]
    raw = raw_store_bytes(server)  # the database file and its WAL, as an attacker with the file would read them
    assert admin_secret.encode() not in raw and alpha_secret.encode() not in raw
    with sqlite3.connect("file:%s?mode=ro" % (server.data_dir / "goship.db"), uri=True) as conn:
        columns = [row[1] for row in conn.execute("PRAGMA table_info(tokens)")]
        rows = [dict(zip(columns, row)) for row in conn.execute("SELECT * FROM tokens")]
    assert len(rows) >= 2
    for row in rows:
        assert not any(isinstance(value, str) and (admin_secret in value or alpha_secret in value) for value in row.values()), row


def test_store_file_modes(server):
    assert stat.S_IMODE(server.data_dir.stat().st_mode) == 0o700
    for path in server.data_dir.iterdir():
        if path.name.startswith("goship.db"):
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert stat.S_IMODE(server.token_file.stat().st_mode) == 0o600


# -- secrets -----------------------------------------------------------------------------------
def test_secrets_stay_out_of_reads_events_and_the_log(server, alpha_token):
    for token in (None, alpha_token):
        for path in ("/api/v1/projects/alpha", "/api/v1/projects", "/api/v1/apps", "/api/v1/projects/alpha/apps",
                     "/api/v1/events", "/api/v1/events?project=alpha", "/api/v1/vms"):
            response = server.request("GET", path, token=token)
            assert response.status_code == 200 and SECRET not in response.text, path
    shown = server.request("GET", "/api/v1/projects/alpha").json()["spec"]["apps"][0]["env"]
    assert shown == {"PLAIN": "visible", "DB_PASSWORD": {"secret": True}}
    # the nodes need the value: only the admin-only DesiredState document carries it
    assert SECRET in server.request("GET", "/api/v1/desired-state").text
    with sqlite3.connect("file:%s?mode=ro" % (server.data_dir / "goship.db"), uri=True) as conn:
        events = repr(list(conn.execute("SELECT * FROM events")))
    assert "alpha" in events and SECRET not in events
    assert SECRET not in server.log()


# -- authentication failures -------------------------------------------------------------------
def test_failed_authentication_is_limited_and_logged_without_the_token(tmp_path):
    server = CtlServer(tmp_path).start()
    try:
        wrong = "gsp_0123456789ab_" + "W" * 43
        statuses = [server.request("GET", "/api/v1/projects", token=wrong).status_code for attempt in range(10)]
        assert statuses == [401] * 10
        limited = server.request("GET", "/api/v1/projects")  # a good token from the same address
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
        assert limited.json()["error"]["code"] == "rate_limited"
        time.sleep(0.5)
        log = server.log()
        assert log.count("authentication failed: client=127.0.0.1 reason=invalid path=/api/v1/projects") == 10, log
        assert "W" * 43 not in log and server.admin_token not in log
    finally:
        server.stop()


# -- listening -------------------------------------------------------------------------------------
def listening_addresses(pid):
    """Local addresses of the TCP sockets pid listens on (from ss)."""
    out = subprocess.run(["ss", "-Hltnp"], capture_output=True, text=True, check=True).stdout
    return sorted(line.split()[3] for line in out.splitlines() if "pid=%d," % pid in line)


def test_serve_listens_on_loopback_by_default(server):
    assert listening_addresses(server.proc.pid) == ["127.0.0.1:%d" % server.port]


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.1"])
def test_serve_refuses_plain_http_off_loopback(tmp_path, host):
    proc = subprocess.run([GOSHIP_CTL, "serve", "--host", host, "--port", "9", "--data-dir", str(tmp_path / "ctl")],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 2 and "needs TLS" in proc.stderr, (proc.returncode, proc.stderr)
    assert not (tmp_path / "ctl").exists(), "serve touched the store before refusing"
