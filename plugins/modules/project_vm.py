#!/usr/bin/python
# Copyright: Contributors to the GoShip project
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r'''
---
module: project_vm
short_description: A GoShip project VM on a node, declared
version_added: 0.1.0
description:
  - Makes the libvirt domain C(goship-<node>-<project>) C(present) (defined), C(running),
    C(stopped) or C(absent), from structured options.
  - Renders the domain XML from GoShip's template and compares it with libvirt's inactive XML
    on the elements GoShip owns, semantically (units, machine aliases, addresses and devices
    libvirt adds are not differences). C(changed) is true exactly when something changes, in
    check mode and in a real run alike; C(--diff) shows the differing elements.
  - A change to a running VM is written to its persistent definition at once. Changes that need
    a restart are reported in RV(restart_required) and applied only with O(restart_on_change=true),
    by an orderly shutdown (guest_init's C(shutdown), then ACPI) and a start.
  - Only domains that carry GoShip metadata are ever changed; a domain of the same name without
    it is refused. O(state=absent) removes the domain, its NVRAM and its state directory
    C(<state_root>/vms/<domain>/) (channel socket, console log, seed, overlays).
author:
  - GoShip developers (@goship)
extends_documentation_fragment:
  - goship.core.node
attributes:
  check_mode:
    support: full
    description: Computes the same differences and C(changed) as a real run; touches nothing.
  diff_mode:
    support: full
    description: Shows the owned domain elements that differ, before and after.
options:
  project:
    description: Project name (an RFC 1123 label).
    type: str
    required: true
  node:
    description: Node name (an RFC 1123 label); part of the domain name so simulated nodes can share one libvirt.
    type: str
    required: true
  state:
    description: Desired state of the domain.
    type: str
    choices: [present, running, stopped, absent]
    default: running
  generation:
    description: Desired-state generation recorded in the domain's GoShip metadata.
    type: int
    default: 0
  image_dir:
    description:
      - Guest image directory with C(vmlinuz), C(initrd.img) and C(rootfs.squashfs) (see C(goship-ctl image build)).
      - Defaults to C(<state_root>/images/default).
    type: path
  boot:
    description:
      - How the VM boots. Without it, GoShip's guest image boots directly from O(image_dir)'s
        kernel and initrd with its read-only root disk.
      - With O(boot.disk_image), the VM boots its firmware from a disk image instead (for example
        a stock cloud image whose user-data installs guest_init, see M(goship.core.cloud_init_seed)).
        The root disk is a qcow2 overlay C(<state_root>/vms/<domain>/root.qcow2) on that shared
        base, created when missing and removed with the VM; the base is never written.
    type: dict
    suboptions:
      disk_image:
        description: The base image on the node (absolute path).
        type: path
        required: true
      format:
        description: Format of the base image.
        type: str
        choices: [qcow2, raw]
        default: qcow2
  memory_mib:
    description: Guest memory in MiB.
    type: int
    default: 512
  vcpus:
    description: Number of virtual CPUs.
    type: int
    default: 1
  topology:
    description: CPU topology; C(sockets * cores * threads) must equal O(vcpus).
    type: dict
    suboptions:
      sockets:
        description: Sockets.
        type: int
        default: 1
      cores:
        description: Cores per socket.
        type: int
        default: 1
      threads:
        description: Threads per core.
        type: int
        default: 1
  machine:
    description:
      - QEMU machine type or alias (C(pc), C(q35), a versioned type, C(microvm)).
      - C(microvm) has no PCI bus; its virtio devices are virtio-mmio, found by the guest through ACPI. It boots the
        image kernel directly, with bios (qboot) firmware and virtio NICs only. Under TCG the kernel gets the host's TSC
        frequency (C(tsc_early_khz=)), because microvm has no timer to calibrate it against (docs/primitives.md).
    type: str
    default: pc
  virt_type:
    description:
      - C(kvm), C(qemu) (TCG), or C(auto) to use KVM only when a time-limited probe shows it runs guest code.
    type: str
    choices: [auto, kvm, qemu]
    default: auto
  cpu_model:
    description: Named CPU model under TCG (ignored with KVM, which uses host-passthrough).
    type: str
  disks:
    description:
      - Extra virtio disks after the image's root disk (C(vda)), in order C(vdb), C(vdc), ...
      - guest_init finds them by serial, for example C(goship-images) (the read-only OCI image
        disk) and C(goship-state); the NoCloud seed ISO is found by its C(cidata) label.
    type: list
    elements: dict
    default: []
    suboptions:
      source:
        description: Path of the disk file on the node.
        type: path
        required: true
      format:
        description: Disk format.
        type: str
        choices: [raw, qcow2]
        default: raw
      readonly:
        description: Attach read-only.
        type: bool
        default: true
      serial:
        description: Serial the guest sees (letters, digits, C(-), C(_), at most 20).
        type: str
  kernel_args:
    description: Extra kernel command-line arguments.
    type: list
    elements: str
    default: []
  cpu_pinning:
    description:
      - Pin vCPUs and QEMU's emulator threads to host CPUs (C(<cputune>)).
      - CPU sets use libvirt's syntax (C(0-3), C(0,2), C(0-3,^1)) and are checked against the host's
        online CPUs before libvirt is touched.
    type: dict
    suboptions:
      vcpus:
        description: 'Map of vCPU number to host CPU set, for example C({0: "0-1", 1: "1"}).'
        type: dict
      emulator:
        description: Host CPU set for the emulator threads.
        type: str
  numa:
    description: NUMA placement of the guest's memory (C(<numatune>), mode strict).
    type: dict
    suboptions:
      nodeset:
        description: Host NUMA nodes, for example C(0); checked against the host's NUMA cells.
        type: str
        required: true
  memory_backing:
    description: How guest memory is backed on the host (C(<memoryBacking>)).
    type: dict
    suboptions:
      hugepages:
        description: Back guest memory with huge pages of one size; enough of them must be free on the host.
        type: dict
        suboptions:
          size_kib:
            description: Page size in KiB, one the host has (C(2048), C(1048576)).
            type: int
            required: true
      locked:
        description:
          - Lock guest memory in host RAM (never swapped). libvirt wants a C(<memtune><hard_limit>) with it,
            so one is set (O(memory_backing.hard_limit_mib)).
        type: bool
        default: false
      hard_limit_mib:
        description:
          - Memory limit of the whole QEMU process (guest memory plus QEMU's own).
          - Defaults to O(memory_mib) + 1024 when memory is locked.
        type: int
  balloon:
    description: A virtio memory balloon device (C(false) renders C(<memballoon model="none">)).
    type: bool
    default: false
  nics:
    description:
      - Network interfaces. C(user) is QEMU's user-mode network (SLIRP) with optional port forwards,
        rendered as C(<qemu:commandline>) because libvirt 9.0 cannot forward ports on a user interface
        (see docs/primitives.md). C(network) attaches to a libvirt network.
      - A NIC without O(nics[].mac) keeps the MAC it has, which is libvirt's for a C(network) NIC (read back from
        the domain on every run), one derived from the domain name and position for a C(user) NIC.
    type: list
    elements: dict
    default: []
    suboptions:
      type:
        description: NIC type.
        type: str
        choices: [user, network]
        required: true
      model:
        description: Device model.
        type: str
        choices: [virtio, e1000]
        default: virtio
      mac:
        description: MAC address.
        type: str
      network:
        description: libvirt network name (type C(network) only).
        type: str
      port_forwards:
        description: Host ports forwarded to guest ports (type C(user) only).
        type: list
        elements: dict
        default: []
        suboptions:
          host_port:
            description: Port on the host.
            type: int
            required: true
          guest_port:
            description: Port in the guest.
            type: int
            required: true
          host_address:
            description: IPv4 address the host side binds.
            type: str
            default: 127.0.0.1
          protocol:
            description: Protocol.
            type: str
            choices: [tcp, udp]
            default: tcp
  firmware:
    description:
      - C(bios) (SeaBIOS) or C(uefi) (OVMF from the Debian package ovmf, read-only code flash and a per-VM
        NVRAM C(<state_dir>/nvram.fd) made from the vars template on define, removed with the domain).
    type: str
    choices: [bios, uefi]
    default: bios
  data_disks:
    description:
      - Data volumes created in a libvirt storage pool (through libvirt's storage API) and attached after
        O(disks). They survive redefinition; O(state=absent) deletes them only with O(delete_data=true).
      - The guest sees serial C(data-<name>); the volume is C(<domain>-<name>.qcow2).
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: Disk name (1-15 of a-z, 0-9 and inner C(-)).
        type: str
        required: true
      size_gib:
        description: Capacity in GiB when the volume is created (an existing volume is not resized).
        type: int
        required: true
      bus:
        description: Disk bus.
        type: str
        choices: [virtio]
        default: virtio
      cache:
        description: QEMU cache mode.
        type: str
        choices: [none, writeback, writethrough, directsync, unsafe, default]
        default: none
      pool:
        description: Storage pool (defined by the node role); defaults to C(goship-<node>).
        type: str
  delete_data:
    description: With O(state=absent), also delete the VM's data volumes.
    type: bool
    default: false
  confidential:
    description:
      - Confidential VM profile (C(<launchSecurity>)). Refused unless the host reports the mode in sysfs and
        in libvirt's domain capabilities; needs O(machine=q35) and O(firmware=uefi); locks memory and puts
        virtio devices behind the IOMMU (C(iommu=on)).
    type: dict
    suboptions:
      type:
        description: Technology.
        type: str
        choices: [sev, sev-snp, tdx]
        required: true
      policy:
        description: Guest policy as hex (defaults C(0x0033) for sev, C(0x00030000) for sev-snp).
        type: str
      config_digest:
        description:
          - The measured configuration, the digest of guest_init's boot spec (C(goship.json) of the seed) as
            M(goship.core.cloud_init_seed) returns it in RV(goship.core.cloud_init_seed#module:measurement).
          - C(sha256:<64 hex digits>) for sev-snp, rendered as C(<hostData>) (base64 of 32 bytes, the attestation
            report's HOST_DATA); C(sha384:<96 hex digits>) for tdx, rendered as C(<mrConfigId>) (base64 of 48 bytes,
            the TD report's MRCONFIGID). Refused for sev, which measures no host data.
          - guest_init compares it with the spec it boots and starts no app on a mismatch (docs/confidential.md).
        type: str
  restart_on_change:
    description: Restart a running VM whose definition changed in a way that needs a restart.
    type: bool
    default: false
  shutdown_timeout:
    description: Seconds an orderly shutdown may take before the domain is destroyed.
    type: int
    default: 60
  wait_for_guest:
    description: With O(state=running), wait until guest_init answers C(hello) on the channel.
    type: bool
    default: false
  guest_timeout:
    description: Seconds to wait for guest_init's C(hello).
    type: int
    default: 300
'''

