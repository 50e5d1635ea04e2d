"""Validation runs and their findings, warning acknowledgements, and permit verification records.

These are the evidence an auditor asks for: that each certificate was checked against the issuing
state's own requirements (with the rules-pack version used), who acknowledged the remaining warnings,
and that the buyer held an active permit (which registry snapshot, web lookup or online service said
so, when, and with what evidence).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import CheckConstraint, Date, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import Base, JsonType, utcnow

SEVERITIES = ("error", "warning", "info")
TRIGGERS = ("on_demand", "save", "import", "intake", "approval", "revalidation")
CHECK_METHODS = ("registry", "manual", "online")
CHECK_RESULTS = ("active", "inactive", "not_found", "unavailable")


def _check_in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class ValidationRun(Base):
    """One run of the state-specific validation over a certificate, as of a date, with the
    rules-pack version it used. The latest run per certificate is its current validation result."""

    __tablename__ = "validation_run"
    __table_args__ = (
        CheckConstraint(_check_in("trigger", TRIGGERS), name="trigger"),
        Index("ix_validation_run_certificate_latest", "certificate_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    certificate_id: Mapped[int] = mapped_column(ForeignKey("certificate.id", ondelete="CASCADE"))
    company_id: Mapped[int] = mapped_column(ForeignKey("company.id", ondelete="CASCADE"), index=True)
    #: Version of the rules pack the findings come from (``pack.json`` version, e.g. 2026.11.1).
    rules_version: Mapped[str] = mapped_column(String(20))
    #: The date the certificate was judged as of (signed date not in the future, expiry ...).
    as_of: Mapped[dt.date] = mapped_column(Date)
    #: What started the run: on_demand, save, import, intake, approval or revalidation.
    trigger: Mapped[str] = mapped_column(String(20))
    ran_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    ran_by: Mapped[str] = mapped_column(String(100), default="")
    error_count: Mapped[int] = mapped_column(Integer, default=0)
    warning_count: Mapped[int] = mapped_column(Integer, default=0)
    info_count: Mapped[int] = mapped_column(Integer, default=0)
    #: SHA-256 over the findings (rule, severity, state, field, message): equal = same result.
    fingerprint: Mapped[str] = mapped_column(String(64))

    findings: Mapped[list[Finding]] = relationship(
        back_populates="run", cascade="all, delete-orphan", order_by="Finding.id"
    )


class Finding(Base):
    """One thing the validation found on a certificate (or on one of its coverage lines)."""

    __tablename__ = "validation_finding"
    __table_args__ = (CheckConstraint(_check_in("severity", SEVERITIES), name="severity"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("validation_run.id", ondelete="CASCADE"), index=True)
    #: Stable rule id, e.g. ``form.not_accepted``, ``field.required``, ``permit.format``.
    rule: Mapped[str] = mapped_column(String(60))
    #: ``error`` blocks approval, ``warning`` needs an acknowledgement, ``info`` is for reading.
    severity: Mapped[str] = mapped_column(String(10))
    #: The coverage line's state; empty for a finding about the whole certificate.
    state: Mapped[str] = mapped_column(String(2), default="")
    #: The certificate field concerned (rules-pack field vocabulary), or empty.
    field: Mapped[str] = mapped_column(String(40), default="")
    message: Mapped[str] = mapped_column(Text)
    #: Where the rule comes from (statute, form, guidance) and how sure the rules pack is of it.
    source: Mapped[str] = mapped_column(Text, default="")
    confidence: Mapped[str] = mapped_column(String(12), default="")

    run: Mapped[ValidationRun] = relationship(back_populates="findings")


class WarningAcknowledgement(Base):
    """A reviewer's statement that they read the warnings of a validation run and accept the
    certificate anyway (recorded with who and when, and the warnings as they were shown)."""

    __tablename__ = "warning_acknowledgement"

    id: Mapped[int] = mapped_column(primary_key=True)
    certificate_id: Mapped[int] = mapped_column(ForeignKey("certificate.id", ondelete="CASCADE"), index=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("validation_run.id", ondelete="CASCADE"), index=True)
    acknowledged_by: Mapped[str] = mapped_column(String(100))
    acknowledged_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    #: The acknowledged warnings: ``[{rule, state, field, message}]``.
    warnings: Mapped[list[Any]] = mapped_column(JsonType, default=list)
    note: Mapped[str] = mapped_column(Text, default="")


class PermitRegistrySnapshot(Base):
    """One imported copy of a state's list of permit holders (e.g. Texas's active sales tax permit
    holders file), dated, so every registry check can say which list it used."""

    __tablename__ = "permit_registry_snapshot"

    id: Mapped[int] = mapped_column(primary_key=True)
    state: Mapped[str] = mapped_column(String(2), index=True)
    #: Original file name of the import.
    source_name: Mapped[str] = mapped_column(String(255))
    file_sha256: Mapped[str] = mapped_column(String(64))
    #: The date the list reflects (as published by the state, or the import date when unknown).
    data_date: Mapped[dt.date] = mapped_column(Date)
    imported_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    imported_by: Mapped[str] = mapped_column(String(100), default="")
    row_count: Mapped[int] = mapped_column(Integer, default=0)
    #: File column -> registry field mapping used (``{"taxpayer_number": "permit_number", ...}``).
    column_map: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)
    #: ``texas_active_permits`` for the built-in Texas layout, else ``custom``.
    layout: Mapped[str] = mapped_column(String(40), default="custom")


class PermitRegistryEntry(Base):
    """A permit holder in a registry snapshot."""

    __tablename__ = "permit_registry_entry"
    __table_args__ = (Index("ix_permit_registry_entry_lookup", "snapshot_id", "permit_number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    snapshot_id: Mapped[int] = mapped_column(ForeignKey("permit_registry_snapshot.id", ondelete="CASCADE"))
    #: Permit number normalised with the state's permit format (upper case, separators removed).
    permit_number: Mapped[str] = mapped_column(String(64))
    legal_name: Mapped[str] = mapped_column(String(300), default="")
    #: ``active`` or ``inactive`` (files that list only active holders are all ``active``).
    status: Mapped[str] = mapped_column(String(20), default="active")
    issue_date: Mapped[dt.date | None] = mapped_column(Date)
    end_date: Mapped[dt.date | None] = mapped_column(Date)
    #: Other mapped columns (outlet count, DBA name ...).
    extra: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)


class PermitCheck(Base):
    """One verification of a purchaser's permit number for a coverage line: who checked, when, how
    (registry snapshot, manual web lookup with evidence, online service), the number and the result."""

    __tablename__ = "permit_check"
    __table_args__ = (
        CheckConstraint(_check_in("method", CHECK_METHODS), name="method"),
        CheckConstraint(_check_in("result", CHECK_RESULTS), name="result"),
        Index("ix_permit_check_certificate_state", "certificate_id", "state", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    certificate_id: Mapped[int] = mapped_column(ForeignKey("certificate.id", ondelete="CASCADE"))
    company_id: Mapped[int] = mapped_column(ForeignKey("company.id", ondelete="CASCADE"), index=True)
    state: Mapped[str] = mapped_column(String(2))
    number_checked: Mapped[str] = mapped_column(String(64))
    #: ``registry`` (imported snapshot), ``manual`` (web lookup by a reviewer) or ``online`` (HTTP service).
    method: Mapped[str] = mapped_column(String(20))
    #: What was consulted: snapshot file and date, the lookup page URL, or the service URL.
    source: Mapped[str] = mapped_column(Text, default="")
    #: ``active``, ``inactive``, ``not_found`` or ``unavailable`` (no registry / service failed).
    result: Mapped[str] = mapped_column(String(20))
    #: Holder name the source shows, for comparison with the certificate.
    name_on_record: Mapped[str] = mapped_column(String(300), default="")
    message: Mapped[str] = mapped_column(Text, default="")
    checked_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    checked_by: Mapped[str] = mapped_column(String(100), default="")
    #: The date the check speaks for (the registry data date for a snapshot check).
    as_of: Mapped[dt.date] = mapped_column(Date)
    snapshot_id: Mapped[int | None] = mapped_column(
        ForeignKey("permit_registry_snapshot.id", ondelete="SET NULL"))
    #: Screenshot or PDF of a manual lookup, stored by hash as a document.
    evidence_document_id: Mapped[int | None] = mapped_column(ForeignKey("document.id", ondelete="SET NULL"))
    evidence_sha256: Mapped[str] = mapped_column(String(64), default="")
