"""Tenants and their API keys (administrator actions), and API-key authentication."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import bindparam, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from fiscalgate.core.errors import Problem
from fiscalgate.gateway.api.pagination import Keyset, Page, PageQuery, page_of, paginate
from fiscalgate.gateway.authorities import available_authorities
from fiscalgate.gateway.countries import country_name
from fiscalgate.gateway.db import utcnow
from fiscalgate.gateway.errors import Conflict, InvalidRequest, NotFound
from fiscalgate.gateway.tenants.models import ApiKey, Tenant
from fiscalgate.gateway.tenants.schemas import ApiKeyCreated, ApiKeyOut, TenantCreate, TenantOut, TenantUpdate

KEY_PREFIX = "fgk_"


@dataclass(frozen=True)
class Caller:
    """Who is calling: the administrator, or a tenant through one of its API keys."""

    tenant_id: str | None
    trigger: str  # what the audit log records: "admin" or "api_key:<prefix>"
    scope: str = "certify"  # an API key's scope: "certify" (everything) or "read" (GET only)

    @property
    def is_admin(self) -> bool:
        return self.tenant_id is None


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def tenant_out(tenant: Tenant) -> TenantOut:
    return TenantOut(
        id=tenant.id,
        name=tenant.name,
        country=tenant.country,
        country_name=country_name(tenant.country),
        modules=list(tenant.modules),
        authorities=available_authorities(tenant.country, tenant.modules),
        created_at=tenant.created_at,
    )


def create_tenant(session: Session, data: TenantCreate) -> Tenant:
    if session.scalar(select(Tenant).where(Tenant.name == data.name)) is not None:
        raise Conflict(f"a tenant named {data.name!r} already exists", code="tenant.name_taken")
    tenant = Tenant(name=data.name, country=data.country, modules=data.modules, created_at=utcnow())
    session.add(tenant)
    try:
        session.flush()
    except IntegrityError:
        raise Conflict(f"a tenant named {data.name!r} already exists", code="tenant.name_taken") from None
    return tenant


def get_tenant(session: Session, tenant_id: str) -> Tenant:
    tenant = session.get(Tenant, tenant_id)
    if tenant is None:
        raise NotFound(f"no tenant {tenant_id}", code="tenant.not_found")
    return tenant


def find_tenant_by_name(session: Session, name: str) -> Tenant | None:
    return session.scalar(select(Tenant).where(Tenant.name == name))


def list_tenants(session: Session) -> list[Tenant]:
    return list(session.scalars(select(Tenant).order_by(Tenant.created_at, Tenant.id)))


TENANTS = Keyset(Tenant.created_at, Tenant.id, newest_first=False)  # oldest first
KEYS = Keyset(ApiKey.created_at, ApiKey.id, newest_first=False)


def page_tenants(session: Session, q: PageQuery) -> Page[TenantOut]:
    return page_of(*paginate(session, Tenant, [], q, TENANTS), tenant_out)


def page_keys(session: Session, tenant_id: str, q: PageQuery) -> Page[ApiKeyOut]:
    get_tenant(session, tenant_id)
    return page_of(*paginate(session, ApiKey, [ApiKey.tenant_id == tenant_id], q, KEYS), key_out)


def update_tenant(session: Session, tenant_id: str, data: TenantUpdate) -> Tenant:
    tenant = get_tenant(session, tenant_id)
    if data.name is not None and data.name != tenant.name:
        if find_tenant_by_name(session, data.name) is not None:
            raise Conflict(f"a tenant named {data.name!r} already exists", code="tenant.name_taken")
        tenant.name = data.name
    if data.country is not None:
        tenant.country = data.country
    if data.modules is not None:
        tenant.modules = data.modules
    session.flush()
    return tenant


def issue_key(
    session: Session,
    tenant_id: str,
    label: str = "",
    *,
    scope: str = "certify",
    expires_at: datetime | None = None,
) -> ApiKeyCreated:
    get_tenant(session, tenant_id)
    if expires_at is not None and expires_at <= utcnow():
        raise InvalidRequest(
            "expires_at must be in the future",
            code="api_key.expiry_past",
            problems=[Problem("expires_at", "future", "must be in the future")],
        )
    prefix = secrets.token_hex(6)
    key = f"{KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    row = ApiKey(
        tenant_id=tenant_id,
        prefix=prefix,
        key_hash=hash_key(key),
        label=label,
        scope=scope,
        expires_at=expires_at,
        created_at=utcnow(),
    )
    session.add(row)
    session.flush()
    return ApiKeyCreated(**key_out(row).model_dump(), key=key)


def key_out(row: ApiKey) -> ApiKeyOut:
    return ApiKeyOut(
        id=row.id,
        tenant_id=row.tenant_id,
        prefix=row.prefix,
        label=row.label,
        created_at=row.created_at,
        revoked_at=row.revoked_at,
        scope=row.scope,
        expires_at=row.expires_at,
    )


def list_keys(session: Session, tenant_id: str) -> list[ApiKey]:
    get_tenant(session, tenant_id)
    return list(
        session.scalars(select(ApiKey).where(ApiKey.tenant_id == tenant_id).order_by(ApiKey.created_at))
    )


def revoke_key(session: Session, tenant_id: str, key_id: str) -> ApiKey:
    row = session.get(ApiKey, key_id)
    if row is None or row.tenant_id != tenant_id:
        raise NotFound(f"no API key {key_id} for tenant {tenant_id}", code="api_key.not_found")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
    return row


# Runs on every request: the columns it needs (not a whole ORM entity), statement built once.
_KEY_BY_PREFIX = select(
    ApiKey.tenant_id, ApiKey.prefix, ApiKey.key_hash, ApiKey.revoked_at, ApiKey.scope, ApiKey.expires_at
).where(ApiKey.prefix == bindparam("prefix"))


def authenticate_key(session: Session, key: str) -> Caller | None:
    """The caller for a tenant API key, or None (unknown, malformed, revoked or expired)."""
    if not key.startswith(KEY_PREFIX):
        return None
    prefix = key[len(KEY_PREFIX) :].split("_", 1)[0]
    row = session.execute(_KEY_BY_PREFIX, {"prefix": prefix}).first()
    if row is None or row.revoked_at is not None:
        return None
    if not secrets.compare_digest(row.key_hash, hash_key(key)):
        return None
    if row.expires_at is not None and _aware(row.expires_at) <= utcnow():
        return None
    return Caller(tenant_id=row.tenant_id, trigger=f"api_key:{row.prefix}", scope=row.scope)


def _aware(value: datetime) -> datetime:
    # A column read in a bare `select` of columns: UTCDateTime already makes it aware (and UTC).
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
