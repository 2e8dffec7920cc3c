"""A tenant's SFEC settings, with the checks that keep test invoices off production and live
invoices off the test hosts."""

from __future__ import annotations

from typing import Any, Final, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationInfo, field_validator

from fiscalgate.authorities import hosts
from fiscalgate.authorities.base import AuthoritySettings, Environment
from fiscalgate.authorities.cg_sfec import regime

PRODUCTION_URL: Final = "https://api.sfec.gouv.cg"
# Sandbox: the government-domain test host (spec §1), because it mirrors the production host
# (api.sfec.gouv.cg) that four implementations use; the akieni.tech hosts are vendor hosts that
# have changed name twice (dev-pgsfec, sandbox-pgsfec, sandbox-sfecapi) and stay reachable
# through `base_url`.
SANDBOX_URL: Final = "https://sandbox.api.sfec.gouv.cg"
MOCK_URL: Final = "http://cg-sfec.mock"
# The production host, and the hosts known to be test or development platforms (spec §1),
# refused for production.
HOSTS = hosts.HostPolicy.of(
    ["api.sfec.gouv.cg"],
    test_markers=("sandbox", "dev-", "dev.", "test", "staging", "akieni.tech", ".mock"),
)
PRODUCTION_HOSTS: Final = HOSTS.production
TEST_HOST_MARKERS: Final = HOSTS.test_markers


class SfecSettings(AuthoritySettings):
    niu: str = Field(min_length=1, max_length=20, description="The seller's NIU (taxpayer_niu).")
    api_key: SecretStr = Field(description="The X-API-Key issued on the portail e-Facture.")
    sciet: str = Field(min_length=1, max_length=60, description="The establishment's SCIET number.")
    terminal_identifier: str = Field(min_length=1, max_length=60, description="Default POS / terminal id.")
    # The platform's path families differ (spec §1, §6.7): `/api/invoices/certify` in the docs,
    # `/api/v1/invoices` in most clients; prefix and paths are configurable.
    path_prefix: str = "/api"
    certify_path: str = "/invoices/certify"
    report_path: str = "/invoices/report/api"
    lookup_path: str = "/invoices/{invoice_id}"
    list_path: str = "/invoices"
    # Finding an invoice by its ERP id: the GET by id may only know SFEC's identifier (spec §2), so
    # the list is scanned too, page by page (20 per page: the cap one client observed, spec §2).
    lookup_page_size: int = Field(default=20, ge=1, le=500)
    lookup_max_pages: int = Field(default=50, ge=0, le=1000)
    # Centimes additionnels: computed (5 % of VAT) and sent, or sent as 0 for SFEC to decide
    # (what most implementers do, spec §5.11). Both balance `total_amount`.
    additional_cent_tax: Literal["computed", "zero"] = "computed"
    # Resends are safe because `invoice_id` is idempotent (409 on a duplicate, spec §3, §4).
    max_attempts: int = Field(default=3, ge=1, le=10)
    retry_backoff_seconds: float = Field(default=0.5, ge=0, le=30)

    @field_validator("niu")
    @classmethod
    def _niu_shape(cls, value: str) -> str:
        value = value.upper()
        if not regime.is_valid_niu(value):
            raise ValueError(
                "a NIU is a letter, 8 to 17 digits and an optional final letter, 20 characters at most "
                "(e.g. P000001212112130)"
            )
        return value

    @field_validator("path_prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if value and not value.startswith("/"):
            value = "/" + value
        return value

    @field_validator("certify_path", "report_path", "list_path", "lookup_path")
    @classmethod
    def _path(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError("a path starts with '/'")
        return value

    @field_validator("lookup_path")
    @classmethod
    def _lookup_has_id(cls, value: str) -> str:
        if "{invoice_id}" not in value:
            raise ValueError("the lookup path must contain {invoice_id}")
        return value

    @field_validator("base_url")
    @classmethod
    def _environment_matches_host(cls, value: str | None, info: ValidationInfo) -> str | None:
        # A field validator (not a model one) so that errors are reported on `base_url`.
        if value is None:
            return value
        environment = info.data.get("environment", Environment.MOCK)
        url = value.strip()
        parts = urlsplit(url)
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise ValueError(f"base_url must be an http(s) URL, got {url!r}")
        host = hosts.hostname(url)
        if environment is Environment.PRODUCTION:
            if parts.scheme != "https":
                raise ValueError("production must use https")
            if hosts.is_local(host) or HOSTS.is_test(host):
                raise ValueError(
                    f"production cannot point at {host}: it is a test, development or local host"
                )
        elif environment is Environment.SANDBOX and parts.scheme != "https" and not hosts.is_local(host):
            # a real sandbox key would cross the internet in clear text
            raise ValueError("sandbox must use https (http only for a local host)")
        elif HOSTS.is_production(host):
            # mock credentials or test invoices must never reach the live platform
            raise ValueError(
                f"{environment.value} cannot point at the production host {host}; use environment=production"
            )
        return value

    def path(self, name: Literal["certify", "report", "lookup", "list"], **params: Any) -> str:
        template = {
            "certify": self.certify_path,
            "report": self.report_path,
            "lookup": self.lookup_path,
            "list": self.list_path,
        }[name]
        return self.path_prefix + template.format(**params)

    def resolved_base_url(self) -> str:
        if self.base_url:
            return self.base_url.strip().rstrip("/")
        return {
            Environment.MOCK: MOCK_URL,
            Environment.SANDBOX: SANDBOX_URL,
            Environment.PRODUCTION: PRODUCTION_URL,
        }[self.environment]
