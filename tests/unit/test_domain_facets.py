"""Semantic comparison of GoShip-owned domain elements (libvirt's normalisations are no change)."""

from pathlib import Path

import pytest

from ansible_collections.goship.core.plugins.module_utils import domain_facets, domain_xml
from ansible_collections.goship.core.plugins.module_utils.domain_xml import Disk, DomainSpec, VmPaths
from ansible_collections.goship.core.plugins.module_utils.difference import DifferenceTracker
from test_domain_xml import PRIMITIVES

NS = "https://goship.dev/xmlns/vm/1"

DESIRED = f"""<domain type='qemu'><name>goship-n1-alpha</name>
<metadata><goship:vm xmlns:goship='{NS}'><goship:project>alpha</goship:project><goship:node>n1</goship:node>
<goship:generation>3</goship:generation></goship:vm></metadata>
<memory unit='MiB'>512</memory><vcpu placement='static'>2</vcpu>
<os><type arch='x86_64' machine='pc'>hvm</type><kernel>/img/vmlinuz</kernel><initrd>/img/initrd.img</initrd>
<cmdline>console=ttyS0 quiet</cmdline></os>
<features><acpi/><apic/></features>
<cpu><topology sockets='1' dies='1' cores='2' threads='1'/></cpu>
<on_poweroff>destroy</on_poweroff><on_reboot>destroy</on_reboot><on_crash>destroy</on_crash>
<devices>
<disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='/img/rootfs.squashfs'/>
<target dev='vda' bus='virtio'/><readonly/></disk>
<controller type='virtio-serial' index='0'/>
<channel type='unix'><source mode='bind' path='/s/init.sock'/><target type='virtio' name='org.goship.init.0'/></channel>
<interface type='network'><source network='goship-n1'/><model type='virtio'/></interface>
<serial type='pty'><log file='/s/console.log' append='off'/><target port='0'/></serial>
<memballoon model='none'/>
</devices></domain>"""

# What libvirt 9.0 gives back for DESIRED: KiB, a versioned machine, qemu64 CPU model,
# PCI and virtio-serial addresses, a MAC for the NIC, extra controllers, inputs, emulator, uuid, features reordered.
LIBVIRT = f"""<domain type='qemu'><name>goship-n1-alpha</name><uuid>e4f8e3be-2fae-465b-a2a5-73fc3758b847</uuid>
<metadata><goship:vm xmlns:goship="{NS}"><goship:project>alpha</goship:project><goship:node>n1</goship:node>
<goship:generation>3</goship:generation></goship:vm></metadata>
<memory unit='KiB'>524288</memory><currentMemory unit='KiB'>524288</currentMemory><vcpu placement='static'>2</vcpu>
<os><type arch='x86_64' machine='pc-i440fx-7.2'>hvm</type><kernel>/img/vmlinuz</kernel><initrd>/img/initrd.img</initrd>
<cmdline>console=ttyS0 quiet</cmdline><boot dev='hd'/></os>
<features><apic/><acpi/></features>
<cpu mode='custom' match='exact' check='none'><model fallback='forbid'>qemu64</model>
<topology sockets='1' dies='1' cores='2' threads='1'/></cpu>
<clock offset='utc'/><on_poweroff>destroy</on_poweroff><on_reboot>destroy</on_reboot><on_crash>destroy</on_crash>
<devices><emulator>/usr/bin/qemu-system-x86_64</emulator>
<disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='/img/rootfs.squashfs'/>
<target dev='vda' bus='virtio'/><readonly/><address type='pci' domain='0x0000' bus='0x00' slot='0x03' function='0x0'/></disk>
<controller type='usb' index='0' model='none'/>
<controller type='virtio-serial' index='0'><address type='pci' domain='0x0000' bus='0x00' slot='0x02' function='0x0'/></controller>
<controller type='pci' index='0' model='pci-root'/>
<interface type='network'><mac address='52:54:00:12:34:56'/><source network='goship-n1'/><model type='virtio'/>
<address type='pci' domain='0x0000' bus='0x00' slot='0x04' function='0x0'/></interface>
<serial type='pty'><log file='/s/console.log' append='off'/><target type='isa-serial' port='0'><model name='isa-serial'/></target></serial>
<console type='pty'><log file='/s/console.log' append='off'/><target type='serial' port='0'/></console>
<channel type='unix'><source mode='bind' path='/s/init.sock'/><target type='virtio' name='org.goship.init.0'/>
<address type='virtio-serial' controller='0' bus='0' port='1'/></channel>
<input type='mouse' bus='ps2'/><input type='keyboard' bus='ps2'/><audio id='1' type='none'/>
<memballoon model='none'/></devices></domain>"""

