#!/usr/bin/python
# Copyright: Contributors to the GoShip project
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r'''
---
module: guest_apps
short_description: Push a project VM's desired app set to its guest_init and wait for it
version_added: 0.1.0
description:
  - Sends the full app set with its generation to guest_init over the VM's virtio-serial
    channel (C(apply)), then waits, within O(timeout), until guest_init has observed that
    generation and every app runs its replicas (or has them ready, with O(wait_for=ready)).
  - guest_init applies a diff, so an unchanged app keeps its running replicas. Whether anything
    changes is asked of guest_init first with a dry run, so C(changed) is the same in check
    mode (where nothing is pushed) and in a real run.
  - "Env values marked secret (C({value: ..., secret: true})) reach the guest but never the
    module's output or C(--diff)."
author:
  - GoShip developers (@goship)
extends_documentation_fragment:
  - goship.core.node
  - goship.core.vm_target
attributes:
  check_mode:
    support: full
    description: Asks guest_init what would change (dry run) and pushes nothing.
  diff_mode:
    support: full
    description: Shows the generation and each app's replica count and spec, before and after; secrets masked.
options:
  generation:
    description: Generation of this app set; guest_init refuses an older one unless O(force=true).
    type: int
    required: true
  apps:
    description:
      - The complete app set, in guest_init's app spec (see docs/guest_init.md). Apps not listed are stopped.
    type: list
    elements: dict
    required: true
  force:
    description: Apply even when O(generation) is older than the guest's.
    type: bool
    default: false
  wait:
    description: Wait for the apps to converge.
    type: bool
    default: true
  wait_for:
    description: What converged means for each replica.
    type: str
    choices: [running, ready]
    default: running
  timeout:
    description: Seconds to wait for convergence.
    type: int
    default: 300
'''

EXAMPLES = r'''
- name: Two replicas of web in project alpha, ready
  goship.core.guest_apps:
    project: alpha
    node: "{{ goship_node }}"
    generation: 4
    wait_for: ready
    apps:
      - name: web
        image: demo-web
        replicas: 2
        ports: [8080]
        env:
          GREETING: hello
          API_KEY: {value: "{{ vault_api_key }}", secret: true}
        health:
          readiness: {http: {path: /}, interval_s: 1}
'''

RETURN = r'''
changes:
  description: What guest_init changed (or would change in check mode), app names by kind.
  returned: always
  type: dict
  sample: {added: [], changed: [web], scaled: [], removed: [], unchanged: [db]}
apps:
  description: Per app, desired replicas and how many run and are ready.
  returned: always
  type: dict
  sample: {web: {desired: 2, running: 2, ready: 2}}
status:
  description: guest_init's C(status) after the apply (before, in check mode).
  returned: always
  type: dict
'''

import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.goship.core.plugins.module_utils import nocloud_seed, node_args
from ansible_collections.goship.core.plugins.module_utils.difference import DifferenceTracker
from ansible_collections.goship.core.plugins.module_utils.guest_channel import GuestChannel, GuestChannelError, GuestError

CHANGE_KINDS = ('added', 'changed', 'scaled', 'removed')
POLL_S = 0.5


def replica_counts(status, wait_for):
    counts = {}
    for name, app in (status.get('apps') or {}).items():
        if app.get('removed'):
            continue
        replicas = [r for r in app.get('replicas', []) if r.get('spec_hash', app.get('spec_hash')) == app.get('spec_hash')]
        counts[name] = {
            'desired': app.get('desired_replicas'),
            'running': sum(1 for r in replicas if r.get('state') in ('running', 'ready')),
            'ready': sum(1 for r in replicas if r.get('state') == 'ready'),
        }
    return counts


def converged(status, generation, wait_for):
    if status.get('generation') != generation or not status.get('converged'):
        return False
    return all(count[wait_for] == count['desired'] for count in replica_counts(status, wait_for).values())


def waiting_for(status, wait_for):
    """Human summary of what has not converged yet, with each replica's last error."""
    parts = []
    for name, app in (status.get('apps') or {}).items():
        for replica in app.get('replicas', []):
            if replica.get('state') not in (('ready',) if wait_for == 'ready' else ('running', 'ready')):
                parts.append('%s[%s] %s%s' % (name, replica.get('index'), replica.get('state'),
                                              ': %s' % replica['last_error'] if replica.get('last_error') else ''))
    return '; '.join(parts) or 'generation %s not observed yet' % status.get('generation')


def app_summary(apps):
    return dict((app.get('name'), {'replicas': app.get('replicas'), 'image': app.get('image')}) for app in apps)


def track(tracker, status, params, changes):
    tracker.add('generation', status.get('generation'), params['generation'])
    current = dict((name, {'replicas': app.get('desired_replicas'), 'spec_hash': app.get('spec_hash')})
                   for name, app in (status.get('apps') or {}).items() if not app.get('removed'))
    desired = app_summary(params['apps'])
    for kind in CHANGE_KINDS:
        for name in changes.get(kind, []):
            tracker.add('apps.%s' % name, current.get(name), desired.get(name) if kind != 'removed' else None)


def main():
    argument_spec = node_args.node_argument_spec()
    argument_spec.update(node_args.vm_target_argument_spec())
    argument_spec.update(
        generation=dict(type='int', required=True),
        apps=dict(type='list', elements='dict', required=True),
        force=dict(type='bool', default=False),
        wait=dict(type='bool', default=True),
        wait_for=dict(type='str', choices=['running', 'ready'], default='running'),
        timeout=dict(type='int', default=300),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    params = module.params
    module.no_log_values.update(nocloud_seed.secret_values(params['apps']))
    if params['generation'] < 0:
        module.fail_json(msg='generation must be >= 0')
    if params['timeout'] < 1:
        module.fail_json(msg='timeout must be >= 1')
    name, channel_path = node_args.vm_channel(module)
    apply_args = {'generation': params['generation'], 'apps': params['apps'], 'force': params['force']}
    try:
        with GuestChannel(channel_path, timeout=30.0) as guest:
            status = guest.request('status')
            changes = guest.request('apply', dict(apply_args, dry_run=True))['changes']
            tracker = DifferenceTracker()
            track(tracker, status, params, changes)
            result = dict(changed=tracker.has_differences, changes=changes, domain=name)
            if module._diff:
                result['diff'] = tracker.diff(name)
            if not module.check_mode:
                if tracker.has_differences:
                    guest.request('apply', apply_args)
                deadline = time.monotonic() + params['timeout']
                status = guest.request('status')
                while params['wait'] and not converged(status, params['generation'], params['wait_for']):
                    if time.monotonic() > deadline:
                        module.fail_json(msg='apps of %s did not converge within %d s: %s'
                                         % (name, params['timeout'], waiting_for(status, params['wait_for'])),
                                         status=status, **result)
                    time.sleep(POLL_S)
                    status = guest.request('status')
    except GuestError as exc:
        module.fail_json(msg='guest_init refused %s: %s' % (exc.op, exc.message), code=exc.code, domain=name)
    except GuestChannelError as exc:
        module.fail_json(msg='guest_init of %s cannot be reached at %s: %s' % (name, channel_path, exc), domain=name)
    result.update(status=status, apps=replica_counts(status, params['wait_for']))
    module.exit_json(**result)


if __name__ == '__main__':
    main()
