"""The guest's Python: Debian's python3.11 with the stdlib cut to what a PID 1 that
supervises processes and containers uses, guest_init added, everything precompiled."""

from __future__ import annotations

import compileall
import importlib.util
import os
import py_compile
import re
import shutil
from pathlib import Path

from goship_ctl.image.errors import BuildError
from goship_ctl.image.staging import Staging
from goship_ctl.image.tree import RootTree

PYTHON = "usr/bin/python3.11"
STDLIB = "usr/lib/python3.11"
STDLIB_PACKAGES = ("libpython3.11-minimal", "libpython3.11-stdlib")

# Never used by the guest: test suites, GUIs, packaging, interactive help, and the
# modules whose C parts need libraries the guest does not ship (sqlite, curses, readline,
# dbm, nis, crypt). Top-level names under the stdlib directory.
PRUNED = frozenset({
    "EXTERNALLY-MANAGED", "LICENSE.txt", "__hello__.py", "__phello__", "_aix_support.py",
    "_osx_support.py", "_pydecimal.py", "_pyio.py", "antigravity.py", "config-3.11-x86_64-linux-gnu",
    "crypt.py", "curses", "dist-packages", "distutils", "doctest.py", "ensurepip", "idlelib",
    "lib2to3", "pydoc.py", "pydoc_data", "site-packages", "sitecustomize.py", "sqlite3",
    "test", "this.py", "tkinter", "turtle.py", "turtledemo", "unittest", "venv",
})
# Extension modules (name before ".cpython-311-...so") left out of lib-dynload.
PRUNED_EXTENSIONS = frozenset({
    "_crypt", "_ctypes_test", "_curses", "_curses_panel", "_dbm", "_gdbm", "_sqlite3",
    "_testbuffer", "_testcapi", "_testclinic", "_testimportmultiple", "_testinternalcapi",
    "_testmultiphase", "_tkinter", "_xxtestfuzz", "nis", "ossaudiodev", "readline",
    "xxlimited", "xxlimited_35", "xxsubtype",
})
MAGIC_RE = re.compile(r"^MAGIC_NUMBER = \((\d+)\)\.to_bytes", re.MULTILINE)


def _pruned(relpath: Path) -> bool:
    parts = relpath.parts
    if parts[0] in PRUNED or "__pycache__" in parts:
        return True
    if parts[0] == "lib-dynload" and len(parts) == 2:
        return parts[1].split(".", 1)[0] in PRUNED_EXTENSIONS
    return False


def install_python(tree: RootTree, staging: Staging) -> None:
    python = staging.locate(PYTHON, ["python3.11-minimal"])
    if python is None:
        raise BuildError(f"/{PYTHON} not found in python3.11-minimal")
    tree.install(python, PYTHON)
    tree.symlink("usr/bin/python3", "python3.11")
    for package in STDLIB_PACKAGES:
        source_root = staging.package_dir(package) / STDLIB
        if not source_root.is_dir():
            raise BuildError(f"{package} holds no /{STDLIB}")
        for dirpath, dirs, files in os.walk(source_root):
            for name in files + [d for d in dirs if Path(dirpath, d).is_symlink()]:
                relpath = Path(dirpath, name).relative_to(source_root)
                if _pruned(relpath):
                    continue
                source = staging.locate(f"{STDLIB}/{relpath}", list(STDLIB_PACKAGES))
                if source is not None:  # links out of the stdlib (to /etc) are dropped
                    tree.install(source, f"{STDLIB}/{relpath}")


def install_guest_init(tree: RootTree, source: Path) -> None:
    """Copies the guest_init package (sources only) into the stdlib directory."""
    if not (source / "__main__.py").is_file():
        raise BuildError(f"guest_init package at {source} has no __main__.py")
    shutil.copytree(source, tree.path(f"{STDLIB}/guest_init"), dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo"))


def check_bytecode_magic(tree: RootTree) -> None:
    """The builder compiles with the host's Python: its bytecode must be the guest's."""
    text = tree.path(f"{STDLIB}/importlib/_bootstrap_external.py").read_text()
    match = MAGIC_RE.search(text)
    guest = int(match.group(1)) if match else None
    host = int.from_bytes(importlib.util.MAGIC_NUMBER[:2], "little")
    if guest != host:
        raise BuildError(f"host Python bytecode ({host}) differs from the guest's ({guest}); "
                         "run the builder with Python 3.11")


def compile_stdlib(tree: RootTree) -> None:
    """Precompiles every module; hash-based ``unchecked`` pycs skip the source stat at
    import and do not depend on file times."""
    check_bytecode_magic(tree)
    stdlib = tree.path(STDLIB)
    ok = compileall.compile_dir(
        stdlib, quiet=2, workers=os.cpu_count() or 1, stripdir=str(tree.root), prependdir="/",
        invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
    )
    if not ok:
        raise BuildError(f"compiling the guest's Python modules failed under /{STDLIB}")
