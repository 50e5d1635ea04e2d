"""Recognising a certificate form and reading its fields from pages that have already been read.

The input is what a text layer or OCR gives: :class:`Page` objects holding :class:`Word` objects (text,
a confidence between 0 and 1, a box ``(x0, y0, x1, y1)`` in page points, block and line numbers).
Everything this module knows about forms is data in the rules pack (each form's ``identification``:
titles, number and revision patterns, printed labels and boxes; the pack's ``extraction``: generic labels,
check marks and value formats), never code.

- :func:`identify_form` answers which form the pages are (code, state, revision, a confidence) or, as an
  answer of its own, that they are not a form we know, with the reason.
- :func:`extract_fields` finds each value by its printed label (the form's own labels first, then the
  generic ones) and by the boxes marked beside printed choices, and gives it a confidence that reflects
  the OCR confidence of its words, how well the label matched, how far the label is trusted and whether
  the value has the format the pack expects (a permit number that does not fit its state's pattern is
  reported, but weakly). Nothing here touches Qt, files or the database.
"""

from __future__ import annotations

import difflib
import re
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from ecms_desktop.rules import FormRule, LabelPhrase, RulesPack

__all__ = [
    "EXTRA_FIELDS",
    "FieldValue",
    "FormGuess",
    "Page",
    "Word",
    "extract_fields",
    "identify_form",
    "value_trust",
]

Box = tuple[float, float, float, float]

#: Fields read besides the pack's vocabulary: ``certificate_type`` (``blanket``/``single``) and
#: ``states`` (two-letter codes, comma-separated).
EXTRA_FIELDS: tuple[str, ...] = ("certificate_type", "states")

#: Below this score the pages are "not a form we know".
_KNOWN_AT = 0.5
#: A title or label matches when its text is at least this similar to the words read.
_TITLE_RATIO = 0.8
_LABEL_RATIO = 0.78
#: How far a form's identification data is trusted, by its confidence in the pack.
_DATA_TRUST = {"high": 1.0, "medium": 0.9, "low": 0.75, "unverified": 0.6, "n/a": 0.6}
#: Fields that hold a name or a title, and the most words one has: more reads as a sentence (the form's
#: instructions beside a label such as "Seller:"), not as a name.
_NAME_FIELDS = frozenset({"purchaser_name", "seller_name", "signer_name", "signer_title"})
_NAME_WORDS = 15


# --------------------------------------------------------------------------- input and output


@dataclass(frozen=True)
class Word:
    """A word read on a page: its text, the reader's confidence (0..1), its box in page points and the
    block and line the reader put it in."""

    text: str
    confidence: float
    box: Box
    block: int = 0
    line: int = 0


@dataclass(frozen=True)
class Page:
    """A page that has been read: its ``number`` (1 = first page), size in points and words."""

    number: int
    width: float
    height: float
    words: tuple[Word, ...]


@dataclass(frozen=True)
class FieldValue:
    """A value read from the pages, how sure the reading is (0..1), and where it is (page number, box)."""

    value: str
    confidence: float
    page: int
    box: Box


@dataclass(frozen=True)
class FormGuess:
    """Which form the pages are. ``form_code`` is ``None`` when they are not a form we know; ``reason``
    says why in words either way. ``state`` is the form's state (``None`` for a multistate form);
    ``alternatives`` are the next best forms with their scores."""

    form_code: str | None
    state: str | None
    confidence: float
    reason: str
    revision: str = ""
    page: int | None = None
    alternatives: tuple[tuple[str, float], ...] = field(default_factory=tuple)

    @property
    def known(self) -> bool:
        """True when the pages were identified as a form of the rules pack."""
        return self.form_code is not None


# --------------------------------------------------------------------------- reading helpers


def _norm(text: str) -> str:
    """A word as compared: lower case, '&' as 'and', only letters and digits."""
    text = text.replace("&", "and").replace("\u2019", "'").lower()
    return "".join(ch for ch in text if ch.isalnum())


