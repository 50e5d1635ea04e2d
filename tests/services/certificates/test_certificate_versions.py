"""A certificate's version covers everything it is (its fields, its state lines, its documents, its
expiry override), every change raises it, and every change a user makes is of a version: two desks
editing the same certificate never both win, and an approval is of the version the approver saw."""

from __future__ import annotations

import dataclasses
import datetime as dt
import multiprocessing
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from ecms_desktop.models import AuditEvent, Certificate, CoverageLine, Document
from ecms_desktop.services.certificates.service import CertificateService
from ecms_desktop.services.companies.service import CompanyService
from ecms_desktop.services.core import audit
from ecms_desktop.services.core.certificate_records import CertificateDetail, LineInput
from ecms_desktop.services.core.database import Database
from ecms_desktop.services.core.errors import ConflictError
from ecms_desktop.services.documents.storage import DocumentService, check_bytes, store_checked
from ecms_desktop.services.intake.inbox import InboxService
from ecms_desktop.services.intake.service import IntakeService
from ecms_desktop.services.renewals.returned_forms import ReturnedFormsService
from ecms_desktop.services.validation.runs import record_validation
from tests.factories import AS_OF, make_certificate, permit_number, text_pdf

RACES = 5


def _sst(db: Database, company_id: int, customer: str = "C-1", *, approve: bool = True) -> CertificateDetail:
    return make_certificate(db, company_id, customer=customer, name="Buyer Inc", form="SST-F0003",
                            states=("MI", "OH"), approve=approve)


def _retax(detail: CertificateDetail, state: str, tax_id: str) -> Any:
    """The certificate's content with one state line's purchaser number changed (nothing else)."""
    lines = tuple(dataclasses.replace(line, state_tax_id=tax_id) if line.state == state else line
                  for line in detail.data.lines)
    return dataclasses.replace(detail.data, lines=lines)


def _add_state(detail: CertificateDetail, state: str) -> Any:
    return dataclasses.replace(detail.data, lines=(*detail.data.lines, LineInput(state, permit_number(state))))


def _lines(db: Database, cert_id: int) -> list[tuple[str, str]]:
    with db.reader() as s:
        return [(line.state, line.state_tax_id) for line in s.execute(
            select(CoverageLine).where(CoverageLine.certificate_id == cert_id).order_by(CoverageLine.state)).scalars()]


def _version(db: Database, cert_id: int) -> int:
    with db.reader() as s:
        return s.execute(select(Certificate.version).where(Certificate.id == cert_id)).scalar_one()


# -- edits from older copies ---------------------------------------------------------------------------


def test_an_edit_of_only_a_state_line_raises_the_version(db, company_id) -> None:  # type: ignore[no-untyped-def]
    detail = _sst(db, company_id)
    service = CertificateService(db)
    saved = service.save(detail.id, _retax(detail, "OH", permit_number("OH", 2)), expected_version=detail.version,
                         as_of=AS_OF)
    assert saved.version == detail.version + 1
    added = service.save(detail.id, _add_state(saved, "IN"), expected_version=saved.version, as_of=AS_OF)
    assert added.version == saved.version + 1
    removed = service.save(detail.id, dataclasses.replace(added.data, lines=added.data.lines[:2]),
                           expected_version=added.version, as_of=AS_OF)
    assert [line.state for line in removed.lines] == ["IN", "MI"] and removed.version == added.version + 1
    # Saving the same content again changes nothing, so the version stays.
    again = service.save(detail.id, removed.data, expected_version=removed.version, as_of=AS_OF)
    assert again.version == removed.version


