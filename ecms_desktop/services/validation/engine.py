"""The validation engine: state-specific checks of a certificate, driven by the rules pack. Pure: no
database, no clock.

For a certificate and each of its coverage lines the engine produces *findings*: a stable rule id
(``form.not_accepted``, ``field.required``, ``permit.format`` ...), a severity (``error`` blocks
approval, ``warning`` needs a reviewer's acknowledgement, ``info``), the field concerned, a message an
accountant understands, the state, and the source and confidence of the rule behind it.

What a state accepts, which fields a form needs, permit formats, expiry policies and multistate-form
restrictions all come from the rules pack (``resources/rules``). This module holds only the few
engine settings that are not state rules (severity of each rule id) and it keeps them as data tables
below, not as code paths; business names are compared by :mod:`~ecms_desktop.services.validation.name_match`,
the one name matcher of the program.

The engine reads a :class:`Subject` (built by :func:`subject_of` from a stored certificate, its detail
or an edited input) and the latest :class:`PermitStatus` of each line; storing runs is
:mod:`~ecms_desktop.services.validation.runs`.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from stdnum.exceptions import InvalidComponent
from stdnum.exceptions import ValidationError as StdnumValidationError
from stdnum.us import ein as us_ein
from stdnum.us import ssn as us_ssn

from ecms_desktop.models import Certificate, CertificateType
from ecms_desktop.rules import RulesPack
from ecms_desktop.rules.documents import NumberIssuers, PermitFormat
from ecms_desktop.rules.pack import (
    Acceptance,
    AcceptanceTable,
    FormRule,
    RulesPackError,
    StateRule,
    UnknownFormError,
    UnknownStateError,
)
from ecms_desktop.services.core.certificate_records import CertificateDetail, CertificateInput
from ecms_desktop.services.core.expiry import compute_expiry
from ecms_desktop.services.validation.name_match import NameVerdict, compare_holder, compare_names

SEVERITY_ORDER = {"error": 0, "warning": 1, "info": 2}

# --------------------------------------------------------------------------- engine data
#
# Rule ids with their default severity and a title for lists and reports. The severity of a few
# rules depends on the rules pack (``permit.format`` is an error only where the pack knows the format
# with high confidence); the table gives the default.
RULES: Mapping[str, tuple[str, str]] = {
    "state.missing": ("error", "No state given"),
    "form.missing": ("error", "No form given"),
    "reason.missing": ("error", "No exempt reason given"),
    "type.missing": ("error", "No certificate type given"),
    "form.unknown": ("error", "Form not in the rules pack"),
    "state.unknown": ("error", "State not in the rules pack"),
    "state.no_sales_tax": ("warning", "State has no statewide sales tax"),
    "form.not_accepted": ("error", "Form not accepted in the state"),
    "sst.refused": ("error", "SST certificate refused by the state"),
    "sst.restriction": ("warning", "SST certificate accepted with a restriction"),
    "mtc.refused": ("error", "MTC certificate refused by the state"),
    "mtc.restriction": ("warning", "MTC certificate accepted with a restriction"),
    "field.required": ("error", "Required field missing"),
    "permit.format": ("warning", "Permit number format"),
    "permit.ssn_like": ("warning", "Number looks like a Social Security number"),
    "permit.issuer_unstated": ("warning", "Number of another issuer? Say whose it is"),
    "permit.issuer_not_accepted": ("warning", "Number from an issuer the form does not name"),
    "permit.not_for_reason": ("error", "Number cannot be used for this reason"),
    "state.no_exemption": ("error", "The state grants no such exemption"),
    "form.obsolete": ("warning", "Form no longer supported by the state"),
    "ein.invalid": ("error", "EIN invalid"),
    "date.signed_future": ("error", "Signed date in the future"),
    "date.effective_after_expiry": ("error", "Effective date after expiry"),
    "expiry.override": ("warning", "Expiry set by hand"),
    "expiry.expired": ("warning", "Coverage expired"),
    "single_use.po_missing": ("error", "Single-use certificate without PO/invoice number"),
    "single_use.not_allowed": ("warning", "Form has no single-use option"),
    "partial.amount_missing": ("error", "Partial exemption without amount or percent"),
    "partial.both_given": ("warning", "Partial exemption with both amount and percent"),
    "purchaser.name_mismatch": ("warning", "Purchaser name differs from the customer"),
    "permit.inactive": ("error", "Permit not active"),
    "permit.not_found": ("warning", "Permit not found in the registry"),
    "permit.check_stale": ("info", "Permit check is old"),
    "permit.holder_mismatch": ("error", "Permit belongs to another business"),
    "permit.holder_weak_match": ("warning", "Permit holder's name only weakly matches the purchaser"),
    # The certificate's documents against its record (see :func:`document_findings`): an error when the
    # document was read with confidence (:data:`DOCUMENT_SURE_READ`), else a warning.
    "document.purchaser_differs": ("error", "The document names another purchaser"),
    "document.state_differs": ("error", "The document is for another state"),
    "document.form_differs": ("error", "The document is another form"),
}

#: Certificate attribute holding each field of the rules-pack vocabulary. Fields missing here are
#: judged by :data:`_SPECIAL_FIELDS` (per coverage line, or derived from other values).
FIELD_ATTRIBUTES: Mapping[str, str] = {
    "purchaser_name": "purchaser_name",
    "purchaser_address": "purchaser_address",
    "purchaser_ein": "purchaser_ein",
    "seller_name": "seller_name",
    "seller_address": "seller_address",
    "business_type": "business_type",
    "business_description": "business_description",
    "property_description": "property_description",
    "exempt_reason": "exempt_reason",
    "exemption_detail": "exemption_detail",
    "signature": "signed",
    "signer_name": "signer_name",
    "signer_title": "signer_title",
    "signed_date": "signed_date",
    "po_number": "po_number",
    "effective_date": "effective_date",
}

#: The source named on findings that compare business names.
NAME_SOURCE = "ECMS name comparison (case, punctuation, corporate suffixes and d/b/a names handled)"
#: Words that mark a certificate as a partial exemption when found in its explanation or notes
#: (the certificate has no partial flag of its own).
PARTIAL_MARKERS: tuple[str, ...] = ("partial",)

#: The seller on a certificate is the company holding it: its name and address come from the
#: company record (when validating an unsaved input without company data they count as present).
_SELLER_FIELDS: tuple[str, ...] = ("seller_name", "seller_address")
_SSN_SHAPE = re.compile(r"^\s*\d{3}-\d{2}-\d{4}\s*$")
#: How an EIN is written (two digits, hyphen, seven digits): a number written so is an employer
#: identification number, never a Social Security number (written three-two-four), whatever its digits.
_EIN_SHAPE = re.compile(r"^\s*\d{2}-\d{7}\s*$")
#: Where the two ways of writing come from.
NUMBER_SHAPE_SOURCE = ("IRS, Employer ID Numbers (EIN is written 00-0000000, e.g. Form SS-4 and "
                       "https://www.irs.gov/businesses/small-businesses-self-employed/employer-id-numbers) | "
                       "SSA, Social Security number written 000-00-0000 (https://www.ssa.gov/history/ssn/geocard.html)")

#: A value read from a document with at least this confidence (0..1) is taken as what the document
#: says: when it disagrees with the record the finding is an error (approval is blocked until the
#: record or the document is put right); a weaker read only gives a warning to acknowledge, as the
#: reading itself may be wrong. The rules pack has no place for engine parameters (its data are state
#: rules and the reader's labels), so this lives here with the rule severities above.
DOCUMENT_SURE_READ = 0.8
#: The source named on findings that compare a document's reading with the record.
DOCUMENT_SOURCE = "ECMS reading of the certificate's document (form, state and fields read when it arrived)"


# --------------------------------------------------------------------------- findings


@dataclass(frozen=True)
class Finding:
    """One thing the validation found; ``state`` is empty for a finding about the whole certificate."""

    rule: str
    severity: str
    state: str
    field: str
    message: str
    source: str = ""
    confidence: str = ""

    @property
    def title(self) -> str:
        return RULES.get(self.rule, ("", self.rule))[1]

    def key(self) -> tuple[str, str, str, str, str]:
        return (self.rule, self.severity, self.state, self.field, self.message)

    def to_json(self) -> dict[str, str]:
        """The CLI's JSON shape of a finding."""
        return {"rule": self.rule, "severity": self.severity, "state": self.state, "field": self.field,
                "message": self.message}