def _clean(word: Word) -> Word | None:
    """``word`` without the underscores of a printed fill-in line (the box shrunk to match), or ``None``
    when nothing else is left."""
    text = word.text
    if "_" not in text:
        return word if text.strip() else None
    kept = text.strip("_ ")
    if not kept or not any(ch.isalnum() for ch in kept):
        return None
    start = text.index(kept[0])
    x0, y0, x1, y1 = word.box
    step = (x1 - x0) / max(len(text), 1)
    box = (x0 + step * start, y0, x0 + step * (start + len(kept)), y1)
    return Word(kept.replace("_", " ").strip(), word.confidence, box, word.block, word.line)


def _union(boxes: Iterable[Box]) -> Box:
    items = list(boxes)
    return (min(b[0] for b in items), min(b[1] for b in items), max(b[2] for b in items), max(b[3] for b in items))


def _height(box: Box) -> float:
    return max(box[3] - box[1], 1.0)


def _ycenter(box: Box) -> float:
    return (box[1] + box[3]) / 2


@dataclass
class _Match:
    """A phrase found among a page's words: how similar (0..1) and which words."""

    ratio: float
    words: list[Word]

    @property
    def box(self) -> Box:
        return _union(w.box for w in self.words)

    @property
    def confidence(self) -> float:
        return statistics.fmean(w.confidence for w in self.words)


class _PageText:
    """One page's words in reading order, with their normalised forms, lines and text for patterns."""

    def __init__(self, page: Page) -> None:
        self.page = page
        cleaned = [c for c in (_clean(w) for w in page.words) if c is not None]
        cleaned.sort(key=lambda w: (w.block, w.line, w.box[0]))
        self.words = [w for w in cleaned if _norm(w.text)]
        self.marks_pool = cleaned
        self.tokens = [_norm(w.text) for w in self.words]
        self.index: dict[str, list[int]] = {}
        self._near: dict[str, list[str]] = {}
        self._found: dict[tuple[str, float, tuple[int, ...] | None], list[_Match]] = {}
        for i, tok in enumerate(self.tokens):
            self.index.setdefault(tok, []).append(i)
        heights = [_height(w.box) for w in self.words]
        self.median_height = statistics.median(heights) if heights else 10.0
        lines: dict[tuple[int, int], list[int]] = {}
        for i, w in enumerate(self.words):
            lines.setdefault((w.block, w.line), []).append(i)
        self.lines = list(lines.values())
        parts: list[str] = []
        self.offsets: list[tuple[int, int]] = []
        pos = 0
        for w in self.words:
            self.offsets.append((pos, pos + len(w.text)))
            parts.append(w.text)
            pos += len(w.text) + 1
        self.text = " ".join(parts)

    # ----------------------------------------------------------------- phrases

    def find(self, phrase: str, minimum: float, within: Sequence[int] | None = None) -> list[_Match]:
        """Occurrences of ``phrase`` (best first, not overlapping) among all words or the word indexes
        ``within`` (one line)."""
        key = (phrase, minimum, tuple(within) if within is not None else None)
        cached = self._found.get(key)
        if cached is None:
            cached = self._found[key] = self._find(phrase, minimum, within)
        return list(cached)

    def _find(self, phrase: str, minimum: float, within: Sequence[int] | None) -> list[_Match]:
        want = [t for t in (_norm(p) for p in phrase.split()) if t]
        if not want:
            return []
        scope = list(within) if within is not None else list(range(len(self.words)))
        if not scope:
            return []
        position = {idx: n for n, idx in enumerate(scope)}
        toks = [self.tokens[i] for i in scope]
        starts: set[int] = set()
        # Start from the phrase's two rarest words on the page (and their OCR slips): a phrase that is
        # there has at least one of them; common words ("tax", "of") would only add places to try.
        def frequency(j: int) -> int:
            return sum(len(self.index.get(t, ())) for t in self._similar(want[j])) or 10**6
        rare = sorted(range(len(want)), key=frequency)[:2]
        for j in rare:
            tok = want[j]
            for similar in self._similar(tok):
                for i in self.index.get(similar, ()):
                    if i in position:
                        starts.add(position[i] - j)
        target = " ".join(want)
        found: list[tuple[float, int, int]] = []
        for s in starts:
            for size in (len(want), len(want) - 1, len(want) + 1):
                a, b = max(s, 0), min(s + size, len(toks))
                if b <= a:
                    continue
                matcher = difflib.SequenceMatcher(None, target, " ".join(toks[a:b]))
                if matcher.real_quick_ratio() < minimum or matcher.quick_ratio() < minimum:
                    continue
                ratio = matcher.ratio()
                if ratio >= minimum:
                    found.append((ratio, a, b))
        found.sort(key=lambda f: (-f[0], f[1]))
        taken: set[int] = set()
        out: list[_Match] = []
        for ratio, a, b in found:
            span = set(range(a, b))
            if span & taken:
                continue
            taken |= span
            out.append(_Match(ratio, [self.words[scope[n]] for n in range(a, b)]))
        return out

    def _similar(self, tok: str) -> list[str]:
        """The page's words that are ``tok`` or (for words of four letters or more) an OCR slip away from it."""
        known = self._near.get(tok)
        if known is None:
            known = [tok] if tok in self.index else []
            if len(tok) >= 4:
                known += [cand for cand in self.index if cand != tok and cand[0] == tok[0]
                          and abs(len(cand) - len(tok)) <= 2
                          and difflib.SequenceMatcher(None, cand, tok).ratio() >= 0.75]
            self._near[tok] = known
        return known

    def search(self, pattern: str) -> list[Word] | None:
        """The words a regular expression (case-insensitive) matches in the page text, or ``None``."""
        found = re.search(pattern, self.text, re.IGNORECASE)
        if found is None:
            return None
        start, end = found.span()
        hit = [w for w, (a, b) in zip(self.words, self.offsets, strict=True) if a < end and b > start]
        return hit or None

    def in_margin(self, words: list[Word]) -> bool:
        """Printed where form numbers are: the top fifth or the bottom eighth of the page."""
        box = _union(w.box for w in words)
        return box[1] < self.page.height * 0.2 or box[3] > self.page.height * 0.875

    def prominent(self, match: _Match) -> bool:
        """A title printed as one: in the top third of the page or in larger letters than the page's text."""
        box = match.box
        return box[1] < self.page.height * 0.35 or _height(box) >= 1.25 * self.median_height


