"""State-specific validation of certificates, driven by the rules pack, with stored runs as evidence.

For a certificate and each of its coverage lines the engine produces *findings*: a stable rule id
(``form.not_accepted``, ``field.required``, ``permit.format`` ...), a severity (``error`` blocks
approval, ``warning`` needs a reviewer's acknowledgement, ``info``), the field concerned, a message an
accountant understands, the state, and the source and confidence of the rule behind it.

What a state accepts, which fields a form needs, permit formats, expiry policies and multistate-form
restrictions all come from the rules pack (``resources/rules``). This module holds only the few
engine settings that are not state rules (severity of each rule id) and it keeps them as data tables
below, not as code paths; business names are compared by :mod:`~ecms_desktop.services.validation.name_match`,
the one name matcher of the program.

Runs are stored with the certificate (:class:`~ecms_desktop.models.validation.ValidationRun`) and in
the audit trail (``certificate.validated``) with the rules-pack version, in one transaction. When the
rules pack changes, :meth:`ValidationService.stale_certificates` lists the certificates whose result
would change and :meth:`ValidationService.revalidate_stale` re-runs them.

No Qt here: the GUI, the CLI and the other services call it.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session, selectinload
from stdnum.exceptions import InvalidComponent
from stdnum.exceptions import ValidationError as StdnumValidationError
from stdnum.us import ein as us_ein
from stdnum.us import ssn as us_ssn

from ecms_desktop.models import Certificate, CertificateType, utcnow
from ecms_desktop.models.validation import Finding as FindingRow
from ecms_desktop.models.validation import PermitCheck, ValidationRun, WarningAcknowledgement
from ecms_desktop.rules import RulesPack, load_rules_pack
from ecms_desktop.rules.pack import (
    Acceptance,
    AcceptanceTable,
    FormRule,
    RulesPackError,
    UnknownFormError,
    UnknownStateError,
)
from ecms_desktop.services.core import audit, state_digest
from ecms_desktop.services.core.certificate_records import CertificateDetail, CertificateInput
from ecms_desktop.services.core.database import Database
from ecms_desktop.services.core.errors import Cancelled, NotFoundError, Problem, ValidationError
from ecms_desktop.services.core.expiry import compute_expiry
from ecms_desktop.services.core.progress import CancelCheck, Progress
from ecms_desktop.services.core.settings import business_settings
from ecms_desktop.services.validation.name_match import NameVerdict, compare_holder, compare_names

SEVERITY_ORDER = {"error": 0, "warning": 1, "info": 2}

# --------------------------------------------------------------------------- engine data
#
# Rule ids with their default severity and a title for lists and reports. The severity of a few
# rules depends on the rules pack (``permit.format`` is an error only where the pack knows the format
# with high confidence); the table gives the default.
RULES: Mapping[str, tuple[str, str]] = {
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


# --------------------------------------------------------------------------- DTOs


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


@dataclass(frozen=True)
class ValidationResult:
    """A stored validation run of one certificate."""

    certificate_id: int
    certificate_number: str
    run_id: int
    rules_version: str
    as_of: dt.date
    trigger: str
    ran_at: dt.datetime
    ran_by: str
    fingerprint: str
    findings: tuple[Finding, ...]
    #: The reviewer's acknowledgement of this run's warnings, if any: (who, when).
    acknowledged: tuple[str, dt.datetime] | None = None

    @property
    def errors(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity == "error")

    @property
    def warnings(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity == "warning")

    @property
    def infos(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity == "info")

    @property
    def can_approve(self) -> bool:
        """No errors remain (warnings still need an acknowledgement)."""
        return not self.errors

    def to_json(self) -> dict[str, Any]:
        return {"id": self.certificate_id, "certificate_number": self.certificate_number,
                "findings": [f.to_json() for f in self.findings]}


@dataclass
class ManyResult:
    """What :meth:`ValidationService.validate_many` did."""

    validated: int = 0
    with_errors: int = 0
    with_warnings: int = 0
    errors: int = 0
    warnings: int = 0
    infos: int = 0
    results: list[ValidationResult] = field(default_factory=list)


@dataclass(frozen=True)
class StaleCertificate:
    """A certificate whose stored validation no longer stands: validated with an older rules pack,
    never validated, or whose findings would now differ."""

    certificate_id: int
    certificate_number: str
    last_run_id: int | None
    last_rules_version: str | None
    rules_changed: bool
    result_changes: bool
    reason: str


@dataclass(frozen=True)
class ApprovalResult:
    """An approval made through validation: the run it rests on and the acknowledgement, if any."""

    validation: ValidationResult
    acknowledgement_id: int | None
    new_version: int


# --------------------------------------------------------------------------- the subject


@dataclass(frozen=True)
class LineSubject:
    state: str
    state_tax_id: str = ""
    expiry_date: dt.date | None = None
    expiry_known: bool = False


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


#: Values the certificate record itself holds (the seller's are the company's, see :func:`subject_of`).
_VALUE_NAMES = tuple(sorted((set(FIELD_ATTRIBUTES.values()) | {"purchaser_tax_id"}) - set(_SELLER_FIELDS)))


def subject_of(obj: Any, *, customer_name: str | None = None) -> Subject:
    """A :class:`Subject` from a ``CertificateDetail``, a ``CertificateInput`` or an ORM Certificate."""
    if isinstance(obj, Subject):
        return obj
    if isinstance(obj, Certificate):
        name = customer_name if customer_name is not None else (
            obj.customer.legal_name if obj.customer is not None else None)
        lines = tuple(LineSubject(ln.state, ln.state_tax_id or "", ln.expiry_date, True) for ln in obj.lines)
        company = obj.company
        seller = seller_of(company) if company is not None else ("(company)", "(company)")
        return _subject(obj, lines, name, obj.id, obj.certificate_number, seller)
    if isinstance(obj, CertificateDetail):
        data = obj.data
        stored = {ln.state: ln for ln in obj.lines}
        lines = tuple(
            LineSubject(ln.state, ln.state_tax_id,
                        stored[ln.state].expiry_date if ln.state in stored else None, ln.state in stored)
            for ln in data.lines)
        name = customer_name if customer_name is not None else obj.customer_name
        return _subject(data, lines, name, obj.id, data.certificate_number, (obj.company_name, "(company)"))
    if isinstance(obj, CertificateInput):
        lines = tuple(LineSubject(ln.state.strip().upper(), ln.state_tax_id.strip()) for ln in obj.lines)
        return _subject(obj, lines, customer_name, None, obj.certificate_number, ("(company)", "(company)"))
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
             number: str, seller: tuple[str, str]) -> Subject:
    values = {name: getattr(src, name) for name in _VALUE_NAMES}
    values.update(zip(_SELLER_FIELDS, seller, strict=True))
    return Subject(
        form_code=src.form_code, exempt_reason=src.exempt_reason, certificate_type=src.certificate_type,
        values=values, lines=lines,
        customer_name=customer_name, certificate_id=cert_id, certificate_number=number or "",
        expiry_override=src.expiry_override, expiry_override_reason=src.expiry_override_reason or "",
        exempt_percent=src.exempt_percent, exempt_amount=src.exempt_amount, notes=src.notes or "",
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
    permit format does not explain them."""
    digits = re.sub(r"\D", "", number)
    if not _valid_ssn(digits):
        return False
    return bool(_SSN_SHAPE.match(number)) or pattern_matches is not True


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
        out: list[Finding] = []
        try:
            form = self.rules.form(subject.form_code)
        except UnknownFormError as exc:
            out.append(Finding("form.unknown", "error", "", "", f"{exc}. The certificate cannot be checked "
                               "against any state's rules until its form is one the rules pack knows."))
            return sort_findings(out)
        multi = len(subject.lines) > 1
        for line in subject.lines:
            out.extend(self._line(subject, form, line, as_of, multi, permits, permit_max_age_days))
        whole_state = subject.lines[0].state if len(subject.lines) == 1 else ""
        out.extend(self._whole(subject, form, as_of, whole_state))
        return sort_findings(out)

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
            out.extend(self._permit_number(st, line, number))
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

    def _permit_number(self, st: Any, line: LineSubject, number: str) -> list[Finding]:
        out: list[Finding] = []
        fmt = st.permit
        matches = fmt.matches(number)
        ssn_like = looks_like_ssn(number, matches)
        shown = mask_number(number) if ssn_like else number.strip()
        field_name = "purchaser_tax_id"
        if ssn_like:
            out.append(Finding("permit.ssn_like", RULES["permit.ssn_like"][0], st.state, field_name,
                               f"The number given for {st.name} ({shown}) looks like a Social Security "
                               "number, not a sales tax permit; ask the purchaser for its permit or "
                               "registration number and do not keep the SSN on file.", fmt.source, "high"))
        if matches is False:
            severity = "error" if fmt.confidence == "high" else "warning"
            sure = ("" if severity == "error" else
                    f" (the rules pack knows this format with {fmt.confidence} confidence only, so this "
                    "is a warning)")
            out.append(Finding("permit.format", severity, st.state, field_name,
                               f"{shown} does not match the {fmt.label} format: {fmt.display}{sure}.",
                               fmt.source, fmt.confidence))
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
                            "python-stdnum us.ssn", "high")]
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


