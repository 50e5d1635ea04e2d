"""Drawing the demo certificate documents: filled-in exemption certificates as PDF or scans.

The demo needs files that look, at a glance, like what an accountant really receives: a state's
form with the purchaser and seller blocks filled in by typewriter or in ink, a permit number, the
reason ticked, a signature scribble and a date; sometimes a clean PDF, sometimes a crooked, speckled
desk scan (an image-only PDF, a PNG or a JPEG), occasionally with a second page.

Everything here is deterministic for a given :class:`random.Random` state: reportlab runs in
``invariant`` mode (no creation date, no random document id), so the same seed gives byte-identical
files and therefore the same SHA-256 in the database.
"""

from __future__ import annotations

import datetime as dt
import io
import random
from collections.abc import Sequence
from dataclasses import dataclass, field

#: Ink of typed-in values and of the signature (typewriter/ballpoint blue-black).
_INK = (0.07, 0.12, 0.42)
_LETTER = (612.0, 792.0)


@dataclass(frozen=True)
class CertificateDrawing:
    """What a filled-in certificate shows: the form's printed parts and the purchaser's entries."""

    form_code: str
    form_number: str
    form_title: str
    issuer: str
    revision: str
    seller_name: str
    seller_address: tuple[str, ...]
    seller_permit: str
    purchaser_name: str
    purchaser_address: tuple[str, ...]
    purchaser_phone: str
    permit_label: str
    permit_number: str
    business_description: str
    property_description: str
    #: (box label, ticked) in print order.
    reasons: tuple[tuple[str, bool], ...]
    #: (state code, purchaser's ID in that state) for multi-state forms.
    state_lines: tuple[tuple[str, str], ...] = ()
    single_use: bool = False
    po_number: str = ""
    exemption_detail: str = ""
    signer_name: str = ""
    signer_title: str = ""
    signed_date: dt.date | None = None
    certificate_number: str = ""
    #: Intake stamp date (red "RECEIVED" stamp), if any.
    received_stamp: dt.date | None = None
    certification_text: str = ""
    extra_pages: int = 0
    #: The printed label of the purchaser's name (the imitated form's own where the rules pack knows it,
    #: so that the program's reader finds the name by it as on the real form) and whether the name is
    #: written beside it (else below it, in the label's box).
    purchaser_label: str = "Name of purchaser:"
    purchaser_label_beside: bool = True
    extra: dict[str, str] = field(default_factory=dict)


def draw_certificate_pdf(d: CertificateDrawing, rng: random.Random) -> bytes:
    """A vector PDF of the filled certificate (one page, plus ``extra_pages`` continuation pages)."""
    from reportlab.pdfgen import canvas

    buf = io.BytesIO()
    c = canvas.Canvas(buf, pagesize=_LETTER, invariant=1, pageCompression=1)
    c.setTitle(f"{d.form_code} {d.purchaser_name}")
    c.setAuthor("")
    pages = 1 + d.extra_pages
    _draw_form_page(c, d, rng, pages)
    for n in range(d.extra_pages):
        c.showPage()
        _draw_continuation(c, d, rng, n + 2, pages)
    c.showPage()
    c.save()
    return buf.getvalue()


# -- page drawing ---------------------------------------------------------------------------------


def _wrap(text: str, font: str, size: float, width: float) -> list[str]:
    from reportlab.lib.utils import simpleSplit

    return list(simpleSplit(text, font, size, width))


def _box(c, x: float, y: float, w: float, h: float, label: str, value: str = "", *,
         value_size: float = 10.0, lines: int = 1, beside: bool = False) -> None:
    """A labelled field box with its top-left corner at (x, y + h); the value below the label, or
    ``beside`` it on one line."""
    c.setStrokeColorRGB(0, 0, 0)
    c.setLineWidth(0.6)
    c.rect(x, y, w, h)
    c.setFillColorRGB(0, 0, 0)
    if beside:
        c.setFont("Helvetica", 7.5)
        c.drawString(x + 3, y + h / 2 - 3, label)
        if value:
            c.setFillColorRGB(*_INK)
            c.setFont("Courier-Bold", value_size)
            c.drawString(x + 11 + c.stringWidth(label, "Helvetica", 7.5), y + h / 2 - 3, value)
            c.setFillColorRGB(0, 0, 0)
        return
    c.setFont("Helvetica", 6.2)
    c.drawString(x + 3, y + h - 7.5, label)
    if value:
        c.setFillColorRGB(*_INK)
        c.setFont("Courier-Bold", value_size)
        rows = _wrap(value, "Courier-Bold", value_size, w - 10)[:lines]
        ty = y + h - 9 - value_size
        for row in rows:
            c.drawString(x + 6, ty, row)
            ty -= value_size + 1.5
        c.setFillColorRGB(0, 0, 0)