EXAMPLES = r'''
- name: Project alpha's VM on this node, running, guest_init answering
  goship.core.project_vm:
    project: alpha
    node: "{{ goship_node }}"
    generation: 3
    memory_mib: 512
    vcpus: 2
    topology: {sockets: 1, cores: 2, threads: 1}
    wait_for_guest: true

- name: Grow memory and restart to apply it
  goship.core.project_vm:
    project: alpha
    node: node1
    memory_mib: 1024
    restart_on_change: true

- name: Pinned, hugepage-backed UEFI VM with a data disk and a port published on 127.0.0.1
  goship.core.project_vm:
    project: alpha
    node: node1
    vcpus: 2
    topology: {sockets: 1, cores: 2, threads: 1}
    cpu_pinning: {vcpus: {0: "0", 1: "1"}, emulator: "0-1"}
    numa: {nodeset: "0"}
    memory_backing: {hugepages: {size_kib: 2048}}
    firmware: uefi
    nics:
      - type: user
        port_forwards: [{host_port: 18080, guest_port: 8080}]
    data_disks:
      - {name: db, size_gib: 4, cache: none}

- name: An SEV-SNP guest (refused on hosts without SEV-SNP) whose boot spec is measured in host data
  goship.core.project_vm:
    project: vault
    node: node1
    machine: q35
    firmware: uefi
    confidential:
      type: sev-snp
      config_digest: "sha256:{{ seed.measurement.sha256 }}"

- name: A microvm (virtio-mmio, no PCI) for the fastest boot
  goship.core.project_vm:
    project: alpha
    node: node1
    machine: microvm

- name: Remove the VM and everything GoShip kept for it, data volumes included
  goship.core.project_vm:
    project: alpha
    node: node1
    state: absent
    delete_data: true
'''

