"""Image layouts: index -> manifest -> config + layers, every blob verified, unpacked once per digest."""

import json
import os

import pytest

from goship_ctl.oci.build import INDEX_TYPE, canonical_json, descriptor
from guest_init.oci.layout import ImageLayout, LayoutError
from guest_init.oci.store import RootfsStore
from oci_helpers import layout_from_tars, tar_bytes, tree

BASE = [("bin/", "dir", None), ("bin/app", "file", "v1"), ("etc/conf", "file", "c")]
UPDATE = [("bin/app", "file", "v2"), ("etc/.wh.conf", "file", "")]


def blob_path(layout, digest):
    return layout / "blobs" / "sha256" / digest.split(":", 1)[1]


def manifest_of(layout):
    index = json.loads((layout / "index.json").read_text())
    return json.loads(blob_path(layout, index["manifests"][0]["digest"]).read_text())


@pytest.fixture(name="layout")
def layout_fixture(tmp_path):
    path = tmp_path / "images" / "demo"
    layout_from_tars(path, [tar_bytes(BASE), tar_bytes(UPDATE)])
    return path


def test_resolve_reads_config_and_layers(layout):
    image = ImageLayout(str(layout)).resolve()
    assert image.config == {"Cmd": ["/bin/true"], "Env": [
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]}
    assert len(image.layers) == 2 and len(image.diff_ids) == 2
    assert image.manifest_digest == json.loads((layout / "index.json").read_text())["manifests"][0]["digest"]


def test_layers_unpacked_in_order_once_per_digest(layout, tmp_path):
    store = RootfsStore(str(tmp_path / "state"))
    image = ImageLayout(str(layout)).resolve()
    rootfs = store.ensure(ImageLayout(str(layout)), image)
    assert rootfs == str(tmp_path / "state" / "rootfs" / image.manifest_digest.split(":")[1])
    assert tree(rootfs) == {"bin": "dir", "bin/app": "v2", "etc": "dir"}
    marker = os.path.join(rootfs, "bin", "app")
    inode = os.stat(marker).st_ino
    assert store.ensure(ImageLayout(str(layout)), image) == rootfs
    assert os.stat(marker).st_ino == inode  # not unpacked again
    assert os.listdir(tmp_path / "state" / "rootfs") == [os.path.basename(rootfs)]


def test_tampered_layer_refused_and_nothing_left(layout, tmp_path):
    layer = manifest_of(layout)["layers"][1]
    path = blob_path(layout, layer["digest"])
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x01  # keeps the size, changes the digest (gzip trailer)
    path.write_bytes(bytes(data))
    store = RootfsStore(str(tmp_path / "state"))
    image = ImageLayout(str(layout)).resolve()
    with pytest.raises(LayoutError):
        store.ensure(ImageLayout(str(layout)), image)
    assert os.listdir(tmp_path / "state" / "rootfs") == []


def test_uncompressed_content_must_match_diff_id(tmp_path):
    """A layer blob that matches its manifest digest but not the config's diff_id is refused."""
    layout = tmp_path / "demo"
    layout_from_tars(layout, [tar_bytes(BASE)])
    manifest = manifest_of(layout)
    config_path = blob_path(layout, manifest["config"]["digest"])
    config = json.loads(config_path.read_text())
    config["rootfs"]["diff_ids"] = ["sha256:" + "0" * 64]
    _rewrite(layout, manifest, config)
    store = RootfsStore(str(tmp_path / "state"))
    with pytest.raises(LayoutError, match="digest mismatch"):
        store.ensure(ImageLayout(str(layout)), ImageLayout(str(layout)).resolve())


def test_tampered_config_refused(layout):
    config_path = blob_path(layout, manifest_of(layout)["config"]["digest"])
    config_path.write_bytes(config_path.read_bytes().replace(b"/bin/true", b"/bin/evil"))
    with pytest.raises(LayoutError, match="digest mismatch"):
        ImageLayout(str(layout)).resolve()


def test_wrong_size_refused(layout):
    index = json.loads((layout / "index.json").read_text())
    index["manifests"][0]["size"] += 1
    (layout / "index.json").write_text(json.dumps(index))
    with pytest.raises(LayoutError, match="bytes"):
        ImageLayout(str(layout)).resolve()


@pytest.mark.parametrize("digest", ["sha256:../../etc/passwd", "md5:abc", "sha256:" + "A" * 64])
def test_malformed_digest_refused(layout, digest):
    index = json.loads((layout / "index.json").read_text())
    index["manifests"][0]["digest"] = digest
    (layout / "index.json").write_text(json.dumps(index))
    with pytest.raises(LayoutError, match="digest"):
        ImageLayout(str(layout)).resolve()


def test_missing_layout_marker(layout):
    (layout / "oci-layout").unlink()
    with pytest.raises(LayoutError, match="oci-layout"):
        ImageLayout(str(layout)).resolve()


def test_multi_platform_index_picks_linux_architecture(tmp_path):
    """A nested index with two platforms: the one for the asked architecture is chosen."""
    amd64, arm64 = tmp_path / "amd64", tmp_path / "arm64"
    layout_from_tars(amd64, [tar_bytes([("which", "file", "amd64")])])
    layout_from_tars(arm64, [tar_bytes([("which", "file", "arm64")])])
    for blob in (arm64 / "blobs" / "sha256").iterdir():
        os.link(blob, amd64 / "blobs" / "sha256" / blob.name)
    manifests = []
    for path, arch in ((amd64, "amd64"), (arm64, "arm64")):
        entry = json.loads((path / "index.json").read_text())["manifests"][0]
        manifests.append(dict(entry, platform={"os": "linux", "architecture": arch}))
    nested = canonical_json({"schemaVersion": 2, "mediaType": INDEX_TYPE, "manifests": manifests})
    blob_path(amd64, descriptor(INDEX_TYPE, nested)["digest"]).write_bytes(nested)
    (amd64 / "index.json").write_bytes(canonical_json(
        {"schemaVersion": 2, "manifests": [descriptor(INDEX_TYPE, nested)]}))
    layout = ImageLayout(str(amd64))
    assert layout.resolve("arm64").manifest_digest == manifests[1]["digest"]
    store = RootfsStore(str(tmp_path / "state"))
    assert tree(store.ensure(layout, layout.resolve("amd64"))) == {"which": "amd64"}
    with pytest.raises(LayoutError, match="cannot choose"):
        layout.resolve("s390x")


def _rewrite(layout, manifest, config):
    """Store a changed config and the manifest and index pointing at it."""
    config_bytes = canonical_json(config)
    blob_path(layout, descriptor("x", config_bytes)["digest"]).write_bytes(config_bytes)
    manifest = dict(manifest, config=descriptor(manifest["config"]["mediaType"], config_bytes))
    manifest_bytes = canonical_json(manifest)
    blob_path(layout, descriptor("x", manifest_bytes)["digest"]).write_bytes(manifest_bytes)
    index = json.loads((layout / "index.json").read_text())
    index["manifests"][0].update(descriptor(manifest["mediaType"], manifest_bytes))
    (layout / "index.json").write_text(json.dumps(index))
