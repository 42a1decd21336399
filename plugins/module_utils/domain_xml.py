# Copyright: Contributors to the GoShip project
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""libvirt domain XML of a GoShip project VM: the typed parameters and the one template.

The template is a string here because module_utils cannot ship template files. Values are
inserted with Jinja2 autoescaping, so no parameter can break out of its attribute or element.

Choices, measured with libvirt 9.0 / QEMU 7.2 under TCG (figures in docs/benchmarks.md):

* QEMU keeps libvirt's default dynamic DAC label (it runs as libvirt-qemu, not root). libvirt
  itself creates init.sock (and hands QEMU the listening descriptor) and virtlogd writes
  console.log, so the per-VM directory stays root-only (0700). libvirt leaves init.sock owned
  by libvirt-qemu, mode 0775: ``VmPaths.restrict_channel`` makes it root:root 0600 once the
  domain runs. A static ``+0:+0`` label only changes the owner (still 0775) and runs QEMU as root.
  Kernel, initrd and disk images must be reachable by libvirt-qemu (libvirt chowns them while
  the VM runs and restores the owner afterwards).
* The console goes through ``<log>`` so virtlogd writes and rotates it (a chatty guest cannot
  fill the disk); a ``type='file'`` serial would grow without bound.
* Machine ``pc`` by default: q35 boots no faster under TCG and adds PCIe root ports.
* ``quiet`` by default: every console byte is an emulated UART write under TCG.
* User-mode NICs with port forwards go through ``<qemu:commandline>`` (``-netdev user,hostfwd=``).
  libvirt 9.0 as packaged by Debian rejects ``<backend type='passt'/>`` ("Invalid value for
  attribute 'type' in element 'backend'"), and it accepts ``<portForward>`` on a SLIRP
  interface but silently drops it (measured: QEMU gets ``{"type":"user"}`` without hostfwd,
  nothing listens). The MAC of such a NIC is derived from the domain name, so it is stable.
* Confidential profiles render what libvirt documents for ``<launchSecurity>``; libvirt 9.0
  knows ``sev`` only (``sev-snp`` since 10.5, ``tdx`` since 11.x), see docs/primitives.md.
  The measured configuration (the digest of guest_init's boot spec) is ``<hostData>`` (sev-snp,
  base64 of 32 bytes) or ``<mrConfigId>`` (tdx, base64 of 48 bytes), see docs/confidential.md.
* Machine ``microvm`` has no PCI bus: every virtio device gets ``<address type='virtio-mmio'/>``
  (QEMU's ``virtio-*-device``), which the guest finds through the ACPI tables microvm writes
  (``<acpi/>`` stays on), so the image's stage0 loads virtio_mmio. No UEFI, no e1000.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
from dataclasses import dataclass, field

try:
    import jinja2
    HAS_JINJA2 = True
    JINJA2_IMPORT_ERROR = None
except ImportError as exc:  # pragma: no cover - depends on the node
    HAS_JINJA2 = False
    JINJA2_IMPORT_ERROR = exc

GOSHIP_XMLNS = 'https://goship.dev/xmlns/vm/1'
QEMU_XMLNS = 'http://libvirt.org/schemas/domain/qemu/1.0'
CHANNEL_NAME = 'org.goship.init.0'
DOMAIN_PREFIX = 'goship'
VIRT_TYPES = ('kvm', 'qemu')
LIFECYCLE_ACTIONS = ('destroy', 'restart', 'preserve', 'rename-restart', 'coredump-destroy', 'coredump-restart')
# Node and project names become part of the domain name, of a directory name and of the
# kernel command line (hostname), so they are DNS-label-like.
NAME_PART = re.compile(r'^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\Z')
KERNEL_ARG = re.compile(r'^[A-Za-z0-9_.,:=/+@-]+\Z')
MAC_RE = re.compile(r'^[0-9a-f]{2}(:[0-9a-f]{2}){5}\Z')
CPUSET_PART = re.compile(r'^(\^)?(\d+)(?:-(\d+))?\Z')
NIC_MODELS = {'virtio': 'virtio-net-pci', 'e1000': 'e1000'}
# QEMU creates qemu:commandline devices before libvirt's own (measured: an unaddressed one took
# slot 2, which libvirt had given the virtio-serial controller), so they get fixed slots far
# above the ones libvirt hands out from 2 upwards, and below q35's ICH9 functions at 0x1f.
USER_NIC_FIRST_SLOT = 0x18
MAX_USER_NICS = 4
CONFIDENTIAL_TYPES = ('sev', 'sev-snp', 'tdx')
# Where each type measures the boot spec's digest, and its size: SNP HOST_DATA, TDX MRCONFIGID.
CONFIG_DIGEST_FIELDS = {'sev-snp': ('hostData', 'sha256', 32), 'tdx': ('mrConfigId', 'sha384', 48)}
MICROVM_NIC_MODELS = {'virtio': 'virtio-net-device'}
DISK_CACHES = ('none', 'writeback', 'writethrough', 'directsync', 'unsafe', 'default')


class DomainSpecError(ValueError):
    """A parameter cannot go into a GoShip domain."""


def parse_cpuset(text):
    """libvirt cpuset syntax ('0-3,^2,8') -> sorted list of CPU numbers; DomainSpecError if malformed."""
    included, excluded = set(), set()
    for part in str(text).split(','):
        match = CPUSET_PART.match(part.strip())
        if not match:
            raise DomainSpecError('cpuset %r: %r is not N, N-M or ^N' % (text, part))
        low = int(match.group(2))
        high = int(match.group(3)) if match.group(3) is not None else low
        if high < low:
            raise DomainSpecError('cpuset %r: range %r runs backwards' % (text, part))
        (excluded if match.group(1) else included).update(range(low, high + 1))
    cpus = sorted(included - excluded)
    if not cpus:
        raise DomainSpecError('cpuset %r selects no CPU' % (text,))
    return cpus


def format_cpuset(cpus):
    """[0, 1, 2, 5] -> '0-2,5': the canonical form libvirt writes back."""
    ranges = []
    for cpu in sorted(set(cpus)):
        if ranges and cpu == ranges[-1][1] + 1:
            ranges[-1][1] = cpu
        else:
            ranges.append([cpu, cpu])
    return ','.join(str(low) if low == high else '%d-%d' % (low, high) for low, high in ranges)


def is_microvm(machine):
    return machine == 'microvm' or machine.startswith('microvm-')


def stable_mac(domain, index):
    """A locally administered unicast MAC in QEMU's 52:54:00 range, fixed by domain and NIC index."""
    digest = hashlib.sha256(('%s/%d' % (domain, index)).encode('utf-8')).digest()
    return '52:54:00:%02x:%02x:%02x' % (digest[0], digest[1], digest[2])


def domain_name(node, project):
    """``goship-<node>-<project>``; see docs/architecture.md."""
    for what, value in (('node', node), ('project', project)):
        if not NAME_PART.match(value or ''):
            raise DomainSpecError('%s name %r must be 1-63 of a-z, 0-9 and inner "-"' % (what, value))
    return '%s-%s-%s' % (DOMAIN_PREFIX, node, project)


@dataclass(frozen=True)
class VmPaths:
    """The per-VM host state directory ``<state_root>/vms/<domain>/`` and what is in it."""

    directory: str

    @classmethod
    def for_domain(cls, state_root, name):
        return cls(os.path.join(state_root, 'vms', name))

    @property
    def channel(self):
        return os.path.join(self.directory, 'init.sock')

    @property
    def console_log(self):
        return os.path.join(self.directory, 'console.log')

    def create(self):
        """The directory, root-only. libvirt creates init.sock and console.log in it itself
        (as root, handing descriptors to QEMU), so QEMU's own user needs no access to it."""
        os.makedirs(os.path.dirname(self.directory), exist_ok=True)
        os.makedirs(self.directory, mode=0o700, exist_ok=True)
        os.chmod(self.directory, 0o700)

    def restrict_channel(self):
        """Call once the domain runs: libvirt leaves init.sock owned by QEMU's user, mode 0775.
        QEMU keeps accepting on the descriptor it holds; only root can connect afterwards."""
        os.chown(self.channel, 0, 0)
        os.chmod(self.channel, 0o600)


@dataclass(frozen=True)
class Disk:
    """A block device on the virtio bus. The image's rootfs is a shared read-only raw disk."""

    source: str
    target: str = 'vda'
    readonly: bool = True
    driver_type: str = 'raw'
    device: str = 'disk'
    # guest_init finds data disks by serial (no udev in the guest): goship-images, goship-state.
    serial: str | None = None


@dataclass(frozen=True)
class VolumeDisk:
    """A data disk that is a volume of a libvirt storage pool (kept across redefinition)."""

    pool: str
    volume: str
    target: str
    serial: str
    cache: str = 'none'
    driver_type: str = 'qcow2'


@dataclass(frozen=True)
class CpuPinning:
    """``vcpus``: ((vcpu, cpuset text), ...); ``emulator``: cpuset text or None."""

    vcpus: tuple = ()
    emulator: str | None = None


@dataclass(frozen=True)
class MemoryBacking:
    hugepage_kib: int | None = None
    locked: bool = False
    # cgroup limit on the whole QEMU process (guest memory + QEMU's own); libvirt wants one with <locked/>.
    hard_limit_mib: int | None = None


@dataclass(frozen=True)
class PortForward:
    host_port: int
    guest_port: int
    host_address: str = '127.0.0.1'
    protocol: str = 'tcp'


@dataclass(frozen=True)
class Nic:
    """``type`` 'user' (QEMU SLIRP through qemu:commandline) or 'network' (a libvirt network)."""

    type: str
    model: str = 'virtio'
    mac: str | None = None
    network: str | None = None
    port_forwards: tuple = ()


@dataclass(frozen=True)
class Firmware:
    """UEFI: OVMF code (read-only pflash) and a per-VM NVRAM file made from the vars template."""

    loader: str
    nvram: str
    nvram_template: str


@dataclass(frozen=True)
class LaunchSecurity:
    type: str
    policy: str | None = None
    cbitpos: int | None = None
    reduced_phys_bits: int | None = None
    # digest of guest_init's boot spec (goship.json): SHA-256 for sev-snp, SHA-384 for tdx
    config_digest: bytes | None = None

    @property
    def config_digest_element(self):
        """(element name, base64 text) of the measured configuration, or None."""
        if self.config_digest is None:
            return None
        return CONFIG_DIGEST_FIELDS[self.type][0], base64.b64encode(self.config_digest).decode('ascii')


@dataclass(frozen=True)
class CpuTopology:
    sockets: int = 1
    cores: int = 1
    threads: int = 1

    @property
    def vcpus(self):
        return self.sockets * self.cores * self.threads


@dataclass(frozen=True)
class DomainSpec:
    """Everything the template needs. ``generation`` is the desired-state generation of the VM."""

    node: str
    project: str
    generation: int
    kernel: str  # '' with initrd '': boot from the first disk (a disk image) instead
    initrd: str
    paths: VmPaths
    hostname: str = ''
    memory_mib: int = 512
    vcpus: int = 1
    topology: CpuTopology | None = None
    virt_type: str = 'qemu'
    machine: str = 'pc'
    cpu_model: str | None = None
    disks: tuple = ()
    quiet: bool = True
    kernel_args: tuple = ()
    memballoon: bool = False
    rng: bool = True
    on_reboot: str = 'restart'
    on_crash: str = 'destroy'
    cpu_pinning: CpuPinning | None = None
    numa_nodeset: str | None = None
    memory_backing: MemoryBacking | None = None
    nics: tuple = ()
    firmware: Firmware | None = None
    volumes: tuple = ()
    launch_security: LaunchSecurity | None = None
    # microvm under TCG: the host's TSC kHz as tsc_early_khz= (host_facts.tsc_khz), because
    # microvm has no HPET or PM timer to calibrate the TSC against when the PIT is too noisy
    tsc_khz: int | None = None
    name: str = field(init=False)

    @property
    def microvm(self):
        """QEMU's microvm: virtio-mmio instead of PCI."""
        return is_microvm(self.machine)

    def __post_init__(self):
        object.__setattr__(self, 'name', domain_name(self.node, self.project))
        if not self.hostname:
            object.__setattr__(self, 'hostname', '%s-%s' % (self.project, self.node))
        _check(self)


def _check(spec):
    if not NAME_PART.match(spec.hostname):
        raise DomainSpecError('hostname %r is not a DNS label' % spec.hostname)
    if spec.virt_type not in VIRT_TYPES:
        raise DomainSpecError('virt_type must be one of %s, not %r' % (', '.join(VIRT_TYPES), spec.virt_type))
    if not isinstance(spec.generation, int) or spec.generation < 0:
        raise DomainSpecError('generation must be a non-negative integer')
    if spec.memory_mib < 64:
        raise DomainSpecError('memory_mib must be at least 64')
    if spec.vcpus < 1 or (spec.topology is not None and spec.topology.vcpus != spec.vcpus):
        raise DomainSpecError('vcpus must be >= 1 and equal sockets * cores * threads of the topology')
    for action in (spec.on_reboot, spec.on_crash):
        if action not in LIFECYCLE_ACTIONS:
            raise DomainSpecError('lifecycle action %r is not one of %s' % (action, ', '.join(LIFECYCLE_ACTIONS)))
    for arg in spec.kernel_args:
        if not KERNEL_ARG.match(arg):
            raise DomainSpecError('kernel argument %r has characters outside %s' % (arg, KERNEL_ARG.pattern))
    if bool(spec.kernel) != bool(spec.initrd):
        raise DomainSpecError('kernel and initrd go together (both empty: boot from the disk image)')
    for path in (spec.kernel, spec.initrd, spec.paths.directory) + tuple(disk.source for disk in spec.disks):
        if path and not os.path.isabs(path):
            raise DomainSpecError('path %r must be absolute' % path)
    _check_primitives(spec)


def _check_primitives(spec):
    pinning = spec.cpu_pinning
    if pinning is not None:
        for vcpu, cpuset in pinning.vcpus:
            if not 0 <= vcpu < spec.vcpus:
                raise DomainSpecError('cpu_pinning.vcpus.%d: the VM has vCPUs 0-%d' % (vcpu, spec.vcpus - 1))
            parse_cpuset(cpuset)
        if pinning.emulator is not None:
            parse_cpuset(pinning.emulator)
    if spec.numa_nodeset is not None:
        parse_cpuset(spec.numa_nodeset)
    backing = spec.memory_backing
    if backing is not None and backing.locked and not backing.hard_limit_mib:
        raise DomainSpecError('memory_backing.locked needs a hard limit (memtune hard_limit)')
    for index, nic in enumerate(spec.nics):
        if nic.type not in ('user', 'network') or nic.model not in NIC_MODELS:
            raise DomainSpecError('nics[%d]: type user|network and model %s' % (index, '|'.join(NIC_MODELS)))
        if nic.mac is not None and not MAC_RE.match(nic.mac):
            raise DomainSpecError('nics[%d].mac: %r is not a lower-case MAC address' % (index, nic.mac))
        if (nic.type == 'network') != bool(nic.network):
            raise DomainSpecError('nics[%d].network: required exactly when type is network' % index)
        if sum(1 for other in spec.nics[:index + 1] if other.type == 'user') > MAX_USER_NICS:
            raise DomainSpecError('nics[%d]: at most %d user NICs' % (index, MAX_USER_NICS))
        if nic.type == 'user' and nic.mac is None:
            raise DomainSpecError('nics[%d].mac: a user NIC is rendered with a MAC (see stable_mac)' % index)
    security = spec.launch_security
    if security is not None and security.type not in CONFIDENTIAL_TYPES:
        raise DomainSpecError('confidential.type must be one of %s' % ', '.join(CONFIDENTIAL_TYPES))
    if security is not None and security.config_digest is not None:
        if security.type not in CONFIG_DIGEST_FIELDS:
            raise DomainSpecError('confidential.config_digest: %s has no field that measures host-provided data '
                                  '(sev-snp host data, tdx mrConfigId)' % security.type)
        size = CONFIG_DIGEST_FIELDS[security.type][2]
        if len(security.config_digest) != size:
            raise DomainSpecError('confidential.config_digest: %s takes %d bytes (%s), not %d'
                                  % (security.type, size, CONFIG_DIGEST_FIELDS[security.type][1], len(security.config_digest)))
    _check_microvm(spec)


def _check_microvm(spec):
    if not spec.microvm:
        return
    if spec.firmware is not None:
        raise DomainSpecError('firmware: microvm boots with qboot (bios) only, not uefi')
    if spec.tsc_khz is not None and not 1000 <= spec.tsc_khz <= 100000000:
        raise DomainSpecError('tsc_khz: %r is not a TSC frequency in kHz' % spec.tsc_khz)
    if spec.launch_security is not None:
        raise DomainSpecError('confidential: needs machine q35, not microvm')
    if not spec.kernel:
        raise DomainSpecError('machine: microvm boots the image kernel directly (no boot.disk_image)')
    for index, nic in enumerate(spec.nics):
        if nic.model not in MICROVM_NIC_MODELS:
            raise DomainSpecError('nics[%d].model: microvm has no PCI bus, only virtio (virtio-mmio) NICs' % index)


def user_netdev_args(spec):
    """``-netdev user,...,hostfwd=...`` and ``-device <model>,netdev=...,mac=...`` per user NIC."""
    args = []
    for index, nic in enumerate(nic for nic in spec.nics if nic.type == 'user'):
        netdev = ['user', 'id=gsnet%d' % index]
        netdev.extend('hostfwd=%s:%s:%d-:%d' % (fwd.protocol, fwd.host_address, fwd.host_port, fwd.guest_port)
                      for fwd in nic.port_forwards)
        if spec.microvm:  # virtio-mmio: no PCI slot to fix
            device = [MICROVM_NIC_MODELS[nic.model], 'netdev=gsnet%d' % index, 'mac=%s' % nic.mac]
        else:
            device = [NIC_MODELS[nic.model], 'netdev=gsnet%d' % index, 'mac=%s' % nic.mac,
                      'addr=0x%x' % (USER_NIC_FIRST_SLOT + index)]
        if spec.launch_security is not None and nic.model == 'virtio':
            device.extend(['iommu_platform=on', 'disable-legacy=on'])
        args.extend(['-netdev', ','.join(netdev), '-device', ','.join(device)])
    return args


def kernel_cmdline(spec):
    """``console=ttyS0`` for console.log, ``quiet`` unless asked (printk on a TCG UART is slow)."""
    args = ['console=ttyS0']
    if spec.quiet:
        args.append('quiet')
    args.append('goship.hostname=%s' % spec.hostname)
    if spec.tsc_khz:
        args.append('tsc_early_khz=%d' % spec.tsc_khz)
    args.extend(spec.kernel_args)
    return ' '.join(args)


DOMAIN_TEMPLATE = """\
<domain type='{{ spec.virt_type }}'{% if qemu_args %} xmlns:qemu='{{ qemu_xmlns }}'{% endif %}>
  <name>{{ spec.name }}</name>
  <metadata>
    <goship:vm xmlns:goship='{{ xmlns }}'>
      <goship:project>{{ spec.project }}</goship:project>
      <goship:node>{{ spec.node }}</goship:node>
      <goship:generation>{{ spec.generation }}</goship:generation>
    </goship:vm>
  </metadata>
  <memory unit='MiB'>{{ spec.memory_mib }}</memory>
{% if spec.memory_backing %}
{% if spec.memory_backing.hard_limit_mib %}
  <memtune>
    <hard_limit unit='MiB'>{{ spec.memory_backing.hard_limit_mib }}</hard_limit>
  </memtune>
{% endif %}
  <memoryBacking>
{% if spec.memory_backing.hugepage_kib %}
    <hugepages>
      <page size='{{ spec.memory_backing.hugepage_kib }}' unit='KiB'/>
    </hugepages>
{% endif %}
{% if spec.memory_backing.locked %}
    <locked/>
{% endif %}
  </memoryBacking>
{% endif %}
  <vcpu placement='static'>{{ spec.vcpus }}</vcpu>
{% if spec.cpu_pinning %}
  <cputune>
{% for vcpu, cpuset in spec.cpu_pinning.vcpus %}
    <vcpupin vcpu='{{ vcpu }}' cpuset='{{ cpuset }}'/>
{% endfor %}
{% if spec.cpu_pinning.emulator %}
    <emulatorpin cpuset='{{ spec.cpu_pinning.emulator }}'/>
{% endif %}
  </cputune>
{% endif %}
{% if spec.numa_nodeset %}
  <numatune>
    <memory mode='strict' nodeset='{{ spec.numa_nodeset }}'/>
  </numatune>
{% endif %}
  <os>
    <type arch='x86_64' machine='{{ spec.machine }}'>hvm</type>
{% if spec.firmware %}
    <loader readonly='yes' type='pflash'>{{ spec.firmware.loader }}</loader>
    <nvram template='{{ spec.firmware.nvram_template }}'>{{ spec.firmware.nvram }}</nvram>
{% endif %}
{% if spec.kernel %}
    <kernel>{{ spec.kernel }}</kernel>
    <initrd>{{ spec.initrd }}</initrd>
    <cmdline>{{ cmdline }}</cmdline>
{% else %}
    <boot dev='hd'/>
{% endif %}
    <bootmenu enable='no'/>
  </os>
  <features>
    <acpi/>
    <apic/>
{% if spec.launch_security and spec.launch_security.type == 'tdx' %}
    <ioapic driver='qemu'/>
{% endif %}
  </features>
{% if spec.virt_type == 'kvm' %}
  <cpu mode='host-passthrough' check='none' migratable='on'>
{% elif spec.cpu_model %}
  <cpu mode='custom' match='exact' check='none'>
    <model fallback='forbid'>{{ spec.cpu_model }}</model>
{% else %}
  <cpu>
{% endif %}
{% if spec.topology %}
    <topology sockets='{{ spec.topology.sockets }}' dies='1' cores='{{ spec.topology.cores }}' threads='{{ spec.topology.threads }}'/>
{% endif %}
  </cpu>
  <clock offset='utc'/>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>{{ spec.on_reboot }}</on_reboot>
  <on_crash>{{ spec.on_crash }}</on_crash>
  <pm>
    <suspend-to-mem enabled='no'/>
    <suspend-to-disk enabled='no'/>
  </pm>
  <devices>
{% for disk in spec.disks %}
    <disk type='file' device='{{ disk.device }}'>
      <driver name='qemu' type='{{ disk.driver_type }}'{% if spec.launch_security %} iommu='on'{% endif %}/>
      <source file='{{ disk.source }}'/>
      <target dev='{{ disk.target }}' bus='virtio'/>
{% if disk.serial %}
      <serial>{{ disk.serial }}</serial>
{% endif %}
{% if disk.readonly %}
      <readonly/>
{% endif %}
{% if spec.microvm %}
      <address type='virtio-mmio'/>
{% endif %}
    </disk>
{% endfor %}
{% for disk in spec.volumes %}
    <disk type='volume' device='disk'>
      <driver name='qemu' type='{{ disk.driver_type }}' cache='{{ disk.cache }}'{% if spec.launch_security %} iommu='on'{% endif %}/>
      <source pool='{{ disk.pool }}' volume='{{ disk.volume }}'/>
      <target dev='{{ disk.target }}' bus='virtio'/>
      <serial>{{ disk.serial }}</serial>
{% if spec.microvm %}
      <address type='virtio-mmio'/>
{% endif %}
    </disk>
{% endfor %}
    <controller type='usb' model='none'/>
    <controller type='virtio-serial' index='0'>
{% if spec.launch_security %}
      <driver iommu='on'/>
{% endif %}
{% if spec.microvm %}
      <address type='virtio-mmio'/>
{% endif %}
    </controller>
{% for nic in spec.nics if nic.type == 'network' %}
    <interface type='network'>
{% if nic.mac %}
      <mac address='{{ nic.mac }}'/>
{% endif %}
      <source network='{{ nic.network }}'/>
      <model type='{{ nic.model }}'/>
{% if spec.launch_security and nic.model == 'virtio' %}
      <driver iommu='on'/>
{% endif %}
{% if spec.microvm %}
      <address type='virtio-mmio'/>
{% endif %}
    </interface>
{% endfor %}
    <channel type='unix'>
      <source mode='bind' path='{{ spec.paths.channel }}'/>
      <target type='virtio' name='{{ channel_name }}'/>
    </channel>
    <serial type='pty'>
      <log file='{{ spec.paths.console_log }}' append='off'/>
      <target port='0'/>
    </serial>
{% if spec.rng %}
    <rng model='virtio'>
      <backend model='random'>/dev/urandom</backend>
{% if spec.launch_security %}
      <driver iommu='on'/>
{% endif %}
{% if spec.microvm %}
      <address type='virtio-mmio'/>
{% endif %}
    </rng>
{% endif %}
{% if spec.memballoon %}
    <memballoon model='virtio'>
{% if spec.launch_security %}
      <driver iommu='on'/>
{% endif %}
{% if spec.microvm %}
      <address type='virtio-mmio'/>
{% endif %}
    </memballoon>
{% else %}
    <memballoon model='none'/>
{% endif %}
  </devices>
{% if spec.launch_security %}
{% set sec = spec.launch_security %}
  <launchSecurity type='{{ sec.type }}'>
{% if sec.type in ('sev', 'sev-snp') %}
    <cbitpos>{{ sec.cbitpos }}</cbitpos>
    <reducedPhysBits>{{ sec.reduced_phys_bits }}</reducedPhysBits>
{% endif %}
{% if sec.policy %}
    <policy>{{ sec.policy }}</policy>
{% endif %}
{% if sec.config_digest_element %}
    <{{ sec.config_digest_element[0] }}>{{ sec.config_digest_element[1] }}</{{ sec.config_digest_element[0] }}>
{% endif %}
  </launchSecurity>
{% endif %}
{% if qemu_args %}
  <qemu:commandline>
{% for arg in qemu_args %}
    <qemu:arg value='{{ arg }}'/>
{% endfor %}
  </qemu:commandline>
{% endif %}
</domain>
"""


def render(spec):
    """The domain XML of ``spec`` as text; raises ImportError when jinja2 is missing."""
    if not HAS_JINJA2:
        raise ImportError('jinja2 is required to render domain XML: %s' % JINJA2_IMPORT_ERROR)
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    return env.from_string(DOMAIN_TEMPLATE).render(
        spec=spec, cmdline=kernel_cmdline(spec), xmlns=GOSHIP_XMLNS, channel_name=CHANNEL_NAME,
        qemu_xmlns=QEMU_XMLNS, qemu_args=user_netdev_args(spec))