RETURN = r'''
domain:
  description: libvirt domain name.
  returned: always
  type: str
  sample: goship-node1-alpha
state:
  description: libvirt's state of the domain afterwards (in check mode, before).
  returned: always
  type: str
  sample: running
differences:
  description: Owned elements that differ, with libvirt's value before and the desired value after.
  returned: always
  type: list
  elements: dict
  sample: [{item: memory_kib, before: 524288, after: 1048576}]
restart_required:
  description: The running VM still runs an older definition; a restart applies it.
  returned: always
  type: bool
paths:
  description: Host paths of the VM's state directory, channel socket and console log.
  returned: when state is not absent
  type: dict
  sample: {state_dir: /var/lib/goship/vms/goship-node1-alpha, channel: /var/lib/goship/vms/goship-node1-alpha/init.sock}
virt_type:
  description: Accelerator used, with the reason it was chosen.
  returned: when state is not absent
  type: dict
guest:
  description: guest_init's C(hello) reply.
  returned: when O(wait_for_guest=true) and the VM runs
  type: dict
'''

import os
import re
import shutil
import time
import xml.etree.ElementTree as ET

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.goship.core.plugins.module_utils import (
    accel, domain_facets, domain_xml, host_facts, libvirt_host, node_args, vm_primitives)
from ansible_collections.goship.core.plugins.module_utils.difference import DifferenceTracker
from ansible_collections.goship.core.plugins.module_utils.guest_channel import GuestChannel, GuestChannelError, wait_for_hello

