"""Runs host commands (apt, dpkg-deb, depmod, strip, mksquashfs).

Every external command of a build goes through a ``CommandRunner`` so tests can inject a
fake one.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class CommandResult:
    stdout: str
    stderr: str


class CommandFailed(Exception):
    """A command exited non-zero or could not be started."""

    def __init__(self, argv: list[str], returncode: int | None, stderr: str):
        self.argv = argv
        self.returncode = returncode
        self.stderr = stderr
        super().__init__(f"{argv[0]} failed ({returncode}): {first_error_line(stderr)}")


def first_error_line(stderr: str) -> str:
    """The most telling line of a tool's stderr: apt's ``E:`` line if any, else the last."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    for line in lines:
        if line.startswith("E:"):
            return line
    return lines[-1] if lines else "no error output"


class CommandRunner:
    """Runs a command to completion, capturing its output as text."""

    def available(self, program: str) -> bool:
        return shutil.which(program) is not None

    def run(self, argv: list[str], *, cwd: Path | None = None) -> CommandResult:
        try:
            proc = subprocess.run(
                argv, cwd=cwd, capture_output=True, text=True, errors="replace",
                stdin=subprocess.DEVNULL, check=False,
            )
        except FileNotFoundError:
            raise CommandFailed(argv, None, f"command not found: {argv[0]}") from None
        if proc.returncode != 0:
            raise CommandFailed(argv, proc.returncode, proc.stderr)
        return CommandResult(proc.stdout, proc.stderr)