# --------------------------------------------------------------------------- identification


def _form_score(form: FormRule, pages: Sequence[_PageText], rules: RulesPack) -> tuple[float, int, str, list[str]]:
    """(score, page number, revision, evidence in words) of the pages being ``form``."""
    ident = form.identification
    assert ident is not None
    best: tuple[float, int, str, list[str]] = (0.0, 0, "", [])
    state_name = rules.states[form.states[0]].name if len(form.states) == 1 and not form.is_multistate else ""
    for page in pages:
        title, said = 0.0, []
        for phrase in ident.titles:
            for match in page.find(phrase.text, _TITLE_RATIO)[:3]:
                value = match.ratio * match.confidence * (1.0 if page.prominent(match) else 0.6)
                if value > title:
                    title, said = value, [f"title {phrase.text!r} ({match.ratio:.0%})"]
        number = 0.0
        for pattern in ident.numbers:
            hit = page.search(pattern.pattern)
            if hit is not None:
                number = statistics.fmean(w.confidence for w in hit) * (1.0 if page.in_margin(hit) else 0.6)
                said.append(f"number {pattern.printed}")
                break
        revision = ""
        for rev in ident.revisions:
            hit = page.search(rev.pattern)
            if hit is not None:
                revision = rev.revision
                said.append(f"revision {rev.revision}")
                if not ident.numbers:  # a form without a number is known by its printed revision instead
                    number = 0.8 * statistics.fmean(w.confidence for w in hit)
                break
        if form.is_multistate:
            support = title
        else:
            support = 1.0 if state_name and page.find(state_name, 0.9) else 0.0
            if support:
                said.append(f"state name {state_name}")
        score = (0.55 * title + 0.30 * number + 0.15 * support) * _DATA_TRUST.get(ident.confidence, 0.6)
        if score > best[0]:
            best = (score, page.page.number, revision, said)
    return best


