"""How accepted invoices of a batch get certified: each is queued (`enqueue_certification`) in the
batch's own transaction, so the invoices and their jobs commit together, and the queue's workers
(embedded in `fiscalgate serve`, or `fiscalgate worker` processes) take them from there, within
the limits, with retries and automatic reconciliation. A gateway that no worker serves keeps them
`queued` (reported by the stall detector) until one starts: nothing is certified outside the queue.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy.orm import Session

from fiscalgate.gateway.queue.jobs import enqueue_certification


def enqueue(session: Session, tenant_id: str, invoice_ids: Iterable[str]) -> None:
    """Queue each invoice in the caller's transaction."""
    for invoice_id in invoice_ids:
        enqueue_certification(session, tenant_id, invoice_id, action="certify", trigger="batch")
