"""Domain XML rendering: structure, escaping, validation of parameters, libvirt's schema."""

import os
import shutil
import socket
import stat
import subprocess
import xml.etree.ElementTree as ET

import pytest

from ansible_collections.goship.core.plugins.module_utils import domain_xml
from ansible_collections.goship.core.plugins.module_utils.domain_xml import CpuTopology, Disk, DomainSpec, DomainSpecError, VmPaths

NS = {"goship": domain_xml.GOSHIP_XMLNS}


def make_spec(tmp_path=None, **overrides):
    state_root = str(tmp_path) if tmp_path else "/var/lib/goship"
    args = {
        "node": "n1", "project": "alpha", "generation": 7,
        "kernel": "/img/vmlinuz", "initrd": "/img/initrd.img",
        "paths": VmPaths.for_domain(state_root, "goship-n1-alpha"),
        "disks": (Disk(source="/img/rootfs.squashfs"),),
    }
    args.update(overrides)
    return DomainSpec(**args)


def parse(spec):
    return ET.fromstring(domain_xml.render(spec))


def test_identity_and_metadata():
    root = parse(make_spec())
    assert root.get("type") == "qemu"
    assert root.findtext("name") == "goship-n1-alpha"
    vm = root.find("metadata/goship:vm", NS)
    assert vm.findtext("goship:project", namespaces=NS) == "alpha"
    assert vm.findtext("goship:node", namespaces=NS) == "n1"
    assert vm.findtext("goship:generation", namespaces=NS) == "7"


def test_direct_kernel_boot_and_lifecycle():
    root = parse(make_spec(memory_mib=384, vcpus=2))
    assert root.find("memory").get("unit") == "MiB" and root.findtext("memory") == "384"
    assert root.findtext("vcpu") == "2"
    assert root.find("os/type").get("machine") == "pc"
    assert root.findtext("os/kernel") == "/img/vmlinuz"
    assert root.findtext("os/initrd") == "/img/initrd.img"
    assert root.findtext("os/cmdline") == "console=ttyS0 quiet goship.hostname=alpha-n1"
    assert root.find("features/acpi") is not None
    assert (root.findtext("on_poweroff"), root.findtext("on_reboot"), root.findtext("on_crash")) == ("destroy", "restart", "destroy")


def test_devices_are_the_minimum():
    devices = parse(make_spec()).find("devices")
    disk = devices.find("disk")
    assert disk.find("source").get("file") == "/img/rootfs.squashfs"
    assert disk.find("target").attrib == {"dev": "vda", "bus": "virtio"}
    assert disk.find("driver").get("type") == "raw" and disk.find("readonly") is not None
    channel = devices.find("channel")
    assert channel.get("type") == "unix"
    assert channel.find("source").attrib == {"mode": "bind", "path": "/var/lib/goship/vms/goship-n1-alpha/init.sock"}
    assert channel.find("target").attrib == {"type": "virtio", "name": "org.goship.init.0"}
    assert devices.find("serial/log").get("file") == "/var/lib/goship/vms/goship-n1-alpha/console.log"
    assert devices.find("memballoon").get("model") == "none"
    assert devices.find("controller[@type='usb']").get("model") == "none"
    assert devices.find("rng").get("model") == "virtio"
    for absent in ("graphics", "video", "sound", "input", "interface"):
        assert devices.find(absent) is None, absent


def test_options():
    root = parse(make_spec(quiet=False, kernel_args=("goship.debug=1",), machine="q35", memballoon=True, rng=False,
                           on_reboot="destroy", disks=()))
    assert root.findtext("os/cmdline") == "console=ttyS0 goship.hostname=alpha-n1 goship.debug=1"
    assert root.find("os/type").get("machine") == "q35"
    assert root.find("devices/memballoon").get("model") == "virtio"
    assert root.find("devices/rng") is None and root.find("devices/disk") is None
    assert root.findtext("on_reboot") == "destroy"


