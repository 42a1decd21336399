"""Building next to the output and swapping it into place only when complete."""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import os
import shutil
import tempfile
import time
from pathlib import Path

from goship_ctl.image.errors import BuildError
from goship_ctl.image.manifest import MANIFEST

AT_FDCWD = -100
RENAME_EXCHANGE = 2
LOCK_WAIT_SECONDS = 900
LOCK_POLL_SECONDS = 0.5


def _work_prefix(output: Path) -> str:
    return f".{output.name}.build-"


@contextlib.contextmanager
def build_lock(output: Path, wait_seconds: float = LOCK_WAIT_SECONDS):
    """One build per output directory at a time; a second one waits (bounded)."""
    output.parent.mkdir(parents=True, exist_ok=True)
    with open(output.parent / f".{output.name}.lock", "w") as handle:
        deadline = time.monotonic() + wait_seconds
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise BuildError(f"another build of {output} still holds its lock "
                                     f"after {wait_seconds:.0f} s") from None
                time.sleep(LOCK_POLL_SECONDS)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def remove_stale_work_dirs(output: Path) -> None:
    """Work directories of builds that were killed (call with the lock held)."""
    for path in output.parent.glob(_work_prefix(output) + "*"):
        shutil.rmtree(path, ignore_errors=True)


def check_replaceable(output: Path) -> None:
    """Refuses to replace a directory that is not an image (a mistyped --output)."""
    if output.exists() and any(output.iterdir()) and not (output / MANIFEST).exists():
        raise BuildError(f"refusing to replace {output}: it is not empty and holds no {MANIFEST}")


@contextlib.contextmanager
def work_dir(output: Path):
    """A scratch directory on the output's file system, removed whatever happens."""
    path = Path(tempfile.mkdtemp(prefix=_work_prefix(output), dir=output.parent))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def replace_dir(new: Path, output: Path) -> None:
    """Puts ``new`` at ``output``: an atomic exchange (renameat2) when ``output`` exists,
    so readers see the old image or the new one, never neither."""
    if not output.exists():
        os.rename(new, output)
        return
    try:
        _exchange(new, output)
        shutil.rmtree(new)  # now holds the previous image
    except OSError as exc:
        if exc.errno not in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
            raise
        old = new.with_name(new.name + "-previous")
        os.rename(output, old)
        os.rename(new, output)
        shutil.rmtree(old)


def _exchange(a: Path, b: Path) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if not hasattr(libc, "renameat2"):
        raise OSError(errno.ENOSYS, "renameat2 unavailable")
    if libc.renameat2(AT_FDCWD, os.fsencode(a), AT_FDCWD, os.fsencode(b), RENAME_EXCHANGE) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), str(b))
