"""The boot benchmark's baseline guest: the GoShip image's own kernel with a busybox initramfs
whose /init does the least a guest can do to be heard on the channel: load the virtio modules,
find the port ``org.goship.init.0`` in sysfs and write one line to it.

The modules come from the image's rootfs.squashfs (``unsquashfs``), so baseline and image run
the very same kernel and module files; load order comes from that tree's modules.dep.
"""

from __future__ import annotations

import gzip
import shutil
import subprocess
from pathlib import Path

from goship_ctl.image import cpio, kmods

BASELINE_MODULES = ("virtio_pci", "virtio_mmio", "virtio_console")  # virtio_mmio: machine microvm
APPLETS = ("sh", "mount", "insmod", "sleep", "poweroff")
READY_LINE = '{"event":"baseline-ready"}'

INIT = f"""#!/bin/sh
# GoShip boot benchmark baseline: the least a guest does to answer on org.goship.init.0.
export PATH=/bin
mount -t devtmpfs devtmpfs /dev
mount -t proc proc /proc
mount -t sysfs sysfs /sys
while read -r module; do
    insmod "/lib/modules/$module"
done < /lib/modules/load.list
tries=0
while [ "$tries" -lt 200 ]; do
    for name in /sys/class/virtio-ports/*/name; do
        [ -r "$name" ] || continue
        read -r port < "$name"
        if [ "$port" = org.goship.init.0 ]; then
            dir="${{name%/name}}"
            echo '{READY_LINE}' > "/dev/${{dir##*/}}"
            sleep 1
            poweroff -f
        fi
    done
    tries=$((tries + 1))
    sleep 0.05
done
echo "baseline: no virtio port named org.goship.init.0"
poweroff -f
"""


def extract_module_tree(rootfs: Path, kernel_version: str, workdir: Path) -> Path:
    """``/usr/lib/modules/<kernel_version>`` of the image's root filesystem, unpacked under workdir."""
    target = workdir / "rootfs"
    subprocess.run(["unsquashfs", "-no-progress", "-quiet", "-d", str(target), str(rootfs),
                    f"usr/lib/modules/{kernel_version}"], check=True, capture_output=True, timeout=300)
    return target / "usr" / "lib" / "modules" / kernel_version


def build(image_dir: Path, kernel_version: str, workdir: Path) -> Path:
    """Write ``workdir/baseline-initrd.img`` (gzip like the image's stage0) and return its path."""
    moddir = extract_module_tree(image_dir / "rootfs.squashfs", kernel_version, workdir)
    tables = kmods.read_tables(moddir)
    modules = [moddir / tables.paths[name] for name in kmods.module_closure(tables, BASELINE_MODULES)]
    busybox = shutil.which("busybox")
    if busybox is None:
        raise RuntimeError("busybox not found: install busybox-static")
    entries = [cpio.directory(d) for d in ("bin", "dev", "proc", "sys", "lib", "lib/modules")]
    entries.append(cpio.char_device("dev/console", 5, 1))
    entries.append(cpio.regular("bin/busybox", Path(busybox).read_bytes(), 0o755))
    entries.extend(cpio.symlink(f"bin/{applet}", "busybox") for applet in APPLETS)
    entries.append(cpio.regular("init", INIT.encode(), 0o755))
    entries.extend(cpio.regular(f"lib/modules/{module.name}", module.read_bytes()) for module in modules)
    entries.append(cpio.regular("lib/modules/load.list", "".join(f"{m.name}\n" for m in modules).encode()))
    initrd = workdir / "baseline-initrd.img"
    with open(initrd, "wb") as raw, gzip.GzipFile(filename="", fileobj=raw, mode="wb", mtime=0) as out:
        out.write(cpio.archive(entries))
    return initrd
