"""The contract every authority package fulfils, so the gateway and the CLI can drive any of them.

One authority = one folder of one shape (regime, schemas, convert, client, errors, printing,
simulator/) plus a `driver.py` whose class implements `AuthorityDriver` by composing those parts.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Literal, TypeVar

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from fiscalgate.core.certification import Certification
from fiscalgate.core.errors import ConfigurationError, InvoiceError, Problem
from fiscalgate.core.invoice import Invoice, problems_from_validation_error

if TYPE_CHECKING:
    import click
    from starlette.types import ASGIApp

    from fiscalgate.authorities.descriptor import AuthorityDescriptor


class Environment(StrEnum):
    MOCK = "mock"  # the built-in simulator, in-process
    SANDBOX = "sandbox"  # the authority's official test platform
    PRODUCTION = "production"  # the authority's live platform: real, numbered, legal invoices


class AuthoritySettings(BaseModel):
    """A tenant's settings for one authority. Each authority subclasses it with its credentials;
    secrets are `SecretStr` (the gateway encrypts exactly those fields at rest)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    environment: Environment = Environment.MOCK
    active: bool = True
    # Where to send requests instead of the environment's default (a simulator run apart, say).
    # For production it must be the authority's real host; each driver checks that.
    base_url: str | None = None
    timeout_seconds: float = Field(default=30.0, gt=0, le=300)

    def secrets(self) -> list[str]:
        """Every secret value, for masking logs and audit entries."""
        return [v.get_secret_value() for v in self.__dict__.values() if isinstance(v, SecretStr)]


CheckpointFn = Callable[[dict[str, Any]], Awaitable[None]]


@dataclass(frozen=True)
class Connection:
    """How to reach the authority for one call: URL, transport (in-process simulator, real
    network, or a recording wrapper) and timeout."""

    base_url: str
    environment: Environment
    transport: httpx.AsyncBaseTransport | None = None
    timeout: float = 30.0
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Reconciliation:
    """The answer to "did that uncertain call certify the invoice?"."""

    status: Literal["certified", "not_certified", "unknown"]
    certification: Certification | None = None
    detail: str = ""


SettingsT = TypeVar("SettingsT", bound=AuthoritySettings)


class Driver(ABC, Generic[SettingsT]):
    """Typed by the authority's settings model: `class FneDriver(Driver[FneSettings])`
    receives `FneSettings` in every method, with no downcast. The settings model owns every check
    on the settings (credentials, environment, hosts: see `fiscalgate.authorities.hosts`); the
    driver owns every check on an invoice (`validate`, which `certify` and `credit_note` run
    themselves before sending anything)."""

    # A real authority's driver names its descriptor; its identity is read from it.
    descriptor: ClassVar[AuthorityDescriptor]
    code: ClassVar[str]  # "ci-fne"
    module: ClassVar[str]  # the tenant-module slug: "fne"
    country: ClassVar[str]  # ISO 3166 alpha-2: "CI"
    display_name: ClassVar[str]  # "DGI — FNE (Côte d'Ivoire)"
    currencies: ClassVar[tuple[str, ...]]  # currencies amounts may be in
    settings_model: type[SettingsT]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        described = cls.__dict__.get("descriptor")
        if described is not None:
            cls.code = described.code
            cls.module = described.module
            cls.country = described.country
            cls.display_name = f"{described.name} ({described.country_name})"
            cls.currencies = described.currencies

    # --- settings -------------------------------------------------------------------------
    def parse_settings(self, data: Mapping[str, Any]) -> SettingsT:
        """Validate settings, or raise ConfigurationError listing every problem."""
        try:
            return self.settings_model.model_validate(dict(data))
        except ValidationError as exc:
            problems = problems_from_validation_error(exc, whole="(settings)")
            raise ConfigurationError(
                f"invalid {self.code} settings: " + "; ".join(str(p) for p in problems),
                code=f"settings.invalid.{self.code}",
                problems=problems,
            ) from None

    @abstractmethod
    def base_url(self, settings: SettingsT) -> str:
        """The API base URL for these settings' environment (the settings model has already
        checked it: this only resolves the environment's default)."""

    def mock_credentials(self, **hints: str) -> dict[str, Any]:
        """Settings that work against `mock_app` (for demo tenants and tests)."""
        return self.descriptor.mock_credentials(**hints)

    # --- invoices -------------------------------------------------------------------------
    @abstractmethod
    def validate(self, invoice: Invoice, settings: SettingsT) -> list[Problem]:
        """Every problem the authority would reject the invoice for, found without any network."""

    def refuse_invalid(self, invoice: Invoice, settings: SettingsT) -> None:
        """Raise one InvoiceError with every problem `validate` finds. `certify` and `credit_note`
        start with it, before anything is sent: callers (the gateway, the CLI) do not validate
        again, and the shared contract tests check that an invalid invoice never leaves."""
        problems = self.validate(invoice, settings)
        if problems:
            raise InvoiceError(problems)

    @abstractmethod
    def build_payload(self, invoice: Invoice, settings: SettingsT) -> dict[str, Any]:
        """The wire payload that would be sent (for previews and tests)."""

    @abstractmethod
    async def certify(
        self,
        invoice: Invoice,
        settings: SettingsT,
        connection: Connection,
        *,
        checkpoint: CheckpointFn | None = None,
    ) -> Certification:
        """Certify a sale (or purchase) invoice. Starts with `refuse_invalid` (InvoiceError, before
        any network), then raises an AuthorityError kind if the authority does not certify.
        `checkpoint` receives, before the point of no return, what the caller must persist to
        reconcile later (e.g. the e-MECeF uid)."""

    @abstractmethod
    async def credit_note(
        self,
        credit: Invoice,
        original: Certification,
        settings: SettingsT,
        connection: Connection,
        *,
        checkpoint: CheckpointFn | None = None,
    ) -> Certification:
        """Certify a credit note (full or partial) against a certified original. Starts with
        `refuse_invalid`, like `certify`."""

    @abstractmethod
    async def reconcile(
        self,
        invoice: Invoice,
        settings: SettingsT,
        connection: Connection,
        checkpoint: Mapping[str, Any],
        *,
        original: Certification | None = None,
        decision: Literal["confirm", "cancel"] = "confirm",
    ) -> Reconciliation:
        """Resolve an `unknown` outcome the way the authority allows."""

    # --- simulator --------------------------------------------------------------------------
    @abstractmethod
    def mock_app(self, settings: SettingsT) -> ASGIApp:
        """A fresh simulator of this authority, configured so that `settings` are valid on it."""

    @abstractmethod
    def simulate_command(self) -> click.Command:
        """The `fiscalgate simulate <code>` command."""


# Any authority's driver, for code that handles them all (the registry, the gateway, the CLI): the
# settings it passes are the ones that driver's `parse_settings` returned.
AuthorityDriver = Driver[Any]
