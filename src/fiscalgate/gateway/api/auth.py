"""Who is calling: `Authorization: Bearer <token>` with the admin token or a tenant API key.

API routes are authenticated once, by the request guard (`api/guard.py`) before any body is
read; the route dependencies below read the caller it resolved. They resolve it themselves when
the guard did not run (an app without it, in a test)."""

from __future__ import annotations

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.datastructures import Headers
from starlette.types import Scope

from fiscalgate.core.errors import GatewayError
from fiscalgate.gateway.errors import Forbidden, Unauthorized
from fiscalgate.gateway.runtime import Gateway
from fiscalgate.gateway.tenants.service import Caller, authenticate_key

_bearer = HTTPBearer(auto_error=False, description="The admin token, or a tenant API key (fgk_...)")
CALLER_STATE = "fiscalgate.caller"


def gateway(request: Request) -> Gateway:
    gw: Gateway = request.app.state.gateway
    return gw


def bearer_token(authorization: str | None) -> str | None:
    scheme, _, token = (authorization or "").partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


async def resolve(gw: Gateway, token: str | None) -> Caller | GatewayError:
    """The caller for a bearer token, or the 401 to answer."""
    if not token:
        return Unauthorized("send `Authorization: Bearer <API key>`", code="auth.missing")
    if gw.is_admin_token(token):
        return Caller(tenant_id=None, trigger="admin")
    found = await gw.db.read(authenticate_key, token)  # a pure read: outside the write queue
    if found is None:
        return Unauthorized("unknown, revoked or expired API key", code="auth.invalid_key")
    return found


async def authenticate_request(scope: Scope, headers: Headers) -> Caller | GatewayError:
    gw: Gateway = scope["app"].state.gateway
    return await resolve(gw, bearer_token(headers.get("authorization")))


async def caller(
    request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(_bearer)
) -> Caller:
    found = request.scope.get("state", {}).get(CALLER_STATE)
    if not isinstance(found, Caller):
        outcome = await resolve(gateway(request), credentials.credentials if credentials else None)
        if isinstance(outcome, GatewayError):
            raise outcome
        found = outcome
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
