"""Boot project VMs through real libvirt for tests and bench/boot.py.

A ``ScratchVm`` defines a domain from a ``DomainSpec``, starts it, watches it and, on exit,
always removes it: destroy only if it is still running, undefine, delete its state directory.
Domain names start with ``goship-test`` so they never collide with real GoShip domains.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import time
from pathlib import Path

import libvirt

from ansible_collections.goship.core.plugins.module_utils import domain_xml, host_facts
from ansible_collections.goship.core.plugins.module_utils.guest_channel import GuestChannel, GuestChannelError

LIBVIRT_URI = "qemu:///system"
# A TCG boot takes about 8 s on an idle 2-core host and up to 3x that under load.
BOOT_TIMEOUT_S = 120.0
SHUTDOWN_TIMEOUT_S = 60.0
CONNECT_RETRY_S = 0.005
POLL_S = 0.1


def scratch_node(label: str) -> str:
    """A node name no real node has: ``test<label><random hex>``."""
    return f"test{label}{secrets.token_hex(3)}"


def image_spec(image_dir: Path, state_root: str, node: str, project: str, virt_type: str, **options) -> domain_xml.DomainSpec:
    """The domain of a project VM booting the GoShip image (shared read-only rootfs as vda)."""
    name = domain_xml.domain_name(node, project)
    options.setdefault("initrd", str(image_dir / "initrd.img"))
    options.setdefault("kernel", str(image_dir / "vmlinuz"))
    if domain_xml.is_microvm(options.get("machine", "pc")) and virt_type == "qemu":
        options.setdefault("tsc_khz", host_facts.tsc_khz())  # as project_vm does (docs/primitives.md)
    options.setdefault("disks", (domain_xml.Disk(source=str(image_dir / "rootfs.squashfs")),))
    return domain_xml.DomainSpec(
        node=node, project=project, generation=1, virt_type=virt_type,
        paths=domain_xml.VmPaths.for_domain(state_root, name), **options)


class ScratchVm:
    """One scratch domain; a context manager that always cleans up after itself."""

    def __init__(self, conn: libvirt.virConnect, spec: domain_xml.DomainSpec):
        self.conn = conn
        self.spec = spec
        self.paths = spec.paths
        self.dom = None
        self.destroyed = False
        self.create_s = None

    def __enter__(self):
        self.paths.create()
        self.dom = self.conn.defineXML(domain_xml.render(self.spec))
        return self

    def __exit__(self, *exc_info):
        self.remove()

    def start(self) -> float:
        """``virsh start``; returns the monotonic time just before it (``create_s``: its duration)."""
        started = time.monotonic()
        self.dom.create()
        self.create_s = time.monotonic() - started
        self.paths.restrict_channel()
        return started

    def is_shut_off(self) -> bool:
        return self.dom.state()[0] == libvirt.VIR_DOMAIN_SHUTOFF

    def wait_shut_off(self, timeout: float = SHUTDOWN_TIMEOUT_S) -> bool:
        """True once the domain is shut off by itself within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while not self.is_shut_off():
            if time.monotonic() >= deadline:
                return False
            time.sleep(POLL_S)
        return True

    def console_tail(self, max_bytes: int = 12000) -> str:
        try:
            with open(self.paths.console_log, "rb") as log:
                log.seek(max(0, os.path.getsize(self.paths.console_log) - max_bytes))
                return log.read().decode("utf-8", "replace")
        except OSError as exc:
            return f"(no console log: {exc})"

    def remove(self):
        if self.dom is not None:
            if self.dom.isActive():
                self.dom.destroy()
                self.destroyed = True
            self.dom.undefine()
            self.dom = None
        shutil.rmtree(self.paths.directory, ignore_errors=True)


def connect_channel(path: str, deadline: float) -> GuestChannel:
    """A GuestChannel, connected in a tight loop as soon as the socket accepts.

    The channel syncs on connect, so this returns when guest_init answered its first line.
    """
    while True:
        try:
            return GuestChannel(path, max(0.1, deadline - time.monotonic()))
        except GuestChannelError:
            if time.monotonic() >= deadline:
                raise
        time.sleep(CONNECT_RETRY_S)


def first_line(path: str, deadline: float) -> bytes:
    """The first line the guest writes to the channel, read by a client connected in a tight loop."""
    with connect_unix(path, deadline) as sock:
        data = b""
        while b"\n" not in data:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no line on {path} in time (got {data[:200]!r})")
            sock.settimeout(remaining)
            chunk = sock.recv(4096)
            if not chunk:
                raise ConnectionError(f"{path} closed before a full line (got {data[:200]!r})")
            data += chunk
        return data.split(b"\n", 1)[0]


def connect_unix(path: str, deadline: float) -> socket.socket:
    """A socket connected to ``path``, retried until ``deadline`` while the socket is missing or
    QEMU's listen backlog of one is full (connect says EAGAIN)."""
    while True:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(path)
            return sock
        except OSError:
            sock.close()
            if time.monotonic() >= deadline:
                raise
        time.sleep(CONNECT_RETRY_S)


def remove_goship_pools(conn, nodes):
    """Undefine the node role's storage pools (goship-<node>) of simulated nodes: their
    directories went with the test's scratch dir, and a later run must not find them defined."""
    names = {f"goship-{node}" for node in nodes}
    for pool in conn.listAllStoragePools():
        if pool.name() in names:
            if pool.isActive():
                pool.destroy()
            pool.undefine()
