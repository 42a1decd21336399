"""Build-time check that the guest's Python starts and imports what guest_init needs.

Runs the guest's own interpreter on the host through the guest's dynamic loader, with the
guest's library directory only, so a missing shared library or stdlib module fails the
build instead of the first boot.
"""

from __future__ import annotations

from goship_ctl.image.errors import BuildError
from goship_ctl.image.libs import LIBRARY_DIR
from goship_ctl.image.runner import CommandFailed, CommandRunner
from goship_ctl.image.stdlib import PYTHON, STDLIB
from goship_ctl.image.tree import RootTree

LOADER = "usr/lib64/ld-linux-x86-64.so.2"
REQUIRED_MODULES = (
    "asyncio", "base64", "bz2", "ctypes", "email.parser", "errno", "fcntl", "gzip", "hashlib",
    "http.client", "ipaddress", "json", "logging", "lzma", "mmap", "os", "resource", "select",
    "selectors", "shlex", "shutil", "signal", "socket", "ssl", "struct", "subprocess",
    "tarfile", "tempfile", "termios", "threading", "urllib.request", "uuid", "zlib",
    "guest_init",
)


def check_python(tree: RootTree, runner: CommandRunner) -> str:
    """Imports ``REQUIRED_MODULES`` with the guest's Python; returns its version line."""
    script = (
        "import sys\n"
        f"for name in {REQUIRED_MODULES!r}:\n"
        "    __import__(name)\n"
        f"assert sys.prefix.endswith('/usr'), sys.prefix\n"
        f"assert all(p.startswith(sys.prefix) for p in sys.path), sys.path\n"
        "print(sys.version.split()[0])\n"
    )
    argv = [str(tree.path(LOADER)), "--library-path", str(tree.path(LIBRARY_DIR)),
            str(tree.path(PYTHON)), "-I", "-S", "-c", script]
    try:
        return runner.run(argv, cwd=tree.path(STDLIB)).stdout.strip()
    except CommandFailed as exc:
        raise BuildError(f"the guest's Python cannot import its modules: {exc}")