# --------------------------------------------------------------------------- the subject


@dataclass(frozen=True)
class LineSubject:
    state: str
    state_tax_id: str = ""
    expiry_date: dt.date | None = None
    expiry_known: bool = False


@dataclass(frozen=True)
class DocumentSubject:
    """A document of the certificate and what was read from it (``Document.extraction``, the JSON of
    :class:`~ecms_desktop.services.intake.reading.DocumentReading`)."""

    name: str
    extraction: Mapping[str, Any]


@dataclass(frozen=True)
class Subject:
    """What the engine reads: the certificate's values, its lines and the customer's legal name."""

    form_code: str
    exempt_reason: str
    certificate_type: str
    values: Mapping[str, Any]
    lines: tuple[LineSubject, ...]
    customer_name: str | None = None
    certificate_id: int | None = None
    certificate_number: str = ""
    expiry_override: dt.date | None = None
    expiry_override_reason: str = ""
    exempt_percent: Decimal | None = None
    exempt_amount: Decimal | None = None
    notes: str = ""
    #: The certificate's current documents that were read (discarded ones and unread ones left out).
    documents: tuple[DocumentSubject, ...] = ()


#: Values the certificate record itself holds (the seller's are the company's, see :func:`subject_of`).
_VALUE_NAMES = tuple(sorted((set(FIELD_ATTRIBUTES.values()) | {"purchaser_tax_id"}) - set(_SELLER_FIELDS)))


