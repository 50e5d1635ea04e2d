"""Tests for the state rules pack (resources/rules) and its loader (ecms_desktop.rules)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from ecms_desktop.rules import (
    RulesPack,
    RulesPackError,
    UnknownFormError,
    UnknownStateError,
    load_rules_pack,
    normalize_form_code,
)
from tests.helpers.rules_pack import RULES_DIR, corrupt_copy

STATE_FILES = sorted((RULES_DIR / "states").glob("*.json"))
FORM_FILES = sorted((RULES_DIR / "forms").glob("*.json"))

# fmt: off
ALL_51 = {
    "AK", "AL", "AR", "AZ", "CA", "CO", "CT", "DC", "DE", "FL", "GA", "HI", "IA", "ID", "IL", "IN", "KS",
    "KY", "LA", "MA", "MD", "ME", "MI", "MN", "MO", "MS", "MT", "NC", "ND", "NE", "NH", "NJ", "NM", "NV",
    "NY", "OH", "OK", "OR", "PA", "RI", "SC", "SD", "TN", "TX", "UT", "VA", "VT", "WA", "WI", "WV", "WY",
}
# state-rules-notes.md s.2: the 23 full members, and TN as the only associate member.
SST_FULL = {
    "AR", "GA", "IN", "IA", "KS", "KY", "MI", "MN", "NE", "NV", "NJ", "NC",
    "ND", "OH", "OK", "RI", "SD", "UT", "VT", "WA", "WV", "WI", "WY",
}
# fmt: on
NO_SALES_TAX = {"AK", "DE", "MT", "NH", "OR"}
REASONS = ["resale", "government", "nonprofit", "religious", "educational"]
REASONS += ["manufacturing", "agricultural", "direct_pay", "other"]


@pytest.fixture(scope="module")
def pack() -> RulesPack:
    return load_rules_pack()


def _validator(name: str) -> Any:
    schema = json.loads((RULES_DIR / "schema" / name).read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())


def _errors(validator: Any, path: Path) -> list[str]:
    data = json.loads(path.read_text(encoding="utf-8"))
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(data)]


# --------------------------------------------------------------------------- schema


def test_pack_json_validates_against_schema() -> None:
    assert _errors(_validator("pack.schema.json"), RULES_DIR / "pack.json") == []


@pytest.mark.parametrize("path", STATE_FILES, ids=lambda p: p.stem)
def test_state_file_validates_against_schema(path: Path) -> None:
    assert _errors(_validator("state.schema.json"), path) == []


@pytest.mark.parametrize("path", FORM_FILES, ids=lambda p: p.stem)
def test_form_file_validates_against_schema(path: Path) -> None:
    assert _errors(_validator("form.schema.json"), path) == []


def test_schema_rejects_a_bad_state_document() -> None:
    data = json.loads((RULES_DIR / "states" / "TX.json").read_text(encoding="utf-8"))
    data["mtc"]["acceptance"] = "maybe"
    data["forms"][0]["required_fields"].append("favourite_colour")
    messages = [e.message for e in _validator("state.schema.json").iter_errors(data)]
    assert any("'maybe'" in m for m in messages)
    assert any("'favourite_colour'" in m for m in messages)


def test_schema_enums_match_pack_vocabulary() -> None:
    meta = json.loads((RULES_DIR / "pack.json").read_text(encoding="utf-8"))
    fields = [f["name"] for f in meta["fields"]]
    reasons = [r["code"] for r in meta["exempt_reasons"]]
    assert reasons == REASONS
    for name in ("state.schema.json", "form.schema.json"):
        defs = json.loads((RULES_DIR / "schema" / name).read_text(encoding="utf-8"))["$defs"]
        assert defs["field"]["enum"] == fields
        assert defs["reason"]["enum"] == reasons


# --------------------------------------------------------------------------- content


def test_pack_metadata(pack: RulesPack) -> None:
    assert pack.version == "2026.12.1"
    assert pack.reason_codes == tuple(REASONS)
    assert "purchaser_tax_id" in pack.field_names and "home_state" in pack.field_names
    assert len(pack.field_names) == 19


def test_all_51_jurisdictions_present(pack: RulesPack) -> None:
    assert set(pack.states) == ALL_51
    assert {p.stem for p in STATE_FILES} == ALL_51
    assert pack.state("dc").name == "District of Columbia"


def test_sst_membership_matches_the_notes(pack: RulesPack) -> None:
    full = {s for s, r in pack.states.items() if r.sst.membership == "full"}
    associate = {s for s, r in pack.states.items() if r.sst.membership == "associate"}
    assert full == SST_FULL
    assert len(full) == 23
    assert associate == {"TN"}
    assert pack.state("TN").sst.resale_only is True
    assert not any(r.sst.resale_only for s, r in pack.states.items() if s != "TN")
    # SST F0003 belongs to the states that accept it: 23 full members + TN.
    assert set(pack.form("SST-F0003").states) == SST_FULL | {"TN"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("tx 01-339", "TX-01-339"),
        (" mtc uniform", "MTC-UNIFORM"),
        ("sst f0003", "SST-F0003"),
        ("ny_st--120", "NY-ST-120"),
        ("  ca   cdtfa_230 ", "CA-CDTFA-230"),
        ("NY-ST-120.1", "NY-ST-120.1"),
    ],
)
def test_normalize_form_code(text: str, expected: str) -> None:
    assert normalize_form_code(text) == expected


def test_form_lookup_accepts_unnormalised_codes(pack: RulesPack) -> None:
    assert pack.form("tx 01 339").code == "TX-01-339"
    assert pack.form("fl_dr_13").states == ("FL",)
    with pytest.raises(UnknownFormError) as info:
        pack.form("TX-01-33")
    assert "TX-01-339" in str(info.value)
    assert isinstance(info.value, KeyError) and isinstance(info.value, RulesPackError)
    with pytest.raises(UnknownStateError):
        pack.state("ZZ")


def test_texas_refuses_sst_for_resale(pack: RulesPack) -> None:
    verdict = pack.form_acceptance("TX", "SST-F0003", "resale")
    assert verdict.accepted is False
    assert "34 TAC 3.285" in verdict.message
    assert pack.form_acceptance("TX", "MTC-UNIFORM", "resale").accepted is True
    assert pack.form_acceptance("tx", "tx 01-339", "resale").accepted is True
    assert pack.state("TX").permit.matches("1-23-4567890-1") is True
    assert pack.state("TX").permit.matches("1234567890") is False


def test_new_york_accepts_neither_sst_nor_mtc(pack: RulesPack) -> None:
    sst = pack.form_acceptance("NY", "SST-F0003", "resale")
    mtc = pack.form_acceptance("NY", "MTC-UNIFORM", "resale")
    assert not sst.accepted and not mtc.accepted
    assert "TB-ST-240" in sst.message
    assert pack.state("NY").mtc.acceptance == "no"
    assert pack.form_acceptance("NY", "NY-ST-120", "resale").accepted is True
    assert pack.form_acceptance("NY", "TX-01-339", "resale").accepted is False


def test_florida_mtc_requires_the_florida_number(pack: RulesPack) -> None:
    verdict = pack.form_acceptance("FL", "MTC-UNIFORM", "resale")
    assert verdict.accepted is True
    assert verdict.requires_fields == ("purchaser_tax_id",)
    assert "Florida Annual Resale Certificate number" in verdict.restriction
    # The MTC form is resale only, everywhere.
    assert pack.form_acceptance("FL", "MTC-UNIFORM", "nonprofit").accepted is False


def test_florida_dr13_expires_end_of_year(pack: RulesPack) -> None:
    dr13 = pack.form("FL-DR-13")
    assert dr13.expiry is not None
    assert (dr13.expiry.kind, dr13.expiry.years) == ("end_of_year", 1)
    assert "signature" not in dr13.required_fields
    assert pack.expiry_rule("FL", "FL-DR-13", "resale").kind == "end_of_year"
    assert pack.expiry_rule("FL", "FL-DR-14", "nonprofit").years == 5


@pytest.mark.parametrize(
    ("state", "kind", "years", "basis"),
    [
        ("CA", "none", None, "regulation"),
        ("NY", "years", 5, "practice"),
        ("KY", "years", 4, "recommendation"),
        ("CT", "years", 3, "regulation"),
        ("FL", "end_of_year", 1, "law"),
        ("DC", "years", 1, "regulation"),
        ("IL", "years", 3, "recommendation"),
        ("MI", "years", 4, "law"),
    ],
)
def test_resale_expiry_rules(pack: RulesPack, state: str, kind: str, years: int | None, basis: str) -> None:
    rule = pack.state(state).expiry_resale
    assert (rule.kind, rule.years, rule.basis) == (kind, years, basis)


def test_expiry_texts_are_honest_about_non_legal_periods(pack: RulesPack) -> None:
    ky = pack.state("KY").expiry_resale
    assert "recommended" in ky.text and "NOT a legal expiry" in ky.text
    ny = pack.state("NY").expiry_resale
    assert "no fixed expiration" in ny.text
    assert ky.confidence == "low" and ny.confidence == "low"


def test_multistate_form_without_own_expiry_uses_state_rule(pack: RulesPack) -> None:
    assert pack.form("SST-F0003").expiry is None
    assert pack.expiry_rule("MI", "SST-F0003", "resale") == pack.state("MI").expiry_resale
    assert pack.expiry_rule("CT", "MTC-UNIFORM", "resale").years == 3


@pytest.mark.parametrize("state", sorted(NO_SALES_TAX - {"AK"}))
def test_no_sales_tax_states(pack: RulesPack, state: str) -> None:
    rule = pack.state(state)
    assert rule.has_sales_tax is False
    assert rule.expiry_resale.kind == "none" and rule.expiry_resale.basis == "not_applicable"
    verdict = pack.form_acceptance(state, "MTC-UNIFORM", "resale")
    assert verdict.accepted is False
    assert verdict.message.startswith(f"{state} has no statewide sales tax")


def test_alaska_arsstc_nuance(pack: RulesPack) -> None:
    # Alaska has no statewide sales tax but ARSSTC members' local taxes: the MTC form listed as AK/ARSSTC is
    # accepted for resale with the ARSSTC certificate number (MTC note 1; state-rules.csv), not "nothing to accept".
    verdict = pack.form_acceptance("AK", "MTC-UNIFORM", "resale")
    assert verdict.accepted is True and verdict.no_sales_tax is False
    assert "ARSSTC" in verdict.message
    assert "purchaser_tax_id" in verdict.requires_fields
    assert set(s for s, r in pack.states.items() if not r.has_sales_tax) == NO_SALES_TAX


def test_tennessee_accepts_sst_for_resale_only(pack: RulesPack) -> None:
    assert pack.form_acceptance("TN", "SST-F0003", "resale").accepted is True
    assert pack.form_acceptance("TN", "SST-F0003", "government").accepted is False
    assert pack.form_acceptance("WI", "SST-F0003", "government").accepted is True
    assert pack.form_acceptance("CA", "SST-F0003", "resale").accepted is False


def test_own_form_reasons_are_enforced(pack: RulesPack) -> None:
    verdict = pack.form_acceptance("CA", "CA-CDTFA-230", "government")
    assert verdict.accepted is False and "resale" in verdict.message
    assert pack.form_acceptance("PA", "PA-REV-1220", "manufacturing").accepted is True


def test_permit_patterns_only_where_the_reference_gives_a_format(pack: RulesPack) -> None:
    for code, rule in pack.states.items():
        if rule.confidence["permit_format"] in ("unverified", "n/a"):
            assert rule.permit.pattern is None, code
            assert rule.permit.matches("123") is None
    assert pack.state("PA").permit.confidence == "high"
    assert pack.state("PA").permit.matches("1234-5678") is True
    assert pack.state("CA").permit.confidence == "low"


def test_pdf_field_maps_use_known_fields(pack: RulesPack) -> None:
    tx = pack.form("TX-01-339").pdf_field_map
    assert tx["Permit number"] == "purchaser_tax_id"
    assert tx["Exemption reason"] == "exemption_detail"
    assert pack.form("NY-ST-120").pdf_field_map["print signer's name"] == "signer_name"
    assert pack.form("PA-REV-1220").pdf_field_map["EIN (2)"] == "purchaser_ein"
    # MI 3372: AcroForm names are swapped relative to the printed labels.
    assert pack.form("MI-3372").pdf_field_map["use_registration_no"] == "purchaser_tax_id"
    for form in pack.forms.values():
        assert set(form.pdf_field_map.values()) <= set(pack.field_names), form.code


def test_sst_reason_letters(pack: RulesPack) -> None:
    letters = pack.form("SST-F0003").reason_letters
    assert letters["G"] == "resale"
    assert letters["J"] == "direct_pay"
    assert sorted(letters) == list("ABCDEFGHIJKLM")
    assert pack.form("MTC-UNIFORM").exempt_reasons == ("resale",)


def test_every_rule_has_source_and_confidence(pack: RulesPack) -> None:
    levels = {"high", "medium", "low", "unverified", "n/a"}
    for code, st in pack.states.items():
        rules: list[Any] = [st.sst, st.mtc, st.expiry_resale, st.expiry_exemption, st.permit, st.good_faith]
        rules += list(st.forms) + list(st.refused_forms)
        for rule in rules:
            assert rule.source.strip(), (code, rule)
            assert rule.confidence in levels, (code, rule)
        assert st.sources and all(s.strip() for s in st.sources)
        assert st.confidence["overall"] in levels
    for form in pack.forms.values():
        assert form.source.strip() and form.confidence in levels


def test_sources_are_verbatim_from_the_reference(pack: RulesPack) -> None:
    tx = pack.state("TX")
    assert tx.sources[0].startswith("major-robertson/eregister_v2:database/data/resale_states/tx.php")
    assert "https://www.law.cornell.edu/regulations/texas/34-Tex-Admin-Code-SS-3-285" in tx.sources


# --------------------------------------------------------------------------- strict loading


def test_loader_accepts_a_clean_copy(tmp_path: Path) -> None:
    root = tmp_path / "rules"
    shutil.copytree(RULES_DIR, root)
    assert load_rules_pack(root).state("TX").permit.pattern == "^[0-9]{11}$"
    assert load_rules_pack(root / "pack.json").version == "2026.12.1"


def test_loader_rejects_unknown_key(tmp_path: Path) -> None:
    root = corrupt_copy(tmp_path, "TX", lambda d: d["mtc"].update(surprise=True))
    with pytest.raises(RulesPackError, match=r"states/TX\.json: \$\.mtc\.surprise: unknown key"):
        load_rules_pack(root)


def test_loader_rejects_bad_enum_value(tmp_path: Path) -> None:
    root = corrupt_copy(tmp_path, "FL", lambda d: d["expiry"]["resale"].update(kind="decade"))
    with pytest.raises(RulesPackError, match=r"states/FL\.json: \$\.expiry\.resale\.kind: 'decade'"):
        load_rules_pack(root)


def test_loader_rejects_a_month_that_is_not_one(tmp_path: Path) -> None:
    root = corrupt_copy(tmp_path, "ME", lambda d: d["forms"][0]["expiry"]["by_issue_month"][1]["months"].append(13))
    with pytest.raises(RulesPackError,
                       match=r"states/ME\.json: \$\.forms\[0\]\.expiry\.by_issue_month\[1\]\.months\[3\]: "
                             r"expected at most 12|states/ME\.json: \$\.forms\[0\]\.expiry\.by_issue_month"):
        load_rules_pack(root)


def test_loader_rejects_unknown_field_name(tmp_path: Path) -> None:
    root = corrupt_copy(tmp_path, "NY", lambda d: d["forms"][0]["required_fields"].append("shoe_size"))
    with pytest.raises(RulesPackError) as info:
        load_rules_pack(root)
    message = str(info.value)
    assert "states/NY.json" in message and "$.forms[0].required_fields[" in message
    assert "shoe_size" in message


def test_loader_rejects_unknown_reason_code(tmp_path: Path) -> None:
    root = corrupt_copy(tmp_path, "CA", lambda d: d["mtc"]["allowed_reasons"].append("charity"))
    with pytest.raises(RulesPackError, match=r"states/CA\.json: \$\.mtc\.allowed_reasons\[1\]"):
        load_rules_pack(root)


def test_loader_rejects_missing_key_and_bad_json(tmp_path: Path) -> None:
    root = corrupt_copy(tmp_path, "KY", lambda d: d["permit"].pop("pattern"))
    with pytest.raises(RulesPackError, match=r"states/KY\.json: \$\.permit\.pattern: missing"):
        load_rules_pack(root)
    (root / "forms" / "SST-F0003.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(RulesPackError, match=r"(states/KY|forms/SST-F0003)\.json"):
        load_rules_pack(root)


def test_loader_does_not_import_qt_and_jsonschema_only_when_a_pack_is_loaded() -> None:
    code = (
        "import sys, ecms_desktop.rules as r; before = 'jsonschema' in sys.modules; r.load_rules_pack(); "
        "print(before, 'PySide6' in sys.modules, 'jsonschema' in sys.modules)"
    )
    repo = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", code], cwd=repo, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False", "True"]


def _corrupt(tmp_path: Path, relative: str, mutate: Any) -> Path:
    root = tmp_path / "rules"
    shutil.copytree(RULES_DIR, root)
    path = root / relative
    data = json.loads(path.read_text(encoding="utf-8"))
    mutate(data)
    path.write_text(json.dumps(data), encoding="utf-8")
    return root


def _form_expiry(d: dict[str, Any]) -> None:
    d["forms"][0]["expiry"] = {"kind": "decade", "years": 1, "basis": "law", "text": "t", "source": "s",
                               "confidence": "high"}


@pytest.mark.parametrize(("relative", "mutate", "expected"), [
    ("states/TX.json", lambda d: d.update(name=12), r"states/TX\.json: \$\.name: expected a string, got 12$"),
    ("states/TX.json", lambda d: d.update(name="   "), r"states/TX\.json: \$\.name: must not be empty$"),
    ("states/TX.json", lambda d: d["sources"].clear(), r"\$\.sources: must list at least one entry$"),
    ("states/TX.json", lambda d: d["mtc"].update(acceptance="no", allowed_reasons=["resale"]),
     r"\$\.mtc\.allowed_reasons: must be empty when acceptance is 'no' or 'n/a'$"),
    ("states/TX.json", lambda d: d["mtc"].update(allowed_reasons=[]),
     r"\$\.mtc\.allowed_reasons: must list at least one entry unless acceptance is 'no' or 'n/a'$"),
    ("states/TX.json", lambda d: d["expiry"]["resale"].update(kind="none", years=4),
     r"\$\.expiry\.resale\.years: expected null when kind is 'none', got 4$"),
    ("states/TX.json", lambda d: d["expiry"]["resale"].update(kind="years", years=0),
     r"\$\.expiry\.resale\.years: expected at least 1, got 0$"),
    ("states/TX.json", lambda d: d["permit"].update(pattern="[0-9"),
     r"\$\.permit\.pattern: invalid regular expression: "),
    ("states/TX.json", lambda d: d["mtc"]["allowed_reasons"].append("resale"),
     r"\$\.mtc\.allowed_reasons: has duplicate"),
    ("states/TX.json", lambda d: d.update(state="OK"), r"\$\.state: 'OK' does not match the file name 'TX'$"),
    ("states/PA.json", lambda d: d["forms"][0]["required_fields_by_reason"].update(charity=[]),
     r"\$\.forms\[0\]\.required_fields_by_reason\.charity: unknown exempt reason code 'charity'$"),
    ("states/TX.json", _form_expiry, r"\$\.forms\[0\]\.expiry\.kind: 'decade' is not one of none, years, end_of_year$"),
    ("forms/SST-F0003.json", lambda d: d["pdf_field_map"].update({"Box 1": "shoe_size"}),
     r"forms/SST-F0003\.json: \$\.pdf_field_map\['Box 1'\]: unknown certificate field name 'shoe_size'$"),
    ("states/KY.json", lambda d: d["forms"][0].update(expiry="never"),
     r"\$\.forms\[0\]\.expiry: expected null or an object, got \"never\"$"),
    ("states/KY.json", lambda d: d["forms"][0].update(code="ky 51a105"),
     r"\$\.forms\[0\]\.code: 'ky 51a105' does not match the pattern \^\[A-Z\]\{2\}-"),
    ("states/KY.json", lambda d: d["forms"][0].update(code="TX-51A105"),
     r"\$\.forms\[0\]\.code: 'TX-51A105' must start with 'KY-'$"),
    ("states/TX.json", lambda d: d.update(good_faith=[]), r"\$\.good_faith: expected an object, got a list$"),
    ("pack.json", lambda d: d.update(version="2026-11"),
     r"pack\.json: \$\.version: '2026-11' is not of the form YYYY\.MM\.N$"),
])
def test_a_file_that_breaks_its_schema_is_named_with_the_path_and_the_problem_in_words(
        tmp_path: Path, relative: str, mutate: Any, expected: str) -> None:
    with pytest.raises(RulesPackError, match=expected):
        load_rules_pack(_corrupt(tmp_path, relative, mutate))


# --------------------------------------------------------------------------- identification data


def test_every_form_has_identification_data_with_sources() -> None:
    pack = load_rules_pack()
    for code, form in pack.forms.items():
        ident = form.identification
        assert ident is not None, code
        # Un-numbered "forms" that are no printed form (MD, MS, OK: a letter or a copy of the permit) have
        # nothing to recognise them by; every numbered form has at least its number.
        assert ident.titles or ident.numbers or not form.number, f"{code}: nothing to recognise it by"
        for item in (*ident.titles, *ident.numbers, *ident.revisions):
            assert item.source.strip(), code
        for pattern in (*ident.numbers, *ident.revisions):
            re.compile(pattern.pattern)


def test_label_anchors_name_a_field_with_labels_of_the_same_form() -> None:
    pack = load_rules_pack()
    for code, form in pack.forms.items():
        assert form.identification is not None
        labels = form.identification.labels
        for name, phrases in labels.items():
            for phrase in phrases:
                assert phrase.position in ("right", "below", "above")
                if phrase.anchor:
                    assert phrase.anchor in labels and phrase.anchor != name, f"{code}.{name}: {phrase.anchor}"


def test_extraction_vocabulary_is_loaded() -> None:
    pack = load_rules_pack()
    assert "X" in pack.extraction.check_marks
    assert all(name in pack.field_names for name in pack.extraction.label_fallbacks)
    assert re.fullmatch(pack.extraction.value_formats["purchaser_ein"], "12-3456789")