# --------------------------------------------------------------------------- storage (in a session)


def _latest_permits(session: Session, cert_ids: Sequence[int]) -> dict[int, dict[str, PermitStatus]]:
    out: dict[int, dict[str, PermitStatus]] = {}
    if not cert_ids:
        return out
    rows = session.execute(
        select(PermitCheck.certificate_id, PermitCheck.state, PermitCheck.result, PermitCheck.as_of,
               PermitCheck.method, PermitCheck.source, PermitCheck.name_on_record)
        .where(PermitCheck.certificate_id.in_(cert_ids), PermitCheck.result != "unavailable")
        .order_by(PermitCheck.id))
    for cid, state, result, as_of, method, source, name in rows:
        out.setdefault(cid, {})[state] = PermitStatus(result, as_of, method, source, name or "")
    return out


def permit_max_age(session: Session, company_id: int) -> int:
    """How old a permit check may be, in days, before the engine asks for a new one (a company setting)."""
    return business_settings(session, company_id).permit_check_max_age_days


def store_run(session: Session, cert: Certificate, findings: Sequence[Finding], *, rules_version: str,
              as_of: dt.date, trigger: str, audit_event: bool = True) -> ValidationRun:
    """Store a run with its findings and write ``certificate.validated`` in the caller's transaction."""
    fp = fingerprint(findings)
    run = ValidationRun(
        certificate_id=cert.id, company_id=cert.company_id, rules_version=rules_version, as_of=as_of,
        trigger=trigger, ran_at=utcnow(), ran_by=audit.current_actor(), fingerprint=fp,
        error_count=sum(f.severity == "error" for f in findings),
        warning_count=sum(f.severity == "warning" for f in findings),
        info_count=sum(f.severity == "info" for f in findings),
        findings=[FindingRow(rule=f.rule, severity=f.severity, state=f.state, field=f.field, message=f.message,
                             source=f.source, confidence=f.confidence) for f in findings],
    )
    session.add(run)
    session.flush()
    if audit_event:
        audit.record(session, "certificate.validated", "certificate", cert.id, company_id=cert.company_id,
                     certificate_id=cert.id, after=_audit_payload(run, findings))
    return run


