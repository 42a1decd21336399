"""goship-ctl: the embedded store (in-process), and a real `goship-ctl serve` (uvicorn on
127.0.0.1, plain and TLS) driven over HTTP. Exit codes are part of the contract."""

import datetime
import ipaddress
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ctl_helpers import project
from goship_ctl.cli import main
from goship_ctl.errors import (EXIT_CONFLICT, EXIT_DENIED, EXIT_INVALID, EXIT_NOT_FOUND, EXIT_OK, EXIT_UNREACHABLE,
                               EXIT_UNSCHEDULABLE, EXIT_USAGE)

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "alpha.yaml"
SERVER_START_S = 30
CLIENT_ENV = ("GOSHIP_URL", "GOSHIP_TOKEN", "GOSHIP_CA_CERT", "GOSHIP_DATA_DIR", "GOSHIP_DATABASE_URL")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    for name in CLIENT_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GOSHIP_DATA_DIR", str(tmp_path / "ctl"))


def ctl(capsys, *argv):
    """(exit code, stdout, stderr) of goship-ctl run in this process."""
    code = main([str(arg) for arg in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def add_nodes(capsys, count=3, *extra):
    for index in range(1, count + 1):
        assert ctl(capsys, "node", "add", "node%d" % index, "--label", "zone=z%d" % index,
                   "--vcpus", 4, "--memory-mib", 4096, *extra)[0] == EXIT_OK


def write(path, document):
    path.write_text(yaml.safe_dump(document))
    return path


def test_embedded_store_end_to_end(capsys, tmp_path):
    add_nodes(capsys)
    code, out, err = ctl(capsys, "apply", "-f", EXAMPLE)
    assert code == EXIT_OK, err
    assert out.startswith("project/alpha created (generation 1, nodes: node1,node2,node3)")
    code, out = ctl(capsys, "get", "apps", "-o", "json")[:2]
    assert [(a["name"], a["replicas"], a["desired"]) for a in json.loads(out)] == [("web", 2, 6)]
    code, out = ctl(capsys, "get", "projects")[:2]
    assert out.splitlines()[0].split()[:3] == ["NAME", "GENERATION", "NODES"]
    assert out.splitlines()[1].split()[:3] == ["alpha", "1", "node1,node2,node3"]
    assert ctl(capsys, "scale", "alpha", "web", 3)[1].startswith("project/alpha updated (generation 2")
    code, out = ctl(capsys, "get", "vms", "-o", "yaml")[:2]
    assert [(vm["node"], vm["state"]) for vm in yaml.safe_load(out)] == [
        ("node1", "pending"), ("node2", "pending"), ("node3", "pending")]
    code, out = ctl(capsys, "node", "drain", "node2")[:2]
    assert code == EXIT_OK and "moved project alpha: node1,node2,node3 -> node1,node3" in out
    assert "unschedulable project alpha: placed on 2 of 3 nodes; node2: drained" in out
    code, out = ctl(capsys, "describe", "project", "alpha")[:2]
    described = yaml.safe_load(out)
    assert described["status"]["nodes"] == ["node1", "node3"]
    assert any("node.drained" not in line and "project.placed" in line for line in described["events"])
    assert ctl(capsys, "delete", "node", "node2")[0] == EXIT_OK
    assert ctl(capsys, "delete", "project", "alpha")[0] == EXIT_OK
    assert ctl(capsys, "get", "projects", "-o", "json")[1].strip() == "[]"


def test_exit_codes(capsys, tmp_path):
    add_nodes(capsys, 1)
    assert ctl(capsys, "apply", "-f", write(tmp_path / "big.yaml", project(placement={"nodes": 2})))[0] \
        == EXIT_UNSCHEDULABLE
    bad = project("beta")
    bad["spec"]["apps"][0]["replicas"] = -1
    bad["spec"]["vm"]["vcpus"] = 0
    code, err = ctl(capsys, "apply", "-f", write(tmp_path / "bad.yaml", bad))[::2]
    assert code == EXIT_INVALID
    assert "spec.vm.vcpus: Input should be greater than or equal to 1" in err
    assert "spec.apps[0].replicas: Input should be greater than or equal to 0" in err
    assert ctl(capsys, "describe", "project", "beta")[0] == EXIT_NOT_FOUND
    assert ctl(capsys, "scale", "alpha", "web", 1, "--resource-version", 1)[0] == EXIT_CONFLICT
    assert ctl(capsys, "delete", "node", "node1")[0] == EXIT_CONFLICT
    (tmp_path / "broken.yaml").write_text("a: [\n")
    assert ctl(capsys, "apply", "-f", tmp_path / "broken.yaml")[0] == EXIT_INVALID
    assert ctl(capsys, "apply", "-f", tmp_path / "absent.yaml")[0] == EXIT_INVALID
    assert ctl(capsys, "node", "add", "node9", "--vcpus", 2)[0] == EXIT_INVALID
    with pytest.raises(SystemExit) as usage:
        main(["scale", "alpha", "web", "-1"])
    assert usage.value.code == EXIT_USAGE


def test_several_documents_in_one_file(capsys, tmp_path):
    add_nodes(capsys, 2)
    path = tmp_path / "two.yaml"
    path.write_text(yaml.safe_dump_all([project("one", placement={"nodes": 1}), project("two")]))
    code, out = ctl(capsys, "apply", "-f", path)[:2]
    assert code == EXIT_OK and out.count(" created ") == 2


def test_node_facts_and_token_commands(capsys, tmp_path):
    assert ctl(capsys, "node", "add", "n1", "--label", "zone=a")[0] == EXIT_OK
    facts = {"host": {"capacity": {"vcpus_total": 2, "memory_mib_free": 1500, "memory_mib_allocated": 0},
                      "confidential": {"sev_snp": True}}}
    (tmp_path / "facts.json").write_text(json.dumps(facts))
    code, out = ctl(capsys, "node", "facts", "n1", "-f", tmp_path / "facts.json", "-o", "json")[:2]
    assert json.loads(out)["node"]["capacity"] == {"vcpus": 2, "memory_mib": 1500}
    code, out = ctl(capsys, "token", "create", "ci", "--project", "alpha")[:2]
    assert code == EXIT_OK and out.startswith("gsp_")
    code, out = ctl(capsys, "token", "list", "-o", "json")[:2]
    assert [(t["name"], t["scope"]) for t in json.loads(out)] == [("ci", "project")]
    token_id = json.loads(out)[0]["id"]
    assert ctl(capsys, "token", "revoke", token_id)[0] == EXIT_OK
    assert ctl(capsys, "token", "revoke", token_id)[0] == EXIT_NOT_FOUND


def test_serve_refuses_plain_http_off_loopback(capsys):
    code, err = ctl(capsys, "serve", "--host", "0.0.0.0")[::2]
    assert code == EXIT_USAGE and "needs TLS" in err
    assert ctl(capsys, "serve", "--tls-cert", "x.pem")[0] == EXIT_USAGE


# -- a real server -------------------------------------------------------------------------
def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def self_signed(directory: Path):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=1))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


