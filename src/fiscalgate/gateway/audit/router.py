from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from fiscalgate.gateway.api.auth import gateway, tenant_caller, tenant_id_of
from fiscalgate.gateway.api.pagination import Page, page_of
from fiscalgate.gateway.audit import service
from fiscalgate.gateway.audit.models import AuditEntry
from fiscalgate.gateway.audit.replay import READ_ONLY, replay_entry
from fiscalgate.gateway.audit.schemas import AuditFilter, AuditOut, ReplayOut
from fiscalgate.gateway.runtime import Gateway
from fiscalgate.gateway.tenants.service import Caller

router = APIRouter(prefix="/v1/audit", tags=["audit"])


def audit_out(entry: AuditEntry) -> AuditOut:
    # Writes are replayed only from the in-process simulator (to a throwaway copy): see replay.py.
    replayable = entry.kind == "authority_call" and (
        entry.environment == "mock" or (entry.method or "").upper() in READ_ONLY
    )
    return AuditOut(
        id=entry.id,
        kind=entry.kind,
        event=entry.event,
        authority=entry.authority,
        invoice_id=entry.invoice_id,
        environment=entry.environment,
        trigger=entry.trigger,
        method=entry.method,
        url=entry.url,
        request_headers=entry.request_headers,
        request_body=entry.request_body,
        response_status=entry.response_status,
        response_headers=entry.response_headers,
        response_body=entry.response_body,
        duration_ms=entry.duration_ms,
        outcome=entry.outcome,
        detail=entry.detail,
        created_at=entry.created_at,
        replayable=replayable,
    )


@router.get("")
async def list_audit(
    f: Annotated[AuditFilter, Query()], who: Caller = Depends(tenant_caller), gw: Gateway = Depends(gateway)
) -> Page[AuditOut]:
    """The tenant's audit log, newest first: authority calls, settings changes, lifecycle events."""
    return await gw.db.read(lambda s: page_of(*service.page_entries(s, tenant_id_of(who), f), audit_out))


@router.get("/{entry_id}")
async def get_audit(
    entry_id: str, who: Caller = Depends(tenant_caller), gw: Gateway = Depends(gateway)
) -> AuditOut:
    return await gw.db.read(lambda s: audit_out(service.get_entry(s, tenant_id_of(who), entry_id)))


@router.post("/{entry_id}/replay")
async def replay(
    entry_id: str, who: Caller = Depends(tenant_caller), gw: Gateway = Depends(gateway)
) -> ReplayOut:
    """Send a recorded authority call again (mock/sandbox; read-only calls only in production)."""
    return await replay_entry(gw, who, tenant_id_of(who), entry_id)
