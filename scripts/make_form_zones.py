"""Make the rules pack's form templates (``resources/rules/zones/<FORM>.json``) from the blank official
forms in ``../shared/real-forms``: for each form, each page with fill-in fields gives its size, the zone of
each field (the box of its AcroForm widget, in points of the blank page, named by the form's
``pdf_field_map`` in the pack) with the words printed inside it, and a few anchor phrases printed on the
page with their boxes, by which a scan is registered to the blank form. The PDFs are not copied: only
what is read from them, with the file's name, its SHA-256, its origin (from ``SOURCES.md``) and the
revision printed on it.

    .venv/bin/python scripts/make_form_zones.py [--forms ../shared/real-forms] [--out resources/rules/zones]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pymupdf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ecms_desktop.rules import FormRule, RulesPack, load_rules_pack  # noqa: E402

#: Blank form file -> form code of the pack. NY-ST-120 has two revisions; both are templates of it.
FORM_FILES = {
    "TX-01-339.pdf": "TX-01-339",
    "NY-ST-120.pdf": "NY-ST-120",
    "NY-ST-120-rev-2010.pdf": "NY-ST-120",
    "NY-ST-120.1.pdf": "NY-ST-120.1",
    "NY-ST-121.pdf": "NY-ST-121",
    "PA-REV-1220.pdf": "PA-REV-1220",
    "MI-3372.pdf": "MI-3372",
    "IN-ST-105.pdf": "IN-ST-105",
    "MA-ST-4.pdf": "MA-ST-4",
    "CT-resale-certificate.pdf": "CT-RESALE",
    "DC-OTR-368-2012.pdf": "DC-OTR-368",
    "MTC-Uniform-Sales-Use-Cert-2016-spoontiques.pdf": "MTC-UNIFORM",
}
#: The fillable MA ST-4 gives its seven boxes one field name (Text1), so its pack entry has no
#: pdf_field_map; the boxes are named here in the order the file lists them, as the labels printed
#: under them say (name, account ID, address, city/town, state, zip, type of business).
WIDGET_ORDER = {
    "MA-ST-4": ("purchaser_name", "purchaser_tax_id", "purchaser_address", "purchaser_address",
                "purchaser_address", "purchaser_address", "business_description"),
}
#: Fields whose zones are parts of one value (joined in order); other fields' zones are alternatives.
JOINED = frozenset({"purchaser_address", "seller_address", "property_description", "business_description",
                    "exemption_detail"})
#: Not read from a zone: a signature is drawn, not written in letters.
SKIPPED = frozenset({"signature"})
#: Widgets whose box holds more than the field they are mapped to: MI-3372's vendor line asks for the
#: seller's name and address together, so the name is found by its label instead.
SKIPPED_WIDGETS = frozenset({("MI-3372", "vendorname")})
#: Anchors: phrases of 2-4 words, at least this many letters, printed at least this tall (points).
ANCHOR_LETTERS = 10
ANCHOR_MIN_HEIGHT = 6.0
ANCHOR_GRID = (3, 6)
ANCHORS_PER_PAGE = 24


def _norm(text: str) -> str:
    return "".join(ch for ch in text.replace("&", "and").lower() if ch.isalnum())


def _box(rect: Any) -> list[float]:
    return [round(float(v), 1) for v in (rect[0], rect[1], rect[2], rect[3])]


def _origin(sources: Path, name: str) -> str:
    """``owner/repo path @ commit`` of ``name`` as SOURCES.md gives it."""
    for line in sources.read_text(encoding="utf-8").splitlines():
        cols = [c.strip() for c in line.split("|")]
        if len(cols) > 5 and cols[1] == name:
            return f"{cols[3]} {cols[4].replace('`', '')}"
    raise SystemExit(f"{sources}: no row for {name}")


def _revision(form: FormRule, text: str) -> str:
    if form.identification is not None:
        for rev in form.identification.revisions:
            if re.search(rev.pattern, text, re.IGNORECASE):
                return rev.revision
    return ""


def _widget_fields(form: FormRule, page_widgets: list[Any], rules: RulesPack) -> list[tuple[str, Any, str]]:
    """(field, rect, widget name) of the page's text widgets that name a certificate field."""
    order = WIDGET_ORDER.get(form.code)
    out = []
    for i, widget in enumerate(page_widgets):
        if widget.field_type_string not in ("Text", "ComboBox"):
            continue
        name = str(widget.field_name or "")
        field = order[i] if order is not None and i < len(order) else form.pdf_field_map.get(name, "")
        if field in rules.field_names and field not in SKIPPED and (form.code, name) not in SKIPPED_WIDGETS:
            if form.is_multistate and field == "purchaser_tax_id":
                continue  # the multistate forms' per-state numbers are read with their state, by label
            out.append((field, widget.rect, name))
    return out


def _reading_order(fields: list[tuple[str, Any, str]]) -> list[tuple[str, Any, str]]:
    """The zones row by row (zones whose middles are within half a height of each other share a row),
    each row left to right: the order the parts of an address are read in."""
    rows: list[list[tuple[str, Any, str]]] = []
    for item in sorted(fields, key=lambda f: (f[1].y0 + f[1].y1) / 2):
        middle = (item[1].y0 + item[1].y1) / 2
        if rows and abs(middle - (rows[-1][0][1].y0 + rows[-1][0][1].y1) / 2) < item[1].height / 2:
            rows[-1].append(item)
        else:
            rows.append([item])
    return [item for row in rows for item in sorted(row, key=lambda f: f[1].x0)]


