"""``ecms check`` catches direct tampering with the database, and names what was touched.

A database is built through the program (certificates with lines and a document, validation runs,
a setting, transaction lines), passes ``ecms check``, and is then changed with plain SQL, the way
someone who can write the database file or the server would do it: records edited, added or
deleted, a stored file replaced, events edited, and the chain itself rewritten with the program's own
hash functions. Every time ``ecms check`` exits 1 and names the record or event. Rewrites of the
chain are caught through its anchors: the anchors file of the user's data folder, a backup, or an
audit pack given with ``--anchor``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from sqlalchemy import Engine, create_engine, select, text
from sqlalchemy.orm import Session

from ecms_desktop import paths
from ecms_desktop.models import AuditDigest, AuditEvent, AuditHead, Certificate, utcnow
from ecms_desktop.services.core import audit, state_digest
from tests.conftest import PG_URL
from tests.factories import text_pdf, write_text_pdf
from tests.helpers.cli import ecms

CERTS = ("customer_number,customer_name,customer_email,state,form,certificate_number,exempt_reason,"
         "purchaser_tax_id,certificate_type,po_number,signed_date,effective_date,expiry_date,review_status,document\n"
         "C-1,Bluebonnet Resale LLC,,TX,TX-01-339,R-1,resale,32098765432,blanket,,2026-03-15,,,,cert.pdf\n"
         "C-2,Sunshine Co,,FL,FL-DR-13,F-1,resale,,blanket,,2026-02-01,,,pending,\n"
         "C-3,Lakes Supply,,OH;MI,SST-F0003,S-1,resale,,blanket,,2025-05-01,,,,\n")
LINES = ("invoice_number,line,invoice_date,customer_number,ship_to_state,amount,tax_collected,exempt_claimed\n"
         "A1,1,2026-04-10,C-1,TX,100,0,yes\nA2,1,2026-06-10,C-3,OH,40.5,0,yes\n")


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A place for a new database on PostgreSQL: an empty schema."""
    if not PG_URL:
        pytest.skip("PostgreSQL run: set ECMS_TEST_DATABASE_URL to run this test on PostgreSQL")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in PG_URL else "?"
    try:
        yield f"{PG_URL}{sep}options={quote(f'-csearch_path={schema}')}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(scope="module")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """An SQLite database built once through the program, and the anchors file its programs wrote."""
    folder = tmp_path_factory.mktemp("check-template")
    saved = os.environ.get("ECMS_DATA_DIR")
    os.environ["ECMS_DATA_DIR"] = str(folder / "data")
    try:
        build(f"sqlite:///{folder / 'template.sqlite'}", folder)
    finally:
        if saved is None:
            os.environ.pop("ECMS_DATA_DIR", None)
        else:
            os.environ["ECMS_DATA_DIR"] = saved
    return folder / "template.sqlite", folder / "data" / "anchors.json"


def build(url: str, folder: Path) -> None:
    """A database made through the program, with a record of every tracked kind."""
    folder.mkdir(parents=True, exist_ok=True)
    write_text_pdf(folder / "cert.pdf")
    (folder / "certs.csv").write_text(CERTS, encoding="utf-8")
    (folder / "lines.csv").write_text(LINES, encoding="utf-8")
    steps = [
        ("init",),
        ("company", "add", "Acme", "--state", "TX", "--registration", "TX=32012345678"),
        ("import", "certificates", str(folder / "certs.csv")),
        ("validate", "--all", "--as-of", "2026-11-01"),
        ("settings", "set", "expiring_soon_days", "45"),
        ("transactions", "import", str(folder / "lines.csv")),
    ]
    for step in steps:
        code, out, err = ecms("--db", url, *step)
        assert code == 0, (step, out, err)
    code, out, err = ecms("--db", url, "check")
    assert code == 0 and "Result: intact." in out, out + err


@pytest.fixture(params=["sqlite", "postgresql"])
def built(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, Engine]]:
    """A database that passes ``ecms check``, with this computer's anchors, and a plain engine on it
    (none of the program's bookkeeping) to tamper with."""
    if request.param == "sqlite":
        template, anchors = request.getfixturevalue("sqlite_template")
        path = tmp_path / "ecms.sqlite"
        shutil.copy(template, path)
        # The same anchors, for the copy's place.
        (paths.data_dir() / "anchors.json").write_text(
            anchors.read_text(encoding="utf-8").replace(str(template), str(path)), encoding="utf-8")
        url = f"sqlite:///{path}"
    else:
        url = request.getfixturevalue("pg_url")
        build(url, tmp_path)
    engine = create_engine(url)
    try:
        yield url, engine
    finally:
        engine.dispose()


def scalar(engine: Engine, sql: str) -> Any:
    with engine.connect() as conn:
        return conn.execute(text(sql)).scalar()


def run_sql(*statements: str, **params: Any) -> Callable[[Engine], None]:
    def tamper(engine: Engine) -> None:
        with engine.begin() as conn:
            if conn.dialect.name == "postgresql":  # as the owner, past team mode's triggers (they can)
                conn.execute(text("SET LOCAL session_replication_role = replica"))
            for statement in statements:
                conn.execute(text(statement), params)
    return tamper


def _insert_certificate_without_event(engine: Engine) -> None:
    columns = [c.name for c in Certificate.__table__.columns if c.name != "id"]
    names = ", ".join(columns)
    with engine.begin() as conn:
        conn.execute(text(f"INSERT INTO certificate ({names}) SELECT {names} FROM certificate WHERE id = 1"))


def _delete_certificate(engine: Engine) -> None:
    run_sql("DELETE FROM exemption_status_event WHERE certificate_id = 2",
            "DELETE FROM validation_finding WHERE run_id IN (SELECT id FROM validation_run WHERE certificate_id = 2)",
            "DELETE FROM validation_run WHERE certificate_id = 2",
            "DELETE FROM coverage_line WHERE certificate_id = 2",
            "DELETE FROM certificate WHERE id = 2")(engine)


def _replace_blob(engine: Engine) -> None:
    data = text_pdf("A different certificate")
    with engine.begin() as conn:
        conn.execute(text("UPDATE document_file SET data = :data"), {"data": data})


def _finding_run(engine: Engine) -> str:
    return f"validation run {scalar(engine, 'SELECT min(run_id) FROM validation_finding')}"


def _rewrite_chain(engine: Engine) -> None:
    """Edit event 3 and recompute every later hash and the head, with the program's own functions."""
    with Session(engine) as s, s.begin():
        if engine.dialect.name == "postgresql":  # as the owner, past team mode's triggers (they can)
            s.execute(text("SET LOCAL session_replication_role = replica"))
        events = s.execute(select(AuditEvent).where(AuditEvent.seq >= 3).order_by(AuditEvent.seq)).scalars().all()
        prev = s.get(AuditEvent, 2).hash  # type: ignore[union-attr]
        events[0].actor = "mallory"
        for event in events:
            event.prev_hash = prev
            event.hash = audit.event_hash(prev, event)
            prev = event.hash
        s.get(AuditHead, 1).last_hash = prev  # type: ignore[union-attr]


def _forge_appended_event(engine: Engine) -> None:
    """Change a certificate and append a well-formed event with the matching record digest."""
    with engine.begin() as conn:
        conn.execute(text("UPDATE certificate SET purchaser_name = 'Forged Buyer Inc' WHERE id = 1"))
        digest = state_digest.CERTIFICATE.read(conn, ["1"])["1"]
    with Session(engine) as s, s.begin():
        head = s.get(AuditHead, 1)
        assert head is not None
        event = AuditEvent(seq=head.last_seq + 1, occurred_at=utcnow(), actor="tester", action="certificate.edited",
                           entity_type="certificate", entity_id="1", company_id=1, certificate_id=1,
                           before={"purchaser_name": "Bluebonnet Resale LLC"},
                           after={"purchaser_name": "Forged Buyer Inc"}, details=None, prev_hash=head.last_hash,
                           state_sha256=hashlib.sha256(audit.state_line("certificate", "1", digest)).hexdigest())
        event.hash = audit.event_hash(head.last_hash, event)
        s.add(event)
        s.add(AuditDigest(seq=event.seq, n=1, entity_type="certificate", entity_key="1", digest=digest))
        head.last_seq, head.last_hash = event.seq, event.hash


def _truncate_tail(engine: Engine) -> None:
    """Cut the last events and make the head point at the new last one."""
    with Session(engine) as s, s.begin():
        head = s.get(AuditHead, 1)
        assert head is not None
        keep = head.last_seq - 3
        s.execute(AuditDigest.__table__.delete().where(AuditDigest.seq > keep))
        s.execute(AuditEvent.__table__.delete().where(AuditEvent.seq > keep))
        last = s.get(AuditEvent, keep)
        assert last is not None
        head.last_seq, head.last_hash = keep, last.hash


_delete_everything = run_sql("DELETE FROM audit_digest", "DELETE FROM audit_event", "DELETE FROM audit_head")

#: name -> (tampering, words the report must contain: the record or event it names)
TAMPERING: dict[str, tuple[Callable[[Engine], None], Callable[[Engine], str]]] = {
    "edit a certificate field": (run_sql("UPDATE certificate SET purchaser_name = 'Someone Else' WHERE id = 1"),
                                 lambda e: "certificate 1: differs"),
    "edit a certificate's status": (run_sql("UPDATE certificate SET review_state = 'approved' WHERE id = 2"),
                                    lambda e: "certificate 2: differs"),
    "edit a coverage line": (run_sql("UPDATE coverage_line SET state_tax_id = '99999999999' WHERE certificate_id = 3"
                                     " AND state = 'OH'"), lambda e: "certificate 3: differs"),
    "add a coverage line": (run_sql("INSERT INTO coverage_line (certificate_id, state, state_tax_id, "
                                    "local_jurisdictions, expiry_date, expiry_basis, expiry_source, expiry_origin) "
                                    "VALUES (1, 'CA', '', '[]', NULL, '', '', 'rules')"),
                            lambda e: "certificate 1: differs"),
    "edit a customer": (run_sql("UPDATE customer SET legal_name = 'Other Name LLC' WHERE id = 1"),
                        lambda e: "customer 1: differs"),
    "edit a company": (run_sql("UPDATE company SET legal_name = 'Acme Holdings' WHERE id = 1"),
                       lambda e: "company 1: differs"),
    "edit a document arrival": (run_sql("UPDATE document SET original_name = 'signed-later.pdf'"),
                                lambda e: "document 1: differs"),
    "replace a stored file": (_replace_blob, lambda e: "bytes no longer match"),
    "edit a validation run": (run_sql("UPDATE validation_run SET error_count = 0, warning_count = 0"),
                              lambda e: "validation run 1: differs"),
    "delete a finding": (run_sql("DELETE FROM validation_finding WHERE id = (SELECT min(id) FROM "
                                 "validation_finding)"), lambda e: f"{_finding_run(e)}: differs"),
    "edit a setting": (run_sql("UPDATE setting SET value = '90'"), lambda e: "setting 1: differs"),
    "edit a transaction line": (run_sql("UPDATE transaction_line SET amount = 1 WHERE invoice_number = 'A1'"),
                                lambda e: "transaction lines 0-999: differs"),
    "delete a certificate": (_delete_certificate, lambda e: "certificate 2: is missing"),
    "insert a certificate without an event": (_insert_certificate_without_event,
                                              lambda e: "certificate 4: is not in the audit trail"),
    "edit an event": (run_sql("UPDATE audit_event SET actor = 'mallory' WHERE seq = 3"),
                      lambda e: "[audit trail] event 3: event 3 ("),
    "delete an event": (run_sql("DELETE FROM audit_event WHERE seq = 3"), lambda e: "event 3 is missing"),
    "remove an event's record digests": (run_sql("DELETE FROM audit_digest WHERE seq = (SELECT min(seq) FROM "
                                                 "audit_digest)"), lambda e: "record digests of event"),
    "rewrite the chain with recomputed hashes": (_rewrite_chain, lambda e: "the audit trail was rewritten"),
    "forge an appended event": (_forge_appended_event, lambda e: "not written by ECMS Desktop"),
    "truncate the tail and fix the head": (_truncate_tail, lambda e: "events were removed"),
    "delete every event and the head": (_delete_everything, lambda e: "the audit trail is empty"),
}
#: Tampering that only anchors kept outside the database can reveal.
REWRITES = ("rewrite the chain with recomputed hashes", "truncate the tail and fix the head",
            "delete every event and the head")


@pytest.mark.parametrize("kind", list(TAMPERING))
def test_check_names_every_kind_of_direct_tampering(built: tuple[str, Engine], kind: str) -> None:
    url, engine = built
    tamper, expected = TAMPERING[kind]
    if kind == "forge an appended event" and engine.dialect.name != "sqlite":
        pytest.skip("other desks append events to a shared PostgreSQL database, so an event appended outside the "
                    "program after this computer's newest anchor cannot be told from theirs (README)")
    words = expected(engine)
    tamper(engine)
    code, out, err = ecms("--db", url, "check")
    assert code == 1, out + err
    assert "PROBLEMS" in out and words in out, out
    assert "Traceback" not in err


@pytest.mark.parametrize("source", ["backup", "audit pack"])
@pytest.mark.parametrize("kind", REWRITES)
def test_chain_rewrites_are_caught_by_anchors_in_backups_and_audit_packs(
        built: tuple[str, Engine], tmp_path: Path, kind: str, source: str) -> None:
    url, engine = built
    if source == "backup":
        anchor = tmp_path / ("backup.sqlite" if engine.dialect.name == "sqlite" else "backup.dump")
        code, out, err = ecms("--db", url, "backup", str(anchor))
    else:
        anchor = tmp_path / "pack"
        code, out, err = ecms("--db", url, "audit-pack", "--out", str(anchor), "--no-zip", "--quiet", "--from",
                              "2026-01-01", "--to", "2026-12-31")
    assert code == 0, out + err
    # Whoever rewrites the database may also have removed this computer's anchors file.
    (paths.data_dir() / "anchors.json").unlink()
    TAMPERING[kind][0](engine)
    if kind == "rewrite the chain with recomputed hashes":
        code, out, err = ecms("--db", url, "check")
        assert code == 0, "without an anchor the rewritten chain is consistent in itself: " + out
    code, out, err = ecms("--db", url, "check", "--anchor", str(anchor))
    assert code == 1, out + err
    assert f"[{anchor}]: NOT HELD" in out, out
    assert "[anchors]" in out


def test_the_anchors_a_check_used_are_listed(built: tuple[str, Engine], tmp_path: Path) -> None:
    url, engine = built
    backup = tmp_path / ("b.sqlite" if engine.dialect.name == "sqlite" else "b.dump")
    assert ecms("--db", url, "backup", str(backup))[0] == 0
    code, out, _ = ecms("--db", url, "check", "--anchor", str(backup))
    assert code == 0 and "Result: intact." in out
    assert f"backup {dt.date.today().year}" in out or "backup" in out
    assert f"[{backup}]: held" in out
    assert f"[{paths.data_dir() / 'anchors.json'}]: held" in out


def test_a_check_of_a_database_without_events_is_never_intact(built: tuple[str, Engine]) -> None:
    url, engine = built
    (paths.data_dir() / "anchors.json").unlink()  # not even an anchor to compare with
    _delete_everything(engine)
    code, out, _ = ecms("--db", url, "audit", "verify")
    assert code == 1 and "intact" not in out.replace("NOT INTACT", "") and "empty" in out
    code, out, _ = ecms("--db", url, "check")
    assert code == 1 and "the audit trail is empty" in out


def test_audit_verify_catches_a_rewritten_chain_through_its_anchors(built: tuple[str, Engine]) -> None:
    url, engine = built
    _rewrite_chain(engine)
    code, out, _ = ecms("--db", url, "audit", "verify")
    assert code == 1 and "NOT INTACT" in out and "rewritten" in out


def test_a_warning_names_the_problem_when_any_command_opens_a_tampered_database(
        built: tuple[str, Engine]) -> None:
    url, engine = built
    _truncate_tail(engine)
    code, _out, err = ecms("--db", url, "list")
    assert code == 0 and "warning:" in err and "ecms check" in err


def test_an_upgraded_database_gets_an_integrity_baseline(tmp_path: Path) -> None:
    """A database from before record digests: ``ecms init`` upgrades it and digests every record present,
    so later changes made outside the program are found."""
    from alembic import command

    from ecms_desktop.services.core.database import Database, _alembic_config

    url = f"sqlite:///{tmp_path / 'old.sqlite'}"
    db = Database(url)
    with db.engine.connect() as conn:
        command.upgrade(_alembic_config(conn), "0002")
        command.upgrade(_alembic_config(conn), "0003")
        command.upgrade(_alembic_config(conn), "0004")
        conn.commit()
        conn.execute(text("INSERT INTO company (name, legal_name, address_line1, address_line2, city, state, "
                          "postal_code, country, reply_to_email, brand_color, created_at) VALUES ('Old Co', 'Old Co', "
                          "'', '', '', 'TX', '', 'US', '', '#1F4E79', '2025-01-01 00:00:00')"))
        conn.commit()
    db.dispose()
    code, out, _ = ecms("--db", url, "init")
    assert code == 0 and out.startswith("Upgraded") and "Integrity baseline: 1 records" in out
    assert ecms("--db", url, "check")[0] == 0
    engine = create_engine(url)
    run_sql("UPDATE company SET legal_name = 'Changed Co'")(engine)
    engine.dispose()
    code, out, _ = ecms("--db", url, "check")
    assert code == 1 and "company 1: differs" in out


def test_the_check_streams_and_says_what_it_checked(built: tuple[str, Engine]) -> None:
    url, _engine = built
    code, out, _ = ecms("--db", url, "check", "--format", "json")
    import json

    report = json.loads(out)
    assert code == 0 and report["ok"] is True
    assert report["records"]["certificate"] == 3 and report["records"]["transaction_lines"] == 1
    assert report["files"] == 1 and report["events"] > 5
    assert any(a["held"] for a in report["anchors"])


def test_ordinary_work_through_the_command_line_passes_the_check(built: tuple[str, Engine], tmp_path: Path) -> None:
    """Every kind of change the commands make is digested as committed: after all of them the check passes."""
    url, _engine = built
    evidence = tmp_path / "lookup.pdf"
    write_text_pdf(evidence, "Comptroller lookup: permit 32098765432 active")
    steps = [
        ("policy", "set", "--state", "FL", "--purpose", "resale", "--kind", "years", "--years", "2", "--reason",
         "our own rule"),
        ("permits", "check", "1", "--result", "active", "--evidence", str(evidence), "--source",
         "https://comptroller.example/lookup", "--as-of", "2026-11-01"),
        ("periods", "set", "--state", "TX", "--frequency", "monthly"),
        ("determine", "--from", "2026-01-01", "--to", "2026-12-31"),
        ("periods", "file", "--state", "TX", "--period", "2026-04"),
        ("reprocess", "1", "--from", "2026-01-01", "--to", "2026-12-31", "--yes", "--reason", "late certificate",
         "--as-of", "2026-11-01"),
        ("intake", str(evidence), "--as-of", "2026-11-01"),
        ("validate", "--all", "--as-of", "2026-11-02"),
        ("settings", "set", "expiring_soon_days", "20", "--company", "Acme"),
    ]
    for step in steps:
        code, out, err = ecms("--db", url, *step)
        assert code == 0, (step, out, err)
    code, out, err = ecms("--db", url, "check")
    assert code == 0 and "Result: intact." in out, out + err
