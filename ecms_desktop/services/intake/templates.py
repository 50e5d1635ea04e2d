"""Reading the fields of an official form we hold a blank copy of by its layout: the scan is registered to
the blank form (the template, ``identification.templates`` in the rules pack) and each field is read from
its zone.

Registration matches the anchor phrases printed on the blank form to the words read on the page and fits
a similarity transform (scale, turn, shift) to the pairs, keeping the largest set that agrees (pairs of
anchors are tried in turn; the others must land within a few points). With fewer than
:data:`MIN_ANCHORS` anchors agreeing, or with agreeing anchors that all lie in one narrow band of the blank
form (:data:`MIN_SPREAD`: one printed sentence, one column), the page is not registered and its fields are
found by their printed labels instead (:func:`~ecms_desktop.services.intake.extraction.extract_fields`).
Anchors along one line say nothing about the other direction: another document that prints the same
sentence (a certification text) at another size agrees with a fit along it by coincidence.

:func:`read_fields` is what a reader calls: the fields by zones where the page registers, by labels
elsewhere, each with a confidence that is honest about its evidence. A value is reported at 0.9 or more
only when everything speaks for it; weak evidence caps it (see :data:`CAPS`): few anchors, a value that
does not have its field's format, a value that reads like a printed label, words that reach into a
neighbouring zone, words read with low confidence, or a value found by its label on a scan (where a
neighbour's value is easily taken for it).
"""

from __future__ import annotations

import difflib
import itertools
import math
import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from ecms_desktop.rules import FieldZone, FormRule, FormTemplate, RulesPack, TemplatePage
from ecms_desktop.services.intake.extraction import FieldValue, Page, Word, extract_fields, value_trust

__all__ = ["CAPS", "MIN_ANCHORS", "MIN_SPREAD", "Registration", "confirmed", "identify_by_template", "read_fields",
           "register", "registrations"]

Box = tuple[float, float, float, float]

#: Fewer anchors than this agreeing: the page is not registered (its fields are read by labels).
MIN_ANCHORS = 4
#: The agreeing anchors must not all lie within a band of the blank form narrower than this (points, in any
#: direction): they must spread over the page, across lines and columns, for the fit to be checked in both
#: directions.
MIN_SPREAD = 48.0
#: An anchor pair agrees with a transform when it lands this close (points of the blank form).
_TOLERANCE = 6.0
#: A phrase matches an anchor when its words are at least this similar to it.
_ANCHOR_RATIO = 0.8
#: A page is a scan of the blank one only within these scales and turns.
_SCALES = (0.6, 1.7)
_MAX_TURN = 12.0
#: A registration this good (anchors agreeing, within this many points) confirms which form the page is.
CONFIRM_ANCHORS = 10
CONFIRM_RESIDUAL = 3.0
#: The most a value may be trusted when its evidence is weak, by the weakness. A weak registration (few
#: anchors, a loose fit), a value with a part not read, or two readings that disagree stay below 0.8, the
#: confidence from which a document's value that disagrees with the record blocks approval
#: (``services.validation.engine.DOCUMENT_SURE_READ``): such a reading may only ever warn.
CAPS = {
    "few_anchors": 0.75,  # registered by MIN_ANCHORS..7 anchors
    "loose_fit": 0.75,  # anchors scattered by more than 3 points around the fit
    "format": 0.6,  # the value does not have its field's format
    "label_text": 0.45,  # the value reads like printed label text
    "neighbour": 0.75,  # a word of it reaches into another field's zone
    "weak_words": 0.85,  # a word of it was read with confidence below 0.6
    "label_on_scan": 0.85,  # found by its label on an OCR page, no format to check it by
    "empty_zone": 0.5,  # found by its label where the registered zone is empty
    "incomplete": 0.75,  # a value of several parts (street, city, state, ZIP) with a part not read
    "disagree": 0.75,  # found by its label, where a weakly registered page's zone reads something else
}


