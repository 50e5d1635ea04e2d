"""The demo's documents show their own record's values: each certificate has its own document, the read
ones name the record's purchaser and validate without a document-against-record finding, and the
deliberate slips are caught with both values."""

from __future__ import annotations

import datetime as dt
import re

from sqlalchemy import select

from ecms_desktop.models import Certificate, Document
from ecms_desktop.rules import load_rules_pack
from ecms_desktop.services.demo.plans import DemoOptions
from ecms_desktop.services.demo.service import DemoService
from ecms_desktop.services.validation.name_match import NameVerdict, compare_names
from ecms_desktop.services.validation.service import ValidationService

AS_OF = dt.date(2026, 11, 22)
RULES = load_rules_pack()


def test_demo_documents_show_their_records_values_and_the_slips_are_caught(db) -> None:  # type: ignore[no-untyped-def]
    result = DemoService(db, RULES).generate(DemoOptions(certificates=80, seed=7, as_of=AS_OF))
    assert len(result.slips) == 2, result.slips
    with db.reader() as s:
        docs = s.execute(select(Document.certificate_id, Document.sha256)).all()
        read = [(d.certificate_id, d.original_name, d.extraction) for d in s.execute(select(Document)).scalars()
                if d.extraction is not None]
        names = dict(s.execute(select(Certificate.id, Certificate.purchaser_name)).all())
    # one document per certificate, none shared
    assert len({sha for _, sha in docs}) == len(docs) == len({cid for cid, _ in docs})
    assert len(read) >= 20
    validation = ValidationService(db, RULES).validate_many([cid for cid, _, _ in read], as_of=AS_OF)
    by_id = {r.certificate_id: r for r in validation.results}
    for cert_id, name, extraction in read:
        found = [f for f in by_id[cert_id].findings if f.rule.startswith("document.")]
        if cert_id in result.slips:
            assert found, f"the deliberate slip on certificate {cert_id} ({result.slips[cert_id]}) is caught"
            assert all(name in f.message and "the record says" in f.message for f in found)
            continue
        assert found == [], (cert_id, name, [f.message for f in found])
        read_name = extraction["fields"]["purchaser_name"]["value"]
        assert compare_names(read_name, names[cert_id]).verdict is NameVerdict.MATCH, (read_name, names[cert_id])
    other = next(cid for cid, slip in result.slips.items() if slip == "another customer's certificate")
    [finding] = [f for f in by_id[other].findings if f.rule == "document.purchaser_differs"]
    assert finding.severity == "error" and repr(names[other]) in finding.message
    # ... and names the purchaser the document really shows (the file is named after it), not printed text
    file_name, extraction = next((name, ex) for cid, name, ex in read if cid == other)
    shown = extraction["fields"]["purchaser_name"]["value"]
    assert "_".join(re.findall(r"[A-Za-z0-9]+", shown))[:40] in file_name, (shown, file_name)
    assert repr(shown) in finding.message
