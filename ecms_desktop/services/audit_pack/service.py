"""Offline audit packs: everything a state auditor asks for, for a period, in one folder and one zip.

A pack holds ``audit-pack.xlsx`` (summary, certificates, coverage, findings, permit checks, renewal
history, audit trail), ``audit-pack.pdf`` (a book: cover, contents, per customer and state a summary
page followed by the certificate's own pages, appendices), the original certificate files under
``certificates/<customer>/<state>/<file>`` byte for byte, ``manifest.json`` and ``SHA256SUMS``. Later,
:func:`ecms_desktop.services.audit_pack.verify.verify_pack` proves that nothing in it was changed.

Which certificates: those of the company whose validity (effective or signed date through the
line's expiry) overlaps the period in a selected state, and that held one of the selected review
states at some time during that overlap (by default ``approved``: the certificates that were in
force). The review history comes from the audit trail, so a certificate archived since, or expired
since, is included where it was in force, and its status *during the period* is stated.

Each table of the pack (certificates, sales coverage, validation findings, permit checks, renewal
history, audit trail) is read by a small **section provider**
(:mod:`ecms_desktop.services.audit_pack.sections`).

Determinism: rows and sheets are in a fixed order, reportlab runs in invariant mode, the zip
entries and the workbook's parts carry the generation time, so two runs over unchanged data with
the same ``generated_at`` give byte-identical files (``manifest.json`` additionally records the
audit-trail head, which the previous run's own audit event has moved).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import shutil
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select

from ecms_desktop.models import Certificate, Company, CoverageLine, Customer, DocumentFile, ReviewState
from ecms_desktop.models.validation import ValidationRun
from ecms_desktop.rules import RulesPack, load_rules_pack
from ecms_desktop.services.audit_pack.book_plan import ProbeJob
from ecms_desktop.services.audit_pack.content import PDF_NAME, WORKBOOK_NAME, AuditPackSelection
from ecms_desktop.services.audit_pack.gather import candidate_certificate_ids, gather
from ecms_desktop.services.audit_pack.manifest import PACK_EVENT, sha256_file, write_manifest, write_zip
from ecms_desktop.services.audit_pack.pdf import write_pdf
from ecms_desktop.services.audit_pack.sections import chunks, default_providers
from ecms_desktop.services.audit_pack.workbook import write_workbook
from ecms_desktop.services.core import audit
from ecms_desktop.services.core.company_lookup import find_company
from ecms_desktop.services.core.database import Database
from ecms_desktop.services.core.errors import Cancelled, ValidationError
from ecms_desktop.services.core.progress import CancelCheck, Progress
from ecms_desktop.services.customers.service import find_customer

#: The audit-trail action written when a pack has been generated.


def _no_progress(done: int, total: int, text: str = "") -> None:
    return None


def _never() -> bool:
    return False


# ================================================================================ orchestration


@dataclass(frozen=True)
class AuditPackResult:
    """What was generated: where, how much, and the manifest's hash (also in the audit trail)."""

    folder: Path
    zip_path: Path | None
    certificates: int
    lines: int
    documents: int
    pdf_pages: int
    files: int
    manifest_sha256: str
    audit_seq: int
    generated_at: dt.datetime
    problems: tuple[str, ...]


@dataclass(frozen=True)
class UnvalidatedCertificates:
    """Of the certificates a pack's selection considers (its customers, states and period), how many
    were never validated against their states' rules: the pack shows no findings for them."""

    certificates: int
    never_validated: int
    #: The customer numbers holding such certificates, in number order.
    customers: tuple[str, ...]


@dataclass(frozen=True)
class PackChoices:
    """What the dialog offers: companies, their customers, states and review states."""

    companies: tuple[tuple[int, str], ...]
    customers: tuple[tuple[int, str, str], ...]  # (company id, number, name)
    states: tuple[str, ...]
    review_states: tuple[str, ...]


