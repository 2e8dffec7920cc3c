"""Fixtures of the FNE tests: a valid neutral invoice, mock settings, and a simulator reached either
in-process (ASGI transport) or over a real socket."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from fiscalgate.authorities import get_driver
from fiscalgate.authorities.base import Connection, Environment
from fiscalgate.authorities.ci_fne.driver import FneDriver, FneSettings
from fiscalgate.authorities.ci_fne.simulator.app import FneSimulator
from fiscalgate.simkit.serve import serve_in_thread

INVOICE: dict[str, Any] = {
    "number": "F-1",
    "seller": {"name": "ACME CI", "tax_id": "9606123E"},
    "buyer": {
        "kind": "business",
        "name": "KPMG COTE D'IVOIRE",
        "tax_id": "9502363N",
        "phone": "0709080765",
        "email": "info@kpmg.ci",
    },
    "lines": [
        {
            "description": "sac de riz",
            "reference": "ref009",
            "quantity": "30",
            "unit_price": "20000",
            "discount": {"kind": "percent", "value": "10"},
            "unit": "pcs",
            "extra_taxes": [{"name": "GRA", "rate": "5"}],
        },
        {"description": "bidon d'huile", "reference": "ref010", "quantity": "10", "unit_price": "24000"},
    ],
    "payments": [{"method": "mobile_money"}],
}


def invoice_data(**changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(INVOICE)
    data.update(changes)
    return data


@pytest.fixture
def driver() -> FneDriver:
    d = get_driver("ci-fne")
    assert isinstance(d, FneDriver)
    return d


@pytest.fixture
def settings(driver: FneDriver) -> FneSettings:
    s = driver.parse_settings(driver.mock_credentials())
    assert isinstance(s, FneSettings)
    return s


@dataclass
class Sim:
    app: FneSimulator
    connection: Connection

    def with_timeout(self, seconds: float) -> Connection:
        c = self.connection
        return Connection(c.base_url, c.environment, c.transport, timeout=seconds)


@pytest.fixture(params=["in-process", pytest.param("socket", marks=pytest.mark.socket)])
def sim(request: pytest.FixtureRequest, driver: FneDriver, settings: FneSettings) -> Iterator[Sim]:
    """The same scenarios run against the simulator in-process and over a real TCP socket."""
    app = driver.mock_app(settings)
    assert isinstance(app, FneSimulator)
    if request.param == "in-process":
        yield Sim(
            app, Connection(driver.base_url(settings), Environment.MOCK, httpx.ASGITransport(app=app), 5.0)
        )
    else:
        with serve_in_thread(app) as url:
            yield Sim(app, Connection(f"{url}/ws", Environment.MOCK, None, 5.0))