try:
    import libvirt
except ImportError:  # pragma: no cover - reported by node_args.open_libvirt
    libvirt = None

STATE_NAMES = {1: 'running', 2: 'blocked', 3: 'paused', 4: 'shutdown', 5: 'shut off', 6: 'crashed', 7: 'pmsuspended'}
IMAGE_FILES = ('vmlinuz', 'initrd.img', 'rootfs.squashfs')
ROOT_OVERLAY = 'root.qcow2'
SERIAL_RE = re.compile(r'^[A-Za-z0-9_-]{1,20}\Z')


def validate(module):
    """Refuse bad input before libvirt is touched; every message names the option."""
    params = module.params
    for name in ('project', 'node'):
        if not domain_xml.NAME_PART.match(params[name] or ''):
            module.fail_json(msg='%s: %r must be 1-63 of a-z, 0-9 and inner "-"' % (name, params[name]))
    if params['state'] == 'absent':
        return
    if params['generation'] < 0:
        module.fail_json(msg='generation must be >= 0')
    if params['vcpus'] < 1:
        module.fail_json(msg='vcpus must be >= 1')
    topology = params['topology']
    if topology:
        product = topology['sockets'] * topology['cores'] * topology['threads']
        if min(topology.values()) < 1 or product != params['vcpus']:
            module.fail_json(msg='topology: sockets x cores x threads = %dx%dx%d = %d, but vcpus is %d'
                             % (topology['sockets'], topology['cores'], topology['threads'], product, params['vcpus']))
    total_mib = host_facts.memory_facts()['total_mib']
    if params['memory_mib'] < 64 or params['memory_mib'] > total_mib:
        module.fail_json(msg='memory_mib: %d is outside 64..%d (the host has %d MiB)' % (params['memory_mib'], total_mib, total_mib))
    if len(params['disks']) > 24:
        module.fail_json(msg='disks: at most 24 extra disks (vdb to vdy)')
    boot = params['boot']
    if boot and not (os.path.isabs(boot['disk_image']) and os.path.isfile(boot['disk_image'])):
        module.fail_json(msg='boot.disk_image: %s is not an existing file' % boot['disk_image'])
    for name in ('shutdown_timeout', 'guest_timeout'):
        if params[name] < 1:
            module.fail_json(msg='%s must be >= 1' % name)


def image_paths(module, root):
    if module.params['boot']:
        return None
    image_dir = module.params['image_dir'] or os.path.join(root, 'images', 'default')
    paths = dict((name, os.path.join(image_dir, name)) for name in IMAGE_FILES)
    missing = [name for name, path in paths.items() if not os.path.isfile(path)]
    if missing and module.params['state'] != 'absent':
        module.fail_json(msg='image_dir: %s lacks %s (build it with "goship-ctl image build")' % (image_dir, ', '.join(missing)))
    return paths


def choose_virt_type(module, root):
    wanted = module.params['virt_type']
    if wanted != 'auto':
        return {'type': wanted, 'reason': 'virt_type=%s' % wanted}
    choice = accel.choose(root)
    return {'type': choice.virt_type, 'reason': choice.reason}


