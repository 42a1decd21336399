"""The images data disk: named by content, byte-identical for the same images, corrupt layouts refused."""

import shutil
import subprocess
from pathlib import Path

import pytest
from ansible_collections.goship.core.plugins.module_utils import images_disk

from oci_helpers import layout_from_tars, tar_bytes

pytestmark = pytest.mark.skipif(not shutil.which("mksquashfs"), reason="needs squashfs-tools")


@pytest.fixture(name="layouts")
def layouts_fixture(tmp_path):
    web, worker = tmp_path / "src" / "web", tmp_path / "src" / "worker-layout"
    layout_from_tars(web, [tar_bytes([("www/index.html", "file", "hello")])])
    layout_from_tars(worker, [tar_bytes([("bin/job", "file", "job")])])
    return {"web": str(web), "worker": str(worker)}


def test_same_images_same_file(layouts, tmp_path):
    path, changed = images_disk.build_images_disk(layouts, str(tmp_path / "out"))
    assert changed and Path(path).name.startswith("images-") and path.endswith(".squashfs")
    again, changed_again = images_disk.build_images_disk(layouts, str(tmp_path / "out"))
    assert (again, changed_again) == (path, False)
    elsewhere, _changed = images_disk.build_images_disk(layouts, str(tmp_path / "elsewhere"))
    assert Path(elsewhere).name == Path(path).name
    assert Path(elsewhere).read_bytes() == Path(path).read_bytes()  # deterministic mksquashfs


def test_contents_are_layouts_by_image_name(layouts, tmp_path):
    path, _changed = images_disk.build_images_disk(layouts, str(tmp_path / "out"))
    listing = subprocess.run(["unsquashfs", "-l", "-d", "", path], capture_output=True, text=True, check=True).stdout
    names = {line.strip().lstrip("/") for line in listing.splitlines() if line.strip()}
    assert {"web/oci-layout", "web/index.json", "worker/oci-layout"} <= names
    assert not any(name.startswith("worker-layout") for name in names)


def test_changed_image_changes_the_name(layouts, tmp_path):
    first, _changed = images_disk.build_images_disk(layouts, str(tmp_path / "out"))
    layout_from_tars(Path(layouts["web"]), [tar_bytes([("www/index.html", "file", "changed")])])
    second, changed = images_disk.build_images_disk(layouts, str(tmp_path / "out"))
    assert changed and second != first
    renamed, _changed = images_disk.build_images_disk({"site": layouts["web"], "worker": layouts["worker"]},
                                                      str(tmp_path / "out"))
    assert renamed not in (first, second)


def test_corrupt_blob_refused(layouts, tmp_path):
    blob = sorted((Path(layouts["web"]) / "blobs" / "sha256").iterdir())[0]
    blob.write_bytes(blob.read_bytes() + b"tampered")
    with pytest.raises(images_disk.ImagesDiskError, match="hashes to"):
        images_disk.build_images_disk(layouts, str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("name", ["../up", "a/b", "", ".hidden"])
def test_bad_image_names_refused(layouts, tmp_path, name):
    with pytest.raises(images_disk.ImagesDiskError, match="image name"):
        images_disk.build_images_disk({name: layouts["web"]}, str(tmp_path / "out"))
