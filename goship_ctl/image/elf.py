"""Just enough ELF reading to find what a binary needs at run time.

Reads the program headers of a 64-bit little-endian ELF file: ``PT_INTERP`` (the dynamic
loader) and the ``DT_NEEDED`` entries of ``PT_DYNAMIC`` (the shared libraries).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

ELF_MAGIC = b"\x7fELF"
ET_EXEC, ET_DYN = 2, 3
PT_LOAD, PT_DYNAMIC, PT_INTERP = 1, 2, 3
DT_NULL, DT_NEEDED, DT_STRTAB = 0, 1, 5


@dataclass(frozen=True)
class ElfInfo:
    elf_type: int
    interpreter: str | None
    needed: tuple[str, ...]

    @property
    def is_linked(self) -> bool:
        """An executable or shared object (not a relocatable kernel module)."""
        return self.elf_type in (ET_EXEC, ET_DYN)


def is_elf(path: Path) -> bool:
    try:
        with open(path, "rb") as handle:
            return handle.read(4) == ELF_MAGIC
    except OSError:
        return False


def read_elf(path: Path) -> ElfInfo:
    data = Path(path).read_bytes()
    if data[:4] != ELF_MAGIC or data[4] != 2 or data[5] != 1:
        raise ValueError(f"{path}: not a 64-bit little-endian ELF file")
    elf_type, = struct.unpack_from("<H", data, 16)
    phoff, = struct.unpack_from("<Q", data, 32)
    phentsize, phnum = struct.unpack_from("<HH", data, 54)
    loads, dynamic, interpreter = [], None, None
    for index in range(phnum):
        p_type, _flags, offset, vaddr, _paddr, filesz, _memsz, _align = struct.unpack_from(
            "<IIQQQQQQ", data, phoff + index * phentsize)
        if p_type == PT_LOAD:
            loads.append((vaddr, offset, filesz))
        elif p_type == PT_DYNAMIC:
            dynamic = (offset, filesz)
        elif p_type == PT_INTERP:
            interpreter = data[offset:offset + filesz].split(b"\0", 1)[0].decode()
    return ElfInfo(elf_type, interpreter, _needed(data, dynamic, loads))


def _needed(data: bytes, dynamic, loads) -> tuple[str, ...]:
    if dynamic is None:
        return ()
    offset, size = dynamic
    entries, strtab = [], None
    for pos in range(offset, offset + size, 16):
        tag, value = struct.unpack_from("<qQ", data, pos)
        if tag == DT_NULL:
            break
        if tag == DT_NEEDED:
            entries.append(value)
        elif tag == DT_STRTAB:
            strtab = _file_offset(value, loads)
    if strtab is None:
        return ()
    return tuple(data[strtab + v:data.index(b"\0", strtab + v)].decode() for v in entries)


def _file_offset(vaddr: int, loads) -> int | None:
    for start, offset, filesz in loads:
        if start <= vaddr < start + filesz:
            return offset + vaddr - start
    return None
