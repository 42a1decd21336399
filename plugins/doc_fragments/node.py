# Copyright: Contributors to the GoShip project
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


class ModuleDocFragment:
    """Options every module that works on a node's libvirt and GoShip state shares."""

    DOCUMENTATION = r'''
options:
  uri:
    description: libvirt connection URI on the node.
    type: str
    default: qemu:///system
  state_root:
    description:
      - GoShip's host state directory on the node. Per-VM state lives in C(<state_root>/vms/<domain>/).
      - Defaults to the environment variable E(GOSHIP_STATE_ROOT) of the module, else C(/var/lib/goship).
    type: path
requirements:
  - libvirt-python
'''
