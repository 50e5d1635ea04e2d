"""Pure helpers of the worker for pictures and pages: PNG encoding, an image's pixel size from its
header, password spellings, the audit pack's page stamp, and short error texts."""

from __future__ import annotations

import re
import struct
import unicodedata
import zlib
from typing import Any

from ecms_desktop.services.documents.worker.protocol import MEMORY_RE, Failure

# ------------------------------------------------------------------------------- pure helpers


def encode_png(width: int, height: int, n: int, stride: int, samples: memoryview | bytes) -> bytes:
    """Encode 8-bit grey (n=1), RGB (n=3) or RGBA (n=4) samples as PNG.

    MuPDF's own PNG writer uses zlib level 6, which costs ~70 ms on a 150-dpi page; level 1 costs
    ~20 ms and makes files ~10 % bigger, which is the better trade for an on-screen preview.
    """
    colour_type = {1: 0, 3: 2, 4: 6}[n]
    rowlen = width * n
    raw = bytearray((rowlen + 1) * height)
    view = memoryview(raw)
    src = memoryview(samples)
    for y in range(height):
        out = y * (rowlen + 1) + 1
        view[out : out + rowlen] = src[y * stride : y * stride + rowlen]
    level = 1 if width * height > 1_000_000 else 6
    compressed = zlib.compress(bytes(raw), level)

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", compressed) + chunk(b"IEND", b"")


def image_pixel_size(data: bytes, media_type: str) -> tuple[int, int] | None:
    """Width and height in pixels from the header of a PNG, JPEG, GIF or BMP (None if unknown).

    Read before MuPDF decodes anything, so that a 1 KB JPEG claiming 49069 x 6528 pixels is refused
    without allocating gigabytes.
    """
    try:
        if media_type == "image/png" and len(data) >= 24:
            w, h = struct.unpack(">II", data[16:24])
            return w, h
        if media_type == "image/gif" and len(data) >= 10:
            w, h = struct.unpack("<HH", data[6:10])
            return w, h
        if media_type == "image/bmp" and len(data) >= 26:
            w, h = struct.unpack("<ii", data[18:26])
            return abs(w), abs(h)
        if media_type == "image/jpeg":
            return _jpeg_size(data)
    except struct.error:
        return None
    return None


_SOF_MARKERS = frozenset((0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF))


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    # Largest SOF frame found (a file with two SOI markers may carry several).
    best: tuple[int, int] | None = None
    i = 2
    n = len(data)
    steps = 0
    while i + 4 <= n and steps < 100_000:
        steps += 1
        if data[i] != 0xFF:
            i += 1
            continue
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            i += 2
            continue
        if marker == 0xD9:
            i += 2
            continue
        (seglen,) = struct.unpack(">H", data[i + 2 : i + 4])
        if marker in _SOF_MARKERS and i + 9 <= n:
            h, w = struct.unpack(">HH", data[i + 5 : i + 9])
            if best is None or w * h > best[0] * best[1]:
                best = (w, h)
        if seglen < 2:
            i += 2
            continue
        i += 2 + seglen
    return best


def password_variants(password: str) -> list[str]:
    """The password as typed, then its SASLprep (RFC 4013) and NFKC forms.

    PDF 2.0 (AES-256, revision 6) requires SASLprep; MuPDF does not apply it itself, so a password
    with a soft hyphen or a feminine ordinal only works after normalising it here.
    """
    import stringprep

    mapped = []
    for ch in password:
        if stringprep.in_table_b1(ch):
            continue
        mapped.append(" " if stringprep.in_table_c12(ch) else ch)
    variants = [
        password,
        unicodedata.normalize("NFKC", "".join(mapped)),
        unicodedata.normalize("NFKC", password),
    ]
    variants.append(unicodedata.normalize("NFC", password))
    seen: list[str] = []
    for v in variants:
        if v not in seen:
            seen.append(v)
    return seen


def short_text(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    text = re.sub(r"^code=\d+:\s*", "", text)
    return text.splitlines()[0][:200].rstrip(".") if text else type(exc).__name__


def page_pixmap(page: Any, index: int, **options: Any) -> Any:
    """``page.get_pixmap(**options)`` with its faults as the worker reports them: out of memory (the worker
    restarts) or page ``index + 1`` cannot be drawn."""
    try:
        return page.get_pixmap(**options)
    except MemoryError:
        raise
    except Exception as exc:
        detail = short_text(exc)
        if MEMORY_RE.search(detail):
            raise Failure("memory", detail, restart=True) from None
        raise Failure("bad_page", f"{index + 1}\x00{detail}") from None


#: Font size of the page label ("Certificate N - Page X of Y") of the audit pack's book.
STAMP_FONT_SIZE = 7.5
_CHAR_WIDTHS: dict[str, float] = {}


def stamp_page(page: Any, text: str, own: bool) -> None:
    """Print ``text`` (a page label of the audit pack's book) on ``page`` through PyMuPDF's own drawing
    API, which wraps the existing content (whatever form its /Contents takes) in a balanced graphics
    state before adding to it.

    ``own``: a page the program drew (centred grey line at the foot); otherwise a certificate's page
    (a small label on a white backing in the bottom-right margin, upright whatever its /Rotate).
    Used by the worker for customer pages and by the book's writer for its own pages."""
    import pymupdf

    fs = STAMP_FONT_SIZE
    width = _stamp_width(text)
    visible = page.rect  # the page as shown (rotated), origin top-left
    to_page = page.derotation_matrix  # shown -> unrotated page coordinates, which the API takes
    shape = page.new_shape()
    if own:
        origin = pymupdf.Point((visible.width - width) / 2, visible.height - 22)
        gray = 0.35
    else:
        x0, y1 = visible.width - width - 14, visible.height - 4
        shape.draw_rect(pymupdf.Rect(x0 - 3, y1 - fs - 3, x0 + width + 3, y1 + 1) * to_page)
        shape.finish(color=None, fill=(1, 1, 1), fill_opacity=0.85)
        origin = pymupdf.Point(x0, y1 - 2)
        gray = 0.25
    shape.insert_text(origin * to_page, text, fontsize=fs, fontname="helv", color=(gray, gray, gray),
                      rotate=page.rotation)
    shape.commit(overlay=True)


def _stamp_width(text: str) -> float:
    """The label's width in Helvetica (per-character widths cached: measuring a whole string makes
    PyMuPDF load the font each time)."""
    import pymupdf

    for ch in text:
        if ch not in _CHAR_WIDTHS:
            _CHAR_WIDTHS[ch] = pymupdf.get_text_length(ch, fontname="helv", fontsize=1)
    return sum(_CHAR_WIDTHS[ch] for ch in text) * STAMP_FONT_SIZE


def page_ranges(pages: list[int]) -> str:
    parts: list[str] = []
    start = prev = pages[0]
    for p in [*pages[1:], -10]:
        if p == prev + 1:
            prev = p
            continue
        parts.append(f"{start + 1}" if start == prev else f"{start + 1}-{prev + 1}")
        start = prev = p
    return ", ".join(parts)


