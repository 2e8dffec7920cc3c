"""Taking a job within the limits (`fiscalgate.gateway.limits`): in one transaction a worker
claims the next ready job, asks the limits whether its call may go (breaker per tenant x
authority x environment, e-MECeF pending cap, rate limit per tenant x authority), and either keeps
the job or puts it back, untouched but for `run_after`.

A deferred job burns no attempt (the claim's `attempts + 1` is undone in the same transaction) and
is not a failure. Deferral moves the job out of the ready set, so the next claim takes another
authority's job at once: a dead platform defers only its own jobs. The other ready jobs of the
same tenant x authority are deferred with it (they would be refused for the same reason), so that
a backlog behind an open breaker or an exhausted quota costs one transaction, not one per job:
- breaker open: all of them until the breaker may probe again;
- pending cap full: all of them for a short while (a finishing call frees a slot soon);
- rate limit: spread one token interval apart, in queue order, so they come back at the rate the
  bucket refills instead of all at once.

Moving the other jobs of a key (deferring them with a claimed one, or making held ones ready)
never waits for a job row another transaction holds: those rows are selected `FOR UPDATE SKIP
LOCKED` (PostgreSQL; SQLite serialises its writers) and left alone. Waiting for them deadlocked
on PostgreSQL with several workers: a claim holds its job row and waits for the breaker row,
while an outcome's recording holds the breaker row and moved jobs, the claimed one among them
(the recording rolled back, its invoice stayed `submitting` until the claim lease ran out).

For an authority with a pending cap (e-MECeF), an invoice whose content is identical to one whose
request may still be pending is held back too (`identical_pending`), alone, until that one is
finished: the platform's reconciliation recognises a pending request by its content.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.orm import Session

from fiscalgate.gateway.invoices.models import InvoiceRow
from fiscalgate.gateway.limits import Admitted, Deferred, Limits
from fiscalgate.gateway.limits.models import PendingSlotRow
from fiscalgate.gateway.queue.jobs import claim_job
from fiscalgate.gateway.queue.models import JobRow
from fiscalgate.gateway.settings.models import AuthorityConfig

# A full pending cap is looked at again after this (or when the earliest slot expires, if sooner).
PENDING_RECHECK = timedelta(seconds=1)
BULK_DEFER_LIMIT = 500  # jobs of one key moved per deferral (the rest are caught next time)


@dataclass(frozen=True)
class Target:
    """Where the job's call goes: the key of its limits."""

    tenant_id: str
    authority: str
    environment: str


@dataclass(frozen=True)
class Taken:
    job: JobRow
    target: Target
    admitted: Admitted


def target_of(session: Session, job: JobRow) -> Target:
    """The authority, and the environment the call will go to: the one an uncertain call went to
    for a reconciliation (recorded on the invoice), else the tenant's current settings."""
    row = session.execute(
        select(InvoiceRow.authority, InvoiceRow.environment).where(InvoiceRow.id == job.invoice_id)
    ).one()
    environment = row.environment if job.action == "reconcile" else None
    if environment is None:
        environment = session.scalar(
            select(AuthorityConfig.environment).where(
                AuthorityConfig.tenant_id == job.tenant_id, AuthorityConfig.authority == row.authority
            )
        )
    return Target(job.tenant_id, row.authority, environment or "mock")


_UNDO_CLAIM = (
    update(JobRow)
    .where(
        JobRow.id == bindparam("job_id"), JobRow.state == "running", JobRow.holder == bindparam("p_holder")
    )
    .values(
        state="queued",
        holder=None,
        lease_expires_at=None,
        attempts=JobRow.attempts - 1,
        run_after=bindparam("p_run_after"),
        result=bindparam("p_result"),
    )
    .execution_options(synchronize_session=False)
)
# Core (not ORM) so that it runs as one executemany over many jobs.
_JOB_TABLE = cast(Table, JobRow.__table__)
_JOBS = _JOB_TABLE.c
_MOVE = (
    update(_JOB_TABLE)
    .where(_JOBS.id == bindparam("job_id"), _JOBS.state == "queued")
    .values(run_after=bindparam("p_run_after"), result=bindparam("p_result"))
)


def _same_key_ready(session: Session, target: Target, before: datetime, exclude: str) -> list[str]:
    """Queued jobs of the same tenant x authority that would be ready before `before`, in order."""
    query = (
        select(JobRow.id)
        .join(InvoiceRow, InvoiceRow.id == JobRow.invoice_id)
        .where(
            JobRow.tenant_id == target.tenant_id,
            JobRow.state == "queued",
            JobRow.run_after < before,
            JobRow.id != exclude,
            InvoiceRow.authority == target.authority,
        )
        .order_by(JobRow.run_after, JobRow.id)
        .limit(BULK_DEFER_LIMIT)
        .with_for_update(of=JobRow, skip_locked=True)
    )
    return list(session.scalars(query))


