"""Extracted packages: one directory per package, looked up as if all were installed.

``dpkg-deb -x`` unpacks file contents only: no maintainer scripts, no chroot. Each
package keeps its own directory so the root image can take files from a named package.
"""

from __future__ import annotations

import os
import posixpath
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from goship_ctl.image.errors import BuildError
from goship_ctl.image.runner import CommandFailed, CommandRunner

# Debian bookworm packages still ship /bin, /lib...; the guest root is merged-/usr.
MERGED_DIRS = {"bin": "usr/bin", "sbin": "usr/sbin", "lib": "usr/lib", "lib64": "usr/lib64"}
MAX_SYMLINK_HOPS = 40


def merged_path(path: str) -> str:
    """Image path (no leading "/") with /bin, /sbin, /lib, /lib64 moved under /usr."""
    path = posixpath.normpath(path.lstrip("/"))
    head, sep, rest = path.partition("/")
    if head in MERGED_DIRS:
        return MERGED_DIRS[head] + sep + rest
    return path


class Staging:
    def __init__(self, root: Path):
        self.root = root

    def package_dir(self, name: str) -> Path:
        return self.root / name

    def extract(self, runner: CommandRunner, debs: dict[str, Path]) -> None:
        """Extracts ``{package name: .deb}`` in parallel."""
        def one(item: tuple[str, Path]) -> None:
            name, deb = item
            try:
                runner.run(["dpkg-deb", "-x", str(deb), str(self.package_dir(name))])
            except CommandFailed as exc:
                raise BuildError(f"cannot extract {deb.name}: {exc}")
        self.root.mkdir(parents=True, exist_ok=True)
        with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
            list(pool.map(one, sorted(debs.items())))

    def packages(self) -> list[str]:
        return sorted(p.name for p in self.root.iterdir() if p.is_dir())

    def locate(self, path: str, packages: list[str] | None = None) -> Path | None:
        """The regular file an absolute image path names, following symlinks the way the
        installed system would (across packages, merged-/usr aware)."""
        names = packages if packages is not None else self.packages()
        wanted = merged_path(path)
        for dummy in range(MAX_SYMLINK_HOPS):
            hit = self._find(wanted, names)
            if hit is None:
                return None
            if not hit.is_symlink():
                return hit if hit.is_file() else None
            target = os.readlink(hit)
            base = posixpath.dirname(wanted)
            wanted = merged_path(target if target.startswith("/") else posixpath.join(base, target))
        return None

    def _find(self, merged: str, packages: list[str]) -> Path | None:
        variants = [merged]
        for short, long in MERGED_DIRS.items():
            if merged.startswith(long + "/"):
                variants.append(short + merged[len(long):])
        for name in packages:
            for variant in variants:
                candidate = self.package_dir(name) / variant
                if candidate.is_symlink() or candidate.exists():
                    return candidate
        return None
