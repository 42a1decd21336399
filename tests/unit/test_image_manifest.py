"""manifest.json writing and reading."""

import hashlib
import json

from goship_ctl.image import manifest


def test_describe_files_sizes_and_hashes(tmp_path):
    for name in manifest.IMAGE_FILES:
        (tmp_path / name).write_bytes(name.encode() * 3)
    files = manifest.describe_files(tmp_path)
    assert set(files) == set(manifest.IMAGE_FILES)
    assert files["vmlinuz"] == {"size": 21, "sha256": hashlib.sha256(b"vmlinuz" * 3).hexdigest()}


def test_write_then_read_round_trips_and_leaves_no_temp(tmp_path):
    data = {"format": manifest.FORMAT, "input_hash": "abc", "packages": [{"name": "kmod"}]}
    path = manifest.write_manifest(tmp_path, data)
    assert path.name == "manifest.json"
    assert json.loads(path.read_text()) == data
    assert manifest.read_manifest(tmp_path) == data
    assert [p.name for p in tmp_path.iterdir()] == ["manifest.json"]


def test_unreadable_manifest_reads_as_none(tmp_path):
    assert manifest.read_manifest(tmp_path) is None
    (tmp_path / "manifest.json").write_text("{not json")
    assert manifest.read_manifest(tmp_path) is None
    (tmp_path / "manifest.json").write_text("[1, 2]")
    assert manifest.read_manifest(tmp_path) is None