def test_a_save_from_an_older_copy_never_reverts_a_colleagues_state_line_change(db, company_id) -> None:  # type: ignore[no-untyped-def]
    detail = _sst(db, company_id)
    mine = CertificateService(db)
    colleague_db = Database(db.url)
    try:
        theirs = CertificateService(colleague_db).save(
            detail.id, _retax(detail, "OH", permit_number("OH", 3)), expected_version=detail.version, as_of=AS_OF)
    finally:
        colleague_db.dispose()
    with pytest.raises(ConflictError) as info:
        mine.save(detail.id, dataclasses.replace(detail.data, notes="checked the MI number"),
                  expected_version=detail.version, as_of=AS_OF)
    message = str(info.value)
    assert "changed by someone else" in message
    assert f"version {detail.version}" in message and f"version {theirs.version}" in message
    assert "tester" in message and "edited" in message.lower() and "lines" in message  # who and what
    assert _lines(db, detail.id) == [(line.state, line.state_tax_id) for line in theirs.data.lines]
    assert mine.get(detail.id, AS_OF).data.notes == ""


def test_a_stale_approval_after_another_session_changed_a_state_line_is_refused(db, company_id) -> None:  # type: ignore[no-untyped-def]
    pending = _sst(db, company_id, approve=False)
    approver = CertificateService(db)
    shown = approver.get(pending.id, AS_OF)  # what the approver looks at
    colleague_db = Database(db.url)
    try:
        CertificateService(colleague_db).save(pending.id, _add_state(shown, "IN"), expected_version=shown.version,
                                              as_of=AS_OF)
    finally:
        colleague_db.dispose()
    with pytest.raises(ConflictError, match="changed by someone else"):
        approver.approve(pending.id, expected_version=shown.version, as_of=AS_OF, acknowledge_warnings=True)
    after = approver.get(pending.id, AS_OF)
    assert after.review_state == "pending" and [line.state for line in after.lines] == ["IN", "MI", "OH"]
    with db.reader() as s:
        actions = [e.action for e in audit.list_events(s, certificate_id=pending.id)]
    assert "certificate.approved" not in actions and "certificate.warnings_acknowledged" not in actions


def test_an_approval_names_the_version_it_approved(db, company_id) -> None:  # type: ignore[no-untyped-def]
    pending = _sst(db, company_id, approve=False)
    service = CertificateService(db)
    edited = service.save(pending.id, _retax(pending, "MI", permit_number("MI", 4)), expected_version=pending.version,
                          as_of=AS_OF)
    approved = service.approve(pending.id, expected_version=edited.version, as_of=AS_OF, acknowledge_warnings=True)
    assert approved.reviewed_version == edited.version
    assert approved.version == edited.version + 1
    assert approved.to_json()["reviewed_version"] == edited.version
    with db.reader() as s:
        event = next(e for e in audit.list_events(s, certificate_id=pending.id) if e.action == "certificate.approved")
        assert s.get(Certificate, pending.id).reviewed_version == edited.version  # type: ignore[union-attr]
    assert event.details is not None and event.details["version"] == edited.version
    rejected = service.reject(pending.id, "wrong customer", expected_version=approved.version, as_of=AS_OF)
    assert rejected.reviewed_version == approved.version


def test_every_review_action_refuses_a_stale_version(db, company_id) -> None:  # type: ignore[no-untyped-def]
    detail = _sst(db, company_id)
    service = CertificateService(db)
    fresh = service.save(detail.id, _retax(detail, "OH", permit_number("OH", 5)), expected_version=detail.version,
                         as_of=AS_OF)
    stale = detail.version
    attempts: list[Callable[[], Any]] = [
        lambda: service.reject(detail.id, "no", expected_version=stale, as_of=AS_OF),
        lambda: service.archive(detail.id, "gone", expected_version=stale, as_of=AS_OF),
        lambda: service.attach_document(check_bytes(text_pdf("late scan"), "late.pdf"), certificate_id=detail.id,
                                        expected_version=stale),
    ]
    for attempt in attempts:
        with pytest.raises(ConflictError, match="changed by someone else"):
            attempt()
    archived = service.archive(detail.id, "gone", expected_version=fresh.version, as_of=AS_OF)
    with pytest.raises(ConflictError):
        service.unarchive(detail.id, "mistake", expected_version=fresh.version, as_of=AS_OF)
    assert service.get(detail.id, AS_OF).review_state == "archived" and archived.version == fresh.version + 1
    with db.reader() as s:
        assert s.execute(select(func.count()).select_from(Document)).scalar_one() == 0


