"""Scans made for the tests of reading documents: a certificate-like page drawn with PyMuPDF (its words'
boxes known), and that page scanned the way customers' scans arrive: rasterised at 200-300 dpi, skewed
a few degrees, turned sideways or upside down, noisy and JPEG-compressed (Pillow). ``Scan.where`` says
where a point of the drawn page ended up on the scan, so a test can check the boxes OCR reports."""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

import pymupdf
from PIL import Image

#: What the certificate page says; the purchaser and permit number are what the tests look for.
PURCHASER = "Lone Star Retail LLC"
PERMIT = "3-2345-6789-012"
CERTIFICATE_LINES = (
    f"Name of purchaser, firm or agency: {PURCHASER}",
    "Address: 1200 Main Street, Austin, TX 78701",
    f"Texas Sales and Use Tax Permit Number: {PERMIT}",
    "Description of items to be purchased: office supplies and furniture for resale",
    "I, the purchaser named above, claim the right to make a non-taxable purchase (for resale of",
    "the taxable items described below or on the attached order or invoice) from:",
    "Seller: Acme Supply Company LLC, 55 Commerce Way, Houston, TX 77002",
    "Purchaser's signature: Jane Doe      Title: Controller      Date: 03/14/2026",
)


def certificate_page() -> tuple[bytes, dict[str, pymupdf.Rect]]:
    """A letter-size PDF page printed like a resale certificate, and the boxes (points, top-left origin)
    of its words "Lone" (the purchaser's name) and the permit number."""
    doc = pymupdf.open()
    page = doc.new_page(width=612, height=792)
    page.insert_text((72, 60), "Texas Sales and Use Tax Resale Certificate", fontsize=16, fontname="hebo")
    for i, line in enumerate(CERTIFICATE_LINES):
        page.insert_text((72, 110 + i * 28), line, fontsize=11)
    for i in range(10):
        page.insert_text((72, 400 + i * 22), "This certificate must be kept by the seller as evidence that "
                         f"the items were purchased for resale ({i + 1}).", fontsize=9)
    boxes = {"Lone": page.search_for("Lone")[0], PERMIT: page.search_for(PERMIT)[0]}
    return doc.tobytes(), boxes


@dataclass(frozen=True)
class Scan:
    """A scanned page: the image file's bytes and how the drawn page was turned to make it."""

    data: bytes
    dpi: int
    skew: float
    turn: int
    size: tuple[int, int]  # pixels of the page before it was turned

    def where(self, x: float, y: float) -> tuple[float, float]:
        """Where the drawn page's point (``x``, ``y``) in points is on the scan, in points."""
        s = self.dpi / 72
        w, h = self.size
        dx, dy = x * s - w / 2, y * s - h / 2
        t = math.radians(self.skew)  # Pillow turns anticlockwise as seen
        px, py = w / 2 + dx * math.cos(t) + dy * math.sin(t), h / 2 - dx * math.sin(t) + dy * math.cos(t)
        if self.turn == 90:
            px, py = py, w - px
        elif self.turn == 180:
            px, py = w - px, h - py
        elif self.turn == 270:
            px, py = h - py, px
        return px / s, py / s


def scan(pdf: bytes, *, dpi: int = 300, skew: float = 0.0, turn: int = 0, noise: float = 0.12, quality: int = 70,
         fmt: str = "JPEG") -> Scan:
    """The first page of ``pdf`` scanned at ``dpi`` in grey, turned ``skew`` degrees anticlockwise (white
    corners), then ``turn`` (0, 90, 180, 270) degrees anticlockwise, with Gaussian ``noise`` blended in and
    saved as ``fmt`` (JPEG at ``quality``) carrying its resolution."""
    doc = pymupdf.open(stream=pdf, filetype="pdf")
    pix = doc[0].get_pixmap(dpi=dpi, colorspace=pymupdf.csGRAY, alpha=False)
    img = Image.frombytes("L", (pix.width, pix.height), pix.samples)
    size = img.size
    if skew:
        img = img.rotate(skew, resample=Image.Resampling.BICUBIC, fillcolor=255)
    if noise:
        img = Image.blend(img, Image.effect_noise(img.size, 40), noise)
    if turn:
        img = img.rotate(turn, expand=True)
    out = io.BytesIO()
    options = {"quality": quality} if fmt == "JPEG" else {}
    img.save(out, fmt, dpi=(dpi, dpi), **options)
    return Scan(out.getvalue(), dpi, skew, turn, size)


def multipage_tiff(scans: list[Scan]) -> bytes:
    """The scans as the pages of one TIFF file (a scanner's multi-page output)."""
    images = [Image.open(io.BytesIO(s.data)) for s in scans]
    out = io.BytesIO()
    images[0].save(out, "TIFF", save_all=True, append_images=images[1:], compression="tiff_lzw",
                   dpi=(scans[0].dpi, scans[0].dpi))
    return out.getvalue()
