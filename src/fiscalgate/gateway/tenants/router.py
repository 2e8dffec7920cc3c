from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from sqlalchemy.orm import Session

from fiscalgate.gateway.api.auth import admin_caller, gateway, tenant_caller, tenant_id_of
from fiscalgate.gateway.api.pagination import Page, PageQuery
from fiscalgate.gateway.audit.service import record_event
from fiscalgate.gateway.runtime import Gateway
from fiscalgate.gateway.tenants import service
from fiscalgate.gateway.tenants.schemas import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyOut,
    TenantCreate,
    TenantOut,
    TenantUpdate,
)
from fiscalgate.gateway.tenants.service import Caller

admin = APIRouter(prefix="/v1/admin", tags=["administration"], dependencies=[Depends(admin_caller)])
tenant = APIRouter(prefix="/v1", tags=["tenant"])


@admin.post("/tenants", status_code=201)
async def create_tenant(body: TenantCreate, gw: Gateway = Depends(gateway)) -> TenantOut:
    def work(session: Session) -> TenantOut:
        row = service.create_tenant(session, body)
        record_event(
            session,
            tenant_id=row.id,
            kind="tenant",
            event="tenant.created",
            trigger="admin",
            detail=body.model_dump(),
        )
        return service.tenant_out(row)

    return await gw.db.run(work)


@admin.get("/tenants")
async def list_tenants(q: Annotated[PageQuery, Query()], gw: Gateway = Depends(gateway)) -> Page[TenantOut]:
    """Every tenant, oldest first."""
    return await gw.db.read(service.page_tenants, q)


@admin.get("/tenants/{tenant_id}")
async def get_tenant(tenant_id: str, gw: Gateway = Depends(gateway)) -> TenantOut:
    return await gw.db.run(lambda s: service.tenant_out(service.get_tenant(s, tenant_id)))


@admin.patch("/tenants/{tenant_id}")
async def update_tenant(tenant_id: str, body: TenantUpdate, gw: Gateway = Depends(gateway)) -> TenantOut:
    def work(session: Session) -> TenantOut:
        row = service.update_tenant(session, tenant_id, body)
        record_event(
            session,
            tenant_id=row.id,
            kind="tenant",
            event="tenant.updated",
            trigger="admin",
            detail=body.model_dump(exclude_none=True),
        )
        return service.tenant_out(row)

    return await gw.db.run(work)


@admin.post("/tenants/{tenant_id}/api-keys", status_code=201)
async def issue_key(tenant_id: str, body: ApiKeyCreate, gw: Gateway = Depends(gateway)) -> ApiKeyCreated:
    def work(session: Session) -> ApiKeyCreated:
        created = service.issue_key(
            session, tenant_id, body.label, scope=body.scope, expires_at=body.expires_at
        )
        record_event(
            session,
            tenant_id=tenant_id,
            kind="tenant",
            event="api_key.issued",
            trigger="admin",
            detail={
                "prefix": created.prefix,
                "label": created.label,
                "scope": created.scope,
                "expires_at": created.expires_at.isoformat() if created.expires_at else None,
            },
        )
        return created

    return await gw.db.run(work)


@admin.get("/tenants/{tenant_id}/api-keys")
async def list_keys(
    tenant_id: str, q: Annotated[PageQuery, Query()], gw: Gateway = Depends(gateway)
) -> Page[ApiKeyOut]:
    """The tenant's API keys, oldest first, revoked ones included (prefix only, never the key)."""
    return await gw.db.read(service.page_keys, tenant_id, q)


@admin.delete("/tenants/{tenant_id}/api-keys/{key_id}")
async def revoke_key(tenant_id: str, key_id: str, gw: Gateway = Depends(gateway)) -> ApiKeyOut:
    def work(session: Session) -> ApiKeyOut:
        row = service.revoke_key(session, tenant_id, key_id)
        record_event(
            session,
            tenant_id=tenant_id,
            kind="tenant",
            event="api_key.revoked",
            trigger="admin",
            detail={"prefix": row.prefix},
        )
        return service.key_out(row)

    return await gw.db.run(work)


@tenant.get("/tenant", tags=["tenant"])
async def me(who: Caller = Depends(tenant_caller), gw: Gateway = Depends(gateway)) -> TenantOut:
    """The calling tenant: country, modules and the authorities available to it."""
    return await gw.db.read(lambda s: service.tenant_out(service.get_tenant(s, tenant_id_of(who))))
