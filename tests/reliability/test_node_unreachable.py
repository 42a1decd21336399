"""A node that is unreachable, then comes back, under `serve --reconcile`.

The node is this machine reached over SSH on a 127.0.0.1 port where nothing listens yet. The loop
marks it unreachable; the project placed on it loses its VM placement but nothing about the node
or the project leaves the store. Then a real sshd (tests/integration/local_sshd.py) starts on that
port: the loop's own retry (backoff, then the drift scan's "unreachable" reason; nobody calls
reconcile) reaches it, the mark is cleared, the project is placed back and its VM boots.
"""

import time

import pytest

from ctl_helpers import node
from ctl_server import CtlServer
from local_sshd import LocalSshd, free_loopback_port
from reconcile_world import events, node_vars, one_vm_project, qemu_processes, simulated_nodes, wait_for

NODE, PROJECT = "unrn1", "upsilon"
DOMAIN = "goship-%s-%s" % (NODE, PROJECT)
BACKOFF_FIRST_S = 15  # NodeBackoff's base: the loop's first retry of a failed node


@pytest.fixture
def tmp(qemu_tmp, libvirt_conn):
    with simulated_nodes(qemu_tmp, libvirt_conn, [NODE]) as path:
        yield path


def ssh_node(tmp, image_dir, port):
    return node(NODE, vcpus=1, memory_mib=512, connection="ssh", host="127.0.0.1", port=port, user="root",
                state_root=str(tmp / NODE), labels={"zone": "a"}, vars={
                    **node_vars(tmp, image_dir),
                    "ansible_ssh_private_key_file": str(tmp / "sshd" / "client_ed25519"),
                    "ansible_ssh_common_args": "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null",
                    "ansible_ssh_args": "-o ControlMaster=no",  # no multiplexing process outlives the test
                })


def test_unreachable_node_keeps_its_state_and_converges_when_it_returns(tmp, guest_image_dir, libvirt_conn):
    port = free_loopback_port()
    sshd = LocalSshd(tmp / "sshd", port=port)
    server = CtlServer(tmp, ("--reconcile", "--reconcile-period", "5")).start()
    started = time.monotonic()
    try:
        spec = ssh_node(tmp, guest_image_dir, port)
        assert server.request("POST", "/api/v1/nodes", json=spec).status_code == 201
        assert server.request("POST", "/api/v1/projects", json=one_vm_project(PROJECT)).status_code == 201

        def node_view():
            return server.request("GET", "/api/v1/nodes/" + NODE).json()
        down = wait_for("the node to be marked unreachable", lambda: node_view()["status"] == "unreachable" and node_view(),
                        timeout_s=120)
        assert "Connection refused" in down["statusMessage"]
        for field in ("connection", "host", "port", "user", "state_root", "labels", "vars"):
            assert down["connection"][field] == spec[field], field
        view = server.request("GET", "/api/v1/projects/" + PROJECT).json()
        sent = one_vm_project(PROJECT)["spec"]
        assert (view["spec"]["placement"], view["spec"]["vm"]) == (sent["placement"], sent["vm"])
        assert [(app["name"], app["image"], app["replicas"]) for app in view["spec"]["apps"]] == [("web", "demo-web", 1)]
        assert not view["status"]["scheduled"] and "%s: unreachable" % NODE in view["status"]["message"]
        marked_at = time.monotonic()

        sshd.start()
        sshd_at = time.monotonic()
        up = wait_for("the node to be ready again", lambda: node_view()["status"] == "ready" and node_view())
        ready_at = time.monotonic()
        assert up["statusMessage"] == "" and ready_at - marked_at >= BACKOFF_FIRST_S - 5

        def converged():
            vms = server.request("GET", "/api/v1/projects/%s/vms" % PROJECT).json()
            return [vm for vm in vms if vm.get("state") == "running" and vm.get("observedGeneration") == 1]
        wait_for("the project's VM to run on the node that came back", converged)
        print("unreachable after %.0f s; sshd up %.0f s later; node ready %.0f s after that; VM running %.0f s later"
              % (marked_at - started, sshd_at - marked_at, ready_at - sshd_at, time.monotonic() - ready_at))
        view = server.request("GET", "/api/v1/projects/" + PROJECT).json()
        assert view["status"]["scheduled"] and view["status"]["nodes"] == [NODE]
        history = events(server, NODE)
        reasons = [event["data"]["reasons"] for event in history if event["kind"] == "reconcile.started"]
        kinds = [event["kind"] for event in history]
        first_ok = kinds.index("reconcile.ok")
        assert "reconcile.unreachable" in kinds[:first_ok] and "node.ready" in kinds
        assert [why for why in reasons if any(reason.startswith("unreachable: ") for reason in why)], reasons
        assert sshd.accepted_logins() >= 1
        assert len(qemu_processes(DOMAIN)) == 1
    finally:
        server.stop()
        sshd.stop()
