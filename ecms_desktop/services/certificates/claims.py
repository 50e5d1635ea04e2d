"""Claims: which reviewer works a pending certificate, so that two reviewers never work the same certificate
unknowingly (no Qt here).

- A reviewer (anyone who may edit) **claims** pending certificates, one or a list at once: all or nothing;
  a certificate claimed by someone else or no longer pending refuses the whole list, naming each.
- The claimant **releases** their own claims; an approver may release anyone's, or **take over** a claim
  (``claim --take-over``): the certificate is then theirs.
- While a certificate is claimed, only the claimant may **save** edits to it (an approver takes it over
  first). An approver may still approve, reject or archive it: deciding is their job, and the decision's
  audit event says whose claim it ended (``details.claim``).
- A claim ends with the certificate leaving *pending* (approved, rejected, archived), in the same
  transaction as the decision.

Claims are kept apart from the certificate and never change its version: claiming does not make another
desk's copy stale. Each claim, release and take-over is an audit event (``claim.claimed``,
``claim.released``, ``claim.taken_over``) of the certificate.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from ecms_desktop.models import Certificate, CertificateClaim, ReviewState, utcnow
from ecms_desktop.services.core import audit, people
from ecms_desktop.services.core.database import Database
from ecms_desktop.services.core.errors import Problem, ValidationError
from ecms_desktop.services.core.people import Actor, Permission, PermissionDeniedError


@dataclass(frozen=True)
class ClaimInfo:
    """Who claimed a certificate, and since when."""

    certificate_id: int
    claimed_by: str
    claimed_at: dt.datetime

    def since(self) -> str:
        """The claim's time in local time: "10:40" today, else "2026-12-05 10:40"."""
        local = self.claimed_at.astimezone()
        return f"{local:%H:%M}" if local.date() == dt.datetime.now().astimezone().date() else f"{local:%Y-%m-%d %H:%M}"

    def text(self) -> str:
        """"Claimed by Pat Lee since 10:40"."""
        return f"Claimed by {self.claimed_by} since {self.since()}"

    def to_json(self) -> dict[str, Any]:
        return {"certificate_id": self.certificate_id, "claimed_by": self.claimed_by,
                "claimed_at": self.claimed_at.isoformat()}


def _info(claim: CertificateClaim) -> ClaimInfo:
    return ClaimInfo(claim.certificate_id, claim.claimed_by, claim.claimed_at)


def claims_of(session: Session, cert_ids: Iterable[int]) -> dict[int, ClaimInfo]:
    """The claims on these certificates (only the claimed ones), by certificate id."""
    ids = list(cert_ids)
    if not ids:
        return {}
    rows = session.execute(select(CertificateClaim).where(CertificateClaim.certificate_id.in_(ids))).scalars()
    return {c.certificate_id: _info(c) for c in rows}


def _mine(claim: ClaimInfo | CertificateClaim, actor: Actor) -> bool:
    return claim.claimed_by.casefold() == actor.name.casefold()


def refusal(cert_id: int, claim: ClaimInfo) -> str:
    """Why someone other than the claimant may not work certificate ``cert_id``."""
    return (f"Certificate {cert_id} is claimed by {claim.claimed_by} since {claim.since()}; ask them to release "
            "it or an approver to take it over.")


def require_unclaimed_or_mine(session: Session, cert_id: int, doing: str) -> None:
    """Refuse ``doing`` (e.g. "save") when certificate ``cert_id`` is claimed by someone other than the
    person acting (in the caller's transaction, after the certificate was locked)."""
    claim = session.get(CertificateClaim, cert_id)
    if claim is not None and not _mine(claim, people.actor_of(session)):
        raise PermissionDeniedError(f"You cannot {doing} it. " + refusal(cert_id, _info(claim)))


def end_claim(session: Session, cert_id: int) -> dict[str, Any] | None:
    """End the claim on a certificate that leaves *pending* (in the decision's transaction): what the
    decision's audit event records about it (None when it was not claimed). An approver deciding a
    certificate another person claimed is allowed, and the record says so (``by_claimant`` false)."""
    claim = session.get(CertificateClaim, cert_id)
    if claim is None:
        return None
    ended = {"claimed_by": claim.claimed_by, "claimed_at": claim.claimed_at,
             "by_claimant": _mine(claim, people.actor_of(session))}
    session.delete(claim)
    return ended


@dataclass(frozen=True)
class ClaimResult:
    """What a claim or release did: the certificates now claimed (or released), those already so, and
    those taken over from someone else (certificate id -> the person they were claimed by)."""

    done: tuple[int, ...]
    unchanged: tuple[int, ...] = ()
    taken_from: tuple[tuple[int, str], ...] = ()