# -- every service path raises the version ---------------------------------------------------------------


def test_every_change_to_lines_documents_or_overrides_raises_the_version(db, company_id) -> None:  # type: ignore[no-untyped-def]
    """Whatever service writes it, a change to what the certificate is raises its version in the same
    transaction; evidence about it (a validation run, how a document is viewed) does not."""
    detail = _sst(db, company_id)
    cid = detail.id
    checked = check_bytes(text_pdf("the signed form"), "signed.pdf")

    def change(fn: Callable[[Any], None]) -> int:
        before = _version(db, cid)
        with db.transaction() as s:
            fn(s)
        return _version(db, cid) - before

    def line(s: Any, state: str) -> CoverageLine:
        return s.execute(select(CoverageLine).where(CoverageLine.certificate_id == cid,
                                                    CoverageLine.state == state)).scalar_one()

    assert change(lambda s: setattr(line(s, "OH"), "suspended_at", dt.datetime(2026, 12, 1, tzinfo=dt.UTC))) == 1
    assert change(lambda s: setattr(line(s, "MI"), "local_jurisdictions", ["county:Wayne"])) == 1
    assert change(lambda s: setattr(line(s, "MI"), "expiry_date", dt.date(2030, 1, 1))) == 1
    assert change(lambda s: s.delete(line(s, "MI"))) == 1
    assert change(lambda s: s.add(CoverageLine(certificate_id=cid, state="IN"))) == 1
    assert change(lambda s: store_checked(s, checked, received_via="upload", certificate_id=cid)) == 1
    with db.reader() as s:
        doc_id = s.execute(select(Document.id).where(Document.certificate_id == cid)).scalar_one()
    before = _version(db, cid)
    DocumentService(db).set_rotation(doc_id, 90)  # a viewing preference, not part of the certificate
    assert _version(db, cid) == before
    assert change(lambda s: setattr(s.get(Document, doc_id), "certificate_id", None)) == 1  # detached
    assert change(lambda s: record_validation(s, CertificateService(db).rules, s.get(Certificate, cid),
                                              as_of=AS_OF, trigger="on_demand")) == 0
    assert change(lambda s: setattr(line(s, "OH"), "state_tax_id", line(s, "OH").state_tax_id)) == 0  # no change


def test_a_certificate_made_from_an_inbox_document_starts_at_version_one(db, company_id, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "scan.pdf").write_bytes(text_pdf("scanned"))
    [item] = ReturnedFormsService(db).intake([tmp_path / "scan.pdf"], company_id, as_of=AS_OF)
    assert item.document_id is not None
    done = InboxService(db).assign(item.document_id, customer="C-9", create_customer_name="Nine Co", as_of=AS_OF)
    assert _version(db, done.certificate_id) == 1


