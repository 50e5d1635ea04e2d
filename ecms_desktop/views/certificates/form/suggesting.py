"""What was read from the certificate's documents, suggested beside the fields of the form.

Each field whose value was read gets a marker under it: "Read from the scan, 82 %: …" with Accept when
the form holds something else, "✓ matches the scan" when it holds that value. Nothing read is put in a
field until the accountant accepts it (the marker's Accept, Ctrl+Shift+Y in the field, or "Accept all
≥ 90 %"); an accepted value is an ordinary unsaved edit (Save stores it, leaving asks first), and typing
another value corrects it. Values read with little confidence are shown visibly weaker ("uncertain").
Focusing a field with a value read announces it (``suggestion_focused``) so that the viewer highlights
where on the page it was read.
"""

from __future__ import annotations

import shiboken6
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QApplication,
    QBoxLayout,
    QComboBox,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ecms_desktop.services.certificates.form_spec import parse_states
from ecms_desktop.services.core.certificate_records import CertificateDetail
from ecms_desktop.services.intake.suggestions import ACCEPT_ALL_AT, Suggestion, suggestions_for
from ecms_desktop.views.certificates.form.saving import FormSaving
from ecms_desktop.views.pdf_viewer import DocumentViewer

#: Each confidence level's look: strong, normal, and visibly weaker for an uncertain reading.
LEVEL_STYLES = {
    "strong": "color: #1b5e20; font-weight: bold;",
    "normal": "color: #1f4e8c;",
    "weak": "color: #8a8a8a; font-style: italic;",
}
#: The reason given with an expiry date taken from the document.
PRINTED_EXPIRY_REASON = "The expiry date printed on the certificate"


class SuggestionMarker(QWidget):
    """Under a field: the value read from the document, how sure, and Accept (or "matches the scan")."""

    accept_clicked = Signal(str)

    def __init__(self, suggestion: Suggestion, shown_value: str) -> None:
        super().__init__()
        s = suggestion
        self.suggestion = s
        self.setObjectName(f"suggestion_{s.field}")
        #: strong | normal | weak: the look of the marker (tests and style read it).
        self.setProperty("confidence", s.level)
        # The text over the whole width of the field (a narrow form column wraps it), Accept below it.
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 2)
        layout.setSpacing(1)
        self.label = QLabel("")
        self.label.setObjectName("suggestionText")
        self.label.setWordWrap(True)
        self.label.setTextFormat(Qt.TextFormat.PlainText)
        self.label.setStyleSheet(LEVEL_STYLES[s.level])
        self.accept_button = QToolButton()
        self.accept_button.setObjectName("acceptSuggestion")
        self.accept_button.setText("Accept")
        self.accept_button.setToolTip("Put this value in the field (Ctrl+Shift+Y while in the field); you still save")
        self.accept_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # the focus stays in the field
        self.accept_button.clicked.connect(lambda: self.accept_clicked.emit(s.field))
        layout.addWidget(self.label)
        layout.addWidget(self.accept_button, 0, Qt.AlignmentFlag.AlignLeft)
        self._shown_value = shown_value
        self.agrees = False
        self.set_agrees(False)

    def set_agrees(self, agrees: bool) -> None:
        """Whether the field holds the value read: then "matches the scan", nothing to accept."""
        s = self.suggestion
        self.agrees = agrees
        self.setProperty("matches", agrees)
        if agrees:
            self.label.setText(f"✓ matches the scan ({s.percent} %)")
            self.label.setStyleSheet("color: #5f7f5f;")
        else:
            text = f"Read from the scan, {s.percent} %: {self._shown_value}"
            if s.level == "weak":
                text += " — uncertain"
            if s.note:
                text += f" ({s.note})"
            self.label.setText(text)
            self.label.setStyleSheet(LEVEL_STYLES[s.level])
        self.accept_button.setVisible(not agrees)
        # Room for a few words a line: in a narrow form the row puts its label above the field instead.
        self.label.setMinimumWidth(min(self.label.fontMetrics().horizontalAdvance(self.label.text()), 240))
        self.label.setToolTip(f"Read as {s.read!r} on page {s.page} of the document"
                              + ("" if s.box is None else "; focus the field to see where"))


