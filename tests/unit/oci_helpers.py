"""Building small tar layers and image layouts for the OCI tests."""

import io
import tarfile
from pathlib import Path

from goship_ctl.oci.build import ProcessConfig, write_layout
from goship_ctl.oci.layer import layer_from_tar

TYPES = {"file": tarfile.REGTYPE, "dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE,
         "hardlink": tarfile.LNKTYPE, "char": tarfile.CHRTYPE, "block": tarfile.BLKTYPE,
         "fifo": tarfile.FIFOTYPE}


def tar_bytes(entries):
    """entries: (name, kind, data_or_linkname[, mode[, uid]]) tuples, written in order."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for entry in entries:
            name, kind, payload = entry[:3]
            info = tarfile.TarInfo(name)
            info.type = TYPES[kind]
            info.mode = entry[3] if len(entry) > 3 else (0o755 if kind == "dir" else 0o644)
            info.uid = info.gid = entry[4] if len(entry) > 4 else 0
            info.mtime = 1700000000
            if kind == "file":
                data = payload.encode() if isinstance(payload, str) else payload
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                if kind in ("symlink", "hardlink"):
                    info.linkname = payload
                tar.addfile(info)
    return buffer.getvalue()


def layout_from_tars(path, tars, process=None):
    """An image layout whose layers are the given tar byte strings; returns the manifest digest."""
    layers = [layer_from_tar(data) for data in tars]
    return write_layout(Path(path), layers, process or ProcessConfig(cmd=("/bin/true",)))


def tree(root):
    """{relative path: kind or file text} of everything under root (symlinks not followed)."""
    result = {}
    for path in sorted(Path(root).rglob("*")):
        relative = path.relative_to(root).as_posix()
        if path.is_symlink():
            result[relative] = "-> " + str(path.readlink())
        elif path.is_dir():
            result[relative] = "dir"
        elif not path.is_file():
            result[relative] = "special"
        else:
            result[relative] = path.read_text(errors="replace")
    return result
