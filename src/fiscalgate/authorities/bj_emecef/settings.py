"""A tenant's e-MECeF settings: the IFU, the DGI's token (NIM and expiry are read from it) and the
URL checks that keep test invoices off production (host rules: `fiscalgate.authorities.hosts`)."""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import Field, SecretStr, ValidationInfo, field_validator

from fiscalgate.authorities import hosts
from fiscalgate.authorities.base import AuthoritySettings, Environment
from fiscalgate.authorities.bj_emecef.regime import (
    BENIN_TZ,
    TEST_NIM_PREFIX,
    Aib,
    TokenClaims,
    TokenFormatError,
    read_token,
)

SANDBOX_URL = "https://developper.impots.bj/sygmef-emcf"  # "developper" with a double p (§2)
PRODUCTION_URL = "https://sygmef.impots.bj/emcf"
MOCK_URL = "http://bj-emecef.mock"  # placeholder host, only reached through the in-process transport
API_SUFFIXES = ("/api/invoice", "/api/info", "/api")
# The DGI's platforms (spec §2): production is only ever its own host.
HOSTS = hosts.HostPolicy.of(["sygmef.impots.bj"], test=["developper.impots.bj"])


class EmecefSettings(AuthoritySettings):
    """One e-MCF: the taxpayer's IFU and the JWT the DGI issued for it. The NIM and the expiry are
    read from the token (its `unique_name` is `IFU|NIM`), never typed in separately."""

    ifu: str = Field(pattern=r"^\d{13}$", description="the seller's IFU (13 digits)")
    token: SecretStr = Field(description="the e-MCF's JWT, as issued by the DGI")
    default_aib: Aib | None = Field(
        default=None, description="AIB for invoices that do not say (A 1 %, B 5 %)"
    )
    operator_name: str | None = Field(default=None, min_length=1, max_length=120)

    @field_validator("base_url")
    @classmethod
    def _safe_base_url(cls, value: str | None, info: ValidationInfo) -> str | None:
        if not value:
            return None
        value = value.strip().rstrip("/")
        # The DGI documents the full invoicing/information URLs ({API_FACTURATION_URL} = …/api/invoice,
        # §2); paths are relative to the swagger host, so a pasted full URL is cut back to the host
        # rather than becoming …/api/invoice/api/invoice (a 404).
        for suffix in API_SUFFIXES:
            value = value.removesuffix(suffix)
        if not value.startswith(("http://", "https://")):
            raise ValueError("base_url must start with http:// or https://")
        env = info.data.get("environment")
        host = hosts.hostname(value)
        if env == Environment.PRODUCTION:
            if not HOSTS.is_production(host):
                raise ValueError(
                    f"production must use the DGI production host ({PRODUCTION_URL}), not {host!r}: "
                    "live invoices may not go to a test platform or a simulator"
                )
            if not value.startswith("https://"):
                raise ValueError("production must use https")
        if env == Environment.MOCK and HOSTS.is_production(host):
            raise ValueError(f"mock points at the production host {host!r}: use environment=production")
        if env == Environment.MOCK and HOSTS.is_test(host):
            # Invoices numbered by the DGI's test platform would be recorded as simulator ones.
            raise ValueError(f"mock points at the DGI test platform {host!r}: use environment=sandbox")
        if env == Environment.SANDBOX and HOSTS.is_production(host):
            raise ValueError(
                f"sandbox points at the production host {host!r}: test invoices would become real ones"
            )
        if env == Environment.SANDBOX and hosts.is_local(host):
            raise ValueError(f"sandbox points at {host!r}; use environment=mock for a local simulator")
        return value

    @field_validator("token")
    @classmethod
    def _token_matches(cls, value: SecretStr, info: ValidationInfo) -> SecretStr:
        token = value.get_secret_value().strip()
        if token[:7].lower() == "bearer ":  # a pasted header value, whatever its case
            token = token[7:].strip()
        try:
            claims = read_token(token)
        except TokenFormatError as exc:
            raise ValueError(str(exc)) from None
        ifu = info.data.get("ifu")
        if ifu is not None and claims.ifu != ifu:
            raise ValueError(f"the token belongs to IFU {claims.ifu}, not to the configured IFU {ifu}")
        if claims.expires_at <= datetime.now(UTC):
            raise ValueError(
                f"the token expired on {claims.expires_at.astimezone(BENIN_TZ):%d/%m/%Y %H:%M} (Bénin time); "
                "ask the DGI for a new one"
            )
        if info.data.get("environment") == Environment.PRODUCTION and claims.nim.startswith(TEST_NIM_PREFIX):
            raise ValueError(
                f"the token is for the test e-MCF {claims.nim}; production needs a production token"
            )
        return SecretStr(token)

    @property
    def claims(self) -> TokenClaims:
        return read_token(self.token.get_secret_value())

    @property
    def nim(self) -> str:
        return self.claims.nim

    @property
    def token_expires_at(self) -> datetime:
        return self.claims.expires_at
