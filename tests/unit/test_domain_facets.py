"""Semantic comparison of GoShip-owned domain elements (libvirt's normalisations are no change)."""

from ansible_collections.goship.core.plugins.module_utils import domain_facets
from ansible_collections.goship.core.plugins.module_utils.difference import DifferenceTracker

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