def _section(c, x: float, y: float, w: float, title: str) -> None:
    c.setFillColorRGB(0.82, 0.82, 0.82)
    c.rect(x, y, w, 12, stroke=1, fill=1)
    c.setFillColorRGB(0, 0, 0)
    c.setFont("Helvetica-Bold", 7.5)
    c.drawString(x + 4, y + 3.3, title.upper())


def _checkbox(c, x: float, y: float, label: str, ticked: bool, rng: random.Random,
              width: float = 250) -> float:
    """A tick box and its label; returns the height used."""
    c.setLineWidth(0.6)
    c.setStrokeColorRGB(0, 0, 0)
    c.rect(x, y, 8, 8)
    c.setFont("Helvetica", 7.5)
    rows = _wrap(label, "Helvetica", 7.5, width - 14)[:2]
    ty = y + 1
    for row in rows:
        c.drawString(x + 13, ty, row)
        ty -= 9
    if ticked:
        c.setStrokeColorRGB(*_INK)
        c.setLineWidth(1.6)
        j = rng.uniform(-1.2, 1.2)
        c.line(x - 1 + j, y - 1, x + 9, y + 10 + j)
        c.line(x - 1, y + 10 - j, x + 9 + j, y - 1)
        c.setStrokeColorRGB(0, 0, 0)
        c.setLineWidth(0.6)
    return 9.0 * len(rows) + 3


def _signature(c, x: float, y: float, w: float, name: str, rng: random.Random) -> None:
    """A ballpoint scribble: one pen stroke per word, a tall looped capital then a run of small
    slanted loops with the odd ascender, and a flourish under the last word."""
    c.saveState()
    c.setStrokeColorRGB(*_INK)
    c.setLineCap(1)
    c.setLineJoin(1)
    words = [part for part in name.replace(".", "").split() if part][:3] or ["X"]
    cx = x + 4 + rng.uniform(0, 8)
    base = y + 3 + rng.uniform(0, 3)
    slant = rng.uniform(2.5, 5.0)
    for k, word in enumerate(words):
        if k and len(words) == 3 and k == 1:  # a middle initial: a single loop and a dot
            p = c.beginPath()
            p.moveTo(cx, base)
            p.curveTo(cx + slant + 6, base + 16, cx - 4, base + 14, cx + 4, base)
            c.setLineWidth(rng.uniform(0.9, 1.3))
            c.drawPath(p, stroke=1, fill=0)
            c.circle(cx + 8, base, 0.6, stroke=1, fill=1)
            cx += 16
            continue
        p = c.beginPath()
        p.moveTo(cx, base + rng.uniform(-1, 2))
        cap = rng.uniform(14, 22)
        style = rng.randrange(3)
        if style == 0:  # up, over and back down through the baseline
            p.curveTo(cx + slant, base + cap, cx + slant + rng.uniform(8, 14), base + cap * 1.05,
                      cx + rng.uniform(6, 10), base + cap * 0.45)
            p.curveTo(cx + rng.uniform(2, 5), base + cap * 0.2, cx + rng.uniform(10, 14), base - 2, cx + 14, base + 2)
        elif style == 1:  # a tall narrow loop
            p.curveTo(cx + slant + 10, base + cap * 1.1, cx - 6, base + cap, cx + 2, base - 3)
            p.curveTo(cx + 4, base + 6, cx + 10, base + 8, cx + 14, base + 1)
        else:  # a wide swash crossing itself
            p.curveTo(cx - 6, base + cap * 0.5, cx + 18, base + cap * 1.2, cx + 6, base + cap * 0.8)
            p.curveTo(cx - 2, base + cap * 0.5, cx + 6, base - 4, cx + 14, base + 3)
        cx += 14
        for ch in word[1:][:9]:
            tall = ch.lower() in "bdfhklt" or rng.random() < 0.1
            deep = ch.lower() in "gjpqy"
            hgt = rng.uniform(10, 15) if tall else rng.uniform(3.5, 6.5)
            step = rng.uniform(4.0, 6.5)
            p.curveTo(cx + slant * 0.4, base + hgt, cx + step * 0.2 + slant * 0.3, base + hgt,
                      cx + step * 0.5, base + (-7 if deep else rng.uniform(-0.5, 1.0)))
            if deep:
                p.curveTo(cx + step * 0.3, base - 9, cx - 1, base - 4, cx + step, base + 1)
            cx += step
        end = cx + rng.uniform(6, 14)
        p.curveTo(cx + 3, base + rng.uniform(-1, 3), end - 4, base + rng.uniform(2, 6), end, base + rng.uniform(4, 9))
        c.setLineWidth(rng.uniform(0.9, 1.3))
        c.drawPath(p, stroke=1, fill=0)
        cx = end + rng.uniform(6, 12)
    # Flourish under the name.
    c.setLineWidth(0.8)
    p = c.beginPath()
    p.moveTo(x + rng.uniform(2, 12), base - rng.uniform(3, 5))
    p.curveTo(x + w * 0.3, base - 7, min(cx, x + w) - 20, base - 1, min(cx, x + w - 4), base - rng.uniform(2, 6))
    c.drawPath(p, stroke=1, fill=0)
    c.restoreState()


