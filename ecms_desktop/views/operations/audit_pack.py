"""The audit pack's choices (companies, customers, states), read before its dialog opens, and the
certificates of a selection never validated, counted before a pack is made."""

from __future__ import annotations

from ecms_desktop.services.audit_pack.content import AuditPackSelection
from ecms_desktop.services.audit_pack.service import AuditPackService, PackChoices, UnvalidatedCertificates
from ecms_desktop.views.operations import Operation


def read_pack_choices(service: AuditPackService) -> Operation[PackChoices]:
    """What an audit pack can be made of, for the dialog's lists."""
    return Operation(lambda _p, _c: service.choices())


def count_unvalidated(service: AuditPackService, selection: AuditPackSelection) -> Operation[UnvalidatedCertificates]:
    """How many certificates of the selection were never validated (the dialog warns before going on)."""
    return Operation(lambda _p, _c: service.unvalidated(selection))