def test_attaching_files_takes_the_expected_version(db, company_id, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    detail = _sst(db, company_id)
    for name in ("a.pdf", "b.pdf", "c.pdf"):
        (tmp_path / name).write_bytes(text_pdf(name))
    intake = IntakeService(db)
    result = intake.attach_files([tmp_path / "a.pdf", tmp_path / "b.pdf"], company_id, detail.id,
                                 expected_version=detail.version)
    assert [i.outcome.value for i in result.items] == ["stored", "stored"]
    now = CertificateService(db).get(detail.id, AS_OF)
    assert now.version == detail.version + 2 and [d.original_name for d in now.documents] == ["a.pdf", "b.pdf"]
    with pytest.raises(ConflictError, match="Document received"):
        intake.attach_files([tmp_path / "c.pdf"], company_id, detail.id, expected_version=detail.version)
    assert len(CertificateService(db).get(detail.id, AS_OF).documents) == 2
    doc_id = CertificateService(db).attach_document(check_bytes(text_pdf("d"), "d.pdf"), certificate_id=detail.id,
                                                    expected_version=now.version)
    assert doc_id and _version(db, detail.id) == now.version + 1


def test_a_policy_change_raises_the_version_of_the_certificates_it_recomputes(db, company_id) -> None:  # type: ignore[no-untyped-def]
    ky = make_certificate(db, company_id, customer="C-KY", form="KY-51A105", states=("KY",))
    tx = make_certificate(db, company_id, customer="C-TX")
    CompanyService(db).set_expiry_policy(company_id, "KY", "resale", "years", 2, "our auditor asks for 2 years")
    assert _version(db, ky.id) == ky.version + 1
    assert _version(db, tx.id) == tx.version
    with pytest.raises(ConflictError, match="expiry") as info:
        CertificateService(db).save(ky.id, dataclasses.replace(ky.data, notes="x"), expected_version=ky.version,
                                    as_of=AS_OF)
    assert "tester" in str(info.value)
    with db.reader() as s:
        event = next(e for e in audit.list_events(s, certificate_id=ky.id)
                     if e.action == "certificate.expiry_recomputed")
    assert event.before and event.after and event.before["lines"] != event.after["lines"]


def test_a_renewal_suspension_raises_the_version_and_refuses_the_older_copy(db, company_id) -> None:  # type: ignore[no-untyped-def]
    from ecms_desktop.services.renewals.service import RenewalService

    detail = make_certificate(db, company_id, expiry_override=dt.date(2026, 10, 31),
                              expiry_override_reason="customer's permit ends in October")
    result = RenewalService(db).run(company_id, AS_OF, send=False)
    assert result.suspended == 1
    assert _version(db, detail.id) == detail.version + 1
    with pytest.raises(ConflictError, match="Exempt status suspended") as info:
        CertificateService(db).save(detail.id, dataclasses.replace(detail.data, notes="renewal asked"),
                                    expected_version=detail.version, as_of=AS_OF)
    assert "TX" in str(info.value)


# -- real races: two desks, each with its own database connection -----------------------------------------


def _race(url: str, cert_id: int, actions: list[Callable[[CertificateService, CertificateDetail], Any]]
          ) -> list[tuple[str, Any]]:
    """Run each action in its own thread with its own Database, all from the same loaded copy."""
    barrier = threading.Barrier(len(actions))
    results: list[tuple[str, Any]] = [("missing", None)] * len(actions)

    def run(i: int) -> None:
        database = Database(url)
        try:
            service = CertificateService(database)
            copy = service.get(cert_id, AS_OF)
            barrier.wait(timeout=60)
            try:
                results[i] = ("won", actions[i](service, copy))
            except ConflictError as exc:
                results[i] = ("conflict", exc)
        except BaseException as exc:  # reported by the assertion below, with the error
            results[i] = ("error", exc)
        finally:
            database.dispose()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(actions))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return results


def test_two_concurrent_state_line_saves_have_exactly_one_winner(db, company_id) -> None:  # type: ignore[no-untyped-def]
    for trial in range(RACES):
        detail = _sst(db, company_id, customer=f"C-{trial}")
        new_oh = permit_number("OH", 10 + trial)
        results = _race(db.url, detail.id, [
            lambda svc, copy, new_oh=new_oh: svc.save(copy.id, _retax(copy, "OH", new_oh),
                                                       expected_version=copy.version,
                                       as_of=AS_OF),
            lambda svc, copy: svc.save(copy.id, _add_state(copy, "IN"), expected_version=copy.version, as_of=AS_OF),
        ])
        kinds = sorted(kind for kind, _ in results)
        assert kinds == ["conflict", "won"], (trial, results)
        winner = next(value for kind, value in results if kind == "won")
        # The winner's change is stored whole; the loser was told and nothing of theirs was written.
        assert _lines(db, detail.id) == [(line.state, line.state_tax_id) for line in winner.data.lines]
        assert _version(db, detail.id) == detail.version + 1


