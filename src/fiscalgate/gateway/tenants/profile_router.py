from __future__ import annotations

from fastapi import APIRouter, Depends

from fiscalgate.gateway.api.auth import gateway, tenant_caller, tenant_id_of
from fiscalgate.gateway.runtime import Gateway
from fiscalgate.gateway.tenants import profile
from fiscalgate.gateway.tenants.profile import ProfileOut, ProfileUpdate
from fiscalgate.gateway.tenants.service import Caller

router = APIRouter(prefix="/v1", tags=["tenant"])


@router.get("/profile")
async def get_profile(who: Caller = Depends(tenant_caller), gw: Gateway = Depends(gateway)) -> ProfileOut:
    """The seller identity printed on the tenant's invoices."""
    return await gw.db.read(profile.get_profile, tenant_id_of(who))


@router.put("/profile")
async def put_profile(
    body: ProfileUpdate, who: Caller = Depends(tenant_caller), gw: Gateway = Depends(gateway)
) -> ProfileOut:
    """Replace the seller identity (name, tax id, RCCM, address, phone, e-mail); `logo` as a data URI
    (PNG or JPEG), `null` to remove it, absent to keep it."""
    return await gw.db.run(profile.update_profile, who, tenant_id_of(who), body)
