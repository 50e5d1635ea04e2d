"""What a Linux shared library or executable needs, read from its ELF headers (no objdump or ldd needed).

    python installer/elfinfo.py glibc DIR      the newest GLIBC_x.y symbol version any ELF file under DIR needs
    python installer/elfinfo.py needed FILE    the libraries FILE names in its DT_NEEDED entries
    python installer/elfinfo.py system DIR     the libraries ELF files under DIR need that DIR does not carry

Used by the PyInstaller spec (to leave out the libraries nothing in the bundle loads any more) and by the
package smoke test (the oldest glibc the bundle runs on). 64-bit little-endian ELF only (x86-64, arm64).
"""

from __future__ import annotations

import struct
import sys
from pathlib import Path

_DT_NEEDED, _DT_STRTAB = 1, 5
_SHT_DYNAMIC, _SHT_GNU_VERNEED = 6, 0x6FFFFFFE


def is_elf(path: Path) -> bool:
    try:
        with path.open("rb") as f:
            return f.read(4) == b"\x7fELF"
    except OSError:
        return False


def _sections(data: bytes) -> list[tuple[int, int, int, int, int]]:
    """(type, offset, size, link, entsize) of each section header."""
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        raise ValueError("not a 64-bit little-endian ELF file")
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum = struct.unpack_from("<HH", data, 0x3A)
    out = []
    for i in range(shnum):
        _name, kind, _flags, _addr, offset, size, link, _info, _align, entsize = struct.unpack_from(
            "<IIQQQQIIQQ", data, shoff + i * shentsize)
        out.append((kind, offset, size, link, entsize))
    return out


def _string(data: bytes, offset: int) -> str:
    return data[offset:data.index(b"\0", offset)].decode("ascii", "replace")


def needed(path: Path) -> list[str]:
    """The DT_NEEDED names (e.g. ``libQt6Core.so.6``) of an ELF file; [] for one with no dynamic section."""
    data = path.read_bytes()
    sections = _sections(data)
    out = []
    for kind, offset, size, link, _entsize in sections:
        if kind != _SHT_DYNAMIC:
            continue
        strtab = sections[link][1]
        for pos in range(offset, offset + size, 16):
            tag, value = struct.unpack_from("<qQ", data, pos)
            if tag == _DT_NEEDED:
                out.append(_string(data, strtab + value))
    return out


def symbol_versions(path: Path) -> set[str]:
    """The versions (``GLIBC_2.34``, ``GLIBCXX_3.4.29`` ...) this file needs from the libraries it loads."""
    data = path.read_bytes()
    sections = _sections(data)
    out: set[str] = set()
    for kind, offset, _size, link, _entsize in sections:
        if kind != _SHT_GNU_VERNEED:
            continue
        strtab = sections[link][1]
        pos = offset
        while True:  # Elf64_Verneed: version, count, file, aux, next
            _version, count, _file, aux, nxt = struct.unpack_from("<HHIII", data, pos)
            apos = pos + aux
            for _ in range(count):  # Elf64_Vernaux: hash, flags, other, name, next
                _hash, _flags, _other, name, anext = struct.unpack_from("<IHHII", data, apos)
                out.add(_string(data, strtab + name))
                apos += anext
            if not nxt:
                break
            pos += nxt
    return out


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.split("_", 1)[1].split(".") if p.isdigit())


def newest_glibc(root: Path) -> tuple[str, Path | None]:
    """The newest ``GLIBC_x.y`` needed by any ELF file under ``root`` and one file that needs it."""
    best, where = "GLIBC_2.0", None
    for path in sorted(root.rglob("*")):
        if path.is_symlink() or not path.is_file() or not is_elf(path):
            continue
        for version in symbol_versions(path):
            if version.startswith("GLIBC_") and version[6:7].isdigit() and _version_key(version) > _version_key(best):
                best, where = version, path
    return best, where


def from_the_system(root: Path) -> dict[str, Path]:
    """The libraries that ELF files under ``root`` need and ``root`` does not carry (the system must have
    them), each with one file that needs it."""
    files = [p for p in sorted(root.rglob("*")) if p.is_file() and is_elf(p)]
    carried = {p.name for p in root.rglob("*")}
    out: dict[str, Path] = {}
    for path in files:
        if path.is_symlink():
            continue
        for name in needed(path):
            if name not in carried:
                out.setdefault(name, path)
    return out


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in ("glibc", "needed", "system"):
        print(__doc__, file=sys.stderr)
        return 2
    target = Path(argv[1])
    if argv[0] == "needed":
        print("\n".join(needed(target)))
        return 0
    if argv[0] == "system":
        for name, where in sorted(from_the_system(target).items()):
            print(f"{name}\t{where.relative_to(target)}")
        return 0
    version, where = newest_glibc(target)
    print(f"{version[6:]} ({where.relative_to(target) if where else 'no ELF file'})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
