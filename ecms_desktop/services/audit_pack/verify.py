"""Checking an audit pack later: every file listed in its manifest is present with the same SHA-256,
and nothing was added.

Works on the pack folder or its ``.zip``. ``SHA256SUMS`` is checked too (it also holds the hash of
``manifest.json`` itself). A zip is untrusted input: an entry that cannot be read is reported as
changed, never as a traceback, and the zip's own structure (every header, date and size, as the
program writes it) is checked too, so that no byte of it can change unnoticed. With a database at hand,
:func:`verify_against_audit_trail` confirms that
the manifest is the one recorded in the audit trail when the pack was generated, which proves that
the manifest itself was not rewritten.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import struct
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ecms_desktop.services.audit_pack.content import MANIFEST_FORMAT, MANIFEST_NAME, SUMS_NAME, zip_date_time
from ecms_desktop.services.audit_pack.manifest import find_pack_events
from ecms_desktop.services.core.errors import ValidationError


@dataclass
class VerifyReport:
    """The result of checking a pack: what changed, what is missing, what was added."""

    location: str
    changed: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    files_checked: int = 0
    manifest_sha256: str = ""
    manifest: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not (self.changed or self.missing or self.extra or self.problems)

    def lines(self) -> list[str]:
        """The report in words, one finding per line."""
        out = [f"CHANGED  {p}" for p in self.changed]
        out += [f"MISSING  {p}" for p in self.missing]
        out += [f"EXTRA    {p}" for p in self.extra]
        out += [f"PROBLEM  {p}" for p in self.problems]
        return out

    def to_json(self) -> dict[str, Any]:
        return {"location": self.location, "ok": self.ok, "changed": self.changed, "missing": self.missing,
                "extra": self.extra, "problems": self.problems, "files_checked": self.files_checked,
                "manifest_sha256": self.manifest_sha256,
                "generated_at": self.manifest.get("generated_at"),
                "audit_chain": self.manifest.get("audit_chain")}


class _Source:
    """Files of a pack, in a folder or a zip, by path relative to the pack's root."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.zip: zipfile.ZipFile | None = None
        self.prefix = ""
        if path.is_dir():
            self.root = path
        elif path.is_file() and _looks_like_zip(path):
            try:
                self.zip = zipfile.ZipFile(path)
            except Exception as exc:  # any failure to parse an untrusted archive is damage, told plainly
                raise ValidationError(f"{path} is damaged: it is not a readable zip file ({_why(exc)}). "
                                      "Take the pack again from where it was kept, or rebuild it.") from exc
            names = [n for n in self.zip.namelist() if not n.endswith("/")]
            manifests = sorted((n for n in names if n.rsplit("/", 1)[-1] == MANIFEST_NAME), key=len)
            if manifests:
                self.prefix = manifests[0][: -len(MANIFEST_NAME)]
        elif path.exists():
            raise ValidationError(f"{path} is neither an audit-pack folder nor a .zip file.")
        else:
            raise ValidationError(f"{path} does not exist.")

    def names(self) -> list[str]:
        if self.zip is not None:
            out = []
            for n in self.zip.namelist():
                if n.endswith("/"):
                    continue
                out.append(n[len(self.prefix):] if n.startswith(self.prefix) else "../" + n)
            return sorted(out)
        return sorted(p.relative_to(self.root).as_posix() for p in self.root.rglob("*") if p.is_file())

    def chunks(self, rel: str) -> Iterator[bytes]:
        if self.zip is not None:
            with self.zip.open(self.prefix + rel) as f:
                yield from iter(lambda: f.read(1 << 20), b"")
        else:
            with (self.root / rel).open("rb") as f:
                yield from iter(lambda: f.read(1 << 20), b"")

    def read(self, rel: str) -> bytes:
        return b"".join(self.chunks(rel))

    def sha256(self, rel: str) -> str:
        h = hashlib.sha256()
        for block in self.chunks(rel):
            h.update(block)
        return h.hexdigest()

    def readable(self, rel: str, report: VerifyReport) -> bytes | None:
        """The entry's bytes, or None with the damage reported (a zip entry that cannot be read)."""
        try:
            return self.read(rel)
        except Exception as exc:  # untrusted archive: every failure to read it is damage, not a crash
            report.problems.append(f"{rel} cannot be read from the zip: {_why(exc)}.")
            return None

    def close(self) -> None:
        if self.zip is not None:
            self.zip.close()


