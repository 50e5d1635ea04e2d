"""Verifying that a buyer held an active sales tax permit, with every check recorded as evidence.

Three ways to check a coverage line's permit number, each recorded as a
:class:`~ecms_desktop.models.validation.PermitCheck` (who, when, source, number, result, evidence) and
audited (``permit.checked``):

* **registry snapshot**: a state's list of permit holders imported from a file
  (:meth:`PermitService.import_registry`, ``ecms permits import``); checks say the snapshot's date;
* **manual**: the reviewer looks the number up on the state's web site (a prefilled link from the
  rules pack's ``permit.lookup_url``) and records the result with a screenshot or PDF, stored by hash;
* **online**: an HTTP service (:class:`HttpVerifier`) for states that offer one.

Verifiers are pluggable per state (:class:`PermitVerifier`); the registry snapshot is the default.
Checks older than the company setting ``permit_check_max_age_days`` are listed for re-verification.
No Qt here.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session, selectinload

from ecms_desktop.models import Certificate, Customer, utcnow
from ecms_desktop.models.validation import (
    CHECK_RESULTS,
    PermitCheck,
    PermitRegistryEntry,
    PermitRegistrySnapshot,
)
from ecms_desktop.rules import RulesPack, load_rules_pack
from ecms_desktop.rules.pack import UnknownStateError
from ecms_desktop.services.core import audit, people
from ecms_desktop.services.core.database import Database
from ecms_desktop.services.core.errors import Cancelled, DocumentError, NotFoundError, Problem, ValidationError
from ecms_desktop.services.core.progress import CancelCheck, Progress
from ecms_desktop.services.core.settings import business_settings
from ecms_desktop.services.core.tabular import Row, header_key, read_table
from ecms_desktop.services.documents.storage import check_file, store_checked
from ecms_desktop.services.validation.engine import stated_issuer
from ecms_desktop.services.validation.name_match import NameVerdict, compare_holder, normalize_name
from ecms_desktop.vocabulary import REGISTRY_FIELDS

#: Built-in column mapping for the Texas Comptroller's "Active Sales Tax Permit Holders" file
#: (Texas Open Data Portal, data.texas.gov dataset jrea-zgmq). Its 19 columns, as listed on the
#: dataset page (seen via opendatanetwork.com/dataset/data.texas.gov/jrea-zgmq): Taxpayer Number,
#: Taxpayer Name, Taxpayer Address, Taxpayer City, Taxpayer State, Taxpayer Zip Code, Taxpayer County
#: Code, Taxpayer Organization Type, Outlet Number, Outlet Name, Outlet Address, Outlet City, Outlet
#: State, Outlet Zip Code, Outlet County Code, Outlet NAICS Code, Outlet Inside/Outside City Limits
#: Indicator, Outlet Permit Issue Date, Outlet First Sales Date. The keys below are those headers as
#: :func:`~ecms_desktop.services.core.tabular.header_key` spells them (they equal the dataset's API column
#: names). The file lists only ACTIVE permit holders, one row per outlet, so it has no status column:
#: every listed number is active, and a number absent from it is "not found". Confirmed from the
#: dataset's published column list, not from a downloaded copy of the file.
TEXAS_ACTIVE_PERMITS_MAP: Mapping[str, str] = {
    "taxpayer_number": "permit_number",
    "taxpayer_name": "legal_name",
    "outlet_name": "dba_name",
    "outlet_permit_issue_date": "issue_date",
}
TEXAS_ACTIVE_PERMITS_COLUMNS: tuple[str, ...] = (
    "taxpayer_number", "taxpayer_name", "taxpayer_address", "taxpayer_city", "taxpayer_state",
    "taxpayer_zip_code", "taxpayer_county_code", "taxpayer_organization_type", "outlet_number", "outlet_name",
    "outlet_address", "outlet_city", "outlet_state", "outlet_zip_code", "outlet_county_code",
    "outlet_naics_code", "outlet_inside_outside_city_limits_indicator", "outlet_permit_issue_date",
    "outlet_first_sales_date",
)
BUILTIN_LAYOUTS: Mapping[str, tuple[str, Mapping[str, str]]] = {
    "TX": ("texas_active_permits", TEXAS_ACTIVE_PERMITS_MAP),
}

#: How status values in registry files are read.
STATUS_WORDS: Mapping[str, str] = {
    "active": "active", "a": "active", "y": "active", "yes": "active", "open": "active", "valid": "active",
    "inactive": "inactive", "i": "inactive", "n": "inactive", "no": "inactive", "closed": "inactive",
    "cancelled": "inactive", "canceled": "inactive", "revoked": "inactive", "expired": "inactive",
    "suspended": "inactive",
}
DATE_FORMATS: tuple[str, ...] = ("%Y-%m-%d", "%m/%d/%Y", "%Y%m%d", "%m/%d/%y")
EVIDENCE_TYPES: frozenset[str] = frozenset({"application/pdf", "image/png", "image/jpeg"})


# --------------------------------------------------------------------------- DTOs


@dataclass(frozen=True)
class SnapshotInfo:
    """An imported registry snapshot."""

    id: int
    state: str
    source_name: str
    data_date: dt.date
    row_count: int
    layout: str
    imported_at: dt.datetime
    imported_by: str


@dataclass(frozen=True)
class PermitCheckInfo:
    """One recorded permit check, for the review desk, the CLI and the audit pack."""

    id: int
    certificate_id: int
    state: str
    number_checked: str
    method: str
    source: str
    result: str
    name_on_record: str
    message: str
    checked_at: dt.datetime
    checked_by: str
    as_of: dt.date
    snapshot_id: int | None
    evidence_document_id: int | None
    evidence_sha256: str

@dataclass(frozen=True)
class VerificationOutcome:
    """What a verifier found for one number."""

    result: str  # active | inactive | not_found | unavailable
    source: str
    as_of: dt.date
    name_on_record: str = ""
    message: str = ""
    snapshot_id: int | None = None


@dataclass(frozen=True)
class LookupLink:
    """Where a reviewer checks a number by hand: the state's lookup page (prefilled when it can be)."""

    state: str
    url: str | None
    name: str
    number: str


