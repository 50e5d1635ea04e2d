"""What was read from a certificate's documents, offered as suggestions for the certificate's fields.

A document's reading (``document.extraction``, see :mod:`~ecms_desktop.services.intake.reading`) is never
applied to the record: :func:`suggestions_for` turns it into one :class:`Suggestion` per field of the
certificate form, with the value normalised to what the field stores (a date as ``YYYY-MM-DD``, the
rules pack's codes for the exempt reason, the certificate type and the states), how sure the reading is,
where on which document's page it was read, and whether the record already holds it ("matches the
scan"). The accountant accepts or corrects each one in the form. A value that cannot be normalised
(a date that is not a date, a reason the pack does not know) is still offered as read, with a note.
Pure functions: no Qt, no database.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ecms_desktop.models.enums import CertificateType
from ecms_desktop.rules import RulesPack
from ecms_desktop.rules.pack import UnknownFormError
from ecms_desktop.services.certificates.form_spec import parse_date, parse_states
from ecms_desktop.services.core.certificate_records import CertificateDetail, CertificateInput, DocumentInfo

__all__ = [
    "ACCEPT_ALL_AT",
    "FIELDS",
    "STRONG_AT",
    "WEAK_BELOW",
    "Suggestion",
    "normalise",
    "parse_read_date",
    "record_value",
    "same_value",
    "suggestions_for",
    "suggestions_from_reading",
]

Box = tuple[float, float, float, float]

#: "Accept all" takes the suggestions read at least this sure.
ACCEPT_ALL_AT = 0.9
#: A suggestion at least this sure is shown strong; below :data:`WEAK_BELOW` visibly weaker ("uncertain").
STRONG_AT = 0.9
WEAK_BELOW = 0.6

#: The form's fields a reading can suggest, in the form's order: the reading's field name (or, for
#: ``form_code``, the reading's own key) -> the form field it fills. ``states`` fills the states
#: covered, ``expiry_date`` (an expiry printed on the certificate) the expiry set by hand.
FIELDS: dict[str, str] = {
    "states": "states",
    "form_code": "form_code",
    "exempt_reason": "exempt_reason",
    "purchaser_name": "purchaser_name",
    "purchaser_address": "purchaser_address",
    "purchaser_tax_id": "purchaser_tax_id",
    "purchaser_ein": "purchaser_ein",
    "certificate_type": "certificate_type",
    "signer_name": "signer_name",
    "signer_title": "signer_title",
    "signed_date": "signed_date",
    "expiry_date": "expiry_override",
}

_DATE_FIELDS = {"signed_date", "expiry_override"}
_NUMBER_FIELDS = {"purchaser_tax_id", "purchaser_ein"}
_MONTH_FORMATS = ("%B %d %Y", "%b %d %Y", "%d %B %Y", "%d %b %Y")
_TYPE_WORDS = {
    "blanket": CertificateType.BLANKET.value,
    "single": CertificateType.SINGLE_USE.value,
    "single_use": CertificateType.SINGLE_USE.value,
    "single use": CertificateType.SINGLE_USE.value,
    "single purchase": CertificateType.SINGLE_USE.value,
}


@dataclass(frozen=True)
class Suggestion:
    """A value read from a certificate's document for one field of its form.

    ``field`` is the form field (a :class:`CertificateInput` attribute, or ``states``, ``form_code``,
    ``expiry_override``); ``value`` what the field would hold (normalised; the text as read when it could
    not be, then ``note`` says why and ``normalised`` is False); ``read`` the text as read; ``confidence``
    how sure the reading is (0..1); ``document_id``, ``page`` (1 = first) and ``box`` (``x0, y0, x1, y1``
    in points in the page's own, unrotated coordinates; None when the value has no place on the page,
    such as the form recognised from the whole page) where it was read. ``matches`` is True when the
    record already holds this value: it is then shown as "matches the scan", not offered."""

    field: str
    value: str
    read: str
    confidence: float
    document_id: int
    page: int
    box: Box | None
    matches: bool
    normalised: bool = True
    note: str = ""

    @property
    def percent(self) -> int:
        """The confidence as a whole percentage (82 for 0.823)."""
        return round(self.confidence * 100)

    @property
    def level(self) -> str:
        """``strong`` (at least :data:`STRONG_AT`), ``normal`` or ``weak`` (below :data:`WEAK_BELOW`)."""
        if self.confidence >= STRONG_AT:
            return "strong"
        return "normal" if self.confidence >= WEAK_BELOW else "weak"

    @property
    def offered(self) -> bool:
        """Whether the form offers it (the record holds something else)."""
        return not self.matches

    def agrees_with(self, current: str) -> bool:
        """Whether ``current`` (what the form's field holds now, as text) is this suggestion's value."""
        return same_value(self.field, self.value, current)


def parse_read_date(text: str) -> dt.date | None:
    """A date as a scan prints it: ``03/15/2026``, ``3/15/26``, ``2026-03-15``, ``03.15.2026``,
    ``March 15, 2026``, ``15 Mar 2026``; empty -> None. Raises ``ValueError`` naming the text."""
    cleaned = text.strip().rstrip(".")
    if not cleaned:
        return None
    try:
        return parse_date(cleaned.replace(".", "/") if re.fullmatch(r"[\d.]+", cleaned) else cleaned)
    except ValueError:
        pass
    words = re.sub(r"[.,]", " ", cleaned).split()
    for fmt in _MONTH_FORMATS:
        try:
            return dt.datetime.strptime(" ".join(words), fmt).date()
        except ValueError:
            continue
    raise ValueError(f"{text.strip()!r} could not be read as a date")


def _reason_code(text: str, rules: RulesPack) -> str | None:
    wanted = _words(text)
    for reason in rules.exempt_reasons:
        if wanted in (_words(reason.code), _words(reason.label)):
            return reason.code
    for reason in rules.exempt_reasons:  # "Nonprofit" for "Nonprofit / charitable"
        if wanted and _words(reason.label).startswith(wanted):
            return reason.code
    return None


def _words(text: str) -> str:
    return " ".join(re.sub(r"[^0-9a-z]+", " ", text.casefold()).split())


def normalise(field: str, text: str, rules: RulesPack) -> tuple[str, str]:
    """``text`` as read, in the form the form field ``field`` stores it, and a note ("" when it could be
    normalised; else the note says why and the value is the text as read)."""
    text = " ".join(text.split()) if field != "purchaser_address" else "\n".join(
        " ".join(line.split()) for line in text.splitlines() if line.strip())
    if field in _DATE_FIELDS:
        try:
            date = parse_read_date(text)
        except ValueError as exc:
            return text, f"{exc}; check it on the document"
        return (date.isoformat() if date else ""), ""
    if field == "states":
        codes = parse_states(text)
        unknown = [c for c in codes if c not in rules.states]
        if unknown or not codes:
            return text, f"not a state of the rules pack: {', '.join(unknown) or text!r}"
        return ", ".join(codes), ""
    if field == "form_code":
        try:
            return rules.form(text).code, ""
        except UnknownFormError:
            return text, "not a form of the rules pack"
    if field == "exempt_reason":
        code = _reason_code(text, rules)
        return (code, "") if code else (text, "not an exempt reason of the rules pack; choose one")
    if field == "certificate_type":
        kind = _TYPE_WORDS.get(_words(text)) or _TYPE_WORDS.get(_words(text).split(" ")[0] if text else "")
        return (kind, "") if kind else (text, "neither blanket nor single use; choose one")
    return text, ""


def _compact(field: str, value: str) -> str:
    if field in _NUMBER_FIELDS:
        return re.sub(r"[^0-9A-Z]", "", value.upper())
    if field == "states":
        return ",".join(parse_states(value))
    if field in _DATE_FIELDS:
        try:
            date = parse_read_date(value)
        except ValueError:
            return value.strip()
        return date.isoformat() if date else ""
    return " ".join(value.split()).casefold()


def same_value(field: str, a: str, b: str) -> bool:
    """Whether two values of form field ``field`` are the same (case, spacing and, in numbers, the
    separators aside; dates compared as dates)."""
    return _compact(field, a) == _compact(field, b)


def record_value(field: str, data: CertificateInput) -> str:
    """What the record holds for form field ``field``, as text (dates ``YYYY-MM-DD``, states joined)."""
    if field == "states":
        return ", ".join(data.states)
    value: Any = getattr(data, field)
    if isinstance(value, dt.date):
        return value.isoformat()
    return "" if value is None else str(value)


def _box(raw: Any) -> Box | None:
    if isinstance(raw, (list, tuple)) and len(raw) == 4:
        try:
            x0, y0, x1, y1 = (float(v) for v in raw)
        except (TypeError, ValueError):
            return None
        return (x0, y0, x1, y1)
    return None


def _confidence(raw: Any) -> float:
    try:
        return max(0.0, min(float(raw), 1.0))
    except (TypeError, ValueError):
        return 0.0


def suggestions_from_reading(reading: Mapping[str, Any], document_id: int, data: CertificateInput,
                             rules: RulesPack) -> dict[str, Suggestion]:
    """The suggestions of one document's stored reading (its ``extraction`` dict), by form field,
    compared with the record ``data``. Fields read empty are left out."""
    out: dict[str, Suggestion] = {}
    fields = reading.get("fields") or {}
    for name, field in FIELDS.items():
        if name == "form_code":
            item = reading.get("form_code") or {}
            page, box = 1, None
        else:
            item = fields.get(name) or {}
            page, box = int(item.get("page") or 1), _box(item.get("box"))
            if name == "states" and not item:  # the state the form itself is for
                item = reading.get("state") or {}
        read = str(item.get("value") or "").strip()
        if not read:
            continue
        value, note = normalise(field, read, rules)
        if not value:
            continue
        out[field] = Suggestion(
            field=field, value=value, read=read, confidence=_confidence(item.get("confidence")),
            document_id=document_id, page=page, box=box,
            matches=same_value(field, value, record_value(field, data)), normalised=not note, note=note)
    return out


def suggestions_for(detail: CertificateDetail, rules: RulesPack,
                    documents: Iterable[DocumentInfo] | None = None) -> dict[str, Suggestion]:
    """The suggestions for ``detail``'s form from its documents' readings (or ``documents``'): by form
    field, the surest reading of it (the first document's on a tie). Documents not read give none."""
    best: dict[str, Suggestion] = {}
    for doc in detail.documents if documents is None else documents:
        if not doc.extraction:
            continue
        for field, s in suggestions_from_reading(doc.extraction, doc.id, detail.data, rules).items():
            if field not in best or s.confidence > best[field].confidence:
                best[field] = s
    return {field: best[field] for field in FIELDS.values() if field in best}
