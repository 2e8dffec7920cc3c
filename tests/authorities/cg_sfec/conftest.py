"""Fixtures for the SFEC tests: settings, a fresh simulator, and a Connection to it either
in-process (ASGI) or over a real socket."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from fiscalgate.authorities import get_driver
from fiscalgate.authorities.base import Connection
from fiscalgate.authorities.cg_sfec.driver import SfecDriver
from fiscalgate.authorities.cg_sfec.settings import SfecSettings
from fiscalgate.authorities.cg_sfec.simulator.app import Simulator, create_simulator
from fiscalgate.core.invoice import Invoice, parse_invoice
from fiscalgate.simkit.serve import serve_in_thread

EXAMPLES = Path(__file__).parents[3] / "src" / "fiscalgate" / "authorities" / "cg_sfec" / "examples"


def example(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((EXAMPLES / name).read_text(encoding="utf-8"))
    return data


def invoice_from(name: str, **changes: Any) -> Invoice:
    return parse_invoice({**example(name), **changes})


@pytest.fixture
def driver() -> SfecDriver:
    d = get_driver("cg-sfec")
    assert isinstance(d, SfecDriver)
    return d


@pytest.fixture
def settings(driver: SfecDriver) -> SfecSettings:
    s = driver.parse_settings({**driver.mock_credentials(), "retry_backoff_seconds": 0.01})
    assert isinstance(s, SfecSettings)
    return s


@dataclass
class Target:
    """A simulator and how to reach it."""

    sim: Simulator
    connection: Connection
    mode: str

    def with_timeout(self, seconds: float) -> Connection:
        c = self.connection
        return Connection(c.base_url, c.environment, c.transport, timeout=seconds)


@pytest.fixture(params=["inprocess", pytest.param("socket", marks=pytest.mark.socket)])
def target(request: pytest.FixtureRequest, settings: SfecSettings) -> Iterator[Target]:
    sim = create_simulator(settings.niu, settings.api_key.get_secret_value())
    if request.param == "inprocess":
        yield Target(
            sim,
            Connection("http://cg-sfec.mock", settings.environment, httpx.ASGITransport(app=sim.app)),
            "inprocess",
        )
    else:
        with serve_in_thread(sim.app) as url:
            yield Target(sim, Connection(url, settings.environment, timeout=5), "socket")


@pytest.fixture
def sale() -> Invoice:
    return invoice_from("invoice.json")


@pytest.fixture
def credit() -> Invoice:
    return invoice_from("credit_note.json")
