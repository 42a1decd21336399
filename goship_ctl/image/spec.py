"""What goes into the guest image: the build options and the fixed content lists."""

from __future__ import annotations

from dataclasses import dataclass, field

BUILDER_VERSION = "1"  # bump when the image layout changes in a way guests can see

KERNEL_METAPACKAGE = "linux-image-amd64"
BASE_PACKAGES = (
    "python3.11-minimal",
    "libpython3.11-minimal",
    "libpython3.11-stdlib",
    "crun",
    "kmod",
    "busybox-static",
)

# Dependencies the builder does not follow: the guest never runs maintainer scripts,
# package tools, an init system or perl, and gets no initramfs generator (stage0 is
# ours). A dependency group is dropped when any alternative names one of these. What the
# shipped binaries really need is checked afterwards from their ELF NEEDED entries.
UNFOLLOWED_PACKAGES = frozenset({
    "adduser", "coreutils", "cdebconf", "debconf", "debconf-2.0", "dpkg", "dracut",
    "initramfs-tools", "install-info", "linux-base", "linux-initramfs-tool", "mailcap",
    "media-types", "mime-support", "passwd", "perl", "perl-base", "readline-common",
    "systemd", "tar", "tiny-initramfs", "udev",
})

# Kernel modules stage0 loads to reach the root image (dependencies added from modules.dep),
# plus virtio_rng: without RDRAND (TCG's default CPU) Python's first start otherwise waits
# about 1.5 s for the kernel to gather entropy when the VM has a virtio-rng device.
# virtio_mmio is the transport of machine type microvm (no PCI): Debian's kernel has no
# CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES, so the devices come from the ACPI tables QEMU's microvm
# writes (_HID LNRO0005); on pc/q35 the module loads and finds nothing.
STAGE0_MODULES = ("virtio_pci", "virtio_mmio", "virtio_blk", "squashfs", "overlay", "virtio_rng")
# Kernel modules shipped in the root image for guest_init's ``modprobe`` (it loads
# virtio_rng for early entropy, button + evdev for the ACPI power button, sev-guest in an
# SEV-SNP guest for the attestation report).
ROOTFS_MODULES = (
    "virtio_pci", "virtio_mmio", "virtio_console", "virtio_blk", "virtio_net", "virtio_rng", "vsock",
    "vmw_vsock_virtio_transport", "overlay", "ext4", "isofs", "squashfs", "button", "evdev", "sev-guest",
)

# Measured under TCG (docs/image.md): lz4 reads fastest; zstd is ~25 % smaller, slower.
DEFAULT_COMPRESSION = "lz4"
COMPRESSIONS = ("gzip", "lz4", "lzo", "xz", "zstd")


@dataclass(frozen=True)
class ImageSpec:
    """The options of one build; every field is part of the input hash."""

    kernel_package: str = KERNEL_METAPACKAGE
    packages: tuple[str, ...] = BASE_PACKAGES
    extra_packages: tuple[str, ...] = ()
    compression: str = DEFAULT_COMPRESSION
    stage0_modules: tuple[str, ...] = STAGE0_MODULES
    rootfs_modules: tuple[str, ...] = ROOTFS_MODULES
    unfollowed: frozenset[str] = field(default=UNFOLLOWED_PACKAGES)

    def roots(self) -> list[str]:
        """Package names the closure starts from, without duplicates, in order."""
        return list(dict.fromkeys((self.kernel_package, *self.packages, *self.extra_packages)))

    def as_dict(self) -> dict:
        return {
            "kernel_package": self.kernel_package,
            "packages": list(self.packages),
            "extra_packages": list(self.extra_packages),
            "compression": self.compression,
            "stage0_modules": list(self.stage0_modules),
            "rootfs_modules": list(self.rootfs_modules),
            "unfollowed": sorted(self.unfollowed),
        }