class FormSuggesting(FormSaving):
    """The values read from the certificate's documents, offered beside the form's fields."""

    def _init_suggesting(self) -> None:
        """Called once the widgets exist, before anything is loaded (``CertificateForm.__init__``)."""
        self.markers: dict[str, SuggestionMarker] = {}
        self._focused_field = ""
        app = QApplication.instance()
        if isinstance(app, QApplication):
            app.focusChanged.connect(self._on_app_focus_changed)
        self.accept_suggestion_action.triggered.connect(self.accept_focused_suggestion)
        self.accept_all_button.clicked.connect(lambda: self.accept_all())
        self.builder.changed.connect(lambda _attr: self._refresh_markers())
        self.states_edit.textChanged.connect(lambda _t: self._refresh_markers())
        self.override_edit.textChanged.connect(lambda _t: self._refresh_markers())

    # ------------------------------------------------------------------ loading

    def _load(self, detail: CertificateDetail | None) -> None:
        self.suggestions = suggestions_for(detail, self.rules) if detail is not None else {}
        self._focused_field = ""
        super()._load(detail)
        if detail is None:
            self._place_markers()
        self.suggestion_focused.emit(None)

    def _rebuild_fields(self, keep_typed: bool) -> None:
        super()._rebuild_fields(keep_typed)
        self._place_markers()

    def _editor_of(self, field: str) -> QWidget | None:
        fixed: dict[str, QWidget] = {"states": self.states_edit, "form_code": self.form_combo,
                                     "exempt_reason": self.reason_combo, "expiry_override": self.override_edit}
        return fixed.get(field) or self.builder.editor(field)

    def _current(self, field: str) -> str:
        """What the form's field holds now, as text."""
        if field == "states":
            return self.states_edit.text()
        if field == "form_code":
            return self._form_code
        if field == "exempt_reason":
            return self._reason
        if field == "expiry_override":
            return self.override_edit.text()
        value = self.builder.raw_values().get(field)
        return "" if value is None else str(value)

    def _shown_value(self, s: Suggestion) -> str:
        if s.normalised and s.field == "exempt_reason":
            return next((r.label for r in self.rules.exempt_reasons if r.code == s.value), s.value)
        if s.normalised and s.field == "certificate_type":
            return s.value.replace("_", " ")
        return s.value.replace("\n", ", ")

    def _place_markers(self) -> None:
        """A marker under each field with a value read (the generated fields are new after a rebuild)."""
        for marker in self.markers.values():
            if shiboken6.isValid(marker):
                marker.setParent(None)
                marker.deleteLater()
        self.markers = {}
        for field, s in self.suggestions.items():
            editor = self._editor_of(field)
            cell = editor.parentWidget() if editor is not None else None
            layout = cell.layout() if cell is not None else None
            if editor is None or not isinstance(layout, QBoxLayout):
                continue
            marker = SuggestionMarker(s, self._shown_value(s))
            marker.accept_clicked.connect(self.accept_suggestion)
            # A click on the marker (its Accept) leaves the focus in the field, not in the scrolling form.
            marker.setFocusProxy(editor)
            layout.insertWidget(layout.indexOf(editor) + 1, marker)
            marker.setVisible(True)  # shown now, not on the next pass of the event loop
            self.markers[field] = marker
        self._refresh_markers()

    def _refresh_markers(self) -> None:
        for field, marker in self.markers.items():
            if shiboken6.isValid(marker):
                marker.set_agrees(marker.suggestion.agrees_with(self._current(field)))
        waiting = self.waiting_suggestions()
        sure = [s for s in waiting if s.confidence >= ACCEPT_ALL_AT]
        self.suggestion_bar.setVisible(bool(waiting))
        self.suggestion_summary.setText(
            "" if not waiting else
            f"{len(waiting)} value{'s' if len(waiting) != 1 else ''} read from the document differ"
            f"{'s' if len(waiting) == 1 else ''} from the form: accept or correct each one.")
        self.accept_all_button.setEnabled(bool(sure))
        self.accept_all_button.setText(f"Accept all ≥ {round(ACCEPT_ALL_AT * 100)} % ({len(sure)})")

    def waiting_suggestions(self) -> list[Suggestion]:
        """The suggestions shown whose value the form does not hold (yet)."""
        return [m.suggestion for m in self.markers.values() if shiboken6.isValid(m) and not m.agrees]

    # ------------------------------------------------------------------ accepting

    def accept_suggestion(self, field: str) -> bool:
        """Put the value read for ``field`` into the form (an unsaved edit, as if typed). False when the
        form cannot take it (a code the form does not offer)."""
        s = self.suggestions.get(field)
        if s is None or self.detail is None:
            return False
        done = self._apply(s)
        self._refresh_markers()
        return done

    def _apply(self, s: Suggestion) -> bool:
        if s.field == "states":
            if not s.normalised:
                return False
            self.choose_states(parse_states(s.value))
            return True
        if s.field == "form_code":
            if not s.normalised:
                return False
            self.choose_form(s.value)
            return True
        if s.field == "exempt_reason":
            if not s.normalised:
                return False
            self.choose_reason(s.value)
            return True
        if s.field == "expiry_override":
            self.override_edit.setText(s.value)
            if not self.override_reason_edit.text().strip():
                self.override_reason_edit.setText(PRINTED_EXPIRY_REASON)
            self._refresh_expiry()
            self._schedule_live()
            return True
        return self._apply_to_builder(s)

    def _apply_to_builder(self, s: Suggestion) -> bool:
        editor = self.builder.editor(s.field)
        if isinstance(editor, QComboBox):
            index = editor.findData(s.value)
            if index < 0:
                return False
            editor.setCurrentIndex(index)
        elif isinstance(editor, QPlainTextEdit):
            editor.setPlainText(s.value)
        elif isinstance(editor, QLineEdit):
            editor.setText(s.value)
        else:
            return False
        self.builder.changed.emit(s.field)
        self.builder.edited.emit(s.field)  # as when the user leaves the field: the type rebuilds, dates recompute
        return True

    def accept_all(self, at_least: float = ACCEPT_ALL_AT) -> list[str]:
        """Accept every suggestion the form does not hold yet read with at least ``at_least`` confidence;
        the fields taken, in the form's order (the states, form and reason first: they rebuild it)."""
        taken: list[str] = []
        for s in list(self.suggestions.values()):
            waiting = s.confidence >= at_least and not s.agrees_with(self._current(s.field))
            if waiting and self.accept_suggestion(s.field):
                taken.append(s.field)
        return taken

    def accept_focused_suggestion(self) -> bool:
        """Accept the suggestion of the field that has the focus (Ctrl+Shift+Y)."""
        field = self._field_of(QApplication.focusWidget())
        return bool(field) and self.accept_suggestion(field)

    # ------------------------------------------------------------------ focus

    def _field_of(self, widget: QWidget | None) -> str:
        """The field with a suggestion whose editor is ``widget`` or holds it (a combo's line edit)."""
        while widget is not None and widget is not self:
            for field in self.suggestions:
                if self._editor_of(field) is widget:
                    return field
            widget = widget.parentWidget()
        return ""

    def _on_app_focus_changed(self, _old: QWidget | None, now: QWidget | None) -> None:
        if not shiboken6.isValid(self) or self.detail is None or now is None:
            return  # the window lost the focus (another program): the field keeps its place
        field = self._field_of(now)
        if not field and now.window() is not self.window():
            return  # a dialog or another window: the field keeps its place
        if field != self._focused_field:
            self._focused_field = field
            self.suggestion_focused.emit(self.suggestions[field] if field else None)


def highlight_suggestion(viewer: DocumentViewer, shown_document_id: int | None, suggestion: Suggestion | None) -> None:
    """Show in ``viewer`` (which shows document ``shown_document_id``) where ``suggestion`` was read;
    None, a value with no place on the page, or one read from another document clears the highlight."""
    if suggestion is None or suggestion.box is None or suggestion.document_id != shown_document_id:
        viewer.clear_highlight()
    else:
        viewer.highlight(suggestion.page - 1, suggestion.box)
