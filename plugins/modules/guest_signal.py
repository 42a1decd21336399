#!/usr/bin/python
# Copyright: Contributors to the GoShip project
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r'''
---
module: guest_signal
short_description: Send a signal to an app's replicas through guest_init
version_added: 0.1.0
description:
  - The operator's restart and kill path. Asks guest_init in the project VM, over its
    virtio-serial channel, to signal one replica of an app or all of them. There is no shell
    and no SSH into the VM; guest_init's restart policy then decides what happens next.
  - Always C(changed) when a replica was signalled; in check mode nothing is sent.
author:
  - GoShip developers (@goship)
extends_documentation_fragment:
  - goship.core.node
  - goship.core.vm_target
attributes:
  check_mode:
    support: full
    description: Checks that the app and replica exist; sends nothing.
  diff_mode:
    support: none
    description: A signal has no before and after.
options:
  app:
    description: App name.
    type: str
    required: true
  replica:
    description: Replica index; all replicas of the app when omitted.
    type: int
  signal:
    description: Signal name, with or without C(SIG).
    type: str
    default: TERM
  timeout:
    description: Seconds to wait for guest_init's answer.
    type: int
    default: 10
'''

EXAMPLES = r'''
- name: Kill replica 1 of web; guest_init restarts it by its restart policy
  goship.core.guest_signal:
    project: alpha
    node: node1
    app: web
    replica: 1
    signal: KILL
'''

RETURN = r'''
signalled:
  description: What guest_init signalled (replica indexes and pids).
  returned: when not in check mode
  type: raw
replica:
  description: The replica's status before the signal.
  returned: when O(replica) is given
  type: dict
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.goship.core.plugins.module_utils import node_args
from ansible_collections.goship.core.plugins.module_utils.guest_channel import GuestChannel, GuestChannelError, GuestError


def main():
    argument_spec = node_args.node_argument_spec()
    argument_spec.update(node_args.vm_target_argument_spec())
    argument_spec.update(
        app=dict(type='str', required=True),
        replica=dict(type='int'),
        signal=dict(type='str', default='TERM'),
        timeout=dict(type='int', default=10),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    params = module.params
    name, channel = node_args.vm_channel(module)
    result = dict(changed=False, domain=name)
    try:
        with GuestChannel(channel, timeout=float(params['timeout'])) as guest:
            app = (guest.request('status').get('apps') or {}).get(params['app'])
            if app is None:
                module.fail_json(msg='app: %s has no app %r' % (name, params['app']), **result)
            if params['replica'] is not None:
                replica = [r for r in app.get('replicas', []) if r.get('index') == params['replica']]
                if not replica:
                    module.fail_json(msg='replica: app %r has no replica %d' % (params['app'], params['replica']), **result)
                result['replica'] = replica[0]
            if not module.check_mode:
                args = {'app': params['app'], 'signal': params['signal']}
                if params['replica'] is not None:
                    args['replica'] = params['replica']
                result['signalled'] = guest.request('signal', args)['signalled']
            result['changed'] = True
    except GuestError as exc:
        module.fail_json(msg='guest_init refused signal: %s' % exc.message, code=exc.code, **result)
    except GuestChannelError as exc:
        module.fail_json(msg='guest_init of %s cannot be reached: %s' % (name, exc), **result)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
