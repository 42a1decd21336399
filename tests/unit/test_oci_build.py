"""Host-side image layouts: the same tree gives the same bytes and digests, whatever its times and owners."""

import gzip
import io
import json
import os
import tarfile

from goship_ctl.oci.build import ProcessConfig, write_layout
from goship_ctl.oci.busybox import BUSYBOX, build_busybox_image
from goship_ctl.oci.layer import layer_from_tree
from guest_init.oci.layout import ImageLayout
from guest_init.oci.store import RootfsStore

import pytest


def make_tree(root, mtime, owner):
    (root / "bin").mkdir(parents=True)
    (root / "bin" / "tool").write_text("#!/bin/sh\necho hi\n")
    os.chmod(root / "bin" / "tool", 0o755)
    (root / "bin" / "alias").symlink_to("tool")
    (root / "z-last").write_text("z")
    (root / "a-first").write_text("a")
    for path in [root, *root.rglob("*")]:
        os.lchown(path, owner, owner)
        os.utime(path, (mtime, mtime), follow_symlinks=False)


def test_same_tree_same_digests(tmp_path):
    make_tree(tmp_path / "one", 1000000, 0)
    make_tree(tmp_path / "two", 2000000, 1234)
    process = ProcessConfig(entrypoint=("/bin/tool",))
    first = write_layout(tmp_path / "layout1", [layer_from_tree(tmp_path / "one")], process)
    second = write_layout(tmp_path / "layout2", [layer_from_tree(tmp_path / "two")], process)
    assert first == second
    files = sorted(p.relative_to(tmp_path / "layout1") for p in (tmp_path / "layout1").rglob("*"))
    assert files == sorted(p.relative_to(tmp_path / "layout2") for p in (tmp_path / "layout2").rglob("*"))
    for relative in files:
        path = tmp_path / "layout1" / relative
        if path.is_file():
            assert path.read_bytes() == (tmp_path / "layout2" / relative).read_bytes()


def test_layer_is_sorted_root_owned_fixed_time(tmp_path):
    make_tree(tmp_path / "tree", 1234567, 1000)
    layer = layer_from_tree(tmp_path / "tree")
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(layer.blob))) as tar:
        members = tar.getmembers()
    assert [m.name for m in members] == ["a-first", "bin", "bin/alias", "bin/tool", "z-last"]
    assert {(m.uid, m.gid, m.uname, m.gname, m.mtime) for m in members} == {(0, 0, "", "", 0)}
    assert members[2].issym() and members[2].linkname == "tool"
    assert members[3].mode == 0o755


def test_process_config_changes_the_digest(tmp_path):
    make_tree(tmp_path / "tree", 0, 0)
    layer = layer_from_tree(tmp_path / "tree")
    first = write_layout(tmp_path / "a", [layer], ProcessConfig(cmd=("/bin/tool",)))
    second = write_layout(tmp_path / "b", [layer], ProcessConfig(cmd=("/bin/tool", "-v")))
    assert first != second


@pytest.mark.skipif(not BUSYBOX.exists(), reason="needs busybox-static")
def test_busybox_image_round_trips_through_the_guest_reader(tmp_path):
    digest = build_busybox_image(tmp_path / "demo")
    assert build_busybox_image(tmp_path / "again") == digest
    layout = ImageLayout(str(tmp_path / "demo"))
    image = layout.resolve()
    assert image.manifest_digest == digest
    assert image.config["Entrypoint"] == ["/bin/sh", "-c"] and "httpd" in image.config["Cmd"][0]
    rootfs = RootfsStore(str(tmp_path / "state")).ensure(layout, image)
    assert os.readlink(os.path.join(rootfs, "bin", "sh")) == "busybox"
    assert os.access(os.path.join(rootfs, "bin", "busybox"), os.X_OK)
    index = json.loads((tmp_path / "demo" / "index.json").read_text())
    assert index["manifests"][0]["platform"] == {"architecture": "amd64", "os": "linux"}
