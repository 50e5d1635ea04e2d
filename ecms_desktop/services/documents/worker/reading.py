"""Reading the words of a page with their boxes and confidence, in the worker: the values of its
filled form fields, else its text layer, else OCR by the ``tesseract`` program (skew measured and
corrected, orientation found), with the bounds on what an answer carries."""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import math
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any

from ecms_desktop.services.documents.worker.pictures import page_pixmap, short_text
from ecms_desktop.services.documents.worker.protocol import MAX_FIELDS, MEMORY_RE, Failure

#: Resolution a PDF page is rendered at for OCR; an image is read at its own pixels, its longer side
#: brought within OCR_MIN_SIDE..OCR_MAX_SIDE (a letter page at 200-400 dpi).
OCR_DPI = 300
OCR_MIN_SIDE = 2200
OCR_MAX_SIDE = 4400
#: Longer side, in pixels, of the small picture the skew is measured on; largest number of ink runs used.
SKEW_SIDE = 900
SKEW_POINTS = 5000
#: Margin, in inches, kept around the ink of a page when it is cut out for OCR.
INK_MARGIN = 0.15
#: Skews up to this many degrees are measured and corrected; less than SKEW_MIN is left alone.
SKEW_MAX = 8
SKEW_MIN = 0.3
#: A text layer with fewer letters and digits than this, on a page mostly covered by an image, is a
#: scan's stamp or fax header rather than the page's text: the page is OCRed instead.
TEXT_LAYER_MIN_CHARS = 40
#: A page read with a mean word confidence below this is read again turned half round (it may be upside
#: down, or sideways the other way), and the better reading kept.
OCR_RETRY_BELOW = 0.6
#: The straightened page is taken as upside down, and turned half round before it is read, when its text
#: lines have clearly more ink under their middle band than over it (Latin text has more ascenders and
#: capitals than descenders): at least ORIENT_LINES lines and a balance below -ORIENT_MARGIN.
ORIENT_LINES = 4
ORIENT_MARGIN = 0.2
#: Bounds on a ``read`` answer.
MAX_WORDS_PER_PAGE = 20_000
MAX_WORD_TEXT = 400
_RUN_RE = re.compile(b"\x01+")
_TESS_VERSION_RE = re.compile(r"tesseract\s+v?(\d[\w.\-]*)", re.IGNORECASE)


def otsu_threshold(histogram: list[int]) -> int:
    """The grey level that best separates ink from paper in ``histogram`` (256 counts; Otsu's method)."""
    total = sum(histogram)
    weighted = sum(i * h for i, h in enumerate(histogram))
    below = below_sum = 0
    best_level, best = 128, -1.0
    for level in range(256):
        below += histogram[level]
        if below == 0:
            continue
        above = total - below
        if above == 0:
            break
        below_sum += level * histogram[level]
        spread = below * above * (below_sum / below - (weighted - below_sum) / above) ** 2
        if spread > best:
            best_level, best = level, spread
    return best_level


