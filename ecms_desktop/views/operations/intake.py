"""Receiving documents (into the intake inbox, attached to a certificate, or returned renewal forms matched
to their request) and importing certificates from a spreadsheet."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ecms_desktop.models import DocumentSource
from ecms_desktop.rules import RulesPack
from ecms_desktop.services.certificates.import_service import CertificateImporter, ImportResult
from ecms_desktop.services.core.database import Database
from ecms_desktop.services.core.errors import DocumentError, EcmsError
from ecms_desktop.services.core.progress import CancelCheck, Progress
from ecms_desktop.services.core.user_files import read_user_file
from ecms_desktop.services.documents.storage import check_bytes
from ecms_desktop.services.intake.service import IntakeResult, IntakeService
from ecms_desktop.services.renewals.request_packet import TOKEN_FIELD, read_form
from ecms_desktop.services.renewals.returned_forms import ReturnedFormsService, ReturnedItem
from ecms_desktop.views.operations import Operation

#: Largest file read in the GUI process to look for a request token (returned forms are small).
_TOKEN_SCAN_LIMIT = 25 * 1024 * 1024


def is_returned_form(path: Path, rules: RulesPack) -> bool:
    """Whether a dropped file is a returned renewal form: an e-mail (matched to its request by the
    token in its subject or attachments, else by its sender), or a PDF carrying a request token (the
    hidden form field or the metadata we put in every request packet). Runs off the GUI thread."""
    suffix = path.suffix.lower()
    if suffix == ".eml":
        return True
    if suffix != ".pdf":
        return False
    try:
        data = read_user_file(path, max_bytes=_TOKEN_SCAN_LIMIT)
    except DocumentError:
        return False  # the intake service reports the unreadable (or refused) file
    if TOKEN_FIELD.encode() in data or b"ecms-request-token=" in data:
        return True
    if b"/ObjStm" not in data:
        return False  # everything is in plain sight: no token
    # Compressed object streams (a form saved again by a PDF reader): probe the file in the sandbox
    # first (hostile files stay out of this process), then read its fields.
    try:
        check_bytes(data, path.name)
        return read_form(data, rules).token is not None
    except (EcmsError, ValueError, RuntimeError):
        return False


@dataclass(frozen=True)
class ReceivedFiles:
    """What became of received files: ``arrived``, the files that came without a chosen certificate (each
    waits in the intake inbox, or answered its renewal request; see ReturnedItem.outcome), and ``attached``,
    the files attached to the chosen certificate (None when there were none of that kind)."""

    attached: IntakeResult | None
    arrived: list[ReturnedItem] | None

    def summary(self) -> str:
        """One line for the status bar: "2 in the intake inbox, 1 matched to its renewal request, 1 refused"."""
        parts = []
        if self.arrived is not None:
            outcomes = Counter(i.outcome for i in self.arrived)
            matched = outcomes["answered"] + outcomes["attached"]
            parts.append(f"{outcomes['inbox']} in the intake inbox")
            if matched:
                parts.append(f"{matched} matched to {'its' if matched == 1 else 'their'} renewal request")
            for outcome in ("duplicate", "refused"):
                if outcomes[outcome]:
                    parts.append(f"{outcomes[outcome]} {outcome}")
        if self.attached is not None:
            parts.append(f"attached: {self.attached.summary()}")
        return ", ".join(parts)

    def messages(self) -> list[str]:
        """What to tell about each file that was not simply stored as asked."""
        out = [i.message for i in self.attached.items if i.outcome != "stored"] if self.attached else []
        return out + [i.message for i in self.arrived or ()]


def receive_files(db: Database, rules: RulesPack, paths: Sequence[Path], *, company_id: int, as_of: dt.date,
                  attach_to: tuple[int, int] | None = None) -> Operation[ReceivedFiles]:
    """Store files. Without ``attach_to`` every file is read and waits in the company's intake inbox, unless
    it is a returned renewal form that answers its request (the returned-forms service does both, as for
    ``ecms intake``). With ``attach_to`` (the certificate's id and the version the user sees) plain files
    are attached to that certificate and returned forms still go to their request."""

    def work(progress: Progress, cancel: CancelCheck) -> ReceivedFiles:
        returned_forms = ReturnedFormsService(db, rules)
        if attach_to is None:
            return ReceivedFiles(None, returned_forms.intake(paths, company_id, as_of=as_of,
                                                             received_via=DocumentSource.UPLOAD.value,
                                                             progress=progress, cancel=cancel))
        returned = [p for p in paths if is_returned_form(p, rules)]
        plain = [p for p in paths if p not in returned]
        cert_id, version = attach_to
        attached = (IntakeService(db, rules).attach_files(plain, company_id, cert_id, expected_version=version,
                                                          progress=progress, cancel=cancel)
                    if plain else None)
        items = (returned_forms.intake(returned, company_id, as_of=as_of, progress=progress, cancel=cancel)
                 if returned else None)
        return ReceivedFiles(attached, items)

    return Operation(work, title=f"Receiving {len(paths)} document{'s' if len(paths) != 1 else ''}")


def import_certificates(db: Database, rules: RulesPack, path: Path, *, company_id: int,
                        as_of: dt.date) -> Operation[ImportResult]:
    """Import certificates from a CSV or XLSX file (each checked and validated; findings hold a
    certificate for review)."""
    return Operation(lambda progress, cancel: CertificateImporter(db, rules).import_file(
        path, company_id=company_id, as_of=as_of, progress=progress, cancel=cancel),
        title=f"Importing {path.name}")