def defer(session: Session, limits: Limits, job: JobRow, target: Target, holder: str, why: Deferred) -> None:
    """Put the claimed `job` back until `why.retry_at` without burning an attempt, with the other
    ready jobs of its key (see the module docstring)."""
    now = limits.clock.now()
    retry_at = why.retry_at
    if why.reason in ("pending_cap", "same_content"):
        retry_at = min(retry_at, now + PENDING_RECHECK)
    result = f"deferred ({why.reason}): {why.detail}"[:2000]
    session.execute(
        _UNDO_CLAIM, {"job_id": job.id, "p_holder": holder, "p_run_after": retry_at, "p_result": result}
    )
    if why.reason == "same_content":
        return  # only this invoice is held back: the others of the key differ
    others = _same_key_ready(session, target, retry_at, job.id)
    if not others:
        return
    step = timedelta(0)
    if why.reason == "rate_limited":
        limit = limits.rates.for_(target.tenant_id, target.authority)
        step = timedelta(seconds=1 / limit.rate) if limit is not None else timedelta(0)
    session.connection().execute(
        _MOVE,
        [
            {"job_id": other, "p_run_after": retry_at + step * (i + 1), "p_result": result}
            for i, other in enumerate(others)
        ],
    )


# Top-level fields of a neutral invoice that never reach a content-matched platform (e-MECeF's
# request has no invoice number), and line fields it does not carry either.
_IDENTITY_FIELDS = frozenset({"number", "issued_at", "notes", "due_at", "commercial_message", "footer"})
_LINE_IDENTITY_FIELDS = frozenset({"reference", "unit"})


def content_fingerprint(document: Mapping[str, Any] | None, original_id: str | None) -> str:
    """SHA-256 of what a content-matching platform sees of an invoice: the neutral document
    without its identity (number, dates, free texts), plus the original it credits.

    Decision: deliberately coarse. Two invoices whose fingerprints are equal are never in flight
    together (a needless wait costs a second); two whose payloads are equal but whose fingerprints
    differ could still be confused, so the fields left out are those the payload does not carry."""
    doc = {k: v for k, v in (document or {}).items() if k not in _IDENTITY_FIELDS}
    lines = doc.get("lines")
    if isinstance(lines, list):
        doc["lines"] = [
            {k: v for k, v in line.items() if k not in _LINE_IDENTITY_FIELDS}
            if isinstance(line, dict)
            else line
            for line in lines
        ]
    doc["_original"] = original_id
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()


def identical_pending(session: Session, limits: Limits, job: JobRow, target: Target) -> str | None:
    """Another invoice of the same e-MCF (tenant x environment) with the same content whose request
    may be pending (it holds a live pending slot: in flight, or uncertain until the platform's
    expiry), or None. e-MECeF's reconciliation without a uid finds "our" pending request by its
    content (bj_emecef `details_match`): two identical ones pending at once could be swapped."""
    now = limits.clock.now()
    holders = list(
        session.scalars(
            select(PendingSlotRow.holder).where(
                PendingSlotRow.tenant_id == target.tenant_id,
                PendingSlotRow.authority == target.authority,
                PendingSlotRow.environment == target.environment,
                PendingSlotRow.expires_at > now,
                PendingSlotRow.holder != job.invoice_id,
            )
        )
    )
    if not holders:
        return None
    rows = session.execute(
        select(InvoiceRow.id, InvoiceRow.document, InvoiceRow.original_id).where(
            InvoiceRow.id.in_([*holders, job.invoice_id])
        )
    ).all()
    prints = {r.id: content_fingerprint(r.document, r.original_id) for r in rows}
    mine = prints.get(job.invoice_id)
    return next((i for i in holders if prints.get(i) == mine), None)


def resume_deferred(
    session: Session, target: Target, reason: str, now: datetime, limit: int = BULK_DEFER_LIMIT
) -> int:
    """Make jobs of `target`'s key that were deferred for `reason` ready now (the breaker closed,
    a pending slot was freed): they need not wait for the instant they were deferred to."""
    ids = list(
        session.scalars(
            select(JobRow.id)
            .join(InvoiceRow, InvoiceRow.id == JobRow.invoice_id)
            .where(
                JobRow.tenant_id == target.tenant_id,
                JobRow.state == "queued",
                JobRow.run_after > now,
                JobRow.result.startswith(f"deferred ({reason})"),
                InvoiceRow.authority == target.authority,
            )
            .order_by(JobRow.run_after, JobRow.id)
            .limit(limit)
            .with_for_update(of=JobRow, skip_locked=True)
        )
    )
    if ids:
        session.connection().execute(
            _MOVE, [{"job_id": i, "p_run_after": now, "p_result": f"resumed ({reason})"} for i in ids]
        )
    return len(ids)


def take_admitted(session: Session, holder: str, limits: Limits) -> tuple[Taken | None, bool]:
    """(the next job whose call the limits let go, or None; whether a job was deferred, in which
    case the caller looks again at once: another key's job may be ready)."""
    # The limits' clock is the queue's clock for this claim: a deferral's `retry_at` and a job's
    # readiness are read on the same time line (the system clock, unless a test injects one).
    job = claim_job(session, holder, limits.clock.now())
    if job is None:
        return None, False
    target = target_of(session, job)
    if job.action == "certify" and target.authority in limits.caps:
        twin = identical_pending(session, limits, job, target)
        if twin is not None:
            detail = (
                f"invoice {twin} has the same content and a request that may still be pending at "
                f"{target.authority}: this one waits until it is finished, so that a reconciliation "
                "can never take one for the other"
            )
            defer(session, limits, job, target, holder, Deferred("same_content", limits.clock.now(), detail))
            return None, True
    decision = limits.admit(
        session,
        target.tenant_id,
        target.authority,
        target.environment,
        job.invoice_id,
        opens_pending=job.action != "reconcile",
    )
    if isinstance(decision, Deferred):
        defer(session, limits, job, target, holder, decision)
        return None, True
    return Taken(job, target, decision), False
