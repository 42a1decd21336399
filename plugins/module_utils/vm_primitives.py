# Copyright: Contributors to the GoShip project
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""project_vm's virtualization primitives: module options -> domain_xml parts, checked against
what the host can do before libvirt is touched.

Every function takes plain option dicts and host facts (as host_facts / libvirt_host return
them), so the refusal paths are unit-tested with fake hosts. Every error is a
``DomainSpecError`` whose message starts with the option's name.
"""

from __future__ import annotations

import ipaddress
import os
import re

from ansible_collections.goship.core.plugins.module_utils.domain_xml import (
    CONFIG_DIGEST_FIELDS, CpuPinning, DomainSpecError, Firmware, LaunchSecurity, MemoryBacking, Nic, PortForward, VolumeDisk,
    format_cpuset, parse_cpuset, stable_mac)

# Debian's ovmf package: 4 MiB flash images first (the 2 MiB ones are legacy).
OVMF_PAIRS = (('/usr/share/OVMF/OVMF_CODE_4M.fd', '/usr/share/OVMF/OVMF_VARS_4M.fd'),
              ('/usr/share/OVMF/OVMF_CODE.fd', '/usr/share/OVMF/OVMF_VARS.fd'))
NVRAM_FILE = 'nvram.fd'
# QEMU's own memory on top of the guest's, for the memtune hard limit that <locked/> needs;
# under TCG the translation cache alone can take hundreds of MiB.
QEMU_OVERHEAD_MIB = 1024
DEFAULT_POLICY = {'sev': '0x0033', 'sev-snp': '0x00030000'}
NETWORK_NAME = re.compile(r'^[A-Za-z0-9_.-]{1,64}\Z')
DATA_DISK_NAME = re.compile(r'^[a-z0-9]([a-z0-9-]{0,13}[a-z0-9])?\Z')
MAC = re.compile(r'^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}\Z')
CONFIG_DIGEST = re.compile(r'^(sha256|sha384):([0-9a-f]+)\Z')


def _host_cpus(option, cpuset, online):
    try:
        cpus = parse_cpuset(cpuset)
    except DomainSpecError as exc:
        raise DomainSpecError('%s: %s' % (option, exc))
    for cpu in cpus:
        if cpu not in online:
            raise DomainSpecError('%s: host CPU %d does not exist (online: %s)' % (option, cpu, format_cpuset(online)))
    return format_cpuset(cpus)


def cpu_pinning(option, vcpus, online):
    """``{vcpus: {0: '0-1'}, emulator: '0'}`` -> CpuPinning, against the host's online CPUs."""
    if not option:
        return None
    pins = []
    for key, cpuset in sorted((option.get('vcpus') or {}).items(), key=lambda item: str(item[0]).zfill(8)):
        if not str(key).isdigit() or int(key) >= vcpus:
            raise DomainSpecError('cpu_pinning.vcpus.%s: not a vCPU of this VM (vCPUs 0-%d)' % (key, vcpus - 1))
        pins.append((int(key), _host_cpus('cpu_pinning.vcpus.%s' % key, cpuset, online)))
    emulator = option.get('emulator')
    if emulator is not None:
        emulator = _host_cpus('cpu_pinning.emulator', emulator, online)
    if not pins and emulator is None:
        raise DomainSpecError('cpu_pinning: give vcpus, emulator or both')
    return CpuPinning(vcpus=tuple(pins), emulator=emulator)


def numa_nodeset(option, cells):
    """``{nodeset: '0'}`` -> canonical nodeset, against the host's NUMA cells."""
    if not option or option.get('nodeset') is None:
        return None
    try:
        nodes = parse_cpuset(option['nodeset'])
    except DomainSpecError as exc:
        raise DomainSpecError('numa.nodeset: %s' % exc)
    known = [cell['id'] for cell in cells]
    for node in nodes:
        if node not in known:
            raise DomainSpecError('numa.nodeset: host NUMA node %d does not exist (nodes: %s)'
                                  % (node, format_cpuset(known) or 'none reported'))
    return format_cpuset(nodes)


