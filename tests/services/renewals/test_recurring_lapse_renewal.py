"""After the SST recurring relationship lapses, the renewal plan asks for a fresh certificate, and the
certificate shows "lapsed for new sales on D (no purchase since ...)" as of the date asked (desk and CLI).

Rule ``sst.recurring_relationship`` (Ohio, full SST member; source SSUTA s.317: a blanket certificate
needs no renewal while there are no more than 12 months between sales; after more than 12 months without
one it no longer covers new sales). The certificate is dated 2024-01-01; the customer bought on 2024-02-01
and then nothing: the relationship lapses for new sales on 2025-02-02 (12 months after 2024-02-01, plus
the day that makes it "more than 12 months").
"""

from __future__ import annotations

import datetime as dt

import pytest

from ecms_desktop.cli import main
from ecms_desktop.services.certificates.service import CertificateService
from ecms_desktop.services.renewals.service import Action, RenewalService
from tests.factories import import_sales, make_signed_certificate

AS_OF = dt.date(2026, 11, 20)
LAPSED = "lapsed for new sales on 2025-02-02 (no purchase since 2024-02-01)"


def _ohio(db, company_id, tmp_path, *sales: str):  # type: ignore[no-untyped-def]
    from ecms_desktop.services.customers.service import CustomerService

    CustomerService(db).get_or_create(company_id, "C-1", legal_name="Customer C-1", email="c-1@buyer.example")
    cert = make_signed_certificate(db, company_id, "C-1", as_of=AS_OF, states=("OH",), form="SST-F0003",
                                   review="approved", certificate_number="OH-SST",
                                   effective_date=dt.date(2024, 1, 1), signed_date=dt.date(2024, 1, 1))
    if sales:
        import_sales(db, company_id, tmp_path, *sales)
    return cert


# (case, sales, plan date, expected actions for the Ohio line, shown on the certificate)
CASES = [
    ("in force while the customer buys: nothing to ask",
     ("S1,1,2024-02-01,C-1,OH,100,0,yes", "S2,1,2025-01-15,C-1,OH,100,0,yes"), dt.date(2025, 6, 1), [], ""),
    ("the day before the lapse: nothing yet", ("S1,1,2024-02-01,C-1,OH,100,0,yes",), dt.date(2025, 2, 1), [], ""),
    ("on the lapse day: a request for a fresh certificate", ("S1,1,2024-02-01,C-1,OH,100,0,yes",),
     dt.date(2025, 2, 2), ["request"], LAPSED),
    ("a purchase after the lapse does not revive it", ("S1,1,2024-02-01,C-1,OH,100,0,yes",
                                                       "S2,1,2025-06-01,C-1,OH,100,0,yes"),
     dt.date(2025, 7, 1), ["request"], LAPSED),
    ("no sale imported at all: nothing can be said to be missing", (), dt.date(2026, 6, 1), [], ""),
]


@pytest.mark.parametrize(("case", "sales", "on", "actions", "shown"), CASES, ids=[c[0] for c in CASES])
def test_the_plan_asks_after_a_lapse_and_the_certificate_says_so(db, company_id, tmp_path, case, sales, on,  # type: ignore[no-untyped-def]
                                                                  actions, shown) -> None:
    cert = _ohio(db, company_id, tmp_path, *sales)
    plan = RenewalService(db).plan(company_id, on)
    mine = [i for i in plan.items if i.certificate_id == cert.id]
    assert [i.action.value for i in mine] == actions, case
    if actions:
        (item,) = mine
        assert item.lapse == LAPSED and item.expiry_date == dt.date(2025, 2, 1) and item.state == "OH"
        assert item.action is Action.REQUEST and item.form_code
    (line,) = CertificateService(db).get(cert.id, on).lines
    assert line.lapse == shown, case


def test_the_request_is_followed_up_and_never_suspends(db, company_id, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The lapse already keeps the certificate from covering new sales: reminders as for an expired line,
    but no suspension step."""
    cert = _ohio(db, company_id, tmp_path, "S1,1,2024-02-01,C-1,OH,100,0,yes")
    svc = RenewalService(db)
    seen = []
    for day in range(0, 30):
        on = dt.date(2025, 2, 2) + dt.timedelta(days=day)
        seen += [(day, i.action.value) for i in svc.plan(company_id, on).items if i.certificate_id == cert.id]
        svc.run(company_id, on, send=False)
    assert seen[0] == (0, "request") and (7, "reminder") in seen
    assert all(action != "suspend" for _, action in seen)


def test_ecms_show_prints_the_lapse(db, db_url, company_id, tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    cert = _ohio(db, company_id, tmp_path, "S1,1,2024-02-01,C-1,OH,100,0,yes")
    assert main(["--db", db_url, "show", str(cert.id), "--as-of", "2025-03-01"]) == 0
    assert LAPSED in capsys.readouterr().out
    assert main(["--db", db_url, "show", str(cert.id), "--as-of", "2025-01-01"]) == 0
    assert "lapsed" not in capsys.readouterr().out


def test_ecms_renewals_plan_says_why(db, db_url, company_id, tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    """The request after a lapse says so in the plan's JSON (the note column of the table)."""
    import json

    _ohio(db, company_id, tmp_path, "S1,1,2024-02-01,C-1,OH,100,0,yes")
    assert main(["--db", db_url, "renewals", "plan", "--as-of", "2025-03-01", "--format", "json"]) == 0
    (item,) = json.loads(capsys.readouterr().out)["items"]
    assert (item["action"], item["state"], item["lapse"], item["expiry_date"]) == \
        ("request", "OH", LAPSED, "2025-02-01")


@pytest.mark.parametrize(("on", "lapse"), [("2025-03-01", LAPSED), ("2025-01-01", None)])
def test_ecms_list_gives_the_lapse_per_state(db, db_url, company_id, tmp_path, capsys, on, lapse) -> None:  # type: ignore[no-untyped-def]
    import json

    cert = _ohio(db, company_id, tmp_path, "S1,1,2024-02-01,C-1,OH,100,0,yes")
    assert main(["--db", db_url, "list", "--as-of", on, "--format", "json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    line = {"state": "OH", "status": "active", "expiry_date": None}
    assert row["id"] == cert.id and row["lines"] == [line | ({"lapse": lapse} if lapse else {})]
    assert main(["--db", db_url, "list", "--as-of", on]) == 0
    assert ("(lapsed in OH)" in capsys.readouterr().out) is (lapse is not None)
