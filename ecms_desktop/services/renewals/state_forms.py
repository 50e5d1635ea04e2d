"""Which form to ask a customer for when it has no certificate for a state yet (a first request).

The form must be one the state accepts (the rules pack's forms of the state, or the multistate SST and MTC
forms where the state takes them) for the reason the customer buys exempt: the reasons of the customer's
certificates (the newest first), else resale - the state's general resale certificate.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from ecms_desktop.models import Certificate
from ecms_desktop.rules import RulesPack
from ecms_desktop.rules.pack import MTC_FORM_CODE, SST_FORM_CODE, RulesPackError
from ecms_desktop.services.core.errors import ValidationError

_GENERAL_REASON = "resale"


def customer_reasons(s: Session, customer_id: int) -> list[str]:
    """The exempt reasons of a customer's certificates, the newest certificate's first, each once."""
    out: list[str] = []
    for reason in s.execute(select(Certificate.exempt_reason).where(Certificate.customer_id == customer_id)
                            .order_by(Certificate.id.desc())).scalars():
        if reason and reason not in out:
            out.append(reason)
    return out


def _accepts(rules: RulesPack, state: str, form_code: str, reason: str) -> bool:
    try:
        return rules.form_acceptance(state, form_code, reason).accepted
    except RulesPackError:
        return False


def first_request_form(rules: RulesPack, state: str, reasons: Sequence[str]) -> tuple[str, str]:
    """(form code, exempt reason) to ask for in ``state``: for the first of ``reasons`` (then resale) the
    state accepts a form for, the state's own form for that reason, else SST F0003, else the MTC form.

    Raises :class:`ValidationError` naming the state when none can be chosen (an unknown state, a state
    without sales tax, or no accepted form for any of the reasons)."""
    try:
        st = rules.state(state)
    except RulesPackError as exc:
        raise ValidationError(f"{state}: {exc}") from None
    if not st.taxes_sales:
        raise ValidationError(f"{st.name} ({st.state}) has no statewide sales tax: there is no exemption "
                              "certificate to ask for.")
    tried = [r for r in reasons if r] + ([_GENERAL_REASON] if _GENERAL_REASON not in reasons else [])
    for reason in tried:
        for form in st.forms:
            if reason in form.exempt_reasons and _accepts(rules, st.state, form.code, reason):
                return form.code, reason
        for code in (SST_FORM_CODE, MTC_FORM_CODE):
            if _accepts(rules, st.state, code, reason):
                return code, reason
    raise ValidationError(f"No form can be chosen for {st.name} ({st.state}): the state accepts none of its forms "
                          f"for the customer's exemption ({', '.join(tried)}). Add the certificate by hand "
                          "(Add certificate) instead.")


def reason_for_form(rules: RulesPack, state: str, form_code: str, reasons: Sequence[str]) -> str:
    """The exempt reason a first request on ``form_code`` asks about: the first of the customer's
    ``reasons`` (then resale) the state accepts the form for, else the form's first reason."""
    for reason in [r for r in reasons if r] + [_GENERAL_REASON]:
        if _accepts(rules, state, form_code, reason):
            return reason
    try:
        return rules.form(form_code).exempt_reasons[0]
    except (RulesPackError, IndexError):
        return _GENERAL_REASON
