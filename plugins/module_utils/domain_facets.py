# Copyright: Contributors to the GoShip project
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The parts of a domain's XML that GoShip owns, in a form that compares semantically.

libvirt rewrites what it is given: units become KiB, machine aliases become versioned
machine types, PCI and virtio-serial addresses, controllers, MAC addresses, a CPU model,
input devices and the emulator path are added. Comparing text would report a change on
every run. Instead both the rendered XML and libvirt's inactive XML are reduced to the same
flat mapping of owned facets; a facet the desired XML leaves unset (``None``) is not compared,
because libvirt chooses it.
"""

from __future__ import annotations

import base64
import xml.etree.ElementTree as ET

from ansible_collections.goship.core.plugins.module_utils.domain_xml import GOSHIP_XMLNS, QEMU_XMLNS, format_cpuset, parse_cpuset

_UNIT_KIB = {'b': 1.0 / 1024, 'bytes': 1.0 / 1024, 'KiB': 1, 'k': 1, 'K': 1, 'MiB': 1024, 'M': 1024,
             'GiB': 1024 * 1024, 'G': 1024 * 1024}

# Facets libvirt can change on a running domain without a restart.
LIVE_FACETS = ('metadata.generation',)
# Facets of elements GoShip owns whole: present on one side only is a difference too.
OWNED_PREFIXES = ('disk.', 'channel.', 'cputune.', 'numatune.', 'memory_backing.', 'interface.', 'qemu.',
                  'launch_security', 'os.loader', 'os.nvram')
# Compared only when the desired XML sets them (libvirt picks one otherwise, and GoShip keeps it).
CHOSEN_BY_LIBVIRT_SUFFIXES = ('.mac',)


def _kib(element):
    if element is None or element.text is None:
        return None
    return int(int(element.text) * _UNIT_KIB.get(element.get('unit', 'KiB'), 1))


def _attr(root, path, name):
    element = root.find(path)
    return element.get(name) if element is not None else None


def _text(root, path):
    element = root.find(path)
    return element.text.strip() if element is not None and element.text else None


def _serial_log(devices):
    """Console log path, whether written as a file serial or as a pty serial with <log>."""
    serial = devices.find('serial') if devices is not None else None
    if serial is None:
        return None
    log = serial.find('log')
    if log is not None:
        return log.get('file')
    return _attr(serial, 'source', 'path')


def _cpuset(text):
    """Canonical cpuset text, so '0,1' and '0-1' compare equal."""
    return format_cpuset(parse_cpuset(text)) if text else None


def _tuning(root, result):
    for pin in root.findall('cputune/vcpupin'):
        result['cputune.vcpupin.%s' % pin.get('vcpu')] = _cpuset(pin.get('cpuset'))
    result['cputune.emulatorpin'] = _cpuset(_attr(root, 'cputune/emulatorpin', 'cpuset'))
    memory = root.find('numatune/memory')
    if memory is not None:
        result['numatune.memory'] = '%s:%s' % (memory.get('mode', 'strict'), _cpuset(memory.get('nodeset')))
    backing = root.find('memoryBacking')
    if backing is not None:
        page = backing.find('hugepages/page')
        if page is not None:
            result['memory_backing.hugepages_kib'] = _kib_attr(page.get('size'), page.get('unit', 'KiB'))
        elif backing.find('hugepages') is not None:
            result['memory_backing.hugepages_kib'] = 'default'
        result['memory_backing.locked'] = True if backing.find('locked') is not None else None
    result['memory_backing.hard_limit_kib'] = _kib(root.find('memtune/hard_limit'))


def _kib_attr(value, unit):
    return int(int(value) * _UNIT_KIB.get(unit, 1)) if value else None


def _interfaces(devices, result):
    """libvirt-managed NICs by position; the MAC is a facet of its own (see CHOSEN_BY_LIBVIRT_SUFFIXES)."""
    for index, nic in enumerate(devices.findall('interface') if devices is not None else ()):
        prefix = 'interface.%d' % index
        result[prefix + '.type'] = nic.get('type')
        result[prefix + '.network'] = _attr(nic, 'source', 'network')
        result[prefix + '.model'] = _attr(nic, 'model', 'type')
        result[prefix + '.mac'] = _attr(nic, 'mac', 'address')


def _launch_security(root):
    sec = root.find('launchSecurity')
    if sec is None:
        return None
    parts = [sec.get('type')]
    for name in ('cbitpos', 'reducedPhysBits', 'policy'):
        value = _text(sec, name)
        if value is not None:
            parts.append('%s=%s' % (name, int(value, 0)))
    for name in ('hostData', 'mrConfigId'):  # the measured configuration, compared as bytes (base64 varies in padding/wrapping)
        value = _text(sec, name)
        if value is not None:
            parts.append('%s=%s' % (name, _base64_hex(value)))
    return ' '.join(parts)


def _base64_hex(text):
    try:
        return base64.b64decode(''.join(text.split()), validate=True).hex()
    except (ValueError, TypeError):
        return text


def mac_addresses(xml_text, nic_type='network'):
    """MACs of the domain's ``<interface type=nic_type>`` elements, in order (to keep them on redefinition)."""
    root = ET.fromstring(xml_text)
    return [_attr(nic, 'mac', 'address') for nic in root.findall("devices/interface[@type='%s']" % nic_type)]


