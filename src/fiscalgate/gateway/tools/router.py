"""`/v1/authorities[/{authority}[/info[/{topic}]]]`, `POST /v1/settings/{authority}/test`,
`POST /v1/invoices/{invoice_id}/report` (see service.py)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from fiscalgate.gateway.api.auth import gateway, tenant_caller, tenant_id_of
from fiscalgate.gateway.api.pagination import NoQuery, Page, whole
from fiscalgate.gateway.runtime import Gateway
from fiscalgate.gateway.tenants.service import Caller
from fiscalgate.gateway.tools import service
from fiscalgate.gateway.tools.schemas import (
    AuthorityOut,
    ConnectionTestOut,
    InformationOut,
    ReportOut,
    TopicAnswer,
)

router = APIRouter()


@router.get("/v1/authorities", tags=["authorities"])
async def list_authorities(
    q: Annotated[NoQuery, Query()], who: Caller = Depends(tenant_caller), gw: Gateway = Depends(gateway)
) -> Page[AuthorityOut]:
    """Every registered authority, whether this tenant may use it, and what else it offers
    (connection test, information topics, report)."""
    return whole(await service.list_authorities(gw, tenant_id_of(who)))


@router.get("/v1/authorities/{authority}", tags=["authorities"])
async def get_authority(
    authority: str, who: Caller = Depends(tenant_caller), gw: Gateway = Depends(gateway)
) -> AuthorityOut:
    """One authority (by code, module or alias); 404 for an unknown one."""
    return await service.one_authority(gw, tenant_id_of(who), authority)


@router.post("/v1/settings/{authority}/test", tags=["settings"])
async def test_settings(
    authority: str, who: Caller = Depends(tenant_caller), gw: Gateway = Depends(gateway)
) -> ConnectionTestOut:
    """Try the tenant's saved settings with the authority's one harmless call (nothing is
    certified). 200: it worked. 502 `AuthorityAuthError`: the credentials were refused (the
    authority's code and text in `authority_code` / `authority_message`). 503: unreachable, or no
    answer. 422: no usable settings, or no harmless call on that platform
    (`authority.capability_missing`: FNE). The call is in the audit log (event `settings.test`)."""
    return await service.test_connection(gw, who, tenant_id_of(who), authority)


@router.get("/v1/authorities/{authority}/info", tags=["authorities"])
async def get_information(
    authority: str, who: Caller = Depends(tenant_caller), gw: Gateway = Depends(gateway)
) -> InformationOut:
    """Every information topic of the authority with its data, read with the tenant's credentials
    (e-MECeF's information API). 422 `authority.capability_missing` for an authority without one."""
    return await service.information(gw, who, tenant_id_of(who), authority)


@router.get("/v1/authorities/{authority}/info/{topic}", tags=["authorities"])
async def get_topic(
    authority: str, topic: str, who: Caller = Depends(tenant_caller), gw: Gateway = Depends(gateway)
) -> TopicAnswer:
    """One information topic (e.g. `taxGroups`); 404 `info.topic_not_found` for an unknown one."""
    return await service.one_topic(gw, who, tenant_id_of(who), authority, topic)


@router.post("/v1/invoices/{invoice_id}/report", tags=["invoices"])
async def report_invoice(
    invoice_id: str, who: Caller = Depends(tenant_caller), gw: Gateway = Depends(gateway)
) -> ReportOut:
    """Declare a certified invoice to its authority's report endpoint (SFEC: `POST
    /api/invoices/report/api`, for fiscal archiving). 409 `invoice.not_certified`; 422
    `authority.capability_missing` when the authority has no report; a second report is SFEC's own
    409 (`ALREADY_REPORTED`)."""
    return await service.report(gw, who, tenant_id_of(who), invoice_id)
