# Copyright: Contributors to the GoShip project
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


class ModuleDocFragment:
    """Options of the modules that talk to guest_init in one project VM."""

    DOCUMENTATION = r'''
options:
  project:
    description: Project name.
    type: str
    required: true
  node:
    description: Node name (the VM is C(goship-<node>-<project>)).
    type: str
    required: true
'''
