#!/usr/bin/python
# Copyright: Contributors to the GoShip project
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r'''
---
module: cloud_init_seed
short_description: Write a NoCloud C(cidata) seed ISO for a project VM
version_added: 0.1.0
description:
  - Writes an ISO 9660 image labelled C(cidata) with C(meta-data), C(user-data), an optional
    C(network-config) and, for GoShip's own guest image, C(goship.json) (project identity,
    generation and the initial app set that guest_init starts before the host connects).
  - The same seed serves a stock cloud image whose PID 1 is systemd. With O(guest_init_archive)
    the user-data installs guest_init there and starts it as the service C(goship-guest-init).
  - Documents are written as canonical JSON, so equal input gives byte-equal files. The ISO is
    rewritten only when a file in it would change, and atomically.
  - Values marked secret in O(goship) (a mapping with C(secret=true) and a C(value)) are
    masked in the module's output and in C(--diff).
author:
  - GoShip developers (@goship)
requirements:
  - pycdlib
attributes:
  check_mode:
    support: full
    description: Reports whether the seed would change; writes nothing.
  diff_mode:
    support: full
    description: Shows the seed's files before and after, secrets masked.
options:
  path:
    description: Where the ISO is written on the node, usually C(<state_root>/vms/<domain>/seed.iso).
    type: path
    required: true
  state:
    description: Whether the seed should exist.
    type: str
    choices: [present, absent]
    default: present
  instance_id:
    description:
      - cloud-init instance id. A new id makes cloud-init run its first-boot modules again.
      - Required when O(state=present).
    type: str
  hostname:
    description:
      - Guest host name (an RFC 1123 label). Required when O(state=present).
    type: str
  user_data:
    description: cloud-config document (a mapping) for stock cloud images.
    type: dict
  network_config:
    description: Network configuration, version 2 (netplan form), written as C(network-config).
    type: dict
  goship:
    description:
      - The GoShip config for guest_init, written as C(goship.json).
      - Needs C(project) and C(generation); usually also C(node) and C(apps).
    type: dict
  guest_init_archive:
    description:
      - Path on the node to a guest_init zipapp. When set, the user-data installs it as
        C(/usr/local/lib/goship/guest_init.pyz) and starts the systemd service C(goship-guest-init).
    type: path
  mode:
    description: File mode of the ISO. Seeds can carry secrets, so the default is owner-only.
    type: raw
    default: '0600'
'''

EXAMPLES = r'''
- name: Seed for a GoShip project VM
  goship.core.cloud_init_seed:
    path: /var/lib/goship/vms/goship-node1-alpha/seed.iso
    instance_id: goship-node1-alpha-3
    hostname: alpha-node1
    goship:
      project: alpha
      node: node1
      generation: 3
      apps:
        - name: web
          image: demo-web
          replicas: 2
          env:
            GREETING: hello
            API_KEY: {value: "{{ vault_api_key }}", secret: true}

- name: Seed for a stock cloud image that runs guest_init under systemd
  goship.core.cloud_init_seed:
    path: /var/lib/goship/vms/goship-node1-beta/seed.iso
    instance_id: goship-node1-beta-1
    hostname: beta-node1
    guest_init_archive: /var/lib/goship/guest_init.pyz
    network_config:
      version: 2
      ethernets:
        primary:
          match: {name: "en*"}
          dhcp4: true
    goship: {project: beta, node: node1, generation: 1, apps: []}
'''

RETURN = r'''
path:
  description: Path of the seed ISO.
  returned: always
  type: str
  sample: /var/lib/goship/vms/goship-node1-alpha/seed.iso
files:
  description: The seed's files with their size and sha256 (empty when absent).
  returned: always
  type: dict
  sample: {"meta-data": {"size": 72, "sha256": "5d41402abc4b2a76b9719d911017c592..."}}
measurement:
  description:
    - Digests of O(goship) in GoShip canonical JSON v1, the measured configuration of a confidential VM
      (C(sha256) for SEV-SNP host data, C(sha384) for TDX mrConfigId; see docs/confidential.md).
    - Pass one to M(goship.core.project_vm) as C(confidential.config_digest), for example C(sha256:<hex>).
  returned: when O(goship) is set and O(state=present)
  type: dict
  sample: {"form": "goship-canonical-json-v1", "sha256": "9f86d081884c7d65...", "sha384": "768412320f7b0aa5..."}
'''