def verify_pack(path: Path | str) -> VerifyReport:
    """Check a pack folder or zip against its manifest and SHA256SUMS."""
    path = Path(path).expanduser()
    src = _Source(path)
    report = VerifyReport(str(path))
    try:
        present = set(src.names())
        if MANIFEST_NAME not in present:
            report.missing.append(MANIFEST_NAME)
            report.problems.append("The pack has no manifest.json, so its files cannot be checked.")
            return report
        raw = src.readable(MANIFEST_NAME, report)
        if raw is None:
            report.changed.append(MANIFEST_NAME)
            report.problems.append("The pack's manifest.json cannot be read, so its files cannot be checked.")
            return report
        report.manifest_sha256 = hashlib.sha256(raw).hexdigest()
        try:
            manifest = json.loads(raw)
            files = {f["path"]: f["sha256"] for f in manifest["files"]}
        except (ValueError, KeyError, TypeError) as exc:
            report.problems.append(f"manifest.json is damaged ({exc}); the pack cannot be checked.")
            return report
        report.manifest = manifest
        if manifest.get("format") != MANIFEST_FORMAT:
            report.problems.append(f"manifest.json is of an unknown format {manifest.get('format')!r}.")
        for rel in sorted(files):
            if rel not in present:
                report.missing.append(rel)
                continue
            report.files_checked += 1
            try:
                digest = src.sha256(rel)
            except Exception as exc:  # untrusted archive: a damaged entry is a changed file
                report.problems.append(f"{rel} cannot be read from the zip: {_why(exc)}.")
                digest = ""
            if digest != files[rel]:
                report.changed.append(rel)
        known = set(files) | {MANIFEST_NAME, SUMS_NAME}
        report.extra.extend(sorted(present - known))
        if SUMS_NAME not in present:
            report.missing.append(SUMS_NAME)
        else:
            sums = src.readable(SUMS_NAME, report)
            if sums is None:
                report.changed.append(SUMS_NAME)
            else:
                _check_sums(sums.decode("utf-8", "replace"), files, report)
        if src.zip is not None:
            report.problems.extend(zip_structure_problems(path, src.zip, manifest.get("generated_at")))
    finally:
        src.close()
    return report


