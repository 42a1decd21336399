"""Looking a path up inside a root directory the way a process chrooted there would.

Symlinks are followed with the root as `/`: absolute targets start again at the root; a
`..` that would climb above the root is refused rather than clamped, since only a hostile
image needs it. Used for untrusted trees (image layers, an image's /etc/passwd).
"""

import os
import stat

MAX_SYMLINKS = 40  # as the kernel's path walk


class RootPathError(ValueError):
    """The path escapes the root, loops, or runs through a non-directory."""


def split(path):
    return [part for part in path.split("/") if part not in ("", ".")]


def resolve(root, parts, create=False):
    """Real components (symlink-free, relative to root) of the path `parts`.

    Every component but the last must be a directory. A missing component ends the walk
    with None, unless `create`: then it is made as a directory (mode 0755).
    """
    resolved, pending, links = [], list(parts), 0
    while pending:
        part = pending.pop(0)
        if part in ("", "."):
            continue
        if part == "..":
            if not resolved:
                raise RootPathError("path climbs above the root: %r" % "/".join(parts))
            resolved.pop()
            continue
        path = os.path.join(root, *resolved, part)
        try:
            info = os.lstat(path)
        except FileNotFoundError:
            if not create:
                return None
            os.mkdir(path, 0o755)
            resolved.append(part)
            continue
        if stat.S_ISLNK(info.st_mode):
            links += 1
            if links > MAX_SYMLINKS:
                raise RootPathError("too many symlinks resolving %r" % "/".join(parts))
            target = os.readlink(path)
            if target.startswith("/"):
                resolved = []
            pending = target.split("/") + pending
            continue
        if pending and not stat.S_ISDIR(info.st_mode):
            raise RootPathError("%r is not a directory" % "/".join(resolved + [part]))
        resolved.append(part)
    return resolved


def read_text(root, path, limit=1 << 20):
    """Contents of the file at `path` inside root (symlinks resolved inside), or None."""
    try:
        real = resolve(root, split(path))
    except RootPathError:
        return None
    if real is None:
        return None
    try:
        fd = os.open(os.path.join(root, *real), os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    with open(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        return handle.read(limit).decode("utf-8", "replace")
