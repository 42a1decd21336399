"""``build_image``: the whole build, cached by input hash and swapped in atomically."""

from __future__ import annotations

import os
import re
import shutil
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from goship_ctl import __version__
from goship_ctl.image import apt, atomic, kmods, manifest
from goship_ctl.image.errors import BuildError
from goship_ctl.image.initrd import write_initrd
from goship_ctl.image.inputs import input_components, input_hash
from goship_ctl.image.paths import default_cache_dir, guest_init_source_dir
from goship_ctl.image.rootfs import build_rootfs
from goship_ctl.image.runner import CommandRunner
from goship_ctl.image.spec import BUILDER_VERSION, ImageSpec
from goship_ctl.image.squashfs import make_squashfs
from goship_ctl.image.staging import Staging
from goship_ctl.image.tree import RootTree
from goship_ctl.image.verify import check_python

HOST_TOOLS = {"apt-get": "apt", "apt-cache": "apt", "dpkg-deb": "dpkg", "depmod": "kmod",
              "strip": "binutils", "mksquashfs": "squashfs-tools"}
KERNEL_PACKAGE_RE = re.compile(r"^linux-image-\d")
MIB = 1 << 20
# Free space a build needs besides the unpacked packages: root tree, image, slack.
WORK_SPACE_MARGIN = 300 * MIB
STEPS = 8


@dataclass(frozen=True)
class BuildResult:
    output: Path
    manifest: dict
    cached: bool
    seconds: float


class Progress:
    """One line per long step, to stderr."""

    def __init__(self, emit: Callable[[str], None] | None = None):
        self.emit = emit or (lambda line: print(line, file=sys.stderr, flush=True))
        self.started = time.monotonic()
        self.count = 0

    def step(self, message: str) -> None:
        self.count += 1
        self.emit(f"[{self.count}/{STEPS}] {time.monotonic() - self.started:6.1f}s {message}")


def build_image(output: Path, *, spec: ImageSpec = ImageSpec(), cache_dir: Path | None = None,
                guest_init: Path | None = None, force: bool = False,
                runner: CommandRunner | None = None, progress: Progress | None = None,
                apt_state: str | None = None) -> BuildResult:
    """Builds the image into ``output`` unless it already matches its inputs.

    Raises ``BuildError`` (one line) and leaves any previous image untouched on failure.
    ``runner`` and ``apt_state`` let tests fake the host commands and the apt index state.
    """
    started = time.monotonic()
    output = Path(os.path.abspath(output))
    cache_dir = Path(os.path.abspath(cache_dir or default_cache_dir(output)))
    guest_init = guest_init or guest_init_source_dir()
    if guest_init is None or not guest_init.is_dir():
        raise BuildError("guest_init package not found (run from the GoShip tree or pass its directory)")
    components = input_components(spec, guest_init, apt_state=apt_state)
    wanted = input_hash(components)
    if not force and (current := manifest.is_current(output, wanted)):
        return BuildResult(output, current, True, time.monotonic() - started)
    runner = runner or CommandRunner()
    check_host_tools(runner)
    atomic.check_replaceable(output)  # before the lock file lands next to a wrong --output
    try:
        with atomic.build_lock(output):
            if not force and (current := manifest.is_current(output, wanted)):
                return BuildResult(output, current, True, time.monotonic() - started)
            atomic.remove_stale_work_dirs(output)
            atomic.check_replaceable(output)
            job = _Build(spec, output, cache_dir, guest_init, runner,
                         progress or Progress(), components, wanted, started)
            return job.run()
    except OSError as exc:
        raise BuildError(f"{exc.strerror or exc} ({exc.filename or output})") from exc


def check_host_tools(runner: CommandRunner) -> None:
    missing = [f"{tool} (Debian package {pkg})" for tool, pkg in HOST_TOOLS.items()
               if not runner.available(tool)]
    if missing:
        raise BuildError(f"required host tools not found: {', '.join(missing)}")


def kernel_package(spec: ImageSpec, packages: list[apt.PackageInfo]) -> apt.PackageInfo:
    """The concrete ``linux-image-<version>`` package behind ``spec.kernel_package``."""
    for package in packages:
        if KERNEL_PACKAGE_RE.match(package.name):
            return package
    raise BuildError(f"no kernel package found: {spec.kernel_package} does not resolve to "
                     "a linux-image-<version> package")


def check_free_space(needs: dict[Path, int]) -> None:
    """``needs``: bytes per directory (which may not exist yet), summed per file system."""
    per_device: dict[int, tuple[Path, int]] = {}
    for directory, size in needs.items():
        existing = directory
        while not existing.exists():
            existing = existing.parent
        device = existing.stat().st_dev
        previous = per_device.get(device, (existing, 0))
        per_device[device] = (previous[0], previous[1] + size)
    for directory, size in per_device.values():
        stats = os.statvfs(directory)
        free = stats.f_bavail * stats.f_frsize
        if free < size:
            raise BuildError(f"not enough free space on {directory}: the build needs about "
                             f"{size // MIB} MiB, {free // MIB} MiB free")


