"""Who is calling: `Authorization: Bearer <token>` with the admin token or a tenant API key."""

from __future__ import annotations

import secrets

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from fiscalgate.gateway.errors import Forbidden, Unauthorized
from fiscalgate.gateway.runtime import Gateway
from fiscalgate.gateway.tenants.service import Caller, authenticate_key

_bearer = HTTPBearer(auto_error=False, description="The admin token, or a tenant API key (fgk_...)")


def gateway(request: Request) -> Gateway:
    gw: Gateway = request.app.state.gateway
    return gw


async def caller(
    request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(_bearer)
) -> Caller:
    if credentials is None or not credentials.credentials:
        raise Unauthorized("send `Authorization: Bearer <API key>`", code="auth.missing")
    token = credentials.credentials
    gw = gateway(request)
    if secrets.compare_digest(token.encode(), gw.admin_token.encode()):
        return Caller(tenant_id=None, trigger="admin")
    found = await gw.db.read(authenticate_key, token)  # a pure read: outside the write queue
    if found is None:
        raise Unauthorized("unknown or revoked API key", code="auth.invalid_key")
    return found


async def tenant_caller(who: Caller = Depends(caller)) -> Caller:
    if who.is_admin:
        raise Forbidden(
            "the administrator token only provisions tenants and keys; use one of the tenant's API keys",
            code="auth.tenant_key_required",
        )
    return who


async def admin_caller(who: Caller = Depends(caller)) -> Caller:
    if not who.is_admin:
        raise Forbidden("this route needs the administrator token", code="auth.admin_required")
    return who


def tenant_id_of(who: Caller) -> str:
    assert who.tenant_id is not None  # guaranteed by tenant_caller
    return who.tenant_id
