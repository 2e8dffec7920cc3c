"""Queue a certification from the API and wait (at most `wait` seconds) for it to settle."""

from __future__ import annotations

import anyio
from sqlalchemy.orm import Session

from fiscalgate.gateway.invoices.queries import get_invoice, invoice_out
from fiscalgate.gateway.invoices.schemas import InvoiceOut
from fiscalgate.gateway.queue.jobs import enqueue_certification, job_state
from fiscalgate.gateway.runtime import Gateway
from fiscalgate.gateway.tenants.service import Caller

POLL = 0.25  # seconds: how often a waiting request looks, when no in-process signal comes


def _enqueue_unless_certified(session: Session, tenant_id: str, invoice_id: str, trigger: str) -> bool:
    """Queue the certification; False (nothing queued) when the invoice is already certified."""
    if get_invoice(session, tenant_id, invoice_id).status == "certified":
        return False
    enqueue_certification(session, tenant_id, invoice_id, trigger=trigger)
    return True


def _view(session: Session, tenant_id: str, invoice_id: str) -> tuple[InvoiceOut, bool]:
    """The invoice, and whether its queue work is over (no live job)."""
    return invoice_out(get_invoice(session, tenant_id, invoice_id)), job_state(session, invoice_id) is None


async def wait_settled(gw: Gateway, tenant_id: str, invoice_id: str, wait: float) -> tuple[InvoiceOut, bool]:
    """The invoice once it has no live job, or as it stands after `wait` seconds (settled=False)."""
    deadline = anyio.current_time() + wait
    while True:
        out, settled = await gw.db.read(_view, tenant_id, invoice_id)
        remaining = deadline - anyio.current_time()
        if settled or remaining <= 0:
            return out, settled
        await gw.queue.wait_settled(invoice_id, min(remaining, POLL))


async def certify_queued(
    gw: Gateway, caller: Caller, tenant_id: str, invoice_id: str, wait: float
) -> tuple[InvoiceOut, bool, bool]:
    """(invoice, settled, fresh): queue the certification, wake the workers, wait. `fresh` is
    False when it was already certified (nothing queued)."""
    queued = await gw.db.run(_enqueue_unless_certified, tenant_id, invoice_id, caller.trigger)
    if not queued:
        out, _ = await gw.db.read(_view, tenant_id, invoice_id)
        return out, True, False
    gw.queue.wake()
    out, settled = (
        await wait_settled(gw, tenant_id, invoice_id, wait)
        if wait > 0
        else await gw.db.read(_view, tenant_id, invoice_id)
    )
    return out, settled and wait > 0, True
