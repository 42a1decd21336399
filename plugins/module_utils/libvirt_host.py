# Copyright: Contributors to the GoShip project
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""What libvirt says about a host: versions, machine types, confidential-VM support from the
domain capabilities, and what GoShip's own domains already take.

Parsers take XML text so unit tests need no daemon; ``collect`` ties them to a connection.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from ansible_collections.goship.core.plugins.module_utils.domain_xml import GOSHIP_XMLNS as GOSHIP_NS

VIR_ERR_NO_DOMAIN = 42  # libvirt.VIR_ERR_NO_DOMAIN


def decode_version(number):
    """libvirt encodes versions as major * 1,000,000 + minor * 1,000 + release."""
    return '%d.%d.%d' % (number // 1000000, number // 1000 % 1000, number % 1000)


def _int(element, path):
    found = element.find(path) if element is not None else None
    return int(found.text) if found is not None and found.text else None


def parse_domain_capabilities(xml_text):
    """Confidential-computing features from ``virConnectGetDomainCapabilities``."""
    root = ET.fromstring(xml_text)
    features = root.find('features')
    sev = features.find('sev') if features is not None else None
    tdx = features.find('tdx') if features is not None else None
    sev_supported = sev is not None and sev.get('supported') == 'yes'
    return {
        'machine': root.findtext('machine'),
        'sev': {
            'supported': sev_supported,
            'cbitpos': _int(sev, 'cbitpos') if sev_supported else None,
            'reduced_phys_bits': _int(sev, 'reducedPhysBits') if sev_supported else None,
            'max_guests': _int(sev, 'maxGuests') if sev_supported else None,
            'max_es_guests': _int(sev, 'maxESGuests') if sev_supported else None,
        },
        'tdx': {'supported': tdx is not None and tdx.get('supported') == 'yes'},
    }


def parse_machine_types(capabilities_xml, arch='x86_64'):
    """Machine types QEMU offers for ``arch``, canonical names included, sorted and unique."""
    root = ET.fromstring(capabilities_xml)
    machines = set()
    for guest in root.findall('guest'):
        arch_el = guest.find('arch')
        if arch_el is None or arch_el.get('name') != arch:
            continue
        for machine in arch_el.iter('machine'):
            if machine.text:
                machines.add(machine.text)
            if machine.get('canonical'):
                machines.add(machine.get('canonical'))
    return sorted(machines)


def parse_machine_aliases(capabilities_xml, arch='x86_64'):
    """``{alias: canonical}``, e.g. ``{'pc': 'pc-i440fx-7.2', 'q35': 'pc-q35-7.2'}``."""
    root = ET.fromstring(capabilities_xml)
    aliases = {}
    for arch_el in root.findall('guest/arch'):
        if arch_el.get('name') != arch:
            continue
        for machine in arch_el.iter('machine'):
            if machine.text and machine.get('canonical'):
                aliases[machine.text] = machine.get('canonical')
    return aliases


def parse_goship_domain(xml_text):
    """GoShip's view of a domain: None unless it carries GoShip metadata."""
    root = ET.fromstring(xml_text)
    meta = root.find('metadata/{%s}vm' % GOSHIP_NS)
    if meta is None:
        return None
    memory = root.find('memory')
    unit = memory.get('unit', 'KiB') if memory is not None else 'KiB'
    scale = {'KiB': 1.0 / 1024, 'MiB': 1, 'GiB': 1024, 'b': 1.0 / 1048576, 'bytes': 1.0 / 1048576}.get(unit, 1.0 / 1024)
    generation = meta.findtext('{%s}generation' % GOSHIP_NS)
    return {
        'name': root.findtext('name'),
        'project': meta.findtext('{%s}project' % GOSHIP_NS),
        'node': meta.findtext('{%s}node' % GOSHIP_NS),
        'generation': int(generation) if generation and generation.isdigit() else None,
        'vcpus': int(root.findtext('vcpu') or 0),
        'memory_mib': int(int(memory.text) * scale) if memory is not None else 0,
    }


def goship_domains(conn):
    """Every defined domain that carries GoShip metadata, with its state; nothing else.

    A domain undefined between the listing and the reading (by a run for another simulated node
    on the same libvirtd, or by any other tool) is left out instead of failing the caller.
    """
    domains = []
    for dom in conn.listAllDomains():
        try:
            xml, active = dom.XMLDesc(0), bool(dom.isActive())
        except Exception as exc:  # libvirt.libvirtError; this module does not import libvirt
            if getattr(exc, 'get_error_code', lambda: None)() == VIR_ERR_NO_DOMAIN:
                continue
            raise
        info = parse_goship_domain(xml)
        if info is not None:
            info['active'] = active
            domains.append(info)
    return sorted(domains, key=lambda item: item['name'])


def collect(conn, virt_type):
    """Libvirt facts for ``host_info``: versions, machine types, confidential support, GoShip usage."""
    domcaps = parse_domain_capabilities(conn.getDomainCapabilities(None, 'x86_64', None, virt_type, 0))
    domains = goship_domains(conn)
    return {
        'libvirt_version': decode_version(conn.getLibVersion()),
        'qemu_version': decode_version(conn.getVersion()),
        'uri': conn.getURI(),
        'virt_type': virt_type,
        'default_machine': domcaps['machine'],
        'machine_types': parse_machine_types(conn.getCapabilities()),
        'sev': domcaps['sev'],
        'tdx': domcaps['tdx'],
        'goship_domains': domains,
    }