def subject_of(obj: Any, *, customer_name: str | None = None, documents: Iterable[Any] | None = None) -> Subject:
    """A :class:`Subject` from a ``CertificateDetail``, a ``CertificateInput`` or an ORM Certificate.

    ``documents`` (objects with ``original_name`` and ``extraction``: ``DocumentInfo`` or ``Document``)
    are the documents whose readings are compared with the record; by default the certificate's own
    (an input has none: the edit form passes its certificate's)."""
    if isinstance(obj, Subject):
        return obj
    if isinstance(obj, Certificate):
        name = customer_name if customer_name is not None else (
            obj.customer.legal_name if obj.customer is not None else None)
        lines = tuple(LineSubject(ln.state, ln.state_tax_id or "", ln.expiry_date, True) for ln in obj.lines)
        company = obj.company
        seller = seller_of(company) if company is not None else ("(company)", "(company)")
        docs = documents if documents is not None else (
            [d for d in obj.documents if d.discarded_at is None] if obj.id is not None else [])
        return _subject(obj, lines, name, obj.id, obj.certificate_number, seller, docs)
    if isinstance(obj, CertificateDetail):
        data = obj.data
        stored = {ln.state: ln for ln in obj.lines}
        lines = tuple(
            LineSubject(ln.state, ln.state_tax_id,
                        stored[ln.state].expiry_date if ln.state in stored else None, ln.state in stored)
            for ln in data.lines)
        name = customer_name if customer_name is not None else obj.customer_name
        return _subject(data, lines, name, obj.id, data.certificate_number, (obj.company_name, "(company)"),
                        obj.documents if documents is None else documents)
    if isinstance(obj, CertificateInput):
        lines = tuple(LineSubject(ln.state.strip().upper(), ln.state_tax_id.strip()) for ln in obj.lines)
        return _subject(obj, lines, customer_name, None, obj.certificate_number, ("(company)", "(company)"),
                        documents or ())
    raise TypeError(f"cannot validate a {type(obj).__name__}")


def subject_of_new(data: Any, expiries: Mapping[str, dt.date | None], *, customer_name: str | None,
                   seller: tuple[str, str]) -> Subject:
    """The :class:`Subject` of a certificate about to be stored, from its input (a ``CertificateInput``),
    the expiry of each of its lines and the seller's name and address: what :func:`subject_of` gives
    for the same certificate built as an ORM object, without building one."""
    lines = tuple(LineSubject(ln.state, ln.state_tax_id or "", expiries.get(ln.state), True) for ln in data.lines)
    return _subject(data, lines, customer_name, None, data.certificate_number, seller)


def seller_of(company: Any) -> tuple[str, str]:
    """The seller's name and address the engine checks, from a company."""
    return company.legal_name or company.name, company.address_text()


def _subject(src: Any, lines: tuple[LineSubject, ...], customer_name: str | None, cert_id: int | None,
             number: str, seller: tuple[str, str], documents: Iterable[Any] = ()) -> Subject:
    values = {name: getattr(src, name) for name in _VALUE_NAMES}
    values.update(zip(_SELLER_FIELDS, seller, strict=True))
    return Subject(
        form_code=src.form_code, exempt_reason=src.exempt_reason, certificate_type=src.certificate_type,
        values=values, lines=lines,
        customer_name=customer_name, certificate_id=cert_id, certificate_number=number or "",
        expiry_override=src.expiry_override, expiry_override_reason=src.expiry_override_reason or "",
        exempt_percent=src.exempt_percent, exempt_amount=src.exempt_amount, notes=src.notes or "",
        documents=tuple(DocumentSubject(d.original_name, d.extraction) for d in documents if d.extraction),
    )


@dataclass(frozen=True)
class PermitStatus:
    """The latest permit check of a coverage line, as the engine needs it."""

    result: str
    checked_on: dt.date
    method: str
    source: str
    #: The holder's name the registry, the service or the reviewer recorded ("" when none).
    name_on_record: str = ""


# --------------------------------------------------------------------------- helpers


def mask_number(number: str) -> str:
    """``123-45-6789`` -> ``***-**-6789`` (only the last four digits are shown)."""
    digits = re.sub(r"\D", "", number)
    return f"***-**-{digits[-4:]}" if len(digits) >= 4 else "***"


@functools.lru_cache(maxsize=65536)
def _valid_ssn(digits: str) -> bool:
    return len(digits) == 9 and us_ssn.is_valid(digits)


def looks_like_ssn(number: str, pattern_matches: bool | None) -> bool:
    """A number in SSN shape (###-##-####) or nine digits forming a valid SSN where the state's
    permit format does not explain them. A number written as an EIN (##-#######) is an EIN, not an SSN."""
    if _EIN_SHAPE.match(number):
        return False
    digits = re.sub(r"\D", "", number)
    if not _valid_ssn(digits):
        return False
    return bool(_SSN_SHAPE.match(number)) or pattern_matches is not True