import hashlib
import os
import re

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.goship.core.plugins.module_utils import nocloud_seed

HOSTNAME_RE = re.compile(r'^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\Z')
INSTANCE_ID_RE = re.compile(r'^[A-Za-z0-9][A-Za-z0-9._-]{0,127}\Z')


def validate(module):
    params = module.params
    if params['state'] == 'absent':
        return
    for name in ('instance_id', 'hostname'):
        if not params[name]:
            module.fail_json(msg='%s is required when state=present' % name)
    if not HOSTNAME_RE.match(params['hostname']):
        module.fail_json(msg='hostname %r is not an RFC 1123 label (a-z, 0-9, -, at most 63 characters)'
                         % params['hostname'])
    if not INSTANCE_ID_RE.match(params['instance_id']):
        module.fail_json(msg='instance_id %r: use letters, digits, ".", "_" and "-" (at most 128)'
                         % params['instance_id'])
    goship = params['goship']
    if goship is not None:
        if not isinstance(goship.get('project'), str) or not goship['project']:
            module.fail_json(msg='goship.project is required and must be a non-empty string')
        generation = goship.get('generation')
        if not isinstance(generation, int) or isinstance(generation, bool) or generation < 0:
            module.fail_json(msg='goship.generation is required and must be an integer >= 0')


def file_summary(files):
    return dict((name, {'size': len(data), 'sha256': hashlib.sha256(data).hexdigest()})
                for name, data in sorted(files.items()))


def read_archive(module):
    path = module.params['guest_init_archive']
    if path is None:
        return None
    try:
        with open(path, 'rb') as handle:
            return handle.read()
    except OSError as exc:
        module.fail_json(msg='guest_init_archive %s cannot be read: %s' % (path, exc))


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type='path', required=True),
            state=dict(type='str', choices=['present', 'absent'], default='present'),
            instance_id=dict(type='str'),
            hostname=dict(type='str'),
            user_data=dict(type='dict'),
            network_config=dict(type='dict'),
            goship=dict(type='dict'),
            guest_init_archive=dict(type='path'),
            mode=dict(type='raw', default='0600'),
        ),
        supports_check_mode=True,
    )
    if not nocloud_seed.HAS_PYCDLIB:
        module.fail_json(msg=missing_required_lib('pycdlib'), exception=str(nocloud_seed.PYCDLIB_IMPORT_ERROR))
    validate(module)
    params = module.params
    path = params['path']
    secrets = nocloud_seed.secret_values(params['goship'])
    module.no_log_values.update(secrets)

    current = nocloud_seed.read_iso_files(path) if os.path.exists(path) else None
    if params['state'] == 'absent':
        desired = None
    else:
        desired = nocloud_seed.build_seed_files(
            params['instance_id'], params['hostname'], user_data=params['user_data'],
            network_config=params['network_config'], goship=params['goship'],
            guest_init_archive=read_archive(module))

    content_changed = current != desired if desired is not None else os.path.exists(path)
    result = dict(path=path, files=file_summary(desired or {}), changed=content_changed)
    if desired is not None and params['goship'] is not None:
        try:
            result['measurement'] = nocloud_seed.measured_digests(params['goship'])
        except ValueError as exc:
            module.fail_json(msg='goship: has no canonical JSON form to measure: %s' % exc)
    if module._diff:
        result['diff'] = dict(
            before_header=path, after_header=path,
            before=nocloud_seed.describe_files(current or {}, secrets),
            after=nocloud_seed.describe_files(desired or {}, secrets))

    if desired is None:
        if content_changed and not module.check_mode:
            os.unlink(path)
    else:
        if content_changed and not module.check_mode:
            parent = os.path.dirname(os.path.abspath(path))
            if not os.path.isdir(parent):
                module.fail_json(msg='path: directory %s does not exist' % parent)
            nocloud_seed.write_iso(path, desired)
        if os.path.exists(path):
            file_args = module.load_file_common_arguments(dict(path=path, mode=params['mode']))
            result['changed'] = module.set_fs_attributes_if_different(file_args, result['changed'])
    module.exit_json(**result)


if __name__ == '__main__':
    main()