def _why(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _looks_like_zip(path: Path) -> bool:
    """A zip by its directory, its name, or the local-header signature a damaged one still starts with."""
    if zipfile.is_zipfile(path) or path.suffix.lower() == ".zip":
        return True
    with path.open("rb") as f:
        return f.read(4) == b"PK\x03\x04"


_LOCAL = struct.Struct("<4s5H3L2H")  # local file header, 30 bytes
_CENTRAL = struct.Struct("<4s4B4HL2L5H2L")  # central directory record, 46 bytes
_END = struct.Struct("<4s4H2LH")  # end of central directory, 22 bytes


def zip_structure_problems(path: Path, zf: zipfile.ZipFile, generated_at: Any) -> list[str]:
    """What in the zip's structure differs from how the program writes a pack's zip
    (:func:`~ecms_desktop.services.audit_pack.manifest.write_zip`), read byte for byte: each entry's
    local header and directory record carry the generation time, the permissions, no extra field and
    no comment, and agree with each other; each entry's deflate stream ends exactly where its size
    says; the entries, the directory and its end record follow each other with no byte between or
    after. Together with the entries' CRC and SHA-256 this leaves no byte of the zip unchecked."""
    try:
        when = zip_date_time(dt.datetime.fromisoformat(str(generated_at)))
    except (TypeError, ValueError):
        return ["manifest.json has no valid generation time, so the zip's dates cannot be checked."]
    dos_time = (when[3] << 11) | (when[4] << 5) | (when[5] // 2)
    dos_date = ((when[0] - 1980) << 9) | (when[1] << 5) | when[2]
    problems: list[str] = []
    infos = zf.infolist()
    with path.open("rb") as f:
        size = f.seek(0, 2)
        at = 0  # where the next entry must start
        for info in sorted(infos, key=lambda i: i.header_offset):
            raw = _raw_name(info)
            f.seek(info.header_offset)
            header = f.read(_LOCAL.size + len(raw))
            if len(header) != _LOCAL.size + len(raw) or info.header_offset != at:
                problems.append(f"The zip's header of {info.filename} is misplaced or cut off.")
                break
            fields = _LOCAL.unpack(header[:_LOCAL.size])
            if (fields != (b"PK\x03\x04", 20, info.flag_bits, zipfile.ZIP_DEFLATED, dos_time, dos_date, info.CRC,
                           info.compress_size, info.file_size, len(raw), 0) or header[_LOCAL.size:] != raw):
                problems.append(f"The zip's header of {info.filename} was altered.")
            if not _deflate_ends_exactly(f, info.compress_size):
                problems.append(f"The zip's data of {info.filename} was altered.")
            at = info.header_offset + len(header) + info.compress_size
        start = getattr(zf, "start_dir", at)
        if start != at:
            problems.append("The zip holds bytes between its last file and its directory.")
        f.seek(start)
        for info in infos:  # directory order
            raw = _raw_name(info)
            record = f.read(_CENTRAL.size + len(raw))
            flags = 0x800 if not info.filename.isascii() else 0
            if (len(record) != _CENTRAL.size + len(raw) or record[_CENTRAL.size:] != raw
                    or _CENTRAL.unpack(record[:_CENTRAL.size]) != (
                        b"PK\x01\x02", 20, 3, 20, 0, flags, zipfile.ZIP_DEFLATED, dos_time, dos_date, info.CRC,
                        info.compress_size, info.file_size, len(raw), 0, 0, 0, 0, 0o644 << 16, info.header_offset)):
                problems.append(f"The zip's directory record of {info.filename} was altered.")
        directory = f.tell() - start
        end = f.read(_END.size + 1)
        if len(end) != _END.size or f.tell() != size or _END.unpack(end) != (
                b"PK\x05\x06", 0, 0, len(infos), len(infos), directory, start, 0):
            problems.append("The zip's end record was altered, or bytes were added after it.")
    return problems


def _deflate_ends_exactly(f: Any, size: int) -> bool:
    """Whether the next ``size`` bytes of ``f`` are one complete deflate stream and nothing more."""
    stream = zlib.decompressobj(-15)
    left = size
    try:
        while left:
            block = f.read(min(left, 1 << 20))
            if not block:
                return False
            left -= len(block)
            stream.decompress(block, 0)
            if stream.eof and (left or stream.unused_data):
                return False
        stream.flush()
    except zlib.error:
        return False
    return stream.eof and not stream.unused_data


def _raw_name(info: zipfile.ZipInfo) -> bytes:
    return info.filename.encode("utf-8" if info.flag_bits & 0x800 else "cp437")


def _check_sums(text: str, files: dict[str, str], report: VerifyReport) -> None:
    listed: dict[str, str] = {}
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        digest, sep, rel = line.partition("  ")
        if not sep or len(digest) != 64:
            report.problems.append(f"SHA256SUMS line {n} is not '<sha256>  <path>'.")
            continue
        listed[rel] = digest
    if listed.get(MANIFEST_NAME) != report.manifest_sha256 and MANIFEST_NAME not in report.changed:
        report.changed.append(MANIFEST_NAME)
    disagree = sorted(rel for rel in set(listed) | set(files)
                      if rel != MANIFEST_NAME and listed.get(rel) != files.get(rel))
    if disagree:
        report.changed.append(SUMS_NAME)
        report.problems.append("SHA256SUMS and manifest.json disagree about: " + ", ".join(disagree[:10])
                               + (" ..." if len(disagree) > 10 else ""))


def verify_against_audit_trail(report: VerifyReport, db: Any) -> str:
    """Say whether the database's audit trail recorded this pack's manifest (adds a problem if not)."""
    if not report.manifest_sha256:
        return ""
    events = find_pack_events(db, report.manifest_sha256)
    if not events:
        report.problems.append("The audit trail of this database has no record of a pack with this manifest "
                               f"(SHA-256 {report.manifest_sha256[:16]}…): the manifest was rewritten, or the "
                               "pack comes from another database.")
        return ""
    e = events[0]
    return f"recorded in the audit trail as event {e.seq} on {e.occurred_at:%Y-%m-%d %H:%M:%S} UTC by {e.actor}"
