"""A document's reading stored beside it (``document_extraction``, migration 0009): an arrival through
``ecms intake`` stores it in the same transaction, the document's own record and digest do not change, and a
database brought back to 0008 and upgraded again keeps its documents, the references to them and their
digests (only the readings go)."""

from __future__ import annotations

from alembic import command
from sqlalchemy import select

from ecms_desktop.models import Document, DocumentExtraction
from ecms_desktop.models.renewal import IntakeRecord
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
        stored = select(DocumentExtraction.extraction).where(DocumentExtraction.document_id == item.document_id)
        assert s.execute(stored).scalar_one() == item.extraction
    assert check_database(db).ok
    with db.engine.connect() as conn:
        command.downgrade(_alembic_config(conn), "0008")
        conn.commit()
    db.dispose()
    db = Database(url)
    assert initialize_database(db).action == "upgraded"
    with db.reader() as s:
        assert s.get(Document, item.document_id).extraction is None  # type: ignore[union-attr]
        assert s.execute(select(IntakeRecord.document_id)).scalars().all() == [item.document_id]
    assert [i.id for i in InboxService(db).list(company_id)] == [item.document_id]
    assert check_database(db).ok, "the document's digest still fits without its reading"
    db.dispose()


def test_the_reading_is_not_part_of_the_documents_digest() -> None:
    kind = KINDS["document"]
    assert isinstance(kind, RecordKind)
    assert "extraction" not in kind.table.c and "document_extraction" not in KINDS
