"""``ecms approve``, ``reject``, ``archive``, ``unarchive``, ``claim``, ``release``: the desk's review actions
from a script, with the desk's gate, roles, claims and audit events (both backends)."""

from __future__ import annotations

import json

from sqlalchemy import select

from ecms_desktop.models import AuditEvent
from ecms_desktop.services.certificates.service import CertificateService
from tests.factories import AS_OF, make_certificate, make_desk_certificate
from tests.helpers.cli import ecms
from tests.helpers.team import Team, team_on

RILEY, ALEX = "Riley Reviewer", "Alex Approver"


def as_person(team: Team, name: str) -> list[str]:
    """The global options that run a command as ``name``: their own login on PostgreSQL, their profile on
    SQLite."""
    if team.logins:
        return ["--db", team.url_as(name)]
    return ["--db", team.url, "--user", name]


def actions(db, cert_id: int) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    with db.reader() as s:
        return [(e.action, e.actor) for e in s.execute(
            select(AuditEvent).where(AuditEvent.certificate_id == cert_id).order_by(AuditEvent.seq)).scalars()
            if not e.action.startswith(("certificate.created", "certificate.validated"))]


def test_approve_lists_what_refuses_it_then_approves(db, company_id) -> None:  # type: ignore[no-untyped-def]
    blocked = make_desk_certificate(db, company_id, as_of=AS_OF)  # required fields missing: errors
    # the purchaser's name differs from the customer's: a warning
    cert = make_certificate(db, company_id, customer="C-2", approve=False, purchaser_name="Gulf Coast Traders")
    code, out, err = ecms("--db", db.url, "approve", str(blocked.id), "--as-of", AS_OF.isoformat())
    assert code == 1 and out == ""
    assert err.startswith(f"error: Certificate {blocked.id} cannot be approved: ")
    assert "error(s)" not in err and "  " in err and "Nothing was approved" in err
    code, out, err = ecms("--db", db.url, "approve", str(cert.id), "--as-of", AS_OF.isoformat())
    assert code == 1 and f"Certificate {cert.id} has " in err and "--acknowledge-warnings" in err
    code, out, err = ecms("--db", db.url, "approve", str(cert.id), "--acknowledge-warnings", "--note", "seen",
                          "--as-of", AS_OF.isoformat(), "--format", "json")
    assert code == 0, err
    result = json.loads(out)
    assert result["review_state"] == "approved" and result["warnings_acknowledged"] > 0
    assert CertificateService(db).get(cert.id, AS_OF).review_state == "approved"
    code, _, err = ecms("--db", db.url, "approve", str(cert.id), "--as-of", AS_OF.isoformat())
    assert code == 1 and "it cannot be approved from that state" in err


def test_reject_archive_unarchive(db, company_id) -> None:  # type: ignore[no-untyped-def]
    cert = make_certificate(db, company_id, approve=False)
    code, out, _ = ecms("--db", db.url, "reject", str(cert.id), "--reason", "not signed", "--as-of",
                        AS_OF.isoformat())
    assert code == 0 and out == f"Certificate {cert.id} rejected as of {AS_OF} (reason: not signed); its status " \
                                "is now Rejected.\n"
    code, out, _ = ecms("--db", db.url, "archive", str(cert.id), "--reason", "customer closed", "--format", "json")
    assert code == 0 and json.loads(out)["review_state"] == "archived"
    code, out, _ = ecms("--db", db.url, "unarchive", str(cert.id), "--reason", "reopened")
    assert code == 0 and "brought back as rejected" in out
    code, _, err = ecms("--db", db.url, "reject", str(cert.id), "--reason", " ")
    assert code == 1 and err == "error: Say why the certificate is rejected.\n"
    code, _, err = ecms("--db", db.url, "archive", str(cert.id))
    assert code == 2 and "--reason" in err
    code, _, err = ecms("--db", db.url, "reject", "999", "--reason", "x")
    assert code == 1 and "There is no certificate 999." in err


def test_a_reviewer_claims_but_may_not_decide(db, db_url, company_id) -> None:  # type: ignore[no-untyped-def]
    a = make_certificate(db, company_id, customer="C-1", approve=False)
    b = make_certificate(db, company_id, customer="C-2", approve=False)
    with team_on(db, db_url) as team:
        riley, alex = as_person(team, RILEY), as_person(team, ALEX)
        code, out, err = ecms(*riley, "claim", str(a.id), str(b.id))
        assert code == 0, err
        assert out == f"Certificate {a.id} claimed.\nCertificate {b.id} claimed.\n"
        code, out, _ = ecms(*riley, "claim", str(a.id), "--format", "json")
        assert code == 0 and json.loads(out) == {"claimed": [], "unchanged": [a.id], "from": {}}
        for verb, extra in (("approve", ["--acknowledge-warnings"]), ("reject", ["--reason", "x"]),
                            ("archive", ["--reason", "x"])):
            code, out, err = ecms(*riley, verb, str(a.id), *extra, "--as-of", AS_OF.isoformat())
            assert code == 1 and out == ""
            assert err.startswith(f"error: Riley Reviewer may not {verb} certificate {a.id}: that needs the approver "
                                  "role"), err
        code, _, err = ecms(*riley, "claim", str(a.id), "--take-over")
        assert code == 1 and "Riley Reviewer may not take over another person's claim" in err
        code, _, err = ecms(*alex, "claim", str(a.id))
        assert code == 1 and f"certificate {a.id} is claimed by Riley Reviewer since" in err
        assert "Nothing was claimed" in err
        code, out, _ = ecms(*alex, "claim", str(a.id), "--take-over")
        assert code == 0 and out == f"Certificate {a.id} taken over from Riley Reviewer.\n"
        code, out, _ = ecms(*alex, "release", str(b.id))
        assert code == 0 and out == f"Certificate {b.id} released (it was claimed by Riley Reviewer).\n"
        code, out, err = ecms(*alex, "approve", str(a.id), "--acknowledge-warnings", "--as-of", AS_OF.isoformat())
        assert code == 0 and out.startswith(f"Certificate {a.id} approved as of {AS_OF} (decided on version "), err
        assert actions(db, a.id) == [("claim.claimed", RILEY), ("claim.taken_over", ALEX),
                                     ("certificate.approved", ALEX)]
        code, _, err = ecms(*alex, "release", str(a.id))
        assert code == 1 and f"certificate {a.id} is not claimed" in err
