# Copyright: Contributors to the GoShip project
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Argument spec and connection handling shared by the node modules (see doc_fragments/node.py)."""

from __future__ import annotations

import os

try:
    import libvirt
    HAS_LIBVIRT = True
    LIBVIRT_IMPORT_ERROR = None
except ImportError as exc:  # pragma: no cover - depends on the node
    HAS_LIBVIRT = False
    LIBVIRT_IMPORT_ERROR = exc

DEFAULT_STATE_ROOT = '/var/lib/goship'


def node_argument_spec():
    return dict(
        uri=dict(type='str', default='qemu:///system'),
        state_root=dict(type='path'),
    )


def vm_target_argument_spec():
    """``project`` and ``node`` of one project VM (doc fragment goship.core.vm_target)."""
    return dict(project=dict(type='str', required=True), node=dict(type='str', required=True))


def vm_channel(module):
    """(domain name, path of its guest_init channel socket), or fail_json on a bad name."""
    from ansible_collections.goship.core.plugins.module_utils import domain_xml
    try:
        name = domain_xml.domain_name(module.params['node'], module.params['project'])
    except domain_xml.DomainSpecError as exc:
        module.fail_json(msg=str(exc))
    return name, domain_xml.VmPaths.for_domain(state_root(module), name).channel


def state_root(module):
    return module.params['state_root'] or os.environ.get('GOSHIP_STATE_ROOT') or DEFAULT_STATE_ROOT


def open_libvirt(module):
    """A libvirt connection, or fail_json naming the URI; needs libvirt-python on the node."""
    if not HAS_LIBVIRT:
        from ansible.module_utils.basic import missing_required_lib
        module.fail_json(msg=missing_required_lib('libvirt-python'), exception=str(LIBVIRT_IMPORT_ERROR))
    try:
        return libvirt.open(module.params['uri'])
    except libvirt.libvirtError as exc:
        module.fail_json(msg='uri: cannot connect to libvirt at %s: %s' % (module.params['uri'], exc))