@dataclass(frozen=True)
class StaleCheck:
    """A coverage line whose last permit check is older than the company allows (or never done)."""

    certificate_id: int
    state: str
    number: str
    last_checked_on: dt.date | None
    max_age_days: int


# --------------------------------------------------------------------------- verifiers


class PermitVerifier(Protocol):
    """Checks one permit number of one state. ``method`` is ``registry`` or ``online``."""

    method: str

    def verify(self, session: Session, state: str, number: str, *, as_of: dt.date) -> VerificationOutcome: ...


class RegistrySnapshotVerifier:
    """Looks the number up in the state's latest imported registry snapshot."""

    method = "registry"

    def __init__(self, rules: RulesPack) -> None:
        self.rules = rules

    def verify(self, session: Session, state: str, number: str, *, as_of: dt.date) -> VerificationOutcome:
        # A number written with another issuer ("OK 123456789" on a Texas 01-339) is in that state's registry.
        issuer, number = stated_issuer(number, self.rules.states, None)
        state = issuer or state
        snap = session.execute(select(PermitRegistrySnapshot).where(PermitRegistrySnapshot.state == state)
                               .order_by(PermitRegistrySnapshot.data_date.desc(),
                                         PermitRegistrySnapshot.id.desc()).limit(1)).scalar_one_or_none()
        if snap is None:
            link = lookup_link(self.rules, state, number)
            where = f" Check it by hand at {link.url}." if link.url else ""
            return VerificationOutcome("unavailable", f"no {state} registry snapshot imported", as_of,
                                       message=f"No {state} permit registry has been imported.{where}")
        source = f"{state} registry snapshot of {snap.data_date.isoformat()} ({snap.source_name})"
        key = self.rules.state(state).permit.normalize(number)
        entry = session.execute(select(PermitRegistryEntry).where(
            PermitRegistryEntry.snapshot_id == snap.id, PermitRegistryEntry.permit_number == key).limit(1)
        ).scalar_one_or_none()
        if entry is None:
            return VerificationOutcome("not_found", source, snap.data_date, snapshot_id=snap.id,
                                       message=f"{number} is not in the {source}.")
        active = entry.status == "active" and (entry.end_date is None or entry.end_date >= snap.data_date)
        result = "active" if active else "inactive"
        ended = f", ended {entry.end_date.isoformat()}" if entry.end_date else ""
        holder = registry_holder(entry)
        return VerificationOutcome(result, source, snap.data_date, holder, snapshot_id=snap.id,
                                   message=f"The {source} lists {number} as {result}{ended}: "
                                           f"{holder or '(no name)'}.")


