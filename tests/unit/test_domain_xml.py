"""Domain XML rendering: structure, escaping, validation of parameters, libvirt's schema."""

import base64
import hashlib
import os
import shutil
import socket
import stat
import subprocess
import xml.etree.ElementTree as ET

from pathlib import Path

import pytest

from ansible_collections.goship.core.plugins.module_utils import domain_xml
from ansible_collections.goship.core.plugins.module_utils.domain_xml import CpuTopology, Disk, DomainSpec, DomainSpecError, VmPaths

NS = {"goship": domain_xml.GOSHIP_XMLNS}
SCHEMA = "/usr/share/libvirt/schemas/domaincommon.rng"


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


def test_disk_image_boot_has_no_kernel():
    root = parse(make_spec(kernel="", initrd="", disks=(Disk(source="/s/root.qcow2", readonly=False, driver_type="qcow2"),)))
    assert root.find("os/kernel") is None and root.find("os/cmdline") is None
    assert root.find("os/boot").get("dev") == "hd"
    assert root.find("devices/disk/driver").get("type") == "qcow2" and root.find("devices/disk/readonly") is None
    with pytest.raises(DomainSpecError, match="kernel and initrd go together"):
        make_spec(initrd="")


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


PRIMITIVES = dict(
    vcpus=2, topology=CpuTopology(cores=2),
    cpu_pinning=domain_xml.CpuPinning(vcpus=((0, "0-1"), (1, "1")), emulator="0"), numa_nodeset="0",
    memory_backing=domain_xml.MemoryBacking(hugepage_kib=2048, locked=True, hard_limit_mib=1536),
    nics=(domain_xml.Nic(type="user", mac="52:54:00:4d:da:4f", port_forwards=(domain_xml.PortForward(18080, 8080),)),
          domain_xml.Nic(type="network", network="default")),
    firmware=domain_xml.Firmware(loader="/usr/share/OVMF/OVMF_CODE_4M.fd", nvram="/s/vms/d/nvram.fd",
                                 nvram_template="/usr/share/OVMF/OVMF_VARS_4M.fd"),
    volumes=(domain_xml.VolumeDisk(pool="goship-n1", volume="goship-n1-alpha-db.qcow2", target="vdb", serial="data-db",
                                   cache="writeback"),),
    memballoon=True)
QEMU_NS = {"qemu": domain_xml.QEMU_XMLNS}


def test_primitives_render():
    root = parse(make_spec(**PRIMITIVES))
    assert [(p.get("vcpu"), p.get("cpuset")) for p in root.findall("cputune/vcpupin")] == [("0", "0-1"), ("1", "1")]
    assert root.find("cputune/emulatorpin").get("cpuset") == "0"
    assert root.find("numatune/memory").attrib == {"mode": "strict", "nodeset": "0"}
    assert root.find("memoryBacking/hugepages/page").attrib == {"size": "2048", "unit": "KiB"}
    assert root.find("memoryBacking/locked") is not None and root.findtext("memtune/hard_limit") == "1536"
    assert root.findtext("os/loader") == "/usr/share/OVMF/OVMF_CODE_4M.fd"
    assert root.find("os/nvram").get("template") == "/usr/share/OVMF/OVMF_VARS_4M.fd"
    volume = root.find("devices/disk[@type='volume']")
    assert volume.find("source").attrib == {"pool": "goship-n1", "volume": "goship-n1-alpha-db.qcow2"}
    assert volume.find("driver").get("cache") == "writeback" and volume.findtext("serial") == "data-db"
    (network,) = root.findall("devices/interface")
    assert network.get("type") == "network" and network.find("mac") is None
    args = [arg.get("value") for arg in root.findall("qemu:commandline/qemu:arg", QEMU_NS)]
    assert args == ["-netdev", "user,id=gsnet0,hostfwd=tcp:127.0.0.1:18080-:8080",
                    "-device", "virtio-net-pci,netdev=gsnet0,mac=52:54:00:4d:da:4f,addr=0x18"]
    assert root.find("launchSecurity") is None


def test_without_user_nics_there_is_no_qemu_namespace():
    assert "xmlns:qemu" not in domain_xml.render(make_spec())


SEV_EXPECTED = """<launchSecurity type='sev'>
    <cbitpos>51</cbitpos>
    <reducedPhysBits>1</reducedPhysBits>
    <policy>0x0033</policy>
  </launchSecurity>"""