def memory_backing(option, memory_mib, hugepages, confidential=False):
    """``{hugepages: {size_kib}, locked, hard_limit_mib}`` -> MemoryBacking (or None).

    ``hugepages`` is host_facts.hugepage_facts(): {'2048': {'total', 'free'}}. Whether enough
    pages are free is ``check_free_hugepages``'s job (a running VM holds its own pages).
    """
    option = option or {}
    size = (option.get('hugepages') or {}).get('size_kib')
    locked = bool(option.get('locked')) or confidential
    if size is not None:
        if str(size) not in hugepages:
            raise DomainSpecError('memory_backing.hugepages.size_kib: the host has no %d KiB pages (sizes: %s)'
                                  % (size, ', '.join(sorted(hugepages, key=int)) or 'none'))
        if (memory_mib * 1024) % size:
            raise DomainSpecError('memory_backing.hugepages.size_kib: memory_mib %d is not a multiple of %d KiB pages'
                                  % (memory_mib, size))
    hard_limit = option.get('hard_limit_mib')
    if hard_limit is not None and hard_limit <= memory_mib:
        raise DomainSpecError('memory_backing.hard_limit_mib: %d must exceed memory_mib %d (QEMU needs its own memory)'
                              % (hard_limit, memory_mib))
    if size is None and not locked:
        return None
    if locked and hard_limit is None:
        hard_limit = memory_mib + QEMU_OVERHEAD_MIB
    return MemoryBacking(hugepage_kib=size, locked=locked, hard_limit_mib=hard_limit)


def check_free_hugepages(backing, memory_mib, hugepages, held_pages=0):
    """Refuse when the host lacks free pages; ``held_pages`` are already this VM's (it runs)."""
    if backing is None or backing.hugepage_kib is None:
        return
    needed = memory_mib * 1024 // backing.hugepage_kib
    free = hugepages[str(backing.hugepage_kib)]['free'] + held_pages
    if free < needed:
        raise DomainSpecError('memory_backing.hugepages.size_kib: the VM needs %d free %d KiB pages, the host has %d'
                              % (needed, backing.hugepage_kib, free))


def nics(options, domain, existing_network_macs=()):
    """NIC options -> Nic tuple. A network NIC without ``mac`` keeps the MAC libvirt gave it
    before (by position among network NICs); a user NIC without one gets ``stable_mac``."""
    result, network_index, seen_forwards = [], 0, set()
    for index, option in enumerate(options or ()):
        where = 'nics[%d]' % index
        mac = option.get('mac')
        if mac is not None and not MAC.match(mac):
            raise DomainSpecError('%s.mac: %r is not a MAC address' % (where, mac))
        mac = mac.lower() if mac else None
        forwards = []
        if option['type'] == 'network':
            if not NETWORK_NAME.match(option.get('network') or ''):
                raise DomainSpecError('%s.network: a libvirt network name is required for type network' % where)
            if option.get('port_forwards'):
                raise DomainSpecError('%s.port_forwards: only a user NIC forwards ports' % where)
            if mac is None and network_index < len(existing_network_macs):
                mac = existing_network_macs[network_index]
            network_index += 1
        else:
            if option.get('network'):
                raise DomainSpecError('%s.network: only for type network' % where)
            mac = mac or stable_mac(domain, index)
            for number, fwd in enumerate(option.get('port_forwards') or ()):
                forwards.append(_port_forward('%s.port_forwards[%d]' % (where, number), fwd, seen_forwards))
        result.append(Nic(type=option['type'], model=option.get('model') or 'virtio', mac=mac,
                          network=option.get('network'), port_forwards=tuple(forwards)))
    return tuple(result)


def _port_forward(where, fwd, seen):
    for name in ('host_port', 'guest_port'):
        if not 1 <= fwd[name] <= 65535:
            raise DomainSpecError('%s.%s: %d is not a port (1-65535)' % (where, name, fwd[name]))
    address = fwd.get('host_address') or '127.0.0.1'
    try:
        if ipaddress.ip_address(address).version != 4:
            raise ValueError('IPv4 only')
    except ValueError:
        raise DomainSpecError('%s.host_address: %r is not an IPv4 address (QEMU hostfwd binds IPv4)' % (where, address))
    protocol = fwd.get('protocol') or 'tcp'
    key = (address, fwd['host_port'], protocol)
    if key in seen:
        raise DomainSpecError('%s.host_port: %s:%d/%s is published twice' % (where, address, fwd['host_port'], protocol))
    seen.add(key)
    return PortForward(host_port=fwd['host_port'], guest_port=fwd['guest_port'], host_address=address, protocol=protocol)


def firmware(kind, vm_dir, exists=os.path.isfile):
    """``bios`` -> None (SeaBIOS); ``uefi`` -> OVMF code + per-VM NVRAM in the VM directory."""
    if kind != 'uefi':
        return None
    for code, variables in OVMF_PAIRS:
        if exists(code) and exists(variables):
            return Firmware(loader=code, nvram=os.path.join(vm_dir, NVRAM_FILE), nvram_template=variables)
    raise DomainSpecError('firmware: uefi needs OVMF (Debian package ovmf); none of %s exists'
                          % ', '.join(code for code, dummy in OVMF_PAIRS))


