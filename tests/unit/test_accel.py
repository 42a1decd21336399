"""The KVM probe: its image, its deadline (process group killed), and the per-boot cache."""

import json
import os
import shutil
import stat
import subprocess
import time
from pathlib import Path

import pytest

from ansible_collections.goship.core.plugins.module_utils import accel

PROBE_SOURCE = Path(__file__).parent / "data" / "accel_probe.S"
needs_qemu = pytest.mark.skipif(shutil.which(accel.QEMU_BINARY) is None, reason="needs qemu-system-x86_64")


@pytest.mark.skipif(not all(shutil.which(tool) for tool in ("as", "ld", "objcopy")), reason="needs binutils")
def test_probe_image_is_built_from_its_source(tmp_path):
    subprocess.run(["as", "--32", "-o", "p.o", str(PROBE_SOURCE)], cwd=tmp_path, check=True, timeout=60)
    subprocess.run(["ld", "-m", "elf_i386", "-Ttext=0x100000", "-o", "p.elf", "p.o"], cwd=tmp_path, check=True, timeout=60)
    subprocess.run(["objcopy", "-O", "binary", "p.elf", "p.bin"], cwd=tmp_path, check=True, timeout=60)
    assert (tmp_path / "p.bin").read_bytes() == accel.PROBE_IMAGE


@needs_qemu
def test_probe_runs_under_tcg():
    result = accel.run_probe("tcg", timeout=30)
    assert result.ok, result.detail
    assert result.seconds < 30


@needs_qemu
def test_deadline_kills_the_whole_process_group(tmp_path):
    """A wrapper that forks a long-lived child stands in for QEMU; both must be gone afterwards."""
    child_pid_file = tmp_path / "child.pid"
    wrapper = tmp_path / "qemu-wrapper"
    wrapper.write_text(f"#!/bin/sh\nsleep 300 &\necho $! > {child_pid_file}\nexec {shutil.which(accel.QEMU_BINARY)} \"$@\"\n")
    wrapper.chmod(0o755)
    started = time.monotonic()
    result = accel.run_probe("tcg", qemu=str(wrapper), timeout=0.02)
    assert not result.ok and "no result within" in result.detail
    assert time.monotonic() - started < 10
    child = int(child_pid_file.read_text())
    for _attempt in range(50):  # the killed child is reaped by init a moment later
        if not os.path.exists(f"/proc/{child}") or _state(child) == "Z":
            break
        time.sleep(0.1)
    assert not os.path.exists(f"/proc/{child}") or _state(child) == "Z"


def _state(pid):
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"


def test_missing_qemu_is_reported():
    result = accel.run_probe("tcg", qemu="/nonexistent/qemu-system-x86_64")
    assert not result.ok and "cannot run" in result.detail


@needs_qemu
def test_choice_is_cached_per_boot(tmp_path, monkeypatch):
    probes = []
    real_detect = accel.detect

    def counting_detect(*args, **kwargs):
        probes.append(args)
        return real_detect(*args, **kwargs)

    monkeypatch.setattr(accel, "detect", counting_detect)
    first = accel.choose(str(tmp_path), timeout=2, boot_id="boot-a")
    assert first.accel in ("kvm", "tcg") and first.reason and first.boot_id == "boot-a"
    assert first.virt_type == ("kvm" if first.accel == "kvm" else "qemu")
    cache = tmp_path / accel.CACHE_NAME
    assert stat.S_IMODE(cache.stat().st_mode) == 0o600
    assert json.loads(cache.read_text())["boot_id"] == "boot-a"

    assert accel.choose(str(tmp_path), timeout=2, boot_id="boot-a") == first
    assert len(probes) == 1
    accel.choose(str(tmp_path), timeout=2, boot_id="boot-b")
    assert len(probes) == 2
    cache.write_text("{not json")
    accel.choose(str(tmp_path), timeout=2, boot_id="boot-b")
    assert len(probes) == 3


def test_boot_id_is_read_from_the_kernel():
    assert len(accel.read_boot_id()) == 36
