"""A document's reading stored with it (``document.extraction``, migration 0009): an arrival through
``ecms intake`` stores it in the same transaction (the record digested at its arrival holds it), a database
brought back to 0008 and upgraded again keeps its documents and the references to them, and the digests of
documents kept before 0009 still fit."""

from __future__ import annotations

import datetime as dt

from alembic import command
from sqlalchemy import select

from ecms_desktop.models import Document
from ecms_desktop.models.renewal import IntakeRecord
from ecms_desktop.services.core import state_digest
from ecms_desktop.services.core.database import Database, _alembic_config
from ecms_desktop.services.core.database_setup import initialize_database
from ecms_desktop.services.core.state_digest import KINDS, RecordKind
from ecms_desktop.services.intake.inbox import InboxService
from ecms_desktop.services.integrity.check import check_database
from ecms_desktop.services.renewals.returned_forms import ReturnedFormsService
from tests.factories import make_company, paged_pdf


def test_the_reading_is_stored_and_survives_a_downgrade_and_upgrade(tmp_path) -> None:  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'up.sqlite'}"
    db = Database(url)
    initialize_database(db)
    company_id = make_company(db)
    path = tmp_path / "letter.pdf"
    path.write_bytes(paged_pdf("A letter about our exemption", pages=2))
    [item] = ReturnedFormsService(db).intake([path], company_id)
    assert item.outcome == "inbox" and item.extraction is not None
    assert item.extraction["method"] == "text_layer" and item.extraction["form_code"]["value"] == ""
    with db.reader() as s:
        assert s.execute(select(Document.extraction).where(Document.id == item.document_id)).scalar_one() == \
            item.extraction
    assert check_database(db).ok
    with db.engine.connect() as conn:
        command.downgrade(_alembic_config(conn), "0008")
        conn.commit()
    db.dispose()
    db = Database(url)
    assert initialize_database(db).action == "upgraded"
    with db.reader() as s:
        assert s.execute(select(Document.extraction).where(Document.id == item.document_id)).scalar_one() is None
        assert s.execute(select(IntakeRecord.document_id)).scalars().all() == [item.document_id]
    assert [i.id for i in InboxService(db).list(company_id)] == [item.document_id]
    db.dispose()


def test_a_document_digested_before_0009_still_fits() -> None:
    kind = KINDS["document"]
    assert isinstance(kind, RecordKind)
    assert "extraction" in kind.added_later
    row = {c.name: None for c in kind.table.c}
    row.update({"id": 1, "sha256": "ab" * 32, "original_name": "scan.pdf", "received_via": "renewal_return",
                "received_by": "me", "view_rotation": 0, "received_at": dt.datetime(2026, 1, 1, tzinfo=dt.UTC)})
    before = {k: v for k, v in row.items() if k != "extraction"}
    expected = state_digest._sha({"document": {k: state_digest._canon_of(kind.table.c[k].type)(v)
                                               for k, v in before.items() if k not in kind.added_later
                                               or v is not None}})
    assert kind.digest(row) == expected
    assert kind.digest({**row, "extraction": {"method": "none"}}) != expected
