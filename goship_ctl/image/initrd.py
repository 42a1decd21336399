"""Stage0: the initramfs holding busybox, the root-disk modules and our ``/init``."""

from __future__ import annotations

import gzip
from pathlib import Path

from goship_ctl.image import cpio
from goship_ctl.image.paths import IMAGE_PACKAGE_DIR

STAGE0_INIT = IMAGE_PACKAGE_DIR / "stage0-init.sh"
APPLETS = ("sh", "echo", "insmod", "mkdir", "mount", "poweroff", "sleep", "switch_root")
MOUNT_POINTS = ("dev", "proc", "sys", "lower", "rw", "newroot")


def stage0_entries(busybox: Path, modules: list[Path]) -> list[cpio.Entry]:
    """``modules`` in load order; they are stored flat under /lib/modules."""
    entries = [cpio.directory(d) for d in ("bin", *MOUNT_POINTS, "lib", "lib/modules")]
    entries.append(cpio.char_device("dev/console", 5, 1))
    entries.append(cpio.regular("bin/busybox", busybox.read_bytes(), 0o755))
    entries.extend(cpio.symlink(f"bin/{applet}", "busybox") for applet in APPLETS)
    entries.append(cpio.regular("init", STAGE0_INIT.read_bytes(), 0o755))
    for module in modules:
        entries.append(cpio.regular(f"lib/modules/{module.name}", module.read_bytes()))
    load_list = "".join(f"{module.name}\n" for module in modules)
    entries.append(cpio.regular("lib/modules/load.list", load_list.encode()))
    return entries


def write_initrd(path: Path, busybox: Path, modules: list[Path]) -> None:
    data = cpio.archive(stage0_entries(busybox, modules))
    with open(path, "wb") as raw, gzip.GzipFile(filename="", fileobj=raw, mode="wb", mtime=0) as out:
        out.write(data)
