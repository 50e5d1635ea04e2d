"""Renders a :class:`~ecms_desktop.services.certificates.form_spec.FormSpec` as Qt widgets.

The builder knows nothing about certificates or the database: it lays out the fields the spec
names (grouped, required ones marked), shows the format to type, reads back what was typed as raw
values, and shows messages under the field they concern. :func:`dump_widget_tree` writes a stable
text picture of a form for golden-file tests.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QTableWidget,
    QVBoxLayout,
    QWidget,
)

from ecms_desktop.services.certificates.form_spec import GROUPS, FieldSpec, FormSpec

SEVERITY_COLOURS = {"error": "#c62828", "warning": "#9a5b00", "info": "#1f5fa8"}
SEVERITY_MARKS = {"error": "✖", "warning": "⚠", "info": "ℹ"}
#: What a choice shows when the certificate has no value for it yet.
NOT_KNOWN = "— not known yet —"
REQUIRED_MARK = '<span style="color:#c62828; font-weight:bold;">&nbsp;*</span>'


def message_html(items: list[tuple[str, str]]) -> str:
    """Messages as coloured lines: ``[(severity, text), ...]``."""
    out = []
    for severity, text in items:
        colour = SEVERITY_COLOURS.get(severity, SEVERITY_COLOURS["info"])
        mark = SEVERITY_MARKS.get(severity, "")
        safe = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        out.append(f'<span style="color:{colour};">{mark} {safe}</span>')
    return "<br>".join(out)


class MessageLabel(QLabel):
    """A small label under a field for its messages (hidden when there are none)."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.setObjectName(f"msg_{name}")
        self.setWordWrap(True)
        self.setTextFormat(Qt.TextFormat.RichText)
        self.setVisible(False)
        self.items: list[tuple[str, str]] = []

    def set_items(self, items: list[tuple[str, str]]) -> None:
        self.items = list(items)
        self.setText(message_html(self.items))
        self.setVisible(bool(self.items))

    def add(self, severity: str, text: str) -> None:
        self.set_items([*self.items, (severity, text)])


class PlainTextField(QPlainTextEdit):
    """A short multi-line text field (Tab moves on, it does not type a tab)."""

    def __init__(self) -> None:
        super().__init__()
        self.setTabChangesFocus(True)
        self.setFixedHeight(self.fontMetrics().lineSpacing() * 3 + 12)


#: The fewest characters a field of the form shows (it wraps under its label rather than be narrower).
#: Counted in the font's average character width, which is narrower than names and numbers as typed:
#: 18 showed only 14 letters of "Atlanta Youth Soccer Association" with DejaVu Sans on Linux.
FIELD_MIN_CHARS = 26


