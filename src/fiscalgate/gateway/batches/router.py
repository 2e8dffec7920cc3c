from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from fiscalgate.gateway.api.auth import gateway, tenant_caller, tenant_id_of
from fiscalgate.gateway.api.pagination import Page, PageQuery
from fiscalgate.gateway.batches import service
from fiscalgate.gateway.batches.queueing import certify_now
from fiscalgate.gateway.batches.schemas import BatchCreate, BatchOut, BatchSummary
from fiscalgate.gateway.runtime import Gateway
from fiscalgate.gateway.tenants.service import Caller

router = APIRouter(tags=["batches"])


@router.post("/v1/invoices/batch", status_code=201)
async def submit_batch(
    body: BatchCreate, request: Request, who: Caller = Depends(tenant_caller), gw: Gateway = Depends(gateway)
) -> BatchOut:
    """Up to 1,000 neutral invoices, each validated and answered on its own (accepted with its
    invoice id, or refused with the field and why); the accepted ones are queued for certification
    when `certify` is true. Follow them with `GET /v1/batches/{id}`."""
    tenant_id = tenant_id_of(who)
    out, leftover = await gw.db.run(lambda s: service.submit_batch(s, gw, who, tenant_id, body))
    gw.queue.wake()  # this process's worker, if any, takes the queued ones at once
    if leftover:
        # Interim, until the durable queue exists: certify them here, after the commit.
        tasks: set[asyncio.Task[None]] = request.app.state.__dict__.setdefault("batch_tasks", set())
        task = asyncio.get_running_loop().create_task(certify_now(gw, who, tenant_id, leftover))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    return out


@router.get("/v1/batches")
async def list_batches(
    q: Annotated[PageQuery, Query()], who: Caller = Depends(tenant_caller), gw: Gateway = Depends(gateway)
) -> Page[BatchSummary]:
    """The tenant's batches, newest first, with their progress counts (the items of one batch:
    `GET /v1/batches/{id}`)."""
    interim = gw.process_id is None  # as in get_batch
    return await gw.db.read(lambda s: service.page_batches(s, tenant_id_of(who), q, interim=interim))


@router.get("/v1/batches/{batch_id}")
async def get_batch(
    batch_id: str, who: Caller = Depends(tenant_caller), gw: Gateway = Depends(gateway)
) -> BatchOut:
    """Progress counts and every item's outcome; `status: done` once every invoice is final
    (certified, rejected) or waits for a person (unknown, failed)."""
    interim = gw.process_id is None  # no queue worker here: the interim runner certifies
    return await gw.db.read(lambda s: service.batch_out(s, tenant_id_of(who), batch_id, interim=interim))
