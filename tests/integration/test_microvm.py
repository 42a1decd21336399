"""Machine type microvm (issue 9): the GoShip image boots on QEMU's microvm (no PCI, virtio-mmio
devices described by ACPI, stage0 loads virtio_mmio) up to guest_init's hello, with the boot spec
on a cidata seed and its digest declared on the kernel command line (goship.measurement=), so
the measured-configuration check runs in a real guest too. A failed test's report carries the
console log (conftest.py)."""

import time
import xml.etree.ElementTree as ET

import pytest

import vm_harness
from ansible_collections.goship.core.plugins.module_utils import domain_xml, nocloud_seed
from ansible_collections.goship.core.plugins.module_utils.guest_channel import GuestChannel, wait_for_hello

pytestmark = pytest.mark.integration

WAIT_S = 60.0


def test_microvm_boots_to_hello_with_a_verified_boot_spec(guest_image, state_root, accel_choice, scratch_vm, qemu_tmp):
    image_dir, manifest = guest_image
    node = vm_harness.scratch_node("mvm")
    boot_spec = {"project": "alpha", "node": node, "generation": 3, "policy": {"apply": "locked"},
                 "apps": [{"name": "idle", "runtime": "process", "image": "/",
                           "command": ["busybox", "sh", "-c", "echo up; exec busybox sleep 3600"]}]}
    seed = qemu_tmp / "seed.iso"
    nocloud_seed.write_iso(str(seed), nocloud_seed.build_seed_files("i-mvm", "alpha-" + node, goship=boot_spec), mode=0o644)
    digest = "sha256:" + nocloud_seed.measured_digests(boot_spec)["sha256"]
    spec = vm_harness.image_spec(
        image_dir, state_root, node, "alpha", accel_choice.virt_type, machine="microvm",
        disks=(domain_xml.Disk(source=str(image_dir / "rootfs.squashfs")),
               domain_xml.Disk(source=str(seed), target="vdb", serial="goship-seed")),
        kernel_args=("goship.measurement=" + digest,))
    vm = scratch_vm(spec)
    started = vm.start()

    live = ET.fromstring(vm.dom.XMLDesc(0))
    assert live.find("os/type").get("machine") == "microvm"
    assert {a.get("type") for a in live.findall("devices/*/address") if a.get("type") != "virtio-serial"} == {"virtio-mmio"}
    assert not live.findall("devices/controller[@type='pci']")

    hello = wait_for_hello(spec.paths.channel, vm_harness.BOOT_TIMEOUT_S)
    print("microvm: hello %.1f s after start (%s)" % (time.monotonic() - started, accel_choice.accel))
    assert hello["hostname"] == spec.hostname
    assert hello["measurement"]["state"] == "verified", hello["measurement"]
    assert hello["measurement"]["source"] == "declared" and hello["policy"]["apply"] == "locked"
    with GuestChannel(spec.paths.channel, timeout=30) as channel:
        deadline = time.monotonic() + WAIT_S
        while True:
            status = channel.request("status")
            if status["converged"] and status["apps"]:
                break
            assert time.monotonic() < deadline, status
            time.sleep(0.2)
        assert status["pid"] == 1 and status["kernel"] == manifest["kernel_version"]
        assert status["generation"] == 3 and status["apps"]["idle"]["replicas"][0]["state"] in ("ready", "running")
        disks = {d["name"]: d["serial"] for d in status["guest"]["block_devices"]}
        assert disks.get("vdb") == "goship-seed", disks  # the seed came over virtio-mmio too
        assert channel.request("shutdown", {"reboot": False}) == {"accepted": True}
    assert vm.wait_shut_off(), "microvm did not power itself off (ACPI on microvm)"
    assert "goship stage0: /dev/vda mounted" in vm.console_tail(1 << 20)