class Server:
    """`python -m goship_ctl serve` on 127.0.0.1, with a bootstrap admin token."""

    def __init__(self, tmp_path: Path, tls=False):
        self.port = free_port()
        self.token_file = tmp_path / "admin.token"
        self.log = (tmp_path / "serve.log").open("w")
        command = [sys.executable, "-m", "goship_ctl", "serve", "--port", str(self.port), "--data-dir",
                   str(tmp_path / "served"), "--bootstrap-token-file", str(self.token_file), "--log-level", "warning"]
        self.ca_cert = None
        if tls:
            self.ca_cert, key = self_signed(tmp_path)
            command += ["--tls-cert", str(self.ca_cert), "--tls-key", str(key)]
        self.url = "%s://127.0.0.1:%d" % ("https" if tls else "http", self.port)
        self.process = subprocess.Popen(command, cwd=REPO, stdout=self.log, stderr=subprocess.STDOUT,
                                        env=dict(os.environ))
        self._wait()

    def _wait(self):
        deadline = time.monotonic() + SERVER_START_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError("goship-ctl serve exited with %s" % self.process.returncode)
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    if self.token_file.exists():
                        return
            except OSError:
                pass
            time.sleep(0.1)
        raise AssertionError("goship-ctl serve did not listen within %d s" % SERVER_START_S)

    @property
    def admin_token(self):
        return self.token_file.read_text().strip()

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        self.log.close()


