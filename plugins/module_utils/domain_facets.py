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

import xml.etree.ElementTree as ET

from ansible_collections.goship.core.plugins.module_utils.domain_xml import GOSHIP_XMLNS

_UNIT_KIB = {'b': 1.0 / 1024, 'bytes': 1.0 / 1024, 'KiB': 1, 'k': 1, 'K': 1, 'MiB': 1024, 'M': 1024,
             'GiB': 1024 * 1024, 'G': 1024 * 1024}

# Facets libvirt can change on a running domain without a restart.
LIVE_FACETS = ('metadata.generation',)


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
        'os.kernel': _text(root, 'os/kernel'),
        'os.initrd': _text(root, 'os/initrd'),
        'os.cmdline': _text(root, 'os/cmdline'),
        'os.loader': _text(root, 'os/loader'),
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
    for channel in devices.findall('channel') if devices is not None else ():
        result['channel.%s' % _attr(channel, 'target', 'name')] = _attr(channel, 'source', 'path')
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
        if key.startswith('disk.') or key.startswith('channel.'):
            tracker.add(key, actual.get(key), desired.get(key))
        elif desired.get(key) is not None:
            tracker.add(key, actual.get(key), desired[key])
    return tracker
