"""The guest root directory being assembled (merged-/usr layout)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from goship_ctl.image.elf import is_elf, read_elf
from goship_ctl.image.staging import MERGED_DIRS, merged_path


class RootTree:
    def __init__(self, root: Path):
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        for short, long in MERGED_DIRS.items():
            (root / long).mkdir(parents=True, exist_ok=True)
            if not (root / short).is_symlink():
                os.symlink(long, root / short)

    def path(self, image_path: str) -> Path:
        return self.root / merged_path(image_path)

    def exists(self, image_path: str) -> bool:
        path = self.path(image_path)
        return path.is_symlink() or path.exists()

    def install(self, source: Path, image_path: str, mode: int | None = None) -> Path:
        dest = self.path(image_path)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, dest)
        os.chmod(dest, mode if mode is not None else source.stat().st_mode & 0o7777)
        return dest

    def write(self, image_path: str, data: bytes, mode: int = 0o644) -> Path:
        dest = self.path(image_path)
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(data)
        os.chmod(dest, mode)
        return dest

    def symlink(self, image_path: str, target: str) -> None:
        dest = self.path(image_path)
        dest.parent.mkdir(parents=True, exist_ok=True)
        if dest.is_symlink() or dest.exists():
            dest.unlink()
        os.symlink(target, dest)

    def directory(self, image_path: str, mode: int = 0o755) -> None:
        dest = self.path(image_path)
        dest.mkdir(parents=True, exist_ok=True)
        os.chmod(dest, mode)

    def linked_elf_files(self) -> list[Path]:
        """Executables and shared objects (kernel modules are relocatable, not linked)."""
        found = []
        for dirpath, _dirs, files in os.walk(self.root):
            for name in files:
                path = Path(dirpath, name)
                if not path.is_symlink() and is_elf(path) and read_elf(path).is_linked:
                    found.append(path)
        return sorted(found)

    def size(self) -> int:
        return sum(Path(d, f).lstat().st_size for d, dummy, files in os.walk(self.root) for f in files)
