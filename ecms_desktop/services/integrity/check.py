"""``ecms check``: is this database still what the program wrote?

Four checks, in one consistent snapshot of the database (other desks may go on writing):

1. the database's own integrity check (SQLite ``PRAGMA integrity_check`` and ``foreign_key_check``;
   on PostgreSQL the server checks its own pages, which is said in the report);
2. the audit trail's hash chain, each event with the record digests it carries;
3. the anchors: every head of the chain written outside the database (the anchors file in the user's
   data folder, backups, audit packs given with ``--anchor``) must still be in the chain; on a local
   SQLite database the newest event must be one this computer's programs anchored; an empty trail
   is never intact;
4. the records: every tracked record (certificates with their lines, customers, documents, validation
   runs, settings, ... see :mod:`~ecms_desktop.services.core.state_digest`) must match the latest digest the
   trail holds for it, and every stored file's bytes their SHA-256.

Everything is read in batches, so memory does not grow with the database. A ``quick`` check (on
start) does only the cheap parts: anchors, an empty trail, and SQLite's ``quick_check`` on a small
file.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Connection, Table, func, select
from sqlalchemy.orm import Session

from ecms_desktop.models import AuditEvent, AuditHead, Document, DocumentFile
from ecms_desktop.services.core import audit, state_digest
from ecms_desktop.services.core.anchors import Anchor, AnchorBook
from ecms_desktop.services.core.database import Database, damaged_message, is_damage_error
from ecms_desktop.services.core.errors import Cancelled, DatabaseDamagedError, ValidationError
from ecms_desktop.services.core.progress import CancelCheck, Progress
from ecms_desktop.services.integrity.backup_format import BackupFormatError, describe_backup

#: Problems listed in a report (the rest are counted).
MAX_LISTED = 200
#: Largest SQLite file whose ``quick_check`` runs on start.
QUICK_CHECK_MAX_BYTES = 256 * 1024 * 1024
#: Bytes of stored files read at a time.
_FILE_BATCH_BYTES = 64 * 1024 * 1024

_NAMES = {
    "certificate": "certificate", "customer": "customer", "company": "company", "document": "document",
    "validation_run": "validation run", "warning_acknowledgement": "warning acknowledgement",
    "setting": "setting", "expiry_policy": "company expiry policy", "permit_check": "permit check",
    "person": "person", "certificate_claim": "claim on certificate", "rules_pack": "installed rules pack",
}


@dataclass(frozen=True)
class IntegrityProblem:
    """One thing found wrong: in which part of the check, about what, and what."""

    area: str
    subject: str
    message: str

    def __str__(self) -> str:
        return f"{self.subject}: {self.message}" if self.subject else self.message


@dataclass(frozen=True)
class AnchorCheck:
    """One anchor and whether the chain holds it (None: a pending anchor the chain never reached)."""

    anchor: Anchor
    held: bool | None
    note: str = ""


@dataclass(frozen=True)
class CheckReport:
    database: str
    quick: bool
    events: int
    head_seq: int
    head_hash: str
    problems: tuple[IntegrityProblem, ...]
    #: Problems found beyond the ones listed.
    unlisted: int
    anchors: tuple[AnchorCheck, ...]
    #: Records checked against their digests, per kind.
    records: dict[str, int] = field(default_factory=dict)
    #: Stored files whose bytes were checked.
    files: int = 0
    notes: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.problems and not self.unlisted

    @property
    def damaged(self) -> bool:
        """The database file itself failed its own check (restore it from a backup)."""
        return any(p.area == "database" for p in self.problems)

    def summary(self) -> str:
        if self.ok:
            return (f"{self.database}: intact ({self.events} events, {sum(self.records.values())} records and "
                    f"{self.files} files checked, {len([a for a in self.anchors if a.held])} anchors held).")
        return f"{self.database}: {len(self.problems) + self.unlisted} problems found."

    def to_json(self) -> dict[str, Any]:
        return {
            "database": self.database, "ok": self.ok, "quick": self.quick, "events": self.events,
            "head_seq": self.head_seq, "head_hash": self.head_hash,
            "problems": [{"area": p.area, "subject": p.subject, "message": p.message} for p in self.problems],
            "unlisted_problems": self.unlisted, "records": self.records, "files": self.files,
            "anchors": [{"seq": a.anchor.seq, "hash": a.anchor.hash, "source": a.anchor.source, "at": a.anchor.at,
                         "pending": a.anchor.pending, "where": a.anchor.where, "held": a.held, "note": a.note}
                        for a in self.anchors],
            "notes": list(self.notes),
        }


def verify_and_anchor(db: Database, source: str, *, level: str = "anchors") -> CheckReport:
    """A cheap check (``anchors``: the anchors, an empty trail, the head; ``quick``: also SQLite's
    quick_check on a small file), run when a program opens or closes the database; when it passes, the
    head is written to the anchors file as ``source`` (``start``, ``exit``). A head that fails is never
    anchored: that would vouch for a rewritten trail."""
    report = check_database(db, level=level)
    already = any(a.held and not a.anchor.pending and a.anchor.seq == report.head_seq for a in report.anchors)
    if report.ok and db.anchor_key is not None and report.head_seq and not already:
        AnchorBook().add(db.anchor_key, report.head_seq, report.head_hash, source)
    return report


def verify_chain(db: Database) -> audit.ChainReport:
    """The audit trail's hash chain checked from its first event to its head, with the record digests
    each event carries (``ecms audit verify``; the anchors are :func:`check_database`'s part)."""
    with db.reader() as s:
        return audit.verify_chain(s)


def check_database(db: Database, *, anchors: Sequence[Anchor] = (), quick: bool = False, level: str | None = None,
                   progress: Progress | None = None, cancel: CancelCheck | None = None,
                   connection: Connection | None = None, local_anchors: bool = True) -> CheckReport:
    """Check the database (see the module docstring). ``anchors``: more anchors than the anchors
    file's, e.g. read from backups and audit packs with :func:`anchors_from_path`. ``connection``: check
    in that connection's open transaction (the snapshot a PostgreSQL backup dumps; ``local_anchors`` false
    then leaves out the anchors file, whose newer anchors that snapshot cannot hold). ``level``: ``full``
    (default), ``quick`` (same as ``quick=True``: no record digests, SQLite's quick_check on a small file)
    or ``anchors`` (only the anchors, the head and an empty trail)."""
    level = level or ("quick" if quick else "full")
    local = AnchorBook().anchors(db.anchor_key) if db.anchor_key and local_anchors else []
    try:
        if connection is not None:
            session = Session(bind=connection)
            try:
                return _Check(db, connection, session, local, list(anchors), level, progress, cancel).run()
            finally:
                session.close()
        conn = db.engine.connect()
        try:
            if db.dialect == "postgresql":
                conn = conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                session = Session(bind=conn)
                try:
                    return _Check(db, conn, session, local, list(anchors), level, progress, cancel).run()
                finally:
                    session.close()
        finally:
            conn.close()
    except Cancelled:
        raise
    except Exception as exc:
        if is_damage_error(exc):
            detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
            raise DatabaseDamagedError(damaged_message(db.display_url, detail)) from exc
        raise


class _Check:
    def __init__(self, db: Database, conn: Connection, session: Session, local: list[Anchor],
                 given: list[Anchor], level: str, progress: Progress | None, cancel: CancelCheck | None) -> None:
        self.db, self.conn, self.session = db, conn, session
        self.local, self.given, self.level = local, given, level
        self.quick = level != "full"
        self.progress, self.cancel = progress, cancel
        self.problems: list[IntegrityProblem] = []
        self.unlisted = 0
        self.notes: list[str] = []
        self.records: dict[str, int] = {}
        self.files = 0
        self.done = 0
        self.total = 0
        self._events: dict[int, str] = {}

    def add(self, area: str, subject: str, message: str) -> None:
        if len(self.problems) < MAX_LISTED:
            self.problems.append(IntegrityProblem(area, subject, message))
        else:
            self.unlisted += 1

    def tick(self, n: int, text: str) -> None:
        self.done += n
        if self.cancel is not None and self.cancel():
            raise Cancelled("The check was cancelled; nothing was changed.")
        if self.progress is not None:
            self.progress(min(self.done, self.total), self.total, text)

    def run(self) -> CheckReport:
        head_seq, head_hash, events = 0, audit.GENESIS_HASH, 0
        anchor_checks: list[AnchorCheck] = []
        try:
            if not self.quick:
                self.total = self._count_work()
            self.tick(0, "Checking the database file")
            if self.level != "anchors":
                self._own_check()
            head_seq, head_hash = audit.head_of(self.session)
            events = audit.count_events(self.session)
            self.tick(0, "Checking the audit trail")
            self._chain(head_seq, head_hash, events)
            anchor_checks = self._anchors(head_seq, events)
            if not self.quick:
                for name, kind in state_digest.KINDS.items():
                    self.records[name] = self._records(name, kind)
                self.files = self._files()
        except Exception as exc:
            if not is_damage_error(exc):
                raise
            # What was found so far is reported; what could not be read is the damage itself.
            detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
            self.add("database", "", f"the database file is damaged and could not be read to the end ({detail})")
        return CheckReport(self.db.display_url, self.quick, events, head_seq, head_hash, tuple(self.problems),
                           self.unlisted, tuple(anchor_checks), self.records, self.files, tuple(self.notes))

    def _count_work(self) -> int:
        total = int(self.conn.execute(select(func.count()).select_from(AuditEvent)).scalar_one())
        for kind in state_digest.KINDS.values():
            total += kind.count(self.conn)
        total += int(self.conn.execute(select(func.count()).select_from(DocumentFile)).scalar_one())
        return total

    # 1. the database's own check

    def _own_check(self) -> None:
        if self.db.dialect != "sqlite":
            self.notes.append("PostgreSQL checks its own pages (data checksums, amcheck): the server's "
                              "administrator runs those checks.")
            return
        pragma = "integrity_check"
        if self.quick:
            size = self.db.path.stat().st_size if self.db.path is not None else 0
            if size > QUICK_CHECK_MAX_BYTES:
                self.notes.append("SQLite's own check was left to `ecms check` for a file this large.")
                return
            pragma = "quick_check"
        lines = [str(r[0]) for r in self.conn.exec_driver_sql(f"PRAGMA {pragma}").fetchall()]
        if lines != ["ok"]:
            for line in lines:
                for part in line.splitlines():
                    if part.strip() and not part.startswith("*** in database"):
                        self.add("database", "SQLite", part.strip())
        if not self.quick:
            for table, rowid, parent, _fk in self.conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall():
                self.add("database", f"{table} row {rowid}", f"refers to a missing {parent} row")

    # 2. the chain

    def _chain(self, head_seq: int, head_hash: str, events: int) -> None:
        if events == 0:
            # A database that had events and now has none is never intact: its head row, its anchors or
            # its records say it had some (`ecms init` records the creation of every database).
            had = [why for why, found in (
                (f"its head records event {head_seq}", self.session.get(AuditHead, 1) is not None),
                ("anchors record its events", bool(self.local or self.given)),
                ("it holds records", any(self.conn.execute(select(kind.pk).limit(1)).first() is not None
                                         for kind in state_digest.KINDS.values()))) if found]
            if had:
                self.add("audit trail", "", f"the audit trail is empty, yet {' and '.join(had)}: its events were "
                         "deleted")
            else:
                self.notes.append("The audit trail has no events yet: this schema was not made by `ecms init`.")
            return
        if self.quick:
            last = self.session.execute(select(AuditEvent.seq, AuditEvent.hash)
                                        .order_by(AuditEvent.seq.desc()).limit(1)).one()
            if (last.seq, last.hash) != (head_seq, head_hash):
                self.add("audit trail", f"event {last.seq}", f"the chain's head records event {head_seq}, but the "
                         f"last event is {last.seq}: events at the end were removed or the head was altered")
            return
        report = audit.verify_chain(self.session, progress=lambda n: self.tick(n, "Checking the audit trail"))
        if not report.ok:
            self.add("audit trail", f"event {report.first_bad_seq}", report.problem)

    # 3. anchors

    def _anchors(self, head_seq: int, events: int) -> list[AnchorCheck]:
        wanted = [*self.local, *self.given]
        seqs = sorted({a.seq for a in wanted})
        stored: dict[int, str] = {}
        for start in range(0, len(seqs), 500):
            stored.update(self.session.execute(select(AuditEvent.seq, AuditEvent.hash)
                                               .where(AuditEvent.seq.in_(seqs[start:start + 500]))).all())
        checks = []
        newest_local = 0
        for a in wanted:
            have = stored.get(a.seq)
            source = f"{a.source} anchor from {a.where}" if a.where else f"{a.source} anchor"
            if have == a.hash:
                checks.append(AnchorCheck(a, True))
                if a in self.local:
                    newest_local = max(newest_local, a.seq)
            elif a.pending:
                checks.append(AnchorCheck(a, None, "written just before a commit that did not happen: not binding"))
            elif have is None:
                checks.append(AnchorCheck(a, False, f"the chain ends at event {head_seq}"))
                self.add("anchors", f"event {a.seq}", f"the {source} ({a.at or 'no date'}) records event {a.seq}, "
                         f"but the audit trail now ends at event {head_seq}: events were removed")
            else:
                checks.append(AnchorCheck(a, False, "a different hash"))
                self.add("anchors", f"event {a.seq}", f"the {source} ({a.at or 'no date'}) records another hash "
                         f"for event {a.seq}: the audit trail was rewritten from there or before")
        if not wanted:
            self.notes.append(f"No anchors were found for this database (none in {AnchorBook().path}; give backups "
                              "or audit packs with --anchor): the chain was checked only against itself.")
        elif (self.db.dialect == "sqlite" and self.local and events and newest_local
              and newest_local < head_seq and not any(c.held is False for c in checks)):
            self.add("anchors", f"events {newest_local + 1}-{head_seq}",
                     f"came after the newest anchor this computer's programs wrote (event {newest_local}): they "
                     "were not written by ECMS Desktop with this data folder (forged, or written with another "
                     "ECMS_DATA_DIR)")
        elif self.db.dialect != "sqlite" and newest_local and newest_local < head_seq:
            self.notes.append(f"Events {newest_local + 1}-{head_seq} came after this computer's newest anchor: other "
                              "desks wrote them (their computers hold their anchors).")
        return checks

    # 4. records and files

    def _event(self, seq: int) -> str:
        if seq not in self._events:
            row = self.session.execute(select(AuditEvent.action, AuditEvent.actor, AuditEvent.occurred_at)
                                       .where(AuditEvent.seq == seq)).first()
            self._events[seq] = (f"event {seq} ({row.action} by {row.actor}, "
                                 f"{row.occurred_at:%Y-%m-%d %H:%M} UTC)") if row else f"event {seq}"
        return self._events[seq]

    @staticmethod
    def _subject(name: str, key: str) -> str:
        if name == state_digest.TRANSACTION_LINES.name:
            first = int(key) * state_digest.LINE_BLOCK
            return f"transaction lines {first}-{first + state_digest.LINE_BLOCK - 1}"
        return f"{_NAMES.get(name, name)} {key}"

    def _records(self, name: str, kind: state_digest.RecordKind | state_digest.LineBlockKind) -> int:
        checked = live_seen = 0
        for batch in kind.scan(self.conn):
            latest = state_digest.latest_digests(self.conn, name, [k for k, _ in batch])
            for key, digest in batch:
                checked += 1
                recorded = latest.get(key)
                if recorded is None:
                    self.add("records", self._subject(name, key),
                             "is not in the audit trail: it was added outside ECMS Desktop")
                elif recorded[1] is None:
                    self.add("records", self._subject(name, key), f"was deleted by {self._event(recorded[0])}, yet it "
                             "is in the database: it was put back outside ECMS Desktop")
                else:
                    live_seen += 1
                    if recorded[1] != digest:
                        self.add("records", self._subject(name, key), "differs from what the audit trail recorded "
                                 f"for it ({self._event(recorded[0])}): it was changed outside ECMS Desktop")
            self.tick(len(batch), f"Checked {checked:,} {_NAMES.get(name, name.replace('_', ' '))} records")
        if state_digest.count_recorded_live(self.conn, name) != live_seen:
            pending: list[tuple[str, int]] = []
            for item in state_digest.recorded_live(self.conn, name):
                pending.append(item)
                if len(pending) >= 900:
                    self._missing(name, kind, pending)
                    pending = []
            self._missing(name, kind, pending)
        return checked

    def _missing(self, name: str, kind: state_digest.RecordKind | state_digest.LineBlockKind,
                 items: list[tuple[str, int]]) -> None:
        if not items:
            return
        present = kind.existing(self.conn, [k for k, _ in items])
        for key, seq in items:
            if key not in present:
                self.add("records", self._subject(name, key), f"is missing: {self._event(seq)} recorded it, and no "
                         "event deleted it: it was deleted outside ECMS Desktop")

    def _files(self) -> int:
        table = cast(Table, DocumentFile.__table__)
        checked = 0
        after = ""
        while True:
            keys = self.conn.execute(select(table.c.sha256, table.c.size).where(table.c.sha256 > after)
                                     .order_by(table.c.sha256).limit(500)).all()
            if not keys:
                return checked
            after = keys[-1].sha256
            start = 0
            while start < len(keys):
                part: list[str] = []
                size = 0
                while start < len(keys) and (not part or size + keys[start].size <= _FILE_BATCH_BYTES):
                    part.append(keys[start].sha256)
                    size += max(keys[start].size, 0)
                    start += 1
                for sha, recorded_size, data in self.conn.execute(
                        select(table.c.sha256, table.c.size, table.c.data).where(table.c.sha256.in_(part))):
                    checked += 1
                    actual = hashlib.sha256(data or b"").hexdigest()
                    if actual != sha or len(data or b"") != recorded_size:
                        self.add("documents", f"document file {sha[:12]}…{self._users(sha)}",
                                 "its stored bytes no longer match their SHA-256 (or size): the file was replaced "
                                 "or altered outside ECMS Desktop")
                self.tick(len(part), f"Checked {checked:,} stored files")

    def _users(self, sha: str) -> str:
        rows = self.conn.execute(select(Document.id, Document.original_name, Document.certificate_id)
                                 .where(Document.sha256 == sha).order_by(Document.id).limit(3)).all()
        if not rows:
            return ""
        return " (" + "; ".join(f"document {r.id} {r.original_name!r}"
                                + (f" of certificate {r.certificate_id}" if r.certificate_id else "")
                                for r in rows) + ")"


def anchors_from_path(path: Path) -> list[Anchor]:
    """The chain head recorded in an audit pack (its folder, ``.zip`` or ``manifest.json``) or a backup
    made with ``ecms backup``."""
    if not path.exists():
        raise ValidationError(f"{path}: there is no such file or folder to take an anchor from.")
    manifest: Any = None
    try:
        if path.is_dir():
            if not (path / "manifest.json").is_file():
                raise ValidationError(f"{path}: this folder is not an audit pack (it has no manifest.json).")
            manifest = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
        elif path.suffix.lower() == ".zip":
            with zipfile.ZipFile(path) as zf:
                names = [n for n in zf.namelist() if n.rsplit("/", 1)[-1] == "manifest.json"]
                if not names:
                    raise ValidationError(f"{path}: this zip is not an audit pack (it has no manifest.json).")
                manifest = json.loads(zf.read(min(names, key=len)).decode("utf-8"))
        elif path.suffix.lower() == ".json":
            manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, zipfile.BadZipFile, UnicodeDecodeError) as exc:
        raise ValidationError(f"{path}: cannot read the audit pack's manifest ({exc}).") from exc
    if manifest is not None:
        chain = manifest.get("audit_chain") if isinstance(manifest, dict) else None
        if not isinstance(chain, dict) or not isinstance(chain.get("head_seq"), int) \
                or not isinstance(chain.get("head_hash"), str):
            raise ValidationError(f"{path}: this is not an audit pack manifest (it records no audit chain head).")
        return [Anchor(chain["head_seq"], chain["head_hash"], "audit pack", str(manifest.get("generated_at", "")),
                       where=str(path))]
    try:
        info = describe_backup(path)
    except BackupFormatError as exc:
        raise ValidationError(f"{path}: {exc}") from exc
    return [Anchor(info.head_seq, info.head_hash, "backup", info.taken_at, where=str(path))]
