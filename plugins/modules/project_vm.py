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
    description: QEMU machine type or alias (C(pc), C(q35), a versioned type).
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

- name: Remove the VM and everything GoShip kept for it
  goship.core.project_vm:
    project: alpha
    node: node1
    state: absent
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

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.goship.core.plugins.module_utils import accel, domain_facets, domain_xml, host_facts, libvirt_host, node_args
from ansible_collections.goship.core.plugins.module_utils.difference import DifferenceTracker
from ansible_collections.goship.core.plugins.module_utils.guest_channel import GuestChannel, GuestChannelError, wait_for_hello

try:
    import libvirt
except ImportError:  # pragma: no cover - reported by node_args.open_libvirt
    libvirt = None

STATE_NAMES = {1: 'running', 2: 'blocked', 3: 'paused', 4: 'shutdown', 5: 'shut off', 6: 'crashed', 7: 'pmsuspended'}
IMAGE_FILES = ('vmlinuz', 'initrd.img', 'rootfs.squashfs')
SERIAL_RE = re.compile(r'^[A-Za-z0-9_-]{1,20}$')


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
    for name in ('shutdown_timeout', 'guest_timeout'):
        if params[name] < 1:
            module.fail_json(msg='%s must be >= 1' % name)


def image_paths(module, root):
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


def build_spec(module, root, virt_type):
    params = module.params
    image = image_paths(module, root)
    name = domain_xml.domain_name(params['node'], params['project'])
    topology = params['topology']
    try:
        return domain_xml.DomainSpec(
            node=params['node'], project=params['project'], generation=params['generation'],
            kernel=image['vmlinuz'], initrd=image['initrd.img'],
            paths=domain_xml.VmPaths.for_domain(root, name),
            memory_mib=params['memory_mib'], vcpus=params['vcpus'],
            topology=domain_xml.CpuTopology(**topology) if topology else None,
            virt_type=virt_type, machine=params['machine'], cpu_model=params['cpu_model'],
            disks=(domain_xml.Disk(source=image['rootfs.squashfs']),) + extra_disks(module),
            kernel_args=tuple(params['kernel_args']),
        )
    except domain_xml.DomainSpecError as exc:
        module.fail_json(msg=str(exc))


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


def ensure_absent(module, conn, root, name, dom, result):
    vm_dir = os.path.join(root, 'vms', name)
    if dom is not None:
        result['differences'] = [{'item': 'domain', 'before': name, 'after': None}]
    if module._diff:
        result['diff'] = {'before': 'domain: %s\n' % (name if dom else ''), 'after': ''}
    result['changed'] = dom is not None or os.path.isdir(vm_dir)
    if module.check_mode or not result['changed']:
        return
    if dom is not None:
        if dom.isActive():
            dom.destroy()
        dom.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_NVRAM | libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE
                          | libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA)
    remove_state_dir(root, name)
    result['state'] = 'absent'


def converge(module, conn, root, spec, dom, result):
    params = module.params
    desired_xml = domain_xml.render(spec)
    tracker = DifferenceTracker()
    if dom is None:
        tracker.add('domain', None, spec.name)
    else:
        aliases = libvirt_host.parse_machine_aliases(conn.getCapabilities())
        domain_facets.compare(tracker, desired_xml, dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE), aliases)
    active = dom is not None and bool(dom.isActive())
    needs_restart = active and any(name not in domain_facets.LIVE_FACETS for name in tracker.names)
    want_running = params['state'] == 'running'
    start = want_running and not active
    restart = want_running and needs_restart and params['restart_on_change']
    stop = params['state'] == 'stopped' and active
    result.update(
        differences=tracker.differences(),
        restart_required=needs_restart and not restart and not stop,
        changed=tracker.has_differences or start or restart or stop,
        paths={'state_dir': spec.paths.directory, 'channel': spec.paths.channel, 'console_log': spec.paths.console_log},
    )
    if module._diff:
        result['diff'] = tracker.diff(spec.name)
    if module.check_mode:
        return
    ensure_vm_dir(spec.paths.directory)
    if tracker.has_differences:
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
        spec = build_spec(module, root, virt_type['type'])
    conn = node_args.open_libvirt(module)
    try:
        dom = lookup(conn, name)
        if dom is not None and domain_facets.facets(dom.XMLDesc(0))['metadata.project'] is None:
            module.fail_json(msg='domain %s exists but carries no GoShip metadata; GoShip never touches it' % name)
        result = dict(changed=False, domain=name, state=state_name(dom), differences=[], restart_required=False)
        if module.params['state'] == 'absent':
            ensure_absent(module, conn, root, name, dom, result)
        else:
            result['virt_type'] = virt_type
            converge(module, conn, root, spec, dom, result)
    except libvirt.libvirtError as exc:
        module.fail_json(msg='libvirt: %s' % exc, domain=name)
    finally:
        conn.close()
    module.exit_json(**result)


if __name__ == '__main__':
    main()
