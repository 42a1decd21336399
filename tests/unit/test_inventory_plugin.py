"""goship.core.goship in-process: sources, hosts, groups, host vars, constructed options, errors."""

import shutil

import pytest

from inventory_helpers import (
    API_PATH, FIXTURES, REPO_ROOT, SOURCE_ENV, DesiredStateServer, fixture_document, load_plugin, parse, write_state_source,
)


@pytest.fixture(autouse=True)
def no_source_env(monkeypatch):
    """GOSHIP_URL/GOSHIP_TOKEN of the developer's shell must not choose the source."""
    for name in SOURCE_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")


@pytest.fixture
def server():
    with DesiredStateServer() as running:
        yield running


def parse_error(config_path):
    from ansible.errors import AnsibleParserError  # pylint: disable=import-outside-toplevel
    with pytest.raises(AnsibleParserError) as caught:
        parse(config_path)
    return str(caught.value)


def api_config(directory, server, timeout_s=5):
    config = directory / "api.goship.yml"
    config.write_text("plugin: goship.core.goship\nurl: %s\ntoken: t0ken\ntimeout: %d\n" % (server.url, timeout_s))
    return config


@pytest.mark.parametrize("name, accepted", [
    ("nodes.goship.yml", True), ("nodes.goship.yaml", True), ("goship.yml", False),
    ("nodes.yml", False), ("nodes.goship.json", False), ("nodes.goship.yml.bak", False),
])
def test_verify_file_accepts_only_goship_suffixes(tmp_path, name, accepted):
    path = tmp_path / name
    path.write_text("plugin: goship.core.goship\n")
    assert load_plugin().verify_file(str(path)) is accepted


def test_verify_file_rejects_missing_file(tmp_path):
    assert not load_plugin().verify_file(str(tmp_path / "absent.goship.yml"))


def test_state_file_hosts_groups_and_hostvars(tmp_path):
    shutil.copytree(FIXTURES, tmp_path, dirs_exist_ok=True)
    inventory = parse(tmp_path / "state-file.goship.yml")
    assert sorted(inventory.hosts) == ["node1", "node2"]
    groups = {name: sorted(host.name for host in group.get_hosts()) for name, group in inventory.groups.items()}
    assert groups["goship_nodes"] == ["node1", "node2"]
    assert groups["goship_project_alpha"] == ["node1", "node2"]
    assert groups["goship_project_beta_two"] == ["node2"]
    assert groups["zone_a"] == ["node1"] and groups["zone_b"] == ["node2"]
    assert groups["edge"] == ["node1"]

    node1 = inventory.get_host("node1").get_vars()
    assert node1["ansible_connection"] == "local"
    assert "ansible_host" not in node1 and "ansible_port" not in node1
    assert node1["ansible_python_interpreter"] == "/usr/bin/python3" and node1["site"] == "lab"
    assert node1["goship_node"] == "node1"
    assert node1["goship_state_root"] == "/var/lib/goship/nodes/node1"
    assert node1["goship_labels"] == {"zone": "a", "tier": "edge"}
    assert node1["goship_zone"] == "a"
    alpha = fixture_document()["projects"]["alpha"]
    assert node1["goship_project_vms"] == [{
        "project": "alpha", "domain": "goship-node1-alpha", "generation": 3,
        "vm": {"vcpus": 2, "memory_mib": 512}, "apps": alpha["apps"],
    }]

    node2 = inventory.get_host("node2").get_vars()
    assert (node2["ansible_connection"], node2["ansible_host"], node2["ansible_port"], node2["ansible_user"]) == (
        "ssh", "127.0.0.1", 2222, "goship")
    assert node2["goship_state_root"] == "/var/lib/goship"
    assert [vm["domain"] for vm in node2["goship_project_vms"]] == ["goship-node2-alpha", "goship-node2-beta-two"]


def test_hostvars_from_the_document_are_untrusted(tmp_path):
    """Data from the state file or the API never counts as a template (ansible-core 2.19 trust)."""
    from ansible.template import is_trusted_as_template  # pylint: disable=import-outside-toplevel
    shutil.copytree(FIXTURES, tmp_path, dirs_exist_ok=True)
    node1 = parse(tmp_path / "state-file.goship.yml").get_host("node1").get_vars()
    greeting = node1["goship_project_vms"][0]["apps"][0]["env"]["GREETING"]
    assert greeting == "{{ lookup('pipe', 'id') }}"
    assert not is_trusted_as_template(greeting)


def test_invalid_state_file_names_the_field(tmp_path):
    document = fixture_document()
    document["projects"]["alpha"]["apps"][1]["replicas"] = -2
    message = parse_error(write_state_source(tmp_path, document))
    assert "state.yml: invalid desired state: projects.alpha.apps[1].replicas: must be an integer >= 0" in message


def test_state_file_not_yaml(tmp_path):
    config = write_state_source(tmp_path, {})
    (tmp_path / "state.yml").write_text("nodes: [unclosed\n")
    assert "<document>: not valid YAML" in parse_error(config)


def test_missing_state_file(tmp_path):
    config = write_state_source(tmp_path, {})
    (tmp_path / "state.yml").unlink()
    assert "state.yml" in parse_error(config)


