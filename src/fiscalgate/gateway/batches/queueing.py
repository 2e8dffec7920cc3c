"""How accepted invoices of a batch get certified.

With the durable queue (`fiscalgate.gateway.queue.enqueue_certification`, h-steps), each is queued
in the batch's own transaction: the invoices and their jobs commit together. Until that module is
present, an interim runner certifies them after the commit in this process, a few at a time,
through the same synchronous certification the API uses; an invoice it did not reach (the process
stopped) stays `approved`, and resubmitting the batch queues it again (see the README)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

import anyio
from sqlalchemy.orm import Session

from fiscalgate.core.errors import GatewayError
from fiscalgate.gateway.errors import InvoiceOperationError
from fiscalgate.gateway.runtime import Gateway
from fiscalgate.gateway.tenants.service import Caller

log = logging.getLogger(__name__)
INTERIM_CONCURRENCY = 4


def _enqueue_function() -> Callable[..., Any] | None:
    try:
        from fiscalgate.gateway.queue import enqueue_certification
    except ImportError:
        return None
    fn: Callable[..., Any] = enqueue_certification
    return fn


def has_queue() -> bool:
    return _enqueue_function() is not None


def enqueue(session: Session, tenant_id: str, invoice_ids: Iterable[str]) -> list[str]:
    """Queue each invoice in the caller's transaction; returns those left to the interim runner
    (all of them when there is no queue)."""
    fn = _enqueue_function()
    ids = list(invoice_ids)
    if fn is None:
        return ids
    for invoice_id in ids:
        fn(session, tenant_id, invoice_id, action="certify")
    return []


async def certify_now(gw: Gateway, caller: Caller, tenant_id: str, invoice_ids: list[str]) -> None:
    """The interim runner: certify each invoice once; the outcome lands on the invoice row."""
    from fiscalgate.gateway.invoices.service import certify_invoice

    slots = anyio.Semaphore(INTERIM_CONCURRENCY)

    async def one(invoice_id: str) -> None:
        async with slots:
            try:
                await certify_invoice(gw, caller, tenant_id, invoice_id)
            except (InvoiceOperationError, GatewayError):
                pass  # recorded on the invoice (rejected, failed, unknown) or not certifiable now
            except Exception:
                log.exception("batch: certifying invoice %s failed", invoice_id)

    async with anyio.create_task_group() as group:
        for invoice_id in invoice_ids:
            group.start_soon(one, invoice_id)