ALIASES = {"pc": "pc-i440fx-7.2", "q35": "pc-q35-7.2"}


def compare(desired, actual):
    return domain_facets.compare(DifferenceTracker(), desired, actual, ALIASES)


def test_libvirt_normalisation_is_not_a_change():
    tracker = compare(DESIRED, LIBVIRT)
    assert not tracker.has_differences, tracker.differences()


def test_memory_change_is_found_in_any_unit():
    tracker = compare(DESIRED.replace("<memory unit='MiB'>512", "<memory unit='GiB'>1"), LIBVIRT)
    assert tracker.differences() == [{"item": "memory_kib", "before": 524288, "after": 1048576}]


def test_machine_alias_change_and_topology():
    desired = DESIRED.replace("machine='pc'", "machine='q35'").replace("cores='2'", "cores='1'").replace(
        "<vcpu placement='static'>2", "<vcpu placement='static'>1")
    assert compare(desired, LIBVIRT).names == ["cpu.topology", "os.machine", "vcpus"]


def test_added_and_removed_disks_are_changes():
    extra = "<disk type='file' device='disk'><source file='/s/data.qcow2'/><target dev='vdb' bus='virtio'/><serial>data</serial></disk>"
    tracker = compare(DESIRED.replace("<controller type='virtio-serial'", extra + "<controller type='virtio-serial'"), LIBVIRT)
    assert "disk.vdb.source" in tracker.names and "disk.vdb.serial" in tracker.names
    removed = compare(DESIRED.replace("<target dev='vda' bus='virtio'/>", "<target dev='vdc' bus='virtio'/>"), LIBVIRT)
    assert "disk.vda.source" in removed.names and "disk.vdc.source" in removed.names


def test_generation_is_the_only_live_facet():
    tracker = compare(DESIRED.replace("<goship:generation>3", "<goship:generation>4"), LIBVIRT)
    assert tracker.names == ["metadata.generation"]
    assert set(tracker.names) <= set(domain_facets.LIVE_FACETS)
    diff = tracker.diff("goship-n1-alpha")
    assert '"3"' in diff["before"] and '"4"' in diff["after"]


def test_foreign_domain_has_no_goship_metadata():
    assert domain_facets.facets("<domain type='kvm'><name>other</name></domain>")["metadata.project"] is None


# ---- primitives: the fixture is libvirt 9.0's inactive XML after defining the document that
# test_domain_xml.PRIMITIVES renders (same values), taken from a real qemu:///system define.
FIXTURE = Path(__file__).parent / "fixtures" / "domain_primitives_libvirt9.xml"


def primitives_desired(**overrides):
    fields = dict(PRIMITIVES)
    fields["nics"] = (domain_xml.Nic(type="user", mac="52:54:00:4d:da:4f", port_forwards=(domain_xml.PortForward(18080, 8080),)),
                      domain_xml.Nic(type="network", network="default"))
    fields["firmware"] = domain_xml.Firmware(loader="/usr/share/OVMF/OVMF_CODE_4M.fd", nvram="/tmp/prim/state/nvram.fd",
                                             nvram_template="/usr/share/OVMF/OVMF_VARS_4M.fd")
    fields["volumes"] = (domain_xml.VolumeDisk(pool="goship-probe", volume="goship-probe-prim-data.qcow2", target="vdb",
                                               serial="data-data", cache="writeback"),)
    fields["cpu_pinning"] = domain_xml.CpuPinning(vcpus=((0, "0,1"), (1, "1")), emulator="0")
    fields.update(overrides)
    return domain_xml.render(DomainSpec(node="probe", project="prim", generation=1, kernel="/img/vmlinuz", initrd="/img/initrd.img",
                                        paths=VmPaths.for_domain("/tmp/prim/state", "goship-probe-prim"),
                                        disks=(Disk(source="/img/rootfs.squashfs"),), **fields))


def test_libvirt_normalised_primitives_are_no_change():
    """libvirt writes '0,1' as '0-1', adds a MAC to the network NIC, PCI addresses, MiB -> KiB."""
    actual = FIXTURE.read_text()
    assert "<vcpupin vcpu='0' cpuset='0-1'/>" in actual and "52:54:00:cd:69:4f" in actual
    tracker = compare(primitives_desired(), actual)
    assert not tracker.has_differences, tracker.differences()


