"""Layer unpacking: entry types, whiteouts, opaque directories, and hostile layers refused."""

import io
import os
import stat

import pytest

from guest_init.oci.unpack import UnpackError, unpack_layer
from guest_init.oci.rootpath import RootPathError
from oci_helpers import tar_bytes, tree


def apply(rootfs, *layers):
    for entries in layers:
        unpack_layer(io.BytesIO(tar_bytes(entries)), str(rootfs))


@pytest.fixture(name="rootfs")
def rootfs_fixture(tmp_path):
    root = tmp_path / "rootfs"
    root.mkdir()
    return root


@pytest.fixture(name="outside")
def outside_fixture(tmp_path):
    """A directory next to the rootfs that no layer may touch."""
    path = tmp_path / "outside"
    path.mkdir()
    (path / "secret").write_text("host data\n")
    return path


def test_files_dirs_links_modes_and_owners(rootfs):
    apply(rootfs, [
        ("./", "dir", None),
        ("bin/", "dir", None),
        ("bin/tool", "file", "#!/bin/sh\n", 0o4755, 0),
        ("bin/alias", "symlink", "tool"),
        ("bin/hard", "hardlink", "bin/tool"),
        ("home/app/notes", "file", "mine", 0o600, 1000),  # parents not listed: made 0755
        ("run/fifo", "fifo", None),
    ])
    assert tree(rootfs) == {
        "bin": "dir", "bin/alias": "-> tool", "bin/hard": "#!/bin/sh\n", "bin/tool": "#!/bin/sh\n",
        "home": "dir", "home/app": "dir", "home/app/notes": "mine", "run": "dir", "run/fifo": "special",
    }
    tool = os.stat(rootfs / "bin/tool")
    assert stat.S_IMODE(tool.st_mode) == 0o4755  # set-id bit survives the chown
    assert os.stat(rootfs / "bin/hard").st_ino == tool.st_ino
    notes = os.stat(rootfs / "home/app/notes")
    assert (notes.st_uid, stat.S_IMODE(notes.st_mode)) == (1000, 0o600)
    assert notes.st_mtime == 1700000000
    assert stat.S_ISFIFO(os.lstat(rootfs / "run/fifo").st_mode)


def test_device_nodes_are_skipped(rootfs):
    writer = unpack_layer(io.BytesIO(tar_bytes([("dev/", "dir", None), ("dev/sda", "block", None),
                                                ("dev/null", "char", None)])), str(rootfs))
    assert os.listdir(rootfs / "dev") == []
    assert writer.skipped_devices == ["dev/sda", "dev/null"]


def test_whiteout_removes_lower_file_and_tree(rootfs):
    apply(rootfs,
          [("etc/keep", "file", "k"), ("etc/drop", "file", "d"), ("var/cache/a/b", "file", "x")],
          [("etc/.wh.drop", "file", ""), ("var/.wh.cache", "file", "")])
    assert tree(rootfs) == {"etc": "dir", "etc/keep": "k", "var": "dir"}


def test_whiteout_does_not_hide_same_layer_entry(rootfs):
    apply(rootfs, [("etc/conf", "file", "old")],
          [("etc/conf", "file", "new"), ("etc/.wh.conf", "file", "")])
    assert (rootfs / "etc/conf").read_text() == "new"


@pytest.mark.parametrize("marker_first", [True, False])
def test_opaque_directory_hides_lower_keeps_same_layer(rootfs, marker_first):
    lower = [("app/old", "file", "o"), ("app/sub/old", "file", "o"), ("app/sub/deeper/x", "file", "o"),
             ("other/stays", "file", "s")]
    marker = [("app/.wh..wh..opq", "file", "")]
    upper = [("app/", "dir", None), ("app/new", "file", "n"), ("app/sub/", "dir", None), ("app/sub/new", "file", "n")]
    apply(rootfs, lower, upper[:1] + marker + upper[1:] if marker_first else upper + marker)
    assert tree(rootfs) == {"app": "dir", "app/new": "n", "app/sub": "dir", "app/sub/new": "n",
                            "other": "dir", "other/stays": "s"}


def test_later_layer_replaces_types(rootfs):
    apply(rootfs, [("a/", "dir", None), ("a/inner", "file", "i"), ("b", "file", "f"), ("c", "symlink", "a")],
          [("a", "file", "now a file"), ("b/", "dir", None), ("b/inner", "file", "i"), ("c/", "dir", None)])
    assert tree(rootfs) == {"a": "now a file", "b": "dir", "b/inner": "i", "c": "dir"}


@pytest.mark.parametrize("name", ["../escape", "a/../../escape", "/etc/passwd", "a/b/../../../escape"])
def test_traversal_names_refused(rootfs, outside, name):
    with pytest.raises(UnpackError):
        apply(rootfs, [(name, "file", "pwned")])
    assert not (outside.parent / "escape").exists()


def test_relative_symlink_escape_refused(rootfs, outside):
    with pytest.raises(RootPathError):
        apply(rootfs, [("link", "symlink", "../outside")], [("link/secret", "file", "pwned")])
    assert (outside / "secret").read_text() == "host data\n"


def test_absolute_symlink_stays_inside_rootfs(rootfs, outside):
    apply(rootfs, [("link", "symlink", str(outside))], [("link/secret", "file", "image data")])
    assert (outside / "secret").read_text() == "host data\n"
    assert (rootfs / str(outside).lstrip("/") / "secret").read_text() == "image data"


def test_symlink_as_last_component_is_replaced_not_followed(rootfs, outside):
    apply(rootfs, [("target", "symlink", str(outside / "secret"))], [("target", "file", "replaced")])
    assert (outside / "secret").read_text() == "host data\n"
    assert not (rootfs / "target").is_symlink()


@pytest.mark.parametrize("linkname", ["../outside/secret", "/etc/passwd", "missing"])
def test_hardlink_outside_or_missing_refused(rootfs, linkname):
    with pytest.raises(RootPathError):
        apply(rootfs, [("stolen", "hardlink", linkname)])
    assert not (rootfs / "stolen").exists()


def test_hardlink_through_absolute_symlink_resolves_inside(rootfs, outside):
    apply(rootfs, [("data/file", "file", "inside")],
          [("dir", "symlink", "/data"), ("copy", "hardlink", "dir/file")])
    assert (rootfs / "copy").read_text() == "inside"
    assert os.stat(rootfs / "copy").st_ino == os.stat(rootfs / "data/file").st_ino


def test_whiteout_through_escaping_symlink_refused(rootfs, outside):
    with pytest.raises(RootPathError):
        apply(rootfs, [("link", "symlink", "../outside")], [("link/.wh.secret", "file", "")])
    assert (outside / "secret").exists()


def test_filesystem_type_by_device(tmp_path):
    """The bundles directory's file system is found by device number in mountinfo."""
    from guest_init.oci.overlay import filesystem_type
    device = os.stat(tmp_path).st_dev
    mountinfo = tmp_path / "mountinfo"
    mountinfo.write_text(
        "22 1 0:99 / /other rw - tmpfs tmpfs rw\n"
        f"23 1 {os.major(device)}:{os.minor(device)} / /a\\040dir rw shared:1 - overlay overlay rw,lowerdir=/x\n")
    assert filesystem_type(str(tmp_path), str(mountinfo)) == "overlay"
    assert filesystem_type("/proc") == "proc"
