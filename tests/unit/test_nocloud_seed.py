"""NoCloud seed content and ISO round trip (pycdlib, no ansible)."""

import json
import os

from ansible_collections.goship.core.plugins.module_utils import nocloud_seed

GOSHIP = {
    "project": "alpha", "node": "n1", "generation": 2,
    "apps": [{"name": "web", "env": {"A": "plain", "TOKEN": {"value": "s3cr3t-v", "secret": True}}}],
}


def test_documents_are_canonical_json():
    one = nocloud_seed.build_seed_files("i-1", "alpha-n1", goship=GOSHIP)
    two = nocloud_seed.build_seed_files("i-1", "alpha-n1", goship=json.loads(json.dumps(GOSHIP)))
    assert one == two
    assert json.loads(one["meta-data"]) == {"instance-id": "i-1", "local-hostname": "alpha-n1"}
    assert one["user-data"].startswith(b"#cloud-config\n")
    assert json.loads(one["goship.json"]) == GOSHIP
    assert "network-config" not in one


def test_guest_init_archive_becomes_a_service():
    files = nocloud_seed.build_seed_files("i-1", "h", user_data={"runcmd": [["true"]]}, guest_init_archive=b"PK\x03\x04zip")
    doc = json.loads(files["user-data"].split(b"\n", 1)[1])
    paths = [f["path"] for f in doc["write_files"]]
    assert paths == [nocloud_seed.GUEST_INIT_ARCHIVE_PATH, "/etc/systemd/system/goship-guest-init.service"]
    assert doc["runcmd"][0] == ["true"], "the caller's runcmd comes first"
    assert doc["runcmd"][-1] == ["systemctl", "enable", "--now", "goship-guest-init.service"]


def test_secrets_found_and_masked():
    assert nocloud_seed.secret_values(GOSHIP) == {"s3cr3t-v"}
    files = nocloud_seed.build_seed_files("i-1", "h", goship=GOSHIP)
    text = nocloud_seed.describe_files(files, nocloud_seed.secret_values(GOSHIP))
    assert "s3cr3t-v" not in text
    assert nocloud_seed.SECRET_MASK in text and "plain" in text


def test_iso_round_trip_is_atomic_and_private(tmp_path):
    path = str(tmp_path / "seed.iso")
    files = nocloud_seed.build_seed_files("i-1", "h", network_config={"version": 2}, goship=GOSHIP)
    nocloud_seed.write_iso(path, files)
    assert nocloud_seed.read_iso_files(path) == files
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert os.listdir(tmp_path) == ["seed.iso"], "no temp file left behind"


def test_unreadable_iso_reads_as_none(tmp_path):
    path = tmp_path / "seed.iso"
    path.write_bytes(b"not an iso" * 100)
    assert nocloud_seed.read_iso_files(str(path)) is None