class HttpVerifier:
    """An online permit-verification service reached over HTTP(S).

    ``url_template`` takes ``{state}`` and ``{number}`` (URL-quoted). The service answers JSON
    ``{"status": "active"|"inactive"|"not_found", "name": "...", "as_of": "YYYY-MM-DD"}``; ``as_of``
    is optional. A failure is recorded as ``unavailable`` with the reason, never as a result.
    """

    method = "online"

    def __init__(self, url_template: str, *, timeout: float = 10.0, name: str = "") -> None:
        self.url_template = url_template
        self.timeout = timeout
        self.name = name or urllib.parse.urlsplit(url_template).netloc

    def verify(self, session: Session, state: str, number: str, *, as_of: dt.date) -> VerificationOutcome:
        url = self.url_template.format(state=urllib.parse.quote(state), number=urllib.parse.quote(number))
        source = f"online service {self.name}"
        try:
            with urllib.request.urlopen(url, timeout=self.timeout) as response:
                body = json.loads(response.read().decode("utf-8"))
        except urllib.error.HTTPError as exc:
            return VerificationOutcome("unavailable", source, as_of,
                                       message=f"The service {self.name} answered HTTP {exc.code}.")
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            return VerificationOutcome("unavailable", source, as_of,
                                       message=f"The service {self.name} could not be reached ({exc}).")
        except (ValueError, UnicodeDecodeError):
            return VerificationOutcome("unavailable", source, as_of,
                                       message=f"The service {self.name} did not answer JSON.")
        status = str(body.get("status", "")).strip().lower() if isinstance(body, dict) else ""
        if status not in ("active", "inactive", "not_found"):
            return VerificationOutcome("unavailable", source, as_of,
                                       message=f"The service {self.name} gave no usable status ({status!r}).")
        day = as_of
        if isinstance(body.get("as_of"), str):
            with contextlib.suppress(ValueError):
                day = dt.date.fromisoformat(body["as_of"])
        name = str(body.get("name") or "")
        return VerificationOutcome(status, source, day, name,
                                   message=f"{self.name} reports {number} as {status.replace('_', ' ')}"
                                           f"{': ' + name if name else ''}.")


# --------------------------------------------------------------------------- helpers


def registry_holder(entry: PermitRegistryEntry) -> str:
    """The holder as a registry row names it: the legal name, and the outlet's trade name as a
    "d/b/a" when the file has one (the name matcher compares each)."""
    dba = str((entry.extra or {}).get("dba_name") or "").strip()
    legal = (entry.legal_name or "").strip()
    if dba and normalize_name(dba) != normalize_name(legal):
        return f"{legal} d/b/a {dba}" if legal else dba
    return legal


def holder_note(cert: Certificate, customer_name: str, holder: str) -> str:
    """What the check says about whose permit it is: the holder on record against the purchaser
    (see :func:`~ecms_desktop.services.validation.name_match.compare_holder`); "" when there is no name."""
    found = compare_holder(holder, cert.purchaser_name or "", customer_name)
    if found is None:
        return ""
    if found.verdict is NameVerdict.MATCH:
        return f" The holder matches the purchaser {found.right!r}."
    if found.verdict is NameVerdict.WEAK:
        return (f" The holder {found.left!r} only weakly matches the purchaser {found.right!r} (similarity "
                f"{found.similarity:.0%}): confirm they are the same business.")
    return (f" The holder {found.left!r} is NOT the purchaser {found.right!r} (similarity {found.similarity:.0%}): "
            "this is someone else's permit.")


def lookup_link(rules: RulesPack, state: str, number: str) -> LookupLink:
    """The state's permit lookup page from the rules pack, with the number filled in where the URL
    has a ``{number}`` placeholder (otherwise the reviewer pastes the number shown). A number written with
    another issuer (``OK 123456789``) is looked up at that state's page."""
    issuer, bare = stated_issuer(number, rules.states, None)
    if issuer is not None:
        state, number = issuer, bare
    permit = rules.state(state).permit
    url = permit.lookup_url
    if url and "{number}" in url:
        url = url.replace("{number}", urllib.parse.quote(permit.normalize(number)))
    return LookupLink(state.upper(), url, permit.lookup_name, number)


