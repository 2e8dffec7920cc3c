from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query
from fastapi.openapi.models import Example

from fiscalgate.gateway.api.auth import gateway, tenant_caller, tenant_id_of
from fiscalgate.gateway.api.pagination import NoQuery, Page, whole
from fiscalgate.gateway.authorities import authority_code, codes
from fiscalgate.gateway.runtime import Gateway
from fiscalgate.gateway.settings import service
from fiscalgate.gateway.settings.schemas import SettingsOut
from fiscalgate.gateway.tenants.service import Caller

router = APIRouter(prefix="/v1/settings", tags=["settings"])

# Each works as it is on a fresh tenant, for every authority available to it (tested).
SETTINGS_EXAMPLES: dict[str, Example] = {
    "mock": {
        "summary": "The built-in simulator",
        "description": "Credentials the tenant's in-process simulator accepts are filled in.",
        "value": {"environment": "mock"},
    },
    "mock_tuned": {
        "summary": "The built-in simulator, a shorter timeout",
        "value": {"environment": "mock", "active": True, "timeout_seconds": 10},
    },
    "switched_off": {
        "summary": "Configured but switched off",
        "description": "Certifications are refused with settings.inactive until `active` is true again.",
        "value": {"active": False},
    },
}


@router.get("")
async def list_settings(
    q: Annotated[NoQuery, Query()], who: Caller = Depends(tenant_caller), gw: Gateway = Depends(gateway)
) -> Page[SettingsOut]:
    """Every authority with its availability for this tenant and its settings (secrets masked):
    one page, one item per registered authority."""
    return whole(await gw.db.run(service.list_settings, gw, tenant_id_of(who), codes()))


@router.get("/{authority}")
async def get_settings(
    authority: str, who: Caller = Depends(tenant_caller), gw: Gateway = Depends(gateway)
) -> SettingsOut:
    return await gw.db.run(service.get_settings, gw, tenant_id_of(who), authority_code(authority))


@router.put("/{authority}")
async def save_settings(
    authority: str,
    body: dict[str, Any] = Body(
        openapi_examples=SETTINGS_EXAMPLES,
        description=(
            "The authority's settings fields; omitted fields (and omitted secrets) keep their value. "
            "In `mock`, missing credentials are filled with ones the built-in simulator accepts"
        ),
    ),
    who: Caller = Depends(tenant_caller),
    gw: Gateway = Depends(gateway),
) -> SettingsOut:
    return await gw.db.run(service.save_settings, gw, who, tenant_id_of(who), authority_code(authority), body)


@router.delete("/{authority}", status_code=204)
async def delete_settings(
    authority: str, who: Caller = Depends(tenant_caller), gw: Gateway = Depends(gateway)
) -> None:
    await gw.db.run(service.delete_settings, gw, who, tenant_id_of(who), authority_code(authority))
