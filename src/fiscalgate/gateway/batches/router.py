from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from fiscalgate.gateway.api.auth import gateway, tenant_caller, tenant_id_of
from fiscalgate.gateway.api.pagination import Page, PageQuery
from fiscalgate.gateway.batches import service
from fiscalgate.gateway.batches.schemas import BatchCreate, BatchOut, BatchSummary
from fiscalgate.gateway.runtime import Gateway
from fiscalgate.gateway.tenants.service import Caller

router = APIRouter(tags=["batches"])


@router.post("/v1/invoices/batch", status_code=201)
async def submit_batch(
    body: BatchCreate, who: Caller = Depends(tenant_caller), gw: Gateway = Depends(gateway)
) -> BatchOut:
    """Up to 1,000 neutral invoices, each validated and answered on its own (accepted with its
    invoice id, or refused with the field and why); the accepted ones are queued for certification
    when `certify` is true. Follow them with `GET /v1/batches/{id}`."""
    tenant_id = tenant_id_of(who)
    out = await gw.db.run(lambda s: service.submit_batch(s, gw, who, tenant_id, body))
    gw.queue.wake()  # this process's worker, if any, takes the queued ones at once
    return out


@router.get("/v1/batches")
async def list_batches(
    q: Annotated[PageQuery, Query()], who: Caller = Depends(tenant_caller), gw: Gateway = Depends(gateway)
) -> Page[BatchSummary]:
    """The tenant's batches, newest first, with their progress counts (the items of one batch:
    `GET /v1/batches/{id}`)."""
    return await gw.db.read(lambda s: service.page_batches(s, tenant_id_of(who), q))


@router.get("/v1/batches/{batch_id}")
async def get_batch(
    batch_id: str, who: Caller = Depends(tenant_caller), gw: Gateway = Depends(gateway)
) -> BatchOut:
    """Progress counts and every item's outcome; `status: done` once every invoice is final
    (certified, rejected) or waits for a person (unknown, failed)."""
    return await gw.db.read(lambda s: service.batch_out(s, tenant_id_of(who), batch_id))
