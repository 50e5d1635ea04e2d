"""The closed vocabularies (:mod:`ecms_desktop.vocabulary`) as the models use them, and their SQL checks."""

from __future__ import annotations

from enum import StrEnum

from ecms_desktop.vocabulary import CertificateType, DocumentSource, ExemptReason, ReviewState, Status

__all__ = ["CertificateType", "DocumentSource", "ExemptReason", "ReviewState", "Status", "check_in"]


def check_in(column: str, enum: type[StrEnum], *, empty: bool = False) -> str:
    """SQL CHECK text restricting ``column`` to the enum's values (and, with ``empty``, to '' for "not known
    yet")."""
    values = ", ".join([*(["''"] if empty else []), *(f"'{m.value}'" for m in enum)])
    return f"{column} IN ({values})"