def _info(c: PermitCheck) -> PermitCheckInfo:
    return PermitCheckInfo(c.id, c.certificate_id, c.state, c.number_checked, c.method, c.source, c.result,
                           c.name_on_record, c.message, c.checked_at, c.checked_by, c.as_of, c.snapshot_id,
                           c.evidence_document_id, c.evidence_sha256)


def _snapshot_info(s: PermitRegistrySnapshot) -> SnapshotInfo:
    return SnapshotInfo(s.id, s.state, s.source_name, s.data_date, s.row_count, s.layout, s.imported_at,
                        s.imported_by)


def line_numbers(cert: Certificate) -> list[tuple[str, str]]:
    """(state, number) for each coverage line: the line's own ID, else the certificate's permit number."""
    return [(line.state, (line.state_tax_id or cert.purchaser_tax_id or "").strip()) for line in cert.lines]


def _parse_date(text: Any) -> dt.date | None:
    if text is None or text == "":
        return None
    if isinstance(text, dt.datetime):
        return text.date()
    if isinstance(text, dt.date):
        return text
    value = str(text).strip()
    if "T" in value:
        value = value.split("T", 1)[0]
    for fmt in DATE_FORMATS:
        try:
            return dt.datetime.strptime(value, fmt).date()
        except ValueError:
            continue
    raise ValueError(value)


def record_check(session: Session, cert: Certificate, state: str, number: str, method: str,
                 outcome: VerificationOutcome, *, evidence_document_id: int | None = None,
                 evidence_sha256: str = "") -> PermitCheck:
    """Store one check and its audit event in the caller's transaction."""
    if outcome.result not in CHECK_RESULTS:
        raise ValidationError(f"Unknown permit check result {outcome.result!r} (one of: {', '.join(CHECK_RESULTS)}).")
    check = PermitCheck(certificate_id=cert.id, company_id=cert.company_id, state=state, number_checked=number,
                        method=method, source=outcome.source, result=outcome.result,
                        name_on_record=outcome.name_on_record[:300], message=outcome.message,
                        checked_at=utcnow(), checked_by=people.actor_name(session), as_of=outcome.as_of,
                        snapshot_id=outcome.snapshot_id, evidence_document_id=evidence_document_id,
                        evidence_sha256=evidence_sha256)
    session.add(check)
    session.flush()
    audit.record(session, "permit.checked", "permit_check", check.id, company_id=cert.company_id,
                 certificate_id=cert.id,
                 after={"state": state, "number": number, "method": method, "source": outcome.source,
                        "result": outcome.result, "as_of": outcome.as_of, "name_on_record": outcome.name_on_record,
                        "snapshot_id": outcome.snapshot_id, "evidence_sha256": evidence_sha256 or None})
    return check


def record_permit_checks(session: Session, rules: RulesPack, cert: Certificate, *, as_of: dt.date,
                         verifiers: Mapping[str, PermitVerifier] | None = None,
                         states: Sequence[str] | None = None) -> list[PermitCheck]:
    """HOOK for intake / import / save: check every coverage line that has a number with its state's
    verifier (the latest registry snapshot by default) in the caller's transaction. Lines without a
    number are skipped; a state without a registry is recorded as ``unavailable``."""
    default = RegistrySnapshotVerifier(rules)
    customer = session.get(Customer, cert.customer_id)
    customer_name = customer.legal_name if customer is not None else ""
    out = []
    for state, number in line_numbers(cert):
        if not number or (states is not None and state not in states):
            continue
        verifier = (verifiers or {}).get(state, default)
        outcome = verifier.verify(session, state, number, as_of=as_of)
        note = holder_note(cert, customer_name, outcome.name_on_record)
        if note:
            outcome = replace(outcome, message=outcome.message + note)
        out.append(record_check(session, cert, state, number, verifier.method, outcome))
    return out


# --------------------------------------------------------------------------- service