#: An issuer written before a number: two letters, then a colon or blanks (``OK 123456789``, ``MX: ...``).
_STATED_ISSUER = re.compile(r"^\s*([A-Za-z]{2})\s*(?::\s*|\s+)(\S.*?)\s*$")


def stated_issuer(number: str, states: Mapping[str, Any], issuers: NumberIssuers | None) -> tuple[str | None, str]:
    """The issuing jurisdiction written before ``number`` (a state of the pack or a foreign issuer the
    form names) and the number without it; (None, number) when none is written."""
    found = _STATED_ISSUER.match(number)
    if found is not None:
        code = found.group(1).upper()
        if code in states or (issuers is not None and issuers.foreign_issuer(code) is not None):
            return code, found.group(2)
    return None, number.strip()


def fingerprint(findings: Iterable[Finding]) -> str:
    """SHA-256 over the sorted findings: two runs with the same fingerprint have the same result."""
    keys = sorted(f.key() for f in findings)
    return hashlib.sha256(json.dumps(keys, separators=(",", ":")).encode()).hexdigest()


def sort_findings(findings: Iterable[Finding]) -> list[Finding]:
    return sorted(findings, key=lambda f: (SEVERITY_ORDER.get(f.severity, 9), f.state, f.rule, f.field))


def _present(value: Any) -> bool:
    if value is None or value is False:
        return False
    if isinstance(value, str):
        return bool(value.strip())
    return True


# --------------------------------------------------------------------------- the engine