def _audit_payload(run: ValidationRun, findings: Sequence[Finding]) -> dict[str, Any]:
    return audit_payload_of({"id": run.id, "rules_version": run.rules_version, "as_of": run.as_of,
                             "trigger": run.trigger, "error_count": run.error_count,
                             "warning_count": run.warning_count, "info_count": run.info_count,
                             "fingerprint": run.fingerprint}, findings)


def audit_payload_of(run: Mapping[str, Any], findings: Sequence[Any]) -> dict[str, Any]:
    """The ``after`` of a ``certificate.validated`` event, from the run's column values."""
    return {"run_id": run["id"], "rules_version": run["rules_version"], "as_of": run["as_of"],
            "trigger": run["trigger"], "errors": run["error_count"], "warnings": run["warning_count"],
            "infos": run["info_count"], "fingerprint": run["fingerprint"],
            "findings": [f"{f.severity}:{f.rule}:{f.state}:{f.field}" for f in findings]}


def evaluate_certificate(session: Session, rules: RulesPack, cert: Certificate, *, as_of: dt.date,
                         engine: ValidationEngine | None = None) -> list[Finding]:
    """The findings for ``cert`` (an ORM certificate in the caller's transaction) as of a date, with its
    latest permit checks; nothing is stored (see :func:`store_run`). A certificate not stored yet (no
    id; its customer and company set) has no permit checks, and is not flushed by this."""
    eng = engine or ValidationEngine(rules)
    if cert.id is None:
        with session.no_autoflush:
            return eng.evaluate(subject_of(cert), as_of, permits={},
                                permit_max_age_days=permit_max_age(session, cert.company_id))
    session.flush()
    permits = _latest_permits(session, [cert.id]).get(cert.id, {})
    return eng.evaluate(subject_of(cert), as_of, permits=permits,
                        permit_max_age_days=permit_max_age(session, cert.company_id))