class PermitService:
    """Permit verification use cases for the review desk, the CLI and intake."""

    def __init__(self, db: Database, rules: RulesPack | None = None) -> None:
        self.db = db
        self.rules = rules or load_rules_pack()
        self.verifiers: dict[str, PermitVerifier] = {}

    def register_verifier(self, state: str, verifier: PermitVerifier) -> None:
        """Use ``verifier`` for ``state`` instead of the registry snapshot (e.g. an :class:`HttpVerifier`)."""
        self.verifiers[self.rules.state(state).state] = verifier

    # -- registry snapshots

    def import_registry(self, path: Path, state: str, *, data_date: dt.date,
                        column_map: Mapping[str, str] | None = None,
                        progress: Progress | None = None, cancel: CancelCheck | None = None) -> SnapshotInfo:
        """Import a state's permit-holder list from .csv/.xlsx as a new dated snapshot. ``column_map``
        maps file columns to :data:`REGISTRY_FIELDS` (Texas's published file has a built-in mapping).
        All rows are checked first; any bad row refuses the whole file, naming row and column."""
        try:
            st = self.rules.state(state)
        except UnknownStateError as exc:
            raise ValidationError(str(exc)) from exc
        layout = "custom"
        if column_map is None:
            if st.state not in BUILTIN_LAYOUTS:
                raise ValidationError(
                    f"There is no built-in column layout for {st.name}'s registry file; say which column "
                    f"holds what with --map column=field (fields: {', '.join(REGISTRY_FIELDS)}).")
            layout, column_map = BUILTIN_LAYOUTS[st.state]
        cmap = {header_key(k): v.strip() for k, v in column_map.items()}
        bad = [f"{k}={v}" for k, v in cmap.items() if v not in REGISTRY_FIELDS]
        if bad:
            raise ValidationError(f"Unknown registry field in --map: {', '.join(bad)} (fields: "
                                  f"{', '.join(REGISTRY_FIELDS)}).")
        if "permit_number" not in cmap.values():
            raise ValidationError("Say which column holds the permit number (--map COLUMN=permit_number).")
        if len(set(cmap.values())) != len(cmap):
            raise ValidationError("Each registry field can come from one column only.")
        table = read_table(path, required=list(cmap), other_columns=True)
        if not table.rows:
            raise ValidationError(f"{table.name}: there are no data rows.")
        by_field = {v: k for k, v in cmap.items()}
        entries: dict[str, dict[str, Any]] = {}
        problems: list[Problem] = []
        for i, row in enumerate(table.rows):
            if cancel and i % 1000 == 0 and cancel():
                raise Cancelled("Registry import cancelled; nothing was imported.")
            if progress and i % 5000 == 0:
                progress(i, len(table.rows), f"Reading row {row.number}")
            entry = self._entry(row, by_field, st.permit.normalize, table.name, problems)
            if entry is None:
                continue
            known = entries.get(entry["permit_number"])
            if known is None:
                entries[entry["permit_number"]] = entry
            else:  # one row per outlet: keep the first, count the outlets
                known["extra"]["rows"] = known["extra"].get("rows", 1) + 1
        if problems:
            raise ValidationError(f"{table.name}: {len({p.row for p in problems})} of {len(table.rows)} rows "
                                  "have problems; nothing was imported.", problems[:200])
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        with self.db.transaction() as s:
            snap = PermitRegistrySnapshot(state=st.state, source_name=path.name[:255], file_sha256=digest,
                                          data_date=data_date, imported_at=utcnow(),
                                          imported_by=people.actor_name(s), row_count=len(entries),
                                          column_map=dict(cmap), layout=layout)
            s.add(snap)
            s.flush()
            values = list(entries.values())
            for start in range(0, len(values), 5000):
                if progress:
                    progress(start, len(values), "Storing permit holders")
                s.execute(insert(PermitRegistryEntry), [{**v, "snapshot_id": snap.id}
                                                       for v in values[start:start + 5000]])
            audit.record(s, "permit_registry.imported", "permit_registry_snapshot", snap.id,
                         after={"state": st.state, "file": path.name, "sha256": digest, "data_date": data_date,
                                "holders": len(entries), "rows": len(table.rows), "layout": layout,
                                "column_map": dict(cmap)})
            return _snapshot_info(snap)

    @staticmethod
    def _entry(row: Row, by_field: Mapping[str, str], normalize: Callable[[str], str], file: str,
               problems: list[Problem]) -> dict[str, Any] | None:
        def text(name: str) -> str:
            return row.text(by_field[name]) if name in by_field else ""

        number = normalize(text("permit_number"))
        if not number:
            problems.append(Problem("the permit number is empty", file, row.number, by_field["permit_number"]))
            return None
        status = "active"
        if "status" in by_field:
            raw = text("status").casefold()
            status = STATUS_WORDS.get(raw, "")
            if not status:
                problems.append(Problem(f"{text('status')!r} is not a status this program knows (active or "
                                        "inactive, or: " + ", ".join(sorted(STATUS_WORDS)) + ")",
                                        file, row.number, by_field["status"]))
                return None
        dates: dict[str, dt.date | None] = {}
        for name in ("issue_date", "end_date"):
            dates[name] = None
            if name in by_field:
                try:
                    dates[name] = _parse_date(row.cells.get(by_field[name]))
                except ValueError:
                    problems.append(Problem(f"{text(name)!r} is not a date (YYYY-MM-DD, MM/DD/YYYY or YYYYMMDD)",
                                            file, row.number, by_field[name]))
                    return None
        extra = {"dba_name": text("dba_name")} if "dba_name" in by_field and text("dba_name") else {}
        return {"permit_number": number[:64], "legal_name": text("legal_name")[:300], "status": status,
                "issue_date": dates["issue_date"], "end_date": dates["end_date"], "extra": extra}

    def snapshots(self, state: str | None = None) -> list[SnapshotInfo]:
        """Imported registry snapshots, newest first."""
        with self.db.reader() as s:
            q = select(PermitRegistrySnapshot).order_by(PermitRegistrySnapshot.id.desc())
            if state:
                q = q.where(PermitRegistrySnapshot.state == state.upper())
            return [_snapshot_info(x) for x in s.execute(q).scalars()]

    # -- checks

    def _load(self, session: Session, cert_id: int) -> Certificate:
        cert = session.execute(select(Certificate).where(Certificate.id == cert_id)
                               .options(selectinload(Certificate.lines))).scalar_one_or_none()
        if cert is None:
            raise NotFoundError(f"There is no certificate {cert_id}.")
        return cert

    def verify(self, cert_id: int, *, as_of: dt.date, states: Sequence[str] | None = None) -> list[PermitCheckInfo]:
        """Check each coverage line's permit number with its state's verifier and record the checks."""
        with self.db.transaction() as s:
            cert = self._load(s, cert_id)
            if not any(number for _, number in line_numbers(cert)):
                raise ValidationError(f"Certificate {cert_id} has no permit or registration number to check.")
            checks = record_permit_checks(s, self.rules, cert, as_of=as_of, verifiers=self.verifiers,
                                          states=[x.upper() for x in states] if states else None)
            return [_info(c) for c in checks]

    def record_manual_check(self, cert_id: int, *, state: str | None, result: str, evidence: Path,
                            source_url: str, as_of: dt.date, number: str | None = None,
                            note: str = "", name_on_record: str = "") -> PermitCheckInfo:
        """Record a reviewer's lookup on a state's web site with its evidence (PDF or image of the
        result page, probed and stored by hash). ``state`` may be omitted for a one-state certificate.
        ``name_on_record`` is the holder's name the page shows; it is compared with the purchaser like
        a registry's (someone else's permit is an error of the next validation)."""
        if result not in ("active", "inactive", "not_found"):
            raise ValidationError("The result of a manual check is active, inactive or not_found.")
        if not source_url.strip():
            raise ValidationError("Say where the number was looked up (--source URL).")
        with self.db.reader() as s:
            cert = self._load(s, cert_id)
            pairs = dict(line_numbers(cert))
        if state is None:
            if len(pairs) != 1:
                raise ValidationError(f"Certificate {cert_id} covers {', '.join(pairs)}; say which state "
                                      "was checked.")
            state = next(iter(pairs))
        state = state.upper()
        if state not in pairs:
            raise ValidationError(f"Certificate {cert_id} does not cover {state} (it covers {', '.join(pairs)}).")
        checked_number = (number or pairs[state]).strip()
        if not checked_number:
            raise ValidationError(f"Certificate {cert_id} has no number for {state}; give the number checked.")
        checked = check_file(evidence)  # probed in the sandbox: corrupt or hostile files are refused
        if checked.media_type not in EVIDENCE_TYPES:
            raise DocumentError(f"{evidence.name}: evidence must be a PDF or a PNG/JPEG image, not "
                                f"{checked.media_type}.")
        with self.db.transaction() as s:
            cert = self._load(s, cert_id)
            doc = store_checked(s, checked, received_via="upload", company_id=cert.company_id)
            holder = name_on_record.strip()
            customer = s.get(Customer, cert.customer_id)
            message = (note.strip() or f"Looked up by hand on {source_url.strip()}.") + holder_note(
                cert, customer.legal_name if customer is not None else "", holder)
            outcome = VerificationOutcome(result, source_url.strip(), as_of, holder, message=message)
            check = record_check(s, cert, state, checked_number, "manual", outcome,
                                 evidence_document_id=doc.id, evidence_sha256=checked.sha256)
            return _info(check)

    def lookup_link(self, cert_id: int, state: str | None = None) -> LookupLink:
        """The prefilled lookup link for a coverage line (for the manual check)."""
        with self.db.reader() as s:
            pairs = dict(line_numbers(self._load(s, cert_id)))
        key = (state or next(iter(pairs), "")).upper()
        if key not in pairs:
            raise ValidationError(f"Certificate {cert_id} does not cover {key or 'any state'}.")
        return lookup_link(self.rules, key, pairs[key])

    def checks(self, cert_id: int) -> list[PermitCheckInfo]:
        """Every permit check of a certificate, newest first."""
        with self.db.reader() as s:
            rows = s.execute(select(PermitCheck).where(PermitCheck.certificate_id == cert_id)
                             .order_by(PermitCheck.id.desc())).scalars()
            return [_info(c) for c in rows]

    def latest_checks(self, cert_id: int) -> dict[str, PermitCheckInfo]:
        """The newest check per state of a certificate."""
        out: dict[str, PermitCheckInfo] = {}
        for check in self.checks(cert_id):
            out.setdefault(check.state, check)
        return out

    # -- re-verification

    def stale_checks(self, as_of: dt.date, *, company_id: int | None = None,
                     include_unchecked: bool = False) -> list[StaleCheck]:
        """Coverage lines whose latest check is older than the company's ``permit_check_max_age_days``
        (and, with ``include_unchecked``, lines with a number never checked). Archived and rejected
        certificates are left out."""
        with self.db.reader() as s:
            latest = (select(PermitCheck.certificate_id, PermitCheck.state, func.max(PermitCheck.id).label("id"))
                      .group_by(PermitCheck.certificate_id, PermitCheck.state).subquery())
            last = {(cid, st): day for cid, st, day in s.execute(
                select(latest.c.certificate_id, latest.c.state, PermitCheck.as_of)
                .join(PermitCheck, PermitCheck.id == latest.c.id))}
            q = (select(Certificate).where(Certificate.review_state.in_(("pending", "approved")))
                 .options(selectinload(Certificate.lines)).order_by(Certificate.id))
            if company_id is not None:
                q = q.where(Certificate.company_id == company_id)
            ages: dict[int, int] = {}
            out: list[StaleCheck] = []
            for cert in s.execute(q).scalars():
                if cert.company_id not in ages:
                    ages[cert.company_id] = business_settings(s, cert.company_id).permit_check_max_age_days
                max_age = ages[cert.company_id]
                for state, number in line_numbers(cert):
                    if not number:
                        continue
                    day = last.get((cert.id, state))
                    if day is None and not include_unchecked:
                        continue
                    if day is None or (as_of - day).days > max_age:
                        out.append(StaleCheck(cert.id, state, number, day, max_age))
            return out

    def reverify_stale(self, as_of: dt.date, *, company_id: int | None = None, include_unchecked: bool = False,
                       progress: Progress | None = None, cancel: CancelCheck | None = None) -> list[PermitCheckInfo]:
        """Check again every line :meth:`stale_checks` lists; one transaction per certificate."""
        stale = self.stale_checks(as_of, company_id=company_id, include_unchecked=include_unchecked)
        by_cert: dict[int, list[str]] = {}
        for item in stale:
            by_cert.setdefault(item.certificate_id, []).append(item.state)
        out: list[PermitCheckInfo] = []
        for n, (cert_id, states) in enumerate(by_cert.items()):
            if cancel and cancel():
                raise Cancelled(f"Re-verification cancelled after {n} of {len(by_cert)} certificates; "
                                "their checks are stored.")
            if progress:
                progress(n, len(by_cert), f"Checking certificate {cert_id}")
            out.extend(self.verify(cert_id, as_of=as_of, states=states))
        if progress:
            progress(len(by_cert), len(by_cert), f"{len(out)} permits checked again")
        return out
