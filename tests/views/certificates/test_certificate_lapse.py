"""The certificate form shows where the SST recurring relationship has lapsed for new sales.

Rule ``sst.recurring_relationship`` (Ohio; source SSUTA s.317): certificate dated 2024-01-01, one purchase on
2024-02-01, none after: "lapsed for new sales on 2025-02-02 (no purchase since 2024-02-01)" as of any later
date; nothing before it.
"""

from __future__ import annotations

import datetime as dt

import pytest

from ecms_desktop.rules import load_rules_pack
from ecms_desktop.services.certificates.service import CertificateService
from ecms_desktop.views.certificates.form import CertificateForm
from tests.factories import import_sales, make_signed_certificate


def _form_showing(qtbot, db, company_id, tmp_path, as_of: dt.date, states: tuple[str, ...]) -> CertificateForm:  # type: ignore[no-untyped-def]
    """The form showing an SST certificate dated 2024-01-01 for ``states``, one purchase on 2024-02-01."""
    cert = make_signed_certificate(db, company_id, "C-1", as_of=as_of, states=states, form="SST-F0003",
                                   review="approved", effective_date=dt.date(2024, 1, 1),
                                   signed_date=dt.date(2024, 1, 1))
    import_sales(db, company_id, tmp_path, "S1,1,2024-02-01,C-1,OH,100,0,yes")
    form = CertificateForm(db, load_rules_pack())
    qtbot.addWidget(form)
    form.set_as_of(as_of)
    form.load(CertificateService(db).get(cert.id, as_of))
    return form


@pytest.mark.parametrize(("as_of", "shown"), [
    (dt.date(2025, 3, 1), "OH lapsed for new sales on 2025-02-02 (no purchase since 2024-02-01) as of 2025-03-01"),
    (dt.date(2025, 1, 1), None),
])
def test_the_expiry_says_the_relationship_lapsed(qtbot, db, company_id, tmp_path, as_of, shown) -> None:  # type: ignore[no-untyped-def]
    form = _form_showing(qtbot, db, company_id, tmp_path, as_of, ("OH",))
    text = form.expiry_value.text()
    assert text.startswith("No expiry")
    if shown:
        assert shown in text
    else:
        assert "lapsed" not in text
    form.runner.wait(10000)


def test_states_that_lapsed_together_are_named_once(qtbot, db, company_id, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Seen on a five-state SST certificate in a real window: the same lapse repeated for each state filled
    the expiry with five copies of one sentence."""
    form = _form_showing(qtbot, db, company_id, tmp_path, dt.date(2025, 3, 1), ("OH", "MI", "NE"))
    text = form.expiry_value.text()
    assert text.count("lapsed for new sales on 2025-02-02 (no purchase since 2024-02-01)") == 1, text
    assert "MI, NE, OH lapsed" in text or "OH, MI, NE lapsed" in text, text
    form.runner.wait(10000)