class _Build:
    def __init__(self, spec, output, cache_dir, guest_init, runner, progress, components,
                 wanted_hash, started):
        self.spec, self.output, self.cache_dir = spec, output, cache_dir
        self.guest_init, self.runner, self.progress = guest_init, runner, progress
        self.components, self.wanted_hash, self.started = components, wanted_hash, started

    def run(self) -> BuildResult:
        self.progress.step("resolving packages through the configured apt sources")
        packages = apt.resolve(self.runner, self.spec.roots(), self.spec.unfollowed)
        kernel = kernel_package(self.spec, packages)
        to_fetch = apt.missing_debs(self.cache_dir, packages)
        check_free_space({
            self.cache_dir: sum(p.size for p in to_fetch),
            self.output.parent: sum(p.installed_size_kib for p in packages) * 1024 + WORK_SPACE_MARGIN,
        })
        if to_fetch:
            self.progress.step(f"downloading {len(to_fetch)} of {len(packages)} packages "
                               f"({sum(p.size for p in to_fetch) / MIB:.1f} MiB) into {self.cache_dir}")
        else:
            self.progress.step(f"all {len(packages)} packages already in {self.cache_dir}")
        apt.download(self.runner, self.cache_dir, to_fetch)
        with atomic.work_dir(self.output) as work:
            image = work / "image"
            image.mkdir()
            staging = Staging(work / "packages")
            self.progress.step(f"extracting {len(packages)} packages")
            staging.extract(self.runner, {p.name: self.cache_dir / p.deb_name for p in packages})
            release, vmlinuz, moddir = self._kernel_files(staging, kernel)
            self.progress.step(f"selecting kernel modules of {release}")
            kmods.run_depmod(self.runner, staging.package_dir(kernel.name), release)
            tables = kmods.read_tables(moddir)
            stage0_modules = kmods.module_closure(tables, self.spec.stage0_modules)
            rootfs_modules = kmods.module_closure(tables, self.spec.rootfs_modules)
            self.progress.step("assembling the root file system")
            tree = RootTree(work / "rootfs")
            build_rootfs(tree, staging, self.runner, guest_init=self.guest_init,
                         extra_packages=self.spec.extra_packages, tables=tables,
                         modules=rootfs_modules, source_moddir=moddir, kernel_version=release)
            self.progress.step("checking the guest's Python")
            python_version = check_python(tree, self.runner)
            self.progress.step("writing vmlinuz and initrd.img")
            shutil.copyfile(vmlinuz, image / "vmlinuz")
            busybox = staging.locate("bin/busybox", ["busybox-static"])
            write_initrd(image / "initrd.img", busybox,
                         [moddir / tables.paths[name] for name in stage0_modules])
            self.progress.step(f"compressing rootfs.squashfs ({self.spec.compression})")
            make_squashfs(self.runner, tree.root, image / "rootfs.squashfs", self.spec.compression)
            data = self._manifest(image, packages, kernel, release, python_version,
                                  stage0_modules, rootfs_modules, tree.size())
            manifest.write_manifest(image, data)
            atomic.replace_dir(image, self.output)
        return BuildResult(self.output, data, False, data["build_seconds"])

    def _kernel_files(self, staging: Staging, kernel: apt.PackageInfo) -> tuple[str, Path, Path]:
        root = staging.package_dir(kernel.name)
        images = sorted((root / "boot").glob("vmlinuz-*"))
        if len(images) != 1:
            raise BuildError(f"{kernel.name} holds {len(images)} kernel images (boot/vmlinuz-*), expected 1")
        release = images[0].name[len("vmlinuz-"):]
        moddir = root / "lib" / "modules" / release
        if not moddir.is_dir():
            raise BuildError(f"{kernel.name} holds no modules for {release}")
        return release, images[0], moddir

    def _manifest(self, image, packages, kernel, release, python_version, stage0_modules,
                  rootfs_modules, rootfs_bytes) -> dict:
        files = manifest.describe_files(image)
        return {
            "format": manifest.FORMAT,
            "builder_version": f"goship-ctl {__version__}, image builder {BUILDER_VERSION}",
            "built_at": datetime.now(timezone.utc).replace(microsecond=0).isoformat(),
            "build_seconds": round(time.monotonic() - self.started, 1),
            "input_hash": self.wanted_hash,
            "inputs": self.components,
            "kernel_version": release,
            "kernel_package": {"name": kernel.name, "version": kernel.version},
            "python_version": python_version,
            "squashfs_compression": self.spec.compression,
            "rootfs_uncompressed_size": rootfs_bytes,
            "stage0_modules": stage0_modules,
            "rootfs_modules": rootfs_modules,
            "packages": sorted(({"name": p.name, "version": p.version, "sha256": p.sha256}
                                for p in packages), key=lambda p: p["name"]),
            "files": files,
            "total_size": sum(f["size"] for f in files.values()),
        }
