"""e-MECeF's optional capabilities: the connection test (GET /api/invoice) and the information API
(GET /api/info/*), against the simulator in-process and over a socket, failures included."""

from __future__ import annotations

from typing import Any

import pytest

from fiscalgate.authorities.base import Connection, Environment
from fiscalgate.authorities.bj_emecef.errors import bearer_challenge, error_from_http
from fiscalgate.authorities.capabilities import (
    CONNECTION_TEST,
    INFORMATION,
    ConnectionTester,
    InformationSource,
    capabilities,
)
from fiscalgate.core.errors import AuthorityAuthError, AuthorityUnreachable, ConfigurationError
from fiscalgate.simkit.serve import free_port
from tests.authorities.bj_emecef.conftest import Emecef

pytestmark = pytest.mark.anyio


def test_offers_a_connection_test_and_the_information_api(emecef: Emecef) -> None:
    assert capabilities(emecef.driver) == [CONNECTION_TEST, INFORMATION]
    assert [t.name for t in emecef.driver.topics] == ["status", "taxGroups", "invoiceTypes", "paymentTypes"]
    assert emecef.driver.topic("tax-groups") is emecef.driver.topic("taxGroups")
    assert emecef.driver.topic("nope") is None


async def test_connection_test_reads_the_status_and_sends_nothing_else(emecef: Emecef) -> None:
    driver = emecef.driver
    assert isinstance(driver, ConnectionTester)
    report = await driver.test_connection(emecef.settings, emecef.connection)
    assert report.call == "GET /api/invoice"
    assert report.facts["ifu"] == emecef.settings.ifu and report.facts["status"] is True
    assert f"IFU {emecef.settings.ifu}" in report.summary and "0 pending request(s)" in report.summary
    assert emecef.platform.pending == {} and emecef.platform.invoices == {}


async def test_a_refused_token_is_an_auth_error_with_the_http_status(emecef: Emecef) -> None:
    settings = emecef.settings.model_copy(update={"token": type(emecef.settings.token)("not-a-jwt")})
    with pytest.raises(AuthorityAuthError) as info:
        await emecef.driver.test_connection(settings, emecef.connection)
    assert info.value.http_status == 401 and info.value.code == "authority.auth.token_refused"
    assert "not-a-jwt" not in info.value.message


async def test_a_token_of_another_ifu_fails_the_test_on_the_ifu(emecef: Emecef) -> None:
    settings = emecef.settings.model_copy(update={"ifu": "0000000000099"})
    with pytest.raises(ConfigurationError) as info:
        await emecef.driver.test_connection(settings, emecef.connection)
    (problem,) = info.value.problems
    assert problem.field == "ifu" and problem.expected == emecef.settings.ifu


async def test_an_unreachable_platform() -> None:
    from fiscalgate.authorities import get_driver

    driver = get_driver("bj-emecef")
    settings = driver.parse_settings(driver.mock_credentials())
    connection = Connection(f"http://127.0.0.1:{free_port()}", Environment.MOCK, timeout=0.5)
    assert isinstance(driver, ConnectionTester)
    with pytest.raises(AuthorityUnreachable):
        await driver.test_connection(settings, connection)


async def test_no_answer_to_a_read_is_unreachable_not_an_outcome_to_reconcile(emecef_local: Emecef) -> None:
    from fiscalgate.simkit.faults import FaultInjector

    injector = FaultInjector(emecef_local.sim)
    injector.add("latency", seconds=5, path="/api/invoice", method="GET")
    import httpx

    connection = Connection(
        emecef_local.connection.base_url, Environment.MOCK, httpx.ASGITransport(app=injector), timeout=0.2
    )
    with pytest.raises(AuthorityUnreachable) as info:
        await emecef_local.driver.test_connection(emecef_local.settings, connection)
    assert info.value.code == "authority.no_answer" and "read-only" in info.value.message


@pytest.mark.parametrize(
    ("topic", "expected"),
    [
        ("taxGroups", {"a": 0, "b": 18, "c": 0, "d": 18, "e": 0, "f": 0, "aibA": 1, "aibB": 5}),
        ("invoiceTypes", None),
        ("paymentTypes", None),
        ("status", None),
    ],
)
async def test_each_topic_is_the_platforms_answer(emecef: Emecef, topic: str, expected: Any) -> None:
    driver = emecef.driver
    assert isinstance(driver, InformationSource)
    found = driver.topic(topic)
    assert found is not None
    data = await driver.information(found, emecef.settings, emecef.connection)
    if expected is not None:
        assert data == expected
    if topic == "invoiceTypes":
        assert [t["type"] for t in data] == ["FV", "FA", "EV", "EA"]
    if topic == "paymentTypes":  # DOC p.23's order
        assert data[0] == {"type": "ESPECES", "description": "ESPECES"} and len(data) == 7
    if topic == "status":
        assert data["ifu"] == emecef.settings.ifu and data["emcfList"][0]["status"] == "Actif"


async def test_information_with_a_refused_token(emecef: Emecef) -> None:
    settings = emecef.settings.model_copy(update={"token": type(emecef.settings.token)("expired")})
    topic = emecef.driver.topic("taxGroups")
    assert topic is not None
    with pytest.raises(AuthorityAuthError):
        await emecef.driver.information(topic, settings, emecef.connection)


def test_the_401_challenge_text_is_the_authoritys_text_when_it_sends_one() -> None:
    header = 'Bearer error="invalid_token", error_description="The token expired at \'07/16/2026 23:00:00\'"'
    assert bearer_challenge(header) == ("invalid_token", "The token expired at '07/16/2026 23:00:00'")
    assert bearer_challenge("Bearer") == (None, None)
    error = error_from_http(401, operation="status", raw=None, challenge=header)
    assert error.authority_code == "invalid_token"
    assert error.authority_message == "The token expired at '07/16/2026 23:00:00'"
    assert "The token expired" in error.message


@pytest.mark.parametrize("path", ["/api/invoice", "/api/info/status", "/api/info/taxGroups"])
async def test_the_simulator_refuses_a_missing_token_with_a_bare_401(emecef_local: Emecef, path: str) -> None:
    import httpx

    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=emecef_local.sim), base_url="http://e"
    ) as raw:
        r = await raw.get(path)
        assert (r.status_code, r.content, r.headers["www-authenticate"]) == (401, b"", "Bearer")
        # a path SDKs guessed and the platform does not serve (spec §4): its HTML 404 page
        token = {"Authorization": f"Bearer {emecef_local.settings.token.get_secret_value()}"}
        guessed = await raw.get("/api/info/invoice-types", headers=token)
        assert guessed.status_code == 404 and guessed.headers["content-type"].startswith("text/html")