def build_spec(module, root, virt_type, existing_macs=(), domcaps=None):
    """The DomainSpec of the options. Called once before libvirt is opened (host checks from
    sysfs) and once after (MACs libvirt assigned, confidential support from domain capabilities)."""
    params = module.params
    image = image_paths(module, root)
    name = domain_xml.domain_name(params['node'], params['project'])
    paths = domain_xml.VmPaths.for_domain(root, name)
    topology = params['topology']
    if image is None:
        root_disk = domain_xml.Disk(source=os.path.join(paths.directory, ROOT_OVERLAY), readonly=False, driver_type='qcow2')
    else:
        root_disk = domain_xml.Disk(source=image['rootfs.squashfs'])
    disks = (root_disk,) + extra_disks(module)
    try:
        confidential = vm_primitives.confidential(params['confidential'], params['machine'], params['firmware'],
                                                  host_facts.virtualization_facts()['confidential'], domcaps)
        return domain_xml.DomainSpec(
            node=params['node'], project=params['project'], generation=params['generation'],
            kernel=image['vmlinuz'] if image else '', initrd=image['initrd.img'] if image else '',
            paths=paths,
            memory_mib=params['memory_mib'], vcpus=params['vcpus'],
            topology=domain_xml.CpuTopology(**topology) if topology else None,
            virt_type=virt_type, machine=params['machine'], cpu_model=params['cpu_model'],
            disks=disks,
            kernel_args=tuple(params['kernel_args']),
            memballoon=params['balloon'],
            cpu_pinning=vm_primitives.cpu_pinning(params['cpu_pinning'], params['vcpus'], host_facts.cpu_facts()['online']),
            numa_nodeset=vm_primitives.numa_nodeset(params['numa'], host_facts.numa_facts()),
            memory_backing=vm_primitives.memory_backing(params['memory_backing'], params['memory_mib'],
                                                        host_facts.hugepage_facts(), confidential is not None),
            nics=vm_primitives.nics(params['nics'], name, existing_macs),
            firmware=vm_primitives.firmware(params['firmware'], paths.directory),
            volumes=vm_primitives.data_disks(params['data_disks'], name, params['node'], len(disks)),
            launch_security=confidential,
            tsc_khz=host_facts.tsc_khz() if domain_xml.is_microvm(params['machine']) and virt_type == 'qemu' else None,
        )
    except domain_xml.DomainSpecError as exc:
        module.fail_json(msg=str(exc))


def existing_network_macs(dom):
    return domain_facets.mac_addresses(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)) if dom is not None else ()


def domain_capabilities(module, conn, virt_type):
    """Confidential-computing facts from libvirt, read only when a profile is asked for."""
    if not module.params['confidential']:
        return None
    return libvirt_host.parse_domain_capabilities(conn.getDomainCapabilities(None, 'x86_64', None, virt_type, 0))


def extra_disks(module):
    disks = []
    for index, disk in enumerate(module.params['disks']):
        if not os.path.isabs(disk['source']) or not (module.check_mode or os.path.isfile(disk['source'])):
            module.fail_json(msg='disks[%d].source: %s is not an existing file' % (index, disk['source']))
        if disk['serial'] is not None and not SERIAL_RE.match(disk['serial']):
            module.fail_json(msg='disks[%d].serial: %r must be 1-20 of letters, digits, "-" and "_"' % (index, disk['serial']))
        disks.append(domain_xml.Disk(source=disk['source'], target='vd%s' % chr(ord('b') + index), readonly=disk['readonly'],
                                     driver_type=disk['format'], serial=disk['serial']))
    return tuple(disks)


def lookup(conn, name):
    try:
        return conn.lookupByName(name)
    except libvirt.libvirtError as exc:
        if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
            return None
        raise


def state_name(dom):
    return STATE_NAMES.get(dom.state()[0], 'unknown') if dom is not None else 'absent'


def wait_shut_off(dom, deadline):
    while time.monotonic() < deadline:
        if not dom.isActive():
            return True
        time.sleep(0.2)
    return False


def orderly_shutdown(dom, channel_path, timeout):
    """guest_init's ``shutdown`` op, else ACPI, then destroy when the deadline passes."""
    deadline = time.monotonic() + timeout
    try:
        with GuestChannel(channel_path, timeout=min(5.0, timeout)) as channel:
            channel.request('shutdown', {'reboot': False})
    except GuestChannelError:
        try:
            dom.shutdown()
        except libvirt.libvirtError:
            pass
    if not wait_shut_off(dom, deadline):
        dom.destroy()
        return 'destroyed after %d s' % timeout
    return 'shut down'


