"""Claims and roles at the review: who may approve, who works which pending certificate (both backends; on
PostgreSQL each person logs in with their own login)."""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

import pytest
from sqlalchemy import select

from ecms_desktop.models import AuditEvent, CertificateClaim, Status
from ecms_desktop.rules import load_rules_pack
from ecms_desktop.services.certificates.claims import ClaimService
from ecms_desktop.services.certificates.history_service import certificate_history
from ecms_desktop.services.certificates.query import CertificateQuery, CertificateQueryService, ClaimFilter
from ecms_desktop.services.certificates.review_queue_service import pending_query
from ecms_desktop.services.certificates.service import CertificateService
from ecms_desktop.services.core.audit import verify_chain
from ecms_desktop.services.core.certificate_records import CertificateDetail
from ecms_desktop.services.core.errors import ValidationError
from ecms_desktop.services.core.people import PermissionDeniedError
from tests.factories import AS_OF, make_certificate, make_company
from tests.helpers.team import team_on

RILEY, ALEX, DANA = "Riley Reviewer", "Alex Approver", "Dana Admin"


@pytest.fixture
def team(db, db_url):  # type: ignore[no-untyped-def]
    with team_on(db, db_url) as t:
        yield t


def pending(db, company_id, n: int = 1) -> list[CertificateDetail]:  # type: ignore[no-untyped-def]
    return [make_certificate(db, company_id, customer=f"C-{i}", approve=False) for i in range(1, n + 1)]


def events(db, action: str) -> list[SimpleNamespace]:  # type: ignore[no-untyped-def]
    """The audit events of ``action``, oldest first (their values, readable after the session)."""
    with db.reader() as s:
        found = s.execute(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.seq)).scalars()
        return [SimpleNamespace(actor=e.actor, certificate_id=e.certificate_id, entity_type=e.entity_type,
                                before=e.before, after=e.after, details=e.details) for e in found]


def claimed(db) -> dict[int, str]:  # type: ignore[no-untyped-def]
    with db.reader() as s:
        return {c.certificate_id: c.claimed_by for c in s.execute(select(CertificateClaim)).scalars()}


def test_a_reviewer_may_edit_but_not_decide(db, company_id, team) -> None:  # type: ignore[no-untyped-def]
    cert, = pending(db, company_id)
    service = CertificateService(team.dbs[RILEY])
    for decide, verb in ((lambda: service.approve(cert.id, expected_version=cert.version, as_of=AS_OF,
                                                  acknowledge_warnings=True), "approve"),
                         (lambda: service.reject(cert.id, "not signed", expected_version=cert.version,
                                                 as_of=AS_OF), "reject"),
                         (lambda: service.archive(cert.id, "replaced", expected_version=cert.version,
                                                  as_of=AS_OF), "archive")):
        with pytest.raises(PermissionDeniedError, match=f"Riley Reviewer may not {verb} certificate {cert.id}: "
                                                        "that needs the approver role"):
            decide()
    after = service.get(cert.id, AS_OF)
    assert (after.review_state, after.version) == ("pending", cert.version)
    assert not events(db, "certificate.approved") and not events(db, "certificate.rejected")
    saved = service.save(cert.id, replace(cert.data, purchaser_address="2 Main St"), expected_version=cert.version,
                         as_of=AS_OF)
    assert saved.data.purchaser_address == "2 Main St"
    with pytest.raises(PermissionDeniedError, match="Riley Reviewer may not store a certificate as approved"):
        service.create(cert.data, as_of=AS_OF, review_state="approved")
    approved = CertificateService(team.dbs[ALEX]).approve(cert.id, expected_version=saved.version, as_of=AS_OF,
                                                          acknowledge_warnings=True)
    assert approved.review_state == "approved" and events(db, "certificate.approved")[-1].actor == ALEX


