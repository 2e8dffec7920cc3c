"""The tenant's seller profile: who sells, as its printed invoices show it.

`get_profile` / `update_profile` are what `GET/PUT /v1/profile` and the console call. The logo
travels as a data URI (`data:image/png;base64,...`), is checked by decoding it (type, size in bytes
and in pixels), and is stored as bytes.
"""

from __future__ import annotations

import base64
import re
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy.orm import Session

from fiscalgate.core.errors import Problem
from fiscalgate.gateway.audit.service import record_event
from fiscalgate.gateway.db import utcnow
from fiscalgate.gateway.errors import InvalidRequest
from fiscalgate.gateway.tenants.profile_models import TenantProfile
from fiscalgate.gateway.tenants.service import Caller, get_tenant
from fiscalgate.printing.logo import LOGO_MAX_BYTES, LOGO_MAX_PIXELS, LogoProblem, logo_from_data_uri

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_PHONE = re.compile(r"^\+?[0-9][0-9 ().-]{4,38}$")
FIELDS = ("name", "tax_id", "rccm", "address", "phone", "email")


class ProfileUpdate(BaseModel):
    """Replaces every text field (an absent one becomes empty); `logo` absent keeps the current
    logo, `null` removes it, a data URI replaces it."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str = Field(min_length=1, max_length=200, description="The seller's name as printed")
    tax_id: str | None = Field(default=None, max_length=120, description="NCC (CI), IFU (BJ), NIU (CG)")
    rccm: str | None = Field(default=None, max_length=120, description="Trade register number")
    address: str | None = Field(default=None, max_length=500)
    phone: str | None = Field(default=None, max_length=40)
    email: str | None = Field(default=None, max_length=200)
    logo: str | None = Field(
        default=None,
        description=f"data:image/png;base64,... or data:image/jpeg;base64,... (at most "
        f"{LOGO_MAX_BYTES // 1024} KiB and {LOGO_MAX_PIXELS} px a side); null removes it",
    )

    @field_validator("tax_id", "rccm", "address", "phone", "email")
    @classmethod
    def _blank_is_none(cls, value: str | None) -> str | None:
        return value or None

    @field_validator("phone")
    @classmethod
    def _phone(cls, value: str | None) -> str | None:
        if value is not None and not _PHONE.match(value):
            raise ValueError("a phone number: digits, spaces, + ( ) . - (e.g. +225 07 09 08 07 65)")
        return value

    @field_validator("email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        if value is not None and not _EMAIL.match(value):
            raise ValueError("an e-mail address such as contact@example.ci")
        return value


class ProfileOut(BaseModel):
    name: str
    tax_id: str | None = None
    rccm: str | None = None
    address: str | None = None
    phone: str | None = None
    email: str | None = None
    logo: str | None = Field(default=None, description="data URI, or null")
    updated_at: datetime | None = Field(default=None, description="null until the profile is first saved")


def decode_logo(uri: str) -> tuple[bytes, str]:
    """The logo's bytes and MIME type, or InvalidRequest naming what is wrong with it."""
    try:
        return logo_from_data_uri(uri)
    except LogoProblem as exc:
        raise InvalidRequest(
            f"logo: {exc.message}",
            code=f"profile.{exc.rule}",
            problems=[Problem("logo", exc.rule, exc.message)],
        ) from None


def _out(row: TenantProfile) -> ProfileOut:
    logo = None
    if row.logo is not None and row.logo_type:
        logo = f"data:{row.logo_type};base64,{base64.b64encode(row.logo).decode()}"
    return ProfileOut(
        name=row.name,
        tax_id=row.tax_id,
        rccm=row.rccm,
        address=row.address,
        phone=row.phone,
        email=row.email,
        logo=logo,
        updated_at=row.updated_at,
    )


def find_profile(session: Session, tenant_id: str) -> TenantProfile | None:
    return session.get(TenantProfile, tenant_id)


def get_profile(session: Session, tenant_id: str) -> ProfileOut:
    """The saved profile; before the first save, the tenant's name and nothing else."""
    row = find_profile(session, tenant_id)
    if row is None:
        return ProfileOut(name=get_tenant(session, tenant_id).name)
    return _out(row)


def update_profile(session: Session, caller: Caller, tenant_id: str, data: ProfileUpdate) -> ProfileOut:
    get_tenant(session, tenant_id)  # 404 for an unknown tenant
    row = find_profile(session, tenant_id)
    logo: tuple[bytes, str] | None = None
    if "logo" in data.model_fields_set and data.logo is not None:
        logo = decode_logo(data.logo)  # before any change: a bad logo leaves the profile as it was
    if row is None:
        row = TenantProfile(tenant_id=tenant_id, name=data.name)
        session.add(row)
    changed: list[str] = []
    for name in FIELDS:
        value = getattr(data, name)
        if getattr(row, name, None) != value:
            changed.append(name)
            setattr(row, name, value)
    logo_change = "kept"
    if "logo" in data.model_fields_set:
        if logo is None:
            logo_change = "removed" if row.logo is not None else "kept"
            row.logo, row.logo_type = None, None
        else:
            logo_change = "replaced"
            row.logo, row.logo_type = logo
    row.updated_at = utcnow()
    detail: dict[str, Any] = {"fields": changed, "logo": logo_change}
    record_event(
        session,
        tenant_id=tenant_id,
        kind="tenant",
        event="profile.updated",
        trigger=caller.trigger,
        detail=detail,
    )
    session.flush()
    return _out(row)
