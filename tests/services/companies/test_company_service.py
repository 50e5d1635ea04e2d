"""Company profiles: update with validation, one audited change."""

from __future__ import annotations

import pytest

from ecms_desktop.models import AuditEvent
from ecms_desktop.services.companies.service import CompanyService
from ecms_desktop.services.core.errors import ValidationError
from tests.factories import image_bytes


def _events(db, company_id):
    from sqlalchemy import select

    with db.reader() as s:
        return list(s.execute(select(AuditEvent.before, AuditEvent.after).where(AuditEvent.action == "company.updated",
                                                       AuditEvent.company_id == company_id)
                              .order_by(AuditEvent.seq)).all())


def test_update_changes_profile_and_audits_before_after(db, company_id):
    service = CompanyService(db)
    before = service.get(company_id)
    info = service.update(company_id, legal_name="Acme Supply LLC", address_line1="9 Elm St", city="Austin",
                          state="tx", postal_code="78701", reply_to_email="ar@acme.example",
                          registrations={"tx": "32012345678", "CA": "SR-123"}, brand_color="#aa3300",
                          logo=image_bytes(4, 4, rgb=(0x33, 0x66, 0x99)))
    assert info.legal_name == "Acme Supply LLC" and info.city == "Austin" and info.state == "TX"
    assert info.registrations == {"TX": "32012345678", "CA": "SR-123"}
    assert info.brand_color == "#AA3300" and info.has_logo and info.logo_media_type == "image/png"
    assert service.get(company_id) == info
    events = _events(db, company_id)
    assert len(events) == 1
    ev = events[0]
    assert ev.before["legal_name"] == before.legal_name and ev.after["legal_name"] == "Acme Supply LLC"
    assert ev.after["logo"]["media_type"] == "image/png" and ev.before["logo"]["sha256"] is None
    assert ev.after["registrations"] == {"CA": "SR-123", "TX": "32012345678"}
    # Unchanged values are no change: nothing more audited.
    service.update(company_id, city="Austin", brand_color="#AA3300")
    assert len(_events(db, company_id)) == 1


@pytest.mark.parametrize("kwargs, words", [
    ({"brand_color": "red"}, "#RRGGBB"),
    ({"brand_color": "#12345"}, "#RRGGBB"),
    ({"logo": b"GIF89a" + b"\x00" * 40}, "PNG or JPEG"),
    ({"logo": b"%PDF-1.7\n"}, "PNG or JPEG"),
    ({"name": "  "}, "needs a name"),
    ({"reply_to_email": "not an address"}, "e-mail"),
    ({"registrations": {"Texas": "1"}}, "two-letter"),
])
def test_update_refuses_bad_values_and_changes_nothing(db, company_id, kwargs, words):
    service = CompanyService(db)
    before = service.get(company_id)
    with pytest.raises(ValidationError, match=words):
        service.update(company_id, legal_name="Changed", **kwargs)
    assert service.get(company_id) == before
    assert _events(db, company_id) == []


def test_update_refuses_a_duplicate_name(db, company_id):
    service = CompanyService(db)
    other = service.create("Other Co")
    with pytest.raises(ValidationError, match="exists already"):
        service.update(other.id, name=service.get(company_id).name)


@pytest.mark.parametrize("name", ["jpeg-corrupt-49069x6528.jpg", "jpeg-huge-height-47232.jpg"])
def test_a_logo_with_huge_pixel_counts_is_refused_before_anything_decodes_it(db, company_id, shared_dir, name):
    service = CompanyService(db)
    before = service.get(company_id)
    with pytest.raises(ValidationError, match="megapixels"):
        service.update(company_id, logo=(shared_dir / "bad-pdfs" / name).read_bytes())
    assert service.get(company_id) == before


def test_expiring_soon_windows_and_permit_check_age_per_company(db, company_id):
    service = CompanyService(db)
    other = service.create("Second Company").id
    service.set_setting("expiring_soon_days", 45, company_id)
    service.set_setting("expiring_soon_days", 60, None)
    service.set_setting("permit_check_max_age_days", 90, other)
    assert service.expiring_soon_windows([company_id, other]) == {company_id: 45, other: 60, None: 60}
    assert service.permit_check_max_age_days(other) == 90
    assert service.permit_check_max_age_days(company_id) == 365  # the default