def test_claim_is_all_or_nothing_and_never_changes_the_version(db, company_id, team) -> None:  # type: ignore[no-untyped-def]
    a, b, c = pending(db, company_id, 3)
    approved = make_certificate(db, company_id, customer="C-9")
    assert ClaimService(team.dbs[RILEY]).claim([a.id]).done == (a.id,)
    claims = ClaimService(team.dbs[ALEX])
    with pytest.raises(ValidationError) as refused:
        claims.claim([b.id, a.id, approved.id, 999])
    text = str(refused.value)
    assert f"certificate {a.id} is claimed by Riley Reviewer since" in text
    assert f"certificate {approved.id} is approved, not pending review" in text
    assert "certificate 999 does not exist" in text and "an approver can take over" in text
    assert claimed(db) == {a.id: RILEY}  # nothing of the list was claimed
    result = claims.claim([b.id, c.id, b.id])
    assert result.done == (b.id, c.id) and claims.claim([b.id]).unchanged == (b.id,)
    assert claimed(db) == {a.id: RILEY, b.id: ALEX, c.id: ALEX}
    service = CertificateService(db)
    assert [service.get(x.id, AS_OF).version for x in (a, b, c)] == [a.version, b.version, c.version]
    assert [(e.actor, e.certificate_id, e.entity_type) for e in events(db, "claim.claimed")] == [
        (RILEY, a.id, "certificate"), (ALEX, b.id, "certificate"), (ALEX, c.id, "certificate")]
    assert claims.claims([a.id, b.id, 999])[a.id].text().startswith("Claimed by Riley Reviewer since ")
    with db.reader() as s:
        assert verify_chain(s).ok


def test_release_and_take_over(db, company_id, team) -> None:  # type: ignore[no-untyped-def]
    a, b = pending(db, company_id, 2)
    ClaimService(team.dbs[ALEX]).claim([a.id, b.id])
    riley = ClaimService(team.dbs[RILEY])
    with pytest.raises(ValidationError, match=f"certificate {a.id} is claimed by Alex Approver: only they or an "
                                              "approver"):
        riley.release([a.id])
    with pytest.raises(PermissionDeniedError, match="Riley Reviewer may not take over another person's claim"):
        riley.claim([a.id], take_over=True)
    dana = ClaimService(team.dbs[DANA])
    taken = dana.claim([a.id], take_over=True)
    assert taken.taken_from == ((a.id, ALEX),) and claimed(db) == {a.id: DANA, b.id: ALEX}
    event, = events(db, "claim.taken_over")
    assert (event.actor, event.before["claimed_by"], event.after["claimed_by"]) == (DANA, ALEX, DANA)
    assert dana.release([b.id]).taken_from == ((b.id, ALEX),)
    assert events(db, "claim.released")[-1].details == {"released_for": ALEX}
    with pytest.raises(ValidationError, match=f"certificate {b.id} is not claimed"):
        dana.release([a.id, b.id])
    assert claimed(db) == {a.id: DANA}  # all or nothing
    dana.release([a.id])
    assert claimed(db) == {}


def test_a_claimed_certificate_is_saved_only_by_its_claimant(db, company_id, team) -> None:  # type: ignore[no-untyped-def]
    cert, = pending(db, company_id)
    ClaimService(team.dbs[RILEY]).claim([cert.id])
    edited = replace(cert.data, purchaser_address="9 Elm St")
    for who in (ALEX, DANA):  # an approver takes it over first
        with pytest.raises(PermissionDeniedError, match=f"Certificate {cert.id} is claimed by Riley Reviewer since "
                                                        r"\d\d:\d\d; ask them to release it or an approver to take "
                                                        "it over"):
            CertificateService(team.dbs[who]).save(cert.id, edited, expected_version=cert.version, as_of=AS_OF)
    service = CertificateService(team.dbs[RILEY])
    assert service.get(cert.id, AS_OF).version == cert.version
    assert service.save(cert.id, edited, expected_version=cert.version, as_of=AS_OF).version == cert.version + 1


def test_deciding_ends_the_claim_and_says_whose_it_was(db, company_id, team) -> None:  # type: ignore[no-untyped-def]
    a, b, c = pending(db, company_id, 3)
    ClaimService(team.dbs[RILEY]).claim([a.id, b.id, c.id])
    ClaimService(team.dbs[ALEX]).claim([c.id], take_over=True)
    service = CertificateService(team.dbs[ALEX])
    approved = service.approve(a.id, expected_version=a.version, as_of=AS_OF, acknowledge_warnings=True)
    service.reject(b.id, "not signed", expected_version=b.version, as_of=AS_OF)
    service.archive(c.id, "replaced", expected_version=c.version, as_of=AS_OF)
    assert approved.review_state == "approved" and claimed(db) == {}
    decided = {e.certificate_id: e.details["claim"] for action in ("approved", "rejected", "archived")
               for e in events(db, f"certificate.{action}")}
    assert {k: (v["claimed_by"], v["by_claimant"]) for k, v in decided.items()} == {
        a.id: (RILEY, False), b.id: (RILEY, False), c.id: (ALEX, True)}
    with pytest.raises(ValidationError, match="is approved, not pending review"):
        ClaimService(team.dbs[RILEY]).claim([a.id])


