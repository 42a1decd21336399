#!/usr/bin/python
# Copyright: Contributors to the GoShip project
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r'''
---
module: guest_status
short_description: Read the actual state of GoShip VMs from their guest_init
version_added: 0.1.0
description:
  - Asks guest_init in one project VM, or in every GoShip VM on the node, for its C(status)
    over the VM's virtio-serial channel (apps, replicas, restarts, health, observed generation).
  - Only domains that carry GoShip metadata are read. A VM that is not running or does not
    answer is reported with the reason; it does not fail the task.
author:
  - GoShip developers (@goship)
extends_documentation_fragment:
  - goship.core.node
  - goship.core.attributes.read_only
options:
  project:
    description: Read only this project's VM on the node (needs O(node)). Without it, every GoShip VM.
    type: str
  node:
    description:
      - Node name of the VMs. Without O(project), every GoShip VM of that node (several simulated
        nodes can share one libvirt); without either, every GoShip VM on the libvirt daemon.
    type: str
  timeout:
    description: Seconds to wait for each guest's answer.
    type: int
    default: 10
'''

EXAMPLES = r'''
- name: Status of every GoShip VM on this node
  goship.core.guest_status:
  register: guests

- name: Replicas of app web in project alpha
  goship.core.guest_status:
    project: alpha
    node: "{{ goship_node }}"
  register: alpha

- name: Show them
  ansible.builtin.debug:
    msg: "{{ alpha.vms[0].status.apps.web.replicas | map(attribute='state') | list }}"
'''

RETURN = r'''
vms:
  description: One entry per GoShip domain read.
  returned: always
  type: list
  elements: dict
  contains:
    domain:
      description: libvirt domain name.
      type: str
    project:
      description: Project from the domain's GoShip metadata.
      type: str
    node:
      description: Node from the domain's GoShip metadata.
      type: str
    generation:
      description: Generation in the domain's metadata (the VM definition's).
      type: int
    active:
      description: Whether the domain runs.
      type: bool
    reachable:
      description: Whether guest_init answered.
      type: bool
    status:
      description: guest_init's C(status) reply (apps, replicas, observed generation, uptime, RSS).
      type: dict
    error:
      description: Why the guest was not read.
      type: str
  sample:
    - {domain: goship-node1-alpha, project: alpha, node: node1, generation: 3, active: true, reachable: true,
       status: {generation: 3, apps: {web: {replicas: [{index: 0, state: ready, restarts: 0}]}}}}
'''


from ansible.module_utils.basic import AnsibleModule

from ansible_collections.goship.core.plugins.module_utils import domain_xml, libvirt_host, node_args
from ansible_collections.goship.core.plugins.module_utils.guest_channel import GuestChannel, GuestChannelError


def read_guest(root, vm, timeout):
    entry = dict(vm, reachable=False)
    if not vm['active']:
        entry['error'] = 'domain is not running'
        return entry
    channel = domain_xml.VmPaths.for_domain(root, vm['name']).channel
    try:
        with GuestChannel(channel, timeout=float(timeout)) as guest:
            entry['status'] = guest.request('status')
        entry['reachable'] = True
    except GuestChannelError as exc:
        entry['error'] = str(exc)
    return entry


def main():
    argument_spec = node_args.node_argument_spec()
    argument_spec.update(
        project=dict(type='str'),
        node=dict(type='str'),
        timeout=dict(type='int', default=10),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True,
                           required_by={'project': 'node'})
    params = module.params
    if params['timeout'] < 1:
        module.fail_json(msg='timeout must be >= 1')
    wanted = None
    if params['project']:
        try:
            wanted = domain_xml.domain_name(params['node'], params['project'])
        except domain_xml.DomainSpecError as exc:
            module.fail_json(msg=str(exc))
    root = node_args.state_root(module)
    conn = node_args.open_libvirt(module)
    try:
        vms = [vm for vm in libvirt_host.goship_domains(conn)
               if wanted in (None, vm['name']) and params['node'] in (None, vm['node'])]
    finally:
        conn.close()
    if wanted is not None and not vms:
        module.fail_json(msg='no GoShip domain %s on this node' % wanted)
    results = []
    for vm in vms:
        entry = read_guest(root, vm, params['timeout'])
        entry['domain'] = entry.pop('name')
        results.append(entry)
    module.exit_json(changed=False, vms=results)


if __name__ == '__main__':
    main()
