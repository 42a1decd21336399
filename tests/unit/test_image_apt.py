"""apt metadata parsing and the .deb cache/download with an injected command runner."""

import hashlib
from pathlib import Path

import pytest

from goship_ctl.image import apt
from goship_ctl.image.errors import BuildError
from goship_ctl.image.runner import CommandFailed, CommandResult

SHOW = """\
Package: busybox-static
Version: 1:1.35.0-4+deb12u1+b1
Installed-Size: 2021
Architecture: amd64
Filename: pool/main/b/busybox/busybox-static_1.35.0-4+deb12u1+b1_amd64.deb
Size: {size}
SHA256: {sha}
Description: Standalone rescue shell
 with tons of builtin utilities

Package: kmod
Version: 30+20221128-1
Installed-Size: 254
Architecture: amd64
Filename: pool/main/k/kmod/kmod_30+20221128-1_amd64.deb
Size: 3
SHA256: {sha_kmod}

Package: kmod
Version: 29-1
Architecture: amd64
Filename: pool/main/k/kmod/kmod_29-1_amd64.deb
Size: 1
SHA256: 00
"""
BUSYBOX_DEB = b"busybox deb bytes"
KMOD_DEB = b"kmd"


def show_text():
    return SHOW.format(size=len(BUSYBOX_DEB), sha=hashlib.sha256(BUSYBOX_DEB).hexdigest(),
                       sha_kmod=hashlib.sha256(KMOD_DEB).hexdigest())


class DownloadRunner:
    """Plays apt-get download: writes the files apt would name into the cwd."""

    def __init__(self, files: dict[str, bytes], fail: str | None = None):
        self.files, self.fail, self.calls = files, fail, []

    def run(self, argv, *, cwd=None):
        self.calls.append(argv)
        if self.fail:
            raise CommandFailed(argv, 100, self.fail)
        for name, data in self.files.items():
            Path(cwd, name).write_bytes(data)
        return CommandResult("", "")


def test_parse_show_takes_first_stanza_per_package():
    infos = apt.parse_show(show_text())
    assert infos["kmod"].version == "30+20221128-1"
    busybox = infos["busybox-static"]
    assert busybox.version == "1:1.35.0-4+deb12u1+b1"
    assert busybox.deb_name == "busybox-static_1.35.0-4+deb12u1+b1_amd64.deb"
    assert busybox.installed_size_kib == 2021 and busybox.size == len(BUSYBOX_DEB)


def test_download_verifies_and_caches_under_pool_name(tmp_path):
    packages = list(apt.parse_show(show_text()).values())
    runner = DownloadRunner({
        "busybox-static_1%3a1.35.0-4+deb12u1+b1_amd64.deb": BUSYBOX_DEB,  # epoch escaped
        "kmod_30+20221128-1_amd64.deb": KMOD_DEB,
    })
    assert apt.missing_debs(tmp_path, packages) == packages
    apt.download(runner, tmp_path, packages)
    assert runner.calls[0][:3] == ["apt-get", "download", "-q"]
    assert "busybox-static=1:1.35.0-4+deb12u1+b1" in runner.calls[0]
    assert apt.missing_debs(tmp_path, packages) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.deb_name for p in packages)


def test_corrupt_cached_deb_counts_as_missing(tmp_path):
    busybox = apt.parse_show(show_text())["busybox-static"]
    (tmp_path / busybox.deb_name).write_bytes(b"x" * len(BUSYBOX_DEB))
    assert apt.missing_debs(tmp_path, [busybox]) == [busybox]


def test_download_failure_is_one_line_with_apt_error(tmp_path):
    kmod = apt.parse_show(show_text())["kmod"]
    stderr = ("W: some warning\nE: Failed to fetch http://x/kmod.deb  Could not resolve host\n"
              "E: Download failed\n")
    with pytest.raises(BuildError) as info:
        apt.download(DownloadRunner({}, fail=stderr), tmp_path, [kmod])
    assert str(info.value).startswith("apt-get download failed: apt-get failed (100): E: Failed to fetch")
    assert "\n" not in str(info.value)
    assert list(tmp_path.iterdir()) == []  # no partial files left in the cache


def test_checksum_mismatch_is_rejected(tmp_path):
    kmod = apt.parse_show(show_text())["kmod"]
    runner = DownloadRunner({"kmod_30+20221128-1_amd64.deb": b"evil"})
    with pytest.raises(BuildError, match="sha256 does not match"):
        apt.download(runner, tmp_path, [kmod])
    assert list(tmp_path.iterdir()) == []
