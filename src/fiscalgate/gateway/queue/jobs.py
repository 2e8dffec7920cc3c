"""The jobs table's operations, each run inside the caller's transaction: enqueue, claim the next
ready job, and settle a job together with the invoice change that decided it."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import bindparam, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from fiscalgate.gateway.db import utcnow
from fiscalgate.gateway.invoices.lifecycle import CERTIFIABLE, lifecycle_event, refuse, transition
from fiscalgate.gateway.invoices.queries import get_invoice
from fiscalgate.gateway.queue.models import JobRow

ACTIONS = ("certify", "reconcile")
# A running job whose process keeps beating is never taken away; this bound only catches a
# process that beats but never finishes (a hung event loop). Longer than any claim lease.
JOB_LEASE = timedelta(minutes=30)

_LIVE_JOB = select(JobRow).where(JobRow.invoice_id == bindparam("invoice_id"), JobRow.state != "done")


def live_job(session: Session, invoice_id: str) -> JobRow | None:
    return session.scalars(_LIVE_JOB, {"invoice_id": invoice_id}).one_or_none()


def enqueue_certification(
    session: Session, tenant_id: str, invoice_id: str, *, action: str = "certify", trigger: str = "api"
) -> str:
    """Queue `action` for the invoice in the caller's transaction and return the job id.

    certify: the invoice moves approved/failed -> `queued` (a queued one returns its live job);
    reconcile: the invoice must be `unknown` and stays so. Other statuses: the same 409 as the
    synchronous call."""
    if action not in ACTIONS:
        raise ValueError(f"unknown job action {action!r}")
    if action == "certify":
        if not transition(
            session,
            tenant_id,
            invoice_id,
            CERTIFIABLE,
            status="queued",
            status_detail="queued for certification",
        ):
            row = get_invoice(session, tenant_id, invoice_id)
            existing = live_job(session, invoice_id) if row.status == "queued" else None
            if existing is None:
                raise refuse(row, "certify")
            return existing.id
    else:
        row = get_invoice(session, tenant_id, invoice_id)
        existing = live_job(session, invoice_id)
        if existing is not None:
            return existing.id
        if row.status != "unknown":
            raise refuse(row, "reconcile")
    now = utcnow()
    job = JobRow(
        tenant_id=tenant_id,
        invoice_id=invoice_id,
        action=action,
        state="queued",
        attempts=0,
        run_after=now,
        trigger=trigger[:200],
        created_at=now,
        updated_at=now,
    )
    try:
        with session.begin_nested():
            session.add(job)
            session.flush()
    except IntegrityError:  # a concurrent enqueue of the same invoice won (unique live job)
        existing = live_job(session, invoice_id)
        if existing is None:
            raise
        return existing.id
    row = get_invoice(session, tenant_id, invoice_id)
    lifecycle_event(session, row, trigger, f"invoice.queued.{action}", {"job_id": job.id})
    return job.id


_CLAIM_NEXT_POSTGRES = text(
    "UPDATE certification_jobs SET state='running', holder=:holder, lease_expires_at=:expires,"
    " attempts=attempts+1, updated_at=:now"
    " WHERE id = (SELECT id FROM certification_jobs WHERE state='queued' AND run_after <= :now"
    " ORDER BY run_after LIMIT 1 FOR UPDATE SKIP LOCKED)"
    " RETURNING id"
)
_NEXT_READY = (
    select(JobRow.id)
    .where(JobRow.state == "queued", JobRow.run_after <= bindparam("now"))
    .order_by(JobRow.run_after)
    .limit(1)
)
_TAKE = (
    update(JobRow)
    .where(JobRow.id == bindparam("job_id"), JobRow.state == "queued")
    .values(
        state="running",
        holder=bindparam("holder"),
        lease_expires_at=bindparam("expires"),
        attempts=JobRow.attempts + 1,
        updated_at=bindparam("now"),
    )
    .execution_options(synchronize_session=False)
)


def claim_job(session: Session, holder: str, now: datetime | None = None) -> JobRow | None:
    """Take the oldest ready job for `holder`, or None. PostgreSQL: `FOR UPDATE SKIP LOCKED`, so
    concurrent workers each get a different job without waiting on each other. SQLite: the
    conditional UPDATE (its write transactions are serialised by BEGIN IMMEDIATE anyway)."""
    now = now or utcnow()
    params = {"holder": holder, "expires": now + JOB_LEASE, "now": now}
    if session.get_bind().dialect.name == "postgresql":
        job_id = session.execute(_CLAIM_NEXT_POSTGRES, params).scalar()
        return None if job_id is None else session.get(JobRow, job_id, populate_existing=True)
    job_id = session.scalar(_NEXT_READY, {"now": now})
    if job_id is None:
        return None
    if session.execute(_TAKE, {**params, "job_id": job_id}).rowcount != 1:  # type: ignore[attr-defined]
        return None
    return session.get(JobRow, job_id, populate_existing=True)


def settle_job(
    session: Session,
    job_id: str,
    holder: str | None,
    *,
    state: str,
    result: str,
    action: str | None = None,
    run_after: datetime | None = None,
) -> bool:
    """Move the job on (queued again, or done), only while `holder` still holds it."""
    values: dict[str, object] = {"state": state, "result": result, "holder": None, "updated_at": utcnow()}
    values["lease_expires_at"] = None
    if action is not None:
        values["action"] = action
    if run_after is not None:
        values["run_after"] = run_after
    stmt = update(JobRow).where(JobRow.id == job_id, JobRow.state == "running")
    if holder is not None:
        stmt = stmt.where(JobRow.holder == holder)
    result_ = session.execute(stmt.values(**values).execution_options(synchronize_session=False))
    return bool(result_.rowcount == 1)  # type: ignore[attr-defined]


def job_state(session: Session, invoice_id: str) -> str | None:
    """The state of the invoice's live job (queued or running), None when it has none."""
    job = live_job(session, invoice_id)
    return None if job is None else job.state


def requeue_job(session: Session, job_id: str, holder: str | None, result: str, run_after: datetime) -> bool:
    return settle_job(session, job_id, holder, state="queued", result=result, run_after=run_after)


def finish_job(session: Session, job_id: str, holder: str | None, result: str) -> bool:
    return settle_job(session, job_id, holder, state="done", result=result)