def identify_form(pages: Sequence[Page], rules: RulesPack) -> FormGuess:
    """Which form of the rules pack ``pages`` are, from each form's titles, number and revision patterns
    (and its state's name); or "not a form we know" with the reason."""
    read = [_PageText(p) for p in pages]
    if not any(p.words for p in read):
        return FormGuess(None, None, 0.0, "nothing could be read on the pages")
    scored: list[tuple[float, str, int, str, list[str]]] = []
    for code, form in rules.forms.items():
        if form.identification is None:
            continue
        score, page, revision, said = _form_score(form, read, rules)
        if score > 0:
            scored.append((score, code, page, revision, said))
    scored.sort(key=lambda s: -s[0])
    alternatives = tuple((code, round(score, 3)) for score, code, *_ in scored[1:4])
    if not scored or scored[0][0] < _KNOWN_AT:
        near = f" (closest: {scored[0][1]}, {scored[0][0]:.0%})" if scored else ""
        return FormGuess(None, None, round(1.0 - (scored[0][0] if scored else 0.0), 3),
                         f"not a form we know: no form's title and number were found{near}",
                         alternatives=alternatives)
    score, code, page, revision, said = scored[0]
    form = rules.forms[code]
    confidence = min(score, 1.0)
    reason = f"{code}: " + ", ".join(said)
    if len(scored) > 1 and scored[1][0] >= score - 0.08:
        confidence *= 0.6
        reason += f"; {scored[1][1]} fits almost as well ({scored[1][0]:.0%})"
    state = None if form.is_multistate or len(form.states) != 1 else form.states[0]
    return FormGuess(code, state, round(confidence, 3), reason, revision, page, alternatives)


# --------------------------------------------------------------------------- fields


@dataclass
class _Found:
    value: str
    confidence: float
    page: int
    box: Box


def _label_ok(page: _PageText, match: _Match) -> bool:
    """A one-word label (``Title``, ``Date``) counts only when printed as a label: alone on its line, ended
    by a colon, or set apart from the words beside it."""
    if len(match.words) > 1:
        return True
    word = match.words[0]
    if word.text.rstrip().endswith(":"):
        return True
    same_line = [w for w in page.words if w.block == word.block and w.line == word.line and w is not word]
    after = [w for w in same_line if w.box[0] >= word.box[2] - 0.5]
    before = [w for w in same_line if w.box[2] <= word.box[0] + 0.5]
    gap_after = min((w.box[0] - word.box[2] for w in after), default=99.0)
    gap_before = min((word.box[0] - w.box[2] for w in before), default=99.0)
    return (gap_after > 1.2 * _height(word.box) and gap_before > 1.2 * _height(word.box)) or not same_line


