"""Fixtures for tests that boot VMs: the libvirt connection, the guest image, the accelerator,
and scratch VMs whose console log is attached to the report of a failed test."""

import os
import shutil
import tempfile
from pathlib import Path

import libvirt
import pytest

import vm_harness
from goship_ctl.image.build import build_image
from goship_ctl.image.paths import image_dir_for_tests
from ansible_collections.goship.core.plugins.module_utils import accel


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """Attach each scratch VM's console.log to a failed test's report, while the VM still exists."""
    report = yield
    if report.failed:
        for vm in item.stash.get(SCRATCH_VMS, []):
            report.sections.append((f"console.log of {vm.spec.name}", vm.console_tail()))
    return report


SCRATCH_VMS = pytest.StashKey[list]()


@pytest.fixture(scope="session")
def libvirt_conn():
    try:
        conn = libvirt.open(vm_harness.LIBVIRT_URI)
    except libvirt.libvirtError as exc:
        pytest.fail(f"cannot connect to {vm_harness.LIBVIRT_URI} (is libvirtd running? `make setup` starts it): {exc}")
    yield conn
    conn.close()


@pytest.fixture(scope="session")
def guest_image():
    """(image directory, manifest) of the image every VM test boots. ``build_image`` is a
    quick no-op while the image matches its inputs (guest_init sources included)."""
    result = build_image(image_dir_for_tests())
    return result.output, result.manifest


@pytest.fixture(scope="session")
def guest_image_dir(guest_image):
    return guest_image[0]


@pytest.fixture(scope="session")
def state_root():
    """tests/conftest.py points GOSHIP_STATE_ROOT at a fresh directory per session."""
    return os.environ["GOSHIP_STATE_ROOT"]


@pytest.fixture(scope="session")
def accel_choice(state_root):
    return accel.choose(state_root)


@pytest.fixture
def scratch_vm(request, libvirt_conn):
    """Factory: ``scratch_vm(spec)`` defines a VM that is removed after the test, whatever happens."""
    vms = request.node.stash.setdefault(SCRATCH_VMS, [])

    def make(spec):
        vm = vm_harness.ScratchVm(libvirt_conn, spec).__enter__()
        vms.append(vm)
        return vm

    yield make
    for vm in vms:
        vm.remove()


@pytest.fixture
def qemu_tmp():
    """A scratch directory QEMU can reach: it runs as libvirt's unprivileged user and must open
    disk and seed files by path, which pytest's own tmp_path (under a 0700 directory) forbids."""
    path = Path(tempfile.mkdtemp(prefix="goship-it-", dir="/tmp"))
    path.chmod(0o711)
    yield path
    shutil.rmtree(path, ignore_errors=True)