@pytest.fixture
def server(tmp_path):
    running = Server(tmp_path)
    yield running
    running.stop()


def test_cli_over_http_with_admin_and_project_tokens(capsys, server, monkeypatch, tmp_path):
    assert server.token_file.stat().st_mode & 0o777 == 0o600
    monkeypatch.setenv("GOSHIP_URL", server.url)
    monkeypatch.setenv("GOSHIP_TOKEN", server.admin_token)
    add_nodes(capsys, 3)
    assert ctl(capsys, "apply", "-f", EXAMPLE)[0] == EXIT_OK
    assert ctl(capsys, "apply", "-f", write(tmp_path / "beta.yaml", project("beta", placement={"nodes": 1})))[0] \
        == EXIT_OK
    code, out = ctl(capsys, "token", "create", "alpha-ci", "--project", "alpha")[:2]
    monkeypatch.setenv("GOSHIP_TOKEN", out.strip())
    code, out = ctl(capsys, "get", "apps", "-o", "json")[:2]
    assert code == EXIT_OK and {a["project"] for a in json.loads(out)} == {"alpha"}
    assert ctl(capsys, "get", "apps", "-p", "beta")[0] == EXIT_NOT_FOUND
    assert ctl(capsys, "scale", "beta", "web", 0)[0] == EXIT_NOT_FOUND
    assert ctl(capsys, "get", "nodes")[0] == EXIT_DENIED
    assert ctl(capsys, "scale", "alpha", "web", 1)[0] == EXIT_OK
    monkeypatch.setenv("GOSHIP_TOKEN", "gsp_000000000000_" + "B" * 43)
    code, err = ctl(capsys, "get", "projects")[::2]
    assert code == EXIT_DENIED and "invalid or revoked token" in err
    # The embedded store of this CLI process is a different, empty one: the URL decided.
    monkeypatch.delenv("GOSHIP_URL")
    assert ctl(capsys, "get", "projects", "-o", "json")[1].strip() == "[]"


def test_cli_reports_an_unreachable_api(capsys, monkeypatch):
    monkeypatch.setenv("GOSHIP_URL", "http://127.0.0.1:%d" % free_port())
    code, err = ctl(capsys, "get", "projects")[::2]
    assert code == EXIT_UNREACHABLE and "127.0.0.1" in err


def test_serve_with_tls(capsys, tmp_path, monkeypatch):
    server = Server(tmp_path, tls=True)
    try:
        monkeypatch.setenv("GOSHIP_URL", server.url)
        monkeypatch.setenv("GOSHIP_TOKEN", server.admin_token)
        assert ctl(capsys, "get", "projects")[0] == EXIT_UNREACHABLE  # self-signed: not trusted by default
        monkeypatch.setenv("GOSHIP_CA_CERT", str(server.ca_cert))
        assert ctl(capsys, "node", "add", "n1", "--vcpus", 1, "--memory-mib", 512)[0] == EXIT_OK
        code, out = ctl(capsys, "node", "list", "-o", "json")[:2]
        assert [n["name"] for n in json.loads(out)] == ["n1"]
    finally:
        server.stop()
