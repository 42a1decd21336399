"""``manifest.json``: what an image is made of and the hash of the inputs it came from."""

from __future__ import annotations

import json
import os
from pathlib import Path

from goship_ctl.image.apt import sha256_file

MANIFEST = "manifest.json"
IMAGE_FILES = ("vmlinuz", "initrd.img", "rootfs.squashfs")
FORMAT = 1


def describe_files(directory: Path, names: tuple[str, ...] = IMAGE_FILES) -> dict:
    return {name: {"size": (directory / name).stat().st_size,
                   "sha256": sha256_file(directory / name)} for name in names}


def write_manifest(directory: Path, manifest: dict) -> Path:
    path = directory / MANIFEST
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)
    return path


def read_manifest(directory: Path) -> dict | None:
    try:
        data = json.loads((directory / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def is_current(directory: Path, wanted_hash: str) -> dict | None:
    """The manifest if ``directory`` holds a complete image built from ``wanted_hash``.

    Complete means every listed file exists with its recorded size; hashing 40 MiB each
    time would cost the no-op build its speed.
    """
    manifest = read_manifest(directory)
    if not manifest or manifest.get("format") != FORMAT or manifest.get("input_hash") != wanted_hash:
        return None
    files = manifest.get("files") or {}
    for name in IMAGE_FILES:
        try:
            if (directory / name).stat().st_size != files[name]["size"]:
                return None
        except (OSError, KeyError, TypeError):
            return None
    return manifest
