"""Input hashing and the rebuild-or-not decision."""

import os
import time

import pytest

from goship_ctl.image import manifest
from goship_ctl.image.build import build_image
from goship_ctl.image.inputs import hash_apt_state, hash_tree, input_components, input_hash
from goship_ctl.image.spec import ImageSpec


@pytest.fixture
def guest_init(tmp_path):
    package = tmp_path / "src" / "guest_init"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "__main__.py").write_text("print('hi')\n")
    return package


def test_hash_tree_tracks_content_and_names_not_pycache(guest_init):
    before = hash_tree(guest_init)
    (guest_init / "__pycache__").mkdir()
    (guest_init / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"junk")
    assert hash_tree(guest_init) == before
    (guest_init / "__main__.py").write_text("print('changed')\n")
    changed = hash_tree(guest_init)
    assert changed != before
    (guest_init / "__main__.py").rename(guest_init / "main2.py")
    assert hash_tree(guest_init) != changed


def test_apt_state_follows_index_files_and_config(tmp_path):
    lists, config = tmp_path / "lists", tmp_path / "etc"
    lists.mkdir()
    (config / "sources.list.d").mkdir(parents=True)
    index = lists / "deb.example_dists_bookworm_main_binary-amd64_Packages.lz4"
    index.write_bytes(b"v1")
    (lists / "lock").write_bytes(b"")
    first = hash_apt_state(lists, config)
    assert hash_apt_state(lists, config) == first
    os.utime(index, ns=(time.time_ns(), time.time_ns() + 10**9))  # an apt-get update
    second = hash_apt_state(lists, config)
    assert second != first
    (config / "sources.list.d" / "extra.sources").write_text("Types: deb\n")
    assert hash_apt_state(lists, config) != second


def test_input_hash_changes_with_options_and_sources(guest_init):
    def digest(spec=ImageSpec(), apt_state="a"):
        return input_hash(input_components(spec, guest_init, apt_state=apt_state))
    base = digest()
    assert base == digest()
    assert base != digest(ImageSpec(compression="zstd"))
    assert base != digest(ImageSpec(extra_packages=("strace",)))
    assert base != digest(apt_state="b")
    (guest_init / "extra.py").write_text("")
    assert base != digest()


def fake_image(directory, wanted_hash):
    directory.mkdir(parents=True)
    files = {}
    for name in manifest.IMAGE_FILES:
        (directory / name).write_bytes(name.encode())
        files[name] = {"size": len(name), "sha256": "x"}
    manifest.write_manifest(directory, {"format": manifest.FORMAT, "input_hash": wanted_hash,
                                        "files": files})


def test_is_current_requires_same_hash_and_complete_files(tmp_path):
    image = tmp_path / "image"
    assert manifest.is_current(image, "h") is None
    fake_image(image, "h")
    assert manifest.is_current(image, "h")["input_hash"] == "h"
    assert manifest.is_current(image, "other") is None
    (image / "initrd.img").write_bytes(b"truncated")
    assert manifest.is_current(image, "h") is None
    (image / "initrd.img").unlink()
    assert manifest.is_current(image, "h") is None


class NoCommands:
    """A runner that fails the test if the build runs anything."""

    def available(self, program):
        return True

    def run(self, argv, *, cwd=None):
        raise AssertionError(f"a current image must not run {argv}")


def test_current_image_is_a_fast_no_op(tmp_path, guest_init):
    spec = ImageSpec()
    wanted = input_hash(input_components(spec, guest_init, apt_state="s"))
    fake_image(tmp_path / "image", wanted)
    started = time.monotonic()
    result = build_image(tmp_path / "image", spec=spec, guest_init=guest_init,
                         runner=NoCommands(), apt_state="s")
    assert result.cached and result.manifest["input_hash"] == wanted
    assert time.monotonic() - started < 2


def test_force_rebuilds_a_current_image(tmp_path, guest_init):
    spec = ImageSpec()
    fake_image(tmp_path / "image", input_hash(input_components(spec, guest_init, apt_state="s")))
    with pytest.raises(AssertionError, match="must not run"):
        build_image(tmp_path / "image", spec=spec, guest_init=guest_init,
                    runner=NoCommands(), apt_state="s", force=True)