@pytest.mark.parametrize("kind, policy, expected", [
    ("sev", "0x0033", SEV_EXPECTED),
    ("sev-snp", "0x00030000", SEV_EXPECTED.replace("'sev'", "'sev-snp'").replace("0x0033", "0x00030000")),
    ("tdx", None, "<launchSecurity type='tdx'>\n  </launchSecurity>"),
])
def test_confidential_profiles_render_the_expected_documents(kind, policy, expected):
    security = domain_xml.LaunchSecurity(type=kind, policy=policy, cbitpos=51 if kind != "tdx" else None,
                                         reduced_phys_bits=1 if kind != "tdx" else None)
    text = domain_xml.render(make_spec(machine="q35", launch_security=security, memballoon=True, firmware=PRIMITIVES["firmware"],
                                       memory_backing=domain_xml.MemoryBacking(locked=True, hard_limit_mib=1536)))
    assert expected in text
    root = ET.fromstring(text)
    assert root.find("devices/disk/driver").get("iommu") == "on"
    for device in ("controller[@type='virtio-serial']", "rng", "memballoon"):
        assert root.find("devices/%s/driver" % device).get("iommu") == "on", device
    assert root.find("memoryBacking/locked") is not None
    assert (root.find("features/ioapic") is not None) == (kind == "tdx")


def test_bad_primitives_are_refused():
    with pytest.raises(DomainSpecError, match="cpu_pinning.vcpus.2"):
        make_spec(vcpus=2, cpu_pinning=domain_xml.CpuPinning(vcpus=((2, "0"),)))
    with pytest.raises(DomainSpecError, match="memory_backing.locked needs a hard limit"):
        make_spec(memory_backing=domain_xml.MemoryBacking(locked=True))
    with pytest.raises(DomainSpecError, match=r"nics\[0\].mac"):
        make_spec(nics=(domain_xml.Nic(type="user"),))


def test_cpusets_and_stable_macs():
    assert domain_xml.parse_cpuset("0-3,^1,8") == [0, 2, 3, 8]
    assert domain_xml.format_cpuset([0, 2, 3, 8, 9]) == "0,2-3,8-9"
    for bad in ("", "a", "3-1", "^0"):
        with pytest.raises(DomainSpecError):
            domain_xml.parse_cpuset(bad)
    mac = domain_xml.stable_mac("goship-n1-alpha", 0)
    assert mac == domain_xml.stable_mac("goship-n1-alpha", 0) != domain_xml.stable_mac("goship-n1-alpha", 1)
    assert domain_xml.MAC_RE.match(mac) and mac.startswith("52:54:00:")


@pytest.mark.skipif(shutil.which("virt-xml-validate") is None, reason="needs virt-xml-validate (libvirt-clients)")
@pytest.mark.parametrize("extra", [
    {},
    {"machine": "q35", "launch_security": domain_xml.LaunchSecurity(type="sev", policy="0x0033", cbitpos=51, reduced_phys_bits=1)},
])
def test_libvirt_schema_accepts_the_primitives(tmp_path, extra):
    path = tmp_path / "domain.xml"
    path.write_text(domain_xml.render(make_spec(**{**PRIMITIVES, **extra})))
    check = subprocess.run(["virt-xml-validate", str(path), "domain"], capture_output=True, text=True, timeout=60, check=False)
    assert check.returncode == 0, check.stdout + check.stderr


@pytest.mark.skipif(shutil.which("virt-xml-validate") is None, reason="needs virt-xml-validate (libvirt-clients)")
@pytest.mark.parametrize("kind", ["sev-snp", "tdx"])
def test_sev_snp_and_tdx_validate_where_the_schema_knows_them(tmp_path, kind):
    """libvirt 9.0's domaincommon.rng knows launchSecurity sev and s390-pv only (measured): there
    the rendered document must be rejected for exactly that reason, elsewhere it must validate."""
    security = domain_xml.LaunchSecurity(type=kind, policy="0x00030000" if kind == "sev-snp" else None,
                                         cbitpos=51 if kind == "sev-snp" else None, reduced_phys_bits=1 if kind == "sev-snp" else None,
                                         config_digest=SNP_DIGEST if kind == "sev-snp" else TDX_DIGEST)
    path = tmp_path / "domain.xml"
    path.write_text(domain_xml.render(make_spec(**{**PRIMITIVES, "machine": "q35", "launch_security": security})))
    check = subprocess.run(["virt-xml-validate", str(path), "domain"], capture_output=True, text=True, timeout=60, check=False)
    known = "<value>%s</value>" % kind in Path(SCHEMA).read_text() if os.path.exists(SCHEMA) else None
    if known is None:
        pytest.skip("libvirt's schema is not at %s" % SCHEMA)
    assert (check.returncode == 0) == known, check.stdout + check.stderr
    if not known:
        assert "launchSecurity" in check.stdout + check.stderr


# The measured configuration: the digest of guest_init's boot spec (docs/confidential.md).
SNP_DIGEST = hashlib.sha256(b"boot spec").digest()
TDX_DIGEST = hashlib.sha384(b"boot spec").digest()
SNP_MEASURED_EXPECTED = """<launchSecurity type='sev-snp'>
    <cbitpos>51</cbitpos>
    <reducedPhysBits>1</reducedPhysBits>
    <policy>0x00030000</policy>
    <hostData>%s</hostData>
  </launchSecurity>""" % base64.b64encode(SNP_DIGEST).decode()
