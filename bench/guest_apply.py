"""A GoShip VM started directly through libvirt, no Ansible: what guest_init alone takes to apply.

The floor of the apply benchmarks (cold_start, warm_update). ``GuestVm`` boots the guest image
with a read-only images disk holding ``demo-web`` (as the project_vm role would attach it),
waits for ``hello`` and keeps the channel open; ``apply_until_running`` pushes an app set and
returns the seconds until every replica of it runs, polling guest_init's ``status``.
"""

from __future__ import annotations

import time

import one_node  # noqa: F401  (sys.path: the repo, the collection, tests/integration)
import vm_harness
from ansible_collections.goship.core.plugins.module_utils import accel, domain_xml, images_disk

POLL_S = 0.05
RUNNING = ("running", "ready")


class GuestVm:
    """Context manager: one scratch VM, booted, with its channel open (``self.channel``)."""

    def __init__(self, conn, work, oci_dir, timeout_s: float = vm_harness.BOOT_TIMEOUT_S, memory_mib: int = 512):
        self.conn = conn
        self.timeout_s = timeout_s
        state_root = work / "floor"
        disk, _changed = images_disk.build_images_disk({one_node.IMAGE: str(oci_dir / one_node.IMAGE)},
                                                       str(work / "floor-disks"))
        (work / "floor-disks").chmod(0o755)
        image_dir = one_node.image_dir_for_tests()
        node = vm_harness.scratch_node("floor")
        self.spec = domain_xml.DomainSpec(
            node=node, project="floor", generation=1, virt_type=accel.choose(str(state_root)).virt_type,
            memory_mib=memory_mib, kernel=str(image_dir / "vmlinuz"), initrd=str(image_dir / "initrd.img"),
            paths=domain_xml.VmPaths.for_domain(str(state_root), domain_xml.domain_name(node, "floor")),
            disks=(domain_xml.Disk(source=str(image_dir / "rootfs.squashfs")),
                   domain_xml.Disk(source=disk, target="vdb", serial=images_disk.DISK_SERIAL)))
        self._vm = None
        self.channel = None
        self.generation = 1

    def __enter__(self):
        self._vm = vm_harness.ScratchVm(self.conn, self.spec).__enter__()
        try:
            started = self._vm.start()
            self.channel = vm_harness.connect_channel(self._vm.paths.channel, started + self.timeout_s)
            self.channel.hello()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc_info):
        if self.channel is not None:
            self.channel.close()
        self._vm.__exit__(*exc_info)

    def apply_until_running(self, apps: list[dict]) -> float:
        """Seconds from sending ``apply`` to guest_init converged with every replica of ``apps``
    running (or ready): what goship.core.guest_apps waits for."""
        self.generation += 1
        started = time.monotonic()
        self.channel.request("apply", {"generation": self.generation, "apps": apps})
        deadline = started + self.timeout_s
        while time.monotonic() < deadline:
            status = self.channel.request("status")
            if status.get("generation") == self.generation and status.get("converged") and all(
                    _replicas_running(status, app) for app in apps):
                return time.monotonic() - started
            time.sleep(POLL_S)
        raise TimeoutError(f"guest_init did not run {[a['name'] for a in apps]} within {self.timeout_s:.0f} s")


def _replicas_running(status: dict, app: dict) -> bool:
    """Every replica of the app's current spec runs (as goship.core.guest_apps decides it)."""
    reported = status.get("apps", {}).get(app["name"]) or {}
    current = [r for r in reported.get("replicas", []) if r.get("spec_hash", reported.get("spec_hash")) ==
               reported.get("spec_hash")]
    return len(current) == app["replicas"] and all(r.get("state") in RUNNING for r in current)