def _zone(page: _PageText, label: _Match, position: str, labels: list[_Match]) -> list[Word]:
    """The words filled in beside ``label``: the nearest band of words on the side ``position`` says,
    stopping at the next label on the label's row; empty when that band is another label."""
    lx0, ly0, lx1, ly1 = label.box
    h = _height(label.box)
    label_words = {id(w) for m in labels for w in m.words}
    row = [m.box for m in labels if m is not label and abs(_ycenter(m.box) - _ycenter(label.box)) < h * 0.8
           and m.box[0] > lx1 - 1]
    stop = min((b[0] for b in row), default=page.page.width + 1)
    if position == "right":
        cands = [w for w in page.words if abs(_ycenter(w.box) - _ycenter(label.box)) < max(h, _height(w.box)) * 0.6
                 and (w.box[0] + w.box[2]) / 2 > lx1 and w.box[0] < stop
                 and id(w) not in {id(x) for x in label.words}]
        cands.sort(key=lambda w: w.box[0])
        out: list[Word] = []
        for w in cands:
            if id(w) in label_words or (out and w.box[0] - out[-1].box[2] > 2.5 * _height(w.box)):
                break
            out.append(w)
        return out
    reach = max(2.5 * h, 20.0)
    if position == "below":
        cands = [w for w in page.words if ly1 - 2 <= w.box[1] <= ly1 + reach]
    else:
        cands = [w for w in page.words if ly0 - reach <= w.box[3] <= ly0 + 2]
    cands = [w for w in cands if lx0 - 15 <= (w.box[0] + w.box[2]) / 2 < stop - 5
             and id(w) not in {id(x) for x in label.words}]
    if not cands:
        return []
    nearest = (min if position == "below" else max)(cands, key=lambda w: _ycenter(w.box))
    band = [w for w in cands if abs(_ycenter(w.box) - _ycenter(nearest.box)) < _height(nearest.box) * 0.6]
    if any(id(w) in label_words for w in band):
        return []
    out = []
    for w in sorted(band, key=lambda w: w.box[0]):
        # a printed label of something else, or printed text set well apart, starts here
        if out and (w.text.endswith(":") or w.box[0] - out[-1].box[2] > 5 * _height(w.box)):
            break
        out.append(w)
    return out


def value_trust(name: str, value: str, form: FormRule | None, rules: RulesPack) -> float:
    """How far ``value`` fits what the pack says field ``name`` looks like: 1 when it fits (or nothing is
    said of its form), lower when it does not (a permit number that does not fit its state's pattern, a
    date that is not a date, a name of mostly punctuation, a name as long as a sentence)."""
    formats = rules.extraction.value_formats
    if name == "purchaser_tax_id" and form is not None and len(form.states) == 1 and not form.is_multistate:
        permit = rules.states[form.states[0]].permit
        fits = permit.matches(value)
        if fits is None:
            return 0.9
        return 1.0 if fits else (0.45 if permit.confidence == "high" else 0.65)
    if name in formats:
        if not re.fullmatch(formats[name], value.strip()):
            return 0.5
        numeric = re.fullmatch(r"(\d{1,2})[/.-](\d{1,2})[/.-]\d{2,4}", value.strip())
        if numeric and not (1 <= int(numeric.group(1)) <= 12 and 1 <= int(numeric.group(2)) <= 31):
            return 0.5  # "93/15/2026": a date's shape, not a date
        return 1.0
    if name in _NAME_FIELDS and len(value.split()) > _NAME_WORDS:
        return 0.5  # a sentence, not a name
    letters = sum(ch.isalnum() for ch in value)
    return 1.0 if letters >= max(2, len(value) * 0.6) else 0.6


def _read_value(words: list[Word], label: _Match, phrase: LabelPhrase) -> tuple[str, float, Box] | None:
    text = " ".join(w.text for w in words).strip(" :")
    if not text:
        return None
    ocr = statistics.fmean(w.confidence for w in words)
    if min(w.confidence for w in words) < 0.5:
        ocr *= 0.85
    trust = phrase.weight * label.ratio ** 2 * label.confidence ** 0.5 * ocr
    return text, trust, _union(w.box for w in words)


def _labels_for(name: str, form: FormRule | None, rules: RulesPack) -> list[tuple[LabelPhrase, bool]]:
    own = list(form.identification.labels.get(name, ())) if form and form.identification else []
    generic = list(rules.extraction.label_fallbacks.get(name, ()))
    return [(p, True) for p in own] + [(p, False) for p in generic]


def _all_label_matches(page: _PageText, form: FormRule | None, rules: RulesPack) -> dict[str, list[_Match]]:
    """Every printed label of the form (and the generic ones) found on the page, by label text."""
    phrases: set[str] = set(rules.extraction.label_fallbacks and
                            [p.text for ps in rules.extraction.label_fallbacks.values() for p in ps])
    if form is not None and form.identification is not None:
        phrases |= {p.text for ps in form.identification.labels.values() for p in ps}
        for choices in (form.identification.type_choices, form.identification.reason_choices):
            phrases |= {c for cs in choices.values() for c in cs}
    found: dict[str, list[_Match]] = {}
    for text in phrases:
        single = len([t for t in text.split() if _norm(t)]) == 1
        hits: list[_Match] = []
        for line in page.lines:
            hits.extend(m for m in page.find(text, 0.9 if single else _LABEL_RATIO, line)
                        if not single or _label_ok(page, m))
        if hits:
            found[text] = hits
    return found


