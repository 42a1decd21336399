"""Shared libraries of the guest: exactly those the shipped ELF files need.

Packages are extracted whole, but only the libraries reached through ``DT_NEEDED`` (and
each binary's ``PT_INTERP`` loader) are copied into the root, each under its soname.
A needed library that no package of the closure provides fails the build: the guest
would fail to start the binary otherwise.
"""

from __future__ import annotations

from pathlib import Path

from goship_ctl.image.elf import read_elf
from goship_ctl.image.errors import BuildError
from goship_ctl.image.staging import Staging
from goship_ctl.image.tree import RootTree

LIBRARY_DIR = "usr/lib/x86_64-linux-gnu"
SEARCH_DIRS = ("usr/lib/x86_64-linux-gnu", "usr/lib")  # /lib variants are found too


def install_shared_libraries(tree: RootTree, staging: Staging) -> list[str]:
    """Copies the needed libraries into ``tree``; returns their image paths."""
    installed: list[str] = []
    missing: dict[str, str] = {}
    pending = tree.linked_elf_files()
    while pending:
        binary = pending.pop()
        info = read_elf(binary)
        wanted = [f"{LIBRARY_DIR}/{soname}" for soname in info.needed]
        if info.interpreter:
            wanted.append(info.interpreter)
        for image_path in wanted:
            if tree.exists(image_path):
                continue
            source = _find_library(staging, image_path)
            if source is None:
                missing.setdefault(Path(image_path).name, str(binary.relative_to(tree.root)))
                continue
            mode = 0o755 if image_path == info.interpreter else 0o644
            pending.append(tree.install(source, image_path, mode))
            installed.append(image_path)
    if missing:
        details = ", ".join(f"{lib} (needed by /{by})" for lib, by in sorted(missing.items()))
        raise BuildError(f"shared libraries missing from the package closure: {details}")
    return sorted(installed)


def _find_library(staging: Staging, image_path: str) -> Path | None:
    if not image_path.startswith(LIBRARY_DIR + "/"):
        return staging.locate(image_path)
    soname = Path(image_path).name
    for directory in SEARCH_DIRS:
        found = staging.locate(f"{directory}/{soname}")
        if found is not None:
            return found
    return None