def test_neither_source_is_an_error(tmp_path):
    config = tmp_path / "none.goship.yml"
    config.write_text("plugin: goship.core.goship\n")
    assert "set url (or env GOSHIP_URL) for the control service, or state_file" in parse_error(config)


def test_both_sources_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setenv("GOSHIP_URL", "http://127.0.0.1:9")
    config = write_state_source(tmp_path, fixture_document())
    assert "give either url (or env GOSHIP_URL) or state_file, not both" in parse_error(config)


def test_url_without_token_is_an_error(tmp_path):
    config = tmp_path / "api.goship.yml"
    config.write_text("plugin: goship.core.goship\nurl: http://127.0.0.1:9\n")
    assert "url needs a token (option token or env GOSHIP_TOKEN)" in parse_error(config)


def test_url_scheme_is_checked(tmp_path):
    config = tmp_path / "api.goship.yml"
    config.write_text("plugin: goship.core.goship\nurl: file:///etc/passwd\ntoken: x\n")
    assert "url must start with http:// or https://" in parse_error(config)


def test_api_source_sends_bearer_token(tmp_path, server):
    server.serve_document(fixture_document())
    inventory = parse(api_config(tmp_path, server))
    assert sorted(inventory.hosts) == ["node1", "node2"]
    assert inventory.get_host("node2").get_vars()["goship_project_vms"][1]["project"] == "beta-two"
    path, headers = server.requests[0]
    assert path == API_PATH
    assert headers["Authorization"] == "Bearer t0ken"


def test_api_url_and_token_from_environment(server, monkeypatch):
    server.serve_document(fixture_document())
    monkeypatch.setenv("GOSHIP_URL", server.url + "/")
    monkeypatch.setenv("GOSHIP_TOKEN", "from-env")
    inventory = parse(FIXTURES / "api.goship.yml")
    assert sorted(inventory.hosts) == ["node1", "node2"]
    path, headers = server.requests[0]
    assert path == API_PATH  # no double slash from the URL's trailing "/"
    assert headers["Authorization"] == "Bearer from-env"


@pytest.mark.parametrize("status, body, expected", [
    (401, b'{"error": "bad token"}', "HTTP 401 Unauthorized (check the token: option token or env GOSHIP_TOKEN): {\"error\": \"bad token\"}"),
    (500, b"database is locked", "HTTP 500 Internal Server Error: database is locked"),
])
def test_api_error_status(tmp_path, server, status, body, expected):
    server.status, server.body = status, body
    message = parse_error(api_config(tmp_path, server))
    assert "GET %s%s: %s" % (server.url, API_PATH, expected) in message
    assert "t0ken" not in message


def test_api_invalid_json(tmp_path, server):
    server.status, server.body = 200, b"<html>not json</html>"
    message = parse_error(api_config(tmp_path, server))
    assert "%s%s: invalid desired state: <document>: not valid JSON" % (server.url, API_PATH) in message


def test_api_invalid_document(tmp_path, server):
    document = fixture_document()
    document["projects"]["alpha"]["nodes"] = ["node1", "ghost"]
    server.serve_document(document)
    assert "projects.alpha.nodes[1]: unknown node 'ghost' (not in nodes)" in parse_error(api_config(tmp_path, server))


def test_api_unreachable(tmp_path):
    with DesiredStateServer() as stopped:
        url = stopped.url
    config = tmp_path / "api.goship.yml"
    config.write_text("plugin: goship.core.goship\nurl: %s\ntoken: x\n" % url)
    assert "GET %s%s failed:" % (url, API_PATH) in parse_error(config)


def test_api_timeout(tmp_path, server):
    server.serve_document(fixture_document())
    server.delay_s = 3
    message = parse_error(api_config(tmp_path, server, timeout_s=1))
    assert "failed:" in message and "timed out" in message


def test_token_is_not_forwarded_on_redirect(tmp_path, server):
    with DesiredStateServer() as target:
        target.serve_document(fixture_document())
        server.redirect_to = target.url
        inventory = parse(api_config(tmp_path, server))
    assert sorted(inventory.hosts) == ["node1", "node2"]
    assert server.requests[0][1]["Authorization"] == "Bearer t0ken"
    assert target.requests[0][0] == API_PATH
    assert "Authorization" not in target.requests[0][1]


def test_keyed_groups_strict_reports_missing_variable(tmp_path):
    config = write_state_source(tmp_path, fixture_document(), "strict: true\nkeyed_groups:\n  - key: goship_labels.missing.deeper\n")
    assert "Could not generate group for host" in parse_error(config)


def test_keyed_groups_not_strict_skips_missing_variable(tmp_path):
    config = write_state_source(tmp_path, fixture_document(), "keyed_groups:\n  - key: goship_labels.tier\n    prefix: tier\n")
    inventory = parse(config)
    assert [host.name for host in inventory.groups["tier_edge"].get_hosts()] == ["node1"]


def test_example_state_file_configuration_parses():
    inventory = parse(REPO_ROOT / "examples" / "inventory" / "state-file.goship.yml")
    assert sorted(inventory.hosts) == ["node1", "node2"]
    assert [host.name for host in inventory.groups["zone_b"].get_hosts()] == ["node2"]