def test_business_settings_are_typed_with_the_company_value_over_the_all_companies_value(db, company_id):
    from ecms_desktop.services.core.settings import BusinessSettings, business_settings

    service = CompanyService(db)
    assert service.settings(company_id) == BusinessSettings()  # nothing stored: the defaults
    service.set_setting("expiring_soon_days", 45, None)
    service.set_setting("renewal_reminder_days", [10, 3], None)
    service.set_setting("expiring_soon_days", 20, company_id)
    other = service.create("Other Co").id
    mine, theirs, everyone = service.settings(company_id), service.settings(other), service.settings(None)
    assert mine.expiring_soon_days == 20 and theirs.expiring_soon_days == 45 and everyone.expiring_soon_days == 45
    assert mine.renewal_reminder_days == (10, 3)  # as stored, a tuple of whole numbers
    assert mine.smtp_rate_per_minute == BusinessSettings().smtp_rate_per_minute
    with db.reader() as s:
        assert business_settings(s, company_id) == mine
    assert mine.as_json()["renewal_reminder_days"] == [10, 3]


@pytest.mark.parametrize(("key", "value", "words"), [
    ("expiring_soon_days", "45", "takes a int"),
    ("expiring_soon_days", True, "takes a int"),
    ("renewal_reminder_days", 7, "takes a list"),
    ("renewal_reminder_days", [7, "14"], "list of whole numbers"),
    ("no_such_setting", 1, "Unknown setting"),
])
def test_a_setting_of_the_wrong_type_is_refused_and_nothing_changes(db, company_id, key, value, words):
    from ecms_desktop.services.companies.service import BusinessSettings

    service = CompanyService(db)
    with pytest.raises(ValidationError, match=words):
        service.set_setting(key, value, company_id)
    assert service.settings(company_id) == BusinessSettings()


@pytest.mark.parametrize(("key", "value", "words"), [
    # Rule: a setting takes values within SETTING_BOUNDS (ecms_desktop/services/core/settings.py);
    # source: the settings' meaning - a window counted in days before expiry is neither negative nor
    # longer than a year (the desk's spin box already stops at 1..365).
    ("expiring_soon_days", -5, r"'expiring_soon_days' must be from 1 to 365 .*-5 is outside"),
    ("expiring_soon_days", 100000, r"'expiring_soon_days' must be from 1 to 365 .*100000 is outside"),
    ("renewal_window_days", 0, r"'renewal_window_days' must be from 1 to 365"),
    ("renewal_reminder_days", [7, -1], r"'renewal_reminder_days' must be from 1 to 365 .*-1 is outside"),
    ("renewal_reminder_days", list(range(1, 13)), r"'renewal_reminder_days' takes at most 10 values"),
    ("renewal_escalation_days", 400, r"'renewal_escalation_days' must be from 0 to 365"),
    ("permit_check_max_age_days", 0, r"'permit_check_max_age_days' must be from 1 to 3660"),
    ("smtp_rate_per_minute", -1, r"'smtp_rate_per_minute' must be from 0 to 10000"),
])
def test_a_setting_out_of_its_range_is_refused_naming_the_setting_and_the_range(db, company_id, key, value,
                                                                                 words):
    from ecms_desktop.services.companies.service import BusinessSettings

    service = CompanyService(db)
    with pytest.raises(ValidationError, match=words):
        service.set_setting(key, value, company_id)
    assert service.settings(company_id) == BusinessSettings()


@pytest.mark.parametrize(("key", "value"), [
    ("expiring_soon_days", 1), ("expiring_soon_days", 365), ("renewal_escalation_days", 0),
    ("smtp_rate_per_minute", 0), ("renewal_reminder_days", [7, 14]),
])
def test_a_setting_at_the_edge_of_its_range_is_kept(db, company_id, key, value):
    service = CompanyService(db)
    service.set_setting(key, value, company_id)
    assert service.settings(company_id).as_json()[key] == value