def ensure_vm_dir(directory):
    """Root-owned and not listable (0711): QEMU, which runs as libvirt's unprivileged user, opens
    the seed and disk files in it by name; the channel socket is made root-only once QEMU runs."""
    os.makedirs(directory, mode=0o711, exist_ok=True)
    for path in (os.path.dirname(os.path.dirname(directory)), os.path.dirname(directory), directory):
        mode = os.stat(path).st_mode
        if mode & 0o011 != 0o011:
            os.chmod(path, (mode & 0o7777) | 0o011)


def remove_state_dir(root, name):
    """Remove ``<state_root>/vms/<name>`` and nothing else."""
    vms = os.path.realpath(os.path.join(root, 'vms'))
    target = os.path.realpath(os.path.join(vms, name))
    if os.path.dirname(target) != vms:
        raise ValueError('state directory %s escapes %s' % (target, vms))
    if os.path.isdir(target):
        shutil.rmtree(target)
        return True
    return False


def data_volumes(module, conn, name, dom):
    """The VM's data volumes that exist: those its domain uses and those its options name."""
    wanted = set()
    if dom is not None:
        root = ET.fromstring(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
        for source in root.findall("devices/disk[@type='volume']/source"):
            wanted.add((source.get('pool'), source.get('volume')))
    for disk in module.params['data_disks']:
        wanted.add((disk['pool'] or 'goship-%s' % module.params['node'], '%s-%s.qcow2' % (name, disk['name'])))
    volumes = []
    for pool_name, volume in sorted(wanted):
        try:
            volumes.append(conn.storagePoolLookupByName(pool_name).storageVolLookupByName(volume))
        except libvirt.libvirtError:
            continue
    return volumes


def ensure_absent(module, conn, root, name, dom, result):
    vm_dir = os.path.join(root, 'vms', name)
    volumes = data_volumes(module, conn, name, dom) if module.params['delete_data'] else []
    if dom is not None:
        result['differences'] = [{'item': 'domain', 'before': name, 'after': None}]
    result['differences'] = result['differences'] + [{'item': 'volume', 'before': vol.path(), 'after': None} for vol in volumes]
    if module._diff:
        result['diff'] = {'before': 'domain: %s\n' % (name if dom else ''), 'after': ''}
    result['changed'] = dom is not None or os.path.isdir(vm_dir) or bool(volumes)
    if module.check_mode or not result['changed']:
        return
    if dom is not None:
        if dom.isActive():
            dom.destroy()
        dom.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_NVRAM | libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE
                          | libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA)
    remove_state_dir(root, name)
    for volume in volumes:
        volume.delete(0)
    result['state'] = 'absent'


def missing_volumes(module, conn, spec):
    """Data volumes of ``spec`` not yet in their pool: [(pool, volume name, size GiB)]."""
    missing = []
    for index, (disk, option) in enumerate(zip(spec.volumes, module.params['data_disks'])):
        try:
            pool = conn.storagePoolLookupByName(disk.pool)
        except libvirt.libvirtError:
            module.fail_json(msg='data_disks[%d].pool: storage pool %s does not exist (the node role defines it)' % (index, disk.pool))
        if not pool.isActive():
            module.fail_json(msg='data_disks[%d].pool: storage pool %s is not active' % (index, disk.pool))
        try:
            pool.storageVolLookupByName(disk.volume)
        except libvirt.libvirtError:
            missing.append((pool, disk.volume, option['size_gib']))
    return missing


def ensure_nvram(spec):
    """The per-VM UEFI variable store, copied from OVMF's template when the domain is defined."""
    if spec.firmware is not None and not os.path.exists(spec.firmware.nvram):
        shutil.copyfile(spec.firmware.nvram_template, spec.firmware.nvram)
        os.chmod(spec.firmware.nvram, 0o600)


def held_hugepages(dom, spec):
    """Huge pages a running domain already holds with the same page size (they count as free for it)."""
    if dom is None or not dom.isActive() or spec.memory_backing is None or spec.memory_backing.hugepage_kib is None:
        return 0
    actual = domain_facets.facets(dom.XMLDesc(0))
    if actual.get('memory_backing.hugepages_kib') != spec.memory_backing.hugepage_kib:
        return 0
    return actual['memory_kib'] // spec.memory_backing.hugepage_kib


