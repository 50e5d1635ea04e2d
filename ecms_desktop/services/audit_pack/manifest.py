"""The pack's files as a whole: ``manifest.json`` (the selection, the audit trail's head, counts, and
every file's SHA-256 and size), ``SHA256SUMS``, and the deterministic ``.zip`` of the pack folder.

:mod:`ecms_desktop.services.audit_pack.verify` checks a pack later against these.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ecms_desktop.services.audit_pack.content import (
    MANIFEST_FORMAT,
    MANIFEST_NAME,
    SUMS_NAME,
    PackContent,
    zip_date_time,
)
from ecms_desktop.services.core import audit
from ecms_desktop.services.core.database import Database

#: The audit event that records a generated pack, with its manifest's SHA-256.
PACK_EVENT = "audit_pack.generated"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def pack_files(root: Path) -> list[str]:
    """Every file under ``root`` as a POSIX path relative to it, sorted."""
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def build_manifest(root: Path, content: PackContent, chain: audit.ChainReport,
                   problems: Sequence[str]) -> dict[str, Any]:
    """The manifest of the pack folder ``root``: what was selected, the audit trail's head, the
    counts, the sections, the problems met, and every file's SHA-256 and size."""
    files = [{"path": rel, "sha256": sha256_file(root / rel), "size": (root / rel).stat().st_size}
             for rel in pack_files(root) if rel not in (MANIFEST_NAME, SUMS_NAME)]
    sel = content.selection
    return {
        "format": MANIFEST_FORMAT,
        "generated_at": content.generated_at.isoformat(),
        "prepared_by": content.prepared_by,
        "program": {"name": "ECMS Desktop", "version": content.program_version},
        "rules_pack_version": content.rules_version,
        "database": content.database,
        "company": {"id": content.company.id, "name": content.company.name,
                    "legal_name": content.company.legal_name},
        "selection": {
            "company": content.company.name, "from": sel.date_from.isoformat(), "to": sel.date_to.isoformat(),
            "customers": list(sel.customers), "states": list(sel.states),
            "review_states": list(sel.review_states),
            "rule": "certificates whose validity (effective or signed date through the line's expiry) "
                    "overlaps the period in a selected state and that held a selected review state "
                    "at some time during that overlap (review history from the audit trail)",
        },
        "audit_chain": {
            "head_seq": chain.head_seq, "head_hash": chain.head_hash, "verified": chain.ok,
            "problem": chain.problem,
            "note": "Head of the audit trail read BEFORE this pack's own 'audit_pack.generated' event "
                    "was written; that event (the next sequence number or later) records this "
                    "manifest's SHA-256.",
        },
        "counts": {
            "certificates": len(content.certificates),
            "certificate_lines": sum(len(c.lines) for c in content.certificates),
            "documents": len({d.sha256 for c in content.certificates for d in c.documents}),
            "by_state_and_status": [{"state": s, "status_at_end": st, "in_force": f, "lines": n}
                                    for s, st, f, n in content.counts_by_state_status()],
        },
        # "available" and "note" stay in the manifest format (ecms-audit-pack/1): every section is.
        "sections": [{"key": t.key, "title": t.title, "available": True, "note": ""}
                     for t in content.sections],
        "problems": list(problems),
        "files": files,
    }


def write_manifest(root: Path, content: PackContent, chain: audit.ChainReport,
                   problems: Sequence[str]) -> tuple[dict[str, Any], bytes]:
    """Write ``manifest.json`` and ``SHA256SUMS`` (which also holds the manifest's own hash) into the
    pack folder ``root``, once every other file is there; the manifest and its bytes."""
    manifest = build_manifest(root, content, chain, problems)
    manifest_bytes = (json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()
    (root / MANIFEST_NAME).write_bytes(manifest_bytes)
    sums = [(f["sha256"], f["path"]) for f in manifest["files"]]
    sums.append((hashlib.sha256(manifest_bytes).hexdigest(), MANIFEST_NAME))
    (root / SUMS_NAME).write_text("".join(f"{h}  {p}\n" for h, p in sorted(sums, key=lambda x: x[1])),
                                  encoding="utf-8", newline="\n")
    return manifest, manifest_bytes


def write_zip(root: Path, target: Path, *, generated_at: dt.datetime, top: str) -> None:
    """Zip the pack deterministically: sorted entries under ``top/``, the generation time as every
    entry's date, fixed permissions."""
    stamp = zip_date_time(generated_at)
    tmp = target.with_name(target.name + ".partial")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
        for rel in pack_files(root):
            info = zipfile.ZipInfo(f"{top}/{rel}", date_time=stamp)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            info.create_system = 3
            with (root / rel).open("rb") as src, zf.open(info, "w") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
    os.replace(tmp, target)


def find_pack_events(db: Database, manifest_sha256: str) -> list[audit.AuditEntry]:
    """The audit events that recorded a pack with this manifest hash (usually one)."""
    with db.reader() as s:
        events = audit.list_events(s, entity_type="audit_pack", entity_id=manifest_sha256[:16])
    return [e for e in events if (e.after or {}).get("manifest_sha256") == manifest_sha256]