@dataclass(frozen=True)
class Registration:
    """A read page registered to a template page: the similarity transform from the blank form's points to
    the page's (``x' = a x - b y + tx``, ``y' = b x + a y + ty``), how many anchors agree with it and how
    far they are from it (root mean square, points)."""

    template: FormTemplate
    page: TemplatePage
    a: float
    b: float
    tx: float
    ty: float
    anchors: int
    residual: float

    def to_template(self, x: float, y: float) -> tuple[float, float]:
        """A point of the read page in the blank form's points."""
        det = self.a * self.a + self.b * self.b
        dx, dy = x - self.tx, y - self.ty
        return ((self.a * dx + self.b * dy) / det, (-self.b * dx + self.a * dy) / det)

    @property
    def scale(self) -> float:
        return math.hypot(self.a, self.b)

    def describe(self) -> str:
        revision = f" ({self.template.revision})" if self.template.revision else ""
        return (f"registered to {self.template.file}{revision} page {self.page.page}: {self.anchors} anchors, "
                f"{self.residual:.1f} pt")


def _norm(text: str) -> str:
    return "".join(ch for ch in text.replace("&", "and").lower() if ch.isalnum())


def _center(box: Box) -> tuple[float, float]:
    return ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)


def _ordered(page: Page) -> list[Word]:
    return sorted((w for w in page.words if _norm(w.text)), key=lambda w: (w.block, w.line, w.box[0]))


def _may_match(target: str, target_chars: Counter[str], text: str) -> bool:
    """Whether ``text`` can be at least :data:`_ANCHOR_RATIO` like ``target``, from the two upper bounds of
    ``SequenceMatcher.ratio`` that need no matching (their lengths, then their characters in common): the
    full comparison, which costs most of a registration, runs only for the few that can."""
    total = len(target) + len(text)
    if not total:
        return True
    # The same arithmetic as difflib's own ratios (2.0 * matches / length), so that no boundary case differs.
    if 2.0 * min(len(target), len(text)) / total < _ANCHOR_RATIO:
        return False
    return 2.0 * sum((target_chars & Counter(text)).values()) / total >= _ANCHOR_RATIO


def _pairs(words: list[Word], tpage: TemplatePage) -> list[tuple[tuple[float, float], tuple[float, float], int]]:
    """(point on the blank form, point on the read page, index of the first word) for each anchor read once
    on the page."""
    tokens = [_norm(w.text) for w in words]
    where: dict[str, list[int]] = {}
    for i, tok in enumerate(tokens):
        where.setdefault(tok, []).append(i)
    out = []
    for anchor in tpage.anchors:
        want = [t for t in (_norm(p) for p in anchor.text.split()) if t]
        target = " ".join(want)
        target_chars = Counter(target)
        starts = {i - j for j, tok in enumerate(want) for i in where.get(tok, ())}
        hits = []
        for start in sorted(s for s in starts if s >= 0):
            for size in (len(want), len(want) - 1, len(want) + 1):
                span = words[start:start + size]
                if len(span) < max(1, size) or {(w.block, w.line) for w in span}.__len__() != 1:
                    continue
                text = " ".join(tokens[start:start + size])
                if not _may_match(target, target_chars, text):
                    continue
                ratio = difflib.SequenceMatcher(None, target, text).ratio()
                if ratio >= _ANCHOR_RATIO:
                    hits.append((ratio, start, span))
                    break
        if len({h[1] for h in hits}) != 1:
            continue  # not read, or read in two places: no use for registration
        _ratio, start, span = hits[0]
        box = (min(w.box[0] for w in span), min(w.box[1] for w in span),
               max(w.box[2] for w in span), max(w.box[3] for w in span))
        out.append((_center(anchor.box), _center(box), start))
    return out


