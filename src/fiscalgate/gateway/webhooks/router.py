from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse

from fiscalgate.gateway.api.auth import gateway, tenant_caller, tenant_id_of
from fiscalgate.gateway.api.pagination import Page, PageQuery
from fiscalgate.gateway.runtime import Gateway
from fiscalgate.gateway.tenants.service import Caller
from fiscalgate.gateway.webhooks import service
from fiscalgate.gateway.webhooks.schemas import (
    DeliveryFilter,
    DeliveryOut,
    WebhookCreate,
    WebhookCreated,
    WebhookOut,
)

router = APIRouter(prefix="/v1", tags=["webhooks"])
NO_STORE = {"Cache-Control": "no-store"}


@router.post("/webhooks", status_code=201, response_model=WebhookCreated)
async def create_webhook(
    body: WebhookCreate, who: Caller = Depends(tenant_caller), gw: Gateway = Depends(gateway)
) -> JSONResponse:
    """Register an endpoint for some events. The answer shows the signing secret, this once."""
    created = await gw.db.run(service.create_endpoint, gw, who, tenant_id_of(who), body)
    return JSONResponse(created.model_dump(mode="json"), status_code=201, headers=NO_STORE)


@router.get("/webhooks")
async def list_webhooks(
    q: Annotated[PageQuery, Query()], who: Caller = Depends(tenant_caller), gw: Gateway = Depends(gateway)
) -> Page[WebhookOut]:
    """The tenant's endpoints, oldest first (secrets masked)."""
    return await gw.db.read(service.list_endpoints, tenant_id_of(who), q)


@router.delete("/webhooks/{webhook_id}", status_code=204)
async def delete_webhook(
    webhook_id: str, who: Caller = Depends(tenant_caller), gw: Gateway = Depends(gateway)
) -> None:
    """Delete the endpoint and its deliveries (pending ones are not sent)."""
    await gw.db.run(service.delete_endpoint, who, tenant_id_of(who), webhook_id)


@router.get("/webhooks/{webhook_id}/deliveries")
async def list_deliveries(
    webhook_id: str,
    f: Annotated[DeliveryFilter, Query()],
    who: Caller = Depends(tenant_caller),
    gw: Gateway = Depends(gateway),
) -> Page[DeliveryOut]:
    """The endpoint's deliveries, newest first, each with its log of attempts."""
    return await gw.db.read(service.list_deliveries, tenant_id_of(who), webhook_id, f)


@router.post("/webhook-deliveries/{delivery_id}/redeliver", status_code=202)
async def redeliver(
    delivery_id: str, who: Caller = Depends(tenant_caller), gw: Gateway = Depends(gateway)
) -> DeliveryOut:
    """Send the delivery again now (a fresh round of retries), whatever became of it."""
    return await gw.db.run(service.redeliver, who, tenant_id_of(who), delivery_id)