class FormBuilder(QWidget):
    """The generated part of the certificate form. ``build(spec, raw_values, seller=...)`` lays it
    out; ``raw_values()`` reads it back; ``set_messages`` shows messages per field."""

    edited = Signal(str)  # the field's storage attribute, when the user finished editing it
    #: Any keystroke or click that changes a field (for live validation; ``edited`` is for rebuilds).
    changed = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("generatedFields")
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self.editors: dict[str, QWidget] = {}  # by storage attribute (or rules-pack name for info)
        self.messages: dict[str, MessageLabel] = {}
        self.specs: dict[str, FieldSpec] = {}
        self.order: list[str] = []

    def build(self, spec: FormSpec, raw: dict[str, Any], *, seller: str = "") -> None:
        self.clear()
        self._build(spec, raw, seller)

    def clear(self) -> None:
        """Remove every field. The old editors fall silent first: removing the focused one would
        otherwise report an "edit" (``editingFinished`` on losing focus) with the old record's values
        into whatever the form shows next."""
        for editor in self.editors.values():
            editor.blockSignals(True)
        self.editors.clear()
        self.messages.clear()
        self.specs.clear()
        self.order.clear()
        while self._layout.count():
            item = self._layout.takeAt(0)
            w = item.widget() if item is not None else None
            if w is not None:
                w.setParent(None)
                w.deleteLater()

    def _build(self, spec: FormSpec, raw: dict[str, Any], seller: str) -> None:
        for group, title in GROUPS:
            fields = [f for f in spec.fields if f.group == group]
            if not fields:
                continue
            box = QGroupBox(title)
            box.setObjectName(f"group_{group}")
            form = QFormLayout(box)
            form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
            form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)
            form.setLabelAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignTop)
            for f in fields:
                key = f.attr or f.name
                editor = self._editor(f, raw.get(key), seller)
                editor.setObjectName(f"field_{f.name}")
                if f.kind not in ("info", "bool"):
                    # A readable field: beside a long label in a narrow pane it goes under its label
                    # (WrapLongRows) rather than shrink to a few letters.
                    editor.setMinimumWidth(max(editor.minimumSizeHint().width(),
                                               editor.fontMetrics().averageCharWidth() * FIELD_MIN_CHARS))
                editor.setProperty("required", f.required)
                tip = f.description
                if f.required_because:
                    tip = f"{tip}\nRequired: {f.required_because}".strip()
                if f.hint:
                    tip = f"{tip}\nFormat: {f.hint}".strip()
                editor.setToolTip(tip)
                label = QLabel(f.label + (REQUIRED_MARK if f.required else ""))
                label.setObjectName(f"label_{f.name}")
                label.setTextFormat(Qt.TextFormat.RichText)
                label.setBuddy(editor)
                label.setToolTip(tip)
                cell = QWidget()
                v = QVBoxLayout(cell)
                v.setContentsMargins(0, 0, 0, 0)
                v.setSpacing(1)
                v.addWidget(editor)
                msg = MessageLabel(f.name)
                v.addWidget(msg)
                form.addRow(label, cell)
                self.editors[key] = editor
                self.messages[f.name] = msg
                self.specs[key] = f
                self.order.append(key)
            self._layout.addWidget(box)
            box.setVisible(True)  # shown now, not on the next event loop pass (golden dumps, focus)

    def _editor(self, f: FieldSpec, value: Any, seller: str) -> QWidget:
        if f.kind == "info":
            text = seller if f.name == "seller_name" else ""
            if f.name == "seller_address":
                text = "as on your company profile"
            elif f.name == "home_state":
                text = "the state that issued the purchaser's number (check it on the document)"
            lab = QLabel(text)
            lab.setStyleSheet("color: palette(mid);")
            lab.setWordWrap(True)
            return lab
        if f.kind == "bool":
            box = QCheckBox("Yes" if f.name == "signature" else "")
            box.setChecked(bool(value))
            box.toggled.connect(lambda _=False, a=f.attr: self.edited.emit(a))
            box.toggled.connect(lambda _=False, a=f.attr: self.changed.emit(a))
            return box
        if f.kind == "choice":
            combo = QComboBox()
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(14)
            if not value:  # not known yet (a certificate made from an arriving document): no default shown
                combo.addItem(NOT_KNOWN, "")
            for code, label in f.choices:
                combo.addItem(label, code)
            idx = combo.findData(value or "")
            combo.setCurrentIndex(max(idx, 0))
            combo.activated.connect(lambda _=0, a=f.attr: self.edited.emit(a))
            combo.activated.connect(lambda _=0, a=f.attr: self.changed.emit(a))
            return combo
        if f.kind == "multiline":
            edit = PlainTextField()
            edit.setPlainText(str(value or ""))
            edit.setPlaceholderText(f.hint)
            edit.textChanged.connect(lambda a=f.attr: self.changed.emit(a))
            return edit
        line = QLineEdit(str(value or ""))
        line.setCursorPosition(0)  # a long name shows its beginning, not its end, until the user clicks in
        line.setPlaceholderText(f.hint)
        if f.kind == "date":
            line.setMaximumWidth(160)
        line.editingFinished.connect(lambda a=f.attr: self.edited.emit(a))
        line.textEdited.connect(lambda _t="", a=f.attr: self.changed.emit(a))
        return line

    # -- reading and messages

    def raw_values(self) -> dict[str, Any]:
        """What the fields hold, by storage attribute: text as typed, bools, choice codes."""
        out: dict[str, Any] = {}
        for key, editor in self.editors.items():
            spec = self.specs[key]
            if spec.kind == "info" or not spec.attr:
                continue
            if isinstance(editor, QCheckBox):
                out[key] = editor.isChecked()
            elif isinstance(editor, QComboBox):
                out[key] = editor.currentData()
            elif isinstance(editor, QPlainTextEdit):
                out[key] = editor.toPlainText()
            elif isinstance(editor, QLineEdit):
                out[key] = editor.text()
        return out

    def editor(self, name: str) -> QWidget | None:
        """The editor by storage attribute or rules-pack name."""
        if name in self.editors:
            return self.editors[name]
        for key, spec in self.specs.items():
            if spec.name == name:
                return self.editors[key]
        return None

    def message_label(self, name: str) -> MessageLabel | None:
        if name in self.messages:
            return self.messages[name]
        spec = self.specs.get(name)
        return self.messages.get(spec.name) if spec else None

    def is_empty(self, key: str) -> bool:
        editor = self.editors.get(key)
        if isinstance(editor, QCheckBox):
            return not editor.isChecked()
        if isinstance(editor, QPlainTextEdit):
            return not editor.toPlainText().strip()
        if isinstance(editor, QLineEdit):
            return not editor.text().strip()
        return False


