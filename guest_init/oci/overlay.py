"""A replica's writable root: an overlay of the shared, read-only unpacked image.

lower = <state-dir>/rootfs/<digest> (never written), upper and work = the replica's
bundle directory, mounted on <bundle>/rootfs. The upper directory must not be on an
overlay itself (the guest's /), which is why bundles live in the state directory
(ext4 or tmpfs). A fresh upper per start: a restarted replica starts from the image.
"""

import errno
import os

from guest_init import libc

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