class ValidationEngine:
    """Evaluates certificates against a rules pack. Pure: no database, no clock."""

    def __init__(self, rules: RulesPack) -> None:
        self.rules = rules
        self._acceptance = AcceptanceTable(rules)
        self._expiry_rules: dict[tuple[str, str, str], Any] = {}
        self._labels = {f.name: f.label for f in rules.fields}

    def label(self, field_name: str) -> str:
        return self._labels.get(field_name, field_name.replace("_", " ").capitalize())

    def acceptance(self, state: str, form_code: str, reason: str) -> Acceptance:
        return self._acceptance(state, form_code, reason)

    def evaluate(self, subject: Subject, as_of: dt.date, *,
                 permits: Mapping[str, PermitStatus] | None = None,
                 permit_max_age_days: int | None = None) -> list[Finding]:
        """All findings for ``subject`` as of ``as_of`` (sorted: errors first)."""
        out = [*self._not_known(subject), *document_findings(subject)]
        if not subject.form_code.strip():
            return sort_findings(out)
        try:
            form = self.rules.form(subject.form_code)
        except UnknownFormError as exc:
            out.append(Finding("form.unknown", "error", "", "", f"{exc}. The certificate cannot be checked "
                               "against any state's rules until its form is one the rules pack knows."))
            return sort_findings(out)
        if form.obsolete is not None:
            old = form.obsolete
            instead = f" Ask for {' or '.join(old.replaced_by)} instead." if old.replaced_by else ""
            out.append(Finding("form.obsolete", RULES["form.obsolete"][0], "", "form_code",
                               f"{form.code} ({form.name}) is no longer supported: {old.text}.{instead} A "
                               "certificate already on file stays on record.", old.source, old.confidence))
        multi = len(subject.lines) > 1
        if subject.exempt_reason:  # what each state accepts depends on the reason
            for line in subject.lines:
                out.extend(self._line(subject, form, line, as_of, multi, permits, permit_max_age_days))
        whole_state = subject.lines[0].state if len(subject.lines) == 1 else ""
        out.extend(self._whole(subject, form, as_of, whole_state))
        return sort_findings(out)

    @staticmethod
    def _not_known(subject: Subject) -> list[Finding]:
        """What a certificate made from a document before anyone read it does not say yet (each an error:
        it cannot be approved until the accountant fills it in from the document)."""
        out = []
        if not subject.lines:
            out.append(Finding("state.missing", "error", "", "state", "No state given: the document's state is not "
                               "known yet. Add the state or states the certificate covers (until then it covers "
                               "nothing)."))
        if not subject.form_code.strip():
            out.append(Finding("form.missing", "error", "", "form_code", "No form given: the document's form is not "
                               "known yet. Choose the form it is; nothing else can be checked until then."))
        if not subject.exempt_reason:
            out.append(Finding("reason.missing", "error", "", "exempt_reason", "No exempt reason given: the "
                               "document's exempt reason is not known yet. Choose the reason it claims."))
        if not subject.certificate_type:
            out.append(Finding("type.missing", "error", "", "certificate_type", "No certificate type given: it is "
                               "not known yet whether the document is a blanket or a single-use certificate."))
        return out

    # ----------------------------------------------------------------- per line

    def _line(self, subject: Subject, form: FormRule, line: LineSubject, as_of: dt.date, multi: bool,
              permits: Mapping[str, PermitStatus] | None, max_age: int | None) -> list[Finding]:
        out: list[Finding] = []
        st_code = line.state
        try:
            st = self.rules.state(st_code)
        except UnknownStateError as exc:
            return [Finding("state.unknown", "error", st_code, "", str(exc))]
        reason = subject.exempt_reason
        try:
            acc = self.acceptance(st_code, form.code, reason)
        except RulesPackError as exc:  # an unknown reason code, reported as a finding
            return [Finding("form.not_accepted", "error", st_code, "exempt_reason", str(exc))]
        number = line.state_tax_id or str(subject.values.get("purchaser_tax_id") or "")
        if not st.has_sales_tax:
            out.append(Finding("state.no_sales_tax", RULES["state.no_sales_tax"][0], st_code, "",
                               f"{acc.message}. No exemption certificate is needed for {st.name} sales tax; "
                               "check that this coverage line is meant (local taxes may apply).",
                               acc.source, acc.confidence))
        elif acc.refused:
            out.append(Finding(acc.rule, "error", st_code, "", f"{acc.message}.", acc.source, acc.confidence))
        elif acc.restriction and form.is_multistate:
            rule = "sst.restriction" if form.code == "SST-F0003" else "mtc.restriction"
            out.append(Finding(rule, RULES[rule][0], st_code, "",
                               f"{st.name} accepts the {form.name} only under a condition; confirm it is met: "
                               f"{acc.restriction}", acc.source, acc.confidence))
        # Fields the state's restriction on a multistate form demands (e.g. Florida's annual resale
        # certificate number on the MTC form).
        if acc.accepted or not st.has_sales_tax:
            for name in acc.requires_fields:
                if not self._has(subject, line, name, number):
                    rule = "sst.restriction" if form.code == "SST-F0003" else "mtc.restriction"
                    out.append(Finding(rule, "error", st_code, name,
                                       f"{self.label(name)} is missing: {st.name} accepts this form only with "
                                       f"it ({acc.restriction or acc.message})", acc.source, acc.confidence))
        # The form's own required fields.
        if acc.accepted:
            restricted = set(acc.requires_fields)
            for name in form.fields_for(reason):
                if name in restricted or self._has(subject, line, name, number):
                    continue
                where = f" for {st.name}" if multi and name == "purchaser_tax_id" else ""
                out.append(Finding("field.required", "error", st_code, name,
                                   f"{self.label(name)} is missing{where}: the {form.code} form requires it "
                                   f"for {reason} exemptions.", form.source, form.confidence))
        # Permit number format, SSN-looking numbers.
        if number.strip() and st.has_sales_tax:
            out.extend(self._permit_number(st, form, reason, number))
        # Expiry of the line.
        out.extend(self._expiry(subject, form, line, as_of))
        # Latest permit check.
        if permits is not None and st_code in permits:
            out.extend(self._permit_status(st.name, st_code, permits[st_code], as_of, max_age))
            out.extend(self._permit_holder(subject, st.name, st_code, permits[st_code]))
        return out

    def _has(self, subject: Subject, line: LineSubject, name: str, number: str) -> bool:
        if name == "purchaser_tax_id":
            return bool(number.strip())
        if name == "expiry_date":
            return subject.expiry_override is not None or line.expiry_date is not None or (
                not line.expiry_known and self._rule_expiry(subject, line.state) is not None)
        if name == "home_state":
            # The state that issued the purchaser's number is the coverage line's state unless a
            # multistate form names another; a line always has a state.
            return bool(line.state)
        attr = FIELD_ATTRIBUTES.get(name)
        return attr is not None and _present(subject.values.get(attr))

    def _permit_number(self, st: StateRule, form: FormRule, reason: str, number: str) -> list[Finding]:
        """The number against the format of whoever issued it: a state-issued document's own number
        format (none known: no format check), else the issuer written beside the number (``OK 123456789``,
        ``MX ...``) where the form takes other issuers' numbers, else the coverage line's state."""
        document = form.state_document
        if document is not None:
            whose = f"{st.name} {document.document}"
            if document.number is not None:
                return self._number_format(st.state, document.number, number, whose, reason)
            # The document's number has no known format (it is not the state's permit): only an
            # SSN-looking number is reported.
            return [f for f in self._number_format(st.state, st.permit, number, whose, reason)
                    if f.rule == "permit.ssn_like"]
        issuers = form.number_issuers
        stated, bare = stated_issuer(number, self.rules.states, issuers)
        if stated is None or stated == st.state:
            found = self._number_format(st.state, st.permit, bare, st.name, reason)
            if issuers is None or stated is not None or st.permit.matches(bare) is not False:
                return found
            if any(f.number.matches(bare) for f in issuers.foreign):
                return []  # a foreign number the form takes (a Mexican RFC), in its format
            return [f for f in found if f.rule != "permit.format"] + [self._issuer_unstated(st, form, issuers, bare)]
        foreign = issuers.foreign_issuer(stated) if issuers is not None else None
        if foreign is not None:
            return self._number_format(st.state, foreign.number, bare, foreign.name, reason)
        if issuers is not None and issuers.other_states and stated in self.rules.states:
            issuer = self.rules.states[stated]
            return self._number_format(st.state, issuer.permit, bare, issuer.name, reason)
        accepted = issuers.text if issuers is not None else f"a {st.name} number only"
        return [Finding("permit.issuer_not_accepted", RULES["permit.issuer_not_accepted"][0], st.state,
                        "purchaser_tax_id",
                        f"The number given for {st.name} is written as issued by {stated} ({bare}); the {form.code} "
                        f"form takes {accepted}. Ask the purchaser for the number the form asks for.",
                        issuers.source if issuers is not None else form.source,
                        issuers.confidence if issuers is not None else form.confidence)]

    @staticmethod
    def _issuer_unstated(st: StateRule, form: FormRule, issuers: NumberIssuers, bare: str) -> Finding:
        shown = mask_number(bare) if looks_like_ssn(bare, False) else bare
        return Finding("permit.issuer_unstated", RULES["permit.issuer_unstated"][0], st.state, "purchaser_tax_id",
                       f"{shown} is not a {st.permit.label} ({st.permit.display}); the {form.code} form also "
                       f"takes {issuers.text}. Write the issuing state or country before the number (e.g. "
                       f"'OK {shown}') so that it is checked against that issuer's format.",
                       issuers.source, issuers.confidence)

    @staticmethod
    def _number_format(state: str, fmt: PermitFormat, number: str, whose: str, reason: str) -> list[Finding]:
        """``number`` against ``fmt`` (whose = the issuer in words): SSN-looking numbers, a format
        mismatch (an error only for a high-confidence format) and numbers that cannot serve ``reason``."""
        out: list[Finding] = []
        matches = fmt.matches(number)
        ssn_like = looks_like_ssn(number, matches)
        shown = mask_number(number) if ssn_like else number.strip()
        field_name = "purchaser_tax_id"
        if ssn_like:
            out.append(Finding("permit.ssn_like", RULES["permit.ssn_like"][0], state, field_name,
                               f"The number given for {whose} ({shown}) looks like a Social Security "
                               "number, not a sales tax permit; ask the purchaser for its permit or "
                               "registration number and do not keep the SSN on file.", fmt.source, "high"))
        if matches is False:
            severity = "error" if fmt.confidence == "high" else "warning"
            sure = ("" if severity == "error" else
                    f" (the rules pack knows this format with {fmt.confidence} confidence only, so this "
                    "is a warning)")
            out.append(Finding("permit.format", severity, state, field_name,
                               f"{shown} does not match the {fmt.label} format: {fmt.display}{sure}.",
                               fmt.source, fmt.confidence))
        restriction = fmt.restriction_for(number, reason)
        if restriction is not None:  # the state's own words (high or medium confidence) block approval
            severity = "error" if restriction.confidence in ("high", "medium") else "warning"
            out.append(Finding("permit.not_for_reason", severity, state, field_name,
                               f"{shown}: {restriction.message}", restriction.source, restriction.confidence))
        return out

    def expiry_rule(self, state: str, form_code: str, reason: str) -> Any:
        key = (state, form_code, reason)
        found = self._expiry_rules.get(key)
        if found is None:
            found = self._expiry_rules[key] = self.rules.expiry_rule(state, form_code, reason)
        return found

    def _rule_expiry(self, subject: Subject, state: str) -> dt.date | None:
        try:
            rule = self.expiry_rule(state, subject.form_code, subject.exempt_reason)
        except RulesPackError:  # unknown reason or state: reported elsewhere
            return None
        return compute_expiry(rule, effective=subject.values.get("effective_date"),
                              signed=subject.values.get("signed_date")).expiry_date

    def _expiry(self, subject: Subject, form: FormRule, line: LineSubject, as_of: dt.date) -> list[Finding]:
        out: list[Finding] = []
        st = line.state
        try:
            rule = self.expiry_rule(st, form.code, subject.exempt_reason)
        except RulesPackError:
            return out
        by_rules = compute_expiry(rule, effective=subject.values.get("effective_date"),
                                  signed=subject.values.get("signed_date"))
        if subject.expiry_override is not None:
            policy = (f"the rules say {by_rules.expiry_date.isoformat()}" if by_rules.expiry_date
                      else "the rules set no expiry")
            if by_rules.expiry_date and subject.expiry_override > by_rules.expiry_date:
                policy += " - the date set by hand is LATER than the state's policy allows"
            out.append(Finding("expiry.override", RULES["expiry.override"][0], st, "expiry_date",
                               f"Expiry set by hand to {subject.expiry_override.isoformat()} ({policy}). "
                               f"Reason given: {subject.expiry_override_reason or '(none)'}",
                               rule.source, rule.confidence))
        expiry = subject.expiry_override or (line.expiry_date if line.expiry_known else by_rules.expiry_date)
        effective = subject.values.get("effective_date") or subject.values.get("signed_date")
        if expiry is not None and effective is not None and effective > expiry:
            out.append(Finding("date.effective_after_expiry", "error", st, "effective_date",
                               f"The effective date {effective.isoformat()} is after the expiry date "
                               f"{expiry.isoformat()}.", rule.source, rule.confidence))
        elif expiry is not None and expiry < as_of:
            out.append(Finding("expiry.expired", RULES["expiry.expired"][0], st, "expiry_date",
                               f"Coverage in {st} expired on {expiry.isoformat()} (as of {as_of.isoformat()}); "
                               "it covers only sales made before then - request a renewal.",
                               rule.source, rule.confidence))
        return out

    def _permit_status(self, state_name: str, st: str, status: PermitStatus, as_of: dt.date,
                       max_age: int | None) -> list[Finding]:
        out: list[Finding] = []
        when = status.checked_on.isoformat()
        if status.result == "inactive":
            out.append(Finding("permit.inactive", "error", st, "purchaser_tax_id",
                               f"The purchaser's {state_name} permit was NOT active when checked on {when} "
                               f"({status.method}: {status.source}).", status.source, "high"))
        elif status.result == "not_found":
            out.append(Finding("permit.not_found", RULES["permit.not_found"][0], st, "purchaser_tax_id",
                               f"The purchaser's {state_name} permit number was not found when checked on "
                               f"{when} ({status.method}: {status.source}); check it on the state's site.",
                               status.source, "medium"))
        if max_age is not None and (as_of - status.checked_on).days > max_age:
            out.append(Finding("permit.check_stale", RULES["permit.check_stale"][0], st, "purchaser_tax_id",
                               f"The last permit check for {st} was on {when}, more than {max_age} days ago; "
                               "verify the permit again.", status.source, ""))
        return out

    def _permit_holder(self, subject: Subject, state_name: str, st: str, status: PermitStatus) -> list[Finding]:
        """The holder the check recorded against the purchaser: someone else's permit is an error, a
        weak match a warning, both names shown."""
        found = compare_holder(status.name_on_record, str(subject.values.get("purchaser_name") or ""),
                               subject.customer_name or "")
        if found is None or found.verdict is NameVerdict.MATCH:
            return []
        when = status.checked_on.isoformat()
        if found.verdict is NameVerdict.MISMATCH:
            return [Finding("permit.holder_mismatch", RULES["permit.holder_mismatch"][0], st, "purchaser_tax_id",
                            f"The {state_name} permit checked on {when} belongs to {found.left!r} ({status.method}: "
                            f"{status.source}), not to the purchaser {found.right!r} (similarity "
                            f"{found.similarity:.0%}): the number is someone else's. Ask the purchaser for its own "
                            "permit number.", NAME_SOURCE, "high")]
        return [Finding("permit.holder_weak_match", RULES["permit.holder_weak_match"][0], st, "purchaser_tax_id",
                        f"The {state_name} permit checked on {when} is held by {found.left!r} ({status.method}: "
                        f"{status.source}), which only weakly matches the purchaser {found.right!r} (similarity "
                        f"{found.similarity:.0%}); confirm they are the same business.", NAME_SOURCE, "medium")]

    # ----------------------------------------------------------------- whole certificate

    def _whole(self, subject: Subject, form: FormRule, as_of: dt.date, st: str) -> list[Finding]:
        out: list[Finding] = []
        values = subject.values
        signed = values.get("signed_date")
        if signed is not None and signed > as_of:
            out.append(Finding("date.signed_future", "error", st, "signed_date",
                               f"The signed date {signed.isoformat()} is after {as_of.isoformat()}: a "
                               "certificate cannot be signed in the future (check the date's format).",
                               form.source, form.confidence))
        ein = str(values.get("purchaser_ein") or "").strip()
        if ein:
            out.extend(self._ein(ein, st))
        if subject.certificate_type == CertificateType.SINGLE_USE:
            if not _present(values.get("po_number")):
                out.append(Finding("single_use.po_missing", "error", st, "po_number",
                                   "A single-use certificate must name the purchase order or invoice it "
                                   "covers.", form.source, form.confidence))
            if not form.single_use_allowed:
                out.append(Finding("single_use.not_allowed", RULES["single_use.not_allowed"][0], st,
                                   "certificate_type", f"The {form.code} form has no single-use option; "
                                   "check the certificate type.", form.source, form.confidence))
        text = " ".join(str(values.get("exemption_detail") or "").split() + subject.notes.split()).casefold()
        if any(marker in text for marker in PARTIAL_MARKERS):
            if subject.exempt_percent is None and subject.exempt_amount is None:
                out.append(Finding("partial.amount_missing", "error", st, "exempt_percent",
                                   "The certificate claims a partial exemption but gives neither the exempt "
                                   "percentage nor the exempt amount.", "", ""))
            elif subject.exempt_percent is not None and subject.exempt_amount is not None:
                out.append(Finding("partial.both_given", RULES["partial.both_given"][0], st, "exempt_percent",
                                   "The partial exemption gives both a percentage and an amount; keep the "
                                   "one the certificate states.", "", ""))
        purchaser = str(values.get("purchaser_name") or "").strip()
        if purchaser and subject.customer_name:
            out.extend(self._name(purchaser, subject.customer_name, st))
        return out

    def _ein(self, ein: str, st: str) -> list[Finding]:
        if _SSN_SHAPE.match(ein) and looks_like_ssn(ein, None):
            return [Finding("permit.ssn_like", RULES["permit.ssn_like"][0], st, "purchaser_ein",
                            f"The EIN given ({mask_number(ein)}) is written like a Social Security number; "
                            "ask the purchaser for its EIN (NN-NNNNNNN) and do not keep the SSN on file.",
                            f"python-stdnum us.ssn | {NUMBER_SHAPE_SOURCE}", "high")]
        try:
            us_ein.validate(ein)
        except InvalidComponent:
            return [Finding("ein.invalid", "warning", st, "purchaser_ein",
                            f"The EIN {ein} has a prefix the IRS list used here does not know; check it "
                            "with the purchaser.", "python-stdnum us.ein (IRS campus prefixes)", "medium")]
        except StdnumValidationError:
            return [Finding("ein.invalid", "error", st, "purchaser_ein",
                            f"The EIN {ein} is not a valid federal employer identification number (9 digits, "
                            "NN-NNNNNNN).", "python-stdnum us.ein", "high")]
        return []

    def _name(self, purchaser: str, customer: str, st: str) -> list[Finding]:
        found = compare_names(purchaser, customer)
        if found.verdict is NameVerdict.MATCH:
            return []
        how = "only weakly matches" if found.verdict is NameVerdict.WEAK else "does not match"
        return [Finding("purchaser.name_mismatch", RULES["purchaser.name_mismatch"][0], st, "purchaser_name",
                        f"The purchaser name on the certificate, {purchaser!r}, {how} the customer's legal "
                        f"name {customer!r} (similarity {found.similarity:.0%}); confirm they are the same "
                        "business.", NAME_SOURCE, "")]



