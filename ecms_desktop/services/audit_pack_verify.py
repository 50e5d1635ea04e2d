"""Checking an audit pack later: every file listed in its manifest is present with the same SHA-256,
and nothing was added.

Works on the pack folder or its ``.zip``. ``SHA256SUMS`` is checked too (it also holds the hash of
``manifest.json`` itself); with a database at hand, :func:`verify_against_audit_trail` confirms that
the manifest is the one recorded in the audit trail when the pack was generated, which proves that
the manifest itself was not rewritten.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ecms_desktop.errors import ValidationError
from ecms_desktop.services.audit_pack_service import MANIFEST_FORMAT, MANIFEST_NAME, SUMS_NAME


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
        elif path.is_file() and zipfile.is_zipfile(path):
            self.zip = zipfile.ZipFile(path)
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
        raw = src.read(MANIFEST_NAME)
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
            if src.sha256(rel) != files[rel]:
                report.changed.append(rel)
        known = set(files) | {MANIFEST_NAME, SUMS_NAME}
        report.extra.extend(sorted(present - known))
        if SUMS_NAME not in present:
            report.missing.append(SUMS_NAME)
        else:
            _check_sums(src.read(SUMS_NAME).decode("utf-8", "replace"), files, report)
    finally:
        src.close()
    return report


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
    from ecms_desktop.services.audit_pack_service import find_pack_events

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
