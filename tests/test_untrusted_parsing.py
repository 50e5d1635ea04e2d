"""Untrusted bytes are parsed only in the document worker process.

Customer files (certificates, returned forms, e-mails, evidence) can be broken or hostile: one crashed
``ecms intake`` and another ran for minutes with growing memory when they were parsed in the main
process. This inventory reads every module of the program (views, services, CLI; not the worker
itself) with :mod:`ast` and fails when one imports PyMuPDF or PIL at module level, or calls a parser of
documents, images or e-mails (``pymupdf.open``, ``pymupdf.Document``, ``Image.open``,
``email.message_from_bytes`` and friends, ``BytesParser``, ``QPixmap.loadFromData``, ``QImage.fromData``)
outside the short allow-list below, which says for each entry why it is safe. An allow-list entry that
no longer matches anything fails too, so the list stays true.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "ecms_desktop"
#: The worker process's package: the one place that parses untrusted bytes.
WORKER = PACKAGE / "services" / "documents" / "worker"

#: Modules that may import a document library at module level, and why.
MODULE_IMPORTS: dict[str, str] = {
    "services/renewals/request_packet.py":
        "writes our own outgoing request packets (cover letter, filled library form)",
    "services/audit_pack/pdf.py": "writes the audit pack's PDF book",
}

#: (module, function) -> why this parse is not of untrusted bytes, or why it is allowed for now.
ALLOWED_CALLS: dict[tuple[str, str], str] = {
    ("services/renewals/request_packet.py", "_with_logo"):
        "opens the cover letter this program has just written with reportlab (the logo was probed in "
        "the sandbox when it was set)",
    ("services/renewals/request_packet.py", "fill_official_form"):
        "fills the company's library copy of an official form, which was probed and had its fields read "
        "in the sandbox when it was added (`ecms forms add`)",
    ("services/demo/documents.py", "_scan_pixmaps"): "demo data: renders a PDF this program generated",
    ("services/demo/documents.py", "scan_pdf"): "demo data: builds a new PDF",
    ("services/audit_pack/pdf.py", "_assemble"): "joins the cover, summaries and appendices this program wrote",
    ("services/audit_pack/pdf.py", "_placeholder"):
        "opens the page this program has just drawn with reportlab in place of a file it could not include",
    ("services/audit_pack/pdf.py", "_insert_copy"):
        "copies pages from the PDF the document worker wrote of a stored document (MuPDF's own "
        "serialisation of its stamped pages); the stored customer file itself is opened only in the worker",
    ("views/widgets/images.py", "png_image"):
        "a PNG the document worker rendered (page images, thumbnails, the logo preview), decoded as PNG only",
}

_DOC_LIBRARIES = ("pymupdf", "fitz", "PIL")
_EMAIL_PARSERS = {"message_from_bytes", "message_from_string", "message_from_file", "message_from_binary_file",
                  "BytesParser", "Parser", "BytesFeedParser", "FeedParser"}


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if WORKER not in p.parents and "migrations" not in p.parts)


class _Inventory(ast.NodeVisitor):
    """Module-level document-library imports and parser calls with the function they are in."""

    def __init__(self) -> None:
        self.module_imports: list[int] = []
        self.calls: list[tuple[str, int, str]] = []  # (qualified function, line, what)
        self.aliases: set[str] = {"pymupdf", "fitz", "_pymupdf"}
        self._scope: list[str] = []

    def _import(self, node: ast.Import | ast.ImportFrom, names: list[str]) -> None:
        if any(n.split(".")[0] in _DOC_LIBRARIES for n in names) and not self._scope:
            self.module_imports.append(node.lineno)

    def visit_Import(self, node: ast.Import) -> None:
        self._import(node, [a.name for a in node.names])
        for a in node.names:
            if a.name.split(".")[0] in ("pymupdf", "fitz"):
                self.aliases.add(a.asname or a.name)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        self._import(node, [node.module or ""])

    def _scoped(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) -> None:
        self._scope.append(node.name)
        self.generic_visit(node)
        self._scope.pop()

    visit_FunctionDef = visit_AsyncFunctionDef = visit_ClassDef = _scoped

    def visit_Call(self, node: ast.Call) -> None:
        what = self._parser(node.func)
        if what:
            functions = [s for s in self._scope]
            self.calls.append((".".join(functions) or "<module>", node.lineno, what))
        self.generic_visit(node)

    def _parser(self, func: ast.expr) -> str:
        if isinstance(func, ast.Attribute):
            base = func.value
            base_name = base.id if isinstance(base, ast.Name) else (
                base.attr if isinstance(base, ast.Attribute) else "")
            if base_name in self.aliases and func.attr in ("open", "Document"):
                return f"{base_name}.{func.attr}"
            if base_name == "Image" and func.attr == "open":
                return "Image.open"
            if base_name in ("email", "parser") and func.attr in _EMAIL_PARSERS:
                return f"email.{func.attr}"
            if func.attr in ("loadFromData", "fromData"):
                return func.attr
        if isinstance(func, ast.Name) and func.id in _EMAIL_PARSERS:
            return func.id
        return ""


def _inventory() -> dict[str, _Inventory]:
    found = {}
    for path in _modules():
        inv = _Inventory()
        inv.visit(ast.parse(path.read_text(encoding="utf-8"), str(path)))
        found[path.relative_to(PACKAGE).as_posix()] = inv
    return found


def _qualified(scope: str) -> str:
    """``Class.method`` for a method, ``function`` for a function (nested helpers count as their function)."""
    parts = scope.split(".")
    return ".".join(parts[:2]) if len(parts) > 1 and parts[0][:1].isupper() else parts[0]


def test_no_module_but_the_worker_parses_untrusted_documents_or_emails() -> None:
    inventory = _inventory()
    problems = []
    for module, inv in inventory.items():
        if inv.module_imports and module not in MODULE_IMPORTS:
            problems.append(f"{module}:{inv.module_imports[0]}: imports a document library at module level")
        for scope, line, what in inv.calls:
            if (module, _qualified(scope)) not in ALLOWED_CALLS:
                problems.append(f"{module}:{line}: {what} in {scope}: parse it in the document worker "
                                "(services/documents/sandbox.py), or allow-list it here saying why it is safe")
    assert not problems, "\n".join(problems)


def test_the_allow_list_names_only_places_that_exist() -> None:
    inventory = _inventory()
    used = {(module, _qualified(scope)) for module, inv in inventory.items() for scope, _line, _what in inv.calls}
    assert not set(ALLOWED_CALLS) - used, f"stale entries: {sorted(set(ALLOWED_CALLS) - used)}"
    importing = {module for module, inv in inventory.items() if inv.module_imports}
    assert not set(MODULE_IMPORTS) - importing, f"stale entries: {sorted(set(MODULE_IMPORTS) - importing)}"
    assert all(len(why) > 20 for why in [*ALLOWED_CALLS.values(), *MODULE_IMPORTS.values()])


def test_the_inventory_sees_a_parse_in_the_main_process(tmp_path: Path) -> None:
    source = ("import email\nimport pymupdf as pm\n\ndef sneaky(data):\n    pm.open(stream=data)\n"
              "    email.message_from_bytes(data)\n\nclass V:\n    def show(self, data):\n"
              "        QPixmap().loadFromData(data)\n")
    inv = _Inventory()
    inv.visit(ast.parse(source))
    assert inv.module_imports == [2]
    assert [(s, w) for s, _l, w in inv.calls] == [("sneaky", "pm.open"), ("sneaky", "email.message_from_bytes"),
                                                 ("V.show", "loadFromData")]
