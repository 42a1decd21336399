"""Fixtures of the reliability tier: the helpers of tests/unit and tests/integration on the
import path, the guest image, a libvirt connection and QEMU-reachable scratch directories."""

import shutil
import sys
import tempfile
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent.parent
# guest_init_helpers, supervisor_helpers, ctl_helpers (unit); ansible_play, vm_harness (integration)
for helper_dir in (TESTS / "unit", TESTS / "integration"):
    if str(helper_dir) not in sys.path:
        sys.path.append(str(helper_dir))


@pytest.fixture(scope="session")
def guest_image_dir():
    """The image every VM test boots; ``build_image`` is a quick no-op while it is current."""
    from goship_ctl.image.build import build_image
    from goship_ctl.image.paths import image_dir_for_tests
    return build_image(image_dir_for_tests()).output


@pytest.fixture
def libvirt_conn():
    import libvirt
    conn = libvirt.open("qemu:///system")
    yield conn
    try:
        conn.close()
    except libvirt.libvirtError:
        pass  # the daemon was restarted under the connection


@pytest.fixture
def qemu_tmp():
    """A scratch directory QEMU (libvirt's unprivileged user) can reach by path."""
    path = Path(tempfile.mkdtemp(prefix="goship-rel-", dir="/tmp"))
    path.chmod(0o711)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def short_tmp():
    """A short directory for Unix sockets (paths are limited to 107 bytes)."""
    path = tempfile.mkdtemp(prefix="gr-", dir="/tmp")
    yield path
    shutil.rmtree(path, ignore_errors=True)
