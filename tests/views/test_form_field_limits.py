"""The desk's form refuses what a database column cannot hold, with the import's message beside the field."""

from __future__ import annotations

import datetime as dt

from PySide6.QtCore import Qt

from ecms_desktop.rules import load_rules_pack
from ecms_desktop.services.certificate_service import CertificateInput, CertificateService, LineInput
from ecms_desktop.services.customer_service import CustomerService
from ecms_desktop.views.certificate_form import CertificateForm

AS_OF = dt.date(2026, 6, 1)


def test_a_name_longer_than_its_column_is_refused_beside_the_field(qtbot, db, company_id) -> None:  # type: ignore[no-untyped-def]
    """SQLite stored a 301-character purchaser name that PostgreSQL refused with a DataError: both now
    refuse it, and the form shows the same message as the import, beside the field; nothing is saved."""
    rules = load_rules_pack()
    customer = CustomerService(db).get_or_create(company_id, "C-100", "Lone Star Hardware LLC")
    detail = CertificateService(db, rules).create(CertificateInput(
        company_id=company_id, customer_id=customer.id, form_code="TX-01-339", lines=(LineInput("TX"),),
        purchaser_name="Lone Star Hardware LLC", signed_date=dt.date(2026, 3, 15)), as_of=AS_OF)
    form = CertificateForm(db, rules)
    form.set_as_of(AS_OF)
    qtbot.addWidget(form)
    form.resize(760, 1100)
    form.show()
    form.load(detail)
    edit = form.builder.editor("purchaser_name")
    edit.clear()
    edit.setText("N" * 301)
    qtbot.mouseClick(form.save_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: any("at most 300 can be stored" in message
                                for _, message in form.findings_shown().get("purchaser_name", [])), timeout=10000)
    form.runner.wait(10000)
    stored = CertificateService(db, rules).get(detail.id, AS_OF)
    assert stored.version == detail.version and stored.data.purchaser_name == "Lone Star Hardware LLC"
