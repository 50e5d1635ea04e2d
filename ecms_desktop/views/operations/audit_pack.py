"""The audit pack's choices (companies, customers, states), read before its dialog opens."""

from __future__ import annotations

from ecms_desktop.services.audit_pack.service import AuditPackService, PackChoices
from ecms_desktop.views.operations import Operation


def read_pack_choices(service: AuditPackService) -> Operation[PackChoices]:
    """What an audit pack can be made of, for the dialog's lists."""
    return Operation(lambda _p, _c: service.choices())