def _anchors(page: Any, widgets: list[Any]) -> list[dict[str, Any]]:
    """Phrases printed once on the page, spread over it, outside its fill-in fields."""
    words = page.get_text("words", sort=True)
    tokens = [_norm(w[4]) for w in words]
    joined = " " + " ".join(tokens) + " "
    lines: dict[tuple[int, int], list[int]] = {}
    for i, w in enumerate(words):
        if tokens[i]:
            lines.setdefault((w[5], w[6]), []).append(i)
    rects = [pymupdf.Rect(w.rect) for w in widgets]
    candidates: list[tuple[int, int, dict[str, Any]]] = []
    width, height = page.rect.width, page.rect.height
    for idx in lines.values():
        for start in range(0, max(1, len(idx) - 1), 3):
            take = idx[start:start + 4]
            if len(take) < 2:
                continue
            text = " ".join(words[i][4] for i in take)
            letters = sum(ch.isalnum() for ch in text)
            box = pymupdf.Rect(min(words[i][0] for i in take), min(words[i][1] for i in take),
                               max(words[i][2] for i in take), max(words[i][3] for i in take))
            if letters < ANCHOR_LETTERS or box.height < ANCHOR_MIN_HEIGHT or box.width > width * 0.6:
                continue
            if joined.count(" " + " ".join(tokens[i] for i in take) + " ") != 1:
                continue
            if any(box.intersects(r) for r in rects):
                continue
            cell = (min(int(box.x0 / width * ANCHOR_GRID[0]), ANCHOR_GRID[0] - 1)
                    + ANCHOR_GRID[0] * min(int(box.y0 / height * ANCHOR_GRID[1]), ANCHOR_GRID[1] - 1))
            candidates.append((cell, -letters, {"text": text, "box": _box(box)}))
    by_cell: dict[int, list[dict[str, Any]]] = {}
    for cell, _letters, anchor in sorted(candidates, key=lambda c: (c[0], c[1])):
        by_cell.setdefault(cell, []).append(anchor)
    chosen: list[dict[str, Any]] = []
    while len(chosen) < ANCHORS_PER_PAGE and any(by_cell.values()):
        for cell in sorted(by_cell):
            if by_cell[cell] and len(chosen) < ANCHORS_PER_PAGE:
                chosen.append(by_cell[cell].pop(0))
    return sorted(chosen, key=lambda a: (a["box"][1], a["box"][0]))


def _printed(page: Any, rect: Any) -> list[str]:
    """The words printed in or just around a zone on the blank page (its label, printed in the box or
    at its edge), which a reading of the zone leaves out."""
    r = pymupdf.Rect(rect)
    pad = min(8.0, r.height * 0.5)
    zone = pymupdf.Rect(r.x0 - 2, r.y0 - pad, r.x1 + 2, r.y1 + pad)
    return [w[4] for w in page.get_text("words", sort=True) if _norm(w[4])
            and zone.contains(pymupdf.Point((w[0] + w[2]) / 2, (w[1] + w[3]) / 2))]


def template(path: Path, form: FormRule, rules: RulesPack, origin: str) -> dict[str, Any]:
    doc = pymupdf.open(path)
    text = " ".join(page.get_text() for page in doc)
    pages = []
    for page in doc:
        widgets = list(page.widgets())
        fields = _widget_fields(form, widgets, rules)
        if not fields:
            continue
        parts: Counter[str] = Counter()
        zones = []
        for field, rect, name in _reading_order(fields):
            parts[field] += 1
            zones.append({"field": field, "part": parts[field] if field in JOINED else 1, "widget": name,
                          "box": _box(rect), "printed": _printed(page, rect)})
        pages.append({"page": page.number + 1, "width": round(page.rect.width, 1),
                      "height": round(page.rect.height, 1), "anchors": _anchors(page, widgets), "zones": zones})
    return {"file": path.name, "sha256": hashlib.sha256(path.read_bytes()).hexdigest(), "origin": origin,
            "revision": _revision(form, text), "pages": pages}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--forms", type=Path, default=(ROOT.parent / "shared" / "real-forms").resolve())
    parser.add_argument("--out", type=Path, default=ROOT / "resources" / "rules" / "zones")
    args = parser.parse_args()
    rules = load_rules_pack()
    sources = args.forms / "SOURCES.md"
    by_form: dict[str, list[dict[str, Any]]] = {}
    for name, code in FORM_FILES.items():
        path = args.forms / name
        if not path.exists():
            raise SystemExit(f"{path}: missing (the blank forms are in ../shared/real-forms)")
        made = template(path, rules.form(code), rules, _origin(sources, name))
        by_form.setdefault(code, []).append(made)
    args.out.mkdir(parents=True, exist_ok=True)
    for code, templates in sorted(by_form.items()):
        data = {"form": code, "generated_by": "scripts/make_form_zones.py",
                "source": "The blank forms of ../shared/real-forms (see each template's file, sha256 and origin): "
                          "zones are their AcroForm widgets, anchors phrases of their text layer",
                "templates": templates}
        out = args.out / f"{code}.json"
        out.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        zones = sum(len(p["zones"]) for t in templates for p in t["pages"])
        anchors = sum(len(p["anchors"]) for t in templates for p in t["pages"])
        print(f"{out}: {len(templates)} template(s), {zones} zones, {anchors} anchors")


if __name__ == "__main__":
    main()
