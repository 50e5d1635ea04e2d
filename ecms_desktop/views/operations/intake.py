"""Receiving documents (new pending certificates, files attached to a certificate, returned renewal
forms matched to their request) and importing certificates from a spreadsheet."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

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
    """What became of received files: the intake's result for plain documents, the returned-forms
    service's items for returned renewal forms (None when there were none of that kind)."""

    intake: IntakeResult | None
    returned: list[ReturnedItem] | None


def receive_files(db: Database, rules: RulesPack, paths: Sequence[Path], *, company_id: int, as_of: dt.date,
                  attach_to: int | None = None, expected_version: int | None = None) -> Operation[ReceivedFiles]:
    """Store files: returned renewal forms (a PDF carrying a request token, or an .eml) go to the
    returned-forms service, which matches them to their request; other files to the intake service (new
    pending certificates, or attached to ``attach_to`` as of the version the user sees:
    ``expected_version``)."""

    def work(progress: Progress, cancel: CancelCheck) -> ReceivedFiles:
        returned = [p for p in paths if is_returned_form(p, rules)]
        plain = [p for p in paths if p not in returned]
        intake = (IntakeService(db, rules).receive_files(plain, company_id, attach_to=attach_to,
                                                         expected_version=expected_version,
                                                         progress=progress, cancel=cancel)
                  if plain else None)
        items = (ReturnedFormsService(db, rules).intake(returned, company_id, as_of=as_of, progress=progress,
                                                         cancel=cancel)
                 if returned else None)
        return ReceivedFiles(intake, items)

    return Operation(work, title=f"Receiving {len(paths)} document{'s' if len(paths) != 1 else ''}")


def import_certificates(db: Database, rules: RulesPack, path: Path, *, company_id: int,
                        as_of: dt.date) -> Operation[ImportResult]:
    """Import certificates from a CSV or XLSX file (each checked and validated; findings hold a
    certificate for review)."""
    return Operation(lambda progress, cancel: CertificateImporter(db, rules).import_file(
        path, company_id=company_id, as_of=as_of, progress=progress, cancel=cancel),
        title=f"Importing {path.name}")
