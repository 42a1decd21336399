#!/usr/bin/python
# Copyright: Contributors to the GoShip project
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r'''
---
module: host_info
short_description: Facts about a GoShip node that a scheduler and an operator need
version_added: 0.1.0
description:
  - CPU model and topology (sockets, cores, threads, NUMA cells), memory and hugepages.
  - Whether KVM is present B(and) runs guest code, found by a time-limited probe, since a
    C(/dev/kvm) that exists can still hang on the first vCPU run. The probe result is cached per boot.
  - Nested virtualization, IOMMU, and SEV / SEV-ES / SEV-SNP / TDX from sysfs and from libvirt's
    domain capabilities (C(cbitpos), C(reducedPhysBits), guest limits).
  - libvirt and QEMU versions, machine types, and the capacity left after GoShip's VMs
    (domains that carry GoShip metadata; other domains are listed as neither GoShip's nor counted).
author:
  - GoShip developers (@goship)
extends_documentation_fragment:
  - goship.core.node
  - goship.core.attributes.read_only
options:
  probe_kvm:
    description: Run the KVM probe. With V(false), KVM counts as unusable.
    type: bool
    default: true
  probe_timeout:
    description: Seconds the KVM probe may take before KVM counts as hanging.
    type: int
    default: 10
  reserved_memory_mib:
    description: Host memory kept out of the capacity left for VMs.
    type: int
    default: 1024
'''

EXAMPLES = r'''
- name: Read node facts
  goship.core.host_info:
  register: node

- name: Show what the node can run
  ansible.builtin.debug:
    msg: >-
      {{ node.host.cpu.logical_cpus }} CPUs, {{ node.host.capacity.memory_mib_free }} MiB free,
      accelerator {{ node.host.accelerator.type }}, SEV-SNP {{ node.host.confidential.sev_snp }}
'''

RETURN = r'''
host:
  description: The node's facts; also set as the fact C(goship_host).
  returned: always
  type: dict
  contains:
    cpu:
      description: Model, vendor, logical CPUs, sockets, cores_per_socket, threads_per_core, virtualization extension.
      type: dict
    numa:
      description: NUMA cells with their CPUs and memory.
      type: list
      elements: dict
    memory:
      description: total_mib, available_mib and hugepages by page size in KiB.
      type: dict
    accelerator:
      description: C(type) (C(kvm) or C(qemu) for TCG) and the probe's C(reason).
      type: dict
    virtualization:
      description: kvm_device, kvm_module, nested, iommu.
      type: dict
    confidential:
      description: sev, sev_es, sev_snp, tdx booleans (kernel and libvirt must both agree) and libvirt's SEV parameters.
      type: dict
    libvirt:
      description: libvirt and QEMU versions, URI, default machine, machine types.
      type: dict
    goship_vms:
      description: GoShip domains on this node with project, node, generation, vcpus, memory and whether active.
      type: list
      elements: dict
    capacity:
      description: vcpus_total, vcpus_allocated, vcpus_free, memory_mib_total, memory_mib_allocated, memory_mib_free.
      type: dict
  sample:
    accelerator: {type: qemu, reason: "KVM probe timed out after 10 s"}
    capacity: {vcpus_total: 2, vcpus_allocated: 1, vcpus_free: 1, memory_mib_total: 24000, memory_mib_allocated: 512, memory_mib_free: 22464}
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.goship.core.plugins.module_utils import accel, host_facts, libvirt_host, node_args


def confidential_facts(kernel, sev, tdx):
    """A mode counts as supported only when the kernel enables it and libvirt can drive it."""
    return {
        'sev': bool(kernel['sev'] and sev['supported']),
        'sev_es': bool(kernel['sev_es'] and sev['supported'] and sev['max_es_guests']),
        'sev_snp': bool(kernel['sev_snp'] and sev['supported']),
        'tdx': bool(kernel['tdx'] and tdx['supported']),
        'kernel': kernel,
        'libvirt_sev': sev,
    }


def capacity(cpu, memory, domains, reserved_mib):
    vcpus = sum(dom['vcpus'] for dom in domains)
    mem = sum(dom['memory_mib'] for dom in domains)
    return {
        'vcpus_total': cpu['logical_cpus'],
        'vcpus_allocated': vcpus,
        'vcpus_free': max(0, cpu['logical_cpus'] - vcpus),
        'memory_mib_total': memory['total_mib'],
        'memory_mib_allocated': mem,
        'memory_mib_free': max(0, memory['total_mib'] - reserved_mib - mem),
    }


def main():
    argument_spec = node_args.node_argument_spec()
    argument_spec.update(
        probe_kvm=dict(type='bool', default=True),
        probe_timeout=dict(type='int', default=10),
        reserved_memory_mib=dict(type='int', default=1024),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    if module.params['probe_timeout'] < 1:
        module.fail_json(msg='probe_timeout must be at least 1 second')

    cpu = host_facts.cpu_facts()
    memory = host_facts.memory_facts()
    virtualization = host_facts.virtualization_facts()
    if module.params['probe_kvm']:
        choice = accel.choose(node_args.state_root(module), timeout=module.params['probe_timeout'])
        accelerator = {'type': choice.virt_type, 'reason': choice.reason}
    else:
        accelerator = {'type': 'qemu', 'reason': 'probe_kvm is false'}

    conn = node_args.open_libvirt(module)
    try:
        libvirt_facts = libvirt_host.collect(conn, accelerator['type'])
    finally:
        conn.close()
    domains = libvirt_facts.pop('goship_domains')
    confidential = confidential_facts(virtualization.pop('confidential'), libvirt_facts.pop('sev'), libvirt_facts.pop('tdx'))

    host = {
        'cpu': cpu,
        'numa': host_facts.numa_facts(),
        'memory': memory,
        'accelerator': accelerator,
        'virtualization': virtualization,
        'confidential': confidential,
        'libvirt': libvirt_facts,
        'goship_vms': domains,
        'capacity': capacity(cpu, memory, domains, module.params['reserved_memory_mib']),
    }
    module.exit_json(changed=False, host=host, ansible_facts={'goship_host': host})


if __name__ == '__main__':
    main()