def test_a_concurrent_approval_and_state_line_save_have_exactly_one_winner(db, company_id) -> None:  # type: ignore[no-untyped-def]
    for trial in range(RACES):
        pending = _sst(db, company_id, customer=f"C-{trial}", approve=False)
        new_mi = permit_number("MI", 20 + trial)
        results = _race(db.url, pending.id, [
            lambda svc, copy: svc.approve(copy.id, expected_version=copy.version, as_of=AS_OF,
                                          acknowledge_warnings=True),
            lambda svc, copy, new_mi=new_mi: svc.save(copy.id, _retax(copy, "MI", new_mi),
                                                       expected_version=copy.version,
                                       as_of=AS_OF),
        ])
        assert sorted(kind for kind, _ in results) == ["conflict", "won"], (trial, results)
        final = CertificateService(db).get(pending.id, AS_OF)
        mi = dict(_lines(db, pending.id))["MI"]
        if results[0][0] == "won":  # approved what the approver saw; the edit was refused
            assert final.review_state == "approved" and mi == pending.data.lines[0].state_tax_id
            assert final.reviewed_version == pending.version
        else:  # the edit won; the approval of the older copy was refused
            assert final.review_state == "pending" and mi == new_mi


def _save_in_process(url: str, cert_ids: list[int], barrier: Any, which: int, queue: Any) -> None:
    """One desk in its own process: load each certificate, wait for the other desk, change a state line."""
    from ecms_desktop.services.certificates.service import CertificateService as Service
    from ecms_desktop.services.core.database import Database as Db

    database = Db(url)
    service = Service(database)
    try:
        for cid in cert_ids:
            copy = service.get(cid, AS_OF)
            barrier.wait(timeout=60)
            data = _retax(copy, "OH", permit_number("OH", 100 + cid)) if which == 0 else _add_state(copy, "IN")
            try:
                saved = service.save(cid, data, expected_version=copy.version, as_of=AS_OF)
                queue.put((cid, which, "won", [(line.state, line.state_tax_id) for line in saved.data.lines]))
            except ConflictError as exc:
                queue.put((cid, which, "conflict", str(exc)))
    except BaseException as exc:  # reported to the test
        queue.put((-1, which, "error", repr(exc)))
    finally:
        database.dispose()


def test_two_processes_saving_state_lines_at_once_have_exactly_one_winner(db, company_id) -> None:  # type: ignore[no-untyped-def]
    ids = [_sst(db, company_id, customer=f"C-{trial}").id for trial in range(3)]
    ctx = multiprocessing.get_context("spawn")
    barrier, queue = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=_save_in_process, args=(db.url, ids, barrier, which, queue)) for which in (0, 1)]
    for p in procs:
        p.start()
    outcomes = [queue.get(timeout=180) for _ in range(2 * len(ids))]
    for p in procs:
        p.join(timeout=60)
    assert not [o for o in outcomes if o[2] == "error"], outcomes
    for cid in ids:
        mine = [o for o in outcomes if o[0] == cid]
        assert sorted(o[2] for o in mine) == ["conflict", "won"], mine
        winner = next(o for o in mine if o[2] == "won")
        assert _lines(db, cid) == winner[3]


def test_conflict_message_after_a_lost_race_says_who_changed_what(db, company_id) -> None:  # type: ignore[no-untyped-def]
    detail = _sst(db, company_id)
    results = _race(db.url, detail.id, [
        lambda svc, copy: svc.save(copy.id, _retax(copy, "OH", permit_number("OH", 7)), expected_version=copy.version,
                                   as_of=AS_OF),
        lambda svc, copy: svc.save(copy.id, _retax(copy, "MI", permit_number("MI", 7)), expected_version=copy.version,
                                   as_of=AS_OF),
    ])
    loser = next(value for kind, value in results if kind == "conflict")
    assert "tester" in str(loser) and "lines" in str(loser)
    with db.reader() as s:
        edits = s.execute(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.certificate_id == detail.id, AuditEvent.action == "certificate.edited")).scalar_one()
    assert edits == 1
