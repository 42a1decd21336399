"""A replica's writable root: an overlay of the shared, read-only unpacked image.

lower = <state-dir>/rootfs/<digest> (never written), upper and work = the replica's
bundle directory, mounted on <bundle>/rootfs. A fresh upper per start: a restarted
replica starts from the image, as a new container would.

An upper directory cannot be on an overlay itself ("not supported as upperdir"), and the
guest's / is one: when the bundles directory is on an overlay (a VM without a state
disk), a tmpfs is mounted on it first.
"""

import errno
import os

from guest_init import libc, log

MNT_DETACH = 2
_OPTION_SPECIALS = (",", ":", "\\", "=")


def mount(lower, bundle_dir):
    """Mount the overlay at <bundle_dir>/rootfs and return that path."""
    upper, work, target = (os.path.join(bundle_dir, name) for name in ("upper", "work", "rootfs"))
    for path in (lower, upper, work):
        if any(char in path for char in _OPTION_SPECIALS):
            raise ValueError("overlay directory %r contains one of , : \\ =" % path)
    for path in (upper, work, target):
        os.makedirs(path, mode=0o755, exist_ok=True)
    options = "lowerdir=%s,upperdir=%s,workdir=%s" % (lower, upper, work)
    libc.mount("overlay", target, "overlay", 0, options)
    return target


def unmount(bundle_dir):
    """Detach the overlay at <bundle_dir>/rootfs if it is mounted."""
    try:
        libc.umount(os.path.join(bundle_dir, "rootfs"), MNT_DETACH)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.ENOENT):
            raise


def filesystem_type(path, mountinfo="/proc/self/mountinfo"):
    """Type of the file system holding directory `path`, matched by device number."""
    device = os.stat(path).st_dev
    wanted = "%d:%d" % (os.major(device), os.minor(device))
    found = None
    with open(mountinfo, encoding="utf-8", errors="replace") as lines:
        for line in lines:
            fields = line.split(" ")
            if fields[2] == wanted and " - " in line:
                found = line.split(" - ", 1)[1].split(" ")[0]
    return found


def ensure_upper_capable(directory):
    """Make `directory` (the bundles root) usable for upper directories; see the module doc."""
    os.makedirs(directory, mode=0o700, exist_ok=True)
    if filesystem_type(directory) == "overlay":
        libc.mount("tmpfs", directory, "tmpfs", libc.MS_NOSUID | libc.MS_NODEV, "mode=0700")
        log.info("%s is on an overlay: mounted a tmpfs there for container upper directories" % directory)
