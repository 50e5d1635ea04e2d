"""Scans made for the tests of reading documents: a certificate-like page drawn with PyMuPDF (its words'
boxes known), and that page scanned the way customers' scans arrive: rasterised at 150-300 dpi, skewed
a few degrees, turned sideways or upside down, noisy, unevenly lit like a photograph, in grey or on
tinted paper in colour, and JPEG-compressed (Pillow); several scans as one multi-page TIFF or as a PDF
of page images with no text layer. ``Scan.where`` says where a point of the drawn page ended up on the
scan, so a test can check the boxes OCR reports."""

from __future__ import annotations

import io
import math
import random
import statistics
from dataclasses import dataclass

import pymupdf
from PIL import Image, ImageChops, ImageOps

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
         fmt: str = "JPEG", page: int = 0, lighting: float = 0.0, light_from: tuple[float, float] = (0.2, 0.1),
         paper: tuple[int, int, int] | None = None, seed: int | None = None) -> Scan:
    """Page ``page`` (0 = first) of ``pdf`` scanned at ``dpi`` in grey, turned ``skew`` degrees
    anticlockwise (white corners), then ``turn`` (0, 90, 180, 270) degrees anticlockwise, with Gaussian
    ``noise`` blended in and saved as ``fmt`` (JPEG at ``quality``, PNG or TIFF) carrying its resolution.

    ``lighting`` (0..1) darkens the page away from the point ``light_from`` (fractions of the width and
    height), as a phone photograph under a lamp is lit: 0.3 leaves the far corner at about 70 %.
    ``paper`` makes a colour scan: white becomes that RGB tint and the ink stays dark. With ``seed`` the
    noise is the same on every run (a seeded tile), so the file's bytes are too."""
    doc = pymupdf.open(stream=pdf, filetype="pdf")
    pix = doc[page].get_pixmap(dpi=dpi, colorspace=pymupdf.csGRAY, alpha=False)
    img = Image.frombytes("L", (pix.width, pix.height), pix.samples)
    size = img.size
    if skew:
        img = img.rotate(skew, resample=Image.Resampling.BILINEAR, fillcolor=255)
    if noise:
        grain = Image.effect_noise(img.size, 40) if seed is None else _noise(img.size, seed)
        img = Image.blend(img, grain, noise)
    if lighting:
        img = ImageChops.multiply(img, _light(img.size, lighting, light_from))
    if paper is not None:
        img = ImageOps.colorize(img, black=(25, 25, 35), white=paper)
    if turn:
        img = img.rotate(turn, expand=True)
    out = io.BytesIO()
    options = ({"quality": quality} if fmt == "JPEG" else {"compression": "tiff_lzw"} if fmt == "TIFF"
               else {"compress_level": 1} if fmt == "PNG" else {})
    img.save(out, fmt, dpi=(dpi, dpi), **options)
    return Scan(out.getvalue(), dpi, skew, turn, size)


def _noise(size: tuple[int, int], seed: int, tile: int = 256) -> Image.Image:
    """Gaussian grain like ``Image.effect_noise(size, 40)``, but drawn from ``seed``: a tile of
    ``tile`` pixels square (uniform random bytes mapped through the normal distribution's quantiles)
    repeated over ``size``."""
    normal = statistics.NormalDist(128, 40)
    quantiles = [min(255, max(0, round(normal.inv_cdf((v + 0.5) / 256)))) for v in range(256)]
    block = Image.frombytes("L", (tile, tile), random.Random(seed).randbytes(tile * tile)).point(quantiles)
    out = Image.new("L", size)
    for y in range(0, size[1], tile):
        for x in range(0, size[0], tile):
            out.paste(block, (x, y))
    return out


def _light(size: tuple[int, int], strength: float, origin: tuple[float, float]) -> Image.Image:
    """A grey mask, 255 at ``origin`` (fractions of ``size``) falling off smoothly to ``255 * (1 -
    strength)`` at the farthest corner; computed small and scaled up (it has no detail)."""
    w, h = max(2, size[0] // 16), max(2, size[1] // 16)
    ox, oy = origin[0] * w, origin[1] * h
    far = max(math.hypot(cx - ox, cy - oy) for cx in (0, w) for cy in (0, h))
    mask = Image.new("L", (w, h))
    mask.putdata([round(255 * (1 - strength * (math.hypot(x - ox, y - oy) / far) ** 1.5))
                  for y in range(h) for x in range(w)])
    return mask.resize(size, Image.Resampling.BILINEAR)


def image_pdf(scans: list[Scan]) -> bytes:
    """The scans as the pages of a PDF holding only their images (no text layer), each page as large as
    its image at its resolution: what a scanner's "scan to PDF" makes."""
    doc = pymupdf.open()
    for s in scans:
        w, h = Image.open(io.BytesIO(s.data)).size
        page = doc.new_page(width=w * 72 / s.dpi, height=h * 72 / s.dpi)
        page.insert_image(page.rect, stream=s.data)
    return doc.tobytes(garbage=3, deflate=True)


def multipage_tiff(scans: list[Scan]) -> bytes:
    """The scans as the pages of one TIFF file (a scanner's multi-page output)."""
    images = [Image.open(io.BytesIO(s.data)) for s in scans]
    out = io.BytesIO()
    images[0].save(out, "TIFF", save_all=True, append_images=images[1:], compression="tiff_lzw",
                   dpi=(scans[0].dpi, scans[0].dpi))
    return out.getvalue()
