"""No tenant makes the gateway call inside its network: refused when the settings are saved, and
again at call time after DNS resolution; redirects are not followed; the operator may allow it."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from fiscalgate.authorities import http as authority_http
from fiscalgate.authorities.base import Connection, Environment
from fiscalgate.gateway import netpolicy
from tests.gateway.conftest import mock_settings, new_tenant, real_invoice

pytestmark = pytest.mark.anyio

LOOPBACK_SPELLINGS = [
    "127.0.0.1",
    "127.1",
    "127.0.1",
    "2130706433",
    "0x7f000001",
    "0177.0.0.1",
    "0x7f.0.0.1",
    "0x7f.1",
    "017700000001",
    "127.000.000.001",
    "127.0.0.1.",
    "[::1]",
    "[::ffff:127.0.0.1]",
    "[::ffff:7f00:1]",
    "[0:0:0:0:0:ffff:127.0.0.1]",
    "[64:ff9b::127.0.0.1]",
    "[2002:7f00:1::]",
    "localhost",
    "LOCALHOST.",
    "api.localhost",
]
OTHER_INTERNAL = [
    "10.0.0.5",
    "172.16.3.4",
    "192.168.1.1",
    "169.254.169.254",  # cloud metadata
    "0xa9fea9fe",
    "100.64.0.1",  # carrier-grade NAT
    "0.0.0.0",
    "0",
    "[::]",
    "[fe80::1%25eth0]",
    "[fc00::1]",
    "[::ffff:10.0.0.1]",
    "224.0.0.1",
    "255.255.255.255",
    "metadata.internal",
]


@pytest.mark.parametrize("host", LOOPBACK_SPELLINGS + OTHER_INTERNAL)
def test_every_spelling_of_an_internal_host_is_refused(host: str) -> None:
    with pytest.raises(netpolicy.UrlNotAllowed):
        netpolicy.check_url(f"http://{host}:8080/ws", field="base_url", allow_private=False)
    netpolicy.check_url(f"http://{host}:8080/ws", field="base_url", allow_private=True)


@pytest.mark.parametrize(
    ("spelling", "address"),
    [("127.1", "127.0.0.1"), ("2130706433", "127.0.0.1"), ("0177.0.0.1", "127.0.0.1"),
     ("0x7f.1", "127.0.0.1"), ("10.1.2", "10.1.0.2"), ("::ffff:127.0.0.1", "127.0.0.1"),
     ("8.8.8.8.", "8.8.8.8")],
)  # fmt: skip
def test_ip_literals_are_read_the_way_resolvers_read_them(spelling: str, address: str) -> None:
    assert netpolicy.parse_ip_literal(spelling) == ipaddress.ip_address(address)


# URLs whose host a lenient and a strict parser could read differently (userinfo, backslashes,
# a `#` or `?` before an `@`): the host the save-time check reads must be the one httpx connects to.
CONFUSING_URLS = [
    "https://sfec.example.com\\@127.0.0.1/api",
    "http://a.example.com@127.0.0.1/",
    "http://127.0.0.1#@a.example.com/",
    "http://127.0.0.1?@a.example.com/",
    "http://a.example.com\\@[::1]/",
    "http://127.0.0.1\\@a.example.com/",
    "http://[::1]\\@a.example.com/",
    "http://a.example.com:443@169.254.169.254/",
]


@pytest.mark.parametrize("url", CONFUSING_URLS)
def test_the_host_checked_at_save_time_is_the_host_httpx_calls(url: str) -> None:
    called = httpx.URL(url).host
    internal = called in ("127.0.0.1", "::1", "169.254.169.254")
    if internal:
        with pytest.raises(netpolicy.UrlNotAllowed):
            netpolicy.check_url(url, field="base_url", allow_private=False)
    else:
        netpolicy.check_url(
            url, field="base_url", allow_private=False
        )  # a public name: checked again at call time


@pytest.mark.parametrize("host", ["54.247.95.108", "sygmef.impots.bj", "api.sfec.gouv.cg", "8.8.8.8"])
def test_public_hosts_are_accepted(host: str) -> None:
    netpolicy.check_url(f"https://{host}/x", field="base_url", allow_private=False)


def test_numeric_looking_hosts_that_are_no_address_are_refused() -> None:
    for host in ("1.2.3.999", "1.2.3.4.5", "0x1g.1", "08.1.2.3"):
        with pytest.raises(netpolicy.UrlNotAllowed):
            netpolicy.parse_ip_literal(host)


async def test_settings_naming_an_internal_host_are_refused_at_save_time(
    make_app: Callable[..., FastAPI],
) -> None:
    app = make_app(allow_private_urls=False)
    _, api = await new_tenant(app)
    async with api:
        for host in ("127.1", "[::ffff:127.0.0.1]", "169.254.169.254", "0x7f.1", "localhost"):
            body = mock_settings("ci-fne", base_url=f"http://{host}:8443/ws")
            r = await api.put("/v1/settings/ci-fne", json=body)
            assert r.status_code == 422, (host, r.text)
            assert r.json()["code"] == "settings.url_not_public"
            assert r.json()["problems"][0]["field"] == "base_url"
        r = await api.get("/v1/settings/ci-fne")
        assert r.json()["configured"] is False  # nothing half-written


async def test_the_operator_may_allow_private_urls(make_app: Callable[..., FastAPI]) -> None:
    _, api = await new_tenant(make_app(allow_private_urls=True))
    async with api:
        body = mock_settings("ci-fne", base_url="http://127.0.0.1:8443/ws")
        assert (await api.put("/v1/settings/ci-fne", json=body)).status_code == 200


@pytest.fixture
async def listener() -> AsyncIterator[tuple[int, list[bytes]]]:
    """A local HTTP server recording every request it receives (it answers 302 to the metadata IP)."""
    seen: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(await reader.readuntil(b"\r\n\r\n"))
        writer.write(b"HTTP/1.1 302 Found\r\nLocation: http://169.254.169.254/\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        yield port, seen


def _resolve_everything_to_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    async def fake_getaddrinfo(host: str, port: int, **_: Any) -> list[Any]:
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]

    monkeypatch.setattr(authority_http.anyio, "getaddrinfo", fake_getaddrinfo)


async def test_a_public_name_resolving_to_loopback_is_refused_at_call_time(
    make_app: Callable[..., FastAPI],
    listener: tuple[int, list[bytes]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    port, seen = listener
    app = make_app(allow_private_urls=False)
    _, api = await new_tenant(app)
    async with api:
        body = mock_settings(
            "ci-fne", environment="sandbox", base_url=f"http://fne-rebind.example.com:{port}/ws"
        )
        assert (await api.put("/v1/settings/ci-fne", json=body)).status_code == 200  # a public-looking name
        _resolve_everything_to_loopback(monkeypatch)  # ... whose DNS answer is 127.0.0.1
        r = await api.post(
            "/v1/invoices", json={"authority": "ci-fne", "approve": True, "invoice": real_invoice("ci-fne")}
        )
        r = await api.post(f"/v1/invoices/{r.json()['id']}/certify")
        assert r.status_code == 422, r.text
        assert r.json()["code"] == "settings.url_not_public" and r.json()["invoice_status"] == "failed"
        assert "127.0.0.1" in r.json()["message"]
    assert seen == []  # nothing reached the internal host


async def test_the_transport_connects_to_the_checked_address_and_follows_no_redirect(
    listener: tuple[int, list[bytes]], monkeypatch: pytest.MonkeyPatch
) -> None:
    port, seen = listener
    _resolve_everything_to_loopback(monkeypatch)
    checked: list[tuple[str, str]] = []
    transport = authority_http.guarded_transport(lambda host, address: checked.append((host, str(address))))
    connection = Connection(base_url=f"http://platform.example.com:{port}", environment=Environment.SANDBOX,
                            transport=transport)  # fmt: skip
    async with authority_http.make_client(connection, {}) as http:
        response = await authority_http.send(http, "GET", "/status", authority="ci-fne")
    assert response.status_code == 302  # handed back as is, never followed to 169.254.169.254
    assert checked == [("platform.example.com", "127.0.0.1")]
    assert len(seen) == 1 and f"host: platform.example.com:{port}".encode() in seen[0].lower()


async def test_a_refused_destination_sends_nothing(
    listener: tuple[int, list[bytes]], monkeypatch: pytest.MonkeyPatch
) -> None:
    port, seen = listener
    _resolve_everything_to_loopback(monkeypatch)

    def refuse(host: str, address: netpolicy.IPAddress) -> None:
        netpolicy.check_address(address, host=host, allow_private=False)

    transport = authority_http.guarded_transport(refuse)
    async with httpx.AsyncClient(transport=transport) as http:
        with pytest.raises(netpolicy.UrlNotAllowed):
            await http.get(f"http://platform.example.com:{port}/")
        with pytest.raises(netpolicy.UrlNotAllowed):
            await http.get(f"http://127.0.0.1:{port}/")
    assert seen == []