def facets(xml_text):
    """Flat ``{facet: value}`` of what GoShip owns in a domain XML document."""
    root = ET.fromstring(xml_text)
    meta = root.find('metadata/{%s}vm' % GOSHIP_XMLNS)
    devices = root.find('devices')
    cpu = root.find('cpu')
    topology = cpu.find('topology') if cpu is not None else None
    result = {
        'type': root.get('type'),
        'name': _text(root, 'name'),
        'metadata.project': meta.findtext('{%s}project' % GOSHIP_XMLNS) if meta is not None else None,
        'metadata.node': meta.findtext('{%s}node' % GOSHIP_XMLNS) if meta is not None else None,
        'metadata.generation': meta.findtext('{%s}generation' % GOSHIP_XMLNS) if meta is not None else None,
        'memory_kib': _kib(root.find('memory')),
        'vcpus': _text(root, 'vcpu'),
        'cpu.mode': cpu.get('mode') if cpu is not None else None,
        'cpu.model': _text(cpu, 'model') if cpu is not None else None,
        'cpu.topology': ('%s/%s/%s' % (topology.get('sockets'), topology.get('cores'), topology.get('threads'))
                         if topology is not None else None),
        'os.machine': _attr(root, 'os/type', 'machine'),
        # '' rather than None when absent: a disk-image boot has no kernel, and that is compared.
        'os.kernel': _text(root, 'os/kernel') or '',
        'os.initrd': _text(root, 'os/initrd') or '',
        'os.cmdline': _text(root, 'os/cmdline') or '',
        'os.loader': _text(root, 'os/loader'),
        'os.nvram': _text(root, 'os/nvram'),
        'launch_security': _launch_security(root),
        'features': ','.join(sorted(child.tag for child in root.find('features') or [])) or None,
        'on_poweroff': _text(root, 'on_poweroff'),
        'on_reboot': _text(root, 'on_reboot'),
        'on_crash': _text(root, 'on_crash'),
        'console_log': _serial_log(devices),
        'memballoon': _attr(devices, 'memballoon', 'model') if devices is not None else None,
        'rng': 'virtio' if devices is not None and devices.find('rng') is not None else 'none',
        'seclabel': _text(root, "seclabel[@model='dac']/label"),
    }
    for disk in devices.findall('disk') if devices is not None else ():
        prefix = 'disk.%s' % _attr(disk, 'target', 'dev')
        result[prefix + '.source'] = _attr(disk, 'source', 'file') or _attr(disk, 'source', 'dev')
        result[prefix + '.format'] = _attr(disk, 'driver', 'type')
        result[prefix + '.bus'] = _attr(disk, 'target', 'bus')
        result[prefix + '.readonly'] = disk.find('readonly') is not None
        result[prefix + '.serial'] = _text(disk, 'serial')
        result[prefix + '.cache'] = _attr(disk, 'driver', 'cache')
        if disk.get('type') == 'volume':
            result[prefix + '.source'] = '%s/%s' % (_attr(disk, 'source', 'pool'), _attr(disk, 'source', 'volume'))
    for channel in devices.findall('channel') if devices is not None else ():
        result['channel.%s' % _attr(channel, 'target', 'name')] = _attr(channel, 'source', 'path')
    _tuning(root, result)
    _interfaces(devices, result)
    args = [arg.get('value') for arg in root.findall('{%s}commandline/{%s}arg' % (QEMU_XMLNS, QEMU_XMLNS))]
    result['qemu.commandline'] = ' '.join(args) if args else None
    return result


def canonical_machine(machine, aliases):
    """``pc`` -> ``pc-i440fx-7.2`` when libvirt's capabilities say so."""
    return aliases.get(machine, machine)


def compare(tracker, desired_xml, actual_xml, machine_aliases=None):
    """Record in ``tracker`` every owned facet where libvirt's XML differs from the desired XML."""
    desired = facets(desired_xml)
    actual = facets(actual_xml)
    if desired.get('os.machine'):
        desired['os.machine'] = canonical_machine(desired['os.machine'], machine_aliases or {})
    for key in sorted(set(desired) | set(actual)):
        if key.endswith(CHOSEN_BY_LIBVIRT_SUFFIXES):
            if desired.get(key) is not None:
                tracker.add(key, actual.get(key), desired[key])
        elif key.startswith(OWNED_PREFIXES):
            tracker.add(key, actual.get(key), desired.get(key))
        elif desired.get(key) is not None:
            tracker.add(key, actual.get(key), desired[key])
    return tracker
