"""Reading an arriving document: its words as the document sandbox reads them (form fields, text layer or
OCR), the form they are, and the fields they hold, with for each value a confidence, the page and the box.

:func:`read_document` runs the sandbox's ``read_pages`` (in its worker process, with its time and memory
limits), turns the pages into :mod:`~ecms_desktop.services.intake.extraction`'s input (the one adapter
between the two) and identifies the form and extracts its fields. It never raises for a document that
cannot be read: the answer is then method ``none`` with a note saying why. :class:`DocumentReading` is
what is stored with the document (``document.extraction``, :meth:`DocumentReading.to_json`) and printed
by ``ecms intake --format json``. What is read is a suggestion only; nothing here changes a record.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from ecms_desktop.rules import RulesPack
from ecms_desktop.services.core.errors import DocumentError
from ecms_desktop.services.documents import shared_sandbox
from ecms_desktop.services.documents.results import DocumentText, PageText, turn_box
from ecms_desktop.services.documents.sandbox import DocumentSandbox
from ecms_desktop.services.intake.extraction import Page, Word, identify_form
from ecms_desktop.services.intake.templates import confirmed, identify_by_template, read_fields, registrations

__all__ = ["NOTHING_READ", "DocumentReading", "ReadField", "ReadValue", "read_arriving_document", "read_document",
           "read_page_ranges"]

log = logging.getLogger(__name__)

Box = tuple[float, float, float, float]

#: The note of a document none of whose pages gave a word.
NOTHING_READ = "nothing could be read"
#: The document's method is the best one any of its pages was read by, in this order.
_METHODS = ("form_fields", "text_layer", "ocr")


@dataclass(frozen=True)
class ReadValue:
    """A value read from the document and how sure the reading is (0..1); ``value`` is empty when unknown."""

    value: str = ""
    confidence: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {"value": self.value, "confidence": round(self.confidence, 4)}


@dataclass(frozen=True)
class ReadField:
    """A field's value read from the document: how sure (0..1), on which page (1 = first) and where
    (``box``: ``(x0, y0, x1, y1)`` in points in the page's own coordinates, as the sandbox gives them)."""

    value: str
    confidence: float
    page: int
    box: Box

    def to_json(self) -> dict[str, Any]:
        return {"value": self.value, "confidence": round(self.confidence, 4), "page": self.page,
                "box": [round(v, 2) for v in self.box]}


@dataclass(frozen=True)
class DocumentReading:
    """What was read from one document.

    ``method``: ``form_fields``, ``text_layer`` or ``ocr`` (the best way any of its pages was read), or
    ``none`` when nothing could be read (``notes`` says why). ``form_code`` and ``state`` are empty when
    the document is not a form we know (``form_code``'s confidence is then how sure that answer is).
    ``engine``/``engine_version`` name the reader of the pages read by ``method``; ``seconds`` is the
    whole reading's time."""

    method: str
    form_code: ReadValue
    state: ReadValue
    fields: Mapping[str, ReadField] = field(default_factory=dict)
    engine: str = ""
    engine_version: str = ""
    seconds: float = 0.0
    notes: tuple[str, ...] = ()

    def summary(self) -> str:
        """One line for people: how the document was read and what it says it is, or why nothing was read."""
        if self.method == "none":
            why = [n for n in self.notes if n != NOTHING_READ]
            return NOTHING_READ + (f" ({'; '.join(why)})" if why else "")
        how = {"form_fields": "its form fields", "text_layer": "its text", "ocr": "OCR"}.get(self.method, self.method)
        what = (f"form {self.form_code.value} ({self.form_code.confidence:.0%})" if self.form_code.value
                else "not a form we know")
        name = self.fields.get("purchaser_name")
        who = f", purchaser {name.value} ({name.confidence:.0%})" if name is not None and name.value else ""
        return f"read by {how}: {what}{who}"

    def to_json(self) -> dict[str, Any]:
        """The JSON-ready form stored in ``document.extraction`` and printed by ``ecms intake``."""
        return {"method": self.method, "form_code": self.form_code.to_json(), "state": self.state.to_json(),
                "fields": {name: value.to_json() for name, value in sorted(self.fields.items())},
                "engine": self.engine, "engine_version": self.engine_version, "seconds": round(self.seconds, 3),
                "notes": list(self.notes)}


def _turn_of(page: PageText) -> int:
    """The clockwise turn that shows ``page`` upright: its /Rotate and the turn its reading needed."""
    return (page.page_rotation + page.rotation) % 360


def _page(page: PageText) -> Page:
    """The adapter: one page the sandbox read as extraction's input, turned upright (extraction reads
    labels and values by where they are: left of, below)."""
    turn = _turn_of(page)
    width, height = (page.height, page.width) if turn in (90, 270) else (page.width, page.height)
    words = tuple(Word(w.text, w.confidence, turn_box(w.box, page.width, page.height, turn), w.block, w.line)
                  for w in page.words)
    return Page(page.index + 1, width, height, words)


def _own_box(box: Box, page: PageText) -> Box:
    """A box of the upright page (extraction's) back in the page's own coordinates."""
    turn = _turn_of(page)
    if not turn:
        return box
    width, height = (page.height, page.width) if turn in (90, 270) else (page.width, page.height)
    return turn_box(box, width, height, 360 - turn)


def _nothing(started: float, notes: tuple[str, ...]) -> DocumentReading:
    return DocumentReading("none", ReadValue(), ReadValue(), {}, seconds=time.perf_counter() - started,
                           notes=tuple(dict.fromkeys((*notes, NOTHING_READ))))


def read_document(data: bytes, filename: str, rules: RulesPack, *, sandbox: DocumentSandbox | None = None,
                  password: str | None = None) -> DocumentReading:
    """Read ``data`` (a PDF or an image named ``filename``) in the document sandbox (``sandbox``, else the
    shared one): its words, the form of the rules pack it is, and its fields. A document that cannot be
    read (damaged, locked, too slow, no words at all) gives method ``none`` and a note saying why."""
    started = time.perf_counter()
    try:
        if sandbox is None:
            text = shared_sandbox.read_pages(data, filename=filename, password=password)
        else:
            text = sandbox.read_pages(data, filename=filename, password=password)
    except DocumentError as exc:
        return _nothing(started, (str(exc),))
    return _reading(text, rules, started)


def read_arriving_document(data: bytes, filename: str, rules: RulesPack) -> DocumentReading:
    """What an arriving document says, read in the shared sandbox, for storing with it: a fault of the reading
    itself never stops the document's arrival (it is stored with "nothing could be read" and the reason)."""
    try:
        return read_document(data, filename, rules)
    except Exception as exc:
        log.exception("reading %s failed", filename)
        return DocumentReading("none", ReadValue(), ReadValue(),
                               notes=(f"{filename}: could not be read because of an error in this program "
                                      f"({type(exc).__name__}).", NOTHING_READ))


def read_page_ranges(data: bytes, filename: str, rules: RulesPack, ranges: Sequence[tuple[int, int]]
                     ) -> list[DocumentReading]:
    """Each page range of ``data`` (1-based, inclusive, in the file's pages) read as a document of its own,
    the file being read once in the shared sandbox (a document split into one per certificate). Pages and
    boxes stay the file's. Never raises for what cannot be read (each reading then says so)."""
    started = time.perf_counter()
    try:
        text = shared_sandbox.read_pages(data, filename=filename, max_pages=max(last for _, last in ranges))
        return [_reading(replace(text, pages=tuple(p for p in text.pages if first <= p.index + 1 <= last)), rules,
                         started) for first, last in ranges]
    except DocumentError as exc:
        return [_nothing(started, (str(exc),)) for _ in ranges]
    except Exception as exc:
        log.exception("reading %s failed", filename)
        return [_nothing(started, (f"{filename}: could not be read because of an error in this program "
                                   f"({type(exc).__name__}).",)) for _ in ranges]


def _reading(text: DocumentText, rules: RulesPack, started: float) -> DocumentReading:
    notes = tuple(dict.fromkeys((*text.notes, *(p.note for p in text.pages if p.note))))
    read = [p for p in text.pages if p.words]
    if not read:
        return _nothing(started, notes)
    method = next(m for m in (*_METHODS, read[0].method) if any(p.method == m for p in read))
    first = next(p for p in read if p.method == method)
    pages = [_page(p) for p in text.pages]
    by_number = {p.index + 1: p for p in text.pages}
    guess = identify_form(pages, rules)
    form = rules.form(guess.form_code) if guess.form_code else None
    registered = registrations(pages, form)
    confidence, state_code = guess.confidence, guess.state
    if not registered:
        # A scan whose title was not read (or read as another form) may still be an official form whose
        # blank copy registers to it clearly.
        by_layout = identify_by_template(pages, rules)
        if by_layout is not None:
            form, registered = by_layout
            confidence = 0.0
            state_code = None if form.is_multistate or len(form.states) != 1 else form.states[0]
            notes = (*notes, f"{form.code}: identified by its layout" + (
                f" (its title and number pointed to {guess.form_code})" if guess.form_code else ""))
    confidence = confirmed(confidence, registered)
    found, how = read_fields(pages, form, rules, registered, form_confidence=confidence)
    notes = (*notes, *how)
    fields = {name: ReadField(v.value, v.confidence, v.page,
                              _own_box(v.box, by_number[v.page]) if v.page in by_number else v.box)
              for name, v in found.items()}
    if form is not None:
        form_code = ReadValue(form.code, confidence)
    else:
        form_code = ReadValue("", guess.confidence)
        notes = (*notes, guess.reason)  # "not a form we know: ..." or "nothing could be read ..."
    states = fields.get("states")
    if form is not None and state_code:
        state = ReadValue(state_code, confidence)
    elif states is not None and "," not in states.value:
        state = ReadValue(states.value, states.confidence)
    else:
        state = ReadValue()
    return DocumentReading(method, form_code, state, fields, first.engine, first.engine_version,
                           time.perf_counter() - started, notes)