def _fit(pairs: Sequence[tuple[tuple[float, float], tuple[float, float], int]]) -> tuple[float, float, float, float]:
    """Least-squares similarity transform (a, b, tx, ty) taking the first points of ``pairs`` to the second."""
    n = len(pairs)
    pmx = sum(p[0][0] for p in pairs) / n
    pmy = sum(p[0][1] for p in pairs) / n
    qmx = sum(p[1][0] for p in pairs) / n
    qmy = sum(p[1][1] for p in pairs) / n
    num_a = num_b = den = 0.0
    for (px, py), (qx, qy), _i in pairs:
        px, py, qx, qy = px - pmx, py - pmy, qx - qmx, qy - qmy
        num_a += px * qx + py * qy
        num_b += px * qy - py * qx
        den += px * px + py * py
    if den <= 0:
        return 1.0, 0.0, qmx - pmx, qmy - pmy
    a, b = num_a / den, num_b / den
    return a, b, qmx - (a * pmx - b * pmy), qmy - (b * pmx + a * pmy)


def _residuals(t: tuple[float, float, float, float],
               pairs: Sequence[tuple[tuple[float, float], tuple[float, float], int]]) -> list[float]:
    a, b, tx, ty = t
    scale = math.hypot(a, b) or 1.0
    return [math.hypot(a * px - b * py + tx - qx, b * px + a * py + ty - qy) / scale
            for (px, py), (qx, qy), _i in pairs]


def _plausible(t: tuple[float, float, float, float]) -> bool:
    a, b = t[0], t[1]
    return _SCALES[0] <= math.hypot(a, b) <= _SCALES[1] and abs(math.degrees(math.atan2(b, a))) <= _MAX_TURN


def _hull(points: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """The convex hull of ``points``, counter-clockwise (Andrew's monotone chain)."""
    pts = sorted(set(points))
    if len(pts) < 3:
        return pts

    def cross(o: tuple[float, float], a: tuple[float, float], b: tuple[float, float]) -> float:
        return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])

    lower: list[tuple[float, float]] = []
    upper: list[tuple[float, float]] = []
    for pt in pts:
        while len(lower) >= 2 and cross(lower[-2], lower[-1], pt) <= 0:
            lower.pop()
        lower.append(pt)
    for pt in reversed(pts):
        while len(upper) >= 2 and cross(upper[-2], upper[-1], pt) <= 0:
            upper.pop()
        upper.append(pt)
    return lower[:-1] + upper[:-1]


def _spread(points: Sequence[tuple[float, float]]) -> float:
    """The width of the narrowest band (between two parallel lines, in any direction) that holds all of
    ``points``: 0 for points along one line."""
    hull = _hull(points)
    if len(hull) < 3:
        return 0.0
    widths = []
    for k, (x0, y0) in enumerate(hull):
        x1, y1 = hull[(k + 1) % len(hull)]
        length = math.hypot(x1 - x0, y1 - y0)
        if length:
            widths.append(max(abs((x1 - x0) * (y0 - y) - (x0 - x) * (y1 - y0)) / length for x, y in hull))
    return min(widths, default=0.0)


def register(page: Page, template: FormTemplate, tpage: TemplatePage) -> Registration | None:
    """``page`` registered to the template page ``tpage``, or ``None`` when fewer than :data:`MIN_ANCHORS`
    of its anchors agree on where the blank form lies on the page, or when those that agree all lie in a
    band of the blank form narrower than :data:`MIN_SPREAD` (one printed sentence found on another
    document agrees with a fit along it by coincidence)."""
    pairs = _pairs(_ordered(page), tpage)
    if len(pairs) < MIN_ANCHORS:
        return None
    best: list[int] = []
    for i, j in itertools.combinations(range(len(pairs)), 2):
        if math.dist(pairs[i][0], pairs[j][0]) < 40:
            continue  # too close together to tell a turn
        guess = _fit([pairs[i], pairs[j]])
        if not _plausible(guess):
            continue
        agree = [k for k, r in enumerate(_residuals(guess, pairs)) if r <= _TOLERANCE]
        if len(agree) > len(best) and _spread([pairs[k][0] for k in agree]) >= MIN_SPREAD:
            best = agree
    if len(best) < MIN_ANCHORS:
        return None
    kept = [pairs[k] for k in best]
    fitted = _fit(kept)
    residuals = _residuals(fitted, kept)
    if not _plausible(fitted):
        return None
    rms = math.sqrt(sum(r * r for r in residuals) / len(residuals))
    return Registration(template, tpage, *fitted, anchors=len(kept), residual=rms)