def data_disks(options, domain, node, first_target):
    """Data disk options -> VolumeDisk tuple: volume ``<domain>-<name>.qcow2`` in pool
    ``goship-<node>`` unless given, serial ``data-<name>``, targets from ``first_target`` on."""
    result, names = [], set()
    for index, option in enumerate(options or ()):
        where = 'data_disks[%d]' % index
        if not DATA_DISK_NAME.match(option['name']):
            raise DomainSpecError('%s.name: %r must be 1-15 of a-z, 0-9 and inner "-"' % (where, option['name']))
        if option['name'] in names:
            raise DomainSpecError('%s.name: %r is used twice' % (where, option['name']))
        names.add(option['name'])
        if option['size_gib'] < 1:
            raise DomainSpecError('%s.size_gib: must be >= 1' % where)
        target = first_target + index
        if target > 25:
            raise DomainSpecError('%s: no virtio target left after vdz' % where)
        result.append(VolumeDisk(pool=option.get('pool') or 'goship-%s' % node, volume='%s-%s.qcow2' % (domain, option['name']),
                                 target='vd%s' % chr(ord('a') + target), serial='data-%s' % option['name'],
                                 cache=option.get('cache') or 'none'))
    return tuple(result)


def volume_xml(name, size_gib):
    """storageVolCreateXML document: a sparse qcow2 volume only root can read."""
    return ("<volume><name>%s</name><capacity unit='GiB'>%d</capacity><allocation unit='B'>0</allocation>"
            "<target><format type='qcow2'/><permissions><mode>0600</mode></permissions></target></volume>"
            % (name, size_gib))


def confidential(option, machine, firmware_kind, sysfs, domcaps):
    """``{type, policy}`` -> LaunchSecurity, refused unless the host reports the mode.

    ``sysfs`` is host_facts.virtualization_facts()['confidential'] ({sev, sev_es, sev_snp, tdx});
    ``domcaps`` is libvirt_host.parse_domain_capabilities() ({sev: {supported, cbitpos, ...}, tdx}),
    or None for the sysfs-only check made before libvirt is opened.
    """
    if not option:
        return None
    kind = option['type']
    host = 'host reports sysfs %s' % ', '.join('%s=%s' % (key, sysfs.get(key)) for key in ('sev', 'sev_es', 'sev_snp', 'tdx'))
    available = bool(sysfs.get(kind.replace('-', '_')))
    if domcaps is not None:
        host += '; libvirt domain capabilities sev=%s tdx=%s' % (
            'yes' if domcaps['sev']['supported'] else 'no', 'yes' if domcaps['tdx']['supported'] else 'no')
        available = available and domcaps['tdx' if kind == 'tdx' else 'sev']['supported']
    if not available:
        raise DomainSpecError('confidential.type: %s is not available on this host (%s)' % (kind, host))
    if not (machine == 'q35' or machine.startswith('pc-q35')):
        raise DomainSpecError('confidential.type: %s needs machine q35, not %s' % (kind, machine))
    if firmware_kind != 'uefi':
        raise DomainSpecError('confidential.type: %s needs firmware uefi (OVMF)' % kind)
    policy = option.get('policy') or DEFAULT_POLICY.get(kind)
    if policy is not None and not re.match(r'^0x[0-9a-fA-F]{1,16}\Z', policy):
        raise DomainSpecError('confidential.policy: %r is not a hex number like 0x0033' % policy)
    sev = domcaps['sev'] if domcaps is not None else {'cbitpos': None, 'reduced_phys_bits': None}
    return LaunchSecurity(type=kind, policy=policy,
                          cbitpos=sev['cbitpos'] if kind != 'tdx' else None,
                          reduced_phys_bits=sev['reduced_phys_bits'] if kind != 'tdx' else None,
                          config_digest=config_digest(kind, option.get('config_digest')))


def config_digest(kind, text):
    """``sha256:<hex>`` (sev-snp host data) or ``sha384:<hex>`` (tdx mrConfigId) -> bytes, or None.

    The digest of guest_init's boot spec (``goship.json`` in GoShip canonical JSON v1, as
    goship.core.cloud_init_seed returns it in ``measurement``); see docs/confidential.md.
    """
    if text is None:
        return None
    if kind not in CONFIG_DIGEST_FIELDS:
        raise DomainSpecError('confidential.config_digest: %s measures no host-provided data; use sev-snp or tdx' % kind)
    element, algorithm, size = CONFIG_DIGEST_FIELDS[kind]
    match = CONFIG_DIGEST.match(text.lower())
    if not match or match.group(1) != algorithm or len(match.group(2)) != 2 * size:
        raise DomainSpecError('confidential.config_digest: %s takes %s:<%d hex digits> (its %s), not %r'
                              % (kind, algorithm, 2 * size, element, text))
    return bytes.fromhex(match.group(2))
