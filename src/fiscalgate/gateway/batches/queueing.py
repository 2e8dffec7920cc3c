"""How accepted invoices of a batch get certified.

With the durable queue (`fiscalgate.gateway.queue.enqueue_certification`, h-steps), each is queued
in the batch's own transaction: the invoices and their jobs commit together. Until that module is
present, an interim runner certifies them after the commit in this process, a few at a time,
through the same synchronous certification the API uses; an invoice it did not reach (the process
stopped) stays `approved`, and resubmitting the batch queues it again (see the README)."""

from __future__ import annotations

import functools
import logging
import random
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import anyio
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from fiscalgate.core.errors import GatewayError, OutcomeUnknown
from fiscalgate.gateway.errors import InvoiceOperationError
from fiscalgate.gateway.invoices.models import InvoiceRow
from fiscalgate.gateway.limits import Admitted, Limits
from fiscalgate.gateway.queue.policy import AUTO_RECONCILE  # as the descriptors say
from fiscalgate.gateway.runtime import Gateway
from fiscalgate.gateway.settings.models import AuthorityConfig
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


def enqueue(
    session: Session, tenant_id: str, invoice_ids: Iterable[str], *, worked: bool = True
) -> list[str]:
    """Queue each invoice in the caller's transaction; returns those left to the interim runner
    (all of them when there is no queue, or when no queue worker serves this gateway: `worked`
    is False for an app built in-process without `workers`, see api/app.py)."""
    fn = _enqueue_function()
    ids = list(invoice_ids)
    if fn is None or not worked:
        return ids
    for invoice_id in ids:
        fn(session, tenant_id, invoice_id, action="certify")
    return []


# The interim runner's policy (the durable queue replaces all of it): bounded retries of what the
# error kind says is retryable, automatic reconciliation where the authority allows it.
MAX_ATTEMPTS = 4
MAX_RECONCILES = 4
BACKOFF_SECONDS = 0.5  # doubled after each retry, with jitter


@functools.cache
def interim_limits() -> Limits:
    return Limits.from_env()


def _target(session: Session, tenant_id: str, invoice_id: str) -> tuple[str, str]:
    """(authority, environment) the next call for this invoice goes to."""
    authority = session.scalar(
        select(InvoiceRow.authority).where(InvoiceRow.id == invoice_id, InvoiceRow.tenant_id == tenant_id)
    )
    if authority is None:
        return "", ""
    environment = session.scalar(
        select(AuthorityConfig.environment).where(
            AuthorityConfig.tenant_id == tenant_id, AuthorityConfig.authority == authority
        )
    )
    return authority, environment or "mock"


def _handed_back(session: Session, tenant_id: str, invoice_id: str) -> None:
    """The runner is done with this invoice: its batches may call it settled."""
    from fiscalgate.gateway.batches.models import BatchItemRow

    session.execute(
        update(BatchItemRow)
        .where(
            BatchItemRow.invoice_id == invoice_id, BatchItemRow.tenant_id == tenant_id, BatchItemRow.queued
        )
        .values(queued=False)
        .execution_options(synchronize_session=False)
    )


async def _limited(
    gw: Gateway, limits: Limits, tenant_id: str, invoice_id: str, call: Callable[[], Awaitable[Any]]
) -> GatewayError | None:
    """One call to the authority inside the limits: wait while deferred (not an attempt), then
    call, then tell the limits how it went. Returns the call's error (None: it went through)."""
    authority, environment = await gw.db.read(_target, tenant_id, invoice_id)
    while True:
        decision = await gw.db.run(lambda s: limits.admit(s, tenant_id, authority, environment, invoice_id))
        if isinstance(decision, Admitted):
            break
        wait = (decision.retry_at - limits.clock.now()).total_seconds()
        await anyio.sleep(min(max(wait, 0.01), 60))
    error: GatewayError | None = None
    try:
        await call()
    except InvoiceOperationError as exc:
        error = exc.error
    except GatewayError as exc:
        error = exc
    finally:
        with anyio.CancelScope(shield=True):
            await gw.db.run(lambda s: limits.settle(s, tenant_id, authority, environment, invoice_id, error))
    return error


async def certify_now(
    gw: Gateway, caller: Caller, tenant_id: str, invoice_ids: list[str], limits: Limits | None = None
) -> None:
    """The interim runner: certify each invoice, within the limits; retry what is retryable a few
    times; reconcile an unknown outcome where the authority has a look-up (never resend it)."""
    from fiscalgate.gateway.certification import certify_invoice, reconcile_invoice
    from fiscalgate.gateway.invoices.schemas import ReconcileRequest

    limits = limits or interim_limits()
    slots = anyio.Semaphore(INTERIM_CONCURRENCY)
    reconciler = Caller(caller.tenant_id, caller.trigger)

    async def backoff(attempt: int) -> None:
        await anyio.sleep(BACKOFF_SECONDS * 2**attempt * (0.5 + random.random()))

    def status_of(invoice_id: str) -> Callable[[Session], str | None]:
        return lambda s: s.scalar(select(InvoiceRow.status).where(InvoiceRow.id == invoice_id))

    async def one(invoice_id: str) -> None:
        async with slots:
            try:
                for attempt in range(MAX_ATTEMPTS):
                    error = await _limited(
                        gw,
                        limits,
                        tenant_id,
                        invoice_id,
                        lambda: certify_invoice(gw, caller, tenant_id, invoice_id),
                    )
                    status = await gw.db.read(status_of(invoice_id))
                    authority = error.authority if isinstance(error, OutcomeUnknown) else None
                    for again in range(MAX_RECONCILES):
                        if status != "unknown" or authority not in AUTO_RECONCILE:
                            break
                        await backoff(again)
                        await _limited(
                            gw,
                            limits,
                            tenant_id,
                            invoice_id,
                            lambda: reconcile_invoice(
                                gw, reconciler, tenant_id, invoice_id, ReconcileRequest()
                            ),
                        )
                        status = await gw.db.read(status_of(invoice_id))
                    # `failed` after a retryable error, or after a reconciliation that found nothing
                    # at the authority, may be certified again; anything else is where it ends.
                    retry = status == "failed" and (error is None or error.retryable or authority is not None)
                    if not retry or attempt == MAX_ATTEMPTS - 1:
                        return
                    await backoff(attempt)
            except Exception:
                log.exception("batch: certifying invoice %s failed", invoice_id)
            finally:
                with anyio.CancelScope(shield=True):
                    await gw.db.run(_handed_back, tenant_id, invoice_id)

    async with anyio.create_task_group() as group:
        for invoice_id in invoice_ids:
            group.start_soon(one, invoice_id)
