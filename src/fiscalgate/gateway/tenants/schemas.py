from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from fiscalgate.gateway.authorities import module_slug
from fiscalgate.gateway.authorities import modules as module_slugs
from fiscalgate.gateway.countries import normalise_country
from fiscalgate.gateway.db import StoredDatetime


def _modules(value: list[str]) -> list[str]:
    out: list[str] = []
    for raw in value:
        module = module_slug(raw)
        if module not in out:
            out.append(module)
    return out


class TenantCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str = Field(min_length=1, max_length=200)
    country: str = Field(description="ISO code or name: CI, Côte d'Ivoire, Bénin, Congo, ...")
    modules: list[str] = Field(
        default_factory=list, description="Active modules: " + ", ".join(module_slugs())
    )

    _country = field_validator("country")(normalise_country)
    _mods = field_validator("modules")(_modules)


class TenantUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str | None = Field(default=None, min_length=1, max_length=200)
    country: str | None = None
    modules: list[str] | None = None

    @field_validator("country")
    @classmethod
    def _country(cls, value: str | None) -> str | None:
        return None if value is None else normalise_country(value)

    @field_validator("modules")
    @classmethod
    def _mods(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else _modules(value)


class TenantOut(BaseModel):
    id: str
    name: str
    country: str
    country_name: str
    modules: list[str]
    authorities: list[str] = Field(description="Authorities available: country match OR active module")
    created_at: datetime


class ApiKeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    label: str = Field(default="", max_length=200)
    scope: Literal["certify", "read"] = Field(
        default="certify", description="certify: every tenant route; read: GET/HEAD only"
    )
    expires_at: StoredDatetime | None = Field(default=None, description="After it the key is refused (401)")


class ApiKeyOut(BaseModel):
    id: str
    tenant_id: str
    prefix: str
    label: str
    created_at: datetime
    revoked_at: datetime | None = None
    scope: str = "certify"
    expires_at: datetime | None = None


class ApiKeyCreated(ApiKeyOut):
    key: str = Field(description="The full key: shown once, only its hash is stored")
