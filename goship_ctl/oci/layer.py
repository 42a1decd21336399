"""A deterministic tar layer from a directory tree: same tree, same bytes, same digests.

Entries are sorted, owned by 0:0 with no user or group names, stamped with one fixed
mtime, and keep only their permission bits; the gzip header has no name and mtime 0.
Regular files, directories and symlinks are stored; anything else (sockets, devices,
fifos) is refused, since an image built from a tree should not carry them by accident.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import stat
import tarfile
from dataclasses import dataclass
from pathlib import Path

GZIP_LEVEL = 6
CHUNK = 1 << 20


class LayerBuildError(ValueError):
    """The source tree holds something a layer should not carry."""


@dataclass(frozen=True)
class Layer:
    blob: bytes  # gzip-compressed tar
    digest: str  # of the blob
    diff_id: str  # of the uncompressed tar


def _tar_info(path: Path, name: str, mtime: int) -> tarfile.TarInfo:
    info = os.lstat(path)
    entry = tarfile.TarInfo(name)
    entry.uid = entry.gid = 0
    entry.uname = entry.gname = ""
    entry.mtime = mtime
    entry.mode = stat.S_IMODE(info.st_mode)
    if stat.S_ISDIR(info.st_mode):
        entry.type = tarfile.DIRTYPE
    elif stat.S_ISLNK(info.st_mode):
        entry.type = tarfile.SYMTYPE
        entry.linkname = os.readlink(path)
    elif stat.S_ISREG(info.st_mode):
        entry.type = tarfile.REGTYPE
        entry.size = info.st_size
    else:
        raise LayerBuildError(f"{path}: not a regular file, directory or symlink")
    return entry


def _walk_sorted(root: Path):
    """Relative paths below root, parents before children, names in byte order."""
    for name in sorted(os.listdir(root), key=os.fsencode):
        path = root / name
        yield path
        if path.is_dir() and not path.is_symlink():
            yield from _walk_sorted(path)


def tar_tree(root: Path, mtime: int = 0) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in _walk_sorted(root):
            entry = _tar_info(path, path.relative_to(root).as_posix(), mtime)
            if entry.isreg():
                with open(path, "rb") as handle:
                    tar.addfile(entry, handle)
            else:
                tar.addfile(entry)
    return buffer.getvalue()


def gzip_bytes(data: bytes) -> bytes:
    buffer = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, compresslevel=GZIP_LEVEL, mtime=0) as out:
        out.write(data)
    return buffer.getvalue()


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def layer_from_tree(root: Path, mtime: int = 0) -> Layer:
    tar = tar_tree(Path(root), mtime)
    blob = gzip_bytes(tar)
    return Layer(blob=blob, digest=sha256_digest(blob), diff_id=sha256_digest(tar))


def layer_from_tar(tar: bytes) -> Layer:
    """A layer from ready-made tar bytes (tests write whiteouts and odd entries this way)."""
    blob = gzip_bytes(tar)
    return Layer(blob=blob, digest=sha256_digest(blob), diff_id=sha256_digest(tar))
