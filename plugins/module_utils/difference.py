# Copyright: Contributors to the GoShip project
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""One record of what differs between the current and the desired state.

Modules fill it while comparing, then read it three ways: whether anything changes (the
truthful ``changed``, equal in check mode and in a real run), what to report
(``differences``), and the ``--diff`` output (``before``/``after`` of the differing items only).
"""

from __future__ import annotations

import json


class DifferenceTracker:
    def __init__(self):
        self._items = []

    def add(self, name, before, after):
        """Record ``name`` when ``before != after``; returns whether it differs."""
        if before == after:
            return False
        self._items.append((name, before, after))
        return True

    def merge_dicts(self, prefix, before, after):
        """Compare two flat-or-nested dicts key by key under ``prefix``."""
        for key in sorted(set(before or {}) | set(after or {})):
            self.add('%s.%s' % (prefix, key) if prefix else key, (before or {}).get(key), (after or {}).get(key))

    @property
    def has_differences(self):
        return bool(self._items)

    @property
    def names(self):
        return [name for name, dummy_before, dummy_after in self._items]

    def differences(self):
        return [{'item': name, 'before': before, 'after': after} for name, before, after in self._items]

    def diff(self, header):
        """``--diff`` payload: each differing item as canonical JSON, before and after."""
        before = dict((name, value) for name, value, dummy in self._items)
        after = dict((name, value) for name, dummy, value in self._items)
        return {
            'before_header': header,
            'after_header': header,
            'before': json.dumps(before, indent=2, sort_keys=True) + '\n',
            'after': json.dumps(after, indent=2, sort_keys=True) + '\n',
        }