def record_validation(session: Session, rules: RulesPack, cert: Certificate, *, as_of: dt.date,
                      trigger: str, engine: ValidationEngine | None = None) -> ValidationRun:
    """HOOK for certificate save / import / intake: validate ``cert`` (an ORM certificate already
    flushed in the caller's transaction) and store the run plus its audit event in that transaction.
    Never raises for findings; errors only block approval."""
    findings = evaluate_certificate(session, rules, cert, as_of=as_of, engine=engine)
    return store_run(session, cert, findings, rules_version=rules.version, as_of=as_of, trigger=trigger)


def approval_gate(session: Session, rules: RulesPack, cert: Certificate, *, as_of: dt.date,
                  acknowledge_warnings: bool, note: str = "") -> dict[str, Any]:
    """HOOK for approval, inside the approving transaction: validate, refuse while errors remain
    (ValidationError listing them), refuse unacknowledged warnings, record the acknowledgement.
    Returns details to put on the ``certificate.approved`` audit event."""
    run = record_validation(session, rules, cert, as_of=as_of, trigger="approval")
    return _gate(session, cert, run, acknowledge_warnings=acknowledge_warnings, note=note)


def _gate(session: Session, cert: Certificate, run: ValidationRun, *, acknowledge_warnings: bool,
          note: str) -> dict[str, Any]:
    errors = [f for f in run.findings if f.severity == "error"]
    warnings = [f for f in run.findings if f.severity == "warning"]
    if errors:
        raise ValidationError(
            f"Certificate {cert.id} cannot be approved: {len(errors)} error{'s' if len(errors) != 1 else ''} "
            "remain. Correct the certificate (or reject it) first.",
            [Problem(f"{f.state + ': ' if f.state else ''}{f.message}", column=f.field or None) for f in errors])
    details: dict[str, Any] = {"validation_run_id": run.id, "rules_version": run.rules_version}
    if warnings:
        if not acknowledge_warnings:
            raise ValidationError(
                f"Certificate {cert.id} has {len(warnings)} warning{'s' if len(warnings) != 1 else ''}; "
                "read them and acknowledge them to approve.",
                [Problem(f"{f.state + ': ' if f.state else ''}{f.message}", column=f.field or None)
                 for f in warnings])
        ack = _acknowledge(session, cert, run, warnings, note, "certificate.warnings_acknowledged", "warnings")
        details["acknowledgement_id"] = ack.id
        details["acknowledged_warnings"] = len(warnings)
    return details


def _acknowledge(session: Session, cert: Certificate, run: ValidationRun, findings: Sequence[Any], note: str,
                 action: str, key: str) -> WarningAcknowledgement:
    """Record who accepted which findings of a run, when and why (``note``), with its audit event."""
    listed = acknowledged_findings(findings, with_severity=key == "findings")
    ack = WarningAcknowledgement(certificate_id=cert.id, run_id=run.id, acknowledged_by=audit.current_actor(),
                                 acknowledged_at=utcnow(), note=note, warnings=listed)
    session.add(ack)
    session.flush()
    audit.record(session, action, "certificate", cert.id, company_id=cert.company_id, certificate_id=cert.id,
                 after={"run_id": run.id, "acknowledgement_id": ack.id, key: ack.warnings, "note": note})
    return ack


def acknowledged_findings(findings: Sequence[Any], *, with_severity: bool) -> list[dict[str, str]]:
    """The findings an acknowledgement lists (with their severity when errors and warnings are accepted
    together)."""
    listed = [{"rule": f.rule, "state": f.state, "field": f.field, "message": f.message} for f in findings]
    if with_severity:  # errors and warnings together: say which is which
        listed = [{**item, "severity": f.severity} for item, f in zip(listed, findings, strict=True)]
    return listed