@pytest.mark.parametrize("overrides, changed", [
    ({"cpu_pinning": domain_xml.CpuPinning(vcpus=((0, "1"), (1, "1")), emulator="0")}, ["cputune.vcpupin.0"]),
    ({"cpu_pinning": None}, ["cputune.emulatorpin", "cputune.vcpupin.0", "cputune.vcpupin.1"]),
    ({"numa_nodeset": None}, ["numatune.memory"]),
    ({"memory_backing": domain_xml.MemoryBacking(hugepage_kib=1048576, locked=True, hard_limit_mib=1536)},
     ["memory_backing.hugepages_kib"]),
    ({"memory_backing": None}, ["memory_backing.hard_limit_kib", "memory_backing.hugepages_kib", "memory_backing.locked"]),
    ({"memballoon": False}, ["memballoon"]),
    ({"nics": (domain_xml.Nic(type="user", mac="52:54:00:4d:da:4f"),)},
     ["interface.0.model", "interface.0.network", "interface.0.type", "qemu.commandline"]),
    ({"firmware": None}, ["os.loader", "os.nvram"]),
    ({"volumes": ()}, ["disk.vdb.bus", "disk.vdb.cache", "disk.vdb.format", "disk.vdb.readonly", "disk.vdb.serial", "disk.vdb.source"]),
])
def test_primitive_changes_are_found(overrides, changed):
    assert compare(primitives_desired(**overrides), FIXTURE.read_text()).names == changed


def test_mac_is_compared_only_when_the_options_give_one():
    same = (domain_xml.Nic(type="user", mac="52:54:00:4d:da:4f", port_forwards=(domain_xml.PortForward(18080, 8080),)),)
    kept = compare(primitives_desired(nics=same + (domain_xml.Nic(type="network", network="default", mac="52:54:00:cd:69:4f"),)),
                   FIXTURE.read_text())
    assert not kept.has_differences
    other = compare(primitives_desired(nics=same + (domain_xml.Nic(type="network", network="default", mac="52:54:00:00:00:01"),)),
                    FIXTURE.read_text())
    assert other.differences() == [{"item": "interface.0.mac", "before": "52:54:00:cd:69:4f", "after": "52:54:00:00:00:01"}]
    assert domain_facets.mac_addresses(FIXTURE.read_text()) == ["52:54:00:cd:69:4f"]


def test_launch_security_facet_reads_hex_policies():
    sev = "<domain><launchSecurity type='sev'><cbitpos>51</cbitpos><reducedPhysBits>1</reducedPhysBits><policy>0x0033</policy></launchSecurity></domain>"
    assert domain_facets.facets(sev)["launch_security"] == "sev cbitpos=51 reducedPhysBits=1 policy=51"
    assert domain_facets.facets(sev.replace("0x0033", "0x33"))["launch_security"] == domain_facets.facets(sev)["launch_security"]


def test_measured_configuration_is_compared_as_bytes():
    """hostData/mrConfigId are base64: libvirt may re-wrap or re-pad them; the bytes are what count."""
    def with_host_data(text):
        return DESIRED.replace("</domain>", "<launchSecurity type='sev-snp'><policy>0x30000</policy>"
                                            "<hostData>%s</hostData></launchSecurity></domain>" % text)
    same, other = "q83vAA" + "A" * 37 + "=", "AAAAAA" + "A" * 37 + "="
    assert domain_facets.facets(with_host_data(same))["launch_security"] == \
        domain_facets.facets(with_host_data(same[:20] + "\n  " + same[20:]))["launch_security"]
    tracker = DifferenceTracker()
    domain_facets.compare(tracker, with_host_data(other), with_host_data(same))
    assert tracker.names == ["launch_security"]


def test_microvm_domain_compares_equal_to_what_libvirt_keeps():
    """libvirt 9.0's inactive XML of a rendered microvm domain (measured: it adds the isa-serial
    target, ps2 inputs and an audio device, and keeps the virtio-mmio addresses): no difference."""
    spec = DomainSpec(node="n1", project="alpha", generation=3, kernel="/img/vmlinuz", initrd="/img/initrd.img",
                      paths=VmPaths.for_domain("/s", "goship-n1-alpha"), disks=(Disk(source="/img/rootfs.squashfs"),),
                      machine="microvm", tsc_khz=2596000)
    desired = domain_xml.render(spec)
    actual = desired.replace("<target port='0'/>", "<target type='isa-serial' port='0'><model name='isa-serial'/></target>") \
        .replace("<memballoon model='none'/>", "<input type='mouse' bus='ps2'/><input type='keyboard' bus='ps2'/>"
                                               "<audio id='1' type='none'/><memballoon model='none'/>")
    tracker = DifferenceTracker()
    domain_facets.compare(tracker, desired, actual, {})
    assert not tracker.has_differences, tracker.differences()
