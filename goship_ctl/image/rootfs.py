"""Assembles the guest root: programs, Python, kernel modules, libraries, /etc."""

from __future__ import annotations

import os
from pathlib import Path

from goship_ctl.image import kmods, stdlib
from goship_ctl.image.errors import BuildError
from goship_ctl.image.libs import install_shared_libraries
from goship_ctl.image.paths import IMAGE_PACKAGE_DIR
from goship_ctl.image.runner import CommandFailed, CommandRunner
from goship_ctl.image.staging import Staging, merged_path
from goship_ctl.image.tree import RootTree

GOSHIP_INIT = IMAGE_PACKAGE_DIR / "goship-init.sh"

# (package, image path) of each program the guest runs.
PROGRAMS = (
    ("crun", "usr/bin/crun"),
    ("kmod", "bin/kmod"),
    ("busybox-static", "bin/busybox"),
)
KMOD_LINKS = ("sbin/modprobe", "sbin/insmod", "sbin/rmmod", "sbin/lsmod", "sbin/modinfo")
# A small debugging toolbox; symlinks to busybox cost nothing.
BUSYBOX_APPLETS = (
    "awk", "cat", "chmod", "chown", "cp", "cut", "date", "df", "dmesg", "du", "echo", "env",
    "find", "free", "grep", "gunzip", "gzip", "head", "hostname", "id", "ip", "kill", "less",
    "ln", "ls", "mkdir", "mount", "mv", "nc", "ping", "ps", "rm", "rmdir", "sed", "sh",
    "sleep", "sort", "stat", "sync", "tail", "tar", "top", "touch", "tr", "umount", "uname",
    "vi", "wc", "wget",
)
DIRECTORIES = {"dev": 0o755, "proc": 0o555, "sys": 0o555, "run": 0o755, "tmp": 0o1777,
               "root": 0o700, "mnt": 0o755, "var/tmp": 0o1777}
ETC_FILES = {
    "etc/passwd": "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    "etc/group": "root:x:0:\nnogroup:x:65534:\n",
    "etc/hosts": "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n",
    "etc/nsswitch.conf": "passwd: files\ngroup: files\nhosts: files dns\n",
}
# Never copied from extra packages.
DOC_DIRS = ("usr/share/doc", "usr/share/man", "usr/share/info", "usr/share/locale",
            "usr/share/lintian", "usr/share/bug")


def install_programs(tree: RootTree, staging: Staging) -> None:
    for package, image_path in PROGRAMS:
        source = staging.locate(image_path, [package])
        if source is None:
            raise BuildError(f"/{image_path} not found in package {package}")
        tree.install(source, image_path)
    for link in KMOD_LINKS:
        tree.symlink(link, "../bin/kmod")
    for applet in BUSYBOX_APPLETS:
        if not tree.exists(f"bin/{applet}"):
            tree.symlink(f"bin/{applet}", "busybox")
    tree.install(GOSHIP_INIT, "sbin/goship-init", 0o755)


def install_base_files(tree: RootTree) -> None:
    for path, mode in DIRECTORIES.items():
        tree.directory(path, mode)
    for path, text in ETC_FILES.items():
        tree.write(path, text.encode())
    tree.symlink("etc/mtab", "../proc/self/mounts")


def install_extra_package(tree: RootTree, staging: Staging, package: str) -> None:
    """Copies a whole extra package (minus documentation) into the root."""
    source_root = staging.package_dir(package)
    for dirpath, dirs, files in os.walk(source_root):
        for name in files + [d for d in dirs if Path(dirpath, d).is_symlink()]:
            source = Path(dirpath, name)
            relpath = merged_path(str(source.relative_to(source_root)))
            if relpath.startswith(DOC_DIRS):
                continue
            if source.is_symlink():
                tree.symlink(relpath, os.readlink(source))
            else:
                tree.install(source, relpath)


def install_modules(tree: RootTree, runner: CommandRunner, tables: kmods.ModuleTables,
                    names: list[str], source_moddir: Path, kernel_version: str) -> None:
    kmods.install_modules(tables, names, source_moddir, tree.path(f"usr/lib/modules/{kernel_version}"))
    kmods.run_depmod(runner, tree.root, kernel_version)


def strip_binaries(tree: RootTree, runner: CommandRunner) -> None:
    files = [str(path) for path in tree.linked_elf_files()]
    try:
        runner.run(["strip", "--strip-unneeded", *files])
    except CommandFailed as exc:
        raise BuildError(f"strip failed: {exc}")


def build_rootfs(tree: RootTree, staging: Staging, runner: CommandRunner, *,
                 guest_init: Path, extra_packages: tuple[str, ...], tables: kmods.ModuleTables,
                 modules: list[str], source_moddir: Path, kernel_version: str) -> None:
    install_base_files(tree)
    install_programs(tree, staging)
    stdlib.install_python(tree, staging)
    stdlib.install_guest_init(tree, guest_init)
    for package in extra_packages:
        install_extra_package(tree, staging, package)
    install_modules(tree, runner, tables, modules, source_moddir, kernel_version)
    install_shared_libraries(tree, staging)
    strip_binaries(tree, runner)
    stdlib.compile_stdlib(tree)