def _stamp(c, x: float, y: float, day: dt.date, rng: random.Random) -> None:
    c.saveState()
    c.translate(x, y)
    c.rotate(rng.uniform(-9, 9))
    c.setStrokeColorRGB(0.78, 0.12, 0.12)
    c.setFillColorRGB(0.78, 0.12, 0.12)
    c.setLineWidth(1.6)
    c.roundRect(0, 0, 118, 38, 4)
    c.setFont("Helvetica-Bold", 11)
    c.drawCentredString(59, 24, "RECEIVED")
    c.setFont("Helvetica-Bold", 10)
    c.drawCentredString(59, 9, day.strftime("%b %d %Y").upper())
    c.restoreState()


def _draw_form_page(c, d: CertificateDrawing, rng: random.Random, pages: int) -> None:
    width, height = _LETTER
    left, right = 36.0, width - 36.0
    full = right - left
    top = height - 36.0

    # Header: form number box at the left, issuer and title beside it.
    c.setLineWidth(1.2)
    c.rect(left, top - 40, 92, 40)
    c.setFont("Helvetica", 6.5)
    c.drawString(left + 4, top - 9, "Form")
    c.setFont("Helvetica-Bold", 13 if len(d.form_number) <= 9 else 10)
    c.drawString(left + 4, top - 25, d.form_number or d.form_code)
    c.setFont("Helvetica", 6.2)
    if d.revision:
        c.drawString(left + 4, top - 35, f"(Rev. {d.revision})"[:26])
    c.setFont("Helvetica", 8)
    c.drawString(left + 102, top - 9, d.issuer)
    title_rows = _wrap(d.form_title, "Helvetica-Bold", 13, full - 104)[:2]
    ty = top - 23
    c.setFont("Helvetica-Bold", 13)
    for row in title_rows:
        c.drawString(left + 102, ty, row)
        ty -= 14
    if d.certificate_number:
        c.setFillColorRGB(*_INK)
        c.setFont("Courier-Bold", 9)
        c.drawRightString(right, top + 8, d.certificate_number)
        number_width = c.stringWidth(d.certificate_number, "Courier-Bold", 9)
        c.setFillColorRGB(0, 0, 0)
        c.setFont("Helvetica", 6.5)
        c.drawRightString(right - number_width - 4, top + 8, "Certificate no.")
    c.setLineWidth(1.5)
    c.line(left, top - 50, right, top - 50)

    y = top - 62
    _section(c, left, y, full, "Purchaser")
    y -= 26
    _box(c, left, y, full * 0.68, 26, d.purchaser_label, d.purchaser_name, beside=d.purchaser_label_beside)
    _box(c, left + full * 0.68, y, full * 0.32, 26, "Phone (area code and number)", d.purchaser_phone)
    y -= 26
    _box(c, left, y, full, 26, "Address (street & number, P.O. box or route number)",
         d.purchaser_address[0] if d.purchaser_address else "")
    y -= 26
    _box(c, left, y, full * 0.52, 26, "City, state, ZIP code",
         d.purchaser_address[1] if len(d.purchaser_address) > 1 else "")
    _box(c, left + full * 0.52, y, full * 0.48, 26, d.permit_label[:70], d.permit_number)

    y -= 16
    _section(c, left, y, full, "Seller")
    y -= 26
    _box(c, left, y, full * 0.6, 26, "Name of seller from whom purchases are made", d.seller_name)
    _box(c, left + full * 0.6, y, full * 0.4, 26, "Seller's permit / registration number", d.seller_permit)
    y -= 26
    _box(c, left, y, full, 26, "Seller's address (street & number, city, state, ZIP code)",
         ", ".join(d.seller_address))

    y -= 16
    _section(c, left, y, full, "Description")
    y -= 36
    _box(c, left, y, full, 36, "Description of the purchaser's type of business", d.business_description,
         value_size=9, lines=2)
    y -= 36
    _box(c, left, y, full, 36, "Description of items to be purchased, leased or rented", d.property_description,
         value_size=9, lines=2)

    y -= 16
    _section(c, left, y, full, "Reason for exemption (check one)")
    y -= 14
    col_w = full / 2
    col_y = [y, y]
    for i, (label, ticked) in enumerate(d.reasons):
        col = 0 if i < (len(d.reasons) + 1) // 2 else 1
        used = _checkbox(c, left + 4 + col * col_w, col_y[col], label, ticked, rng, col_w - 8)
        col_y[col] -= used + 2
    y = min(col_y) - 2
    if d.exemption_detail:
        _box(c, left, y - 24, full, 24, "Exemption number / explanation (if required for the reason checked)",
             d.exemption_detail, value_size=9)
        y -= 24

    if d.state_lines:
        y -= 16
        _section(c, left, y, full, "States where the purchaser claims exemption")
        cols = 4
        cw = full / cols
        rows = (len(d.state_lines[:16]) + cols - 1) // cols
        for i, (state, tax_id) in enumerate(d.state_lines[:16]):
            r, k = divmod(i, cols)
            _box(c, left + k * cw, y - 22 * (r + 1), cw, 22, "State  /  ID number", f"{state} {tax_id}",
                 value_size=8)
        y -= 22 * rows

    y -= 16
    _section(c, left, y, full, "Type of certificate")
    y -= 13
    _checkbox(c, left + 4, y, "Blanket certificate (all purchases until revoked in writing)", not d.single_use, rng,
              full / 2)
    _checkbox(c, left + full / 2, y, "Single purchase certificate, related invoice / PO no.:", d.single_use, rng,
              full / 2)
    if d.single_use and d.po_number:
        c.setFillColorRGB(*_INK)
        c.setFont("Courier-Bold", 9)
        c.drawString(left + full / 2 + 210, y + 0.5, d.po_number)
        c.setFillColorRGB(0, 0, 0)

    # Certification text.
    y -= 14
    c.setFont("Helvetica", 6.8)
    for row in _wrap(d.certification_text, "Helvetica", 6.8, full)[:6]:
        c.drawString(left, y, row)
        y -= 8.2

    # Signature block.
    y = max(y - 34, 84)
    sig_w = full * 0.42
    c.setLineWidth(0.6)
    c.line(left, y, left + sig_w, y)
    c.setFont("Helvetica", 6.2)
    c.drawString(left, y - 8, "Signature of purchaser or authorized agent")
    if d.signer_name:
        _signature(c, left, y, sig_w, d.signer_name, rng)
    _box(c, left + sig_w + 8, y - 10, full * 0.24, 26, "Printed name", d.signer_name, value_size=8)
    _box(c, left + sig_w + 8 + full * 0.24, y - 10, full * 0.2, 26, "Title", d.signer_title, value_size=8)
    _box(c, right - (full - sig_w - 8 - full * 0.44), y - 10, full - sig_w - 8 - full * 0.44, 26, "Date", "")
    if d.signed_date:
        c.saveState()
        c.setFillColorRGB(*_INK)
        c.translate(right - (full - sig_w - 8 - full * 0.44) + 5, y - 6)
        c.rotate(rng.uniform(-3, 3))
        c.setFont("Helvetica-Oblique", 10)
        c.drawString(0, 0, f"{d.signed_date.month}/{d.signed_date.day}/{d.signed_date.year}")
        c.restoreState()

    # Instructions at the foot of the page, as on most state forms (only where they fit whole).
    notes = _wrap(_INSTRUCTIONS, "Helvetica", 6.6, full - 8)
    box_top = 52 + 18 + 8 * len(notes)
    if box_top < y - 40:
        c.setLineWidth(0.6)
        c.rect(left, 52, full, box_top - 52)
        c.setFont("Helvetica-Bold", 7)
        c.drawString(left + 4, box_top - 10, "Instructions")
        c.setFont("Helvetica", 6.6)
        ty = box_top - 20
        for row in notes:
            c.drawString(left + 4, ty, row)
            ty -= 8

    # Footer.
    c.setFont("Helvetica", 6)
    c.drawString(left, 40, f"{d.form_code}  -  Give this certificate to the seller. Do not send it to the "
                           "tax agency.")
    c.drawRightString(right, 40, f"Page 1 of {pages}")

    if d.received_stamp:
        _stamp(c, right - 150, top - 150 + rng.uniform(-20, 20), d.received_stamp, rng)


