# Copyright: Contributors to the GoShip project
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


class ModuleDocFragment:
    """Module attributes shared by several modules."""

    # Modules that change things: check mode computes the same result, --diff shows it.
    DOCUMENTATION = r'''
attributes:
  check_mode:
    support: full
    description: Computes the same C(changed) as a real run and changes nothing.
  diff_mode:
    support: full
    description: Shows what differs, before and after.
'''

    # Modules that only read: the same in check mode, nothing to diff.
    READ_ONLY = r'''
attributes:
  check_mode:
    support: full
    description: Reads only; runs the same in check mode.
  diff_mode:
    support: none
    description: Reads only; there is nothing to diff.
'''
