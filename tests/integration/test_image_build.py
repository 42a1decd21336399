"""The real guest image: build (or reuse) it, check it, boot it once under QEMU TCG.

The image is ``image_dir_for_tests()`` (``<repo>/build/image`` unless ``$GOSHIP_IMAGE_DIR``
says otherwise), the same directory the VM tests boot, so a test run builds it at most once.
"""

import hashlib
import json
import shutil
import subprocess
import time
from types import SimpleNamespace

import pytest
from ansible_collections.goship.core.plugins.module_utils import guest_channel

from goship_ctl.image.build import build_image
from goship_ctl.image.errors import BuildError
from goship_ctl.image.manifest import IMAGE_FILES, MANIFEST
from goship_ctl.image.spec import ImageSpec

pytestmark = pytest.mark.integration

MIB = 1 << 20
SIZE_BUDGET = 40 * MIB
BOOT_TIMEOUT_S = 120


@pytest.fixture(scope="module")
def image(guest_image):
    """The shared test image (conftest's ``guest_image``: built, or reused when current)."""
    output, manifest = guest_image
    return SimpleNamespace(output=output, manifest=manifest)


def sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def squashfs_listing(path):
    out = subprocess.run(["unsquashfs", "-lc", str(path)], check=True, capture_output=True,
                         text=True, timeout=120).stdout
    return {line.removeprefix("squashfs-root") for line in out.splitlines()}


def test_manifest_describes_the_files(image):
    manifest = json.loads((image.output / MANIFEST).read_text())
    assert manifest == image.manifest
    for name in IMAGE_FILES:
        path = image.output / name
        assert manifest["files"][name] == {"size": path.stat().st_size, "sha256": sha256(path)}
    assert manifest["total_size"] <= SIZE_BUDGET
    assert manifest["kernel_version"].startswith("6.1.") and manifest["kernel_version"].endswith("-amd64")
    assert manifest["python_version"].startswith("3.11.")
    names = {p["name"] for p in manifest["packages"]}
    assert {"python3.11-minimal", "libpython3.11-stdlib", "crun", "kmod", "busybox-static",
            f"linux-image-{manifest['kernel_version']}"} <= names
    assert not names & {"perl-base", "debconf", "systemd", "udev", "initramfs-tools"}
    assert len(manifest["input_hash"]) == 64


def test_root_image_contents(image):
    files = squashfs_listing(image.output / "rootfs.squashfs")
    stdlib = "/usr/lib/python3.11"
    release = image.manifest["kernel_version"]
    for path in ("/sbin", "/usr/sbin/goship-init", "/usr/bin/python3.11", "/usr/bin/crun",
                 "/usr/sbin/modprobe", "/usr/bin/busybox", "/usr/bin/sh",
                 "/usr/lib64/ld-linux-x86-64.so.2", "/usr/lib/x86_64-linux-gnu/libc.so.6",
                 f"{stdlib}/guest_init/__main__.py", f"{stdlib}/json/__init__.py",
                 f"{stdlib}/__pycache__/subprocess.cpython-311.pyc",
                 f"{stdlib}/guest_init/__pycache__/__main__.cpython-311.pyc",
                 f"/usr/lib/modules/{release}/modules.dep",
                 f"/usr/lib/modules/{release}/kernel/drivers/char/virtio_console.ko",
                 f"/usr/lib/modules/{release}/kernel/net/vmw_vsock/vmw_vsock_virtio_transport.ko"):
        assert path in files, path
    for path in (f"{stdlib}/test", f"{stdlib}/idlelib", f"{stdlib}/unittest", "/usr/share/doc",
                 f"/usr/lib/modules/{release}/kernel/fs/btrfs"):
        assert path not in files, path


def test_second_build_is_a_fast_no_op(image):
    first = build_image(image.output)  # current unless sources changed since the fixture
    before = {name: (image.output / name).stat().st_mtime_ns for name in (*IMAGE_FILES, MANIFEST)}
    started = time.monotonic()
    again = build_image(image.output)
    elapsed = time.monotonic() - started
    print(f"no-op build took {elapsed:.3f} s")
    assert again.cached and elapsed < 2
    assert again.manifest["input_hash"] == first.manifest["input_hash"]
    assert before == {name: (image.output / name).stat().st_mtime_ns for name in before}


def test_failed_build_leaves_the_image_intact(image):
    before = {name: sha256(image.output / name) for name in (*IMAGE_FILES, MANIFEST)}
    spec = ImageSpec(extra_packages=("goship-no-such-package",))
    with pytest.raises(BuildError, match="'goship-no-such-package' is not found"):
        build_image(image.output, spec=spec)
    assert before == {name: sha256(image.output / name) for name in before}
    assert not list(image.output.parent.glob(f".{image.output.name}.build-*"))


@pytest.mark.skipif(shutil.which("qemu-system-x86_64") is None, reason="needs qemu-system-x86_64")
def test_boots_to_guest_init_as_pid_1(image, tmp_path):
    """Kernel -> stage0 -> switch_root -> /sbin/goship-init -> guest_init answering as PID 1."""
    socket_path, console = tmp_path / "init.sock", tmp_path / "console.log"
    out = image.output
    qemu = subprocess.Popen([
        "qemu-system-x86_64", "-accel", "tcg", "-m", "512", "-nodefaults", "-display", "none",
        "-no-reboot", "-kernel", str(out / "vmlinuz"), "-initrd", str(out / "initrd.img"),
        "-append", "console=ttyS0 panic=-1 quiet",
        "-drive", f"file={out / 'rootfs.squashfs'},if=virtio,format=raw,readonly=on",
        "-device", "virtio-rng-pci", "-device", "virtio-serial",
        "-chardev", f"socket,id=init,path={socket_path},server=on,wait=off",
        "-device", "virtserialport,chardev=init,name=org.goship.init.0",
        "-serial", f"file:{console}",
    ])
    try:
        hello = guest_channel.wait_for_hello(str(socket_path), BOOT_TIMEOUT_S)
        assert hello["protocol_version"] == 1
        with guest_channel.GuestChannel(str(socket_path), 30) as channel:
            status = channel.request("status")
            assert status["pid"] == 1
            assert status["kernel"] == image.manifest["kernel_version"]
            channel.request("shutdown", {"reboot": False})
        qemu.wait(60)
        log = console.read_text(errors="replace")
        assert "goship stage0: /dev/vda mounted" in log
        print(log[-3000:])
    finally:
        if qemu.poll() is None:
            qemu.kill()
            qemu.wait(10)
