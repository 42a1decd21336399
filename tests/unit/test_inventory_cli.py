"""goship.core.goship through the real CLIs: ``ansible-inventory --list`` output, templating, cache."""

import json
import shutil

from inventory_helpers import API_PATH, FIXTURES, DesiredStateServer, fixture_document, inventory_list, run_ansible, write_state_source

UNSAFE_MARK = "__ansible_unsafe"  # how ansible-inventory's JSON marks a value that must never be templated


def unmarked(value):
    """The JSON value with ansible-inventory's unsafe marks removed."""
    if isinstance(value, dict):
        if set(value) == {UNSAFE_MARK}:
            return value[UNSAFE_MARK]
        return {key: unmarked(item) for key, item in value.items()}
    if isinstance(value, list):
        return [unmarked(item) for item in value]
    return value


def test_list_from_state_file(tmp_path):
    shutil.copytree(FIXTURES, tmp_path, dirs_exist_ok=True)
    listed = inventory_list(tmp_path / "state-file.goship.yml")
    assert sorted(listed["all"]["children"]) == sorted([
        "ungrouped", "goship_nodes", "goship_project_alpha", "goship_project_beta_two", "edge", "zone_a", "zone_b"])
    assert listed["goship_nodes"]["hosts"] == ["node1", "node2"]
    assert listed["goship_project_alpha"]["hosts"] == ["node1", "node2"]
    assert listed["goship_project_beta_two"]["hosts"] == ["node2"]
    assert listed["zone_a"]["hosts"] == ["node1"] and listed["zone_b"]["hosts"] == ["node2"]
    assert listed["edge"]["hosts"] == ["node1"]

    hostvars = unmarked(listed["_meta"]["hostvars"])
    alpha = fixture_document()["projects"]["alpha"]
    assert hostvars["node2"] == {
        "ansible_connection": "ssh", "ansible_host": "127.0.0.1", "ansible_port": 2222, "ansible_user": "goship",
        "goship_node": "node2", "goship_state_root": "/var/lib/goship", "goship_labels": {"zone": "b"}, "goship_zone": "b",
        "goship_project_vms": [
            {"project": "alpha", "domain": "goship-node2-alpha", "generation": 3, "vm": alpha["vm"], "apps": alpha["apps"]},
            {"project": "beta-two", "domain": "goship-node2-beta-two", "generation": 0, "vm": {}, "apps": []},
        ],
    }
    assert hostvars["node1"]["ansible_python_interpreter"] == "/usr/bin/python3"


def test_list_marks_document_strings_unsafe(tmp_path):
    shutil.copytree(FIXTURES, tmp_path, dirs_exist_ok=True)
    listed = inventory_list(tmp_path / "state-file.goship.yml")
    env = listed["_meta"]["hostvars"]["node1"]["goship_project_vms"][0]["apps"][0]["env"]
    assert env["GREETING"] == {UNSAFE_MARK: "{{ lookup('pipe', 'id') }}"}


def test_jinja_in_app_env_is_never_templated(tmp_path):
    marker = tmp_path / "lookup-ran"
    document = fixture_document()
    literal = "{{ lookup('pipe', 'touch %s') }}" % marker
    document["projects"]["alpha"]["apps"][0]["env"]["GREETING"] = literal
    config = write_state_source(tmp_path, document)
    result = run_ansible("ansible", [
        "-i", str(config), "node1", "-m", "ansible.builtin.debug",
        "-a", "msg={{ goship_project_vms[0].apps[0].env.GREETING }}",
    ])
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(result.stdout.split("=>", 1)[1])["msg"] == literal
    assert not marker.exists()


def test_list_from_api_with_env_credentials():
    with DesiredStateServer() as server:
        server.serve_document(fixture_document())
        listed = inventory_list(FIXTURES / "api.goship.yml", env_extra={"GOSHIP_URL": server.url, "GOSHIP_TOKEN": "cli-token"})
    assert listed["goship_nodes"]["hosts"] == ["node1", "node2"]
    assert unmarked(listed["_meta"]["hostvars"]["node1"]["goship_project_vms"])[0]["domain"] == "goship-node1-alpha"
    assert [request[0] for request in server.requests] == [API_PATH]
    assert server.requests[0][1]["Authorization"] == "Bearer cli-token"


def test_cache_serves_repeat_runs_until_flushed(tmp_path):
    cache_dir = tmp_path / "cache"
    config = tmp_path / "cached.goship.yml"
    with DesiredStateServer() as server:
        server.serve_document(fixture_document())
        config.write_text(
            "plugin: goship.core.goship\nurl: %s\ntoken: t\ncache: true\n"
            "cache_plugin: ansible.builtin.jsonfile\ncache_connection: %s\ncache_timeout: 3600\n" % (server.url, cache_dir))
        first = inventory_list(config)
        assert len(server.requests) == 1 and any(cache_dir.iterdir())
        server.status, server.body = 500, b"down"  # a cached run must not notice
        assert inventory_list(config) == first
        assert len(server.requests) == 1
        server.serve_document(fixture_document())
        inventory_list(config, extra_args=["--flush-cache"])
        assert len(server.requests) == 2


def test_invalid_document_fails_the_run(tmp_path):
    document = fixture_document()
    document["projects"]["alpha"]["apps"][1]["replicas"] = "many"
    config = write_state_source(tmp_path, document)
    result = run_ansible("ansible-inventory", ["--list", "-i", str(config)], env_extra={"ANSIBLE_INVENTORY_UNPARSED_FAILED": "1"})
    assert result.returncode != 0
    assert "projects.alpha.apps[1].replicas: must be an integer >= 0" in result.stderr
