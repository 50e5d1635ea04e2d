"""Companies (the seller's legal entities), business settings and company expiry policies."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from ecms_desktop.models import Company, CompanyRegistration, ExpiryPolicyOverride, Setting
from ecms_desktop.services.certificates.service import recompute_company_expiries
from ecms_desktop.services.core import audit, people
from ecms_desktop.services.core.company_lookup import find_company
from ecms_desktop.services.core.database import Database
from ecms_desktop.services.core.errors import DocumentError, NotFoundError, ValidationError
from ecms_desktop.services.core.field_limits import EMAIL_ADDRESS
from ecms_desktop.services.core.people import Permission
from ecms_desktop.services.core.settings import (
    DEFAULT_SETTINGS,
    BusinessSettings,
    business_settings,
    setting_problem,
)
from ecms_desktop.services.documents.media_types import sniff_media_type
from ecms_desktop.services.documents.shared_sandbox import probe_document
from ecms_desktop.services.documents.worker.pictures import image_pixel_size


@dataclass(frozen=True)
class CompanyInfo:
    """A company as the views and the CLI see it."""

    id: int
    name: str
    legal_name: str
    address: str
    state: str
    reply_to_email: str
    brand_color: str
    has_logo: bool
    registrations: dict[str, str]
    #: The address in its parts (``address`` above is the printable text).
    address_line1: str = ""
    city: str = ""
    postal_code: str = ""
    logo_media_type: str | None = None


def _info(c: Company) -> CompanyInfo:
    return CompanyInfo(c.id, c.name, c.legal_name or c.name, c.address_text(), c.state, c.reply_to_email,
                       c.brand_color, c.logo_media_type is not None,
                       {r.state: r.number for r in c.registrations}, c.address_line1, c.city, c.postal_code,
                       c.logo_media_type)


_COLOUR_RE = re.compile(r"^#[0-9A-Fa-f]{6}$")
#: Logos go on cover letters and audit-pack covers: PNG or JPEG only.
LOGO_MEDIA_TYPES: frozenset[str] = frozenset({"image/png", "image/jpeg"})
#: Largest logo accepted (it is embedded in every request packet).
MAX_LOGO_BYTES = 2 * 1024 * 1024
#: Largest logo in pixels: a letterhead needs a few hundred; 16 MP (4000 x 4000) is generous, and
#: keeps what every request packet decodes small.
MAX_LOGO_PIXELS = 16_000_000


def _checked_logo(logo: bytes, media_type: str | None) -> str:
    """The logo's media type, after checking its bytes: a PNG or JPEG, within the size and pixel
    limits, that the document sandbox can open (it is embedded in every request packet)."""
    sniffed = sniff_media_type(logo)
    if sniffed is None or sniffed not in LOGO_MEDIA_TYPES:
        raise ValidationError("The logo must be a PNG or JPEG image"
                              + (f" (this file is {sniffed})." if sniffed else "."))
    if media_type is not None and media_type != sniffed:
        raise ValidationError(f"The logo is a {sniffed} image, not {media_type}.")
    if len(logo) > MAX_LOGO_BYTES:
        raise ValidationError(f"The logo is {len(logo) // 1024} KB; use an image under "
                              f"{MAX_LOGO_BYTES // (1024 * 1024)} MB.")
    size = image_pixel_size(logo, sniffed)
    if size is None or size[0] * size[1] > MAX_LOGO_PIXELS or 0 in size:
        shown = f" ({size[0]:,} x {size[1]:,} pixels)" if size else ""
        raise ValidationError(f"The logo{shown} is not an image of at most {MAX_LOGO_PIXELS // 1_000_000} "
                              "megapixels; use a smaller PNG or JPEG.")
    try:
        probe_document(logo, filename="The logo")
    except DocumentError as exc:
        raise ValidationError(str(exc)) from exc
    return sniffed


class CompanyService:
    """Create and change companies, their registrations, settings and expiry policies (audited)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def find_id(self, name_or_id: str | int | None) -> int:
        """The id of the company named (by id or name, case-insensitive); the only one when none is named."""
        with self.db.reader() as s:
            return find_company(s, name_or_id).id

    def list(self) -> list[CompanyInfo]:
        with self.db.reader() as s:
            return [_info(c) for c in s.execute(select(Company).order_by(Company.name)).scalars()]

    def create(self, name: str, *, legal_name: str = "", address_line1: str = "", city: str = "",
               state: str = "", postal_code: str = "", reply_to_email: str = "",
               registrations: dict[str, str] | None = None) -> CompanyInfo:
        """Add a legal entity that sells and holds certificates."""
        name = name.strip()
        if not name:
            raise ValidationError("A company needs a name.")
        with self.db.transaction() as s:
            if s.execute(select(Company).where(Company.name == name)).scalar_one_or_none():
                raise ValidationError(f"A company named {name!r} exists already.")
            company = Company(name=name, legal_name=legal_name or name, address_line1=address_line1,
                              city=city, state=state.upper(), postal_code=postal_code,
                              reply_to_email=reply_to_email)
            for st, number in (registrations or {}).items():
                company.registrations.append(CompanyRegistration(state=st.upper(), number=number))
            s.add(company)
            s.flush()
            audit.record(s, "company.created", "company", company.id, company_id=company.id,
                         after={"name": name, "legal_name": company.legal_name, "state": company.state})
            return _info(company)

    def get(self, company_id: int) -> CompanyInfo:
        """One company's profile."""
        with self.db.reader() as s:
            company = s.get(Company, company_id)
            if company is None:
                raise NotFoundError(f"There is no company {company_id}.")
            return _info(company)

    def update(self, company_id: int, *, name: str | None = None, legal_name: str | None = None,
               address_line1: str | None = None, city: str | None = None, state: str | None = None,
               postal_code: str | None = None, reply_to_email: str | None = None,
               registrations: dict[str, str] | None = None, brand_color: str | None = None,
               logo: bytes | None = None, logo_media_type: str | None = None) -> CompanyInfo:
        """Change a company's profile (what its renewal letters and audit packs show): only the
        arguments given change; ``registrations`` replaces the whole list of state registrations;
        ``logo`` must be a PNG or JPEG image (checked by its bytes, not its name). One transaction,
        audited with the values before and after."""
        changes: dict[str, Any] = {}
        for key, value in (("name", name), ("legal_name", legal_name), ("address_line1", address_line1),
                           ("city", city), ("postal_code", postal_code), ("reply_to_email", reply_to_email)):
            if value is not None:
                changes[key] = value.strip()
        if name is not None and not changes["name"]:
            raise ValidationError("A company needs a name.")
        if state is not None:
            changes["state"] = state.strip().upper()
            if changes["state"] and not re.fullmatch(r"[A-Z]{2}", changes["state"]):
                raise ValidationError(f"State {state!r}: use the two-letter code (for example TX).")
        if reply_to_email and reply_to_email.strip() and not EMAIL_ADDRESS.match(reply_to_email.strip()):
            raise ValidationError(f"Reply-to e-mail {reply_to_email!r} is not an e-mail address.")
        if brand_color is not None:
            if not _COLOUR_RE.match(brand_color.strip()):
                raise ValidationError(f"Brand colour {brand_color!r}: write it as #RRGGBB (for example #1F4E79).")
            changes["brand_color"] = brand_color.strip().upper()
        regs: dict[str, str] | None = None
        if registrations is not None:
            regs = {}
            for st, number in registrations.items():
                code, num = st.strip().upper(), number.strip()
                if not re.fullmatch(r"[A-Z]{2}", code):
                    raise ValidationError(f"Registration {st}={number}: the state is a two-letter code.")
                if not num:
                    raise ValidationError(f"Registration for {code}: the number is empty.")
                regs[code] = num
        if logo is not None:
            logo_media_type = _checked_logo(logo, logo_media_type)
        elif logo_media_type is not None:
            raise ValidationError("Give the logo's bytes with its media type.")
        with self.db.transaction() as s:
            company = s.get(Company, company_id)
            if company is None:
                raise NotFoundError(f"There is no company {company_id}.")
            if "name" in changes and changes["name"] != company.name and s.execute(
                    select(Company.id).where(Company.name == changes["name"], Company.id != company_id)).first():
                raise ValidationError(f"A company named {changes['name']!r} exists already.")
            before: dict[str, Any] = {}
            after: dict[str, Any] = {}
            for key, value in changes.items():
                if getattr(company, key) != value:
                    before[key], after[key] = getattr(company, key), value
                    setattr(company, key, value)
            if regs is not None:
                old = {r.state: r.number for r in company.registrations}
                if old != regs:
                    before["registrations"], after["registrations"] = old, regs
                    company.registrations.clear()
                    s.flush()
                    for st, number in sorted(regs.items()):
                        company.registrations.append(CompanyRegistration(state=st, number=number))
            if logo is not None:
                import hashlib

                old_logo = company.logo
                new_sha = hashlib.sha256(logo).hexdigest()
                old_sha = hashlib.sha256(old_logo).hexdigest() if old_logo else None
                if new_sha != old_sha:
                    before["logo"] = {"sha256": old_sha, "media_type": company.logo_media_type}
                    after["logo"] = {"sha256": new_sha, "media_type": logo_media_type, "bytes": len(logo)}
                    company.logo, company.logo_media_type = logo, logo_media_type
            s.flush()
            if after:
                audit.record(s, "company.updated", "company", company.id, company_id=company.id,
                             before=before, after=after)
            return _info(company)

    def settings(self, company_id: int | None = None) -> BusinessSettings:
        """The business settings in force for a company (``None``: those set for all companies)."""
        with self.db.reader() as s:
            return business_settings(s, company_id)

    def expiring_soon_windows(self, company_ids: Iterable[int]) -> dict[int | None, int]:
        """How many days before its expiry a certificate counts as expiring soon, for each company and
        (under None) for all companies, read together."""
        with self.db.reader() as s:
            windows: dict[int | None, int] = {cid: business_settings(s, cid).expiring_soon_days
                                              for cid in company_ids}
            windows[None] = business_settings(s, None).expiring_soon_days
        return windows

    def permit_check_max_age_days(self, company_id: int | None) -> int:
        """How old a permit check may be, in days, before the company wants it done again."""
        return self.settings(company_id).permit_check_max_age_days

    def set_setting(self, key: str, value: Any, company_id: int | None = None) -> None:
        """Change a business setting for one company (or all); audited."""
        if key not in DEFAULT_SETTINGS:
            raise ValidationError(f"Unknown setting {key!r}; known: {', '.join(sorted(DEFAULT_SETTINGS))}.")
        if type(value) is not type(DEFAULT_SETTINGS[key]):
            raise ValidationError(f"Setting {key!r} takes a {type(DEFAULT_SETTINGS[key]).__name__}.")
        if isinstance(value, list) and any(type(item) is not int for item in value):
            raise ValidationError(f"Setting {key!r} takes a list of whole numbers.")
        problem = setting_problem(key, value)
        if problem is not None:
            raise ValidationError(problem)
        with self.db.transaction() as s:
            people.require(s, Permission.ADMINISTER, "change settings")
            old = business_settings(s, company_id).as_json()[key]
            row = s.execute(select(Setting).where(Setting.key == key, Setting.company_id.is_(None)
                                                  if company_id is None else Setting.company_id == company_id)
                            ).scalar_one_or_none()
            if row is None:
                s.add(Setting(company_id=company_id, key=key, value=value))
            else:
                row.value = value
            audit.record(s, "setting.changed", "setting", key, company_id=company_id,
                         before={key: old}, after={key: value})

    def set_expiry_policy(self, company_id: int, state: str, purpose: str, kind: str, years: int | None,
                          reason: str) -> None:
        """Replace the rules pack's expiry policy for a state and purpose (resale/exemption) for one
        company, e.g. renew Kentucky every 3 years instead of 4. Recomputes the expiry of that
        company's affected certificate lines in the same transaction. Audited with the reason."""
        if purpose not in ("resale", "exemption"):
            raise ValidationError("The purpose is 'resale' or 'exemption'.")
        if kind not in ("none", "years", "end_of_year"):
            raise ValidationError("The kind is 'none', 'years' or 'end_of_year'.")
        if kind != "none" and (years is None or years < 1 or years > 20):
            raise ValidationError("Give a number of years from 1 to 20.")
        if not reason.strip():
            raise ValidationError("Say why the company departs from the rules pack (the reason is audited).")
        state = state.upper()
        with self.db.transaction() as s:
            people.require(s, Permission.ADMINISTER, "change an expiry policy")
            row = s.execute(select(ExpiryPolicyOverride).where(
                ExpiryPolicyOverride.company_id == company_id, ExpiryPolicyOverride.state == state,
                ExpiryPolicyOverride.purpose == purpose)).scalar_one_or_none()
            before = None if row is None else {"kind": row.kind, "years": row.years, "reason": row.reason}
            if row is None:
                row = ExpiryPolicyOverride(company_id=company_id, state=state, purpose=purpose)
                s.add(row)
            row.kind, row.years, row.reason = kind, (years if kind != "none" else None), reason.strip()
            row.changed_by, row.changed_at = people.actor_name(s), dt.datetime.now(dt.UTC)
            s.flush()
            changed = recompute_company_expiries(s, company_id, state)
            audit.record(s, "expiry_policy.changed", "expiry_policy", f"{company_id}:{state}:{purpose}",
                         company_id=company_id, before=before,
                         after={"kind": kind, "years": row.years, "reason": row.reason},
                         details={"certificate_lines_recomputed": changed})
