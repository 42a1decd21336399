"""Applying one layer (an uncompressed tar stream) on top of a root filesystem directory.

Layers are untrusted input. Entry names that are absolute or contain `..` are refused;
parent directories are looked up inside the rootfs, following symlinks the way the
container will see them (absolute targets start again at the rootfs), and a lookup that
would climb above the rootfs is refused. The entry's own last component is never
followed: an existing file, link or tree there is replaced. Hard links must point at a
file of the same rootfs. Device nodes are skipped (the runtime provides /dev); extended
attributes are not applied.

Whiteouts (OCI image spec, "Whiteouts"): `.wh.<name>` deletes <name> and `.wh..wh..opq`
empties its directory, both only of what lower layers put there: entries of the same
layer survive whatever order the tar lists them in.
"""

import os
import shutil
import stat
import tarfile

from guest_init.oci import rootpath

WHITEOUT_PREFIX = ".wh."
OPAQUE_WHITEOUT = ".wh..wh..opq"
COPY_CHUNK = 1 << 20


class UnpackError(rootpath.RootPathError):
    """The layer tries something unsafe or impossible; the rootfs must be discarded."""


def entry_parts(name):
    """Split a tar entry name into components; refuse absolute names and `..`."""
    if name.startswith("/"):
        raise UnpackError("absolute path in layer: %r" % name)
    parts = [part for part in name.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise UnpackError("path with '..' in layer: %r" % name)
    return parts


def unpack_layer(stream, rootfs):
    """Apply the tar read from `stream` (uncompressed, read once, in order) to `rootfs`."""
    writer = LayerWriter(rootfs)
    with tarfile.open(fileobj=stream, mode="r|") as tar:
        for member in tar:
            writer.apply(member, tar)
    writer.finish()
    return writer


class LayerWriter:
    """Writes one layer's entries; remembers what this layer made, for whiteouts."""

    def __init__(self, rootfs):
        self.rootfs = rootfs
        self.created = set()  # real relative paths this layer wrote
        self.touched = set()  # ... and every directory above them
        self.skipped_devices = []
        self._dir_times = []

    # -- paths ------------------------------------------------------------
    def host_path(self, parts):
        return os.path.join(self.rootfs, *parts)

    def resolve_dir(self, parts, create):
        """Real components of directory `parts` (see rootpath.resolve); None if missing."""
        real = rootpath.resolve(self.rootfs, parts, create)
        if real is not None and not os.path.isdir(self.host_path(real)):
            raise UnpackError("%r is not a directory" % "/".join(parts))
        return real

    # -- entries ----------------------------------------------------------
    def apply(self, member, tar):
        parts = entry_parts(member.name)
        if not parts:
            return  # the root itself: the rootfs directory keeps its own metadata
        *parent, name = parts
        if name.startswith(WHITEOUT_PREFIX):
            self._whiteout(parent, name)
            return
        if member.ischr() or member.isblk():
            self.skipped_devices.append(member.name)
            return
        real_parent = self.resolve_dir(parent, create=True)
        real = real_parent + [name]
        path = self.host_path(real)
        if member.isdir():
            self._directory(path, member)
        else:
            _remove(path)
            if member.isfile():
                self._file(path, member, tar)
            elif member.issym():
                os.symlink(member.linkname, path)
            elif member.islnk():
                os.link(self._link_source(member), path, follow_symlinks=False)
            elif member.isfifo():
                os.mkfifo(path)
            else:
                raise UnpackError("unsupported tar entry type %r for %r" % (member.type, member.name))
            if not member.islnk():  # a hard link shares its source's inode and metadata
                self._set_metadata(path, member)
        self._remember(real)

    def _directory(self, path, member):
        try:
            info = os.lstat(path)
        except FileNotFoundError:
            info = None
        if info is not None and not stat.S_ISDIR(info.st_mode):
            _remove(path)
            info = None
        if info is None:
            os.mkdir(path, 0o700)
        os.lchown(path, member.uid, member.gid)
        os.chmod(path, member.mode & 0o7777)
        self._dir_times.append((path, member.mtime))

    def _file(self, path, member, tar):
        source = tar.extractfile(member)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        with open(fd, "wb") as target:
            shutil.copyfileobj(source, target, COPY_CHUNK)

    def _link_source(self, member):
        parts = entry_parts(member.linkname)
        real_parent = self.resolve_dir(parts[:-1], create=False) if parts else None
        if real_parent is not None:
            source = self.host_path(real_parent + parts[-1:])
            try:
                if not stat.S_ISDIR(os.lstat(source).st_mode):
                    return source
            except FileNotFoundError:
                pass
        raise UnpackError("hard link %r -> %r: no such file in the rootfs" % (member.name, member.linkname))

    def _set_metadata(self, path, member):
        os.lchown(path, member.uid, member.gid)
        if not member.issym():
            os.chmod(path, member.mode & 0o7777)  # after chown, which clears set-id bits
        os.utime(path, (member.mtime, member.mtime), follow_symlinks=False)

    def _remember(self, real):
        self.created.add("/".join(real))
        for depth in range(1, len(real) + 1):
            self.touched.add("/".join(real[:depth]))

    # -- whiteouts --------------------------------------------------------
    def _whiteout(self, parent, name):
        real_parent = self.resolve_dir(parent, create=False)
        if real_parent is None:
            return
        if name == OPAQUE_WHITEOUT:
            self._clear_lower(real_parent)
            return
        hidden = name[len(WHITEOUT_PREFIX):]
        if hidden in ("", ".", "..") or hidden.startswith(WHITEOUT_PREFIX):
            return  # other AUFS metadata (.wh..wh.plnk ...), not a whiteout of a file
        real = real_parent + [hidden]
        if "/".join(real) not in self.touched:
            _remove(self.host_path(real))

    def _clear_lower(self, real_dir):
        """Remove what lower layers left in real_dir, keeping this layer's entries."""
        directory = self.host_path(real_dir)
        for child in sorted(os.listdir(directory)):
            real = real_dir + [child]
            path = self.host_path(real)
            if "/".join(real) not in self.touched:
                _remove(path)
            elif os.path.isdir(path) and not os.path.islink(path):
                self._clear_lower(real)  # ours, but lower layers may have put things inside

    def finish(self):
        """Directory times last, deepest first: writing entries changed them."""
        for path, mtime in reversed(self._dir_times):
            if os.path.isdir(path) and not os.path.islink(path):
                os.utime(path, (mtime, mtime), follow_symlinks=False)


def _remove(path):
    """Delete whatever is at path (a tree is removed without following symlinks)."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(info.st_mode):
        shutil.rmtree(path)
    else:
        os.unlink(path)