class ClaimService:
    """Claiming, releasing and taking over pending certificates (the desk, the review queue and
    ``ecms claim`` / ``ecms release``)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def claims(self, cert_ids: Sequence[int]) -> dict[int, ClaimInfo]:
        """The claims on these certificates (only the claimed ones)."""
        with self.db.reader() as s:
            return claims_of(s, cert_ids)

    def claim_by_other(self, cert_id: int) -> ClaimInfo | None:
        """The claim on certificate ``cert_id`` when someone other than the person acting holds it (what the
        form warns about: "Claimed by Pat Lee since 10:40"), else None."""
        with self.db.reader() as s:
            claim = s.get(CertificateClaim, cert_id)
            return None if claim is None or _mine(claim, people.actor_of(s)) else _info(claim)

    def claim(self, cert_ids: Sequence[int], *, take_over: bool = False) -> ClaimResult:
        """Claim these pending certificates for the person acting: all or none. Refused, naming each, when
        one does not exist, is not pending, or is claimed by someone else (``take_over``: an approver takes
        it from them). A certificate already theirs stays so."""
        ids = _distinct(cert_ids)
        with self.db.transaction() as s:
            actor = people.require(s, Permission.EDIT, "claim certificates")
            if take_over:
                people.require(s, Permission.APPROVE, "take over another person's claim")
            certs = _locked(s, ids)
            claims = {c.certificate_id: c for c in s.execute(
                select(CertificateClaim).where(CertificateClaim.certificate_id.in_(ids))).scalars()}
            problems: list[Problem] = []
            for cert_id in ids:
                cert, claim = certs.get(cert_id), claims.get(cert_id)
                if cert is None:
                    problems.append(Problem(f"certificate {cert_id} does not exist"))
                elif cert.review_state != ReviewState.PENDING:
                    problems.append(Problem(f"certificate {cert_id} is {cert.review_state}, not pending review"))
                elif claim is not None and not _mine(claim, actor) and not take_over:
                    problems.append(Problem(f"certificate {cert_id} is claimed by {claim.claimed_by} since "
                                            f"{_info(claim).since()}"))
            if problems:
                one = len(ids) == 1
                raise ValidationError(
                    f"Nothing was claimed: {'the certificate' if one else 'these certificates'} cannot be claimed"
                    + ("" if take_over else " (an approver can take over another person's claim)") + ":", problems)
            done: list[int] = []
            unchanged: list[int] = []
            taken: list[tuple[int, str]] = []
            now = utcnow()
            for cert_id in ids:
                cert, claim = certs[cert_id], claims.get(cert_id)
                if claim is not None and _mine(claim, actor):
                    unchanged.append(cert_id)
                    continue
                if claim is not None:
                    before = {"claimed_by": claim.claimed_by, "claimed_at": claim.claimed_at}
                    taken.append((cert_id, claim.claimed_by))
                    claim.claimed_by, claim.claimed_at = actor.name, now
                    audit.record(s, "claim.taken_over", "certificate", cert_id, company_id=cert.company_id,
                                 certificate_id=cert_id, before=before,
                                 after={"claimed_by": actor.name, "claimed_at": now})
                else:
                    s.add(CertificateClaim(certificate_id=cert_id, claimed_by=actor.name, claimed_at=now))
                    audit.record(s, "claim.claimed", "certificate", cert_id, company_id=cert.company_id,
                                 certificate_id=cert_id, after={"claimed_by": actor.name, "claimed_at": now})
                done.append(cert_id)
            return ClaimResult(tuple(done), tuple(unchanged), tuple(taken))

    def release(self, cert_ids: Sequence[int]) -> ClaimResult:
        """Release these claims: all or none. The person acting releases their own; an approver may
        release anyone's. A certificate that is not claimed refuses the list, naming it."""
        ids = _distinct(cert_ids)
        with self.db.transaction() as s:
            actor = people.require(s, Permission.EDIT, "release claims")
            certs = _locked(s, ids)
            claims = {c.certificate_id: c for c in s.execute(
                select(CertificateClaim).where(CertificateClaim.certificate_id.in_(ids))).scalars()}
            problems: list[Problem] = []
            for cert_id in ids:
                claim = claims.get(cert_id)
                if cert_id not in certs:
                    problems.append(Problem(f"certificate {cert_id} does not exist"))
                elif claim is None:
                    problems.append(Problem(f"certificate {cert_id} is not claimed"))
                elif not _mine(claim, actor) and not actor.may(Permission.APPROVE):
                    problems.append(Problem(f"certificate {cert_id} is claimed by {claim.claimed_by}: only they "
                                            "or an approver may release it"))
            if problems:
                raise ValidationError("Nothing was released:", problems)
            taken: list[tuple[int, str]] = []
            for cert_id in ids:
                claim, cert = claims[cert_id], certs[cert_id]
                details = None
                if not _mine(claim, actor):
                    taken.append((cert_id, claim.claimed_by))
                    details = {"released_for": claim.claimed_by}
                audit.record(s, "claim.released", "certificate", cert_id, company_id=cert.company_id,
                             certificate_id=cert_id,
                             before={"claimed_by": claim.claimed_by, "claimed_at": claim.claimed_at},
                             details=details)
            s.execute(delete(CertificateClaim).where(CertificateClaim.certificate_id.in_(ids)))
            return ClaimResult(tuple(ids), (), tuple(taken))


def _distinct(cert_ids: Sequence[int]) -> list[int]:
    ids = list(dict.fromkeys(cert_ids))
    if not ids:
        raise ValidationError("Name at least one certificate.")
    return ids


def _locked(session: Session, ids: list[int]) -> dict[int, Certificate]:
    """The certificates, locked like an edit locks them (so a claim never slips between another desk's
    read of the claim and its save or decision); their version is not raised."""
    rows = session.execute(select(Certificate).where(Certificate.id.in_(ids)).order_by(Certificate.id)
                           .with_for_update()).scalars()
    return {c.id: c for c in rows}
