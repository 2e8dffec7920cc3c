"""Events for the tenant's systems, written to the outbox in the caller's transaction.

`record_event` stores the event and, in the same transaction, one pending delivery per endpoint
of the tenant subscribed to its type: the event exists exactly when the change it reports was
committed, and no event is lost between the change and its delivery (the transactional outbox).
The dispatcher (`webhooks.dispatcher`) sends the deliveries afterwards.

`record_invoice_outcome` is the one call the certification code makes where it records an
outcome: the invoice.* event, the sticker balance the authority returned, and the metrics.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic_core import to_jsonable_python
from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from fiscalgate.gateway.db import new_id, utcnow
from fiscalgate.gateway.invoices.models import InvoiceRow
from fiscalgate.gateway.metrics import after_commit, count_certification
from fiscalgate.gateway.stickers.service import record_balance, threshold_of
from fiscalgate.gateway.webhooks.models import OutboxEvent, WebhookDelivery, WebhookEndpoint

EVENT_TYPES = (
    "invoice.certified",
    "invoice.rejected",
    "invoice.failed",
    "invoice.unknown",
    "stickers.low",
    "authority.down",
    "authority.up",
)
# The invoice status an outcome leaves -> the event that tells it.
INVOICE_EVENTS = {
    "certified": "invoice.certified",
    "rejected": "invoice.rejected",
    "failed": "invoice.failed",
    "unknown": "invoice.unknown",
}

_ENDPOINTS = select(WebhookEndpoint.id, WebhookEndpoint.events).where(
    WebhookEndpoint.tenant_id == bindparam("tenant_id")
)

# In-process dispatchers to wake once an event's transaction has committed (others poll).
_wakers: list[Any] = []


def add_waker(fn: Any) -> None:
    _wakers.append(fn)


def remove_waker(fn: Any) -> None:
    if fn in _wakers:
        _wakers.remove(fn)


def wake_dispatchers() -> None:
    for fn in list(_wakers):
        fn()


def record_event(session: Session, tenant_id: str, event_type: str, data: dict[str, Any]) -> None:
    """Write the event to the outbox, with a delivery for each subscribed endpoint, in the caller's
    transaction. `data` is made JSON-safe here (Decimal -> string, datetime -> ISO 8601)."""
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown event type {event_type!r}; known: {', '.join(EVENT_TYPES)}")
    now = utcnow()
    event_id = new_id()
    session.add(
        OutboxEvent(
            id=event_id, tenant_id=tenant_id, type=event_type, data=to_jsonable_python(data), created_at=now
        )
    )
    subscribed = [
        endpoint_id
        for endpoint_id, events in session.execute(_ENDPOINTS, {"tenant_id": tenant_id})
        if event_type in events
    ]
    if not subscribed:
        return
    session.flush()  # the event row first: deliveries reference it
    for endpoint_id in subscribed:
        session.add(
            WebhookDelivery(
                tenant_id=tenant_id,
                endpoint_id=endpoint_id,
                event_id=event_id,
                event_type=event_type,
                status="pending",
                attempts=0,
                round_attempts=0,
                next_attempt_at=now,
                created_at=now,
            )
        )
    after_commit(session, wake_dispatchers)


def invoice_event_data(row: InvoiceRow) -> dict[str, Any]:
    """What an invoice.* event says: enough to act without a read back (masked like the API)."""
    cert = row.certification or {}
    error = row.error or {}
    return {
        "invoice_id": row.id,
        "number": row.number,
        "kind": row.kind,
        "authority": row.authority,
        "environment": row.environment,
        "status": row.status,
        "status_detail": row.status_detail,
        "original_id": row.original_id,
        "attempts": row.attempts,
        "reference": row.reference,
        "certified_at": row.certified_at,
        "verification_url": cert.get("verification_url"),
        "qr_content": cert.get("qr_content"),
        "totals": cert.get("totals"),
        "sticker_balance": cert.get("sticker_balance"),
        "error": {k: error.get(k) for k in ("kind", "code", "message", "resolution", "retryable")}
        if error
        else None,
    }


def record_invoice_outcome(
    session: Session,
    row: InvoiceRow,
    *,
    event: str,
    settings: Any = None,
    call_durations_ms: Iterable[float | None] = (),
) -> None:
    """Everything that follows a recorded outcome, in the same transaction: the invoice.* event
    (not when a reconcile leaves an unknown invoice unknown: nothing changed for the tenant), the
    sticker balance the authority returned with a certification, and (after commit) the metrics.
    `event` is the lifecycle event (`invoice.certify`, `invoice.reconcile.confirm`...)."""
    after_commit(
        session,
        count_certification(
            authority=row.authority,
            environment=row.environment,
            operation=event,
            outcome=row.status,
            attempts=row.attempts,
            durations_ms=call_durations_ms,
        ),
    )
    cert = row.certification or {}
    balance = cert.get("sticker_balance")
    if row.status == "certified" and isinstance(balance, int) and row.environment:
        record_balance(
            session,
            tenant_id=row.tenant_id,
            authority=row.authority,
            environment=row.environment,
            balance=balance,
            balance_kind=str((cert.get("authority_data") or {}).get("balance_kind") or "stickers"),
            invoice_id=row.id,
            threshold=threshold_of(settings),
        )
    if event.startswith("invoice.reconcile") and row.status == "unknown":
        return
    event_type = INVOICE_EVENTS.get(row.status)
    if event_type is not None:
        record_event(session, row.tenant_id, event_type, invoice_event_data(row))