def accept_findings(session: Session, cert: Certificate, run: ValidationRun, *, reason: str
                    ) -> WarningAcknowledgement | None:
    """Record, in the caller's transaction, that the user accepts ``cert`` as approved despite the
    errors and warnings of ``run`` (an import of certificates approved in an earlier system, with
    ``--accept-findings --reason``): who, when and why, per certificate, as an acknowledgement of the
    run (as the desk's acknowledgement of warnings) and a ``certificate.findings_accepted`` audit
    event listing the findings. Nothing is recorded when the run found neither."""
    if not reason.strip():
        raise ValidationError("Say why the certificate is accepted despite its findings.")
    accepted = [f for f in run.findings if f.severity in ("error", "warning")]
    if not accepted:
        return None
    return _acknowledge(session, cert, run, accepted, reason.strip(), "certificate.findings_accepted", "findings")


def _result(run: ValidationRun, number: str, ack: WarningAcknowledgement | None = None,
            findings: Sequence[Finding] | None = None) -> ValidationResult:
    fs = findings if findings is not None else [
        Finding(r.rule, r.severity, r.state, r.field, r.message, r.source, r.confidence) for r in run.findings]
    return ValidationResult(
        certificate_id=run.certificate_id, certificate_number=number, run_id=run.id,
        rules_version=run.rules_version, as_of=run.as_of, trigger=run.trigger, ran_at=run.ran_at,
        ran_by=run.ran_by, fingerprint=run.fingerprint, findings=tuple(sort_findings(fs)),
        acknowledged=(ack.acknowledged_by, ack.acknowledged_at) if ack is not None else None)


def approval_result(session: Session, cert_id: int, certificate_number: str, new_version: int) -> ApprovalResult:
    """The approval just made of a certificate: its latest approval-triggered run, with the
    acknowledgement of its warnings if there is one."""
    run = session.execute(select(ValidationRun).where(ValidationRun.certificate_id == cert_id,
                                                      ValidationRun.trigger == "approval")
                          .order_by(ValidationRun.id.desc()).limit(1)
                          .options(selectinload(ValidationRun.findings))).scalar_one()
    ack = session.execute(select(WarningAcknowledgement).where(WarningAcknowledgement.run_id == run.id)
                          ).scalar_one_or_none()
    return ApprovalResult(_result(run, certificate_number, ack), ack.id if ack else None, new_version)


# --------------------------------------------------------------------------- service


