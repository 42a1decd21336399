"""A serving control service with its reconcile loop (`serve --reconcile`) driving simulated nodes
of this machine: nodes, a one-VM project, bounded waits, and the clean-up of what the runs made
(domains, storage pools, leftover ansible processes)."""

import sqlite3
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from ctl_helpers import project
from goship_ctl.oci.busybox import build_busybox_image
from goship_ctl.reconciler import runs
from vm_harness import remove_goship_pools

POLL_S = 1.0
# A reconcile that boots a VM takes 30-90 s on the 2-core TCG machine, more under load.
CONVERGE_TIMEOUT_S = 600.0


def node_vars(tmp: Path, image_dir) -> dict:
    return {"node_manage_packages": False, "goship_image_dir": str(image_dir),
            "goship_oci_images_dir": str(tmp / "oci"), "ansible_python_interpreter": sys.executable}


def one_vm_project(name: str) -> dict:
    """One VM (1 vCPU, 384 MiB) with one replica of the busybox image."""
    return project(name, placement={"nodes": 1}, vcpus=1, memory_mib=384,
                   apps=[{"name": "web", "image": "demo-web", "replicas": 1, "ports": [8080]}])


def wait_for(what: str, check, timeout_s: float = CONVERGE_TIMEOUT_S, poll_s: float = POLL_S):
    """``check()``'s first truthy value, within ``timeout_s`` (at most timeout_s / poll_s + 1 tries)."""
    deadline = time.monotonic() + timeout_s
    for _attempt in range(int(timeout_s / poll_s) + 1):
        value = check()
        if value:
            return value
        if time.monotonic() >= deadline:
            break
        time.sleep(poll_s)
    raise AssertionError("timed out after %.0f s waiting for %s" % (timeout_s, what))


def run_rows(data_dir: Path) -> list[dict]:
    """The store's ``reconcile_runs`` rows, read straight from the SQLite file."""
    with sqlite3.connect(data_dir / "goship.db") as conn:
        conn.row_factory = sqlite3.Row
        return [dict(row) for row in conn.execute("SELECT * FROM reconcile_runs ORDER BY id")]


def events(server, node: str) -> list[dict]:
    response = server.request("GET", "/api/v1/events", params={"node": node, "limit": 1000})
    assert response.status_code == 200, response.text
    return response.json()


def leftover_ansible(data_dir: Path, ident: str = "") -> set[int]:
    """Sessions of processes still running a playbook of this store's reconciler (of run ``ident``)."""
    return runs.leftover_sessions("%s/" % (data_dir / "reconcile" / "runs" / ident))


def qemu_processes(domain: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if cmdline[0].endswith(b"qemu-system-x86_64") and ("guest=%s," % domain).encode() in b" ".join(cmdline):
                found.append(int(entry.name))
    return found


@contextmanager
def simulated_nodes(tmp: Path, libvirt_conn, nodes):
    """``tmp`` (0711, under /tmp) with the OCI image the project runs; afterwards, whatever
    happened: what runs of the store ``tmp/ctl`` left, the nodes' domains and storage pools go."""
    build_busybox_image(tmp / "oci" / "demo-web")
    try:
        yield tmp
    finally:
        clean_up(libvirt_conn, tmp / "ctl", nodes)


def clean_up(libvirt_conn, data_dir: Path, nodes) -> None:
    runs.kill_sessions(leftover_ansible(data_dir))
    for dom in libvirt_conn.listAllDomains():
        if dom.name().startswith(tuple("goship-%s-" % node for node in nodes)):
            if dom.isActive():
                dom.destroy()
            dom.undefine()
    remove_goship_pools(libvirt_conn, nodes)
