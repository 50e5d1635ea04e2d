"""State-issued documents, purchaser documents and reasons a state grants no exemption for, in the rules pack.

Every state with a sales tax must say, for nonprofit and government purchases, either which document proves
the exemption (a form, a document the state issues, or the purchaser's own purchase record) or that it grants
no general exemption for that reason. The expected documents below come from the state sources named beside
each case, not from the pack.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ecms_desktop.rules import RulesPackError, load_rules_pack
from tests.helpers.rules_pack import corrupt_copy

PACK = load_rules_pack()
TAXING = sorted(code for code, st in PACK.states.items() if st.has_sales_tax)


def accepted_documents(state: str, reason: str) -> set[str]:
    return {code for code in PACK.forms if PACK.form_acceptance(state, code, reason).accepted}


@pytest.mark.parametrize("reason", ["nonprofit", "government"])
@pytest.mark.parametrize("state", TAXING)
def test_every_taxing_state_documents_nonprofit_and_government_purchases(state: str, reason: str) -> None:
    """Rule: a certificate claiming the reason can be approved in the state, or the pack says (with its source)
    that the state grants no general exemption for it. Before the state-issued documents were modelled, 12
    states (CA, DC, HI, IL, LA, MD, ME, MS, NM, NY for government, SC, TN) had neither."""
    none = PACK.state(state).no_exemption_for(reason)
    documents = accepted_documents(state, reason)
    assert documents or none is not None, f"{state} {reason}: no accepted document and no 'no exemption' rule"
    if none is not None:
        assert not documents and none.source.strip() and none.confidence


#: (state, reason) -> the document the state's own source names, and that source.
STATE_DOCUMENTS = [
    ("IL", "nonprofit", "IL-E-NUMBER", "state_issued", "IDOR Q&A 183: exempt organisations get an (E) number"),
    ("IL", "government", "IL-E-NUMBER", "state_issued", "IDOR Q&A 183: 'a government organization' applies on STAX-1"),
    ("MD", "nonprofit", "MD-EXEMPTION-CARD", "state_issued", "Comptroller: wallet-sized card, eight-digit number"),
    ("MD", "government", "MD-EXEMPTION-CARD", "state_issued", "Comptroller: government certificates, red ink"),
    ("TN", "nonprofit", "TN-EXEMPTION-CERTIFICATE", "state_issued", "TDOR Certificate of Exemption, T.C.A. 67-6-322"),
    ("NM", "nonprofit", "NM-TYPE-9-NTTC", "state_issued", "TRD Type 9 NTTC: 501(c)(3) organisations (7-9-60)"),
    ("NM", "government", "NM-TYPE-9-NTTC", "state_issued", "TRD Type 9 NTTC: governmental agencies (7-9-54)"),
    ("ME", "nonprofit", "ME-EXEMPTION-CERTIFICATE", "state_issued", "MRS Rule 302 s.2: numbered certificate"),
    ("DC", "nonprofit", "DC-EXEMPTION-CERTIFICATE", "state_issued", "OTR: certificate of exemption, expiry"),
    ("FL", "nonprofit", "FL-DR-14", "state_issued", "FL DOR DR-14 Consumer's Certificate of Exemption"),
    ("LA", "nonprofit", "LA-NONPROFIT-EXEMPTION-CERTIFICATE", "state_issued",
     "La. R.S. 47:305.16(B) annual certificate"),
    ("ME", "government", "ME-GOVERNMENT-PURCHASE", "purchaser_document", "36 M.R.S. 1760(2); Rule 302 s.2"),
    ("DC", "government", "DC-GOVERNMENT-RECORD", "purchaser_document", "OTR: record of sale names the agency"),
    ("NY", "government", "NY-GOVERNMENT-PURCHASE-ORDER", "purchaser_document",
     "TB-ST-700; tax.ny.gov exempt.htm"),
    ("CA", "government", "CA-US-GOVERNMENT-PURCHASE", "purchaser_document", "R&TC 6381; Reg. 1614"),
    ("HI", "government", "HI-US-GOVERNMENT-SALE", "purchaser_document", "HRS 237-25(a)(3)"),
    ("LA", "government", "LA-GOVERNMENT-PURCHASE", "purchaser_document", "billed and paid directly by the government"),
    ("MS", "government", "MS-GOVERNMENT-PURCHASE", "purchaser_document", "35 Miss. Code R. 4-03-06-101"),
    ("SC", "government", "SC-US-GOVERNMENT-PURCHASE", "purchaser_document", "S.C. Code 12-36-2120(1); Reg. 117-304"),
]


@pytest.mark.parametrize(("state", "reason", "code", "kind", "source"), STATE_DOCUMENTS)
def test_the_states_own_document_is_accepted_for_the_reason(state: str, reason: str, code: str, kind: str,
                                                             source: str) -> None:
    form = PACK.form(code)
    assert form.kind == kind, source
    assert PACK.form_acceptance(state, code, reason).accepted, source
    if kind == "state_issued":
        doc = form.state_document
        assert doc is not None and doc.issued_by and doc.obtain and doc.source and doc.confidence, code
        assert doc.obtain_url is None or doc.obtain_url.startswith("http"), code
    else:
        assert form.state_document is None


#: Rule: the state grants no general exemption for nonprofit organisations (source beside each).
NO_NONPROFIT_EXEMPTION = [
    ("CA", "CDTFA nonprofit industry topics / Publication 18: no general exemption"),
    ("SC", "SC DOR manual ch. 9 via SCANPO: no blanket sales tax exemption for nonprofits"),
    ("MS", "Miss. Code 27-65-111: named institutions only"),
    ("HI", "GET falls on the seller's gross income; HRS 237-23(a)(4) exempts the charity's own income"),
]


@pytest.mark.parametrize(("state", "source"), NO_NONPROFIT_EXEMPTION)
def test_a_state_without_a_nonprofit_exemption_refuses_every_form_saying_why(state: str, source: str) -> None:
    for code in ("SST-F0003", "MTC-UNIFORM", *(f.code for f in PACK.state(state).forms)):
        answer = PACK.form_acceptance(state, code, "nonprofit")
        assert not answer.accepted and answer.rule == "state.no_exemption", (state, code, source)
        assert "no general exemption" in answer.message


#: Rule: these resale documents are issued by the state, not filled in by the purchaser
#: (state-rules-notes.md section 5 and each form's source).
STATE_ISSUED_RESALE = ["FL-DR-13", "NM-TYPE-2-NTTC", "NM-TYPE-5-NTTC", "TN-RESALE", "WA-RESELLER-PERMIT", "DC-OTR-368",
                       "LA-R-1064", "ME-RESALE"]


@pytest.mark.parametrize("code", STATE_ISSUED_RESALE)
def test_state_issued_resale_documents_say_where_to_get_them(code: str) -> None:
    form = PACK.form(code)
    assert form.is_state_issued and form.state_document is not None
    assert form.state_document.obtain and form.state_document.verify


def test_florida_and_maryland_document_numbers_follow_the_states_format() -> None:
    # FL DOR: the annual resale certificate number has 13 digits; MD Comptroller: eight-digit exemption number.
    assert PACK.form("FL-DR-13").state_document.number.matches("1234567890123") is True
    assert PACK.form("MD-EXEMPTION-CARD").state_document.number.matches("12345678") is True
    assert PACK.form("MD-EXEMPTION-CARD").state_document.number.matches("1234567") is False


# --------------------------------------------------------------------------- the loader's checks


def _form(data: dict[str, Any], code: str) -> dict[str, Any]:
    return next(f for f in data["forms"] if f["code"] == code)


def test_a_state_issued_form_without_its_document_is_refused(tmp_path: Path) -> None:
    root = corrupt_copy(tmp_path, "IL", lambda d: _form(d, "IL-E-NUMBER").pop("state_document"))
    with pytest.raises(RulesPackError, match=r"states/IL\.json: \$\.forms\[1\]\.state_document: a form of kind "
                                             r"'state_issued' needs a 'state_document'"):
        load_rules_pack(root)


def test_an_obsolete_form_replaced_by_an_unknown_form_is_refused(tmp_path: Path) -> None:
    root = corrupt_copy(tmp_path, "CO", lambda d: _form(d, "CO-DR-0563")["obsolete"].update(replaced_by=["CO-DR-9999"]))
    with pytest.raises(RulesPackError, match=r"states/CO\.json: form 'CO-DR-0563': \$\.obsolete\.replaced_by: "
                                             r"unknown form 'CO-DR-9999'"):
        load_rules_pack(root)


def test_no_exemption_for_a_reason_one_of_the_states_forms_covers_is_refused(tmp_path: Path) -> None:
    def mutate(d: dict[str, Any]) -> None:
        d["no_exemption"] = [{"reason": "government", "text": "x", "source": "y", "confidence": "low"}]

    root = corrupt_copy(tmp_path, "MS", mutate)
    with pytest.raises(RulesPackError, match=r"states/MS\.json: \$\.no_exemption\[0\]: the state has no exemption "
                                             r"for 'government' but one of its forms is for it"):
        load_rules_pack(root)
