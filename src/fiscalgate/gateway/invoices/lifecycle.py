"""The invoice lifecycle's shared rules: which status allows what, how a transition is made, how
a refusal reads, and the lifecycle audit event.

    draft -> approved -> submitting -> certified | rejected | unknown | failed

Every transition is one conditional UPDATE (`... WHERE status IN (...)`) whose row count decides
whether it happened, so the database, not an `if` in memory, arbitrates between concurrent calls:
of two certify calls on one invoice exactly one moves it to `submitting`, and only that one calls
the authority. No transaction is held open during the authority call.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session

from fiscalgate.authorities.base import AuthoritySettings
from fiscalgate.gateway.audit.service import record_event
from fiscalgate.gateway.db import utcnow
from fiscalgate.gateway.errors import Conflict, InvoiceOperationError
from fiscalgate.gateway.invoices.models import InvoiceRow

# Where a certification attempt may start from. `failed` means nothing was certified (the authority
# was unreachable, refused our credentials, or a reconcile said "not certified"): safe to retry.
CERTIFIABLE = ("approved", "failed")
# Waiting for a queue worker (certify) and being certified (submitting): nothing to decide yet.
IN_FLIGHT = ("queued", "submitting")
EDITABLE = ("draft", "approved", "rejected", "failed")
DELETABLE = ("draft", "approved", "rejected", "failed")
# A claim says who holds it (`claim_holder`, the process id; its heartbeat says it is alive) and
# until when (`claim_expires_at`). Until the settings are read the claim gets this upper bound;
# `claim_lease(settings)` then sets the expiry from the tenant's own timeout and attempts. Past
# the expiry, or once its process is dead, the claim is abandoned: healing (queue/healing.py),
# a reconcile or a resolution by hand turns it into `unknown` (never back into certifiable).
CLAIM_LEASE = timedelta(minutes=30)
# Requests one attempt can make (e-MECeF: submit, confirm, and an info call), and the slack for
# the driver's own backoff between tries.
REQUESTS_PER_ATTEMPT = 3
LEASE_SLACK = timedelta(seconds=60)
STALE_DETAIL = "the process handling the call stopped: reconcile"


def claim_lease(settings: AuthoritySettings) -> timedelta:
    """How long a live attempt with these settings can last: timeout x tries x requests + slack."""
    tries = int(getattr(settings, "max_attempts", 1) or 1)
    return timedelta(seconds=settings.timeout_seconds * tries * REQUESTS_PER_ATTEMPT) + LEASE_SLACK


def is_stale(row: InvoiceRow, now: datetime | None = None) -> bool:
    """A `submitting` row whose claim has expired (a dead holder is seen by healing, which turns
    the row `unknown` within seconds)."""
    if row.status != "submitting":
        return False
    now = now or utcnow()
    if row.claim_expires_at is None:  # claimed before the claims carried their expiry
        return row.updated_at < now - CLAIM_LEASE
    return row.claim_expires_at < now


def lifecycle_event(
    session: Session, row: InvoiceRow, trigger: str, event: str, detail: dict[str, Any]
) -> None:
    record_event(
        session,
        tenant_id=row.tenant_id,
        kind="lifecycle",
        event=event,
        trigger=trigger,
        authority=row.authority,
        invoice_id=row.id,
        environment=row.environment,
        detail=detail,
    )


def refuse(row: InvoiceRow, action: str) -> InvoiceOperationError:
    """The 409 for an action the invoice's status does not allow; the body names the invoice and
    the status it is in."""
    hints = {
        "certified": "a certified invoice is final: issue a credit note to correct it",
        "submitting": "a call to the authority is in progress for it",
        "queued": "it is queued for certification: wait for the queue (GET it to follow)",
        "unknown": "its last certification attempt has an unknown outcome: reconcile it first",
        "draft": "approve it first",
        "rejected": "fix it (PUT) and approve it again",
    }
    hint = hints.get(row.status, "")
    if is_stale(row):
        hint = "its call has had no outcome past its claim's expiry (its process stopped?): reconcile it"
    conflict = Conflict(
        f"cannot {action} invoice {row.id} in status {row.status!r}" + (f": {hint}" if hint else ""),
        code=f"invoice.cannot_{action.replace(' ', '_')}.{row.status}",
    )
    return InvoiceOperationError(conflict, row.id, row.status)


def transition(
    session: Session, tenant_id: str, invoice_id: str, allowed: tuple[str, ...], **values: Any
) -> bool:
    """Move the invoice to `values` if its status is in `allowed`; whether it moved."""
    result = session.execute(
        update(InvoiceRow)
        .where(InvoiceRow.id == invoice_id, InvoiceRow.tenant_id == tenant_id, InvoiceRow.status.in_(allowed))
        .values(updated_at=utcnow(), **values)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def update_returning(
    session: Session, invoice_id: str, stmt: Any, params: dict[str, Any] | None = None
) -> InvoiceRow | None:
    """Run a conditional `UPDATE invoices` and return the updated row (None when the WHERE did not
    match), fresh from the database, in one statement where the database has RETURNING. `stmt` is
    a statement or a pair from `with_returning`."""
    plain, returning = stmt if isinstance(stmt, tuple) else with_returning(stmt)
    if session.get_bind().dialect.update_returning:
        return session.scalars(returning, params).one_or_none()
    if session.execute(plain, params).rowcount != 1:  # type: ignore[attr-defined]
        return None
    return session.get(InvoiceRow, invoice_id, populate_existing=True)


def with_returning(stmt: Any) -> tuple[Any, Any]:
    """`stmt`, and `stmt` returning the updated row (for databases with RETURNING)."""
    return stmt, stmt.returning(InvoiceRow).execution_options(populate_existing=True)
