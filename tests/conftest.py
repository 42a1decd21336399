"""Set-up shared by every test tier: markers, the goship.core import path, a state root.

Tiers are chosen by directory: tests/unit/ (plain), tests/sanity/ (marker `sanity`),
tests/integration/ (marker `integration`), tests/reliability/ (marker `reliability`); the
markers are added here so a test file cannot land in a tier without its marker.
"""

import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
COLLECTIONS_ROOT = REPO_ROOT / "build" / "collections"
COLLECTION_LINK = COLLECTIONS_ROOT / "ansible_collections" / "goship" / "core"
TIERS_WITH_MARKER = ("integration", "reliability", "sanity")  # directory name == marker name

_created_state_root = None

# At import time, not in pytest_configure: pytest imports the conftest.py of the directories
# named on the command line before it calls pytest_configure, and those import goship.core.
sys.path.insert(0, str(COLLECTIONS_ROOT))


def _ensure_collection_link():
    """Make `ansible_collections.goship.core` resolve to this checkout (scripts/setup.sh does the same)."""
    if not COLLECTION_LINK.is_symlink():
        COLLECTION_LINK.parent.mkdir(parents=True, exist_ok=True)
        COLLECTION_LINK.symlink_to(REPO_ROOT, target_is_directory=True)


def pytest_configure(config):
    global _created_state_root
    config.addinivalue_line("markers", "integration: needs libvirt/QEMU or other real system services; slow")
    config.addinivalue_line("markers", "sanity: ansible-test sanity and ansible-lint over the collection")
    config.addinivalue_line("markers", "reliability: fault injection, fuzzing and security checks (real VMs for in-VM faults)")
    _ensure_collection_link()
    os.environ.setdefault("ANSIBLE_COLLECTIONS_PATH", str(COLLECTIONS_ROOT))
    if "GOSHIP_STATE_ROOT" not in os.environ:
        _created_state_root = tempfile.mkdtemp(prefix="goship-test-state-", dir="/tmp")
        os.environ["GOSHIP_STATE_ROOT"] = _created_state_root


def pytest_unconfigure(config):
    if _created_state_root:
        shutil.rmtree(_created_state_root, ignore_errors=True)


def pytest_collection_modifyitems(config, items):
    tests_dir = Path(__file__).resolve().parent
    for item in items:
        tier = Path(item.fspath).resolve().relative_to(tests_dir).parts[0]
        if tier in TIERS_WITH_MARKER:
            item.add_marker(getattr(pytest.mark, tier))
