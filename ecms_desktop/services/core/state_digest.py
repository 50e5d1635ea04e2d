"""What state each audited record was left in: canonical digests kept with the audit trail.

A hash chain proves that no audit event was altered; it says nothing about the records themselves.
So every unit of work that changes a tracked record leaves, on its last audit event, the SHA-256 of
the canonical form of each record it changed, *as committed* (:class:`~ecms_desktop.models.AuditDigest`
rows, covered by the event's hash through ``state_sha256``). ``ecms check`` recomputes every tracked
record and compares it with the latest digest the trail holds: a certificate edited, a coverage line
added, a document row or a setting changed, a record inserted or deleted directly in the database is
named.

How the digests are gathered: the sessions of :class:`~ecms_desktop.services.core.database.Database` note
every tracked ORM object a flush writes (:func:`install`); code that writes rows with Core statements
(bulk inserts) names them with :func:`touch`. Just before the commit the noted records are read back in
the same transaction and digested, so the digest is of the final state whatever order the service did
things in; a unit of work that changed tracked records without writing any audit event gets one
(``records.changed``), so nothing changes unaudited.

This module is the one place that knows how to digest each kind of record. The canonical form of a
record is the SHA-256 of the UTF-8 JSON text (keys sorted, no spaces, non-ASCII kept) of
``{<table>: {column: value, ...}, <child table>: [{column: value, ...}, ...]}`` with every column of
the table (but a column added to the table after its records were first digested, while it is null:
see ``RecordKind.added_later``), and for child rows every column but their own id and the parent's
key, in a fixed order.
Values: ``null``; ``true``/``false``; integers as numbers; fixed-point numbers as text with the
column's scale (``"12.5000"``); dates ``"YYYY-MM-DD"``; timestamps in UTC
``"YYYY-MM-DDTHH:MM:SS.ffffff+00:00"``; JSON columns as JSON (floats as their ``repr`` text); binary
values as the SHA-256 of their bytes; text as is. Bulk code that inserts certificates can compute the
same digest from plain values with :func:`certificate_digest` and hand it over with :func:`touch`.
Transaction lines, a million at a time, have a cheaper form per block (:class:`LineBlockKind`).

Tracked records (``KINDS``): certificates with their coverage lines, customers, customer number aliases,
companies with their registrations, document arrivals, validation runs with their findings, warning
acknowledgements, business settings, company expiry policies, permit checks, people and their claims on
certificates, the rules packs installed, and the ERP's transaction lines in blocks of :data:`LINE_BLOCK` ids.
Stored file bytes need no digest: each ``document_file`` row is named by
the SHA-256 of its bytes, which ``ecms check`` recomputes.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, cast

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Connection,
    Date,
    DateTime,
    Float,
    Integer,
    LargeBinary,
    Numeric,
    Table,
    TypeDecorator,
    event,
    func,
    select,
    text,
)
from sqlalchemy.orm import Session, sessionmaker

from ecms_desktop.models import (
    AuditDigest,
    Certificate,
    CertificateClaim,
    Company,
    CompanyRegistration,
    CoverageLine,
    Customer,
    CustomerNumberAlias,
    Document,
    ExpiryPolicyOverride,
    InstalledRulesPack,
    Person,
    Setting,
)
from ecms_desktop.models.transactions import TransactionLine
from ecms_desktop.models.validation import Finding, PermitCheck, ValidationRun, WarningAcknowledgement
from ecms_desktop.services.core import audit, json_text
from ecms_desktop.services.core.bulk import BulkInsert

#: Transaction lines are digested in blocks of this many consecutive ids (a million lines make a
#: thousand digests, and an import that adds lines re-digests only the blocks it wrote to).
LINE_BLOCK = 1000

_TOUCHED = "ecms_state_touched"    # session.info: {kind name: set of keys}
_GIVEN = "ecms_state_given"        # session.info: {(kind name, key): digest computed by the caller}
_ALL = "ecms_state_all"            # session.info: kind names to digest in full (integrity baseline)
_NEW_LINES_AFTER = "ecms_state_new_lines_after"  # session.info: transaction lines above this id are new


def _text(value: Any) -> Any:
    return value if value is None or isinstance(value, str) else str(value)


def _integer(value: Any) -> Any:
    return None if value is None else int(value)


def _boolean(value: Any) -> Any:
    return None if value is None else bool(value)


def _number(scale: int | None) -> Callable[[Any], Any]:
    step = Decimal(1).scaleb(-scale) if scale is not None else None

    def canon(value: Any) -> Any:
        if value is None:
            return None
        try:
            number = value if isinstance(value, Decimal) else Decimal(str(value))
            return format(number.quantize(step) if step is not None else number, "f")
        except (InvalidOperation, ValueError):
            return str(value)
    return canon


def _timestamp(value: Any) -> Any:
    if value is None:
        return None
    if not isinstance(value, dt.datetime):
        return str(value)
    moment = value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)
    return moment.isoformat(timespec="microseconds")


def _date(value: Any) -> Any:
    if value is None:
        return None
    return value.isoformat() if isinstance(value, dt.date) else str(value)


def _binary(value: Any) -> Any:
    return None if value is None else hashlib.sha256(bytes(value)).hexdigest()


def _canon_of(column_type: Any) -> Callable[[Any], Any]:
    """How a stored value of this column type takes the canonical form described in the module
    docstring."""
    t = column_type.impl if isinstance(column_type, TypeDecorator) else column_type
    if isinstance(t, Boolean):
        return _boolean
    if isinstance(t, Integer):
        return _integer
    if isinstance(t, Numeric) and not isinstance(t, Float):
        return _number(t.scale)
    if isinstance(t, DateTime):
        return _timestamp
    if isinstance(t, Date):
        return _date
    if isinstance(t, JSON):
        return audit.jsonable
    if isinstance(t, LargeBinary):
        return _binary
    return _text


_FORMS: dict[tuple[str, tuple[str, ...]], tuple[tuple[str, ...], tuple[tuple[str, Callable[[Any], Any]], ...]]] = {}


def _row_form(table: Table, row: Mapping[str, Any], skip: Sequence[str] = ()) -> dict[str, Any]:
    spec = _FORMS.get((table.name, tuple(skip)))
    if spec is None:
        columns = [(c.name, _canon_of(c.type)) for c in table.columns if c.name not in skip]
        spec = _FORMS[(table.name, tuple(skip))] = (tuple(name for name, canon in columns if canon is _text),
                                                    tuple((name, canon) for name, canon in columns
                                                          if canon is not _text))
    texts, others = spec
    try:
        # Text columns inline (most columns, and this runs for every record an import writes).
        form = {name: v if v is None or type(v) is str else str(v) for name in texts for v in (row[name],)}
        for name, canon in others:
            form[name] = canon(row[name])
        return form
    except KeyError as exc:
        raise KeyError(f"{table.name}.{exc.args[0]} is needed to compute the record's digest") from exc


def _sha(form: Any) -> str:
    text = json_text.canonical(form)
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class _Child:
    table: Table
    parent_key: str
    order: tuple[str, ...]

    @property
    def skip(self) -> tuple[str, ...]:
        return ("id", self.parent_key)


class RecordKind:
    """One kind of tracked record: a table keyed by an integer id (``key``: the integer column that is its
    key, ``id`` unless said), with child rows that belong to it."""

    def __init__(self, name: str, table: Any, children: Sequence[_Child] = (), *,
                 added_later: Sequence[str] = (), key: str = "id") -> None:
        self.name = name
        self.table = cast(Table, table)
        self.children = tuple(children)
        self.key = key
        self.pk = cast(Column[int], self.table.c[key])
        #: Columns added to the table after its records were first digested: left out of the canonical
        #: form while empty (null), so that the digests kept before they existed still fit.
        self.added_later = tuple(added_later)

    def digest(self, row: Mapping[str, Any], children: Sequence[Sequence[Mapping[str, Any]]] = ()) -> str:
        """The digest of one record from its stored values (``children`` in the order of the kind's
        child tables, each list in any order)."""
        own = _row_form(self.table, row)
        for name in self.added_later:
            if own[name] is None:
                del own[name]
        form: dict[str, Any] = {self.table.name: own}
        for child, rows in zip(self.children, children or [()] * len(self.children), strict=True):
            forms = [_row_form(child.table, r, child.skip) for r in rows]
            form[child.table.name] = sorted(forms, key=lambda f: [str(f[k]) for k in child.order])
        return _sha(form)

    def read(self, conn: Connection, keys: Sequence[str]) -> dict[str, str | None]:
        """The digests of the named records as stored now (``None``: there is no such record)."""
        ids = sorted({int(k) for k in keys})
        found: dict[str, str | None] = {str(k): None for k in ids}
        for start in range(0, len(ids), 500):
            part = ids[start:start + 500]
            rows = conn.execute(select(self.table).where(self.pk.in_(part))).mappings().all()
            found.update(self._digests(conn, rows, part))
        return found

    def scan(self, conn: Connection, batch: int = 2000) -> Iterator[list[tuple[str, str]]]:
        """Every record in id order, in batches of (key, digest)."""
        after = None
        while True:
            stmt = select(self.table).order_by(self.pk).limit(batch)
            if after is not None:
                stmt = stmt.where(self.pk > after)
            rows = conn.execute(stmt).mappings().all()
            if not rows:
                return
            key = self.key
            after = rows[-1][key]
            digests = self._digests(conn, rows, [r[key] for r in rows])
            yield [(str(r[key]), cast(str, digests[str(r[key])])) for r in rows]

    def count(self, conn: Connection) -> int:
        return int(conn.execute(select(func.count()).select_from(self.table)).scalar_one())

    def existing(self, conn: Connection, keys: Sequence[str]) -> set[str]:
        """Which of the named records exist."""
        ids = [int(k) for k in keys]
        return {str(i) for i in conn.execute(select(self.pk).where(self.pk.in_(ids))).scalars()}

    def _digests(self, conn: Connection, rows: Sequence[Any], ids: Sequence[int]) -> dict[str, str | None]:
        kids: list[dict[int, list[Any]]] = []
        for child in self.children:
            by_parent: dict[int, list[Any]] = {}
            fk = child.table.c[child.parent_key]
            for r in conn.execute(select(child.table).where(fk.in_(list(ids)))).mappings():
                by_parent.setdefault(r[child.parent_key], []).append(r)
            kids.append(by_parent)
        key = self.key
        return {str(r[key]): self.digest(r, [k.get(r[key], []) for k in kids]) for r in rows}


class LineBlockKind:
    """The ERP's transaction lines, digested in blocks of :data:`LINE_BLOCK` consecutive ids (key:
    the block number ``id // LINE_BLOCK``); a block with no lines has no digest.

    A million lines are imported at once, so a block's form is the cheapest exact one: the JSON list,
    in id order, of each line's stored values in column order as the database driver returns them
    (numbers, text, ``null``; dates, timestamps and decimals a driver returns as objects as their
    text). Only this database's own values are compared with it, never values computed elsewhere."""

    name = "transaction_lines"

    def __init__(self) -> None:
        self.table = cast(Table, TransactionLine.__table__)
        self.pk = cast(Column[int], self.table.c.id)
        columns = ", ".join(c.name for c in self.table.columns)
        # Plain SQL text: the driver's values, without the column types' conversions.
        self._range = text(f"SELECT {columns} FROM transaction_line WHERE id >= :lo AND id < :hi ORDER BY id")

    @staticmethod
    def _block_digest(rows: Sequence[Any]) -> str:
        text_ = json.dumps([list(r) for r in rows], separators=(",", ":"), ensure_ascii=False, default=str)
        return hashlib.sha256(text_.encode()).hexdigest()

    def _blocks(self, conn: Connection, lo: int, hi: int) -> list[tuple[str, str]]:
        """The digests of the blocks holding lines with ids from ``lo`` up to ``hi`` (excluded), read
        in one pass."""
        out: list[tuple[str, str]] = []
        block: int | None = None
        rows: list[Any] = []
        for r in conn.execute(self._range, {"lo": lo, "hi": hi}):
            b = r[0] // LINE_BLOCK
            if b != block and rows:
                out.append((str(block), self._block_digest(rows)))
                rows = []
            block = b
            rows.append(r)
        if rows:
            out.append((str(block), self._block_digest(rows)))
        return out

    def read(self, conn: Connection, keys: Sequence[str]) -> dict[str, str | None]:
        blocks = sorted({int(k) for k in keys})
        found: dict[str, str | None] = {str(b): None for b in blocks}
        start = 0
        while start < len(blocks):  # runs of consecutive blocks (an import's new lines) in one query each
            end = start
            while end + 1 < len(blocks) and blocks[end + 1] == blocks[end] + 1 and end - start < 50:
                end += 1
            found.update(self._blocks(conn, blocks[start] * LINE_BLOCK, (blocks[end] + 1) * LINE_BLOCK))
            start = end + 1
        return found

    def scan(self, conn: Connection, batch: int = 20 * LINE_BLOCK) -> Iterator[list[tuple[str, str]]]:
        after = -1
        while True:
            # Whole blocks per batch: from the first line after the previous batch to the end of
            # the block that ``batch`` lines further on reaches.
            first = conn.execute(select(func.min(self.pk)).where(self.pk > after)).scalar()
            if first is None:
                return
            end = (int(first) // LINE_BLOCK + batch // LINE_BLOCK) * LINE_BLOCK
            yield self._blocks(conn, after + 1, end)
            after = end - 1

    def count(self, conn: Connection) -> int:
        return int(conn.execute(select(func.count(func.distinct(self.pk // LINE_BLOCK)))
                                .select_from(self.table)).scalar_one())

    def existing(self, conn: Connection, keys: Sequence[str]) -> set[str]:
        """Which of the named blocks hold lines."""
        return {k for k in keys if conn.execute(select(self.pk).where(
            self.pk >= int(k) * LINE_BLOCK, self.pk < (int(k) + 1) * LINE_BLOCK).limit(1)).first() is not None}

    def max_id(self, conn: Connection) -> int:
        return int(conn.execute(select(func.max(self.pk))).scalar() or 0)


CERTIFICATE = RecordKind("certificate", Certificate.__table__,
                         [_Child(cast(Table, CoverageLine.__table__), "certificate_id", ("state",))])
VALIDATION_RUN = RecordKind(
    "validation_run", ValidationRun.__table__,
    [_Child(cast(Table, Finding.__table__), "run_id", ("rule", "state", "field", "severity", "message"))])
TRANSACTION_LINES = LineBlockKind()

#: Every kind of tracked record, by name.
KINDS: dict[str, RecordKind | LineBlockKind] = {k.name: k for k in (
    CERTIFICATE,
    RecordKind("customer", Customer.__table__),
    RecordKind("customer_alias", CustomerNumberAlias.__table__),
    RecordKind("company", Company.__table__,
               [_Child(cast(Table, CompanyRegistration.__table__), "company_id", ("state",))]),
    # The intake inbox's columns (migration 0008) came after documents were first digested. A document's
    # reading (document_extraction) is derived from the digested bytes and is not tracked.
    RecordKind("document", Document.__table__, added_later=(
        "company_id", "first_page", "last_page", "split_from_id", "discarded_at", "discarded_by", "discard_reason")),
    VALIDATION_RUN,
    RecordKind("warning_acknowledgement", WarningAcknowledgement.__table__),
    RecordKind("setting", Setting.__table__),
    RecordKind("expiry_policy", ExpiryPolicyOverride.__table__),
    RecordKind("permit_check", PermitCheck.__table__),
    RecordKind("person", Person.__table__),
    # Which reviewer works a pending certificate (keyed by the certificate).
    RecordKind("certificate_claim", CertificateClaim.__table__, key="certificate_id"),
    # The rules packs installed (their archive as the SHA-256 of its bytes).
    RecordKind("rules_pack", InstalledRulesPack.__table__),
    TRANSACTION_LINES,
)}

#: ORM class -> (kind name, function giving the record's key from an object of the class).
_OF_CLASS: dict[type, tuple[str, Callable[[Any], Any]]] = {
    Certificate: ("certificate", lambda o: o.id),
    CoverageLine: ("certificate", lambda o: o.certificate_id),
    Customer: ("customer", lambda o: o.id),
    CustomerNumberAlias: ("customer_alias", lambda o: o.id),
    Company: ("company", lambda o: o.id),
    CompanyRegistration: ("company", lambda o: o.company_id),
    Document: ("document", lambda o: o.id),
    ValidationRun: ("validation_run", lambda o: o.id),
    Finding: ("validation_run", lambda o: o.run_id),
    WarningAcknowledgement: ("warning_acknowledgement", lambda o: o.id),
    Setting: ("setting", lambda o: o.id),
    ExpiryPolicyOverride: ("expiry_policy", lambda o: o.id),
    PermitCheck: ("permit_check", lambda o: o.id),
    Person: ("person", lambda o: o.id),
    CertificateClaim: ("certificate_claim", lambda o: o.certificate_id),
    InstalledRulesPack: ("rules_pack", lambda o: o.id),
    TransactionLine: ("transaction_lines", lambda o: None if o.id is None else o.id // LINE_BLOCK),
}


def certificate_digest(certificate: Mapping[str, Any], lines: Iterable[Mapping[str, Any]]) -> str:
    """The digest of a certificate from plain values, for bulk code that inserts certificates without
    ORM objects: ``certificate`` holds every column of the ``certificate`` row as stored (id, version,
    timestamps included), ``lines`` every column of each of its coverage lines except ``id`` and
    ``certificate_id``. Hand it over with ``touch(session, "certificate", {id: digest})``."""
    return CERTIFICATE.digest(certificate, [list(lines)])


# -- noting what a unit of work changed -------------------------------------------------------------


def touch(session: Session, kind: str, keys: Iterable[Any] | Mapping[Any, str]) -> None:
    """Name records a unit of work wrote with Core statements (the ORM's are noted by themselves).
    With a mapping of key -> digest (from :func:`certificate_digest`), those digests are used as given
    instead of reading the records back."""
    if kind not in KINDS:
        raise ValueError(f"{kind!r} is not a tracked kind of record ({', '.join(KINDS)})")
    touched = session.info.setdefault(_TOUCHED, {}).setdefault(kind, set())
    if isinstance(keys, Mapping):
        given = session.info.setdefault(_GIVEN, {})
        for key, digest in keys.items():
            given[(kind, str(key))] = digest
    touched.update(str(k) for k in keys)


def touch_transaction_lines(session: Session, line_ids: Iterable[int]) -> None:
    """Name transaction lines a unit of work inserted or updated with Core statements."""
    touch(session, TRANSACTION_LINES.name, {int(i) // LINE_BLOCK for i in line_ids})


def note_new_transaction_lines(session: Session) -> None:
    """Call before a bulk insert of transaction lines: every line above today's highest id at commit
    time was written by this unit of work and its blocks are digested then."""
    if _NEW_LINES_AFTER not in session.info:
        session.info[_NEW_LINES_AFTER] = TRANSACTION_LINES.max_id(session.connection())


def touch_all(session: Session) -> None:
    """Digest every tracked record at commit: the integrity baseline of a database that had records
    before their digests were kept (``ecms init`` after an upgrade)."""
    session.info.setdefault(_ALL, set()).update(KINDS)


def _after_flush(session: Session, _context: Any) -> None:
    touched = session.info.setdefault(_TOUCHED, {})
    changed = [*session.new, *session.deleted]
    # A certificate whose version the flush raised because a document or line of it changed
    # (models.versioning, in before_flush) no longer counts as modified here, though its row was
    # updated: every dirty certificate is digested again.
    changed.extend(obj for obj in session.dirty
                   if type(obj) in _OF_CLASS and (isinstance(obj, Certificate)
                                                  or session.is_modified(obj, include_collections=False)))
    for obj in changed:
        spec = _OF_CLASS.get(type(obj))
        if spec is None:
            continue
        key = spec[1](obj)
        if key is not None:
            touched.setdefault(spec[0], set()).add(str(key))


def _before_commit(session: Session) -> None:
    if session.in_nested_transaction():
        return  # the outermost commit digests what the whole unit of work changed
    session.flush()
    info = session.info
    if not (info.get(_TOUCHED) or info.get(_ALL) or _NEW_LINES_AFTER in info):
        _forget(session)
        return
    conn = session.connection()
    touched: dict[str, set[str]] = {k: set(v) for k, v in info.get(_TOUCHED, {}).items() if v}
    if _NEW_LINES_AFTER in info:
        top = TRANSACTION_LINES.max_id(conn)
        first = int(info[_NEW_LINES_AFTER]) + 1
        if top >= first:
            touched.setdefault(TRANSACTION_LINES.name, set()).update(
                str(b) for b in range(first // LINE_BLOCK, top // LINE_BLOCK + 1))
    everything = set(info.get(_ALL, ()))
    if not touched and not everything:
        _forget(session)
        return
    if audit.last_event_of(session) is None:
        # A change of tracked records is never left unaudited.
        details: dict[str, Any] = {kind: len(keys) for kind, keys in sorted(touched.items())}
        if everything:
            details["all"] = sorted(everything)
        audit.record(session, "records.changed", "database", "records", details=details)
    seq = cast(tuple[int, str], audit.last_event_of(session))[0]
    given: dict[tuple[str, str], str] = info.get(_GIVEN, {})
    writer = _DigestWriter(session, seq)
    for name in sorted(KINDS):
        kind = KINDS[name]
        if name in everything:
            for batch in kind.scan(conn):
                writer.add(name, batch)
            continue
        keys = touched.get(name)
        if not keys:
            continue
        ordered = sorted(keys, key=lambda k: (len(k), k))
        wanted = [k for k in ordered if (name, k) not in given]
        read = kind.read(conn, wanted) if wanted else {}
        writer.add(name, [(k, given[(name, k)] if (name, k) in given else read.get(k)) for k in ordered])
    writer.finish()
    _forget(session)


def _forget(session: Session) -> None:
    for key in (_TOUCHED, _GIVEN, _ALL, _NEW_LINES_AFTER):
        session.info.pop(key, None)


class _DigestWriter:
    """Writes a unit of work's digests in batches and seals its last event with their state hash."""

    def __init__(self, session: Session, seq: int) -> None:
        self.session, self.seq = session, seq
        self.n = 0
        self.hash = hashlib.sha256()
        self.rows: list[tuple[Any, ...]] = []
        # Plain tuples through the driver: an import of 100,000 certificates leaves 200,000 digests.
        self.insert = BulkInsert(session.connection(), cast(Table, AuditDigest.__table__),
                                 ("seq", "n", "entity_type", "entity_key", "digest"))

    def add(self, kind: str, items: Iterable[tuple[str, str | None]]) -> None:
        line = audit.state_line
        for key, digest in items:
            self.n += 1
            self.rows.append((self.seq, self.n, kind, key, digest))
            self.hash.update(line(kind, key, digest))
        if len(self.rows) >= 20000:
            self._flush()

    def _flush(self) -> None:
        if self.rows:
            self.insert.execute_processed(self.rows)
            self.rows = []

    def finish(self) -> None:
        if not self.n:
            return
        self._flush()
        audit.seal_last_event(self.session, self.hash.hexdigest())


def _after_end(session: Session) -> None:
    _forget(session)
    session.info.pop(audit.LAST_EVENT_KEY, None)


def install(factory: sessionmaker[Session]) -> None:
    """Keep the state digests of every unit of work of sessions made by ``factory``."""
    event.listen(factory, "after_flush", _after_flush)
    event.listen(factory, "before_commit", _before_commit)
    event.listen(factory, "after_rollback", _after_end)
    event.listen(factory, "after_commit", _after_end)


# -- reading what the trail says -------------------------------------------------------------------


def latest_digests(conn: Connection, kind: str, keys: Sequence[str]) -> dict[str, tuple[int, str | None]]:
    """The latest digest the audit trail holds for each named record: key -> (event seq, digest)."""
    table = cast(Table, AuditDigest.__table__)
    latest: dict[str, tuple[int, str | None]] = {}
    for start in range(0, len(keys), 900):
        part = list(keys[start:start + 900])
        for key, seq, digest in conn.execute(
                select(table.c.entity_key, table.c.seq, table.c.digest)
                .where(table.c.entity_type == kind, table.c.entity_key.in_(part))):
            if key not in latest or seq > latest[key][0]:
                latest[key] = (seq, digest)
    return latest


def recorded_live(conn: Connection, kind: str) -> Iterator[tuple[str, int]]:
    """Every record of a kind whose latest digest says it exists: (key, event seq), streamed."""
    table = cast(Table, AuditDigest.__table__)
    inner = table.alias("later")
    latest_seq = (select(func.max(inner.c.seq))
                  .where(inner.c.entity_type == table.c.entity_type, inner.c.entity_key == table.c.entity_key)
                  .scalar_subquery())
    stmt = (select(table.c.entity_key, table.c.seq)
            .where(table.c.entity_type == kind, table.c.seq == latest_seq, table.c.digest.is_not(None)))
    for key, seq in conn.execution_options(yield_per=20000).execute(stmt):
        yield str(key), int(seq)


def count_recorded_live(conn: Connection, kind: str) -> int:
    table = cast(Table, AuditDigest.__table__)
    inner = table.alias("later")
    latest_seq = (select(func.max(inner.c.seq))
                  .where(inner.c.entity_type == table.c.entity_type, inner.c.entity_key == table.c.entity_key)
                  .scalar_subquery())
    return int(conn.execute(select(func.count()).select_from(table).where(
        table.c.entity_type == kind, table.c.seq == latest_seq, table.c.digest.is_not(None))).scalar_one())
