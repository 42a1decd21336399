"""Find the ``goship.core`` collection and import the modules the control service shares with it.

The desired-state document is defined once, in the collection's
``plugins/plugin_utils/desired_state.py`` (the inventory plugin reads it there); the control
service imports that module instead of keeping a copy. The collection is looked up on
``ANSIBLE_COLLECTIONS_PATH`` (the same place ansible-runner will find it), then in this
checkout's ``build/collections`` link (made by ``make setup``).
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

CHECKOUT_COLLECTIONS = Path(__file__).resolve().parent.parent / "build" / "collections"
DESIRED_STATE_MODULE = "ansible_collections.goship.core.plugins.plugin_utils.desired_state"


class CollectionNotFound(RuntimeError):
    """goship.core is not on any collections path."""


def collections_path() -> Path:
    """The first collections directory holding ``ansible_collections/goship/core``."""
    candidates = [Path(entry) for entry in os.environ.get("ANSIBLE_COLLECTIONS_PATH", "").split(os.pathsep) if entry]
    candidates.append(CHECKOUT_COLLECTIONS)
    for candidate in candidates:
        if (candidate.expanduser() / "ansible_collections" / "goship" / "core" / "galaxy.yml").is_file():
            return candidate.expanduser()
    raise CollectionNotFound(
        "collection goship.core not found in ANSIBLE_COLLECTIONS_PATH or %s (run `make setup`)" % CHECKOUT_COLLECTIONS)


def desired_state_module():
    """``goship.core``'s plugin_utils.desired_state (load, validate, place the DesiredState document)."""
    if DESIRED_STATE_MODULE not in sys.modules:
        path = str(collections_path())
        if path not in sys.path:
            sys.path.append(path)
    return importlib.import_module(DESIRED_STATE_MODULE)
