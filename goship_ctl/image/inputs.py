"""The input hash that decides whether an existing image is still current.

It covers the builder's own files, the guest_init sources, the build options, and the
host's apt state (the stat of the package index files and the contents of the apt
configuration), which stands in for the resolved name=version set: resolving that takes
seconds, stat-ing the index takes milliseconds. An ``apt-get update`` therefore triggers a
rebuild even when no package of the image changed; the rebuild reuses cached .debs.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from goship_ctl.image.paths import IMAGE_PACKAGE_DIR
from goship_ctl.image.spec import BUILDER_VERSION, ImageSpec

APT_LISTS_DIR = Path("/var/lib/apt/lists")
APT_CONFIG_DIR = Path("/etc/apt")
APT_CONFIG_PARTS = ("sources.list", "sources.list.d", "preferences", "preferences.d",
                    "apt.conf", "apt.conf.d")


def hash_tree(root: Path, *, skip_dirs: tuple[str, ...] = ("__pycache__",)) -> str:
    """sha256 over the relative paths and contents of the files under ``root``."""
    digest = hashlib.sha256()
    for path in sorted(_files(root, skip_dirs)):
        digest.update(str(path.relative_to(root)).encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def _files(root: Path, skip_dirs: tuple[str, ...]):
    for dirpath, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d not in skip_dirs]
        for name in files:
            if not name.endswith((".pyc", ".pyo")):
                yield Path(dirpath, name)


def hash_apt_state(lists_dir: Path = APT_LISTS_DIR, config_dir: Path = APT_CONFIG_DIR) -> str:
    digest = hashlib.sha256()
    if lists_dir.is_dir():
        for entry in sorted(os.scandir(lists_dir), key=lambda e: e.name):
            if entry.is_file() and ("Packages" in entry.name or "Release" in entry.name):
                st = entry.stat()
                digest.update(f"{entry.name} {st.st_size} {st.st_mtime_ns}\n".encode())
    for part in APT_CONFIG_PARTS:
        path = config_dir / part
        if path.is_file():
            digest.update(f"{part}\n".encode() + path.read_bytes())
        elif path.is_dir():
            digest.update(f"{part}/\n{hash_tree(path)}\n".encode())
    return digest.hexdigest()


def input_components(spec: ImageSpec, guest_init: Path, *,
                     builder_dir: Path = IMAGE_PACKAGE_DIR,
                     apt_state: str | None = None) -> dict:
    return {
        "builder_version": BUILDER_VERSION,
        "builder_sources": hash_tree(builder_dir),
        "guest_init_sources": hash_tree(guest_init),
        "apt_state": apt_state if apt_state is not None else hash_apt_state(),
        "options": spec.as_dict(),
    }


def input_hash(components: dict) -> str:
    return hashlib.sha256(json.dumps(components, sort_keys=True).encode()).hexdigest()
