# Copyright: Contributors to the GoShip project
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The images data disk: a project's OCI image layouts packed into one read-only squashfs.

Built on the node, attached to the project VM as a read-only virtio-blk disk with serial
``goship-images``; guest_init mounts it at ``/run/goship/images``, where ``image: NAME``
is the layout ``NAME/``. The file is named by its content
(``images-<first 16 hex of the content id>.squashfs``): an unchanged image set gives the
same name, so the domain definition and the file stay as they are; a changed set gives a
new file next to the old one, which the caller may remove once no domain uses it.

The content id hashes every image name and every file of every layout (path, mode and
content), and each ``blobs/sha256/<hex>`` file is checked to hash to its name on the way,
so a corrupt layout is refused here rather than in the guest. mksquashfs runs with fixed
times, root ownership and no xattrs, so equal input gives a byte-equal file.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import stat
import subprocess
import tempfile

DISK_SERIAL = 'goship-images'
GUEST_MOUNT_POINT = '/run/goship/images'
FILE_PREFIX = 'images-'
FILE_SUFFIX = '.squashfs'
# -no-hardlinks: the staging tree hard-links the sources, whose own link structure must not
# show in the output (identical files are still stored once: mksquashfs de-duplicates data).
MKSQUASHFS_FLAGS = ('-noappend', '-comp', 'gzip', '-all-root', '-no-xattrs', '-no-hardlinks',
                    '-mkfs-time', '0', '-all-time', '0', '-quiet', '-no-progress')
CHUNK = 1 << 20
_NAME = re.compile(r'[A-Za-z0-9][A-Za-z0-9._-]{0,127}')
_BLOB_DIR = ('blobs', 'sha256')


class ImagesDiskError(Exception):
    """An image layout is unusable, or mksquashfs failed."""


def _layout_entries(layout):
    """(relative path, is_dir) below layout, sorted; only regular files and directories allowed."""
    found = []
    for current, dirs, files in os.walk(layout):
        for name in dirs + files:
            path = os.path.join(current, name)
            mode = os.lstat(path).st_mode
            if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
                raise ImagesDiskError('%s: only regular files and directories may be in an image layout' % path)
            found.append((os.path.relpath(path, layout), stat.S_ISDIR(mode)))
    return sorted(found)


def _hash_file(path):
    digest = hashlib.sha256()
    with open(path, 'rb') as handle:
        for chunk in iter(lambda: handle.read(CHUNK), b''):
            digest.update(chunk)
    return digest.hexdigest()


def content_id(layouts):
    """sha256 hex over the image set: {name: layout directory}."""
    total = hashlib.sha256()
    for name in sorted(layouts):
        if not _NAME.fullmatch(name):
            raise ImagesDiskError('image name %r: letters, digits, ".", "_", "-" only' % name)
        layout = layouts[name]
        for marker in ('oci-layout', 'index.json'):
            if not os.path.isfile(os.path.join(layout, marker)):
                raise ImagesDiskError('%s: not an OCI image layout (no %s)' % (layout, marker))
        for relative, is_dir in _layout_entries(layout):
            path = os.path.join(layout, relative)
            file_hash = 'dir' if is_dir else _hash_file(path)
            parts = relative.split(os.sep)
            if not is_dir and tuple(parts[:2]) == _BLOB_DIR and len(parts) == 3 and parts[2] != file_hash:
                raise ImagesDiskError('%s: content hashes to sha256:%s' % (path, file_hash))
            mode = stat.S_IMODE(os.stat(path).st_mode)
            total.update(('%s\0%s\0%o\0%s\n' % (name, relative, mode, file_hash)).encode('utf-8'))
    return total.hexdigest()


def disk_file_name(identity):
    return '%s%s%s' % (FILE_PREFIX, identity[:16], FILE_SUFFIX)


def build_images_disk(layouts, output_dir, mksquashfs='mksquashfs'):
    """Pack {name: layout dir} into output_dir; return (path, changed).

    changed is False when a disk with the same content already exists there.
    """
    if not layouts:
        raise ImagesDiskError('no images to pack')
    target = os.path.join(output_dir, disk_file_name(content_id(layouts)))
    if os.path.isfile(target):
        return target, False
    os.makedirs(output_dir, exist_ok=True)
    work = tempfile.mkdtemp(prefix='.images-', dir=output_dir)
    try:
        tree = os.path.join(work, 'tree')
        os.mkdir(tree, 0o755)
        for name, layout in sorted(layouts.items()):
            shutil.copytree(layout, os.path.join(tree, name), copy_function=_link_or_copy)
        partial = os.path.join(work, 'disk' + FILE_SUFFIX)
        result = subprocess.run([mksquashfs, tree, partial, *MKSQUASHFS_FLAGS], check=False,
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True)
        if result.returncode != 0:
            raise ImagesDiskError('mksquashfs failed (%d): %s' % (result.returncode, result.stdout.strip()[-2000:]))
        os.chmod(partial, 0o644)
        os.rename(partial, target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target, True


def _link_or_copy(source, destination):
    """Hard links are enough (mksquashfs only reads); other file systems get a copy."""
    try:
        os.link(source, destination)
    except OSError:
        shutil.copy2(source, destination)
    return destination