def _pick(hits: list[_Match], anchor: Box | None, labels: list[_Match]) -> list[_Match]:
    """The occurrences of a label to try: with an anchor (another field's label), those below it in its
    column (up to the next label on the anchor's row), nearest first."""
    if anchor is None:
        return sorted(hits, key=lambda m: -m.ratio)
    h = _height(anchor)
    right = min((m.box[0] for m in labels if abs(_ycenter(m.box) - _ycenter(anchor)) < h * 0.8
                 and m.box[0] > anchor[2]), default=10**6)
    below = [m for m in hits if m.box[1] >= anchor[3] - 2]
    column = [m for m in below if anchor[0] - 20 <= m.box[0] < right] or below
    return sorted(column, key=lambda m: (m.box[1] - anchor[1], m.box[0], -m.ratio))


#: The other party's words, by the party a field belongs to (its name's first part): a label printed right
#: after one of them ("Seller's permit / registration number") is the other party's.
_OTHER_PARTY = {"purchaser": frozenset({"seller", "sellers", "vendor", "vendors"}),
                "seller": frozenset({"purchaser", "purchasers", "buyer", "buyers"})}


def _other_partys(name: str, page: _PageText, label: _Match) -> bool:
    """Whether ``label``, found for field ``name``, is printed for the other party: one of the (up to three)
    words just before it on its line names the other party."""
    other = _OTHER_PARTY.get(name.split("_", 1)[0])
    if other is None:
        return False
    first = label.words[0]
    before = sorted((w for w in page.words if (w.block, w.line) == (first.block, first.line)
                     and w.box[2] <= first.box[0] + 0.5), key=lambda w: -w.box[0])
    edge = first.box[0]
    for word in before[:3]:
        if edge - word.box[2] > 2 * _height(word.box):
            break  # set apart: another column's text
        if _norm(word.text) in other:
            return True
        edge = word.box[0]
    return False


def _field_by_labels(name: str, page: _PageText, form: FormRule | None, rules: RulesPack,
                     matches: dict[str, list[_Match]], all_labels: list[_Match],
                     anchors: dict[str, Box]) -> _Found | None:
    parts: dict[int, _Found] = {}
    label_box: Box | None = None
    for own in (True, False):
        for phrase, is_own in _labels_for(name, form, rules):
            if is_own != own or (phrase.part in parts):
                continue
            hits = matches.get(phrase.text, [])
            anchor = anchors.get(phrase.anchor) if phrase.anchor else None
            if phrase.anchor and anchor is None:
                continue
            for label in [m for m in _pick(hits, anchor, all_labels) if not _other_partys(name, page, m)][:3]:
                read = _read_value(_zone(page, label, phrase.position, all_labels), label, phrase)
                if read is None:
                    continue
                text, trust, box = read
                parts[phrase.part] = _Found(text, trust, page.page.number, box)
                if phrase.part == 1 and label_box is None:
                    label_box = label.box
                break
        if parts:
            break
    if not parts:
        return None
    if label_box is not None:
        anchors.setdefault(name, label_box)
    ordered = [parts[k] for k in sorted(parts)]
    value = ", ".join(p.value for p in ordered)
    confidence = min(p.confidence for p in ordered) * value_trust(name, value, form, rules)
    return _Found(value, confidence, page.page.number, _union(p.box for p in ordered))


def _marked(page: _PageText, phrase: _Match, marks: set[str]) -> Word | None:
    """The check mark set in the box just left of a printed choice, if any."""
    x0 = phrase.box[0]
    yc, h = _ycenter(phrase.box), _height(phrase.box)
    for w in page.marks_pool:
        if w.text.strip() in marks and w.box[2] <= x0 + 4 and w.box[0] >= x0 - 45 \
                and abs(_ycenter(w.box) - yc) < max(h, 8.0):
            return w
    return None