class _Steps:
    """Progress over weighted steps, with cancel checks."""

    def __init__(self, progress: Progress, cancel: CancelCheck, total: int) -> None:
        self.progress, self.cancel, self.total, self.done = progress, cancel, max(total, 1), 0

    def tick(self, text: str, n: int = 1) -> None:
        if self.cancel():
            raise Cancelled("The audit pack was cancelled; nothing was kept.")
        self.done = min(self.done + n, self.total)
        self.progress(self.done, self.total, text)


class AuditPackService:
    """Generate and describe audit packs (the GUI dialog and ``ecms audit-pack`` use this)."""

    def __init__(self, db: Database, rules: RulesPack | None = None) -> None:
        self.db = db
        self.rules = rules or load_rules_pack()

    def choices(self) -> PackChoices:
        """Companies, customers and states to choose from."""
        with self.db.reader() as s:
            companies = tuple((c.id, c.name) for c in s.execute(select(Company).order_by(Company.name)).scalars())
            customers = tuple((c.company_id, c.number, c.legal_name) for c in s.execute(
                select(Customer).order_by(Customer.company_id, Customer.number_key)).scalars())
            states = tuple(sorted(s.execute(select(CoverageLine.state).distinct()).scalars().all()))
        return PackChoices(companies, customers, states, tuple(r.value for r in ReviewState))

    def unvalidated(self, selection: AuditPackSelection) -> UnvalidatedCertificates:
        """How many of the certificates the selection considers were never validated (no validation run
        recorded), so that the user can validate them before the auditor sees a pack without findings."""
        sel = selection.checked()
        with self.db.reader() as s:
            company = find_company(s, sel.company)
            customer_ids = [find_customer(s, company.id, wanted).id for wanted in sel.customers]
            ids = candidate_certificate_ids(s, sel, company.id, customer_ids)
            never: list[tuple[int, str]] = []
            for chunk in chunks(ids, 500):
                validated = select(ValidationRun.id).where(ValidationRun.certificate_id == Certificate.id).exists()
                never.extend(s.execute(select(Certificate.id, Customer.number)
                                       .join(Customer, Customer.id == Certificate.customer_id)
                                       .where(Certificate.id.in_(chunk), ~validated)).all())
        return UnvalidatedCertificates(len(ids), len(never), tuple(sorted({number for _, number in never})))

    def generate(self, selection: AuditPackSelection, out_dir: Path, *, make_zip: bool = True,
                 generated_at: dt.datetime | None = None, progress: Progress | None = None,
                 cancel: CancelCheck | None = None) -> AuditPackResult:
        """Build the pack in ``out_dir`` (which must be new or empty) and ``<out_dir>.zip``.

        The files are written to a temporary sibling folder and moved into place only when complete;
        a cancel or an error leaves nothing behind. Generating is recorded in the audit trail in its
        own transaction after the files are complete; the manifest records the chain head before it.
        """
        progress = progress or _no_progress
        cancel = cancel or _never
        when = (generated_at or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).replace(microsecond=0)
        out_dir = Path(out_dir).expanduser().resolve()
        if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
            raise ValidationError(f"{out_dir} already exists and is not an empty folder: choose a new folder "
                                  "for the audit pack (a pack is never mixed with other files).")
        if not out_dir.parent.is_dir():
            raise ValidationError(f"The folder {out_dir.parent} does not exist.")
        zip_path = out_dir.with_name(out_dir.name + ".zip") if make_zip else None
        if zip_path is not None and zip_path.exists():
            raise ValidationError(f"{zip_path} already exists: choose another folder name or move it away.")
        work = out_dir.with_name(f".{out_dir.name}.partial-{os.getpid()}")
        if work.exists():
            shutil.rmtree(work)
        work.mkdir()
        try:
            result = self._generate(selection, out_dir, work, zip_path, when, progress, cancel)
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            if zip_path is not None:
                zip_path.with_name(zip_path.name + ".partial").unlink(missing_ok=True)
            raise
        return result

    def _generate(self, selection: AuditPackSelection, out_dir: Path, work: Path, zip_path: Path | None,
                  when: dt.datetime, progress: Progress, cancel: CancelCheck) -> AuditPackResult:
        problems: list[str] = []
        progress(0, 1, "Reading the certificates…")
        with self.db.reader() as s:
            chain = audit.verify_chain(s)
            s.expunge_all()
            content = gather(s, selection, generated_at=when, database=self.db.display_url, rules=self.rules)
            if not chain.ok:
                problems.append(f"The audit trail did not verify at generation time: {chain.problem}")
            docs = {d.sha256: d for c in content.certificates for d in c.documents}
            steps = _Steps(progress, cancel, total=3 * len(docs) + 2 * len(content.certificates) + 20)
            # 1. the original files, byte for byte
            targets: dict[str, list[str]] = defaultdict(list)
            for cert in content.certificates:
                for d in cert.documents:
                    targets[d.sha256].extend(rel for _state, rel in d.paths)
            for sha in sorted(docs):
                data = s.execute(select(DocumentFile.data).where(DocumentFile.sha256 == sha)).scalar_one()
                if hashlib.sha256(data).hexdigest() != sha:
                    problems.append(f"Stored file {docs[sha].original_name} no longer matches its recorded hash "
                                    f"{sha[:12]}…; it is included as stored.")
                for rel in targets[sha]:
                    target = work / rel
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(data)
                steps.tick(f"Copying certificate files ({docs[sha].original_name})")
            # 2. the workbook (sections stream from this session), while the document sandbox checks
            # the copied files for the PDF book on the other core
            probes = ProbeJob(content, work, cancel)
            try:
                content.sections = [p.table(s, content) for p in default_providers()]
                steps.tick("Writing the workbook…")
                pdf_tables = write_workbook(work / WORKBOOK_NAME, content, cancel=cancel)  # dated ``when``
                steps.tick("Workbook written", 5)
            except BaseException:
                probes.stop()
                raise
        # 3. the PDF book (reads the stored files from the pack folder, not the database)
        try:
            probes.result()
        except BaseException:
            probes.stop()
            raise
        steps.tick("Checked the certificate files", len(docs))
        pdf = write_pdf(work / PDF_NAME, content, pdf_tables, files_root=work,
                        progress=lambda text: steps.tick(text), cancel=cancel, probed=probes)
        problems.extend(pdf.problems)
        steps.tick("PDF written", 5)
        # 4. manifest and SHA256SUMS
        manifest, manifest_bytes = write_manifest(work, content, chain, problems)
        steps.tick("Manifest written", 2)
        if cancel():
            raise Cancelled("The audit pack was cancelled; nothing was kept.")
        # 5. into place, then the zip
        if out_dir.exists():
            out_dir.rmdir()
        os.replace(work, out_dir)
        try:
            if zip_path is not None:
                write_zip(out_dir, zip_path, generated_at=when, top=out_dir.name)
                steps.tick("Zip written", 3)
        except BaseException:
            shutil.rmtree(out_dir, ignore_errors=True)
            raise
        # 6. the audit event, in its own transaction, after the files are complete
        manifest_sha = hashlib.sha256(manifest_bytes).hexdigest()
        with self.db.transaction() as s:
            event = audit.record(
                s, PACK_EVENT, "audit_pack", manifest_sha[:16], company_id=content.company.id,
                after={"manifest_sha256": manifest_sha, "folder": str(out_dir),
                       "zip": str(zip_path) if zip_path else None,
                       "zip_sha256": sha256_file(zip_path) if zip_path else None},
                details={"selection": manifest["selection"], "counts": manifest["counts"],
                         "chain_head_before": manifest["audit_chain"]["head_seq"],
                         "generated_at": when})
            seq = event.seq
        steps.tick("Recorded in the audit trail", 0)
        lines = sum(len(c.lines) for c in content.certificates)
        return AuditPackResult(out_dir, zip_path, len(content.certificates), lines, len(docs), pdf.pages,
                               len(manifest["files"]) + 2, manifest_sha, seq, when, tuple(problems))


__all__ = [
    "AuditPackResult",
    "AuditPackService",
]