# --------------------------------------------------------------------------- reading zones


@dataclass
class _ZoneRead:
    value: str
    confidence: float
    words: list[Word]
    caps: list[str]


def _in(point: tuple[float, float], box: Box, zone_height: float) -> bool:
    """Whether a word centred at ``point`` (blank form's points) is written in the zone ``box``: inside
    it, or a little above (a value written over the line) or below (a value that sits low)."""
    x, y = point
    return (box[0] - 1 <= x <= box[2] + 1
            and box[1] - min(0.3 * zone_height, 5.0) <= y <= box[3] + min(0.15 * zone_height, 3.0))


def _zone_words(page: Page, reg: Registration, zone: FieldZone,
                others: Sequence[FieldZone]) -> tuple[list[Word], bool]:
    """The words read inside ``zone`` (not the words printed in it on the blank form), in reading order, and
    whether one of them reaches into another field's zone."""
    printed = {_norm(t) for t in zone.printed} - {""}
    h = zone.box[3] - zone.box[1]
    inside: list[Word] = []
    reaches = False
    for w in page.words:
        tok = _norm(w.text)
        if not tok or tok in printed:
            continue
        if not _in(reg.to_template(*_center(w.box)), zone.box, h):
            continue
        inside.append(w)
        left = reg.to_template(w.box[0], _center(w.box)[1])
        right = reg.to_template(w.box[2], _center(w.box)[1])
        for other in others:
            if other.field == zone.field or other is zone:
                continue
            oh = other.box[3] - other.box[1]
            if _in(left, other.box, oh) or _in(right, other.box, oh):
                reaches = True
    # Specks and the strokes of printed boxes read as short words with little confidence: left out when
    # the zone holds words read well.
    if any(w.confidence >= 0.7 for w in inside):
        inside = [w for w in inside if w.confidence >= 0.5 or sum(ch.isalnum() for ch in w.text) > 3]
    return _in_lines(inside, reg), reaches


def _in_lines(words: list[Word], reg: Registration) -> list[Word]:
    """``words`` in reading order on the blank form (straightened): line by line, each left to right."""
    placed = sorted(((reg.to_template(*_center(w.box)), w) for w in words), key=lambda p: p[0][1])
    lines: list[list[tuple[tuple[float, float], Word]]] = []
    for item in placed:
        height = (item[1].box[3] - item[1].box[1]) / reg.scale
        if lines and item[0][1] - statistics.fmean(p[0][1] for p in lines[-1]) < 0.5 * height:
            lines[-1].append(item)
        else:
            lines.append([item])
    return [w for line in lines for _p, w in sorted(line, key=lambda p: p[0][0])]


def _label_tokens(form: FormRule, rules: RulesPack) -> set[str]:
    phrases = [p.text for ps in rules.extraction.label_fallbacks.values() for p in ps]
    if form.identification is not None:
        phrases += [p.text for ps in form.identification.labels.values() for p in ps]
        phrases += [a.text for t in form.identification.templates for pg in t.pages for a in pg.anchors]
    return {tok for phrase in phrases for tok in (_norm(x) for x in phrase.split()) if len(tok) >= 4}


def _format_checked(name: str, form: FormRule | None, rules: RulesPack) -> bool:
    """Whether the pack says what a value of ``name`` looks like (so that a wrong reading shows)."""
    if name in rules.extraction.value_formats:
        return True
    return (name == "purchaser_tax_id" and form is not None and len(form.states) == 1
            and not form.is_multistate and bool(rules.states[form.states[0]].permit.pattern))