def _draw_continuation(c, d: CertificateDrawing, rng: random.Random, page: int, pages: int) -> None:
    width, height = _LETTER
    left, right = 36.0, width - 36.0
    full = right - left
    top = height - 36.0
    c.setFont("Helvetica-Bold", 12)
    c.drawString(left, top - 12, f"{d.form_number or d.form_code} - continuation sheet")
    c.setFont("Helvetica", 8)
    c.drawString(left, top - 26, f"Purchaser: {d.purchaser_name}")
    c.setLineWidth(1.2)
    c.line(left, top - 32, right, top - 32)
    y = top - 50
    _section(c, left, y, full, "Locations covered by this certificate")
    y -= 4
    for i in range(8 + rng.randint(0, 6)):
        y -= 20
        _box(c, left, y, full * 0.5, 20, "Location / ship-to address",
             f"{rng.randint(100, 9999)} {rng.choice(_STREETS)} {rng.choice(('St', 'Ave', 'Rd', 'Blvd'))}",
             value_size=8)
        _box(c, left + full * 0.5, y, full * 0.25, 20, "Store / branch no.", f"{i + 1:03d}", value_size=8)
        _box(c, left + full * 0.75, y, full * 0.25, 20, "Permit no. (if different)", "", value_size=8)
    y -= 26
    _section(c, left, y, full, "Instructions")
    y -= 12
    c.setFont("Helvetica", 7.5)
    text = ("The purchaser must keep a copy of this certificate. The seller must keep this certificate on file "
            "for the period required by law and make it available to the state on request. A blanket "
            "certificate remains in force until revoked in writing or until it expires under state law. "
            "Misuse of this certificate may subject the purchaser to tax, interest and penalties. "
            "Attach additional sheets if more space is needed.")
    for row in _wrap(text, "Helvetica", 7.5, full):
        c.drawString(left, y, row)
        y -= 9.5
    c.setFont("Helvetica", 6)
    c.drawRightString(right, 40, f"Page {page} of {pages}")