def _choice(page: _PageText, options: Mapping[str, tuple[str, ...]], matches: dict[str, list[_Match]],
            marks: set[str]) -> tuple[_Found | None, int]:
    """The one option whose box is marked (value, confidence, box) and how many options are marked."""
    # Each mark belongs to the printed choice beside it that matches best (a slip-tolerant match of
    # "single purchase" can also land on "blanket purchase").
    by_mark: dict[int, tuple[float, str, _Found]] = {}
    for option, texts in options.items():
        for text in texts:
            for match in matches.get(text, []):
                mark = _marked(page, match, marks)
                if mark is None:
                    continue
                trust = mark.confidence * match.ratio ** 2 * match.confidence ** 0.5
                found = _Found(option, trust, page.page.number, _union([mark.box, match.box]))
                if id(mark) not in by_mark or match.ratio > by_mark[id(mark)][0]:
                    by_mark[id(mark)] = (match.ratio, option, found)
    chosen = {option: found for _ratio, option, found in by_mark.values()}
    if len(chosen) == 1:
        return next(iter(chosen.values())), 1
    return None, len(chosen)


def _states_on_lines(page: _PageText, rules: RulesPack, taken: set[int]) -> list[tuple[str, Word]]:
    """(state, number word) for each state abbreviation printed with an ID number filled in after it
    (the multistate forms' list of states)."""
    out: list[tuple[str, Word]] = []
    for w in page.words:
        listed = re.fullmatch(r"([A-Z]{2})[\d,]*", w.text.strip())  # "TX", or "TX25" with its footnote
        if listed is None or listed.group(1) not in rules.states or id(w) in taken:
            continue
        code = listed.group(1)
        h = _height(w.box)
        if any(0 <= w.box[0] - x.box[2] < 30 and abs(_ycenter(x.box) - _ycenter(w.box)) < h * 0.6
               for x in page.words):
            continue  # "Oakland CA 94607": a state in an address, not a line of the list
        after = sorted((x for x in page.words if x.box[0] > w.box[2] and x.box[0] - w.box[2] < 160
                        and abs(_ycenter(x.box) - _ycenter(w.box)) < h * 0.6), key=lambda x: x.box[0])
        for x in after:
            if re.fullmatch(r"[A-Z]{2}[\d,]*", x.text.strip()):
                break
            if len(x.text) >= 4 and any(ch.isdigit() for ch in x.text):
                out.append((code, x))
                break
    return out


#: A letterhead: the largest line printed in the top part of a letter's first page.
_LETTERHEAD_TOP = 0.2
_LETTERHEAD_SIZE = 1.4
#: How far a letterhead is trusted as the purchaser's name: alone, and when the letter names it again.
_LETTERHEAD_TRUST = (0.55, 0.75)
#: A heading with one of these words is a document's title, not the name of who writes it.
_TITLE_WORDS = frozenset({"certificate", "certification", "exemption", "exempt", "resale", "tax", "form"})


def _letterhead(page: _PageText | None) -> _Found | None:
    """The name printed as a letter's heading (a document that is no form we know: the business that
    writes it is the purchaser): the line in larger letters than the page's text at the top of the first
    page, of two to eight words mostly letters; more trusted when the letter names it again below."""
    if page is None:
        return None
    best: list[Word] | None = None
    for line in page.lines:
        words = [page.words[i] for i in line]
        box = _union(w.box for w in words)
        if box[1] > page.page.height * _LETTERHEAD_TOP or not 2 <= len(words) <= 8:
            continue
        text = " ".join(w.text for w in words)
        if sum(ch.isalpha() for ch in text) < 0.7 * len(text.replace(" ", "")):
            continue
        if statistics.median(_height(w.box) for w in words) < _LETTERHEAD_SIZE * page.median_height:
            continue
        if any(_norm(w.text) in _TITLE_WORDS for w in words):
            continue
        if best is None or _height(box) > _height(_union(w.box for w in best)):
            best = words
    if best is None:
        return None
    text = " ".join(w.text for w in best).strip(" ,.:")
    name = " ".join(_norm(w.text) for w in best)
    again = any(" ".join(page.tokens[i:i + len(best)]) == name
                for i in range(len(page.tokens)) if page.words[i].box[1] > _union(w.box for w in best)[3])
    trust = _LETTERHEAD_TRUST[1] if again else _LETTERHEAD_TRUST[0]
    confidence = statistics.fmean(w.confidence for w in best) * trust
    return _Found(text, confidence, page.page.number, _union(w.box for w in best))


