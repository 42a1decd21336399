#!/usr/bin/python
# Copyright: Contributors to the GoShip project
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r'''
---
module: images_disk
short_description: Pack a project's OCI images into the read-only disk its VM mounts
version_added: 0.1.0
description:
  - No container registry is needed. The OCI image layouts named in O(images) are taken from
    O(source_dir) on the node and packed into one squashfs file that the project VM gets as a
    read-only virtio disk with serial C(goship-images). guest_init mounts it and unpacks each
    image once per digest.
  - The file is named by its content, so an unchanged image set leaves the file (and the VM's
    definition) unchanged; every blob is checked against its sha256 name before packing.
author:
  - GoShip developers (@goship)
requirements:
  - mksquashfs (Debian package squashfs-tools)
attributes:
  check_mode:
    support: full
    description: Computes the content name and whether it exists; writes nothing.
  diff_mode:
    support: none
    description: The disk is binary; RV(path) names its content.
options:
  output_dir:
    description: Directory for the disk file, usually the VM's state directory.
    type: path
    required: true
  source_dir:
    description: Directory holding one OCI image layout per image name (C(<source_dir>/<name>/index.json)).
    type: path
    required: true
  images:
    description: Image names the project's apps use.
    type: list
    elements: str
    required: true
  prune:
    description: Remove other image disks in O(output_dir) (older image sets of the same VM).
    type: bool
    default: false
'''

EXAMPLES = r'''
- name: Image disk for project alpha's VM
  goship.core.images_disk:
    output_dir: /var/lib/goship/vms/goship-node1-alpha
    source_dir: /var/lib/goship/oci
    images: [demo-web]
  register: images

- name: Attach it
  goship.core.project_vm:
    project: alpha
    node: node1
    disks:
      - {source: "{{ images.path }}", serial: goship-images}
'''

RETURN = r'''
path:
  description: The disk file.
  returned: always
  type: str
  sample: /var/lib/goship/vms/goship-node1-alpha/images-3f2a9c0d1e4b5a6f.squashfs
removed:
  description: Older image disks removed by O(prune).
  returned: always
  type: list
  elements: str
'''

import glob
import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.goship.core.plugins.module_utils import images_disk


def main():
    module = AnsibleModule(
        argument_spec=dict(
            output_dir=dict(type='path', required=True),
            source_dir=dict(type='path', required=True),
            images=dict(type='list', elements='str', required=True),
            prune=dict(type='bool', default=False),
        ),
        supports_check_mode=True,
    )
    params = module.params
    if not params['images']:
        module.fail_json(msg='images: give at least one image name')
    layouts = {}
    for name in params['images']:
        layout = os.path.join(params['source_dir'], name)
        if os.path.realpath(os.path.dirname(os.path.realpath(layout))) != os.path.realpath(params['source_dir']):
            module.fail_json(msg='images: %r is not a name inside source_dir' % name)
        if not os.path.isdir(layout):
            module.fail_json(msg='images: no OCI image layout %s' % layout)
        layouts[name] = layout
    try:
        if module.check_mode:
            path = os.path.join(params['output_dir'], images_disk.disk_file_name(images_disk.content_id(layouts)))
            changed = not os.path.isfile(path)
        else:
            path, changed = images_disk.build_images_disk(layouts, params['output_dir'])
    except images_disk.ImagesDiskError as exc:
        module.fail_json(msg=str(exc))
    removed = []
    if params['prune']:
        pattern = os.path.join(params['output_dir'], images_disk.FILE_PREFIX + '*' + images_disk.FILE_SUFFIX)
        removed = sorted(other for other in glob.glob(pattern) if other != path)
        if not module.check_mode:
            for other in removed:
                os.unlink(other)
    module.exit_json(changed=changed or bool(removed), path=path, removed=removed)


if __name__ == '__main__':
    main()