_INSTRUCTIONS = (
    "Purchaser: complete every part of this certificate and give it to the seller; an incomplete certificate "
    "cannot be accepted in good faith. A blanket certificate applies to all qualifying purchases from the seller "
    "until revoked in writing or until it expires; a single purchase certificate applies only to the invoice or "
    "purchase order shown. Notify the seller if your permit or registration is revoked or your exempt status "
    "changes. Seller: keep this certificate with your records for at least the period the state's statute of "
    "limitations requires (generally three to four years after the last sale it covers) and make it available "
    "on request. Accepting a certificate that is incomplete, or that you know to be false, makes the seller liable "
    "for the tax. Do not send this certificate to the tax agency unless it asks for it.")

_STREETS = ("Main", "Oak", "Commerce", "Industrial", "Maple", "Market", "Cedar", "Elm", "Lakeview", "Park",
            "Washington", "Jefferson", "Mill", "Ridge", "River")


# -- scans ----------------------------------------------------------------------------------------


def _scan_pixmaps(pdf: bytes, rng: random.Random, dpi: int, skew: float):
    """Each page rendered in grey at ``dpi``, turned by ``skew`` degrees, with scanner specks."""
    import pymupdf

    src = pymupdf.open(stream=pdf, filetype="pdf")
    zoom = dpi / 72
    out = []
    for index in range(src.page_count):
        page = src[index]
        angle = skew + rng.uniform(-0.25, 0.25)
        pix = page.get_pixmap(matrix=pymupdf.Matrix(zoom, zoom).prerotate(angle), colorspace=pymupdf.csGRAY,
                              alpha=False)
        pix.gamma_with(rng.uniform(0.8, 0.95))  # a little darker: toner and paper tone
        w, h = pix.width, pix.height
        for _ in range(1800):
            pix.set_pixel(rng.randrange(w), rng.randrange(h), (rng.randrange(60, 200),))
        # A faint vertical streak from dust on the scanner glass.
        sx = rng.randrange(w // 5, w - w // 5)
        for yy in range(0, h, 3):
            pix.set_pixel(sx, yy, (rng.randrange(150, 215),))
        out.append(pix)
    src.close()
    return out


def scan_pdf(pdf: bytes, rng: random.Random, *, dpi: int = 150, skew: float | None = None,
             quality: int = 55) -> bytes:
    """An image-only PDF, as a desk scanner makes it: pages rasterised, a degree or so crooked,
    speckled and JPEG-compressed."""
    import pymupdf

    angle = skew if skew is not None else rng.choice((-1, 1)) * rng.uniform(0.4, 1.4)
    pixmaps = _scan_pixmaps(pdf, rng, dpi, angle)
    out = pymupdf.open()
    for pix in pixmaps:
        page = out.new_page(width=pix.width * 72 / dpi, height=pix.height * 72 / dpi)
        page.insert_image(page.rect, stream=pix.tobytes("jpeg", jpg_quality=quality))
    data = out.tobytes(garbage=3, deflate=True, no_new_id=True)
    out.close()
    return bytes(data)


def scan_image(pdf: bytes, rng: random.Random, *, fmt: str = "png", dpi: int = 110) -> bytes:
    """The first page as a PNG or JPEG picture, the way a phone or scanner app saves it."""
    angle = rng.choice((-1, 1)) * rng.uniform(0.5, 1.6)
    pix = _scan_pixmaps(pdf, rng, dpi, angle)[0]
    if fmt == "png":
        return bytes(pix.tobytes("png"))
    return bytes(pix.tobytes("jpeg", jpg_quality=70))


def certification_text(purpose: str, state_names: Sequence[str]) -> str:
    """The printed statement above the signature."""
    where = ", ".join(state_names) if state_names else "the state"
    if purpose == "resale":
        return (f"I, the purchaser named above, certify that I hold a valid permit to make sales at retail in "
                f"{where} and that the items described above are purchased for resale, lease or rental in the "
                "regular course of business, in their present form or as an ingredient or component part of a "
                "product. I understand that if I use the items for any purpose other than resale, I must pay "
                "the tax directly to the state based on the purchase price, and that it is a criminal offense "
                "to give this certificate to a seller for items I know will be used in a manner other than "
                "stated. I certify that the information on this certificate is true, correct and complete.")
    return ("I, the purchaser named above, claim an exemption from payment of sales and use taxes for the "
            f"purchase of the items described above in {where}, for the reason checked. I understand that I "
            "will be liable for payment of all state and local sales or use taxes which may become due for "
            "failure to comply with the law, and that giving a false or fraudulent certificate is punishable "
            "by law. I certify that the information on this certificate is true, correct and complete to the "
            "best of my knowledge.")
