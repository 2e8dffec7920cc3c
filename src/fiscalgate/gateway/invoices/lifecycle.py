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

from fiscalgate.gateway.audit.service import record_event
from fiscalgate.gateway.db import utcnow
from fiscalgate.gateway.errors import Conflict, InvoiceOperationError
from fiscalgate.gateway.invoices.models import InvoiceRow

# Where a certification attempt may start from. `failed` means nothing was certified (the authority
# was unreachable, refused our credentials, or a reconcile said "not certified"): safe to retry.
CERTIFIABLE = ("approved", "failed")
EDITABLE = ("draft", "approved", "rejected", "failed")
DELETABLE = ("draft", "approved", "rejected", "failed")
# How long a `submitting` claim may last before it counts as abandoned (its process died: kill -9,
# OOM, a deploy). Longer than any live attempt: SFEC's worst case is 300 s per try x max_attempts,
# plus backoff. Past it, reconciling turns the claim into `unknown` (never back into certifiable).
CLAIM_LEASE = timedelta(minutes=30)
STALE_DETAIL = "the process handling the call stopped: reconcile"


def stale_cutoff(now: datetime | None = None) -> datetime:
    """A `submitting` row last touched before this has been abandoned (read at call time, so a
    test can shorten `CLAIM_LEASE`)."""
    return (now or utcnow()) - CLAIM_LEASE


def is_stale(row: InvoiceRow) -> bool:
    return row.status == "submitting" and row.updated_at < stale_cutoff()


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
        "unknown": "its last certification attempt has an unknown outcome: reconcile it first",
        "draft": "approve it first",
        "rejected": "fix it (PUT) and approve it again",
    }
    hint = hints.get(row.status, "")
    if is_stale(row):
        hint = f"its call has had no outcome for over {CLAIM_LEASE} (its process stopped?): reconcile it"
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
