"""Text in any script in the PDFs the program draws with reportlab.

reportlab's standard Helvetica shows Western European text only (Windows-1252); a customer named in
Arabic, Chinese or Hebrew would print as black boxes. The program ships two free fonts under
``resources/fonts`` (see THIRD-PARTY-NOTICES.md): DejaVu Sans (Latin, Greek, Cyrillic, Hebrew, Arabic
and more) and Droid Sans Fallback (Chinese and Japanese). Text keeps Helvetica wherever Helvetica can
show it, so Latin text looks and costs the same as before, and switches font per run of characters
elsewhere; reportlab embeds only the glyphs a document uses.

Hebrew and Arabic are stored in logical (reading) order, while reportlab lays text out left to right.
A line holding right-to-left letters is therefore put in display order with the Unicode bidirectional
algorithm (python-bidi), after Arabic letters are given their joined forms (arabic-reshaper). PDF
readers and text extraction read such lines back in reading order. A right-to-left name long enough
to wrap onto a second line shows its lines in the wrong order; names of that length are rare.
"""

from __future__ import annotations

import functools
import re
from typing import Any
from xml.sax.saxutils import escape

from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont

from ecms_desktop.paths import resource_path

UNICODE_FONT = "EcmsSans"  # DejaVu Sans
CJK_FONT = "EcmsSansCJK"  # Droid Sans Fallback
_FILES = {UNICODE_FONT: "DejaVuSans.ttf", CJK_FONT: "DroidSansFallbackFull.ttf"}
#: Letters of right-to-left scripts (Hebrew, Arabic, Syriac, Thaana, NKo, ... and their presentation forms).
_RTL = re.compile("[\u0590-\u08ff\ufb1d-\ufdff\ufe70-\ufeff]")


@functools.cache
def _fonts() -> dict[str, Any]:
    """The shipped fonts, registered with reportlab once (by name) and returned with their char maps."""
    maps: dict[str, Any] = {}
    for name, filename in _FILES.items():
        font = TTFont(name, str(resource_path("fonts", filename)))
        pdfmetrics.registerFont(font)
        maps[name] = font.face.charToGlyph
    return maps


def register_fonts() -> None:
    """Make the shipped fonts known to reportlab (cheap after the first call)."""
    _fonts()


@functools.cache
def _base_can_show(ch: str) -> bool:
    try:
        ch.encode("cp1252")
    except UnicodeEncodeError:
        return False
    return True


def fits_base_font(text: str) -> bool:
    """Whether Helvetica (Windows-1252) can show all of ``text``."""
    return text.isascii() or all(_base_can_show(ch) for ch in text)


def _font_for(ch: str) -> str:
    fonts = _fonts()
    code = ord(ch)
    if code in fonts[UNICODE_FONT]:
        return UNICODE_FONT
    if code in fonts[CJK_FONT]:
        return CJK_FONT
    return UNICODE_FONT  # neither has it: DejaVu's missing-glyph box, as honest as it gets


def display_order(line: str) -> str:
    """``line`` as it is to be drawn left to right: unchanged unless it holds right-to-left letters."""
    if not _RTL.search(line):
        return line
    import arabic_reshaper
    from bidi import get_display

    return str(get_display(arabic_reshaper.reshape(line), base_dir="L"))  # the book reads left to right


def runs(text: str, base_font: str) -> list[tuple[str, str]]:
    """``text`` (one line, in display order) cut into (font, text) runs: ``base_font`` where
    Helvetica can show the characters, a shipped font elsewhere."""
    if fits_base_font(text):
        return [(base_font, text)]
    out: list[tuple[str, str]] = []
    for ch in text:
        font = base_font if _base_can_show(ch) or ch.isspace() else _font_for(ch)
        if out and out[-1][0] == font:
            out[-1] = (font, out[-1][1] + ch)
        else:
            out.append((font, ch))
    return out


def markup(text: str, base_font: str) -> str:
    """Paragraph markup for plain ``text``: escaped, lines put in display order, each run outside
    Helvetica's reach in a shipped font, line breaks kept."""
    if fits_base_font(text):
        return escape(text).replace("\n", "<br/>")
    lines = []
    for line in text.split("\n"):
        parts = []
        for font, part in runs(display_order(line), base_font):
            parts.append(escape(part) if font == base_font else f'<font name="{font}">{escape(part)}</font>')
        lines.append("".join(parts))
    return "<br/>".join(lines)


def draw_string(canv: Any, x: float, y: float, text: str, font: str, size: float) -> float:
    """Draw one line at (x, y) on a reportlab canvas, switching fonts per run; returns its width."""
    start = x
    for run_font, part in runs(display_order(text), font):
        canv.setFont(run_font, size)
        canv.drawString(x, y, part)
        x += pdfmetrics.stringWidth(part, run_font, size)
    return x - start
