"""The SFEC simulator accepts what clients written for the real platform send: `sciet` and
`terminal_identifier` are required on the report endpoint only; a totals disagreement names the
field, the value expected and the convention applied; `fiscalgate simulate` prints its API key."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from fiscalgate.authorities.cg_sfec.driver import SfecDriver
from fiscalgate.authorities.cg_sfec.settings import SfecSettings
from fiscalgate.authorities.cg_sfec.simulator import cli as sim_cli
from fiscalgate.authorities.cg_sfec.simulator.app import create_simulator
from fiscalgate.cli import main
from tests.authorities.cg_sfec.conftest import example, invoice_from

pytestmark = pytest.mark.anyio


def http(settings: SfecSettings) -> httpx.AsyncClient:
    sim = create_simulator(settings.niu, settings.api_key.get_secret_value())
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=sim.app),
        base_url="http://sfec.test",
        headers={"X-API-Key": settings.api_key.get_secret_value()},
    )


def payload(driver: SfecDriver, settings: SfecSettings) -> dict[str, Any]:
    body = driver.build_payload(invoice_from("invoice.json"), settings)
    del body["sciet"], body["terminal_identifier"]
    return body


async def test_certification_without_sciet_or_terminal_is_accepted(
    driver: SfecDriver, settings: SfecSettings
) -> None:
    async with http(settings) as api:
        r = await api.post("/api/invoices/certify", json=payload(driver, settings))
    assert r.status_code == 201, r.text
    assert r.json()["invoice_number"] == "FAC-2026-0042"


async def test_the_report_endpoint_requires_them(settings: SfecSettings) -> None:
    report = example("seed_report_request.json")
    report["taxpayer_niu"] = settings.niu
    for name in ("sciet", "terminal_identifier"):
        async with http(settings) as api:
            r = await api.post(
                "/api/invoices/report/api", json={k: v for k, v in report.items() if k != name}
            )
        assert r.status_code == 400, r.text
        assert r.json()["error"]["field"] == name


async def test_a_totals_disagreement_names_field_expected_value_and_convention(
    driver: SfecDriver, settings: SfecSettings
) -> None:
    body = payload(driver, settings)
    net, line_discounts = Decimal(str(body["subtotal"])), Decimal(str(body["total_line_discount_amount"]))
    assert line_discounts > 0
    # A client that reads the header subtotal as gross of the line discounts.
    body["subtotal"] = net + line_discounts
    async with http(settings) as api:
        r = await api.post("/api/invoices/certify", content=_json(body))
    assert r.status_code == 422, r.text
    subtotal = next(d for d in r.json()["error"]["details"] if d["field"] == "subtotal")
    assert Decimal(subtotal["received"]) == net + line_discounts
    assert Decimal(subtotal["expected"]) == net
    assert "net des remises de ligne" in subtotal["convention"]
    assert subtotal["convention"] in subtotal["message"]


def _json(body: dict[str, Any]) -> bytes:
    import json

    return json.dumps(body, default=str).encode()


def test_simulate_prints_its_api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sim_cli, "run_forever", lambda app, host, port: None)
    result = CliRunner().invoke(main, ["simulate", "cg-sfec", "--api-key", "sk_test_abcdef0123"])
    assert result.exit_code == 0, result.output
    assert "sk_test_abcdef0123" in result.output and "X-API-Key" in result.output
