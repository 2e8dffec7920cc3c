"""The shared fault injector and transport-error classification, on a tiny stand-in app."""

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from fiscalgate.authorities.base import Connection, Environment
from fiscalgate.authorities.http import make_client, send
from fiscalgate.core.errors import AuthorityUnreachable, ConfigurationError, OutcomeUnknown
from fiscalgate.simkit.faults import FaultInjector

pytestmark = pytest.mark.anyio


def _app() -> tuple[FaultInjector, list[str]]:
    seen: list[str] = []

    async def record(request: Request) -> JSONResponse:
        seen.append(request.url.path)
        return JSONResponse({"ok": True})

    return FaultInjector(Starlette(routes=[Route("/do", record, methods=["POST"])])), seen


async def test_hang_after_processing_records_then_times_out() -> None:
    app, seen = _app()
    app.add("hang_after_processing", path="/do")
    conn = Connection("http://sim", Environment.MOCK, httpx.ASGITransport(app=app), timeout=0.2)
    async with make_client(conn, {}) as client:
        with pytest.raises(OutcomeUnknown, match="may have processed"):
            await send(client, "POST", "/do", authority="test", json={})
        assert seen == ["/do"]  # the simulator did act on it
        response = await send(client, "POST", "/do", authority="test", json={})  # fault consumed
        assert response.status_code == 200


async def test_error_fault_does_not_process() -> None:
    app, seen = _app()
    app.add("error", status=503, body={"message": "down"}, times=2)
    conn = Connection("http://sim", Environment.MOCK, httpx.ASGITransport(app=app))
    async with make_client(conn, {}) as client:
        for _ in range(2):
            response = await send(client, "POST", "/do", authority="test")
            assert response.status_code == 503
        assert (await send(client, "POST", "/do", authority="test")).status_code == 200
    assert seen == ["/do"]


async def test_control_endpoint_adds_and_clears_faults() -> None:
    app, _ = _app()
    conn = Connection("http://sim", Environment.MOCK, httpx.ASGITransport(app=app))
    async with make_client(conn, {}) as client:
        created = await client.post("/_sim/faults", json={"kind": "error", "status": 502})
        assert created.status_code == 201
        assert (await client.post("/do")).status_code == 502
        await client.post("/_sim/faults", json={"kind": "latency", "seconds": 0})
        assert len((await client.get("/_sim/faults")).json()["faults"]) == 1
        await client.delete("/_sim/faults")
        assert (await client.get("/_sim/faults")).json() == {"faults": []}
        bad = await client.post("/_sim/faults", json={"kind": "error", "nonsense": 1})
        assert bad.status_code == 400


async def test_connect_failure_is_unreachable() -> None:
    conn = Connection("http://127.0.0.1:9", Environment.SANDBOX, timeout=2)
    async with make_client(conn, {}) as client:
        with pytest.raises(AuthorityUnreachable, match="nothing was sent"):
            await send(client, "POST", "/x", authority="test")


async def test_request_that_cannot_be_built_is_a_configuration_error() -> None:
    app, seen = _app()
    conn = Connection("http://sim", Environment.MOCK, httpx.ASGITransport(app=app))
    with pytest.raises(ConfigurationError, match="cannot build requests") as caught:
        make_client(conn, {"X-API-Key": "clé-accentuée"})
    assert "clé-accentuée" not in caught.value.message
    bad_url = Connection("http://sim:notaport", Environment.MOCK, httpx.ASGITransport(app=app))
    with pytest.raises(ConfigurationError, match="cannot build requests"):
        make_client(bad_url, {})
    assert seen == []
