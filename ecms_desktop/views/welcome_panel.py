"""What an empty desk shows over its grid: the first steps as buttons - add the company, import the
certificates, or try the program on a demo database - and the user guide."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QFrame,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)


class WelcomePanel(QFrame):
    """The first steps, laid over ``covered`` (the certificate grid) and kept the same size as it."""

    add_company_clicked = Signal()
    import_clicked = Signal()
    demo_clicked = Signal()
    guide_clicked = Signal()
    #: The desk looked whether it is empty: the panel is shown (True) or hidden (False).
    steps_checked = Signal(bool)

    def __init__(self, covered: QWidget) -> None:
        super().__init__(covered)
        self.setObjectName("welcomePanel")
        self.setAutoFillBackground(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.covered = covered
        layout = QVBoxLayout(self)
        layout.setContentsMargins(24, 24, 24, 24)
        layout.setSpacing(10)
        self.title = QLabel("<h2>Welcome to ECMS Desktop</h2>")
        self.title.setObjectName("welcomeTitle")
        self.title.setWordWrap(True)
        self.intro = QLabel()
        self.intro.setObjectName("welcomeIntro")
        self.intro.setWordWrap(True)
        self.add_company_button = QPushButton("1. Add your company…")
        self.add_company_button.setObjectName("welcomeAddCompany")
        self.add_company_button.setToolTip("The seller that holds the certificates: its name goes on renewal "
                                           "requests and audit packs")
        self.import_button = QPushButton("2. Import certificates (CSV or Excel)…")
        self.import_button.setObjectName("welcomeImport")
        self.import_button.setToolTip("One row per certificate; documents can be dropped on the window later")
        self.demo_label = QLabel("Or try the program first on invented data, in a database of its own (yours "
                                 "is not changed; File > Open recent brings it back):")
        self.demo_label.setWordWrap(True)
        self.demo_button = QPushButton("Open a demo database…")
        self.demo_button.setObjectName("welcomeDemo")
        self.guide_button = QPushButton("Read the user guide")
        self.guide_button.setObjectName("welcomeGuide")
        self.guide_button.setFlat(True)
        for button in (self.add_company_button, self.import_button, self.demo_button, self.guide_button):
            button.setSizePolicy(button.sizePolicy().horizontalPolicy().Maximum,
                                 button.sizePolicy().verticalPolicy().Fixed)
        layout.addWidget(self.title)
        layout.addWidget(self.intro)
        layout.addSpacing(6)
        layout.addWidget(self.add_company_button)
        layout.addWidget(self.import_button)
        layout.addSpacing(12)
        layout.addWidget(self.demo_label)
        layout.addWidget(self.demo_button)
        layout.addSpacing(12)
        layout.addWidget(self.guide_button)
        layout.addStretch(1)
        self.add_company_button.clicked.connect(self.add_company_clicked)
        self.import_button.clicked.connect(self.import_clicked)
        self.demo_button.clicked.connect(self.demo_clicked)
        self.guide_button.clicked.connect(self.guide_clicked)
        covered.installEventFilter(self)
        self.setGeometry(covered.rect())
        self.hide()

    def show_steps(self, company_name: str | None) -> None:
        """Show the steps still to do: without a company, adding it; with one, importing."""
        if company_name is None:
            self.intro.setText("This database has no company yet. Start here:")
        else:
            self.intro.setText(f"{company_name} has no certificates yet. Import them, or add them from their "
                               "documents (File > Import documents).")
        self.add_company_button.setEnabled(company_name is None)
        self.add_company_button.setText("1. Add your company…" if company_name is None
                                        else f"1. Company added: {company_name}")
        self.import_button.setEnabled(company_name is not None)
        self.setGeometry(self.covered.rect())
        self.show()
        self.raise_()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self.covered and event.type() in (QEvent.Type.Resize, QEvent.Type.ChildAdded):
            self.setGeometry(self.covered.rect())
            self.raise_()  # above the grid's scroll bars too
        return False


class AddCompanyDialog(QDialog):
    """The company's name (required), its legal name, home state and the address customers answer to."""

    def __init__(self, states: list[str], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("addCompanyDialog")
        self.setWindowTitle("Add your company")
        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.name = QLineEdit()
        self.name.setObjectName("companyName")
        self.name.setPlaceholderText("e.g. Northwind Supply")
        self.legal_name = QLineEdit()
        self.legal_name.setObjectName("companyLegalName")
        self.legal_name.setPlaceholderText("as on your registrations (default: the name)")
        self.state = QComboBox()
        self.state.setObjectName("companyState")
        self.state.addItem("(none)", "")
        for code in states:
            self.state.addItem(code, code)
        self.reply_to = QLineEdit()
        self.reply_to.setObjectName("companyReplyTo")
        self.reply_to.setPlaceholderText("where customers send their certificates")
        form.addRow("Name:", self.name)
        form.addRow("Legal name:", self.legal_name)
        form.addRow("Home state:", self.state)
        form.addRow("Reply-to e-mail:", self.reply_to)
        hint = QLabel("Registrations, logo and the expiring-soon window: File > Settings, later.")
        hint.setWordWrap(True)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.ok_button = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.ok_button.setText("Add company")
        self.ok_button.setEnabled(False)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        self.name.textChanged.connect(self._on_name_text_changed)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(hint)
        layout.addWidget(self.buttons)
        self.setMinimumWidth(460)

    def _on_name_text_changed(self, text: str) -> None:
        self.ok_button.setEnabled(bool(text.strip()))

    def values(self) -> dict[str, str]:
        return {"name": self.name.text().strip(), "legal_name": self.legal_name.text().strip(),
                "state": str(self.state.currentData() or ""), "reply_to_email": self.reply_to.text().strip()}


__all__ = ["AddCompanyDialog", "WelcomePanel"]
