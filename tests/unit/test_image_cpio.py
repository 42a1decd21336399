"""The newc cpio writer, read back field by field."""

import gzip
import stat

from goship_ctl.image import cpio
from goship_ctl.image.initrd import write_initrd


def read_newc(data: bytes):
    entries, pos = [], 0
    while True:
        assert data[pos:pos + 6] == b"070701"
        fields = [int(data[pos + 6 + 8 * i: pos + 14 + 8 * i], 16) for i in range(13)]
        namesize, filesize = fields[11], fields[6]
        name = data[pos + 110: pos + 110 + namesize - 1].decode()
        pos += 110 + namesize
        pos += -pos % 4
        body = data[pos: pos + filesize]
        pos += filesize
        pos += -pos % 4
        if name == "TRAILER!!!":
            assert pos == len(data)
            return entries
        entries.append({"name": name, "mode": fields[1], "uid": fields[2], "mtime": fields[5],
                        "rdev": (fields[9], fields[10]), "data": body})


def test_archive_round_trips_all_entry_kinds():
    data = cpio.archive([
        cpio.directory("dev"), cpio.char_device("dev/console", 5, 1),
        cpio.regular("init", b"#!/bin/sh\n", 0o755), cpio.symlink("bin/sh", "busybox"),
    ])
    entries = read_newc(data)
    assert [e["name"] for e in entries] == ["dev", "dev/console", "init", "bin/sh"]
    assert stat.S_ISDIR(entries[0]["mode"])
    assert stat.S_ISCHR(entries[1]["mode"]) and entries[1]["rdev"] == (5, 1)
    assert entries[2]["mode"] == stat.S_IFREG | 0o755 and entries[2]["data"] == b"#!/bin/sh\n"
    assert stat.S_ISLNK(entries[3]["mode"]) and entries[3]["data"] == b"busybox"
    assert all(e["uid"] == 0 and e["mtime"] == 0 for e in entries)


def test_initrd_is_deterministic_and_lists_modules_in_order(tmp_path):
    busybox = tmp_path / "busybox"
    busybox.write_bytes(b"\x7fELF static")
    modules = []
    for name in ("virtio_ring.ko", "virtio.ko"):
        modules.append(tmp_path / name)
        modules[-1].write_bytes(name.encode())
    write_initrd(tmp_path / "a.img", busybox, modules)
    write_initrd(tmp_path / "b.img", busybox, modules)
    assert (tmp_path / "a.img").read_bytes() == (tmp_path / "b.img").read_bytes()
    entries = {e["name"]: e for e in read_newc(gzip.decompress((tmp_path / "a.img").read_bytes()))}
    assert entries["lib/modules/load.list"]["data"] == b"virtio_ring.ko\nvirtio.ko\n"
    assert entries["init"]["data"].startswith(b"#!/bin/sh")
    assert entries["bin/switch_root"]["data"] == b"busybox"
    assert stat.S_ISCHR(entries["dev/console"]["mode"])
