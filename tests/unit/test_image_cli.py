"""``goship-ctl image build`` argument handling and output."""

import json
import subprocess
import sys

import pytest

from goship_ctl import cli
from goship_ctl.commands import image as image_command
from goship_ctl.image.build import BuildResult
from goship_ctl.image.errors import BuildError

MANIFEST = {
    "kernel_version": "6.1.0-57-amd64",
    "kernel_package": {"name": "linux-image-6.1.0-57-amd64", "version": "6.1.192-3"},
    "python_version": "3.11.2", "squashfs_compression": "lz4", "input_hash": "ab" * 32,
    "packages": [{"name": "kmod", "version": "30"}],
    "files": {"vmlinuz": {"size": 8 << 20}, "initrd.img": {"size": 1 << 20},
              "rootfs.squashfs": {"size": 19 << 20}},
    "total_size": 28 << 20,
}


def fake_build(calls, error=None):
    def build_image(output, **kwargs):
        calls.append((output, kwargs))
        if error:
            raise BuildError(error)
        return BuildResult(output, MANIFEST, cached=True, seconds=0.1)
    return build_image


def test_options_reach_the_builder(monkeypatch, tmp_path, capsys):
    calls = []
    monkeypatch.setattr(image_command, "build_image", fake_build(calls))
    status = cli.main(["image", "build", "--output", str(tmp_path), "--cache-dir", str(tmp_path / "c"),
                       "--force", "--compression", "zstd", "--extra-package", "strace"])
    assert status == 0
    output, kwargs = calls[0]
    assert output == tmp_path and kwargs["cache_dir"] == tmp_path / "c" and kwargs["force"]
    assert kwargs["spec"].compression == "zstd" and kwargs["spec"].extra_packages == ("strace",)
    out = capsys.readouterr().out
    assert "up to date, nothing to do" in out and "6.1.0-57-amd64" in out and "28.0 MiB" in out


def test_default_output_honours_goship_image_dir(monkeypatch, tmp_path):
    calls = []
    monkeypatch.setattr(image_command, "build_image", fake_build(calls))
    monkeypatch.setenv("GOSHIP_IMAGE_DIR", str(tmp_path / "img"))
    cli.main(["image", "build"])
    assert calls[0][0] == tmp_path / "img"


def test_json_output(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(image_command, "build_image", fake_build([]))
    assert cli.main(["image", "build", "--output", str(tmp_path), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["cached"] is True and data["manifest"]["kernel_version"] == "6.1.0-57-amd64"


def test_error_is_one_line_and_non_zero(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(image_command, "build_image", fake_build([], "no kernel package found"))
    assert cli.main(["image", "build", "--output", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err == "goship-ctl image build: error: no kernel package found\n"


def test_missing_subcommand_is_a_usage_error():
    with pytest.raises(SystemExit) as info:
        cli.main(["image"])
    assert info.value.code == 2


def test_python_dash_m_entry_point():
    proc = subprocess.run([sys.executable, "-m", "goship_ctl", "image", "build", "--help"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0 and "--cache-dir" in proc.stdout
