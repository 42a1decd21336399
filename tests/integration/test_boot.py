"""Boot the GoShip image as a project VM through libvirt (qemu:///system) and talk to guest_init.

Define -> start -> hello -> ping -> status -> shutdown -> the domain shuts off by itself ->
undefine. A failed test's report carries the VM's console.log (see conftest.py).
"""

import os
import stat
import subprocess
import time
import xml.etree.ElementTree as ET

import pytest

import vm_harness
from ansible_collections.goship.core.plugins.module_utils import domain_xml
from ansible_collections.goship.core.plugins.module_utils.guest_channel import GuestChannel, wait_for_hello

pytestmark = pytest.mark.integration


def test_accelerator_probe_chose(accel_choice):
    assert accel_choice.accel in ("kvm", "tcg") and accel_choice.reason
    if accel_choice.accel == "tcg":
        print(f"TCG: {accel_choice.reason}")


def test_rendered_xml_is_valid_for_libvirt(guest_image, state_root, tmp_path):
    image_dir = guest_image[0]
    for machine in ("pc", "q35"):
        spec = vm_harness.image_spec(image_dir, state_root, vm_harness.scratch_node("xml"), "alpha", "qemu",
                                     machine=machine, topology=domain_xml.CpuTopology(cores=2), vcpus=2)
        path = tmp_path / f"{machine}.xml"
        path.write_text(domain_xml.render(spec))
        check = subprocess.run(["virt-xml-validate", str(path), "domain"], capture_output=True, text=True, timeout=60, check=False)
        assert check.returncode == 0, check.stdout + check.stderr


def test_boot_talk_and_power_off(guest_image, state_root, accel_choice, scratch_vm):
    image_dir, manifest = guest_image
    spec = vm_harness.image_spec(image_dir, state_root, vm_harness.scratch_node("boot"), "alpha", accel_choice.virt_type)
    vm = scratch_vm(spec)
    defined = ET.fromstring(vm.dom.XMLDesc(0))
    ns = {"goship": domain_xml.GOSHIP_XMLNS}
    assert defined.findtext("metadata/goship:vm/goship:project", namespaces=ns) == "alpha"
    assert defined.findtext("metadata/goship:vm/goship:node", namespaces=ns) == spec.node

    vm.start()
    sock = os.stat(spec.paths.channel)
    assert stat.S_ISSOCK(sock.st_mode) and stat.S_IMODE(sock.st_mode) == 0o600 and sock.st_uid == 0
    assert stat.S_IMODE(os.stat(spec.paths.directory).st_mode) == 0o700
    console = os.stat(spec.paths.console_log)
    assert stat.S_IMODE(console.st_mode) == 0o600 and console.st_uid == 0

    hello = wait_for_hello(spec.paths.channel, vm_harness.BOOT_TIMEOUT_S)
    assert hello["protocol_version"] == 1
    assert hello["hostname"] == spec.hostname
    with GuestChannel(spec.paths.channel, timeout=30) as channel:
        assert channel.request("ping") == {}
        status = channel.request("status")
        assert status["pid"] == 1
        assert status["kernel"] == manifest["kernel_version"]
        assert 0 < status["uptime_s"] < vm_harness.BOOT_TIMEOUT_S + 30
        assert status["hostname"] == spec.hostname
        assert channel.request("shutdown", {"reboot": False}) == {"accepted": True}

    shutdown_started = time.monotonic()
    assert vm.wait_shut_off(), f"still running {vm_harness.SHUTDOWN_TIMEOUT_S:.0f} s after shutdown was accepted"
    print(f"shut off {time.monotonic() - shutdown_started:.1f} s after shutdown was accepted")
    assert not vm.destroyed
    assert "goship stage0:" in vm.console_tail(), "the guest's console lines are missing from console.log"


def test_removal_leaves_nothing(guest_image, state_root, libvirt_conn):
    image_dir = guest_image[0]
    spec = vm_harness.image_spec(image_dir, state_root, vm_harness.scratch_node("gone"), "alpha", "qemu")
    with vm_harness.ScratchVm(libvirt_conn, spec) as vm:
        vm.start()
        assert os.path.exists(spec.paths.channel)
    assert vm.destroyed
    assert spec.name not in libvirt_conn.listDefinedDomains()
    assert not os.path.exists(spec.paths.directory)
