"""Kernel module selection from depmod's tables."""

import pytest

from goship_ctl.image import kmods
from goship_ctl.image.errors import BuildError

DEP = """\
kernel/drivers/virtio/virtio_ring.ko:
kernel/drivers/virtio/virtio.ko: kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/virtio/virtio_pci.ko: kernel/drivers/virtio/virtio_ring.ko kernel/drivers/virtio/virtio_pci_modern_dev.ko kernel/drivers/virtio/virtio.ko
kernel/drivers/virtio/virtio_pci_modern_dev.ko:
kernel/fs/ext4/ext4.ko: kernel/fs/jbd2/jbd2.ko kernel/fs/mbcache.ko kernel/lib/crc16.ko
kernel/fs/jbd2/jbd2.ko:
kernel/fs/mbcache.ko:
kernel/lib/crc16.ko:
kernel/crypto/crc32c_generic.ko:
kernel/arch/x86/crypto/crc32c-intel.ko:
kernel/fs/btrfs/btrfs.ko: kernel/lib/crc16.ko
"""
SOFTDEP = "# comment\nsoftdep ext4 pre: crypto-crc32c\nsoftdep jbd2 pre: crypto-crc32c\n"
ALIAS = ("alias crypto-crc32c crc32c_intel\nalias crypto-crc32c crc32c_generic\n"
         "alias fs-btrfs btrfs\n")
BUILTIN = "kernel/drivers/tty/serial/8250/8250.ko\n"


@pytest.fixture
def tables():
    return kmods.parse_tables(DEP, SOFTDEP, ALIAS, BUILTIN)


def test_module_name_normalises_dashes_and_suffixes():
    assert kmods.module_name("kernel/arch/x86/crypto/crc32c-intel.ko") == "crc32c_intel"
    assert kmods.module_name("kernel/fs/ext4/ext4.ko.xz") == "ext4"


def test_closure_adds_dependencies_before_dependents(tables):
    order = kmods.module_closure(tables, ("virtio_pci",))
    assert set(order) == {"virtio_ring", "virtio", "virtio_pci_modern_dev", "virtio_pci"}
    assert order.index("virtio_ring") < order.index("virtio") < order.index("virtio_pci")


def test_soft_dependency_alias_pulls_every_provider(tables):
    order = kmods.module_closure(tables, ("ext4",))
    assert set(order) == {"ext4", "jbd2", "mbcache", "crc16", "crc32c_intel", "crc32c_generic"}
    assert order[-1] == "ext4"
    assert "btrfs" not in order


def test_builtin_module_needs_nothing(tables):
    assert kmods.module_closure(tables, ("8250",)) == []


def test_unknown_module_fails(tables):
    with pytest.raises(BuildError, match="kernel module no_such neither built in"):
        kmods.module_closure(tables, ("virtio", "no_such"))


def test_install_copies_subset_and_filters_modules_order(tmp_path, tables):
    source = tmp_path / "src"
    for relpath in tables.paths.values():
        (source / relpath).parent.mkdir(parents=True, exist_ok=True)
        (source / relpath).write_bytes(relpath.encode())
    (source / "modules.order").write_text("kernel/fs/btrfs/btrfs.ko\nkernel/fs/ext4/ext4.ko\n")
    (source / "modules.builtin").write_text(BUILTIN)
    target = tmp_path / "dst"
    kmods.install_modules(tables, ["ext4", "crc16"], source, target)
    assert (target / "kernel/fs/ext4/ext4.ko").read_bytes() == b"kernel/fs/ext4/ext4.ko"
    assert not (target / "kernel/fs/btrfs").exists()
    assert (target / "modules.order").read_text() == "kernel/fs/ext4/ext4.ko\n"
    assert (target / "modules.builtin").read_text() == BUILTIN
