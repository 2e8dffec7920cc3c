"""Fixtures for the e-MECeF tests: a simulator reachable in-process or over a real socket."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from fiscalgate.authorities import get_driver
from fiscalgate.authorities.base import Connection, Environment
from fiscalgate.authorities.bj_emecef.client import EmecefClient
from fiscalgate.authorities.bj_emecef.driver import MOCK_TOKEN_SECRET, EmecefDriver
from fiscalgate.authorities.bj_emecef.settings import EmecefSettings
from fiscalgate.authorities.bj_emecef.simulator.app import EmecefSimulator, create_app
from fiscalgate.authorities.bj_emecef.simulator.state import Platform
from fiscalgate.simkit.serve import serve_in_thread


@dataclass
class FakeClock:
    now: datetime = field(default_factory=lambda: datetime(2026, 7, 16, 10, 0, tzinfo=UTC))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class Emecef:
    """One simulator and everything needed to talk to it."""

    driver: EmecefDriver
    settings: EmecefSettings
    connection: Connection
    sim: EmecefSimulator
    clock: FakeClock

    @property
    def platform(self) -> Platform:
        return self.sim.platform

    def client(self, token: str | None = None) -> EmecefClient:
        return EmecefClient(self.connection, token or self.settings.token.get_secret_value())


def make_emecef(transport_kind: str = "in_process", timeout: float = 5.0) -> Iterator[Emecef]:
    driver = get_driver("bj-emecef")
    assert isinstance(driver, EmecefDriver)
    settings = driver.parse_settings(driver.mock_credentials())
    assert isinstance(settings, EmecefSettings)
    clock = FakeClock()
    sim = create_app(
        Platform(ifu=settings.ifu, nim=settings.nim, token_secret=MOCK_TOKEN_SECRET, clock=clock, seed=7)
    )
    if transport_kind == "in_process":
        connection = Connection(
            driver.base_url(settings), Environment.MOCK, httpx.ASGITransport(app=sim), timeout=timeout
        )
        yield Emecef(driver, settings, connection, sim, clock)
        return
    with serve_in_thread(sim) as url:
        yield Emecef(driver, settings, Connection(url, Environment.MOCK, timeout=timeout), sim, clock)


@pytest.fixture(params=["in_process", pytest.param("socket", marks=pytest.mark.socket)])
def emecef(request: pytest.FixtureRequest) -> Iterator[Emecef]:
    yield from make_emecef(request.param)


@pytest.fixture
def emecef_local() -> Iterator[Emecef]:
    """In-process only, with a short timeout (fault tests)."""
    yield from make_emecef("in_process", timeout=0.2)