def _read_zone_field(name: str, zones: list[FieldZone], page: Page, reg: Registration, form: FormRule,
                     rules: RulesPack, labels: set[str]) -> _ZoneRead | None:
    parts: dict[int, list[tuple[list[Word], bool]]] = {}
    for zone in zones:
        inside, reaches = _zone_words(page, reg, zone, reg.page.zones)
        if inside:
            parts.setdefault(zone.part, []).append((inside, reaches))
    if not parts:
        return None
    words: list[Word] = []
    texts: list[str] = []
    caps: list[str] = []
    for part in sorted(parts):
        options = parts[part]
        if len(options) > 1:
            caps.append("neighbour")  # two alternatives filled in: which one is meant is not sure
        chosen, reaches = max(options, key=lambda o: statistics.fmean(w.confidence for w in o[0]))
        while chosen and not any(ch.isalnum() for ch in chosen[0].text):
            chosen = chosen[1:]  # "&", "(", a tick: printed marks at the zone's edge
        while chosen and not any(ch.isalnum() for ch in chosen[-1].text):
            chosen = chosen[:-1]
        words += chosen
        texts.append(" ".join(w.text for w in chosen).strip(" :_"))
        if reaches:
            caps.append("neighbour")
    value = ", ".join(t for t in texts if t)
    if not value:
        return None
    if len({z.part for z in zones}) > len(parts):
        caps.append("incomplete")
    if not words:
        return None
    # A value is right only when every word of it is: its least sure word weighs as much as all the others.
    ocr = (statistics.fmean(w.confidence for w in words) + min(w.confidence for w in words)) / 2
    if min(w.confidence for w in words) < 0.6:
        caps.append("weak_words")
    trust = value_trust(name, value, form, rules)
    if trust < 1.0 and (_format_checked(name, form, rules) or trust <= 0.6):
        caps.append("format")
    tokens = [t for t in (_norm(x) for x in value.split()) if t]
    if tokens and sum(t in labels for t in tokens) * 2 >= len(tokens):
        caps.append("label_text")
    if reg.anchors < 8:
        caps.append("few_anchors")
    if reg.residual > 3.0:
        caps.append("loose_fit")
    confidence = ocr * trust
    for cap in caps:
        confidence = min(confidence, CAPS[cap])
    return _ZoneRead(value, confidence, words, caps)


def _union(boxes: Sequence[Box]) -> Box:
    return (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes))


def registrations(pages: Sequence[Page], form: FormRule | None) -> list[tuple[Page, Registration]]:
    """For each template page of ``form`` (of whichever revision fits best), the read page registered to it
    best; empty when the form has no templates or no page registers."""
    if form is None or form.identification is None:
        return []
    best: dict[int, tuple[Page, Registration]] = {}
    for template in form.identification.templates:
        for tpage in template.pages:
            for page in pages:
                if not page.words:
                    continue
                reg = register(page, template, tpage)
                if reg is None:
                    continue
                known = best.get(tpage.page)
                if known is None or (reg.anchors, -reg.residual) > (known[1].anchors, -known[1].residual):
                    best[tpage.page] = (page, reg)
    return [best[k] for k in sorted(best)]


def _strength(registered: Sequence[tuple[Page, Registration]]) -> int:
    """Anchors of the best registration that is tight enough to confirm the form (0 when none is)."""
    return max((r.anchors for _p, r in registered if r.residual <= CONFIRM_RESIDUAL), default=0)


def confirmed(confidence: float, registered: Sequence[tuple[Page, Registration]]) -> float:
    """How sure the form's identification is once its blank form registers to the pages: a page on which
    :data:`CONFIRM_ANCHORS` or more of its printed phrases sit where the blank form has them is that form."""
    anchors = _strength(registered)
    if anchors < CONFIRM_ANCHORS:
        return confidence
    return max(confidence, min(0.97, 0.75 + 0.01 * anchors))