def test_the_queue_and_the_grid_filter_mine_and_unclaimed(db, company_id, team) -> None:  # type: ignore[no-untyped-def]
    a, b, c = pending(db, company_id, 3)
    make_certificate(db, company_id, customer="C-9")
    ClaimService(team.dbs[RILEY]).claim([a.id])
    ClaimService(team.dbs[ALEX]).claim([c.id])
    queries = CertificateQueryService(team.dbs[ALEX])
    base = pending_query(as_of=AS_OF, company_id=company_id)
    assert queries.matching_ids(base) == [a.id, b.id, c.id]
    assert queries.matching_ids(replace(base, claim=ClaimFilter.MINE)) == [c.id]
    assert CertificateQueryService(team.dbs[RILEY]).matching_ids(replace(base, claim=ClaimFilter.MINE)) == [a.id]
    assert queries.matching_ids(replace(base, claim=ClaimFilter.UNCLAIMED)) == [b.id]
    # every status: unclaimed means pending and nobody's
    assert queries.matching_ids(CertificateQuery(claim=ClaimFilter.UNCLAIMED, sort="id", as_of=AS_OF)) == [b.id]
    counts = queries.count_by_status(CertificateQuery(claim=ClaimFilter.MINE, as_of=AS_OF))
    assert counts[Status.PENDING_REVIEW] == 1 and counts[Status.ACTIVE] == 0
    rows = queries.load_rows([a.id, b.id, c.id], AS_OF)
    assert [r.claimed_by for r in rows] == [RILEY, None, ALEX]
    by_claimant = queries.matching_ids(replace(base, sort="claimed_by"))
    assert by_claimant.index(c.id) < by_claimant.index(a.id)  # Alex before Riley


def test_the_history_tells_the_claims(db, company_id, team) -> None:  # type: ignore[no-untyped-def]
    cert, = pending(db, company_id)
    ClaimService(team.dbs[RILEY]).claim([cert.id])
    alex = ClaimService(team.dbs[ALEX])
    alex.claim([cert.id], take_over=True)
    alex.release([cert.id])
    ClaimService(team.dbs[RILEY]).claim([cert.id])
    CertificateService(team.dbs[ALEX]).approve(cert.id, expected_version=cert.version, as_of=AS_OF,
                                               acknowledge_warnings=True)
    history = certificate_history(db, load_rules_pack(), cert.id)
    told = [e.sentences[0].split(" by ")[0] for e in history
            if e.action.startswith("claim.") or e.action == "certificate.approved"]
    assert told == ["Claimed", "Claim taken over from Riley Reviewer", "Claim released", "Claimed", "Approved"]
    approved = [e for e in history if e.action == "certificate.approved"]
    assert approved[0].sentences[0].endswith(" It was claimed by Riley Reviewer.")


def test_a_claim_changed_outside_the_program_is_named_by_ecms_check(db, db_url) -> None:  # type: ignore[no-untyped-def]
    """Claims are among the records checked against the trail: one edited in the database is named."""
    from sqlalchemy import text

    from ecms_desktop.services.integrity.check import check_database

    company = make_company(db)
    cert = make_certificate(db, company, approve=False)
    with team_on(db, db_url) as team:
        ClaimService(team.dbs["Riley Reviewer"]).claim([cert.id])
        assert check_database(db).ok
        with db.write_connection() as conn, conn.begin():
            if conn.dialect.name == "postgresql":  # as the owner, past team mode's triggers (they can)
                conn.execute(text("SET LOCAL session_replication_role = replica"))
            conn.execute(text("UPDATE certificate_claim SET claimed_by = 'Alex Approver'"))
        report = check_database(db)
    named = [str(p) for p in report.problems]
    assert not report.ok and any(p.startswith(f"claim on certificate {cert.id}: differs") for p in named), named
