"""A taxpayer's FNE settings, with the checks that keep test invoices off production and live
invoices off the test platform (the host rules are `fiscalgate.authorities.hosts`)."""

from __future__ import annotations

from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationInfo, field_validator

from fiscalgate.authorities import hosts
from fiscalgate.authorities.base import AuthoritySettings, Environment
from fiscalgate.authorities.ci_fne import regime

# FNE's platforms (SOURCES.md §2): the DGI's production hosts, and the test platform's address.
HOSTS = hosts.HostPolicy.of(
    regime.KNOWN_PRODUCTION_HOSTS, production_suffixes=(".dgi.gouv.ci",), test=(regime.SANDBOX_HOST,)
)


def _check_live_url(url: str, what: str) -> str:
    """A URL live invoices may go to: https, not the test platform, not this machine."""
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname:
        raise ValueError(f"{what} must be an https:// URL in production")
    host = hosts.hostname(url)
    if HOSTS.is_test(host):
        raise ValueError(f"{what} points at the FNE test platform ({host}): live invoices would be lost")
    if hosts.is_loopback(host):
        raise ValueError(f"{what} points at this machine ({host}): production must reach the DGI")
    if hosts.is_local(host):
        raise ValueError(f"{what} points at a local or private host ({host}): production must reach the DGI")
    return url.rstrip("/")


class FneSettings(AuthoritySettings):
    """A taxpayer's FNE settings. The production URL is sent by the DGI after specimen validation."""

    ncc: str = Field(pattern=r"^[0-9]{7}[A-Z]$", description="the issuer's NCC, e.g. 9606123E")
    api_key: SecretStr = Field(min_length=1)
    point_of_sale: str = Field(min_length=1, max_length=120)
    establishment: str = Field(min_length=1, max_length=120)
    production_url: str | None = Field(default=None, validate_default=True)
    # Undocumented on the platform; fousco74/fne and yeoyedjande/erp-fne assume 50 (spec §8.6).
    sticker_warning_threshold: int = Field(default=regime.DEFAULT_STICKER_WARNING_THRESHOLD, ge=0)

    @field_validator("api_key")
    @classmethod
    def _header_safe_key(cls, value: SecretStr) -> SecretStr:
        # The key travels in an HTTP header: a pasted space, newline or accented letter would fail
        # inside httpx on every call. The DOC's key is 32 alphanumerics (spec §3). Never echo it.
        key = value.get_secret_value().strip()
        if not key or any(not ("!" <= ch <= "~") for ch in key):
            raise ValueError("api_key must be printable ASCII without spaces (the key of « Paramétrage »)")
        return SecretStr(key)

    @field_validator("base_url")
    @classmethod
    def _safe_base_url(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None or not value.strip():
            return None
        environment = info.data.get("environment")
        host = hosts.hostname(value)
        if not urlsplit(value).scheme.startswith("http") or not host:
            raise ValueError("base_url must be an http(s) URL")
        if environment == Environment.PRODUCTION:
            return _check_live_url(value, "base_url")
        if HOSTS.is_production(host):
            # Test invoices must never land in the live, uninterrupted series.
            raise ValueError(f"base_url points at the FNE production host ({host}) outside production")
        return value.rstrip("/")

    @field_validator("production_url")
    @classmethod
    def _production_url(cls, value: str | None, info: ValidationInfo) -> str | None:
        environment = info.data.get("environment")
        if value is not None and not value.strip():
            value = None
        if value is None:
            if environment == Environment.PRODUCTION:
                raise ValueError("production needs the production_url the DGI sent after specimen validation")
            return None
        return _check_live_url(value, "production_url")
