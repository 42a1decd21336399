#!/usr/bin/python
# Copyright: Contributors to the GoShip project
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r'''
---
module: guest_logs
short_description: Read the last log lines of an app's replicas through guest_init
version_added: 0.1.0
description:
  - Asks guest_init in the project VM, over its virtio-serial channel, for the newest lines
    that one replica of an app, or all of its replicas, wrote to stdout and stderr, plus
    guest_init's own notes about them (start, exit). There is no shell and no SSH into the VM.
  - guest_init keeps a bounded buffer per replica and masks the app's secret env values
    before a line is stored, so secrets never reach this module.
author:
  - GoShip developers (@goship)
extends_documentation_fragment:
  - goship.core.node
  - goship.core.vm_target
  - goship.core.attributes.read_only
options:
  app:
    description: App name.
    type: str
    required: true
  replica:
    description: Replica index; all replicas of the app, merged by time, when omitted.
    type: int
  tail:
    description: How many of the newest lines to return (0 to 5000).
    type: int
    default: 100
  timeout:
    description: Seconds to wait for guest_init's answer.
    type: int
    default: 10
'''

EXAMPLES = r'''
- name: Last 20 lines of replica 0 of web
  goship.core.guest_logs:
    project: alpha
    node: node1
    app: web
    replica: 0
    tail: 20
  register: web_logs

- name: Show them
  ansible.builtin.debug:
    msg: "{{ web_logs.lines | map(attribute='text') | list }}"
'''

RETURN = r'''
domain:
  description: libvirt domain name of the project VM.
  returned: always
  type: str
  sample: goship-node1-alpha
lines:
  description: Log lines, oldest first.
  returned: success
  type: list
  elements: dict
  contains:
    ts:
      description: When guest_init stored the line (seconds since the epoch, guest clock).
      type: float
    stream:
      description: C(stdout), C(stderr), or C(init) for guest_init's notes about the replica.
      type: str
    replica:
      description: Replica index.
      type: int
    text:
      description: The line, without its newline.
      type: str
  sample:
    - {ts: 1733330000.5, stream: stdout, replica: 0, text: serving on port 8080}
truncated:
  description: Whether guest_init left out older lines to keep its answer under its size limit.
  returned: success
  type: bool
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.goship.core.plugins.module_utils import node_args
from ansible_collections.goship.core.plugins.module_utils.guest_channel import GuestChannel, GuestChannelError, GuestError

MAX_TAIL = 5000


def main():
    argument_spec = node_args.node_argument_spec()
    argument_spec.update(node_args.vm_target_argument_spec())
    argument_spec.update(
        app=dict(type='str', required=True),
        replica=dict(type='int'),
        tail=dict(type='int', default=100),
        timeout=dict(type='int', default=10),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    params = module.params
    if not 0 <= params['tail'] <= MAX_TAIL:
        module.fail_json(msg='tail: must be from 0 to %d' % MAX_TAIL)
    name, channel = node_args.vm_channel(module)
    result = dict(changed=False, domain=name)
    args = {'app': params['app'], 'tail': params['tail']}
    if params['replica'] is not None:
        args['replica'] = params['replica']
    try:
        with GuestChannel(channel, timeout=float(params['timeout'])) as guest:
            answer = guest.request('logs', args)
    except GuestError as exc:
        module.fail_json(msg='guest_init refused logs: %s' % exc.message, code=exc.code, **result)
    except GuestChannelError as exc:
        module.fail_json(msg='guest_init of %s cannot be reached: %s' % (name, exc), **result)
    module.exit_json(lines=answer.get('lines') or [], truncated=bool(answer.get('truncated')), **result)


if __name__ == '__main__':
    main()
