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
"""

from __future__ import annotations

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
CHANNEL_NAME = 'org.goship.init.0'
DOMAIN_PREFIX = 'goship'
VIRT_TYPES = ('kvm', 'qemu')
LIFECYCLE_ACTIONS = ('destroy', 'restart', 'preserve', 'rename-restart', 'coredump-destroy', 'coredump-restart')
# Node and project names become part of the domain name, of a directory name and of the
# kernel command line (hostname), so they are DNS-label-like.
NAME_PART = re.compile(r'^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$')
KERNEL_ARG = re.compile(r'^[A-Za-z0-9_.,:=/+@-]+$')


class DomainSpecError(ValueError):
    """A parameter cannot go into a GoShip domain."""


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
    kernel: str
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
    name: str = field(init=False)

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
    for path in (spec.kernel, spec.initrd, spec.paths.directory) + tuple(disk.source for disk in spec.disks):
        if not os.path.isabs(path):
            raise DomainSpecError('path %r must be absolute' % path)


def kernel_cmdline(spec):
    """``console=ttyS0`` for console.log, ``quiet`` unless asked (printk on a TCG UART is slow)."""
    args = ['console=ttyS0']
    if spec.quiet:
        args.append('quiet')
    args.append('goship.hostname=%s' % spec.hostname)
    args.extend(spec.kernel_args)
    return ' '.join(args)


DOMAIN_TEMPLATE = """\
<domain type='{{ spec.virt_type }}'>
  <name>{{ spec.name }}</name>
  <metadata>
    <goship:vm xmlns:goship='{{ xmlns }}'>
      <goship:project>{{ spec.project }}</goship:project>
      <goship:node>{{ spec.node }}</goship:node>
      <goship:generation>{{ spec.generation }}</goship:generation>
    </goship:vm>
  </metadata>
  <memory unit='MiB'>{{ spec.memory_mib }}</memory>
  <vcpu placement='static'>{{ spec.vcpus }}</vcpu>
  <os>
    <type arch='x86_64' machine='{{ spec.machine }}'>hvm</type>
    <kernel>{{ spec.kernel }}</kernel>
    <initrd>{{ spec.initrd }}</initrd>
    <cmdline>{{ cmdline }}</cmdline>
    <bootmenu enable='no'/>
  </os>
  <features>
    <acpi/>
    <apic/>
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
      <driver name='qemu' type='{{ disk.driver_type }}'/>
      <source file='{{ disk.source }}'/>
      <target dev='{{ disk.target }}' bus='virtio'/>
{% if disk.serial %}
      <serial>{{ disk.serial }}</serial>
{% endif %}
{% if disk.readonly %}
      <readonly/>
{% endif %}
    </disk>
{% endfor %}
    <controller type='usb' model='none'/>
    <controller type='virtio-serial' index='0'/>
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
    </rng>
{% endif %}
    <memballoon model='{{ "virtio" if spec.memballoon else "none" }}'/>
  </devices>
</domain>
"""


def render(spec):
    """The domain XML of ``spec`` as text; raises ImportError when jinja2 is missing."""
    if not HAS_JINJA2:
        raise ImportError('jinja2 is required to render domain XML: %s' % JINJA2_IMPORT_ERROR)
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    return env.from_string(DOMAIN_TEMPLATE).render(
        spec=spec, cmdline=kernel_cmdline(spec), xmlns=GOSHIP_XMLNS, channel_name=CHANNEL_NAME)