def converge(module, conn, root, spec, dom, result):
    params = module.params
    desired_xml = domain_xml.render(spec)
    tracker = DifferenceTracker()
    if dom is None:
        tracker.add('domain', None, spec.name)
    else:
        aliases = libvirt_host.parse_machine_aliases(conn.getCapabilities())
        domain_facets.compare(tracker, desired_xml, dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE), aliases)
    volumes = missing_volumes(module, conn, spec)
    volume_diffs = DifferenceTracker()
    overlay = root_overlay(module, spec)
    if overlay is not None:
        volume_diffs.add('root_overlay', None, overlay)
    for dummy_pool, volume, size_gib in volumes:
        volume_diffs.add('volume.%s' % volume, None, '%d GiB' % size_gib)
    active = dom is not None and bool(dom.isActive())
    needs_restart = active and any(name not in domain_facets.LIVE_FACETS for name in tracker.names)
    want_running = params['state'] == 'running'
    start = want_running and not active
    restart = want_running and needs_restart and params['restart_on_change']
    stop = params['state'] == 'stopped' and active
    result.update(
        differences=tracker.differences() + volume_diffs.differences(),
        restart_required=needs_restart and not restart and not stop,
        changed=tracker.has_differences or volume_diffs.has_differences or start or restart or stop,
        paths={'state_dir': spec.paths.directory, 'channel': spec.paths.channel, 'console_log': spec.paths.console_log},
    )
    if module._diff:
        result['diff'] = tracker.diff(spec.name)
    if module.check_mode:
        return
    ensure_vm_dir(spec.paths.directory)
    for pool, volume, size_gib in volumes:
        pool.createXML(vm_primitives.volume_xml(volume, size_gib), 0)
    if overlay is not None:
        create_overlay(module, overlay)
    if tracker.has_differences:
        ensure_nvram(spec)
        dom = conn.defineXML(with_uuid(desired_xml, dom.UUIDString()) if dom is not None else desired_xml)
        if active and 'metadata.generation' in tracker.names:
            dom.setMetadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, metadata_element(spec), 'goship',
                            domain_xml.GOSHIP_XMLNS, libvirt.VIR_DOMAIN_AFFECT_LIVE)
    if restart or stop:
        result['shutdown'] = orderly_shutdown(dom, spec.paths.channel, params['shutdown_timeout'])
    if start or restart:
        dom.create()
        spec.paths.restrict_channel()
    result['state'] = state_name(dom)
    if want_running and params['wait_for_guest']:
        try:
            result['guest'] = wait_for_hello(spec.paths.channel, float(params['guest_timeout']))
        except GuestChannelError as exc:
            module.fail_json(msg='guest_init did not answer hello within %d s: %s (see %s)'
                             % (params['guest_timeout'], exc, spec.paths.console_log), **result)


def root_overlay(module, spec):
    """Path of the root overlay to create, or None (kernel boot, or the overlay exists)."""
    if not module.params['boot']:
        return None
    path = os.path.join(spec.paths.directory, ROOT_OVERLAY)
    return None if os.path.exists(path) else path


def create_overlay(module, path):
    boot = module.params['boot']
    cmd = ['qemu-img', 'create', '-q', '-f', 'qcow2', '-F', boot['format'], '-b', boot['disk_image'], path]
    rc, dummy_out, err = module.run_command(cmd)
    if rc != 0:
        module.fail_json(msg='boot.disk_image: creating the overlay %s failed: %s' % (path, err.strip()))
    os.chmod(path, 0o600)


def with_uuid(xml_text, uuid):
    """libvirt redefines a domain only when the new XML carries the domain's UUID."""
    return xml_text.replace('</name>', '</name>\n  <uuid>%s</uuid>' % uuid, 1)


def metadata_element(spec):
    return ('<vm><project>%s</project><node>%s</node><generation>%d</generation></vm>'
            % (spec.project, spec.node, spec.generation))


