"""Data disks of a project VM, found by their virtio-blk serial (no udev: read sysfs)."""

import os

from guest_init import libc, log

SYS_BLOCK = "/sys/class/block"


def find_by_serial(serial, sys_block=SYS_BLOCK):
    """/dev/<name> of the disk whose serial is `serial`, or None."""
    try:
        names = sorted(os.listdir(sys_block))
    except OSError:
        return None
    for name in names:
        try:
            with open(os.path.join(sys_block, name, "serial"), encoding="ascii", errors="replace") as handle:
                if handle.read().strip() == serial:
                    return "/dev/" + name
        except OSError:
            continue
    return None


def mount_by_serial(serial, target, fstype, read_only):
    """Mount the disk with this serial on target, if there is one; False otherwise."""
    device = find_by_serial(serial)
    if device is None:
        log.debug("no disk with serial %s: %s stays on the root filesystem" % (serial, target))
        return False
    flags = libc.MS_NOSUID | libc.MS_NODEV | (libc.MS_RDONLY if read_only else 0)
    try:
        os.makedirs(target, mode=0o700, exist_ok=True)
        libc.mount(device, target, fstype, flags)
    except OSError as exc:
        log.info("mounting %s (%s) on %s failed: %s" % (device, serial, target, exc))
        return False
    log.info("mounted %s (%s) on %s" % (device, serial, target))
    return True