def _describe(w: QWidget) -> str:
    name = w.objectName()
    bits = [type(w).__name__, name]
    if isinstance(w, QLabel):
        text = w.text()
        if name.startswith("msg_") and not w.isVisibleTo(w.window()):
            text = ""
        if text:
            bits.append(repr(text))
    elif isinstance(w, QLineEdit):
        bits.append(f"text={w.text()!r}")
        if w.placeholderText():
            bits.append(f"hint={w.placeholderText()!r}")
    elif isinstance(w, QPlainTextEdit):
        bits.append(f"text={w.toPlainText()!r}")
    elif isinstance(w, QCheckBox):
        bits.append(f"checked={w.isChecked()}")
    elif isinstance(w, QComboBox):
        items = [str(w.itemData(i) if w.itemData(i) is not None else w.itemText(i)) for i in range(w.count())]
        bits.append(f"current={w.currentData() if w.currentData() is not None else w.currentText()!r}")
        bits.append(f"items={items}")
    elif isinstance(w, QGroupBox):
        bits.append(repr(w.title()))
    if isinstance(w, QTableWidget):
        rows = []
        for r in range(w.rowCount()):
            cells = []
            for c in range(w.columnCount()):
                it = w.item(r, c)
                cells.append(it.text() if it is not None else "")
            rows.append(" | ".join(cells))
        bits.append("rows=" + repr(rows))
    if w.property("required"):
        bits.append("required")
    if not w.isEnabled():
        bits.append("disabled")
    if not w.isVisibleTo(w.window()) and not name.startswith("msg_"):
        bits.append("hidden")
    return " ".join(bits)


_QT_INTERNAL_NAMES = {"ScrollLeftButton", "ScrollRightButton"}


def dump_widget_tree(root: QWidget) -> str:
    """A stable text picture of the named widgets under ``root`` (golden-file tests)."""
    lines: list[str] = []

    def walk(w: QWidget, depth: int) -> None:
        named = bool(w.objectName()) and not w.objectName().startswith("qt_") \
            and w.objectName() not in _QT_INTERNAL_NAMES
        if named:
            lines.append("  " * depth + _describe(w))
        for child in w.findChildren(QWidget, options=Qt.FindChildOption.FindDirectChildrenOnly):
            walk(child, depth + 1 if named else depth)

    walk(root, 0)
    return "\n".join(lines) + "\n"