def grey_histogram(samples: bytes, most: int = 200_000) -> tuple[list[int], int]:
    """The histogram of the grey levels of (at most ``most`` evenly spread) samples, and how many were
    counted."""
    sample = samples[::max(1, len(samples) // most)]
    histogram = [0] * 256
    for level in set(sample):
        histogram[level] = sample.count(level)
    return histogram, len(sample)


def ink_runs(samples: bytes, width: int, height: int, stride: int, limit: int = SKEW_POINTS,
             bounds: list[float] | None = None) -> list[tuple[float, int, int]]:
    """The horizontal runs of ink of an 8-bit grey picture as (middle x, y, length), at most ``limit``
    of them (evenly spaced through the page when there are more); ``bounds``, when given, receives the
    box (x0, y0, x1, y1) in pixels around all the ink."""
    histogram, counted = grey_histogram(samples)
    if sum(histogram[:128]) * 2000 < counted:
        return []  # (nearly) no ink: a blank page
    threshold = otsu_threshold(histogram)
    table = bytes(1 if v <= threshold else 0 for v in range(256))
    runs: list[tuple[float, int, int]] = []
    for y in range(height):
        row = samples[y * stride:y * stride + width].translate(table)
        runs.extend(((m.start() + m.end()) / 2, y, m.end() - m.start()) for m in _RUN_RE.finditer(row))
    if runs and bounds is not None:
        bounds.extend((min(x - n / 2 for x, _y, n in runs), runs[0][1],
                       max(x + n / 2 for x, _y, n in runs), runs[-1][1] + 1))
    if len(runs) > limit:
        step = len(runs) / limit
        runs = [runs[int(i * step)] for i in range(limit)]
    return runs


def _profile_score(runs: list[tuple[float, int, int]], angle: float, vertical: bool) -> int:
    """How sharply the ink falls into lines when projected at ``angle`` degrees (sum of squared bins)."""
    tan = math.tan(math.radians(angle))
    bins: dict[int, int] = {}
    if vertical:
        for x, y, w in runs:
            k = int(x - y * tan)
            bins[k] = bins.get(k, 0) + w
    else:
        for x, y, w in runs:
            k = int(y + x * tan)
            bins[k] = bins.get(k, 0) + w
    return sum(v * v for v in bins.values())


def estimate_skew(runs: list[tuple[float, int, int]]) -> tuple[float, bool]:
    """The page's skew in degrees (positive: the text is turned anticlockwise) and whether its lines run
    down the page (a page scanned sideways), measured by the projection profile of its ink in whole
    degrees up to ``SKEW_MAX``, across and down the page, and then in tenths."""
    if len(runs) < 50:
        return 0.0, False
    best = max((_profile_score(runs, a, vertical), a, vertical)
               for vertical in (False, True) for a in range(-SKEW_MAX, SKEW_MAX + 1))
    _, coarse, vertical = best
    fine = max((_profile_score(runs, coarse + i / 10, vertical), coarse + i / 10) for i in range(-9, 10))
    angle = round(fine[1], 1)
    return (0.0 if abs(angle) < SKEW_MIN or abs(angle) >= SKEW_MAX else angle), vertical


def line_balance(samples: bytes, width: int, height: int, stride: int) -> tuple[float, int]:
    """How the ink of a straightened page's text lines sits around their middle band: (above - below) /
    (above + below) over all lines (positive for upright Latin text, whose ascenders and capitals
    outnumber its descenders; negative upside down), and how many text lines were measured."""
    histogram, _counted = grey_histogram(samples)
    table = bytes(1 if v <= otsu_threshold(histogram) else 0 for v in range(256))
    # Every other row and every other column tell the shape of a text line as well, for a quarter of the work.
    rows = range(0, height, 2)
    counts = [samples[y * stride:y * stride + width:2].translate(table).count(1) for y in rows]
    height, width = len(counts), (width + 1) // 2
    tall = max(4, height // 400)  # a text line is 4-40 of the rows counted at 300 dpi
    # What the rules of boxes and table columns put in every row is taken away: each row counts the ink
    # above the least of the rows near it.
    reach = tall * 4
    profile = [c - min(counts[max(0, y - reach):y + reach + 1]) for y, c in enumerate(counts)]
    floor = width * 0.002
    above = below = 0
    lines = 0
    y = 0
    while y < height:
        if profile[y] <= floor:
            y += 1
            continue
        start = y
        while y < height and profile[y] > floor:
            y += 1
        band = profile[start:y]
        if not tall <= len(band) <= tall * 10:
            continue  # a rule, a speck or a block of lines run together
        peak = max(band)
        core = [i for i, v in enumerate(band) if v >= 0.4 * peak]
        if core[-1] - core[0] + 1 > 0.8 * len(band):
            continue  # no ascenders or descenders to tell by (a rule, a box, capitals only)
        above += sum(band[:core[0]])
        below += sum(band[core[-1] + 1:])
        lines += 1
    total = above + below
    return ((above - below) / total if total else 0.0), lines


def packed_rows(width: int, height: int, stride: int, samples: Any) -> bytes:
    """The rows of an 8-bit grey picture without the padding at their ends."""
    if stride == width:
        return bytes(samples[:width * height])
    return b"".join(bytes(samples[y * stride:y * stride + width]) for y in range(height))


def pgm_bytes(width: int, height: int, stride: int, samples: Any) -> bytes:
    """An 8-bit grey picture as a binary PGM file (what Tesseract reads fastest from a pipe)."""
    return b"P5\n%d %d\n255\n" % (width, height) + packed_rows(width, height, stride, samples)


def parse_tesseract_tsv(tsv: str) -> list[tuple[str, float, tuple[int, int, int, int], int, int]]:
    """The words of Tesseract's TSV output: (text, confidence 0..1, (left, top, width, height) in
    pixels, block number, line number within the page); lines are numbered through the page."""
    words: list[tuple[str, float, tuple[int, int, int, int], int, int]] = []
    lines: dict[tuple[int, int, int], int] = {}
    for row in tsv.splitlines()[1:]:
        cols = row.split("\t")
        if len(cols) < 12 or cols[0] != "5":
            continue
        text = cols[11].strip()
        try:
            conf = float(cols[10])
            block, par, line = int(cols[2]), int(cols[3]), int(cols[4])
            box = (int(cols[6]), int(cols[7]), int(cols[8]), int(cols[9]))
        except ValueError:
            continue
        if not text or conf < 0:
            continue
        line_no = lines.setdefault((block, par, line), len(lines))
        words.append((text[:MAX_WORD_TEXT], max(0.0, min(1.0, conf / 100.0)), box, block, line_no))
    return words


def _mean_confidence(words: list[list[Any]]) -> float:
    """The mean confidence of the words of a reading (0 when it has none)."""
    return sum(w[1] for w in words) / len(words) if words else 0.0


def _reading_direction(words: list[list[Any]], rotation: int) -> int:
    """The turn that shows the page upright, from how the words read follow one another on the page (in
    the page's own coordinates): ``rotation`` when its lines run down or up the page, 0 or 180 when they
    run across it."""
    across = down = 0.0
    for a, b in itertools.pairwise(words):
        if (a[6], a[7]) != (b[6], b[7]):
            continue
        dx, dy = b[2] - a[2], b[3] - a[3]
        if abs(dx) > abs(dy):
            across += dx
        else:
            down += abs(dy)
    if abs(across) > 2 * down:
        return 0 if across > 0 else 180
    return rotation


def _tesseract_env() -> dict[str, str]:
    """Tesseract's environment: one thread (OpenMP's threads make a page several times slower on a
    busy machine; see bench/README.md, "OCR")."""
    return {**os.environ, "OMP_THREAD_LIMIT": "1"}


_LINUX = sys.platform.startswith("linux")


def _die_with_parent() -> None:
    """In a child process before it starts (Linux): be killed when this worker dies, so that a worker
    killed for taking too long does not leave Tesseract running."""
    import ctypes
    import signal

    ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG



@dataclasses.dataclass(frozen=True)
class _Picture:
    """A rendering of a page to be read: 8-bit grey samples (rows without padding), its size, where its
    top-left pixel is and the matrix that made it."""

    samples: bytes
    width: int
    height: int
    x: int
    y: int
    matrix: Any
    #: The rendering turned half round after it was made (its samples reversed).
    reversed: bool = False

    def half_turned(self) -> _Picture:
        """The same rendering turned half round (no new rendering: the samples in reverse order)."""
        return dataclasses.replace(self, samples=self.samples[::-1], reversed=not self.reversed)


@dataclass
class OpenDoc:
    """A document the worker holds open, with what it learnt of it."""

    doc: Any
    page_count: int
    media_type: str
    validated: bool = False
    probe: dict[str, Any] | None = None


class PageReader:
    """Reads pages the best way each allows; remembers the version of each Tesseract program asked."""

    def __init__(self, pymupdf: Any) -> None:
        self.pymupdf = pymupdf
        #: Tesseract's version, by the path of the program (asked once).
        self.engine_versions: dict[str, str] = {}

    def _pymupdf_page(self, method: str, words: list[list[Any]]) -> dict[str, Any]:
        return {"method": method, "rotation": 0, "skew": 0.0, "words": words[:MAX_WORDS_PER_PAGE],
                "engine": "pymupdf", "engine_version": str(self.pymupdf.VersionBind), "note": ""}

    def form_page(self, page: Any, index: int) -> dict[str, Any] | None:
        """The page's filled form fields (a text value, or the chosen state of a check box or radio
        button) as words named by their field, followed by the page's printed text; None when no
        field of the page is filled."""
        try:
            widgets = list(page.widgets())
        except MemoryError:
            raise
        except Exception as exc:
            raise read_failure(index, exc) from None
        filled: list[tuple[str, str, Any]] = []
        for widget in widgets[:MAX_FIELDS]:
            value = widget.field_value
            kind = str(widget.field_type_string or "")
            if kind in ("CheckBox", "RadioButton"):
                text = str(value) if value not in (None, False, "", "Off") else ""
            else:
                text = value.strip() if isinstance(value, str) else ""
            if text:
                filled.append((str(widget.field_name or ""), text, widget.rect))
        if not filled:
            return None
        printed = self._layer_words(page, index)
        blocks = 1 + max((w[6] for w in printed), default=-1)
        words = [[text[:MAX_WORD_TEXT], 1.0, r.x0, r.y0, r.x1, r.y1, blocks + i, 0, name[:MAX_WORD_TEXT]]
                 for i, (name, text, r) in enumerate(filled)]
        return self._pymupdf_page("form_fields", words + printed)

    def _layer_words(self, page: Any, index: int) -> list[list[Any]]:
        try:
            raw = page.get_text("words", sort=True)
        except MemoryError:
            raise
        except Exception as exc:
            raise read_failure(index, exc) from None
        lines: dict[tuple[int, int], int] = {}
        words: list[list[Any]] = []
        for x0, y0, x1, y1, text, block, line, _word in raw:
            line_no = lines.setdefault((int(block), int(line)), len(lines))
            words.append([str(text)[:MAX_WORD_TEXT], 1.0, x0, y0, x1, y1, int(block), line_no, ""])
        return words

    def text_page(self, page: Any, index: int) -> dict[str, Any] | None:
        """The page's text layer, or None when it has none worth the name: no text, text that does not
        decode (a font without a Unicode map), or a few words over a page-sized picture (a scan's stamp)."""
        words = self._layer_words(page, index)
        text = "".join(w[0] for w in words)
        if not text:
            return None
        letters = sum(ch.isalnum() for ch in text)
        if text.count("\ufffd") * 10 > len(text) or letters * 2 < len(text):
            return None
        if letters < TEXT_LAYER_MIN_CHARS:
            area = abs(page.rect)
            try:
                covered = sum(abs(self.pymupdf.Rect(info["bbox"]) & page.rect) for info in page.get_image_info())
            except MemoryError:
                raise
            except Exception:
                covered = 0.0
            if area and covered >= area / 2:
                return None
        return self._pymupdf_page("text_layer", words)

    def ocr_page(self, od: OpenDoc, page: Any, index: int, tesseract: str, deadline: float) -> dict[str, Any]:
        """OCR of the page: rendered in grey (``OCR_DPI``, an image at its own pixels), its skew measured
        on a small rendering and corrected, turned a quarter when its lines run down the page, turned half
        round when its text lines have their ascenders below (:func:`line_balance`: upside down), and read
        by Tesseract; a reading with a low mean confidence is still tried again turned half round, keeping
        the better one. Word boxes are brought back to the page's own coordinates."""
        empty = {"method": "ocr", "rotation": 0, "skew": 0.0, "words": [], "engine": "tesseract",
                 "engine_version": "", "note": ""}
        if not tesseract:
            return {**empty, "method": "none", "engine": "", "note": "ocr_unavailable"}
        pymupdf = self.pymupdf
        rect = page.rect
        if not (rect.width > 0 and rect.height > 0):
            raise Failure("bad_page", f"{index + 1}\x00the page has no size")
        long_pt = max(rect.width, rect.height)
        zoom = OCR_DPI / 72.0
        try:
            info = page.get_image_info()
        except MemoryError:
            raise
        except Exception:
            info = []
        area = abs(rect)
        scanned = [i for i in info if i.get("width") and i.get("height")
                   and abs(pymupdf.Rect(i["bbox"]) & rect) >= 0.9 * area]
        if od.media_type.startswith("image/") or (len(info) == 1 and scanned):
            # A picture (or a PDF page that is one: a scan saved as PDF) is read at its own pixels, not
            # rendered larger than it was scanned.
            if scanned:
                zoom = max(int(scanned[0]["width"]), int(scanned[0]["height"])) / long_pt
            long_px = long_pt * zoom
            zoom *= min(OCR_MAX_SIDE, max(OCR_MIN_SIDE, long_px)) / long_px
            dpi = max(100, min(600, round(long_pt * zoom / 11)))
        else:
            zoom = min(zoom, OCR_MAX_SIDE / long_pt)
            dpi = max(70, round(zoom * 72))
        small_zoom = min(zoom, SKEW_SIDE / long_pt)
        small = self._grey(page, pymupdf.Matrix(small_zoom, small_zoom), index)
        bounds: list[float] = []
        runs = ink_runs(bytes(small.samples_mv), small.width, small.height, small.stride, bounds=bounds)
        del small
        skew, vertical = estimate_skew(runs)
        rotation = 90 if vertical else 0
        clip = None
        if bounds and not page.rotation:
            # Only the inked part of the page is read: margins cost Tesseract time and hold no words.
            margin = INK_MARGIN * 72
            clip = pymupdf.Rect(bounds[0] / small_zoom - margin, bounds[1] / small_zoom - margin,
                                bounds[2] / small_zoom + margin, bounds[3] / small_zoom + margin) & rect
        picture = self._picture(page, index, zoom, rotation, skew, clip)
        if runs:
            balance, lines = line_balance(picture.samples, picture.width, picture.height, picture.width)
            if lines >= ORIENT_LINES and balance < -ORIENT_MARGIN:
                rotation += 180
                picture = picture.half_turned()
        words = self._read_picture(page, index, tesseract, deadline, dpi, picture)
        if runs and _mean_confidence(words) < OCR_RETRY_BELOW:
            other = self._read_picture(page, index, tesseract, deadline, dpi, picture.half_turned())
            if _mean_confidence(other) > _mean_confidence(words):
                words, rotation = other, rotation + 180
        if rotation % 180:
            # Rules of boxes can make an upright form look sideways; Tesseract still reads its lines across
            # the page, and the words say so: their lines run left to right (or right to left) on the page.
            rotation = _reading_direction(words, rotation)
        return {**empty, "rotation": rotation % 360, "skew": skew, "words": words,
                "engine_version": self._tesseract_version(tesseract, deadline)}

    def _picture(self, page: Any, index: int, zoom: float, rotation: int, skew: float,
                 clip: Any = None) -> _Picture:
        """The page (the part ``clip`` of it, in page points, when given) rendered in grey at ``zoom``,
        turned ``rotation`` degrees clockwise and straightened by ``skew``."""
        matrix = self.pymupdf.Matrix(zoom, zoom).prerotate(rotation + skew)
        pix = self._grey(page, matrix, index, clip)
        return _Picture(packed_rows(pix.width, pix.height, pix.stride, pix.samples_mv), pix.width, pix.height,
                        pix.x, pix.y, matrix)

    def _read_picture(self, page: Any, index: int, tesseract: str, deadline: float, dpi: int,
                      picture: _Picture) -> list[list[Any]]:
        """The words Tesseract reads on ``picture``, with their boxes in the page's own coordinates."""
        pymupdf = self.pymupdf
        found = parse_tesseract_tsv(self._tesseract(
            tesseract, pgm_bytes(picture.width, picture.height, picture.width, picture.samples), dpi, index,
            deadline))
        to_page = ~picture.matrix * page.derotation_matrix
        words: list[list[Any]] = []
        for text, conf, (left, top, width, height), block, line in found[:MAX_WORDS_PER_PAGE]:
            if picture.reversed:
                left, top = picture.width - left - width, picture.height - top - height
            x0, y0 = left + picture.x, top + picture.y
            corners = [pymupdf.Point(x, y) * to_page for x in (x0, x0 + width) for y in (y0, y0 + height)]
            box = [min(p.x for p in corners), min(p.y for p in corners),
                   max(p.x for p in corners), max(p.y for p in corners)]
            words.append([text, round(conf, 3), *(round(v, 2) for v in box), block, line, ""])
        return words

    def _grey(self, page: Any, matrix: Any, index: int, clip: Any = None) -> Any:
        return page_pixmap(page, index, matrix=matrix, colorspace=self.pymupdf.csGRAY, alpha=False, annots=True,
                           clip=clip)

    def _tesseract(self, program: str, picture: bytes, dpi: int, index: int, deadline: float) -> str:
        """Tesseract's TSV for ``picture`` (a PGM), run as a child process that dies with this worker."""
        left = deadline - time.monotonic()
        if left <= 0:
            raise Failure("ocr_timeout", str(index + 1))
        command = [program, "stdin", "stdout", "--psm", "3", "--dpi", str(dpi), "-l", "eng", "tsv"]
        try:
            done = subprocess.run(command, input=picture, capture_output=True, timeout=left, check=False,
                                  env=_tesseract_env(), preexec_fn=_die_with_parent if _LINUX else None)
        except subprocess.TimeoutExpired:
            raise Failure("ocr_timeout", str(index + 1)) from None
        except OSError as exc:
            raise Failure("ocr_failed", f"{index + 1}\x00{short_text(exc)}") from None
        if done.returncode != 0:
            why = done.stderr.decode("utf-8", "replace").strip().splitlines()
            raise Failure("ocr_failed", f"{index + 1}\x00{(why[-1] if why else f'exit code {done.returncode}')[:200]}")
        return done.stdout.decode("utf-8", "replace")

    def _tesseract_version(self, program: str, deadline: float) -> str:
        if program not in self.engine_versions:
            version = ""
            with contextlib.suppress(OSError, subprocess.SubprocessError):
                done = subprocess.run([program, "--version"], capture_output=True, env=_tesseract_env(),
                                      timeout=max(1.0, min(10.0, deadline - time.monotonic())), check=False)
                found = _TESS_VERSION_RE.search(done.stdout.decode("utf-8", "replace")
                                                + done.stderr.decode("utf-8", "replace"))
                version = found.group(1) if found else ""
            self.engine_versions[program] = version
        return self.engine_versions[program]


def read_failure(index: int, exc: Exception) -> Failure:
    """A page whose fields or text cannot be read: out of memory (the worker restarts), or damaged."""
    detail = short_text(exc)
    if MEMORY_RE.search(detail) or re.search(r"\b(?:c|m|re)alloc\b", detail):
        return Failure("memory", detail, restart=True)
    return Failure("unreadable_page", f"{index + 1}\x00{detail}")
