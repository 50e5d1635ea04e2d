"""Rules pack archives: a newer rules pack in one file, installed without reinstalling the program.

An archive is a ZIP file (named like ``ecms-rules-2026.12.2.zip``) holding the rules directory as
``resources/rules`` has it (``pack.json`` at the top, ``states/``, ``forms/``, ``zones/``, ``schema/`` ...)
and, beside ``pack.json``, ``MANIFEST.json``::

    {"format": "ecms-rules-pack/1", "version": "2026.12.2", "requires_program": "0.2.0",
     "files": {"pack.json": {"sha256": "<hex>", "size": 1234}, "states/TX.json": {...}, ...}}

``requires_program`` (optional) is the oldest program version that can use the pack.

Reading an archive trusts nothing in it (it may come from anywhere): a member with an absolute path,
a ``..`` or a backslash, a symbolic link or other special file, an encrypted member, a name given twice,
more than :data:`MAX_FILES` members, more than :data:`MAX_UNPACKED_BYTES` unpacked (counted while
unpacking, not taken from the headers), a file not listed in the manifest, one listed but missing, or
one whose size or SHA-256 differs from the manifest's is refused, and every refusal names the archive
and the member. Then the pack itself is loaded from the unpacked files with the same checks as the
packaged one (:func:`~ecms_desktop.rules.loader.load_rules_pack`), and its ``pack.json`` version must be
the manifest's.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import shutil
import stat
import tempfile
import zipfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ecms_desktop.rules.loader import load_rules_pack
from ecms_desktop.rules.pack import RulesPack, RulesPackError

FORMAT = "ecms-rules-pack/1"
MANIFEST = "MANIFEST.json"
#: Largest archive file read (the packaged pack is well under 1 MB packed).
MAX_ARCHIVE_BYTES = 32 * 1024 * 1024
#: Most members an archive may have.
MAX_FILES = 2000
#: Most bytes all members may unpack to (a "zip bomb" is stopped here, while unpacking).
MAX_UNPACKED_BYTES = 64 * 1024 * 1024
_MAX_MANIFEST_BYTES = 1024 * 1024
_VERSION = re.compile(r"[0-9]+(?:\.[0-9]+)*")
_SHA = re.compile(r"[0-9a-f]{64}")
#: A fixed date for every member, so that the same rules give the same archive bytes.
_ZIP_DATE = (2000, 1, 1, 0, 0, 0)


class RulesArchiveError(RulesPackError):
    """A rules pack archive that is unreadable, unsafe, does not match its manifest or holds a broken pack."""


def parse_version(text: str, what: str = "version") -> tuple[int, ...]:
    """``2026.12.1`` as ``(2026, 12, 1)``, compared part by part as numbers (so 2026.12.10 > 2026.12.9)."""
    if not isinstance(text, str) or not _VERSION.fullmatch(text):
        raise RulesPackError(f"{what}: {text!r} is not a version such as 2026.12.1")
    return tuple(int(p) for p in text.split("."))


def program_release(version: str) -> tuple[int, ...]:
    """The numeric release of a program version (``0.2.0.dev1`` -> ``(0, 2, 0)``)."""
    match = re.match(r"[0-9]+(?:\.[0-9]+)*", version)
    return tuple(int(p) for p in match.group(0).split(".")) if match else (0,)


@dataclass(frozen=True)
class ArchiveInfo:
    """What a checked rules pack archive holds."""

    #: The archive's file name, as messages name it.
    name: str
    version: str
    title: str
    #: SHA-256 of the archive's bytes.
    sha256: str
    files: int
    unpacked_bytes: int
    #: The oldest program version that can use the pack (None: any).
    requires_program: str | None


def _member_problem(name: str) -> str | None:
    """Why a member name cannot be unpacked safely (None: it can)."""
    if "\\" in name:
        return "a path with a backslash"
    if name.startswith("/") or re.match(r"[A-Za-z]:", name):
        return "an absolute path"
    parts = name.rstrip("/").split("/")
    if ".." in parts:
        return "a path that leads outside the rules pack (..)"
    if any(p in ("", ".") for p in parts) or "\x00" in name:
        return "a malformed path"
    return None


def _read_limited(zf: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int, where: str) -> bytes:
    out = io.BytesIO()
    try:
        with zf.open(info) as f:
            while chunk := f.read(1024 * 1024):
                out.write(chunk)
                if out.tell() > limit:
                    raise RulesArchiveError(f"{where}: too large: the archive unpacks to more than "
                                            f"{MAX_UNPACKED_BYTES // (1024 * 1024)} MB")
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, ValueError) as exc:
        raise RulesArchiveError(f"{where}: cannot be unpacked ({exc})") from exc
    return out.getvalue()


def _manifest(data: bytes, name: str) -> dict[str, Any]:
    where = f"{name}: {MANIFEST}"
    try:
        manifest = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise RulesArchiveError(f"{where}: not valid JSON ({exc})") from exc
    if not isinstance(manifest, dict):
        raise RulesArchiveError(f"{where}: $: must be an object")
    if manifest.get("format") != FORMAT:
        raise RulesArchiveError(f"{where}: $.format: {manifest.get('format')!r} is not {FORMAT!r}")
    parse_version(manifest.get("version"), f"{where}: $.version")  # type: ignore[arg-type]
    needs = manifest.get("requires_program")
    if needs is not None:
        parse_version(needs, f"{where}: $.requires_program")
    files = manifest.get("files")
    if not isinstance(files, dict) or not files:
        raise RulesArchiveError(f"{where}: $.files: must be an object naming every file with its sha256 and size")
    for path, entry in files.items():
        if (not isinstance(entry, dict) or not isinstance(entry.get("sha256"), str)
                or not _SHA.fullmatch(entry["sha256"]) or type(entry.get("size")) is not int or entry["size"] < 0):
            raise RulesArchiveError(f"{where}: $.files[{path!r}]: must be {{\"sha256\": <64 hex digits>, "
                                    "\"size\": <bytes>}")
    unknown = sorted(set(manifest) - {"format", "version", "requires_program", "files"})
    if unknown:
        raise RulesArchiveError(f"{where}: $.{unknown[0]}: unknown key")
    return manifest


def _verified_members(data: bytes, name: str) -> tuple[dict[str, Any], dict[str, bytes]]:
    """The manifest and every member's bytes, each checked (see the module's description)."""
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError) as exc:
        raise RulesArchiveError(f"{name}: not a rules pack archive (a ZIP file): {exc}") from exc
    with zf:
        infos = zf.infolist()
        if len(infos) > MAX_FILES + 1:
            raise RulesArchiveError(f"{name}: {infos[MAX_FILES + 1].filename}: too many files: a rules pack "
                                    f"archive holds at most {MAX_FILES}")
        seen: set[str] = set()
        files: dict[str, zipfile.ZipInfo] = {}
        for info in infos:
            member = info.filename
            where = f"{name}: {member}"
            problem = _member_problem(member)
            if problem:
                raise RulesArchiveError(f"{where}: {problem}")
            if member in seen:
                raise RulesArchiveError(f"{where}: given twice")
            seen.add(member)
            kind = stat.S_IFMT(info.external_attr >> 16)
            if kind == stat.S_IFLNK:
                raise RulesArchiveError(f"{where}: a symbolic link (a rules pack holds plain files only)")
            if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
                raise RulesArchiveError(f"{where}: a special file (a rules pack holds plain files only)")
            if info.flag_bits & 0x1:
                raise RulesArchiveError(f"{where}: encrypted")
            if info.is_dir():
                continue
            files[member] = info
        if MANIFEST not in files:
            raise RulesArchiveError(f"{name}: {MANIFEST}: missing (every rules pack archive lists its files in it)")
        manifest = _manifest(_read_limited(zf, files.pop(MANIFEST), _MAX_MANIFEST_BYTES, f"{name}: {MANIFEST}"),
                             name)
        listed: Mapping[str, Any] = manifest["files"]
        for member in files:
            if member not in listed:
                raise RulesArchiveError(f"{name}: {member}: not listed in {MANIFEST}")
        for member in listed:
            if member not in files:
                raise RulesArchiveError(f"{name}: {member}: listed in {MANIFEST} but missing from the archive")
        members: dict[str, bytes] = {}
        budget = MAX_UNPACKED_BYTES
        for member, info in files.items():
            where = f"{name}: {member}"
            if info.file_size > budget:
                raise RulesArchiveError(f"{where}: too large: the archive unpacks to more than "
                                        f"{MAX_UNPACKED_BYTES // (1024 * 1024)} MB")
            content = _read_limited(zf, info, budget, where)
            budget -= len(content)
            entry = listed[member]
            if len(content) != entry["size"]:
                raise RulesArchiveError(f"{where}: {len(content)} bytes, but {MANIFEST} says {entry['size']}")
            digest = hashlib.sha256(content).hexdigest()
            if digest != entry["sha256"]:
                raise RulesArchiveError(f"{where}: checksum mismatch: SHA-256 {digest}, but {MANIFEST} says "
                                        f"{entry['sha256']}")
            members[member] = content
    return manifest, members


def _write_tree(members: Mapping[str, bytes], folder: Path) -> None:
    for member, content in members.items():
        target = folder.joinpath(*member.split("/"))
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)


def _check_pack(folder: Path, name: str, manifest: Mapping[str, Any]) -> RulesPack:
    try:
        pack = load_rules_pack(folder)
    except RulesPackError as exc:
        raise RulesArchiveError(f"{name}: {exc}") from exc
    if pack.version != manifest["version"]:
        raise RulesArchiveError(f"{name}: pack.json: $.version: {pack.version!r}, but {MANIFEST} says "
                                f"{manifest['version']!r}")
    return pack


def _info(data: bytes, name: str, manifest: Mapping[str, Any], members: Mapping[str, bytes],
          pack: RulesPack) -> ArchiveInfo:
    return ArchiveInfo(name=name, version=pack.version, title=pack.title, sha256=hashlib.sha256(data).hexdigest(),
                       files=len(members), unpacked_bytes=sum(len(c) for c in members.values()),
                       requires_program=manifest.get("requires_program"))


def read_archive(data: bytes, name: str) -> ArchiveInfo:
    """Check an archive's bytes completely (``name`` is what messages call it) and say what it holds;
    :class:`RulesArchiveError` naming the archive and the member otherwise."""
    manifest, members = _verified_members(data, name)
    with tempfile.TemporaryDirectory(prefix="ecms-rules-") as tmp:
        _write_tree(members, Path(tmp))
        pack = _check_pack(Path(tmp), name, manifest)
    return _info(data, name, manifest, members, pack)


def read_archive_file(path: Path) -> tuple[ArchiveInfo, bytes]:
    """Read and check an archive file: what it holds and its bytes."""
    path = Path(path)
    try:
        st = path.stat()
        if not stat.S_ISREG(st.st_mode):
            raise RulesArchiveError(f"{path}: not a file")
        if st.st_size > MAX_ARCHIVE_BYTES:
            raise RulesArchiveError(f"{path}: too large for a rules pack archive ({st.st_size:,} bytes; at most "
                                    f"{MAX_ARCHIVE_BYTES:,})")
        data = path.read_bytes()
    except OSError as exc:
        raise RulesArchiveError(f"{path}: cannot be read: {exc.strerror or exc}") from exc
    return read_archive(data, path.name), data


def unpack_archive(data: bytes, name: str, target: Path) -> ArchiveInfo:
    """Check an archive's bytes and unpack them into the folder ``target`` (which appears whole or not
    at all: unpacked beside it, checked, then renamed). An existing ``target`` is replaced."""
    manifest, members = _verified_members(data, name)
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        _write_tree(members, work)
        pack = _check_pack(work, name, manifest)
        (work / MANIFEST).write_bytes(json.dumps(manifest, indent=1, sort_keys=True).encode())
        if target.exists():
            shutil.rmtree(target)
        os.replace(work, target)
    finally:
        with contextlib.suppress(OSError):
            shutil.rmtree(work)
    return _info(data, name, manifest, members, pack)


def unpacked_matches(folder: Path, data: bytes, name: str) -> bool:
    """Whether ``folder`` holds exactly the files of the archive ``data`` (and its manifest), byte for byte."""
    manifest, members = _verified_members(data, name)
    if not folder.is_dir():
        return False
    found = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file() or p.is_symlink()}
    if found != set(members) | {MANIFEST}:
        return False
    for member in members:
        path = folder.joinpath(*member.split("/"))
        if path.is_symlink() or hashlib.sha256(path.read_bytes()).hexdigest() != manifest["files"][member]["sha256"]:
            return False
    return True


def _source_files(source: Path) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    for path in sorted(source.rglob("*")):
        rel = path.relative_to(source).as_posix()
        if any(part.startswith(".") or part == "__pycache__" for part in rel.split("/")):
            continue
        if path.is_symlink():
            raise RulesArchiveError(f"{source}: {rel}: a symbolic link (a rules pack holds plain files only)")
        if path.is_file():
            if rel == MANIFEST:
                continue  # a folder unpacked from an archive: its manifest is made anew
            files[rel] = path.read_bytes()
    return files


def build_archive(source: Path, out: Path, *, requires_program: str | None = None) -> ArchiveInfo:
    """Make a rules pack archive of the rules directory ``source`` (checked first, as the program loads it)
    at ``out``; the same files always give the same bytes."""
    source = Path(source)
    try:
        pack = load_rules_pack(source)
    except RulesPackError as exc:
        raise RulesArchiveError(f"{source}: {exc}") from exc
    if requires_program is not None:
        parse_version(requires_program, "requires_program")
    files = _source_files(source)
    manifest: dict[str, Any] = {"format": FORMAT, "version": pack.version}
    if requires_program is not None:
        manifest["requires_program"] = requires_program
    manifest["files"] = {rel: {"sha256": hashlib.sha256(c).hexdigest(), "size": len(c)} for rel, c in files.items()}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for rel, content in [(MANIFEST, json.dumps(manifest, indent=1).encode()), *files.items()]:
            info = zipfile.ZipInfo(rel, date_time=_ZIP_DATE)
            info.external_attr = (stat.S_IFREG | 0o644) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, content)
    data = buffer.getvalue()
    checked = read_archive(data, Path(out).name)
    out = Path(out)
    tmp = out.with_name(out.name + ".part")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, out)
    except OSError as exc:
        raise RulesArchiveError(f"{out}: cannot be written: {exc.strerror or exc}") from exc
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()
    return checked
