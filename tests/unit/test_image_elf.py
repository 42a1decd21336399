"""ELF reading: interpreter and DT_NEEDED of real host binaries."""

import sys
from pathlib import Path

import pytest

from goship_ctl.image.elf import ET_DYN, is_elf, read_elf


def host_libc() -> Path:
    for candidate in ("/lib/x86_64-linux-gnu/libc.so.6", "/usr/lib/x86_64-linux-gnu/libc.so.6"):
        if Path(candidate).exists():
            return Path(candidate)
    pytest.skip("no x86_64 glibc on this host")


def test_libc_needs_the_loader():
    info = read_elf(host_libc())
    assert info.elf_type == ET_DYN and info.is_linked
    assert "ld-linux-x86-64.so.2" in info.needed


def test_python_executable_has_an_interpreter():
    info = read_elf(Path(sys.executable).resolve())
    assert info.interpreter and info.interpreter.endswith("ld-linux-x86-64.so.2")
    assert info.needed  # at least libc


def test_non_elf_is_rejected(tmp_path):
    text = tmp_path / "script.sh"
    text.write_text("#!/bin/sh\n")
    assert not is_elf(text)
    with pytest.raises(ValueError, match="not a 64-bit"):
        read_elf(text)