def main():
    argument_spec = node_args.node_argument_spec()
    argument_spec.update(
        project=dict(type='str', required=True),
        node=dict(type='str', required=True),
        state=dict(type='str', choices=['present', 'running', 'stopped', 'absent'], default='running'),
        generation=dict(type='int', default=0),
        image_dir=dict(type='path'),
        boot=dict(type='dict', options=dict(
            disk_image=dict(type='path', required=True), format=dict(type='str', choices=['qcow2', 'raw'], default='qcow2'))),
        memory_mib=dict(type='int', default=512),
        vcpus=dict(type='int', default=1),
        topology=dict(type='dict', options=dict(
            sockets=dict(type='int', default=1), cores=dict(type='int', default=1), threads=dict(type='int', default=1))),
        machine=dict(type='str', default='pc'),
        virt_type=dict(type='str', choices=['auto', 'kvm', 'qemu'], default='auto'),
        cpu_model=dict(type='str'),
        kernel_args=dict(type='list', elements='str', default=[]),
        disks=dict(type='list', elements='dict', default=[], options=dict(
            source=dict(type='path', required=True), format=dict(type='str', choices=['raw', 'qcow2'], default='raw'),
            readonly=dict(type='bool', default=True), serial=dict(type='str'))),
        cpu_pinning=dict(type='dict', options=dict(vcpus=dict(type='dict'), emulator=dict(type='str'))),
        numa=dict(type='dict', options=dict(nodeset=dict(type='str', required=True))),
        memory_backing=dict(type='dict', options=dict(
            hugepages=dict(type='dict', options=dict(size_kib=dict(type='int', required=True))),
            locked=dict(type='bool', default=False), hard_limit_mib=dict(type='int'))),
        balloon=dict(type='bool', default=False),
        nics=dict(type='list', elements='dict', default=[], options=dict(
            type=dict(type='str', choices=['user', 'network'], required=True),
            model=dict(type='str', choices=['virtio', 'e1000'], default='virtio'),
            mac=dict(type='str'), network=dict(type='str'),
            port_forwards=dict(type='list', elements='dict', default=[], options=dict(
                host_port=dict(type='int', required=True), guest_port=dict(type='int', required=True),
                host_address=dict(type='str', default='127.0.0.1'),
                protocol=dict(type='str', choices=['tcp', 'udp'], default='tcp'))))),
        firmware=dict(type='str', choices=['bios', 'uefi'], default='bios'),
        data_disks=dict(type='list', elements='dict', default=[], options=dict(
            name=dict(type='str', required=True), size_gib=dict(type='int', required=True),
            bus=dict(type='str', choices=['virtio'], default='virtio'),
            cache=dict(type='str', choices=list(domain_xml.DISK_CACHES), default='none'),
            pool=dict(type='str'))),
        delete_data=dict(type='bool', default=False),
        confidential=dict(type='dict', options=dict(
            type=dict(type='str', choices=list(domain_xml.CONFIDENTIAL_TYPES), required=True), policy=dict(type='str'),
            config_digest=dict(type='str'))),
        restart_on_change=dict(type='bool', default=False),
        shutdown_timeout=dict(type='int', default=60),
        wait_for_guest=dict(type='bool', default=False),
        guest_timeout=dict(type='int', default=300),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    validate(module)
    root = node_args.state_root(module)
    name = domain_xml.domain_name(module.params['node'], module.params['project'])
    if module.params['state'] != 'absent':
        virt_type = choose_virt_type(module, root)
        build_spec(module, root, virt_type['type'])  # host checks from sysfs, before libvirt
    conn = node_args.open_libvirt(module)
    try:
        dom = lookup(conn, name)
        if dom is not None and domain_facets.facets(dom.XMLDesc(0))['metadata.project'] is None:
            module.fail_json(msg='domain %s exists but carries no GoShip metadata; GoShip never touches it' % name)
        result = dict(changed=False, domain=name, state=state_name(dom), differences=[], restart_required=False)
        if module.params['state'] == 'absent':
            ensure_absent(module, conn, root, name, dom, result)
        else:
            spec = build_spec(module, root, virt_type['type'], existing_network_macs(dom), domain_capabilities(module, conn, virt_type['type']))
            try:
                vm_primitives.check_free_hugepages(spec.memory_backing, spec.memory_mib, host_facts.hugepage_facts(),
                                                   held_hugepages(dom, spec))
            except domain_xml.DomainSpecError as exc:
                module.fail_json(msg=str(exc))
            result['virt_type'] = virt_type
            converge(module, conn, root, spec, dom, result)
    except libvirt.libvirtError as exc:
        module.fail_json(msg='libvirt: %s' % exc, domain=name)
    finally:
        conn.close()
    module.exit_json(**result)


if __name__ == '__main__':
    main()