# --------------------------------------------------------------------------- document against record


def _read(extraction: Mapping[str, Any], key: str) -> tuple[str, float, int | None]:
    """A value the reading holds (``form_code``, ``state`` or a field's name): (value, confidence, page)."""
    item = extraction.get(key)
    if item is None:
        item = (extraction.get("fields") or {}).get(key)
    if not isinstance(item, Mapping):
        return "", 0.0, None
    page = item.get("page")
    return (str(item.get("value") or "").strip(), float(item.get("confidence") or 0.0),
            int(page) if isinstance(page, int) else None)


def _document_finding(rule: str, field_name: str, doc: DocumentSubject, page: int | None, confidence: float,
                      says: str, record: str) -> Finding:
    severity = "error" if confidence >= DOCUMENT_SURE_READ else "warning"
    where = f"{doc.name}, page {page}" if page else doc.name
    then = ("" if severity == "error" else
            " The reading is not sure: look at the document, and correct the record or acknowledge this.")
    return Finding(rule, severity, "", field_name,
                   f"The document ({where}) {says} (read with {confidence:.0%} confidence); the record says "
                   f"{record}.{then}", DOCUMENT_SOURCE, "high" if severity == "error" else "medium")


def document_findings(subject: Subject) -> list[Finding]:
    """Where a current document of the certificate says something else than its record: another
    purchaser name, a state not among its coverage lines, or another form. Each finding names the
    document and gives both values; it is an error when the value was read with at least
    :data:`DOCUMENT_SURE_READ` confidence, else a warning.

    The rules: names are compared by :func:`~ecms_desktop.services.validation.name_match.compare_names`
    (case, punctuation, "&", a leading "The", corporate suffixes such as LLC / Inc. / Co. and spacing do
    not count, and names at least 90 % alike agree, so a one-letter slip in a long name passes; a slip in
    a short name read with low confidence is a warning); a document's state disagrees when it is not
    among the certificate's coverage-line states; its form disagrees when it was identified as a form of
    the rules pack other than the record's ("not a form we know" disagrees with nothing). A value that
    was not read, or a document that was not read at all, gives no finding."""
    out: list[Finding] = []
    record_name = str(subject.values.get("purchaser_name") or "").strip()
    states = {line.state for line in subject.lines}
    for doc in subject.documents:
        name, confidence, page = _read(doc.extraction, "purchaser_name")
        if name and record_name and compare_names(name, record_name).verdict is not NameVerdict.MATCH:
            out.append(_document_finding("document.purchaser_differs", "purchaser_name", doc, page, confidence,
                                         f"names the purchaser {name!r}", repr(record_name)))
        state, confidence, _ = _read(doc.extraction, "state")
        if state and states and state.upper() not in states:
            shown = ", ".join(sorted(states))
            out.append(_document_finding("document.state_differs", "states", doc, None, confidence,
                                         f"is for {state.upper()}", f"{shown} (its coverage lines)"))
        form_code, confidence, _ = _read(doc.extraction, "form_code")
        if form_code and subject.form_code and form_code.casefold() != subject.form_code.strip().casefold():
            out.append(_document_finding("document.form_differs", "form_code", doc, None, confidence,
                                         f"is the form {form_code}", f"{subject.form_code}"))
    return out