def test_data_disk_with_serial():
    state = Disk(source="/var/lib/goship/vms/goship-n1-alpha/state.qcow2", target="vdb", readonly=False,
                 driver_type="qcow2", serial="goship-state")
    disks = parse(make_spec(disks=(Disk(source="/img/rootfs.squashfs"), state))).findall("devices/disk")
    assert [d.find("target").get("dev") for d in disks] == ["vda", "vdb"]
    assert disks[0].find("serial") is None
    assert disks[1].findtext("serial") == "goship-state" and disks[1].find("readonly") is None
    assert disks[1].find("driver").get("type") == "qcow2"


def test_cpu_mode_follows_the_accelerator():
    assert parse(make_spec(virt_type="kvm")).find("cpu").get("mode") == "host-passthrough"
    assert parse(make_spec()).find("cpu").get("mode") is None
    custom = parse(make_spec(cpu_model="Haswell-noTSX")).find("cpu")
    assert custom.get("mode") == "custom" and custom.findtext("model") == "Haswell-noTSX"
    topology = parse(make_spec(vcpus=4, topology=CpuTopology(cores=2, threads=2))).find("cpu/topology")
    assert topology.attrib == {"sockets": "1", "dies": "1", "cores": "2", "threads": "2"}


def test_values_are_escaped():
    odd = "/img/a'b\"c<d>&e.squashfs"
    root = parse(make_spec(disks=(Disk(source=odd),), kernel="/img/k'<&>"))
    assert root.find("devices/disk/source").get("file") == odd
    assert root.findtext("os/kernel") == "/img/k'<&>"


@pytest.mark.parametrize("overrides, complaint", [
    ({"node": "N1"}, "node name"),
    ({"project": "a/b"}, "project name"),
    ({"project": "-x"}, "project name"),
    ({"hostname": "a b"}, "hostname"),
    ({"virt_type": "xen"}, "virt_type"),
    ({"generation": -1}, "generation"),
    ({"memory_mib": 8}, "memory_mib"),
    ({"vcpus": 2, "topology": CpuTopology(cores=4)}, "topology"),
    ({"on_crash": "explode"}, "lifecycle"),
    ({"kernel_args": ("init=/bin/sh x",)}, "kernel argument"),
    ({"kernel": "vmlinuz"}, "absolute"),
])
def test_bad_parameters_are_refused(overrides, complaint):
    with pytest.raises(DomainSpecError, match=complaint):
        make_spec(**overrides)


@pytest.mark.skipif(shutil.which("virt-xml-validate") is None, reason="needs virt-xml-validate (libvirt-clients)")
@pytest.mark.parametrize("overrides", [{}, {"virt_type": "kvm", "machine": "q35", "vcpus": 2, "topology": CpuTopology(sockets=2)},
                                       {"cpu_model": "qemu64", "memballoon": True, "rng": False, "disks": ()},
                                       {"disks": (Disk(source="/img/rootfs.squashfs"),
                                                  Disk(source="/s/state.qcow2", target="vdb", readonly=False, driver_type="qcow2",
                                                       serial="goship-state"))}])
def test_libvirt_schema_accepts_it(tmp_path, overrides):
    path = tmp_path / "domain.xml"
    path.write_text(domain_xml.render(make_spec(**overrides)))
    check = subprocess.run(["virt-xml-validate", str(path), "domain"], capture_output=True, text=True, timeout=60, check=False)
    assert check.returncode == 0, check.stdout + check.stderr


def test_vm_paths_layout_and_permissions(tmp_path):
    paths = VmPaths.for_domain(str(tmp_path), "goship-n1-alpha")
    assert paths.channel == str(tmp_path / "vms" / "goship-n1-alpha" / "init.sock")
    assert paths.console_log == str(tmp_path / "vms" / "goship-n1-alpha" / "console.log")
    paths.create()
    assert stat.S_IMODE(os.stat(paths.directory).st_mode) == 0o700


@pytest.mark.skipif(os.geteuid() != 0, reason="chown to root needs root")
def test_restrict_channel_makes_the_socket_root_only(tmp_path):
    paths = VmPaths.for_domain(str(tmp_path), "goship-n1-alpha")
    paths.create()
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(paths.channel)
        os.chmod(paths.channel, 0o775)
        paths.restrict_channel()
        info = os.stat(paths.channel)
    assert stat.S_IMODE(info.st_mode) == 0o600 and info.st_uid == 0 and info.st_gid == 0