def extract_fields(pages: Sequence[Page], form: FormRule | None, rules: RulesPack, *,
                   form_confidence: float = 1.0) -> dict[str, FieldValue]:
    """The fields read from ``pages`` (by the form's own printed labels and boxes, then generic labels;
    ``form`` may be ``None`` for a document that is not a form we know): field name -> value, confidence,
    page and box. A field that could not be read is absent. Names are the pack's field vocabulary plus
    :data:`EXTRA_FIELDS`.

    Values that follow from the form itself (its state; the exempt reason of a form made for one reason
    only) are as sure as ``form_confidence`` (the :class:`FormGuess` confidence) and their box is the
    whole first page."""
    read = [_PageText(p) for p in pages]
    found: dict[str, _Found] = {}
    marks = set(rules.extraction.check_marks)
    names = list(rules.field_names)
    # Fields other labels are anchored to go first.
    anchored = {p.anchor for n in names for p, _own in _labels_for(n, form, rules) if p.anchor}
    names.sort(key=lambda n: n not in anchored)
    for page in read:
        if not page.words:
            continue
        matches = _all_label_matches(page, form, rules)
        all_labels = [m for ms in matches.values() for m in ms]
        anchors: dict[str, Box] = {}
        for name in names:
            got = _field_by_labels(name, page, form, rules, matches, all_labels, anchors)
            if got is not None and (name not in found or got.confidence > found[name].confidence):
                found[name] = got
        if form is not None and form.identification is not None:
            for name, options in (("certificate_type", form.identification.type_choices),
                                  ("exempt_reason", form.identification.reason_choices)):
                if not options:
                    continue
                got, count = _choice(page, options, matches, marks)
                if got is not None and (name not in found or got.confidence > found[name].confidence):
                    found[name] = got
                elif count > 1:
                    found.pop(name, None)
        if form is not None and form.is_multistate:
            listed = _states_on_lines(page, rules, {id(w) for m in all_labels for w in m.words})
            if listed:
                conf = min(w.confidence for _c, w in listed) * 0.85
                found["states"] = _Found(", ".join(c for c, _w in listed), conf, page.page.number,
                                         _union(w.box for _c, w in listed))
                code, word = listed[0]
                fits = rules.states[code].permit.matches(word.text)
                trust = 0.8 if fits is not False else 0.4
                found.setdefault("purchaser_tax_id", _Found(word.text, word.confidence * trust,
                                                            page.page.number, word.box))
    first = next((p.page for p in read if p.words), None)
    if form is None and "purchaser_name" not in found:
        heading = _letterhead(next((p for p in read if p.words), None))
        if heading is not None:
            found["purchaser_name"] = heading
    if form is not None and first is not None:
        whole = (0.0, 0.0, first.width, first.height)
        if not form.is_multistate and len(form.states) == 1:
            found.setdefault("states", _Found(form.states[0], 0.95 * form_confidence, first.number, whole))
        if len(form.exempt_reasons) == 1:
            found.setdefault("exempt_reason", _Found(form.exempt_reasons[0], 0.9 * form_confidence, first.number,
                                                     whole))
    return {name: FieldValue(f.value, round(max(0.0, min(f.confidence, 1.0)), 3), f.page, f.box)
            for name, f in found.items()}