TDX_MEASURED_EXPECTED = """<launchSecurity type='tdx'>
    <mrConfigId>%s</mrConfigId>
  </launchSecurity>""" % base64.b64encode(TDX_DIGEST).decode()


@pytest.mark.parametrize("security, expected", [
    (domain_xml.LaunchSecurity(type="sev-snp", policy="0x00030000", cbitpos=51, reduced_phys_bits=1, config_digest=SNP_DIGEST),
     SNP_MEASURED_EXPECTED),
    (domain_xml.LaunchSecurity(type="tdx", config_digest=TDX_DIGEST), TDX_MEASURED_EXPECTED),
])
def test_measured_configuration_renders_host_data_and_mr_config_id(security, expected):
    text = domain_xml.render(make_spec(machine="q35", launch_security=security, firmware=PRIMITIVES["firmware"],
                                       memory_backing=domain_xml.MemoryBacking(locked=True, hard_limit_mib=1536)))
    assert expected in text
    element = ET.fromstring(text).find("launchSecurity/hostData" if security.type == "sev-snp" else "launchSecurity/mrConfigId")
    assert len(base64.b64decode(element.text)) == (32 if security.type == "sev-snp" else 48)


def test_measured_configuration_refusals():
    for kind, digest, message in (("sev-snp", TDX_DIGEST, "sev-snp takes 32 bytes"), ("tdx", SNP_DIGEST, "tdx takes 48 bytes"),
                                  ("sev", SNP_DIGEST, "sev has no field")):
        with pytest.raises(DomainSpecError, match=message):
            make_spec(machine="q35", launch_security=domain_xml.LaunchSecurity(type=kind, config_digest=digest))


MICROVM = dict(machine="microvm", tsc_khz=2596000, memballoon=True,
               nics=(domain_xml.Nic(type="user", mac="52:54:00:4d:da:4f", port_forwards=(domain_xml.PortForward(18080, 8080),)),
                     domain_xml.Nic(type="network", network="default")),
               disks=(Disk(source="/img/rootfs.squashfs"), Disk(source="/s/seed.iso", target="vdb", serial="goship-seed")),
               volumes=(domain_xml.VolumeDisk(pool="goship-n1", volume="goship-n1-alpha-db.qcow2", target="vdc", serial="data-db"),))


def test_microvm_puts_every_virtio_device_on_virtio_mmio():
    root = parse(make_spec(**MICROVM))
    assert root.find("os/type").get("machine") == "microvm"
    assert root.find("features/acpi") is not None  # the guest finds the virtio-mmio devices in ACPI
    devices = ["disk", "disk", "disk", "controller[@type='virtio-serial']", "interface", "rng", "memballoon"]
    found = root.findall("devices/disk") + root.findall("devices/controller[@type='virtio-serial']") + \
        root.findall("devices/interface") + root.findall("devices/rng") + root.findall("devices/memballoon")
    assert len(found) == len(devices)
    for element in found:
        assert element.find("address").attrib == {"type": "virtio-mmio"}, ET.tostring(element)
    assert not root.findall("devices/controller[@type='pci']")
    args = [arg.get("value") for arg in root.findall("qemu:commandline/qemu:arg", QEMU_NS)]
    assert args[3] == "virtio-net-device,netdev=gsnet0,mac=52:54:00:4d:da:4f"  # no PCI slot
    assert "tsc_early_khz=2596000" in root.findtext("os/cmdline").split()
    on_pc = dict(MICROVM)
    on_pc.update(machine="pc", tsc_khz=None)
    pc = parse(make_spec(**on_pc))
    assert not pc.findall("devices//address") and "tsc_early_khz" not in pc.findtext("os/cmdline")


def test_microvm_refusals():
    with pytest.raises(DomainSpecError, match=r"nics\[0\].model: microvm has no PCI bus"):
        make_spec(machine="microvm", nics=(domain_xml.Nic(type="user", model="e1000", mac="52:54:00:4d:da:4f"),))
    with pytest.raises(DomainSpecError, match="firmware: microvm"):
        make_spec(machine="microvm", firmware=PRIMITIVES["firmware"])
    with pytest.raises(DomainSpecError, match="boot.disk_image"):
        make_spec(machine="microvm", kernel="", initrd="")
    with pytest.raises(DomainSpecError, match="tsc_khz"):
        make_spec(machine="microvm", tsc_khz=5)


@pytest.mark.skipif(shutil.which("virt-xml-validate") is None, reason="needs virt-xml-validate (libvirt-clients)")
def test_libvirt_schema_accepts_microvm(tmp_path):
    path = tmp_path / "domain.xml"
    path.write_text(domain_xml.render(make_spec(**MICROVM)))
    check = subprocess.run(["virt-xml-validate", str(path), "domain"], capture_output=True, text=True, timeout=60, check=False)
    assert check.returncode == 0, check.stdout + check.stderr