def identify_by_template(pages: Sequence[Page],
                         rules: RulesPack) -> tuple[FormRule, list[tuple[Page, Registration]]] | None:
    """The form whose blank form registers to the pages clearly best (at least :data:`CONFIRM_ANCHORS`
    anchors, four more than any other form), with its registrations; ``None`` when none does."""
    scored = []
    for form in rules.forms.values():
        if form.identification is None or not form.identification.templates:
            continue
        registered = registrations(pages, form)
        scored.append((_strength(registered), form.code, form, registered))
    scored.sort(key=lambda s: (-s[0], s[1]))
    if not scored or scored[0][0] < CONFIRM_ANCHORS or (len(scored) > 1 and scored[1][0] > scored[0][0] - 4):
        return None
    return scored[0][2], scored[0][3]


def read_fields(pages: Sequence[Page], form: FormRule | None, rules: RulesPack,
                registered: Sequence[tuple[Page, Registration]] | None = None, *,
                form_confidence: float = 1.0) -> tuple[dict[str, FieldValue], list[str]]:
    """The fields of ``pages`` and notes on how they were read. For an identified form with templates, each
    page that registers to a template page (``registered``, else :func:`registrations`) has its fields read
    from their zones; every other field is
    found by its printed label (:func:`extract_fields`). Confidences are capped where the evidence is weak
    (:data:`CAPS`); a value found by its label where the registered zone is empty is kept only weakly."""
    found = dict(extract_fields(pages, form, rules, form_confidence=form_confidence))
    ocr_pages = {p.number for p in pages if any(w.confidence < 0.995 for w in p.words)}
    for name, value in list(found.items()):
        if value.page in ocr_pages and not _format_checked(name, form, rules) and name not in ("states",
                                                                                            "exempt_reason",
                                                                                            "certificate_type"):
            found[name] = FieldValue(value.value, min(value.confidence, CAPS["label_on_scan"]), value.page,
                                     value.box)
    notes: list[str] = []
    if form is None or form.identification is None or not form.identification.templates:
        return found, notes
    if registered is None:
        registered = registrations(pages, form)
    if not registered:
        notes.append(f"{form.code}: the page could not be registered to the blank form (too few of its printed "
                     "phrases were found where the blank form has them, spread across the page); fields were "
                     "found by their labels")
        return found, notes
    labels = _label_tokens(form, rules)
    zoned: dict[str, FieldValue] = {}
    weak: set[str] = set()  # fields whose zone reading rests on a weak registration only
    empty: set[str] = set()
    for page, reg in registered:
        notes.append(reg.describe())
        by_field: dict[str, list[FieldZone]] = {}
        for zone in reg.page.zones:
            by_field.setdefault(zone.field, []).append(zone)
        for name, zones in by_field.items():
            read = _read_zone_field(name, zones, page, reg, form, rules, labels)
            if read is None:
                empty.add(name)
                continue
            got = FieldValue(read.value, round(max(0.0, min(read.confidence, 1.0)), 3), page.number,
                             _union([w.box for w in read.words]))
            if name not in zoned or got.confidence > zoned[name].confidence:
                zoned[name] = got
                if "few_anchors" in read.caps or "loose_fit" in read.caps:
                    weak.add(name)
                else:
                    weak.discard(name)
    for name in empty - set(zoned):
        by_label = found.get(name)
        if by_label is not None:
            found[name] = FieldValue(by_label.value, min(by_label.confidence, CAPS["empty_zone"]), by_label.page,
                                     by_label.box)
    for name in weak & set(found):
        # A weak registration is not trusted over the printed label when the two read different values: the
        # label's value is kept, and neither is sure.
        by_label = found[name]
        if _norm(by_label.value) != _norm(zoned[name].value):
            found[name] = FieldValue(by_label.value, min(by_label.confidence, CAPS["disagree"]), by_label.page,
                                     by_label.box)
            del zoned[name]
    found.update(zoned)
    return found, notes
