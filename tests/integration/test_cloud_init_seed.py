"""goship.core.cloud_init_seed through ansible-playbook: idempotence, check mode, diff, ISO contents."""

import json
import shutil
import subprocess

import pytest

from ansible_play import run_tasks

pytestmark = pytest.mark.integration

SECRET = "hunter2-not-in-output"


def seed_task(path, generation=1, **extra):
    args = {
        "path": str(path), "instance_id": f"goship-t-alpha-{generation}", "hostname": "alpha-t",
        "goship": {"project": "alpha", "node": "t", "generation": generation,
                   "apps": [{"name": "web", "env": {"KEY": {"value": SECRET, "secret": True}}}]},
    }
    args.update(extra)
    return {"goship.core.cloud_init_seed": args}


def isoinfo_files(path):
    out = subprocess.run(["isoinfo", "-J", "-f", "-i", str(path)], check=True, capture_output=True, text=True).stdout
    return sorted(out.split())


def isoinfo_read(path, name):
    return subprocess.run(["isoinfo", "-J", "-x", "/" + name, "-i", str(path)], check=True, capture_output=True).stdout


def test_create_is_idempotent_and_readable(tmp_path):
    iso = tmp_path / "seed.iso"
    first, second = run_tasks([seed_task(iso), seed_task(iso)])
    assert first["changed"] is True and second["changed"] is False
    assert isoinfo_files(iso) == ["/goship.json", "/meta-data", "/user-data"]
    assert json.loads(isoinfo_read(iso, "goship.json"))["generation"] == 1
    label = subprocess.run(["isoinfo", "-d", "-i", str(iso)], check=True, capture_output=True, text=True).stdout
    assert "Volume id: cidata" in label
    assert SECRET not in json.dumps(first), "secret leaked into the module result"


def test_check_mode_and_diff_before_a_change(tmp_path):
    iso = tmp_path / "seed.iso"
    run_tasks([seed_task(iso)])
    before = iso.read_bytes()
    (result,) = run_tasks([seed_task(iso, generation=2)], check=True, diff=True)
    assert result["changed"] is True
    assert iso.read_bytes() == before, "check mode wrote the seed"
    diff = result["diff"][0] if isinstance(result["diff"], list) else result["diff"]
    assert '"generation": 2' in diff["after"] and '"generation": 1' in diff["before"]
    assert SECRET not in json.dumps(result)
    (real,) = run_tasks([seed_task(iso, generation=2)])
    assert real["changed"] is True and json.loads(isoinfo_read(iso, "goship.json"))["generation"] == 2


def test_absent_twice(tmp_path):
    iso = tmp_path / "seed.iso"
    run_tasks([seed_task(iso)])
    first, second = run_tasks([{"goship.core.cloud_init_seed": {"path": str(iso), "state": "absent"}}] * 2)
    assert (first["changed"], second["changed"]) == (True, False)
    assert not iso.exists()


def test_bad_hostname_names_the_option(tmp_path):
    (result,) = run_tasks([seed_task(tmp_path / "seed.iso", hostname="Bad_Host")])
    assert result["failed"] and "hostname" in result["msg"]
    assert not (tmp_path / "seed.iso").exists()


@pytest.mark.skipif(shutil.which("cloud-init") is None, reason="cloud-init (Debian package) is installed by make setup")
def test_stock_image_user_data_passes_cloud_init_schema(tmp_path):
    archive = tmp_path / "guest_init.pyz"
    archive.write_bytes(b"PK\x05\x06" + b"\0" * 18)
    iso = tmp_path / "seed.iso"
    (result,) = run_tasks([seed_task(iso, guest_init_archive=str(archive),
                                     network_config={"version": 2, "ethernets": {"e": {"match": {"name": "en*"}, "dhcp4": True}}})])
    assert result["changed"]
    user_data = tmp_path / "user-data"
    user_data.write_bytes(isoinfo_read(iso, "user-data"))
    check = subprocess.run(["cloud-init", "schema", "--config-file", str(user_data)], capture_output=True, text=True, check=False)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "goship-guest-init.service" in user_data.read_text()
