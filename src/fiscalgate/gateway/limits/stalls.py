"""The stall detector: invoices sitting in `queued`, `submitting` or `unknown` for too long.

`stalled_invoices` is the read the dashboard and the metrics call; `report_stalled` (run
periodically by the workers) also writes one audit event `invoice.stalled` per invoice and per
stay in that status (an invoice already reported since it last changed is not reported again).
`unknown` counts too: an FNE unknown waits for a person, and an e-MECeF / SFEC one that automatic
reconciliation has not resolved within the threshold needs one as well.
Threshold: `FISCALGATE_STALL_AFTER` (seconds, default 900).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from fiscalgate.core.errors import ConfigurationError
from fiscalgate.gateway.audit.models import AuditEntry
from fiscalgate.gateway.audit.service import record_event
from fiscalgate.gateway.db import utcnow
from fiscalgate.gateway.invoices.models import InvoiceRow

STALL_STATUSES = ("queued", "submitting", "unknown")
STALL_AFTER_ENV = "FISCALGATE_STALL_AFTER"
DEFAULT_STALL_AFTER = timedelta(minutes=15)
STALLED_EVENT = "invoice.stalled"


@dataclass(frozen=True)
class StalledInvoice:
    id: str
    tenant_id: str
    authority: str
    number: str
    status: str
    since: datetime  # last change of the invoice
    age: timedelta
    status_detail: str | None


def stall_threshold(environ: Mapping[str, str] | None = None) -> timedelta:
    raw = (os.environ if environ is None else environ).get(STALL_AFTER_ENV)
    if raw is None or not raw.strip():
        return DEFAULT_STALL_AFTER
    try:
        seconds = float(raw)
    except ValueError:
        raise ConfigurationError(
            f"{STALL_AFTER_ENV} must be seconds, not {raw!r}", code="settings.limits"
        ) from None
    if seconds <= 0:
        raise ConfigurationError(f"{STALL_AFTER_ENV} must be positive", code="settings.limits")
    return timedelta(seconds=seconds)


def stalled_invoices(
    session: Session,
    tenant_id: str | None,
    older_than: timedelta,
    *,
    now: datetime | None = None,
    limit: int = 1000,
) -> list[StalledInvoice]:
    """Invoices of one tenant (None: every tenant) in a stall status unchanged for `older_than`,
    the oldest first."""
    now = now or utcnow()
    query = select(InvoiceRow).where(
        InvoiceRow.status.in_(STALL_STATUSES), InvoiceRow.updated_at < now - older_than
    )
    if tenant_id is not None:
        query = query.where(InvoiceRow.tenant_id == tenant_id)
    rows = session.scalars(query.order_by(InvoiceRow.updated_at, InvoiceRow.id).limit(limit))
    return [
        StalledInvoice(
            r.id,
            r.tenant_id,
            r.authority,
            r.number,
            r.status,
            r.updated_at,
            now - r.updated_at,
            r.status_detail,
        )
        for r in rows
    ]


def report_stalled(
    session: Session,
    older_than: timedelta,
    *,
    tenant_id: str | None = None,
    now: datetime | None = None,
    trigger: str = "stall_detector",
) -> list[StalledInvoice]:
    """Write an `invoice.stalled` audit event for each stalled invoice not yet reported since it
    last changed; returns the newly reported ones."""
    stalled = stalled_invoices(session, tenant_id, older_than, now=now)
    if not stalled:
        return []
    reported = {
        (invoice_id, created_at)
        for invoice_id, created_at in session.execute(
            select(AuditEntry.invoice_id, AuditEntry.created_at).where(
                AuditEntry.event == STALLED_EVENT, AuditEntry.invoice_id.in_([s.id for s in stalled])
            )
        )
    }
    fresh = []
    for item in stalled:
        if any(i == item.id and at >= item.since for i, at in reported):
            continue
        record_event(
            session,
            tenant_id=item.tenant_id,
            kind="lifecycle",
            event=STALLED_EVENT,
            trigger=trigger,
            authority=item.authority,
            invoice_id=item.id,
            detail={
                "status": item.status,
                "since": item.since.isoformat(),
                "age_seconds": int(item.age.total_seconds()),
                "threshold_seconds": int(older_than.total_seconds()),
                "status_detail": item.status_detail,
            },
        )
        fresh.append(item)
    return fresh