class ValidationService:
    """Validation use cases for the review desk, the CLI and the other services."""

    def __init__(self, db: Database, rules: RulesPack | None = None) -> None:
        self.db = db
        self.rules = rules or load_rules_pack()
        self.engine = ValidationEngine(self.rules)

    # -- pure

    def evaluate(self, detail_or_input: Any, as_of: dt.date, *, customer_name: str | None = None
                 ) -> list[Finding]:
        """Findings for a ``CertificateDetail`` or an edited ``CertificateInput`` without storing
        anything (the edit form calls this live). ``customer_name`` enables the name comparison
        for an input."""
        return self.engine.evaluate(subject_of(detail_or_input, customer_name=customer_name), as_of)

    # -- stored runs

    def _load(self, session: Session, cert_id: int) -> Certificate:
        cert = session.execute(
            select(Certificate).where(Certificate.id == cert_id)
            .options(selectinload(Certificate.lines), selectinload(Certificate.customer),
                     selectinload(Certificate.company))
        ).scalar_one_or_none()
        if cert is None:
            raise NotFoundError(f"There is no certificate {cert_id}.")
        return cert

    def validate(self, cert_id: int, *, as_of: dt.date, trigger: str = "on_demand") -> ValidationResult:
        """Validate one certificate and store the run (with its audit event) in one transaction."""
        with self.db.transaction() as s:
            cert = self._load(s, cert_id)
            run = record_validation(s, self.rules, cert, as_of=as_of, trigger=trigger, engine=self.engine)
            return _result(run, cert.certificate_number)

    def latest(self, cert_id: int) -> ValidationResult | None:
        """The certificate's last stored run (with its acknowledgement, if any), or None."""
        with self.db.reader() as s:
            run = s.execute(select(ValidationRun).where(ValidationRun.certificate_id == cert_id)
                            .order_by(ValidationRun.id.desc()).limit(1)
                            .options(selectinload(ValidationRun.findings))).scalar_one_or_none()
            if run is None:
                return None
            number = s.execute(select(Certificate.certificate_number).where(Certificate.id == cert_id)).scalar_one()
            ack = s.execute(select(WarningAcknowledgement).where(WarningAcknowledgement.run_id == run.id)
                            .order_by(WarningAcknowledgement.id.desc()).limit(1)).scalar_one_or_none()
            return _result(run, number, ack)

    def history(self, cert_id: int) -> list[ValidationResult]:
        """Every stored run of a certificate, newest first."""
        with self.db.reader() as s:
            runs = s.execute(select(ValidationRun).where(ValidationRun.certificate_id == cert_id)
                             .order_by(ValidationRun.id.desc())
                             .options(selectinload(ValidationRun.findings))).scalars().all()
            number = s.execute(select(Certificate.certificate_number).where(Certificate.id == cert_id)
                               ).scalar_one_or_none() or ""
            acks = {a.run_id: a for a in s.execute(select(WarningAcknowledgement).where(
                WarningAcknowledgement.certificate_id == cert_id)).scalars()}
            return [_result(r, number, acks.get(r.id)) for r in runs]

    def validate_many(self, ids: Sequence[int] | None, *, as_of: dt.date, company_id: int | None = None,
                      trigger: str = "on_demand", progress: Progress | None = None,
                      cancel: CancelCheck | None = None, collect: bool = True,
                      batch_size: int = 500) -> ManyResult:
        """Validate the given certificates (``None``: all, or all of ``company_id``) in batches; each
        batch is one transaction (runs + audit events). Cancelling keeps the finished batches and
        raises :class:`Cancelled`."""
        if ids is None:
            with self.db.reader() as s:
                q = select(Certificate.id).order_by(Certificate.id)
                if company_id is not None:
                    q = q.where(Certificate.company_id == company_id)
                ids = list(s.execute(q).scalars())
        ids = list(ids)
        total = len(ids)
        result = ManyResult()
        for start in range(0, total, batch_size):
            if cancel and cancel():
                raise Cancelled(f"Validation cancelled after {result.validated} of {total} certificates; "
                                "those are stored.")
            if progress:
                progress(start, total, f"Validating certificates {start + 1}-{min(start + batch_size, total)}")
            self._validate_batch(ids[start:start + batch_size], as_of, trigger, result, collect)
        if progress:
            progress(total, total, f"Validated {result.validated} certificates")
        return result

    def _validate_batch(self, batch: Sequence[int], as_of: dt.date, trigger: str, result: ManyResult,
                        collect: bool) -> None:
        with self.db.transaction() as s:
            certs = s.execute(select(Certificate).where(Certificate.id.in_(batch)).order_by(Certificate.id)
                              .options(selectinload(Certificate.lines), selectinload(Certificate.customer),
                     selectinload(Certificate.company))
                              ).scalars().all()
            found = {c.id for c in certs}
            missing = [i for i in batch if i not in found]
            if missing:
                raise NotFoundError(f"There is no certificate {', '.join(map(str, missing[:10]))}.")
            permits = _latest_permits(s, list(found))
            ages: dict[int, int] = {}
            staged: list[tuple[Certificate, dict[str, Any], list[Finding]]] = []  # (cert, run row, findings)
            ran_at, ran_by = utcnow(), audit.current_actor()
            for cert in certs:
                if cert.company_id not in ages:
                    ages[cert.company_id] = permit_max_age(s, cert.company_id)
                findings = self.engine.evaluate(subject_of(cert), as_of, permits=permits.get(cert.id, {}),
                                                permit_max_age_days=ages[cert.company_id])
                run: dict[str, Any] = {"certificate_id": cert.id, "company_id": cert.company_id,
                       "rules_version": self.rules.version, "as_of": as_of, "trigger": trigger, "ran_at": ran_at,
                       "ran_by": ran_by, "fingerprint": fingerprint(findings),
                       "error_count": sum(f.severity == "error" for f in findings),
                       "warning_count": sum(f.severity == "warning" for f in findings),
                       "info_count": sum(f.severity == "info" for f in findings)}
                staged.append((cert, run, findings))
            # Bulk inserts: one statement for the runs (ids returned in order), one for the findings.
            run_ids = list(s.execute(insert(ValidationRun).returning(ValidationRun.id, sort_by_parameter_order=True),
                                     [run for _, run, _ in staged]).scalars())
            rows = [{"run_id": rid, "rule": f.rule, "severity": f.severity, "state": f.state, "field": f.field,
                     "message": f.message, "source": f.source, "confidence": f.confidence}
                    for rid, (_, _, findings) in zip(run_ids, staged, strict=True) for f in findings]
            if rows:
                s.execute(insert(FindingRow), rows)
            state_digest.touch(s, "validation_run", run_ids)
            for rid, (_, run, _) in zip(run_ids, staged, strict=True):
                run["id"] = rid
            audit.record_many(s, [
                audit.NewEvent("certificate.validated", "certificate", cert.id,
                               after=_audit_payload(ValidationRun(**run), findings), company_id=cert.company_id,
                               certificate_id=cert.id)
                for cert, run, findings in staged])
            for cert, run, findings in staged:
                result.validated += 1
                n_errors, n_warnings = run["error_count"], run["warning_count"]
                result.errors += n_errors
                result.warnings += n_warnings
                result.infos += run["info_count"]
                result.with_errors += int(n_errors > 0)
                result.with_warnings += int(n_warnings > 0)
                if collect:
                    result.results.append(_result(ValidationRun(**run), cert.certificate_number, findings=findings))

    # -- rules-pack changes

    def stale_certificates(self, as_of: dt.date, *, company_id: int | None = None,
                           progress: Progress | None = None, cancel: CancelCheck | None = None,
                           batch_size: int = 1000) -> list[StaleCertificate]:
        """Certificates whose last run used another rules-pack version, that were never validated, or
        whose findings as of ``as_of`` would differ from the stored ones (re-evaluated, nothing stored)."""
        with self.db.reader() as s:
            latest = (select(ValidationRun.certificate_id, func.max(ValidationRun.id).label("run_id"))
                      .group_by(ValidationRun.certificate_id).subquery())
            q = (select(Certificate.id, ValidationRun.id, ValidationRun.rules_version, ValidationRun.fingerprint)
                 .outerjoin(latest, latest.c.certificate_id == Certificate.id)
                 .outerjoin(ValidationRun, ValidationRun.id == latest.c.run_id).order_by(Certificate.id))
            if company_id is not None:
                q = q.where(Certificate.company_id == company_id)
            last: list[tuple[int, int | None, str | None, str | None]] = [
                (r[0], r[1], r[2], r[3]) for r in s.execute(q)]
        out: list[StaleCertificate] = []
        total = len(last)
        for start in range(0, total, batch_size):
            if cancel and cancel():
                raise Cancelled("Stopped listing certificates to re-validate.")
            if progress:
                progress(start, total, "Comparing stored validation results")
            chunk = last[start:start + batch_size]
            with self.db.reader() as s:
                certs = {c.id: c for c in s.execute(
                    select(Certificate).where(Certificate.id.in_([r[0] for r in chunk]))
                    .options(selectinload(Certificate.lines), selectinload(Certificate.customer),
                     selectinload(Certificate.company))).scalars()}
                permits = _latest_permits(s, list(certs))
                ages = {cid: permit_max_age(s, cid) for cid in {c.company_id for c in certs.values()}}
                for cid, run_id, version, fp in chunk:
                    cert = certs[cid]
                    now = fingerprint(self.engine.evaluate(subject_of(cert), as_of, permits=permits.get(cid, {}),
                                                           permit_max_age_days=ages[cert.company_id]))
                    if run_id is None:
                        out.append(StaleCertificate(cid, cert.certificate_number, None, None, False, True,
                                                    "never validated"))
                        continue
                    rules_changed = version != self.rules.version
                    changes = now != fp
                    if not rules_changed and not changes:
                        continue
                    why = []
                    if rules_changed:
                        why.append(f"validated with rules pack {version}, now {self.rules.version}")
                    why.append("the result would change" if changes else "the result would stay the same")
                    out.append(StaleCertificate(cid, cert.certificate_number, run_id, version, rules_changed,
                                                changes, "; ".join(why)))
        if progress:
            progress(total, total, f"{len(out)} certificates to re-validate")
        return out

    def revalidate_stale(self, as_of: dt.date, *, company_id: int | None = None, only_changed: bool = False,
                         progress: Progress | None = None, cancel: CancelCheck | None = None) -> ManyResult:
        """Re-validate the certificates :meth:`stale_certificates` lists (only those whose result
        changes when ``only_changed``), storing new runs with trigger ``revalidation``."""
        stale = self.stale_certificates(as_of, company_id=company_id, cancel=cancel)
        ids = [x.certificate_id for x in stale if x.result_changes or not only_changed]
        return self.validate_many(ids, as_of=as_of, trigger="revalidation", progress=progress, cancel=cancel,
                                  collect=False)

