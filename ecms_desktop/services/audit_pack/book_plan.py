"""The plan of the audit pack's PDF book: which stored certificate files go where, and how many
pages each takes.

The certificates are grouped per customer and state, in book order (:meth:`PackContent.groups`); each
stored file is probed in the document sandbox (a separate, memory-capped worker process: the files
came from customers and are untrusted), which says whether it is a PDF or an image and how many pages
it has, or why it cannot be used. :class:`ProbeJob` does this on a background thread while the
workbook is written; the book is then laid out from the plan (:mod:`ecms_desktop.services.audit_pack.book_layout`)
and put together (:mod:`ecms_desktop.services.audit_pack.pdf`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ecms_desktop.services.audit_pack.content import PackCertificate, PackContent, PackDocument, PackLine
from ecms_desktop.services.core.errors import Cancelled, DocumentError
from ecms_desktop.services.core.progress import CancelCheck
from ecms_desktop.services.documents.sandbox import DocumentSandbox


@dataclass
class DocPlan:
    """One stored document's place in the book: its copy in the pack, what it is (``pdf``, ``image``,
    or ``failed``, with the reason, for a placeholder page) and how many pages it takes."""

    cert: PackCertificate
    doc: PackDocument
    path: Path
    kind: str  # pdf | image | failed
    pages: int
    reason: str = ""


@dataclass
class Group:
    """One customer and state in the book: a summary of its certificate lines, then their documents."""

    folder: str
    label: str
    state: str
    items: list[tuple[PackCertificate, PackLine]]
    docs: list[DocPlan]

    @property
    def doc_pages(self) -> int:
        return sum(d.pages for d in self.docs)


def plan_documents(content: PackContent, files_root: Path, progress: Callable[[str], None],
                   cancel: CancelCheck, problems: list[str], sandbox: DocumentSandbox) -> list[Group]:
    """The book's groups (per customer and state, in book order) with each stored file probed once in
    ``sandbox``; a file it refuses is planned as a placeholder page, and ``problems`` says so."""
    probed: dict[str, tuple[str, int, str]] = {}
    groups: list[Group] = []
    for folder, label, state, items in content.groups():
        docs: list[DocPlan] = []
        for cert, _line in items:
            for doc in cert.documents:
                if cancel():
                    raise Cancelled("The audit pack was cancelled; nothing was kept.")
                path = files_root / doc.path_for(state)
                if doc.sha256 not in probed:
                    try:
                        result = sandbox.probe(path.read_bytes(), filename=doc.original_name, timeout=20,
                                               sha256=doc.sha256)
                        probed[doc.sha256] = (result.kind, result.page_count, "")
                    except DocumentError as exc:
                        probed[doc.sha256] = ("failed", 1, str(exc))
                        problems.append(f"Certificate {cert.id}: {doc.original_name} could not be opened "
                                        f"for the PDF book ({exc}); a placeholder page says so.")
                    progress(f"Checked {doc.original_name}")
                kind, pages, reason = probed[doc.sha256]
                docs.append(DocPlan(cert, doc, path, kind, pages if kind != "failed" else 1, reason))
        groups.append(Group(folder, label, state, list(items), docs))
    return groups


class ProbeJob:
    """Probes the pack's certificate files in the document sandbox on a background thread.

    The sandbox is a separate process, so the probes run on the other core while this process
    writes the workbook; the thread itself mostly waits on the sandbox's pipe. :meth:`result` waits
    for the plan; :meth:`stop` cancels, waits and stops the sandbox's worker (call it when the pack
    fails or is cancelled). :func:`~ecms_desktop.services.audit_pack.pdf.write_pdf` goes on with the same
    worker and stops it when done."""

    def __init__(self, content: PackContent, files_root: Path, cancel: CancelCheck | None = None) -> None:
        self.sandbox = DocumentSandbox(cache_size=2)
        self._cancel = cancel or (lambda: False)
        self._stop = threading.Event()
        self._groups: list[Group] | None = None
        self._error: BaseException | None = None
        self.problems: list[str] = []
        self.checked = 0
        self._thread = threading.Thread(target=self._run, args=(content, files_root), name="audit-pack-probe",
                                        daemon=True)
        self._thread.start()

    def _run(self, content: PackContent, files_root: Path) -> None:
        def counted(_text: str) -> None:
            self.checked += 1

        try:
            self._groups = plan_documents(content, files_root, counted,
                                          lambda: self._stop.is_set() or self._cancel(), self.problems,
                                          self.sandbox)
        except BaseException as exc:  # handed to the caller's thread by result()
            self._error = exc

    def result(self) -> tuple[list[Group], list[str]]:
        self._thread.join()
        if self._error is not None:
            raise self._error
        assert self._groups is not None
        return self._groups, self.problems

    def stop(self) -> None:
        self._stop.set()
        self.sandbox.cancel()
        self._thread.join()
        self.sandbox.close()
