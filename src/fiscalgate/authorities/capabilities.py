"""Optional things an authority's driver can do beyond certifying, each a small ABC a driver class
adds to its bases where the platform allows it (`class EmecefDriver(Driver[S], ConnectionTester[S],
InformationSource[S])`). The gateway, the CLI and the console ask `capabilities(driver)` (or
`isinstance`) instead of naming authorities.

- `ConnectionTester`: one harmless, authenticated call that proves the URL and the credentials
  work (nothing is certified, numbered or left pending). It returns a `ConnectionReport`, or raises
  the error kind of the failure: `AuthorityAuthError` (credentials refused, with the authority's
  own code and text when it sends any), `AuthorityUnreachable` (no connection, or no answer),
  `ConfigurationError` (settings that cannot work, a wrong path), `AuthorityServerError`.
- `InformationSource`: reference data the authority publishes (topics and their data).
- `Reporter`: declare an invoice already certified to the authority (SFEC's report endpoint).

A call made by these is read-only (except `report`, which archives): a timeout after sending
says nothing is at stake, so `harmless()` turns `OutcomeUnknown` into `AuthorityUnreachable`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, TypeVar

from fiscalgate.authorities.base import AuthoritySettings, Connection
from fiscalgate.core.certification import Certification
from fiscalgate.core.errors import AuthorityUnreachable, OutcomeUnknown
from fiscalgate.core.invoice import Invoice

SettingsT = TypeVar("SettingsT", bound=AuthoritySettings)
T = TypeVar("T")

CONNECTION_TEST = "connection_test"
INFORMATION = "information"
REPORT = "report"


@dataclass(frozen=True)
class ConnectionReport:
    """A connection test that worked: which call proved it, and what the authority said."""

    call: str  # "GET /api/invoice"
    summary: str  # one line for people: "token valid until …, e-MCF TS01…"
    facts: dict[str, Any] = field(default_factory=dict)  # the authority's answer (secrets masked)


@dataclass(frozen=True)
class Topic:
    """One kind of information an authority publishes."""

    name: str  # as the platform names it ("taxGroups")
    title: str  # for people
    call: str  # "GET /api/info/taxGroups"


class ConnectionTester(ABC, Generic[SettingsT]):
    # What the test sends, for documentation and the console ("GET /api/invoice").
    connection_test_call: ClassVar[str]

    @abstractmethod
    async def test_connection(self, settings: SettingsT, connection: Connection) -> ConnectionReport:
        """One harmless authenticated call; raises the error kind of a failure."""


class InformationSource(ABC, Generic[SettingsT]):
    topics: ClassVar[tuple[Topic, ...]]

    def topic(self, name: str) -> Topic | None:
        """The topic called `name` (case and `-`/`_` ignored), or None."""
        wanted = _folded(name)
        return next((t for t in self.topics if _folded(t.name) == wanted), None)

    @abstractmethod
    async def information(self, topic: Topic, settings: SettingsT, connection: Connection) -> Any:
        """The topic's data as the authority sent it (JSON types, secrets masked)."""


class Reporter(ABC, Generic[SettingsT]):
    report_call: ClassVar[str]

    @abstractmethod
    async def report(
        self, invoice: Invoice, certification: Certification, settings: SettingsT, connection: Connection
    ) -> Certification:
        """Declare an invoice already certified; returns the authority's acknowledgement."""


def _folded(name: str) -> str:
    return name.replace("-", "").replace("_", "").lower()


def capabilities(driver: object) -> list[str]:
    """The optional capabilities a driver offers, in a stable order."""
    found = []
    if isinstance(driver, ConnectionTester):
        found.append(CONNECTION_TEST)
    if isinstance(driver, InformationSource):
        found.append(INFORMATION)
    if isinstance(driver, Reporter):
        found.append(REPORT)
    return found


async def harmless(call: Awaitable[T], *, what: str, waited: float) -> T:
    """Await a read-only call: no answer after sending is "unreachable" (nothing depends on it),
    not an outcome to reconcile."""
    try:
        return await call
    except OutcomeUnknown as exc:
        raise AuthorityUnreachable(
            f"{exc.authority}: no answer to {what} within {waited:g} s; it is a read-only call, "
            "nothing was certified",
            authority=exc.authority,
            code="authority.no_answer",
        ) from exc


__all__ = [
    "CONNECTION_TEST",
    "INFORMATION",
    "REPORT",
    "ConnectionReport",
    "ConnectionTester",
    "InformationSource",
    "Reporter",
    "Topic",
    "capabilities",
    "harmless",
]
